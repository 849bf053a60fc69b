// GRU sequence kernels on CUDA, both variants. linear_before_reset (PyTorch, cuDNN): per step
// one GEMM h @ w_hh^T and one fused pointwise kernel. The original GRU applies r before W_hn,
// so its step is two GEMMs (h @ w_hh[:2H]^T, then (r * h) @ w_hn^T), each followed by its half
// of the gate math. Backward mirrors them; then the weight and input gradients are single
// GEMMs over all T*B rows and the bias gradients column sums, as on the CPU.
// Small batches (without a projection; linear_before_reset for the GRU) may run each time loop
// as one persistent launch instead (persistent.cuh: where an H100 measured it faster).
#include <cuda_runtime.h>

#include "api.hpp"
#include "cublas_gemm.hpp"
#include "dispatch.cuh"
#include "persistent.cuh"
#include "pointwise_gru.cuh"
#include "reductions.cuh"
#include "workspace.hpp"

namespace fusedrnn::cuda {
namespace {

template <typename T>
GruProblem<T> typed(const GruProblem<void>& v) {
  GruProblem<T> p;
  p.steps = v.steps, p.batch = v.batch, p.input = v.input, p.hidden = v.hidden;
  p.x = as<T>(v.x), p.w_ih = as<T>(v.w_ih), p.w_hh = as<T>(v.w_hh);
  p.b_ih = as<T>(v.b_ih), p.b_hh = as<T>(v.b_hh);
  p.lengths = v.lengths, p.reverse = v.reverse, p.linear_before_reset = v.linear_before_reset;
  return p;
}

struct Dims {
  int64_t T_, B, I, H, G, rows;
  bool lbr, blocks;
  explicit Dims(const GruProblem<void>& p)
      : T_(p.steps), B(p.batch), I(p.input), H(p.hidden), G(3 * p.hidden),
        rows(p.steps * p.batch), lbr(p.linear_before_reset),
        blocks(!(p.reverse && p.lengths)) {}
};

// Forward scratch: xproj [T, B, 3H], hproj [B, 3H] (W_hr h, W_hz h, then W_hn h or
// W_hn (r * h)); the original GRU also rh [B, H] = r * h; linear_before_reset h_buf [2, B, H]
// (the persistent kernel's double-buffered tagged state).
template <typename T>
struct ForwardBuffers {
  T *xproj, *hproj, *rh = nullptr;
  TaggedWord* h_buf = nullptr;
  ForwardBuffers(Workspace& ws, const Dims& d)
      : xproj(ws.take<T>(d.rows * d.G)), hproj(ws.take<T>(d.B * d.G)) {
    if (!d.lbr) rh = ws.take<T>(d.B * d.H);
    else h_buf = ws.take<TaggedWord>(2 * d.B * d.H);
  }
};

// The whole time loop as one persistent launch (persistent.cuh), when enabled and it fits;
// false: nothing ran, use the per-step loop.
template <typename T>
bool forward_persistent(const GruProblem<T>& p, const Dims& d, const StepOrder& order,
                        const ForwardBuffers<T>& buf, T* y, T* hn, const GruSaved<T>* saved,
                        cudaStream_t st) {
  if (!d.lbr) return false;
  PersistentGru<T> q{order, d.B, d.H, 0, buf.xproj, p.w_hh, p.b_ih, p.b_hh, buf.h_buf, y,
                     saved ? saved->gates : nullptr, saved ? saved->h_prev : nullptr};
  return run_persistent_forward<PersistentGru<T>, gru_persistent_step<T, true>,
                                gru_persistent_step<T, false>>(q, 3, saved != nullptr, hn, st);
}

// Backward scratch: dgx [T, B, 3H] (x side), and for linear_before_reset dgh [T, B, 3H] (h
// side; the original GRU's sides coincide); dg_step [B, 3H] when a step's rows are scattered
// in time; the original GRU's drh [B, H] and rh_all [T, B, H]; the column sums' scratch.
template <typename T>
struct BackwardBuffers {
  T *dgx, *dgh, *dg_step = nullptr, *drh = nullptr, *rh_all = nullptr;
  T* dh_buf = nullptr;  // linear_before_reset: the persistent kernel's [2, B, H] dh
  float* sums;
  BackwardBuffers(Workspace& ws, const Dims& d) : dgx(ws.take<T>(d.rows * d.G)) {
    dgh = d.lbr ? ws.take<T>(d.rows * d.G) : dgx;
    if (!d.blocks) dg_step = ws.take<T>(d.B * d.G);
    if (!d.lbr) drh = ws.take<T>(d.B * d.H), rh_all = ws.take<T>(d.rows * d.H);
    else dh_buf = ws.take<T>(2 * d.B * d.H);
    sums = column_sums_scratch(ws, d.rows, d.G);
  }
};

// The backward time loop as one persistent launch (persistent.cuh), when enabled and it fits;
// false: nothing ran. dh holds dhn on entry and dh0 on exit.
template <typename T>
bool backward_persistent(const GruProblem<T>& p, const Dims& d, const StepOrder& order,
                         const GruSaved<T>& saved, const T* dy, T* dh,
                         const BackwardBuffers<T>& buf, cudaStream_t st) {
  if (!d.lbr || d.rows == 0) return false;
  PersistentGruBackward<T> q{order, d.B, d.H, 0, p.w_hh, saved.gates, saved.h_prev, dy,
                             buf.dh_buf, buf.dgx, buf.dgh};
  copy_or_zero(d.B * d.H, static_cast<const T*>(dh), buf.dh_buf, st);
  const bool ran = run_persistent_backward<PersistentGruBackward<T>, gru_backward_phase_a<T>,
                                           gru_backward_phase_b<T>>(q, 3, st);
  if (ran) copy_or_zero(d.B * d.H, static_cast<const T*>(buf.dh_buf + (d.T_ & 1) * d.B * d.H), dh, st);
  return ran;
}

template <typename T, bool kSave>
void forward_loop(const GruProblem<T>& p, const Dims& d, const StepOrder& order,
                  const ForwardBuffers<T>& buf, T* y, T* hn, const GruSaved<T>* saved,
                  cublasHandle_t blas, cudaStream_t st) {
  T* gates = kSave ? saved->gates : nullptr;
  T* h_prev = kSave ? saved->h_prev : nullptr;
  const int64_t H = d.H, units = d.B * d.H;
  for (int64_t s = 0; s < d.T_; ++s) {
    if (d.lbr) {
      gemm<T>(blas, Op::N, Op::T, d.B, d.G, H, 1.0f, hn, H, p.w_hh, H, 0.0f, buf.hproj, d.G, st);
      launch(gru_lbr_forward_step<T, kSave>, units, st, order, s, d.B, H, buf.xproj, buf.hproj,
             p.b_ih, p.b_hh, hn, y, gates, h_prev);
      continue;
    }
    T* rz = buf.hproj;           // [B, 2H]
    T* hn_new = buf.hproj + d.B * 2 * H;  // [B, H]
    gemm<T>(blas, Op::N, Op::T, d.B, 2 * H, H, 1.0f, hn, H, p.w_hh, H, 0.0f, rz, 2 * H, st);
    launch(gru_reset_step<T>, units, st, order, s, d.B, H, buf.xproj, p.b_ih, p.b_hh, rz,
           static_cast<const T*>(hn), buf.rh);
    gemm<T>(blas, Op::N, Op::T, d.B, H, H, 1.0f, buf.rh, H, p.w_hh + 2 * H * H, H, 0.0f, hn_new,
            H, st);
    launch(gru_new_step<T, kSave>, units, st, order, s, d.B, H, buf.xproj, p.b_ih, p.b_hh,
           static_cast<const T*>(rz), static_cast<const T*>(hn_new), hn, y, gates, h_prev);
  }
}

template <typename T>
void forward(const GruProblem<T>& p, const Dims& d, const T* h0, T* y, T* hn,
             const GruSaved<T>* saved, Workspace& ws, cudaStream_t st) {
  copy_or_zero(d.B * d.H, h0, hn, st);  // hn holds the running state
  if (d.rows == 0) return;
  const ForwardBuffers<T> buf(ws, d);
  const StepOrder order{d.T_, p.lengths, p.reverse};
  cublasHandle_t blas = cublas_handle(st);
  gemm<T>(blas, Op::N, Op::T, d.rows, d.G, d.I, 1.0f, p.x, d.I, p.w_ih, d.I, 0.0f, buf.xproj,
          d.G, st);
  if (forward_persistent(p, d, order, buf, y, hn, saved, st)) return;
  if (saved) forward_loop<T, true>(p, d, order, buf, y, hn, saved, blas, st);
  else forward_loop<T, false>(p, d, order, buf, y, hn, saved, blas, st);
}

template <typename T>
void backward_steps(const GruProblem<T>& p, const Dims& d, const StepOrder& order,
                    const GruSaved<T>& saved, const T* dy, T* dh, const BackwardBuffers<T>& buf,
                    cublasHandle_t blas, cudaStream_t st) {
  const int64_t H = d.H, G = d.G, units = d.B * d.H;
  for (int64_t s = d.T_ - 1; s >= 0; --s) {
    T* dg = d.blocks ? buf.dgh + order.block_time(s) * d.B * G : buf.dg_step;
    T* scatter = d.blocks ? nullptr : buf.dgh;
    if (d.lbr) {
      launch(gru_lbr_backward_step<T>, units, st, order, s, d.B, H, saved.gates, saved.h_prev,
             dy, dh, dg, scatter, buf.dgx);
      gemm<T>(blas, Op::N, Op::N, d.B, H, G, 1.0f, dg, G, p.w_hh, H, 1.0f, dh, H, st);
      continue;
    }
    launch(gru_blend_backward_step<T>, units, st, order, s, d.B, H, saved.gates, saved.h_prev,
           dy, dh, dg);
    gemm<T>(blas, Op::N, Op::N, d.B, H, H, 1.0f, dg + 2 * H, G, p.w_hh + 2 * H * H, H, 0.0f,
            buf.drh, H, st);
    launch(gru_reset_backward_step<T>, units, st, order, s, d.B, H, saved.gates, saved.h_prev,
           static_cast<const T*>(buf.drh), dg, scatter, dh);
    gemm<T>(blas, Op::N, Op::N, d.B, H, 2 * H, 1.0f, dg, G, p.w_hh, H, 1.0f, dh, H, st);
  }
}

template <typename T>
void backward(const GruProblem<T>& p, const Dims& d, const GruSaved<T>& saved, const T* dy,
              const T* dhn, const GruGrads<T>& g, Workspace& ws, cudaStream_t st) {
  const int64_t H = d.H, G = d.G;
  copy_or_zero(d.B * H, dhn, g.dh0, st);  // dh0 carries the gradient through time
  const BackwardBuffers<T> buf(ws, d);
  const StepOrder order{d.T_, p.lengths, p.reverse};
  cublasHandle_t blas = cublas_handle(st);
  // Padding rows of dgx (and of dgh when steps are scattered) are never written: zero them.
  copy_or_zero<T>(d.rows * G, nullptr, buf.dgx, st);
  if (d.lbr && !d.blocks) copy_or_zero<T>(d.rows * G, nullptr, buf.dgh, st);
  if (!backward_persistent(p, d, order, saved, dy, g.dh0, buf, st))
    backward_steps(p, d, order, saved, dy, g.dh0, buf, blas, st);

  gemm<T>(blas, Op::T, Op::N, G, d.I, d.rows, 1.0f, buf.dgx, G, p.x, d.I, 0.0f, g.dw_ih, d.I, st);
  gemm<T>(blas, Op::N, Op::N, d.rows, d.I, G, 1.0f, buf.dgx, G, p.w_ih, d.I, 0.0f, g.dx, d.I, st);
  if (d.lbr) {
    column_sums(d.rows, G, buf.dgx, G, g.db_ih, static_cast<T*>(nullptr), buf.sums, st);
    column_sums(d.rows, G, buf.dgh, G, g.db_hh, static_cast<T*>(nullptr), buf.sums, st);
    gemm<T>(blas, Op::T, Op::N, G, H, d.rows, 1.0f, buf.dgh, G, saved.h_prev, H, 0.0f, g.dw_hh,
            H, st);
    return;
  }
  column_sums(d.rows, G, buf.dgx, G, g.db_ih, g.db_hh, buf.sums, st);
  // Rows r, z of dw_hh see h_prev; rows n see r * h_prev (recomputed from the saved r).
  gemm<T>(blas, Op::T, Op::N, 2 * H, H, d.rows, 1.0f, buf.dgx, G, saved.h_prev, H, 0.0f, g.dw_hh,
          H, st);
  launch(gru_reset_states<T>, d.rows * H, st, d.rows, H, static_cast<const T*>(saved.gates),
         static_cast<const T*>(saved.h_prev), buf.rh_all);
  gemm<T>(blas, Op::T, Op::N, H, H, d.rows, 1.0f, buf.dgx + 2 * H, G, buf.rh_all, H, 0.0f,
          g.dw_hh + 2 * H * H, H, st);
}

}  // namespace

size_t gru_forward_workspace_bytes(DType dt, const GruProblem<void>& p, bool /*training*/) {
  return layout_bytes<ForwardBuffers>(dt, Dims(p));
}

size_t gru_backward_workspace_bytes(DType dt, const GruProblem<void>& p) {
  return layout_bytes<BackwardBuffers>(dt, Dims(p));
}

void gru_forward(DType dt, const GruProblem<void>& p, const void* h0, void* y, void* hn,
                 const GruSaved<void>* saved, const Context& ctx) {
  const DeviceGuard guard(ctx.device);
  dispatch(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    GruSaved<T> s;
    if (saved) s.gates = as<T>(saved->gates), s.h_prev = as<T>(saved->h_prev);
    Workspace ws(ctx.workspace, ctx.workspace_bytes);
    forward<T>(typed<T>(p), Dims(p), as<T>(h0), as<T>(y), as<T>(hn), saved ? &s : nullptr, ws,
               stream_of(ctx));
  });
}

void gru_backward(DType dt, const GruProblem<void>& p, const GruSaved<void>& saved,
                  const void* dy, const void* dhn, const GruGrads<void>& g, const Context& ctx) {
  const DeviceGuard guard(ctx.device);
  dispatch(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    GruSaved<T> s;
    s.gates = as<T>(saved.gates), s.h_prev = as<T>(saved.h_prev);
    GruGrads<T> gt;
    gt.dx = as<T>(g.dx), gt.dh0 = as<T>(g.dh0), gt.dw_ih = as<T>(g.dw_ih);
    gt.dw_hh = as<T>(g.dw_hh), gt.db_ih = as<T>(g.db_ih), gt.db_hh = as<T>(g.db_hh);
    Workspace ws(ctx.workspace, ctx.workspace_bytes);
    backward<T>(typed<T>(p), Dims(p), s, as<T>(dy), as<T>(dhn), gt, ws, stream_of(ctx));
  });
}

}  // namespace fusedrnn::cuda
