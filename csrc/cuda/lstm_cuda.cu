// LSTM sequence kernels on CUDA. Forward: the input projection of all T*B rows as one GEMM,
// then per step the recurrent GEMM h @ w_hh^T and one fused pointwise kernel (with a
// projection: a second GEMM, h_tilde @ w_hr^T, and a small kernel that moves it into the state).
// Backward: per step the pointwise kernel and the GEMM dh += dG @ w_hh; then the weight and
// input gradients as single GEMMs over all T*B rows, and the bias gradients as column sums.
// Small batches (without a projection; linear_before_reset for the GRU) may run each time loop
// as one persistent launch instead (persistent.cuh: where an H100 measured it faster).
#include <cuda_runtime.h>

#include "api.hpp"
#include "cublas_gemm.hpp"
#include "dispatch.cuh"
#include "persistent.cuh"
#include "pointwise_lstm.cuh"
#include "reductions.cuh"
#include "workspace.hpp"

namespace fusedrnn::cuda {
namespace {

template <typename T>
LstmProblem<T> typed(const LstmProblem<void>& v) {
  LstmProblem<T> p;
  p.steps = v.steps, p.batch = v.batch, p.input = v.input, p.hidden = v.hidden, p.proj = v.proj;
  p.x = as<T>(v.x), p.w_ih = as<T>(v.w_ih), p.w_hh = as<T>(v.w_hh);
  p.b_ih = as<T>(v.b_ih), p.b_hh = as<T>(v.b_hh), p.w_hr = as<T>(v.w_hr);
  p.lengths = v.lengths, p.reverse = v.reverse;
  return p;
}

struct Dims {
  int64_t T_, B, I, H, P, G, rows;
  bool proj, blocks;
  explicit Dims(const LstmProblem<void>& p)
      : T_(p.steps), B(p.batch), I(p.input), H(p.hidden), P(p.proj), G(4 * p.hidden),
        rows(p.steps * p.batch), proj(p.w_hr != nullptr),
        blocks(!(p.reverse && p.lengths)) {}
};

// Forward scratch: xproj [T, B, 4H], hproj [B, 4H]; with a projection h_tilde [B, H] and
// hp [B, P] (the projected state before it is committed), without one h_buf [2, B, H] (the
// persistent kernel's double-buffered tagged state).
template <typename T>
struct ForwardBuffers {
  T *xproj, *hproj, *h_tilde = nullptr, *hp = nullptr;
  TaggedWord* h_buf = nullptr;
  ForwardBuffers(Workspace& ws, const Dims& d)
      : xproj(ws.take<T>(d.rows * d.G)), hproj(ws.take<T>(d.B * d.G)) {
    if (d.proj) h_tilde = ws.take<T>(d.B * d.H), hp = ws.take<T>(d.B * d.P);
    else h_buf = ws.take<TaggedWord>(2 * d.B * d.H);
  }
};

// The whole time loop as one persistent launch (persistent.cuh), when enabled and it fits;
// false: nothing ran, use the per-step loop.
template <typename T>
bool forward_persistent(const LstmProblem<T>& p, const Dims& d, const StepOrder& order,
                        const ForwardBuffers<T>& buf, T* y, T* hn, T* cn,
                        const LstmSaved<T>* saved, cudaStream_t st) {
  if (d.proj) return false;
  PersistentLstm<T> q{order, d.B, d.H, 0, buf.xproj, p.w_hh, p.b_ih, p.b_hh, buf.h_buf, cn, y,
                      saved ? saved->gates : nullptr, saved ? saved->c_prev : nullptr,
                      saved ? saved->h_prev : nullptr};
  return run_persistent_forward<PersistentLstm<T>, lstm_persistent_step<T, true>,
                                lstm_persistent_step<T, false>>(q, 4, saved != nullptr, hn, st);
}

// Backward scratch: dgates [T, B, 4H] (time-major, for the weight GEMMs); dg_step [B, 4H] when
// a step's rows are scattered in time; with a projection dh_out [T, B, P] and h_tilde
// [T, B, H] (step-major: any order serves dW_hr), dh_tilde [B, H]; the column sums' scratch.
template <typename T>
struct BackwardBuffers {
  T *dgates, *dg_step = nullptr, *dh_out = nullptr, *h_tilde = nullptr, *dh_tilde = nullptr;
  T* dh_buf = nullptr;  // without a projection: the persistent kernel's [2, B, H] dh
  float* sums;
  BackwardBuffers(Workspace& ws, const Dims& d) : dgates(ws.take<T>(d.rows * d.G)) {
    if (!d.blocks) dg_step = ws.take<T>(d.B * d.G);
    if (d.proj) {
      dh_out = ws.take<T>(d.rows * d.P);
      h_tilde = ws.take<T>(d.rows * d.H);
      dh_tilde = ws.take<T>(d.B * d.H);
    } else {
      dh_buf = ws.take<T>(2 * d.B * d.H);
    }
    sums = column_sums_scratch(ws, d.rows, d.G);
  }
};

// The backward time loop as one persistent launch (persistent.cuh), when enabled and it fits;
// false: nothing ran. dh holds dhn on entry and dh0 on exit; dc likewise.
template <typename T>
bool backward_persistent(const LstmProblem<T>& p, const Dims& d, const StepOrder& order,
                         const LstmSaved<T>& saved, const T* dy, T* dh, T* dc,
                         const BackwardBuffers<T>& buf, cudaStream_t st) {
  if (d.proj || d.rows == 0) return false;
  PersistentLstmBackward<T> q{order, d.B, d.H, 0, p.w_hh, saved.gates, saved.c_prev, dy,
                              buf.dh_buf, dc, buf.dgates};
  copy_or_zero(d.B * d.H, static_cast<const T*>(dh), buf.dh_buf, st);
  const bool ran = run_persistent_backward<PersistentLstmBackward<T>, lstm_backward_phase_a<T>,
                                           lstm_backward_phase_b<T>>(q, 4, st);
  if (ran) copy_or_zero(d.B * d.H, static_cast<const T*>(buf.dh_buf + (d.T_ & 1) * d.B * d.H), dh, st);
  return ran;
}

template <typename T, bool kSave>
void forward_loop(const LstmProblem<T>& p, const Dims& d, const StepOrder& order,
                  const ForwardBuffers<T>& buf, T* y, T* hn, T* cn, const LstmSaved<T>* saved,
                  cublasHandle_t blas, cudaStream_t st) {
  T* gates = kSave ? saved->gates : nullptr;
  T* c_prev = kSave ? saved->c_prev : nullptr;
  T* h_prev = kSave ? saved->h_prev : nullptr;
  const int64_t units = d.B * d.H;
  for (int64_t s = 0; s < d.T_; ++s) {
    gemm<T>(blas, Op::N, Op::T, d.B, d.G, d.P, 1.0f, hn, d.P, p.w_hh, d.P, 0.0f, buf.hproj, d.G, st);
    if (!d.proj) {
      launch(lstm_forward_step<T, kSave, false>, units, st, order, s, d.B, d.H, buf.xproj,
             buf.hproj, p.b_ih, p.b_hh, cn, hn, y, gates, c_prev, h_prev);
      continue;
    }
    launch(lstm_forward_step<T, kSave, true>, units, st, order, s, d.B, d.H, buf.xproj,
           buf.hproj, p.b_ih, p.b_hh, cn, buf.h_tilde, static_cast<T*>(nullptr), gates, c_prev,
           static_cast<T*>(nullptr));
    gemm<T>(blas, Op::N, Op::T, d.B, d.P, d.H, 1.0f, buf.h_tilde, d.H, p.w_hr, d.H, 0.0f, buf.hp,
            d.P, st);
    launch(lstm_projection_step<T, kSave>, d.B * d.P, st, order, s, d.B, d.P, buf.hp, hn, y,
           h_prev);
  }
}

template <typename T>
void forward(const LstmProblem<T>& p, const Dims& d, const T* h0, const T* c0, T* y, T* hn,
             T* cn, const LstmSaved<T>* saved, Workspace& ws, cudaStream_t st) {
  copy_or_zero(d.B * d.P, h0, hn, st);  // hn and cn hold the running state
  copy_or_zero(d.B * d.H, c0, cn, st);
  if (d.rows == 0) return;
  const ForwardBuffers<T> buf(ws, d);
  const StepOrder order{d.T_, p.lengths, p.reverse};
  cublasHandle_t blas = cublas_handle(st);
  gemm<T>(blas, Op::N, Op::T, d.rows, d.G, d.I, 1.0f, p.x, d.I, p.w_ih, d.I, 0.0f, buf.xproj,
          d.G, st);
  if (forward_persistent(p, d, order, buf, y, hn, cn, saved, st)) return;
  if (saved) forward_loop<T, true>(p, d, order, buf, y, hn, cn, saved, blas, st);
  else forward_loop<T, false>(p, d, order, buf, y, hn, cn, saved, blas, st);
}

// The per-step backward loop: the pointwise kernel(s), then dh += dG @ w_hh.
template <typename T>
void backward_steps(const LstmProblem<T>& p, const Dims& d, const StepOrder& order,
                    const LstmSaved<T>& saved, const T* dy, T* dh, T* dc,
                    const BackwardBuffers<T>& buf, cublasHandle_t blas, cudaStream_t st) {
  const int64_t units = d.B * d.H;
  for (int64_t s = d.T_ - 1; s >= 0; --s) {
    T* dg = d.blocks ? buf.dgates + order.block_time(s) * d.B * d.G : buf.dg_step;
    T* scatter = d.blocks ? nullptr : buf.dgates;
    if (!d.proj) {
      launch(lstm_backward_step<T, false>, units, st, order, s, d.B, d.H, saved.gates,
             saved.c_prev, dy, dh, dc, dg, scatter, static_cast<T*>(nullptr));
    } else {
      T* dh_out = buf.dh_out + s * d.B * d.P;
      launch(lstm_projection_backward_step<T>, d.B * d.P, st, order, s, d.B, d.P, dy, dh, dh_out);
      gemm<T>(blas, Op::N, Op::N, d.B, d.H, d.P, 1.0f, dh_out, d.P, p.w_hr, d.H, 0.0f,
              buf.dh_tilde, d.H, st);
      launch(lstm_backward_step<T, true>, units, st, order, s, d.B, d.H, saved.gates,
             saved.c_prev, static_cast<const T*>(nullptr), buf.dh_tilde, dc, dg, scatter,
             buf.h_tilde + s * d.B * d.H);
    }
    gemm<T>(blas, Op::N, Op::N, d.B, d.P, d.G, 1.0f, dg, d.G, p.w_hh, d.P, 1.0f, dh, d.P, st);
  }
}

template <typename T>
void backward(const LstmProblem<T>& p, const Dims& d, const LstmSaved<T>& saved, const T* dy,
              const T* dhn, const T* dcn, const LstmGrads<T>& g, Workspace& ws,
              cudaStream_t st) {
  T* dh = g.dh0;  // dh0 and dc0 carry the gradients through time
  T* dc = g.dc0;
  copy_or_zero(d.B * d.P, dhn, dh, st);
  copy_or_zero(d.B * d.H, dcn, dc, st);
  const BackwardBuffers<T> buf(ws, d);
  const StepOrder order{d.T_, p.lengths, p.reverse};
  cublasHandle_t blas = cublas_handle(st);
  // Scattered steps leave the padding rows of dgates unwritten: they must read as 0.
  if (!d.blocks) copy_or_zero<T>(d.rows * d.G, nullptr, buf.dgates, st);
  if (!backward_persistent(p, d, order, saved, dy, dh, dc, buf, st))
    backward_steps(p, d, order, saved, dy, dh, dc, buf, blas, st);

  // The weight and input gradients: one GEMM each over all T*B rows.
  gemm<T>(blas, Op::T, Op::N, d.G, d.I, d.rows, 1.0f, buf.dgates, d.G, p.x, d.I, 0.0f, g.dw_ih,
          d.I, st);
  gemm<T>(blas, Op::N, Op::N, d.rows, d.I, d.G, 1.0f, buf.dgates, d.G, p.w_ih, d.I, 0.0f, g.dx,
          d.I, st);
  gemm<T>(blas, Op::T, Op::N, d.G, d.P, d.rows, 1.0f, buf.dgates, d.G, saved.h_prev, d.P, 0.0f,
          g.dw_hh, d.P, st);
  column_sums(d.rows, d.G, buf.dgates, d.G, g.db_ih, g.db_hh, buf.sums, st);
  if (d.proj)
    gemm<T>(blas, Op::T, Op::N, d.P, d.H, d.rows, 1.0f, buf.dh_out, d.P, buf.h_tilde, d.H, 0.0f,
            g.dw_hr, d.H, st);
}

}  // namespace

size_t lstm_forward_workspace_bytes(DType dt, const LstmProblem<void>& p, bool /*training*/) {
  return layout_bytes<ForwardBuffers>(dt, Dims(p));
}

size_t lstm_backward_workspace_bytes(DType dt, const LstmProblem<void>& p) {
  return layout_bytes<BackwardBuffers>(dt, Dims(p));
}

void lstm_forward(DType dt, const LstmProblem<void>& p, const void* h0, const void* c0, void* y,
                  void* hn, void* cn, const LstmSaved<void>* saved, const Context& ctx) {
  const DeviceGuard guard(ctx.device);
  dispatch(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    LstmSaved<T> s;
    if (saved) s.gates = as<T>(saved->gates), s.c_prev = as<T>(saved->c_prev), s.h_prev = as<T>(saved->h_prev);
    Workspace ws(ctx.workspace, ctx.workspace_bytes);
    forward<T>(typed<T>(p), Dims(p), as<T>(h0), as<T>(c0), as<T>(y), as<T>(hn), as<T>(cn),
               saved ? &s : nullptr, ws, stream_of(ctx));
  });
}

void lstm_backward(DType dt, const LstmProblem<void>& p, const LstmSaved<void>& saved,
                   const void* dy, const void* dhn, const void* dcn, const LstmGrads<void>& g,
                   const Context& ctx) {
  const DeviceGuard guard(ctx.device);
  dispatch(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    LstmSaved<T> s;
    s.gates = as<T>(saved.gates), s.c_prev = as<T>(saved.c_prev), s.h_prev = as<T>(saved.h_prev);
    LstmGrads<T> gt;
    gt.dx = as<T>(g.dx), gt.dh0 = as<T>(g.dh0), gt.dc0 = as<T>(g.dc0);
    gt.dw_ih = as<T>(g.dw_ih), gt.dw_hh = as<T>(g.dw_hh);
    gt.db_ih = as<T>(g.db_ih), gt.db_hh = as<T>(g.db_hh), gt.dw_hr = as<T>(g.dw_hr);
    Workspace ws(ctx.workspace, ctx.workspace_bytes);
    backward<T>(typed<T>(p), Dims(p), s, as<T>(dy), as<T>(dhn), as<T>(dcn), gt, ws,
                stream_of(ctx));
  });
}

}  // namespace fusedrnn::cuda
