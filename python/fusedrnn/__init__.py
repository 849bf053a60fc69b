"""fusedrnn: fused LSTM and GRU kernels over NumPy arrays, with PyTorch's conventions.

``LSTM`` and ``GRU`` are PyTorch-compatible modules (same constructor arguments, state_dict
keys and numbers) with an explicit ``backward``; ``fusedrnn.optim.Adam`` trains them. The
functional API runs one layer and one direction; see ``lstm_forward``, ``gru_forward``,
their backward functions and the single-step cells; ``pack_weights`` packs a layer's weights
once for many forward calls. ``fusedrnn.reference`` is the plain NumPy
implementation the kernels are tested against.
"""

# Loads OpenBLAS globally before the extension needs its symbols (scipy-openblas32's pattern).
import scipy_openblas32 as _scipy_openblas32  # noqa: F401

from . import _core, cuda, optim
from .functional import (
    GruCellGrads,
    GruGrads,
    LstmCellGrads,
    LstmGrads,
    gru_backward,
    gru_cell,
    gru_cell_backward,
    gru_forward,
    lstm_backward,
    lstm_cell,
    lstm_cell_backward,
    lstm_forward,
    pack_weights,
)
from .modules import GRU, LSTM
from .runtime import (empty_cache, get_cmake_dir, get_include, get_num_threads, info,
                      set_num_threads)

try:
    from importlib.metadata import version as _version

    __version__ = _version("fusedrnn")
except Exception:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "GRU",
    "LSTM",
    "GruCellGrads",
    "GruGrads",
    "LstmCellGrads",
    "LstmGrads",
    "empty_cache",
    "get_cmake_dir",
    "get_include",
    "get_num_threads",
    "gru_backward",
    "gru_cell",
    "gru_cell_backward",
    "gru_forward",
    "info",
    "lstm_backward",
    "lstm_cell",
    "lstm_cell_backward",
    "lstm_forward",
    "pack_weights",
    "set_num_threads",
]
