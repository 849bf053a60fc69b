// Persistent forward kernels for small batches (cuDNN's PERSIST algorithms): the whole time
// loop is one cooperative launch. Block k owns hidden units [k*U, (k+1)*U) and keeps their
// rows of w_hh (G*U rows of P values, in float32) in shared memory for all T steps, so w_hh is
// read from DRAM once per call instead of once per step; per step it reads the state h
// [B, P] (from L2), computes its gates' recurrent products, runs the same pointwise math as
// the per-step kernels and writes its units of the next state. No grid barrier ends the step:
// the state is double-buffered in h_buf [2, B, P] as tagged words (tagged_state.cuh), step s
// waits for the words of h_buf[s & 1] tagged s + 1 and writes h_buf[(s + 1) & 1] tagged s + 2.
//
// Scope: the LSTM without projection and the linear_before_reset GRU, forward and backward
// (see "backward" below), when the slices fit in shared memory; everything else takes the
// cuBLAS path.
// The forward runs by default where an H100 measured it faster (persistent_by_default);
// FUSEDRNN_CUDA_PERSISTENT=1 forces both directions wherever they fit, =0 turns them off.
//
// The block's work per step is a device function over block-stride loops, so that the host
// emulation (tests/cuda_emulation) can run it block after block, step after step.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "api.hpp"
#include "cuda_check.hpp"
#include "fusedrnn/gate_math.hpp"
#include "half_types.cuh"
#include "reductions.cuh"
#include "step_order.cuh"
#include "tagged_state.cuh"

#if !defined(FUSEDRNN_CUDA_EMULATION)
#include <cooperative_groups.h>
#endif

namespace fusedrnn::cuda {

constexpr int kPersistentThreads = 512;
constexpr int64_t kPersistentMaxBatch = 32;  // the most FUSEDRNN_CUDA_PERSISTENT=1 takes
constexpr int kMaxDotSplit = 32;

// Threads that share one dot product when a block computes n of them: the largest power of two
// with n * split <= kPersistentThreads, at most kMaxDotSplit. A function of n alone, not of
// blockDim, so that the host emulation (one thread a block) sums in the GPU's order.
__host__ __device__ constexpr int dot_split(int64_t n) {
  int split = 1;
  while (split < kMaxDotSplit && 2 * split * n <= kPersistentThreads) split *= 2;
  return split;
}

// out[o] = dot(o, c, split) summed over c < split = dot_split(n), for o < n, where dot(o, c,
// split) sums the terms k = c, c + split, ... of dot product o: neighbouring threads take
// neighbouring k (no bank conflicts in shared memory, coalesced loads from global), and each
// sums K / split terms instead of K, which at B = 1 cut the serial chain from H to H / 32.
// `partial` holds kPersistentThreads floats. Ends with __syncthreads().
template <typename Dot>
__device__ void split_dots(int n, Dot dot, float* __restrict__ partial,
                           float* __restrict__ out) {
  const int split = dot_split(n);
  float* sums = split == 1 ? out : partial;
  for (int i = threadIdx.x; i < n * split; i += blockDim.x)
    sums[i] = dot(i / split, i % split, split);
  __syncthreads();
  if (split == 1) return;
  for (int o = threadIdx.x; o < n; o += blockDim.x) {
    float sum = 0.0f;
    for (int c = 0; c < split; ++c) sum += partial[o * split + c];
    out[o] = sum;
  }
  __syncthreads();
}

// How a persistent launch splits the units; ok false: it does not fit, take the cuBLAS path.
struct PersistentPlan {
  bool ok = false;
  int blocks = 0;
  int64_t units = 0;  // U: units per block (the last block may have fewer)
  size_t smem = 0;    // dynamic shared memory per block, bytes
};

// Forward shared memory (floats): w [G*U][P+1], h [B][P+1], acc [B][G*U], then split_dots'
// partial sums [kPersistentThreads]. (The rows' padding to P + 1 is a leftover of one thread a
// row; with neighbouring threads on neighbouring k it costs nothing.)
inline size_t forward_smem_bytes(int64_t gates, int64_t U, int64_t B, int64_t P) {
  return sizeof(float) * static_cast<size_t>(gates * U * (P + 1) + B * (P + 1) + B * gates * U +
                                             kPersistentThreads);
}

// Backward shared memory (floats): the block's columns of w_hh, w [U][G*H], the sums
// [B][U] and split_dots' partial sums [kPersistentThreads].
inline size_t backward_smem_bytes(int64_t gates, int64_t U, int64_t B, int64_t H) {
  return sizeof(float) * static_cast<size_t>(gates * H * U + B * U + kPersistentThreads);
}

enum class LoopDirection { kForward, kBackward };

// Where the persistent kernels beat the per-step path on an H100 (bench/cuda_paths.py and
// bench/compare.py; the figures are in csrc/cuda/README.md), which is where they run by
// default. Forward: 1.2-3.0x at B <= 32, H <= 256 and 2.0-2.2x at B = 1, H = 512; 0.81-0.96x
// at B = 8, H = 512; even at B = 32, H = 1024. Backward (two grid barriers a step): timed
// alone, 1.2-1.4x at B = 1, H = 128 only, and 0.2-0.9x elsewhere; after a forward (training)
// it lost there too (LSTM 1000x1x128 12.2 ms against 10.6, GRU 10.2 against 9.6), since the
// host enqueues the per-step backward while the persistent forward runs. So: forward only.
inline bool persistent_by_default(LoopDirection direction, int64_t B, int64_t H) {
  if (direction == LoopDirection::kBackward) return false;
  return (B <= 32 && H <= 256) || (B == 1 && H <= 512);
}

// FUSEDRNN_CUDA_PERSISTENT=1: wherever it fits (B <= kPersistentMaxBatch); =0: never; unset:
// persistent_by_default.
inline bool persistent_wanted(LoopDirection direction, int64_t B, int64_t H) {
  const char* v = std::getenv("FUSEDRNN_CUDA_PERSISTENT");
  if (v && std::strcmp(v, "0") == 0) return false;
  if (v && std::strcmp(v, "1") == 0) return B <= kPersistentMaxBatch;
  return persistent_by_default(direction, B, H);
}

// One block per multiprocessor (a cooperative launch needs every block resident at once):
// U = ceil(H / SMs) units per block. `smem_for(U)`: the bytes a block needs; `fits(blocks,
// smem)`: the device's per-block limit allows it and all blocks can be resident.
template <typename SmemFor, typename Fits>
PersistentPlan plan_persistent(LoopDirection direction, int64_t B, int64_t H, int sms,
                               SmemFor smem_for, Fits fits) {
  PersistentPlan plan;
  if (!persistent_wanted(direction, B, H) || H == 0 || sms <= 0) return plan;
  plan.units = (H + sms - 1) / sms;
  plan.blocks = static_cast<int>((H + plan.units - 1) / plan.units);
  plan.smem = smem_for(plan.units);
  plan.ok = fits(plan.blocks, plan.smem);
  return plan;
}

// Block `block`'s rows of w [gates*H, P]: local row k*U + jl is gate k of unit block*U + jl
// (zeros past H).
template <typename T>
__device__ void load_weight_slice(const T* __restrict__ w, int64_t gates, int64_t H, int64_t P,
                                  int64_t U, int block, float* __restrict__ w_s) {
  const int64_t u0 = int64_t(block) * U, ld = P + 1;
  for (int64_t i = threadIdx.x; i < gates * U * P; i += blockDim.x) {
    const int64_t r = i / P, k = i - r * P, g = r / U, j = u0 + (r - g * U);
    w_s[r * ld + k] = j < H ? to_float(w[(g * H + j) * P + k]) : 0.0f;
  }
}

// Block `block`'s columns of w [gates*H, H], transposed: w_s[jl * gates*H + r] = w[r, block*U
// + jl] (zeros past H), for the backward's dh_prev = dG @ w_hh restricted to the block's units.
template <typename T>
__device__ void load_weight_columns(const T* __restrict__ w, int64_t gates, int64_t H,
                                    int64_t U, int block, float* __restrict__ w_s) {
  const int64_t u0 = int64_t(block) * U, G = gates * H;
  for (int64_t i = threadIdx.x; i < G * U; i += blockDim.x) {
    const int64_t r = i / U, jl = i - r * U, j = u0 + jl;
    w_s[jl * G + r] = j < H ? to_float(w[r * H + j]) : 0.0f;
  }
}

// acc [B][rows] = h_s [B][P] @ w_s[rows][P]^T, after loading the state h [B, P] tagged `tag`
// into h_s (tagged_state.cuh); `partial` as split_dots'.
__device__ inline void recurrent_products(const TaggedWord* __restrict__ h, uint32_t tag,
                                          const float* __restrict__ w_s, int64_t rows,
                                          int64_t B, int64_t P, float* __restrict__ h_s,
                                          float* __restrict__ acc,
                                          float* __restrict__ partial) {
  const int64_t ld = P + 1;
  for (int64_t i = threadIdx.x; i < B * P; i += blockDim.x) {
    const int64_t b = i / P;
    h_s[b * ld + (i - b * P)] = wait_tagged(h + i, tag);
  }
  __syncthreads();
  split_dots(static_cast<int>(B * rows), [&](int o, int c, int split) {
    const int64_t b = o / rows, r = o - b * rows;
    const float* wr = w_s + r * ld;
    const float* hb = h_s + b * ld;
    float sum = 0.0f;
    for (int64_t k = c; k < P; k += split) sum += wr[k] * hb[k];
    return sum;
  }, partial, acc);
}

// A step's per-(b, j) inputs besides the recurrent products (load(row, b, j) -> Inputs), for
// the thread's first item of the step's unit loop (i = threadIdx.x), loaded before the state
// arrives so that their latency hides behind that wait; the loop loads its other items' itself.
template <typename Inputs, typename Load>
__device__ Inputs first_inputs(const StepOrder& order, int64_t s, int64_t B, int64_t H,
                               int64_t U, int block, Load load) {
  Inputs v{};
  const int64_t i = threadIdx.x, b = i / U, j = int64_t(block) * U + (i - b * U);
  if (i < B * U && j < H && order.valid(s, b)) v = load(order.time(s, b) * B + b, b, j);
  return v;
}

// ---------------------------------------------------------------- LSTM

template <typename T>
struct PersistentLstm {
  StepOrder order;
  int64_t B, H, U;
  const T *xproj, *w_hh, *b_ih, *b_hh;  // xproj [T, B, 4H]; w_hh [4H, H]
  TaggedWord* h_buf;                    // [2, B, H], tagged_state.cuh
  T *c, *y;                             // c [B, H] in place; y [T, B, H]
  T *gates, *c_prev, *h_prev;           // saved (training) or null
};

// Gate k's input side (x projection plus both biases) and the cell state of (row, b, j).
struct LstmInputs {
  float in[4], c;
};

template <typename T, bool kSave>
__device__ void lstm_persistent_step(const PersistentLstm<T>& p, int64_t s, int block,
                                     float* smem) {
  const int64_t B = p.B, H = p.H, U = p.U, G = 4 * H, u0 = int64_t(block) * U, ld = H + 1;
  const uint32_t tag = static_cast<uint32_t>(s + 1);  // of the state before step s
  TaggedWord* h_next = p.h_buf + ((s + 1) & 1) * B * H;
  float* h_s = smem + 4 * U * ld;
  float* acc = h_s + B * ld;
  const auto load = [&](int64_t row, int64_t b, int64_t j) {
    LstmInputs v;
    for (int k = 0; k < 4; ++k) {
      const int64_t u = k * H + j;
      v.in[k] = to_float(p.xproj[row * G + u]) + load_or_zero(p.b_ih, u) +
                load_or_zero(p.b_hh, u);
    }
    v.c = to_float(p.c[b * H + j]);
    return v;
  };
  const LstmInputs first = first_inputs<LstmInputs>(p.order, s, B, H, U, block, load);
  recurrent_products(p.h_buf + (s & 1) * B * H, tag, smem, 4 * U, B, H, h_s, acc,
                     acc + B * 4 * U);
  for (int64_t i = threadIdx.x; i < B * U; i += blockDim.x) {
    const int64_t b = i / U, jl = i - b * U, j = u0 + jl;
    if (j >= H) continue;
    const int64_t row = p.order.time(s, b) * B + b;
    const float h_old = h_s[b * ld + j];
    if (!p.order.valid(s, b)) {  // padding: the state carries over, y and saved rows are 0
      store_tagged(h_next + b * H + j, h_old, tag + 1);
      p.y[row * H + j] = from_float<T>(0.0f);
      if (kSave) {
        for (int k = 0; k < 4; ++k) p.gates[row * G + k * H + j] = from_float<T>(0.0f);
        p.c_prev[row * H + j] = p.h_prev[row * H + j] = from_float<T>(0.0f);
      }
      continue;
    }
    const LstmInputs v = i == threadIdx.x ? first : load(row, b, j);
    float a[4];
    for (int k = 0; k < 4; ++k) a[k] = v.in[k] + acc[b * 4 * U + k * U + jl];
    const auto r = math::lstm_forward_point<math::StdActivations>(a[0], a[1], a[2], a[3], v.c);
    if (kSave) {
      const float g[4] = {r.i, r.f, r.g, r.o};
      for (int k = 0; k < 4; ++k) p.gates[row * G + k * H + j] = from_float<T>(g[k]);
      p.c_prev[row * H + j] = from_float<T>(v.c);
      p.h_prev[row * H + j] = from_float<T>(h_old);
    }
    p.c[b * H + j] = from_float<T>(r.c);
    const T h = from_float<T>(r.h);
    p.y[row * H + j] = h;
    store_tagged(h_next + b * H + j, to_float(h), tag + 1);
  }
}

// ---------------------------------------------------------------- GRU (linear_before_reset)

template <typename T>
struct PersistentGru {
  StepOrder order;
  int64_t B, H, U;
  const T *xproj, *w_hh, *b_ih, *b_hh;  // xproj [T, B, 3H]; w_hh [3H, H]
  TaggedWord* h_buf;                    // [2, B, H], tagged_state.cuh
  T* y;                                 // [T, B, H]
  T *gates, *h_prev;                    // saved (training: gates [T, B, 4H]) or null
};

// The input sides of (row, j): r and z with both biases, n with b_ih's, and b_hh's n bias.
struct GruInputs {
  float r, z, x_n, b_hn;
};

template <typename T, bool kSave>
__device__ void gru_persistent_step(const PersistentGru<T>& p, int64_t s, int block,
                                    float* smem) {
  const int64_t B = p.B, H = p.H, U = p.U, G = 3 * H, S = 4 * H, u0 = int64_t(block) * U;
  const int64_t ld = H + 1;
  const uint32_t tag = static_cast<uint32_t>(s + 1);  // of the state before step s
  TaggedWord* h_next = p.h_buf + ((s + 1) & 1) * B * H;
  float* h_s = smem + 3 * U * ld;
  float* acc = h_s + B * ld;
  const auto load = [&](int64_t row, int64_t, int64_t j) {
    const T* xr = p.xproj + row * G;
    const auto bias = [&](int64_t u) { return load_or_zero(p.b_ih, u) + load_or_zero(p.b_hh, u); };
    return GruInputs{to_float(xr[j]) + bias(j), to_float(xr[H + j]) + bias(H + j),
                     to_float(xr[2 * H + j]) + load_or_zero(p.b_ih, 2 * H + j),
                     load_or_zero(p.b_hh, 2 * H + j)};
  };
  const GruInputs first = first_inputs<GruInputs>(p.order, s, B, H, U, block, load);
  recurrent_products(p.h_buf + (s & 1) * B * H, tag, smem, 3 * U, B, H, h_s, acc,
                     acc + B * 3 * U);
  for (int64_t i = threadIdx.x; i < B * U; i += blockDim.x) {
    const int64_t b = i / U, jl = i - b * U, j = u0 + jl;
    if (j >= H) continue;
    const int64_t row = p.order.time(s, b) * B + b;
    const float h_old = h_s[b * ld + j];
    if (!p.order.valid(s, b)) {
      store_tagged(h_next + b * H + j, h_old, tag + 1);
      p.y[row * H + j] = from_float<T>(0.0f);
      if (kSave) {
        for (int k = 0; k < 4; ++k) p.gates[row * S + k * H + j] = from_float<T>(0.0f);
        p.h_prev[row * H + j] = from_float<T>(0.0f);
      }
      continue;
    }
    const GruInputs v = i == threadIdx.x ? first : load(row, b, j);
    const float* hr = acc + b * 3 * U + jl;  // gate k at hr[k * U]
    const float hn_lin = hr[2 * U] + v.b_hn;
    const auto r = math::gru_forward_point_lbr<math::StdActivations>(v.r + hr[0], v.z + hr[U],
                                                                     v.x_n, hn_lin, h_old);
    if (kSave) {
      const float g[4] = {r.r, r.z, r.n, hn_lin};
      for (int k = 0; k < 4; ++k) p.gates[row * S + k * H + j] = from_float<T>(g[k]);
      p.h_prev[row * H + j] = from_float<T>(h_old);
    }
    const T h = from_float<T>(r.h);
    p.y[row * H + j] = h;
    store_tagged(h_next + b * H + j, to_float(h), tag + 1);
  }
}

// ---------------------------------------------------------------- backward
// Per step two phases with a grid barrier after each: (A) the pointwise backward of the block's
// units for every row, writing the gate gradients into the time-major dG array the weight
// GEMMs read anyway, and the direct part of dh_prev; (B) dh_prev[:, units] += dG_step @
// w_hh[:, units] with the block's columns of w_hh in shared memory and the step's dG rows read
// from L2. dh is double-buffered in dh_buf [2, B, H]: the i-th step processed (s = T-1-i)
// reads dh_buf[i & 1] and writes dh_buf[(i + 1) & 1].

template <typename T>
struct PersistentLstmBackward {
  StepOrder order;
  int64_t B, H, U;
  const T *w_hh, *gates, *c_prev, *dy;  // saved gates [T, B, 4H], c_prev [T, B, H]; dy [T, B, H]
  T *dh_buf, *dc, *dgates;              // dc [B, H] in place; dgates [T, B, 4H], every row
};

template <typename T>
__device__ void lstm_backward_phase_a(const PersistentLstmBackward<T>& p, int64_t s, int block,
                                      float*) {
  const int64_t B = p.B, H = p.H, U = p.U, G = 4 * H, u0 = int64_t(block) * U;
  const int64_t i_step = p.order.steps - 1 - s;
  const T* dh_cur = p.dh_buf + (i_step & 1) * B * H;
  T* dh_next = p.dh_buf + ((i_step + 1) & 1) * B * H;
  for (int64_t i = threadIdx.x; i < B * U; i += blockDim.x) {
    const int64_t b = i / U, j = u0 + (i - b * U);
    if (j >= H) continue;
    const int64_t row = p.order.time(s, b) * B + b;
    T* dg = p.dgates + row * G;
    if (!p.order.valid(s, b)) {  // padding: the gradient passes through
      for (int k = 0; k < 4; ++k) dg[k * H + j] = from_float<T>(0.0f);
      dh_next[b * H + j] = dh_cur[b * H + j];
      continue;
    }
    const T* g = p.gates + row * G;
    const float dh_total = to_float(dh_cur[b * H + j]) + to_float(p.dy[row * H + j]);
    const auto r = math::lstm_backward_point<math::StdActivations>(
        to_float(g[j]), to_float(g[H + j]), to_float(g[2 * H + j]), to_float(g[3 * H + j]),
        to_float(p.c_prev[row * H + j]), dh_total, to_float(p.dc[b * H + j]));
    const float da[4] = {r.da_i, r.da_f, r.da_g, r.da_o};
    for (int k = 0; k < 4; ++k) dg[k * H + j] = from_float<T>(da[k]);
    p.dc[b * H + j] = from_float<T>(r.dc_prev);
    dh_next[b * H + j] = from_float<T>(0.0f);  // an LSTM's h reaches h_prev through w_hh only
  }
}

// dh_next[b, j] += sum_r dG[row(b)][r] * w[r][j] over valid rows, for the block's units; smem
// as backward_smem_bytes: w_s [U][G], then the sums [B][U] and split_dots' partial sums. The
// step's dG rows are read from global memory (L2), neighbouring threads on neighbouring r.
template <typename T>
__device__ void recurrent_gradient(const StepOrder& order, int64_t s, int64_t B, int64_t H,
                                   int64_t U, int64_t gates, const T* __restrict__ dg_all,
                                   float* __restrict__ smem, T* __restrict__ dh_next,
                                   int block) {
  const int64_t G = gates * H, u0 = int64_t(block) * U;
  const float* w_s = smem;
  float* sums = smem + G * U;
  split_dots(static_cast<int>(B * U), [&](int o, int c, int split) {
    const int64_t b = o / U, jl = o - b * U;
    const T* dg = dg_all + (order.time(s, b) * B + b) * G;  // padding rows: zeros, unused
    const float* w = w_s + jl * G;
    float sum = 0.0f;
    for (int64_t r = c; r < G; r += split) sum += to_float(dg[r]) * w[r];
    return sum;
  }, sums + B * U, sums);
  for (int64_t i = threadIdx.x; i < B * U; i += blockDim.x) {
    const int64_t b = i / U, j = u0 + (i - b * U);
    if (j >= H || !order.valid(s, b)) continue;
    dh_next[b * H + j] = from_float<T>(to_float(dh_next[b * H + j]) + sums[i]);
  }
}

template <typename T>
__device__ void lstm_backward_phase_b(const PersistentLstmBackward<T>& p, int64_t s, int block,
                                      float* smem) {
  const int64_t i_step = p.order.steps - 1 - s;
  recurrent_gradient(p.order, s, p.B, p.H, p.U, 4, p.dgates, smem,
                     p.dh_buf + ((i_step + 1) & 1) * p.B * p.H, block);
}

template <typename T>
struct PersistentGruBackward {
  StepOrder order;
  int64_t B, H, U;
  const T *w_hh, *gates, *h_prev, *dy;  // saved gates [T, B, 4H], h_prev [T, B, H]
  T *dh_buf, *dgx, *dgh;                // dgx, dgh [T, B, 3H], every row written
};

template <typename T>
__device__ void gru_backward_phase_a(const PersistentGruBackward<T>& p, int64_t s, int block,
                                     float*) {
  const int64_t B = p.B, H = p.H, U = p.U, G = 3 * H, S = 4 * H, u0 = int64_t(block) * U;
  const int64_t i_step = p.order.steps - 1 - s;
  const T* dh_cur = p.dh_buf + (i_step & 1) * B * H;
  T* dh_next = p.dh_buf + ((i_step + 1) & 1) * B * H;
  for (int64_t i = threadIdx.x; i < B * U; i += blockDim.x) {
    const int64_t b = i / U, j = u0 + (i - b * U);
    if (j >= H) continue;
    const int64_t row = p.order.time(s, b) * B + b;
    T* dgh = p.dgh + row * G;
    T* dgx = p.dgx + row * G;
    if (!p.order.valid(s, b)) {
      for (int k = 0; k < 3; ++k) dgh[k * H + j] = dgx[k * H + j] = from_float<T>(0.0f);
      dh_next[b * H + j] = dh_cur[b * H + j];
      continue;
    }
    const T* g = p.gates + row * S;
    const float r = to_float(g[j]), z = to_float(g[H + j]), n = to_float(g[2 * H + j]);
    const float dh_total = to_float(dh_cur[b * H + j]) + to_float(p.dy[row * H + j]);
    const auto bg = math::gru_blend_backward(z, n, to_float(p.h_prev[row * H + j]), dh_total);
    const float da_r = math::sigmoid_grad(r, bg.da_n * to_float(g[3 * H + j]));
    const float h_side[3] = {da_r, bg.da_z, bg.da_n * r};
    const float x_side[3] = {da_r, bg.da_z, bg.da_n};
    for (int k = 0; k < 3; ++k) {
      dgh[k * H + j] = from_float<T>(h_side[k]);
      dgx[k * H + j] = from_float<T>(x_side[k]);
    }
    dh_next[b * H + j] = from_float<T>(bg.dh_prev);  // the direct path z * dh
  }
}

template <typename T>
__device__ void gru_backward_phase_b(const PersistentGruBackward<T>& p, int64_t s, int block,
                                     float* smem) {
  const int64_t i_step = p.order.steps - 1 - s;
  recurrent_gradient(p.order, s, p.B, p.H, p.U, 3, p.dgh, smem,
                     p.dh_buf + ((i_step + 1) & 1) * p.B * p.H, block);
}

// ---------------------------------------------------------------- launching

template <typename Params>
using PersistentPhase = void (*)(const Params&, int64_t, int, float*);

#if !defined(FUSEDRNN_CUDA_EMULATION)
// A cooperative launch still, for its promise that every block is resident at once: a block
// waiting for a word that an unscheduled block would write would wait forever.
template <typename Params, PersistentPhase<Params> Step>
__global__ void __launch_bounds__(kPersistentThreads)
    persistent_forward(Params p, int gates) {
  extern __shared__ float smem[];
  load_weight_slice(p.w_hh, gates, p.H, p.H, p.U, blockIdx.x, smem);
  __syncthreads();
  for (int64_t s = 0; s < p.order.steps; ++s) {
    Step(p, s, blockIdx.x, smem);
    // No grid barrier: the next step waits for the state words it reads (tagged_state.cuh).
    // The block's own shared memory must not be refilled while a thread still reads it.
    __syncthreads();
  }
}

template <typename Params, PersistentPhase<Params> PhaseA, PersistentPhase<Params> PhaseB>
__global__ void __launch_bounds__(kPersistentThreads)
    persistent_backward(Params p, int gates) {
  extern __shared__ float smem[];
  cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  load_weight_columns(p.w_hh, gates, p.H, p.U, blockIdx.x, smem);
  __syncthreads();
  for (int64_t s = p.order.steps - 1; s >= 0; --s) {
    PhaseA(p, s, blockIdx.x, smem);
    grid.sync();  // the step's gate gradients of every unit are written
    PhaseB(p, s, blockIdx.x, smem);
    grid.sync();  // every block's units of dh_prev are written
  }
}

// Can `kernel` run `blocks` blocks of kPersistentThreads threads with `smem` bytes each, all
// resident at once, on the current device?
template <typename Kernel>
bool persistent_fits(Kernel kernel, int blocks, size_t smem) {
  int device = 0, coop = 0, sms = 0, optin = 0, per_sm = 0;
  FUSEDRNN_CUDA_CHECK(cudaGetDevice(&device));
  FUSEDRNN_CUDA_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, device));
  FUSEDRNN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  FUSEDRNN_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (!coop || smem > static_cast<size_t>(optin)) return false;
  FUSEDRNN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(smem)));
  FUSEDRNN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel,
                                                                    kPersistentThreads, smem));
  return per_sm > 0 && blocks <= per_sm * sms;
}

// Plans `kernel` and, when it fits, launches it cooperatively with (p with U set, gates).
template <typename Params, typename Kernel, typename SmemFor>
bool launch_persistent(Kernel kernel, const Params& p, int gates, LoopDirection direction,
                       SmemFor smem_for, cudaStream_t stream) {
  int device = 0, sms = 0;
  FUSEDRNN_CUDA_CHECK(cudaGetDevice(&device));
  FUSEDRNN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const PersistentPlan plan = plan_persistent(
      direction, p.B, p.H, sms, smem_for,
      [&](int blocks, size_t smem) { return persistent_fits(kernel, blocks, smem); });
  if (!plan.ok) return false;
  Params q = p;
  q.U = plan.units;
  int gates_arg = gates;
  void* args[] = {&q, &gates_arg};
  FUSEDRNN_CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(kernel),
                                                  dim3(plan.blocks), dim3(kPersistentThreads),
                                                  args, plan.smem, stream));
  count_persistent_launch();
  return true;
}
#else
constexpr int kEmulatedMultiprocessors = 3;  // a few blocks: units split, last block partial

template <typename SmemFor>
PersistentPlan emulated_plan(LoopDirection direction, int64_t B, int64_t H, SmemFor smem_for) {
  return plan_persistent(direction, B, H, kEmulatedMultiprocessors, smem_for,
                         [](int, size_t) { return true; });
}
#endif

// The forward time loop of Step as one persistent launch; false (nothing enqueued) when it is
// disabled or does not fit.
template <typename Params, PersistentPhase<Params> Step>
bool run_persistent(const Params& p, int gates, cudaStream_t stream) {
  const auto smem_for = [&](int64_t U) { return forward_smem_bytes(gates, U, p.B, p.H); };
#if defined(FUSEDRNN_CUDA_EMULATION)
  (void)stream;
  const PersistentPlan plan = emulated_plan(LoopDirection::kForward, p.B, p.H, smem_for);
  if (!plan.ok) return false;
  Params q = p;
  q.U = plan.units;
  std::vector<float> smem(plan.smem / sizeof(float));
  for (int64_t s = 0; s < p.order.steps; ++s)  // block after block: the loop is the barrier
    for (int block = 0; block < plan.blocks; ++block) {
      load_weight_slice(p.w_hh, gates, p.H, p.H, plan.units, block, smem.data());
      Step(q, s, block, smem.data());
    }
  count_persistent_launch();
  return true;
#else
  return launch_persistent(persistent_forward<Params, Step>, p, gates, LoopDirection::kForward,
                           smem_for, stream);
#endif
}

// A forward loop run by run_persistent (Saving when the step saves for backward, else
// Inference), with its state in p.h_buf [2, B, H] (tagged_state.cuh): h0, held in hn, goes in
// first and the final state comes back to hn. False (nothing enqueued) as above.
template <typename Params, PersistentPhase<Params> Saving, PersistentPhase<Params> Inference,
          typename T>
bool run_persistent_forward(const Params& p, int gates, bool saving, T* hn,
                            cudaStream_t stream) {
  if (p.order.steps > kMaxTaggedSteps) return false;
  const int64_t state = p.B * p.H;
  launch(tag_initial_state<T>, state, stream, state, static_cast<const T*>(hn), p.h_buf);
  const bool ran = saving ? run_persistent<Params, Saving>(p, gates, stream)
                          : run_persistent<Params, Inference>(p, gates, stream);
  if (ran)
    launch(untag_state<T>, state, stream, state,
           static_cast<const TaggedWord*>(p.h_buf + (p.order.steps & 1) * state), hn);
  return ran;
}

// The backward time loop of PhaseA / PhaseB as one persistent launch; false as above.
template <typename Params, PersistentPhase<Params> PhaseA, PersistentPhase<Params> PhaseB>
bool run_persistent_backward(const Params& p, int gates, cudaStream_t stream) {
  const auto smem_for = [&](int64_t U) { return backward_smem_bytes(gates, U, p.B, p.H); };
#if defined(FUSEDRNN_CUDA_EMULATION)
  (void)stream;
  const PersistentPlan plan = emulated_plan(LoopDirection::kBackward, p.B, p.H, smem_for);
  if (!plan.ok) return false;
  Params q = p;
  q.U = plan.units;
  std::vector<float> smem(plan.smem / sizeof(float));
  for (int64_t s = p.order.steps - 1; s >= 0; --s) {
    for (int block = 0; block < plan.blocks; ++block) PhaseA(q, s, block, smem.data());
    for (int block = 0; block < plan.blocks; ++block) {
      load_weight_columns(p.w_hh, gates, p.H, plan.units, block, smem.data());
      PhaseB(q, s, block, smem.data());
    }
  }
  count_persistent_launch();
  return true;
#else
  return launch_persistent(persistent_backward<Params, PhaseA, PhaseB>, p, gates,
                           LoopDirection::kBackward, smem_for, stream);
#endif
}

}  // namespace fusedrnn::cuda
