// From the type-erased API (DType, problems with T = void) to the typed kernels: one switch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>

#include "api.hpp"
#include "device_guard.hpp"
#include "workspace.hpp"

namespace fusedrnn::cuda {

template <typename T>
struct Tag {
  using type = T;
};

// f(Tag<T>{}) with T the storage type of dt.
template <typename F>
decltype(auto) dispatch(DType dt, F&& f) {
  switch (dt) {
    case DType::f32: return f(Tag<float>{});
    case DType::f16: return f(Tag<__half>{});
    case DType::bf16: return f(Tag<__nv_bfloat16>{});
  }
  throw std::invalid_argument("fusedrnn CUDA: unknown dtype code " + std::to_string(int(dt)));
}

// Bytes the buffer layout Buffers<T> (T the storage type of dt) carves out of a workspace for
// dims: the layout run on a measuring Workspace, so size and layout cannot disagree.
template <template <typename> class Buffers, typename Dims>
size_t layout_bytes(DType dt, const Dims& dims) {
  return dispatch(dt, [&](auto tag) {
    Workspace ws;
    const Buffers<typename decltype(tag)::type> layout(ws, dims);
    (void)layout;
    return ws.used();
  });
}

template <typename T>
const T* as(const void* p) {
  return static_cast<const T*>(p);
}
template <typename T>
T* as(void* p) {
  return static_cast<T*>(p);
}

inline cudaStream_t stream_of(const Context& ctx) { return static_cast<cudaStream_t>(ctx.stream); }

}  // namespace fusedrnn::cuda
