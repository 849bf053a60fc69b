// fusedrnn: fused LSTM and GRU kernels, one layer and one direction.
//
// Conventions (PyTorch's, so the same weights give the same numbers):
//   T  time steps        B  batch        I  input size
//   H  hidden size       P  output size of an LSTM with projection (P == H without one)
//   G  gates per unit: LSTM 4 in the order i, f, g, o; GRU 3 in the order r, z, n
// Every array is dense and row-major ("C order"); shapes below are written [dim, dim, ...].
// Sequences are time-major: x [T, B, I], y [T, B, P].
// lengths (optional) [B]: sequence b is processed for its first lengths[b] steps only; y is 0
// past that; a reverse pass starts at each sequence's own last valid step. 0 <= lengths[b] <= T.
// Optional inputs are null pointers: a missing bias is zero, a missing initial state is zero.
// Outputs may not overlap inputs or each other.
//
// Errors: every entry point checks its arguments before it touches memory and throws
// std::invalid_argument for a bad one, with the message the Python API shows (it passes these
// on as ValueError): the argument's name first, then what was expected and what was received,
// e.g. "lengths: expected values in [0, T=5], got 7 at index 2". Checked: sizes (none
// negative; GEMM sizes T*B, G*H, I, P within the BLAS's 32-bit integers; every array's bytes
// within int64), required pointers not null, lengths in range, outputs overlapping nothing.
// Pointers cannot tell how long an array is: each must hold the elements its shape says.
//
// Training: forward fills a `saved` block (see the *Saved structs) that the matching backward
// reads; it is indexed by time like x, so [T, B, ...].
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace fusedrnn {

// A layer's weights packed once for many forward calls (pack_weights, below); opaque.
template <typename T>
struct PackedWeights;

// Sizes and the inputs every pass of one layer reads.
template <typename T>
struct LstmProblem {
  int64_t steps = 0, batch = 0, input = 0, hidden = 0, proj = 0;  // T, B, I, H, P (H without w_hr)
  const T* x = nullptr;              // x: [T, B, I] input sequence
  const T* w_ih = nullptr;           // w_ih: [4H, I] input weights
  const T* w_hh = nullptr;           // w_hh: [4H, P] recurrent weights
  const T* b_ih = nullptr;           // b_ih: [4H] input bias, or null
  const T* b_hh = nullptr;           // b_hh: [4H] recurrent bias, or null
  const T* w_hr = nullptr;           // w_hr: [P, H] projection, or null (then P == H)
  const int64_t* lengths = nullptr;  // lengths: [B] valid steps per sequence, or null (all T)
  bool reverse = false;              // run from each sequence's last valid step to t = 0
  int threads = 0;                   // most threads to use; 0: all (set_num_threads)
  const PackedWeights<T>* packed = nullptr;  // pack_weights(w_ih, w_hh, 4, ...), or null
};

// What lstm_backward needs from lstm_forward: written by forward when training.
template <typename T>
struct LstmSaved {
  T* gates = nullptr;   // gates: [T, B, 4H] activated i, f, g, o
  T* c_prev = nullptr;  // c_prev: [T, B, H] cell state entering each step
  T* h_prev = nullptr;  // h_prev: [T, B, P] hidden state entering each step
};

template <typename T>
struct LstmGrads {
  T* dx = nullptr;     // dx: [T, B, I]
  T* dh0 = nullptr;    // dh0: [B, P]
  T* dc0 = nullptr;    // dc0: [B, H]
  T* dw_ih = nullptr;  // dw_ih: [4H, I]
  T* dw_hh = nullptr;  // dw_hh: [4H, P]
  T* db_ih = nullptr;  // db_ih: [4H], or null when not wanted
  T* db_hh = nullptr;  // db_hh: [4H], or null when not wanted
  T* dw_hr = nullptr;  // dw_hr: [P, H], used only with a projection
};

// h0: [B, P] or null; c0: [B, H] or null. Writes y: [T, B, P], hn: [B, P], cn: [B, H].
// saved: null for inference.
template <typename T>
void lstm_forward(const LstmProblem<T>& p, const T* h0, const T* c0, T* y, T* hn, T* cn,
                  const LstmSaved<T>* saved);

// dy: [T, B, P]; dhn: [B, P] or null; dcn: [B, H] or null.
template <typename T>
void lstm_backward(const LstmProblem<T>& p, const LstmSaved<T>& saved, const T* dy,
                   const T* dhn, const T* dcn, const LstmGrads<T>& g);

template <typename T>
struct GruProblem {
  int64_t steps = 0, batch = 0, input = 0, hidden = 0;  // T, B, I, H
  const T* x = nullptr;              // x: [T, B, I]
  const T* w_ih = nullptr;           // w_ih: [3H, I]
  const T* w_hh = nullptr;           // w_hh: [3H, H]
  const T* b_ih = nullptr;           // b_ih: [3H] or null
  const T* b_hh = nullptr;           // b_hh: [3H] or null
  const int64_t* lengths = nullptr;  // lengths: [B] or null
  bool reverse = false;
  // true: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   (PyTorch, cuDNN)
  // false: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)  (Cho et al. 2014, ONNX default)
  bool linear_before_reset = true;
  int threads = 0;  // most threads to use; 0: all (set_num_threads)
  const PackedWeights<T>* packed = nullptr;  // pack_weights(w_ih, w_hh, 3, ...), or null
};

// Width of one saved gate row: r, z, n, plus W_hn h + b_hn when linear_before_reset.
inline int64_t gru_saved_width(bool linear_before_reset, int64_t hidden) {
  return (linear_before_reset ? 4 : 3) * hidden;
}

template <typename T>
struct GruSaved {
  T* gates = nullptr;   // gates: [T, B, gru_saved_width(...)]
  T* h_prev = nullptr;  // h_prev: [T, B, H] hidden state entering each step
};

template <typename T>
struct GruGrads {
  T* dx = nullptr;     // dx: [T, B, I]
  T* dh0 = nullptr;    // dh0: [B, H]
  T* dw_ih = nullptr;  // dw_ih: [3H, I]
  T* dw_hh = nullptr;  // dw_hh: [3H, H]
  T* db_ih = nullptr;  // db_ih: [3H], or null when not wanted
  T* db_hh = nullptr;  // db_hh: [3H], or null when not wanted
};

// h0: [B, H] or null. Writes y: [T, B, H], hn: [B, H]. saved: null for inference.
template <typename T>
void gru_forward(const GruProblem<T>& p, const T* h0, T* y, T* hn, const GruSaved<T>* saved);

// dy: [T, B, H]; dhn: [B, H] or null.
template <typename T>
void gru_backward(const GruProblem<T>& p, const GruSaved<T>& saved, const T* dy, const T* dhn,
                  const GruGrads<T>& g);

// Weights packed once for many forward calls. Every forward packs w_ih and w_hh into its kernels'
// layout (a read and a write of both) before it multiplies by them; a caller that runs the same
// weights again and again (a decoder's steps, a server's requests) can pack them once here and set
// the problem's `packed` in each call. For an LSTM (gates = 4; w_ih [4H, input], w_hh [4H, H], or
// with a projection w_hh [4H, proj] and w_hr [proj, H]) or a GRU (gates = 3; linear_before_reset as
// the calls will have it). The forward's GEMMs then read the packed copy, not the weights: leave
// those unchanged while it is in use (as with a training forward's saved block), or pack them
// again. A call must pass the same weight pointers and sizes (checked). The backward does not use
// it. Results are those of the same call without `packed`, but for calls of up to 32 rows (T * B;
// 64 with 8 MiB of weights or more), where they may differ in the last bits (without it one row
// runs BLAS matrix-vector products and the others read the weights unpacked, summing in other
// orders). Throws std::invalid_argument for bad arguments, as the entry points do.
template <typename T>
std::shared_ptr<const PackedWeights<T>> pack_weights(const T* w_ih, const T* w_hh, int gates,
                                                     int64_t hidden, int64_t input,
                                                     const T* w_hr = nullptr, int64_t proj = 0,
                                                     bool linear_before_reset = true);

// The size checks alone (they read no pointer), for a caller that wants them before it
// allocates anything; the entry points make them too.
template <typename T>
void check_sizes(const LstmProblem<T>& p);
template <typename T>
void check_sizes(const GruProblem<T>& p);

// Threads used by the kernels (and the BLAS under them). n <= 0 restores the default.
void set_num_threads(int n);
int get_num_threads();

// The SIMD level of the gate kernels in use ("generic", "avx2", "avx512"); the BLAS config.
const char* cpu_simd_level();
const char* blas_info();

// Memory for large arrays (the Python layer's outputs, saved states and gradients; the
// kernels' own scratch): freed blocks of 1 MiB and more wait in a cache for the next call of
// the same shape, which then need not fault fresh pages in. free_buffer takes any pointer
// from allocate_buffer (64-byte aligned); empty_cache frees what the cache holds;
// cached_bytes is what it holds now, cache_limit the most it may hold: 512 MiB, or
// FUSEDRNN_CACHE_MB MiB when that environment variable is set at first use (0: nothing);
// always 0 in sanitizer builds.
void* allocate_buffer(size_t bytes);
void free_buffer(void* p);
void empty_cache();
size_t cached_bytes();
size_t cache_limit();
// For tests: sets every byte the cache holds to 0xFF (a NaN in float and double), so that a
// call that reads memory it did not write shows it.
void poison_cache();

// For tests: how long (ns) a thread of a time loop waits for a late partner before it runs
// the rest of the loop alone (the results do not change); < 0 restores the default (200 us).
void set_take_over_patience(int64_t ns);
// For tests: how long (ns) a worker waits before it joins a two-thread time loop, so that it
// joins in mid-sequence, or before it claims a part of a loop whose parts are batch rows, so
// that the caller runs more of them (the results do not change); 0 (the default): at once.
void set_join_delay(int64_t ns);
// For tests: how long (ns) a worker of a two-thread time loop waits after each part of a step
// it claims, so that its caller runs more of them (the results do not change); 0 (the
// default): none.
void set_claim_delay(int64_t ns);

// Diagnostics: the float32 FMA throughput (FLOP/s) of `threads` threads (<= 0: all) running a
// register-only multiply-add loop at the step kernels' SIMD level for about `seconds`; the
// arithmetic peak that GEMM rates can be compared with.
double fma_peak_flops(double seconds, int threads);

// Diagnostics: the bytes/s that `threads` threads (<= 0: all) read together when each streams
// its own `bytes` / threads of float32 panels again and again, as the batch-1 recurrent product
// streams its slice of the weights, for about `seconds`: the ceiling of a step bound by where
// its weights fit (L1, L2, L3 or memory). bytes must be positive.
double stream_read_rate(int64_t bytes, double seconds, int threads);

}  // namespace fusedrnn
