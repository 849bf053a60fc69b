// LSTM sequence kernels. The time loop runs on the thread team: each thread runs slices of
// hidden units (its own, or those it claims each step), keeps their packed slices of w_ih and
// w_hh in its own cache, and per step does their part of the input projection (a chunk of
// steps at a time), of the recurrent GEMM and the fused gate pass; one barrier per step (two
// with a projection, whose outputs are split too). Up to three rows in all (T * B <= 3) run the
// direct loops instead (direct_loop.hpp: no packing, on the caller's thread).
// Backward ends in the weight-gradient GEMMs over all T*B rows.
#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include "argument_checks.hpp"
#include "fusedrnn/fusedrnn.hpp"
#include "scratch.hpp"
#include "sequence.hpp"
#include "step_kernels.hpp"
#include "team_loop.hpp"
#include "time_loops.hpp"

namespace fusedrnn {
namespace {

using cpu::Range;
using cpu::StepOrder;
using cpu::row_at;

template <typename T>
struct LstmDims {
  int64_t T_, B, I, H, P, G;
  explicit LstmDims(const LstmProblem<T>& p)
      : T_(p.steps), B(p.batch), I(p.input), H(p.hidden), P(p.proj), G(4 * p.hidden) {}
};

// The time loop without projection, input projection included (forward_loop: on the team or
// direct). hn holds h0 on entry and the final state on exit; cn likewise for c.
template <typename T>
void forward_team(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                  const T* bias, T* y, T* hn, T* cn, const LstmSaved<T>* saved) {
  const auto& kernels = cpu::step_kernels<T>();
  const int64_t H = d.H;
  auto saved_rows = [&](int64_t s, int64_t b, const Range& u) {
    return std::make_tuple(row_at(saved->gates, order, s, b, d.B, d.G) + u.begin,
                           row_at(saved->c_prev, order, s, b, d.B, H) + u.begin,
                           row_at(saved->h_prev, order, s, b, d.B, H) + u.begin);
  };
  auto row = [&](int64_t s, int64_t b, const Range& u, const T* xr, const T* hr, const T* h,
                 T* h_next, T* yr) {
    T *sg = nullptr, *sc = nullptr, *sh = nullptr;
    if (saved) {
      std::tie(sg, sc, sh) = saved_rows(s, b, u);
      std::copy(h, h + u.size(), sh);
    }
    kernels.lstm_forward(xr, hr, cn + b * H + u.begin, h_next, sg, sc, H, u.size());
    std::copy(h_next, h_next + u.size(), yr);
  };
  auto pad = [&](int64_t s, int64_t b, const Range& u) {
    if (!saved) return;  // never read by backward, but must be finite (0 * x there)
    auto [sg, sc, sh] = saved_rows(s, b, u);
    cpu::fill_gates(sg, 4, H, u.size(), T(0));
    std::fill(sc, sc + u.size(), T(0));
    std::fill(sh, sh + u.size(), T(0));
  };
  cpu::forward_loop(p.x, d.I, p.w_ih, bias, p.w_hh, 4, p.packed, order, d.T_, d.B, H,
                    p.threads, y, hn, row, pad);
}

// With a projection the state h has P values and the step has a second GEMM, h = w_hr h_tilde.
// Each thread also owns a range of those P outputs (outs) and packs what it needs for them.
template <typename T>
struct ProjectionPlan {
  std::vector<Range> outs;                // per thread: its range of the P outputs
  std::vector<cpu::PanelSet<T>> project;  // w_hr rows of its outputs (K = H)
  std::vector<cpu::PanelSet<T>> tilde;    // backward: w_hr columns of its units (K = P)
  std::vector<cpu::PanelSet<T>> state;    // backward: w_hh columns of its outputs (K = 4H)

  // unpacked: the forward's w_hr rows left where they are (cpu::unpacked_weights_pay); or
  // they were packed once for many calls (p.packed).
  ProjectionPlan(const LstmProblem<T>& p, const LstmDims<T>& d, const cpu::TeamPlan<T>& team,
                 int lanes, bool training, bool unpacked = false) {
    for (int t = 0; t < team.threads; ++t) {
      const Range o = cpu::split_range(d.P, team.threads, t, lanes);
      outs.push_back(o);
      cpu::PanelSet<T> pr(d.H, lanes);
      if (p.packed)
        pr.refer_panels(p.packed->hr, p.packed->panels_of(o, 1));
      else if (unpacked)
        pr.refer_gate_columns(p.w_hr, d.H, 1, d.P, o.begin, o.end);
      else
        pr.add_columns(p.w_hr, d.H, 1, o.begin, o.end);
      project.push_back(std::move(pr));
      if (!training) continue;
      cpu::PanelSet<T> ti(d.P, lanes), st(d.G, lanes);
      ti.add_columns(p.w_hr, 1, d.H, team.units[t].begin, team.units[t].end);
      st.add_columns(p.w_hh, 1, d.P, o.begin, o.end);
      tilde.push_back(std::move(ti));
      state.push_back(std::move(st));
    }
  }
};

// The time loop with projection: per step, the gate pass over each thread's units into
// h_tilde, a barrier, then each thread's outputs of h = w_hr h_tilde, a barrier.
template <typename T>
void forward_projected(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                       const T* bias, T* y, T* hn, T* cn, const LstmSaved<T>* saved) {
  const auto& kernels = cpu::step_kernels<T>();
  const bool unpacked = !p.packed && cpu::unpacked_weights_pay(
      d.T_, d.B, (d.G * (d.I + d.P) + d.P * d.H) * int64_t(sizeof(T)));
  cpu::StepProjection<T> xproj(order, d.T_, d.B, d.G, d.I, d.P, p.x, p.w_ih, bias, p.threads);
  const auto plan = cpu::forward_plan(p.w_hh, 4, 4, d.H, d.P, d.B, kernels.panel_lanes,
                                      p.threads, cpu::TeamPlan<T>::kLockstepWorkPerThread, false,
                                      p.packed, unpacked, xproj.loop_weights(), d.I);
  const ProjectionPlan<T> proj(p, d, plan, kernels.panel_lanes, false, unpacked);
  std::vector<T> other(d.B * d.P), hproj(d.B * d.G), h_tilde(d.B * d.H);
  const int64_t H = d.H, P = d.P;

  cpu::parallel_run(plan.threads, [&](int tid, cpu::SpinBarrier& barrier) {
    cpu::LoopParts parts(tid, plan.threads, barrier);
    T* h = hn;
    T* h_next = other.data();
    for (int64_t s = 0; s < d.T_; ++s) {
      for (int part = parts.first(); part < parts.last(); ++part) {
        const Range u = plan.units[part];
        if (xproj.due(s)) parts.one_off([&] { xproj.prepare(kernels, plan.input[part], s); });
        cpu::panel_gemm(kernels, plan.forward[part], d.B, h, P, hproj.data(), d.G, false);
        for (int64_t b = 0; b < d.B; ++b) {
          T* sg = saved ? row_at(saved->gates, order, s, b, d.B, d.G) + u.begin : nullptr;
          T* sc = saved ? row_at(saved->c_prev, order, s, b, d.B, H) + u.begin : nullptr;
          if (order.valid(s, b)) {
            kernels.lstm_forward(xproj.row(s, b) + u.begin, hproj.data() + b * d.G + u.begin,
                                 cn + b * H + u.begin, h_tilde.data() + b * H + u.begin, sg,
                                 sc, H, u.size());
          } else if (saved) {  // never read by backward, but must be finite (0 * x there)
            cpu::fill_gates(sg, 4, H, u.size(), T(0));
            std::fill(sc, sc + u.size(), T(0));
          }
        }
      }
      if (!parts.sync(barrier, 2 * (d.T_ - 1 - s) + 1)) return;
      for (int part = parts.first(); part < parts.last(); ++part) {
        const Range o = proj.outs[part];
        cpu::panel_gemm(kernels, proj.project[part], d.B, h_tilde.data(), H, h_next, P, false);
        for (int64_t b = 0; b < d.B; ++b) {
          const T* hb = h + b * P + o.begin;
          T* hx = h_next + b * P + o.begin;
          T* yr = row_at(y, order, s, b, d.B, P) + o.begin;
          T* sh = saved ? row_at(saved->h_prev, order, s, b, d.B, P) + o.begin : nullptr;
          if (order.valid(s, b)) {
            std::copy(hx, hx + o.size(), yr);
            if (sh) std::copy(hb, hb + o.size(), sh);
          } else {  // padding: the state carries over, y is 0
            std::copy(hb, hb + o.size(), hx);
            std::fill(yr, yr + o.size(), T(0));
            if (sh) std::fill(sh, sh + o.size(), T(0));
          }
        }
      }
      if (!parts.sync(barrier, 2 * (d.T_ - 1 - s))) return;
      std::swap(h, h_next);
    }
    for (int part = parts.first(); part < parts.last(); ++part)
      cpu::settle_columns(h, hn, d.B, P, proj.outs[part].begin, proj.outs[part].end);
  }, true);
}

// Backward time loop without projection (backward_loop: on the team or direct). dgates is
// time-major [T, B, 4H]; dh holds dhn on entry and dh0 on exit; dc likewise.
template <typename T>
void backward_team(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                   const LstmSaved<T>& saved, const T* dy, T* dgates, T* dh, T* dc) {
  const auto& kernels = cpu::step_kernels<T>();
  const int64_t H = d.H;
  auto row = [&](int64_t s, int64_t b, const Range& u, const T* dh_row, T* dg, T* dh_next) {
    kernels.lstm_backward(row_at(saved.gates, order, s, b, d.B, d.G) + u.begin,
                          row_at(saved.c_prev, order, s, b, d.B, H) + u.begin, dh_row,
                          dc + b * H + u.begin, dg, nullptr, H, u.size());
    std::fill(dh_next, dh_next + u.size(), T(0));  // the LSTM's h reaches h_prev via w_hh only
  };
  cpu::backward_loop(p.w_hh, 4, order, d.T_, d.B, H, p.threads, dy, dgates, dh, row);
}

// Backward with projection: per step, each thread adds dy to its outputs' dh (dh_out keeps
// it for dW_hr); after a barrier, dh_tilde = dh @ w_hr and the gate pass over its units
// (h_tilde recomputed for dW_hr); after another, its outputs of dh_prev = dG @ w_hh. dh_out
// and h_tilde are step-major (any order serves dW_hr = sum_t dh_t^T h_tilde_t).
template <typename T>
void backward_projected(const LstmProblem<T>& p, const LstmDims<T>& d, const StepOrder& order,
                        const LstmSaved<T>& saved, const T* dy, T* dgates, T* dh, T* dc,
                        T* dh_out, T* h_tilde) {
  const auto& kernels = cpu::step_kernels<T>();
  const cpu::TeamPlan<T> plan(p.w_hh, 4, d.H, d.P, d.B, kernels.panel_lanes, cpu::Panels::none,
                              p.threads,  // ProjectionPlan packs what this loop needs
                              cpu::TeamPlan<T>::kLockstepWorkPerThread);
  const ProjectionPlan<T> proj(p, d, plan, kernels.panel_lanes, true);
  const int64_t H = d.H, P = d.P, G = d.G;
  const bool blocks = order.steps_are_blocks();
  std::vector<T> dstep(blocks ? 0 : 2 * d.B * G), other(d.B * P), dh_tilde(d.B * H);

  cpu::parallel_run(plan.threads, [&](int tid, cpu::SpinBarrier& barrier) {
    cpu::LoopParts parts(tid, plan.threads, barrier);
    T* dh_cur = dh;
    T* dh_next = other.data();
    for (int64_t s = d.T_ - 1; s >= 0; --s) {
      T* dho = dh_out + s * d.B * P;
      for (int part = parts.first(); part < parts.last(); ++part) {
        const Range o = proj.outs[part];
        for (int64_t b = 0; b < d.B; ++b) {
          T* dhb = dh_cur + b * P + o.begin;
          T* dob = dho + b * P + o.begin;
          T* dhx = dh_next + b * P + o.begin;
          if (order.valid(s, b)) {
            const T* dyr = row_at(dy, order, s, b, d.B, P) + o.begin;
            for (int64_t j = 0; j < o.size(); ++j) dhb[j] += dyr[j];
            std::copy(dhb, dhb + o.size(), dob);
            std::fill(dhx, dhx + o.size(), T(0));
          } else {  // padding: the gradient passes through
            std::fill(dob, dob + o.size(), T(0));
            std::copy(dhb, dhb + o.size(), dhx);
          }
        }
      }
      if (!parts.sync(barrier, 2 * s + 1)) return;
      T* dg_step = blocks ? dgates + order.block_time(s) * d.B * G
                          : dstep.data() + (s & 1) * d.B * G;
      for (int part = parts.first(); part < parts.last(); ++part) {
        const Range u = plan.units[part];
        cpu::panel_gemm(kernels, proj.tilde[part], d.B, dho, P, dh_tilde.data(), H, false);
        for (int64_t b = 0; b < d.B; ++b) {
          T* dg = dg_step + b * G + u.begin;
          T* ht = h_tilde + (s * d.B + b) * H + u.begin;
          if (!order.valid(s, b)) {
            cpu::fill_gates(dg, 4, H, u.size(), T(0));
            std::fill(ht, ht + u.size(), T(0));
            continue;
          }
          kernels.lstm_backward(row_at(saved.gates, order, s, b, d.B, G) + u.begin,
                                row_at(saved.c_prev, order, s, b, d.B, H) + u.begin,
                                dh_tilde.data() + b * H + u.begin, dc + b * H + u.begin, dg, ht,
                                H, u.size());
          if (!blocks) cpu::copy_gates(dg, row_at(dgates, order, s, b, d.B, G) + u.begin, 4, H,
                                       u.size());
        }
      }
      if (!parts.sync(barrier, 2 * s)) return;
      for (int part = parts.first(); part < parts.last(); ++part)
        cpu::panel_gemm(kernels, proj.state[part], d.B, dg_step, G, dh_next, P, true);
      std::swap(dh_cur, dh_next);
    }
    for (int part = parts.first(); part < parts.last(); ++part)
      cpu::settle_columns(dh_cur, dh, d.B, P, proj.outs[part].begin, proj.outs[part].end);
  }, true);
}

}  // namespace

template <typename T>
void lstm_forward(const LstmProblem<T>& p, const T* h0, const T* c0, T* y, T* hn, T* cn,
                  const LstmSaved<T>* saved) {
  cpu::check_forward(p, h0, c0, y, hn, cn, saved);
  const LstmDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  cpu::copy_or_zero(d.B * d.P, h0, hn);  // hn and cn hold the running state
  cpu::copy_or_zero(d.B * d.H, c0, cn);
  if (d.T_ == 0 || d.B == 0) return;

  const std::vector<T> bias = cpu::bias_sum(d.G, p.b_ih, p.b_hh);
  const T* b = bias.empty() ? nullptr : bias.data();
  if (p.w_hr)
    forward_projected(p, d, order, b, y, hn, cn, saved);
  else
    forward_team(p, d, order, b, y, hn, cn, saved);
}

template <typename T>
void lstm_backward(const LstmProblem<T>& p, const LstmSaved<T>& saved, const T* dy,
                   const T* dhn, const T* dcn, const LstmGrads<T>& g) {
  cpu::check_backward(p, saved, dy, dhn, dcn, g);
  const LstmDims<T> d(p);
  const StepOrder order(d.T_, p.lengths, p.reverse);
  const bool proj = p.w_hr != nullptr;
  const int64_t rows = d.T_ * d.B;

  cpu::copy_or_zero(d.B * d.P, dhn, g.dh0);  // dh0 and dc0 carry the gradients through time
  cpu::copy_or_zero(d.B * d.H, dcn, g.dc0);
  cpu::Scratch<T> dgates(rows * d.G);  // time-major, for the weight GEMMs
  if (p.lengths) dgates.fill(T(0));    // not every padding row is written
  cpu::Scratch<T> dh_out(proj ? rows * d.P : 0), h_tilde(proj ? rows * d.H : 0);
  if (rows > 0) {
    if (proj)
      backward_projected(p, d, order, saved, dy, dgates.data(), g.dh0, g.dc0, dh_out.data(),
                         h_tilde.data());
    else
      backward_team(p, d, order, saved, dy, dgates.data(), g.dh0, g.dc0);
  }

  // The weight and input gradients: one GEMM each over all T*B rows.
  cpu::parallel_gemm<T>(p.threads, true, false, d.G, d.I, rows, dgates.data(), d.G, p.x, d.I, T(0),
                        g.dw_ih, d.I);
  cpu::parallel_gemm<T>(p.threads, false, false, rows, d.I, d.G, dgates.data(), d.G, p.w_ih, d.I, T(0),
                        g.dx, d.I);
  cpu::parallel_gemm<T>(p.threads, true, false, d.G, d.P, rows, dgates.data(), d.G, saved.h_prev, d.P,
                        T(0), g.dw_hh, d.P);
  cpu::column_sums(rows, d.G, dgates.data(), g.db_ih);  // both biases get the same sum
  if (g.db_ih && g.db_hh) std::copy(g.db_ih, g.db_ih + d.G, g.db_hh);
  else cpu::column_sums(rows, d.G, dgates.data(), g.db_hh);
  if (proj)
    cpu::parallel_gemm<T>(p.threads, true, false, d.P, d.H, rows, dh_out.data(), d.P, h_tilde.data(), d.H,
                          T(0), g.dw_hr, d.H);
}

template void lstm_forward<float>(const LstmProblem<float>&, const float*, const float*, float*,
                                  float*, float*, const LstmSaved<float>*);
template void lstm_forward<double>(const LstmProblem<double>&, const double*, const double*,
                                   double*, double*, double*, const LstmSaved<double>*);
template void lstm_backward<float>(const LstmProblem<float>&, const LstmSaved<float>&,
                                   const float*, const float*, const float*,
                                   const LstmGrads<float>&);
template void lstm_backward<double>(const LstmProblem<double>&, const LstmSaved<double>&,
                                    const double*, const double*, const double*,
                                    const LstmGrads<double>&);

}  // namespace fusedrnn
