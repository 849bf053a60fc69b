// fusedrnn's CUDA backend: the same LSTM and GRU sequence kernels as the CPU core (one layer, one
// direction), on device pointers. No CUDA header is needed to call it: the stream is a plain
// pointer and the storage type is a tag, so the problem structs of fusedrnn.hpp are reused with
// T = void (every pointer in them is a DEVICE pointer of the storage type; lengths [B] is a
// device array of int64).
//
// Storage types: float32, float16 and bfloat16; the math is float32 everywhere (GEMMs through
// cublasGemmEx with CUBLAS_COMPUTE_32F, gate math in float registers). float32 GEMMs stay
// float32 (no TF32), so results match the CPU backend at its float32 tolerances.
//
// Memory: the caller hands in a workspace of at least *_workspace_bytes(...) bytes (allocated by
// whatever allocator it uses: CuPy's pool, PyTorch's caching allocator); the kernels allocate
// nothing. Everything is enqueued on `stream` of `device`; calls return without waiting.
// The saved block has the CPU's layout (fusedrnn.hpp's *Saved structs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "fusedrnn/fusedrnn.hpp"

namespace fusedrnn::cuda {

enum class DType : int { f32 = 0, f16 = 1, bf16 = 2 };

struct Context {
  int device = 0;                  // the CUDA device of every pointer
  void* stream = nullptr;          // cudaStream_t; null: the legacy default stream
  void* workspace = nullptr;       // device scratch memory
  size_t workspace_bytes = 0;      // its size: at least what *_workspace_bytes() asks for
};

size_t lstm_forward_workspace_bytes(DType dt, const LstmProblem<void>& p, bool training);
size_t lstm_backward_workspace_bytes(DType dt, const LstmProblem<void>& p);

// As fusedrnn::lstm_forward: h0 [B, P], c0 [B, H] or null; y [T, B, P], hn [B, P], cn [B, H];
// saved null for inference.
void lstm_forward(DType dt, const LstmProblem<void>& p, const void* h0, const void* c0, void* y,
                  void* hn, void* cn, const LstmSaved<void>* saved, const Context& ctx);

// As fusedrnn::lstm_backward: dy [T, B, P]; dhn [B, P], dcn [B, H] or null.
void lstm_backward(DType dt, const LstmProblem<void>& p, const LstmSaved<void>& saved,
                   const void* dy, const void* dhn, const void* dcn, const LstmGrads<void>& g,
                   const Context& ctx);

size_t gru_forward_workspace_bytes(DType dt, const GruProblem<void>& p, bool training);
size_t gru_backward_workspace_bytes(DType dt, const GruProblem<void>& p);

// As fusedrnn::gru_forward / gru_backward.
void gru_forward(DType dt, const GruProblem<void>& p, const void* h0, void* y, void* hn,
                 const GruSaved<void>* saved, const Context& ctx);
void gru_backward(DType dt, const GruProblem<void>& p, const GruSaved<void>& saved,
                  const void* dy, const void* dhn, const GruGrads<void>& g, const Context& ctx);

// How many persistent launches (persistent.cuh) this process has made: lets tests check
// which path ran. FUSEDRNN_CUDA_PERSISTENT=1 forces that path wherever it fits, =0 turns it off;
// unset, it runs where an H100 measured it faster (persistent_by_default in persistent.cuh).
uint64_t persistent_launch_count();
void count_persistent_launch();

// Devices. device_count() throws (with the CUDA error string) when there is no usable driver.
int device_count();
std::string device_name(int device);  // "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)"
std::string runtime_info();           // "CUDA runtime 13.0, driver 13.0, cuBLAS 13.1.0"

}  // namespace fusedrnn::cuda
