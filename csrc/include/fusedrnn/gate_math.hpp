// Gate math shared by every backend: activations, the per-hidden-unit cell updates and their
// derivatives. Written once here so that the CPU loops and the CUDA kernels compute the very
// same expressions (under nvcc these functions are __host__ __device__).
//
// Each function handles one hidden unit j of one batch row: scalar in, scalar out. Inputs named
// a_* are gate pre-activations (x-projection + recurrent projection + biases); gate values
// (i, f, g, o; r, z, n) are after their activation. Backward functions take the saved gate
// values, so no activation is evaluated twice. `Act` supplies sigmoid and tanh: the standard
// library's by default; a backend may pass its own vectorisable or intrinsic versions.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define FUSEDRNN_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
// Always inlined: the CPU row kernels are compiled once per SIMD level, and an out-of-line
// copy shared between those builds could carry the wrong instruction set.
#define FUSEDRNN_HD inline __attribute__((always_inline))
#else
#define FUSEDRNN_HD inline
#endif

namespace fusedrnn::math {

template <typename T>
FUSEDRNN_HD T sigmoid(T a) {
  // exp(-a) overflows to inf for very negative a, giving exactly 0: no NaN.
  return T(1) / (T(1) + std::exp(-a));
}

template <typename T>
FUSEDRNN_HD T tanh_(T a) {
  return std::tanh(a);
}

struct StdActivations {
  template <typename T>
  static FUSEDRNN_HD T sigmoid(T a) { return math::sigmoid(a); }
  template <typename T>
  static FUSEDRNN_HD T tanh(T a) { return math::tanh_(a); }
};

// ---------------------------------------------------------------- LSTM (gates i, f, g, o)

template <typename T>
struct LstmPoint {
  T i, f, g, o;  // activated gates
  T c;           // new cell state
  T h;           // o * tanh(c): the new hidden state, or its pre-projection value
};

template <typename Act = StdActivations, typename T>
FUSEDRNN_HD LstmPoint<T> lstm_forward_point(T a_i, T a_f, T a_g, T a_o, T c_prev) {
  LstmPoint<T> p;
  p.i = Act::sigmoid(a_i);
  p.f = Act::sigmoid(a_f);
  p.g = Act::tanh(a_g);
  p.o = Act::sigmoid(a_o);
  p.c = p.f * c_prev + p.i * p.g;
  p.h = p.o * Act::tanh(p.c);
  return p;
}

template <typename T>
struct LstmPointGrad {
  T da_i, da_f, da_g, da_o;  // gradients of the gate pre-activations
  T dc_prev;                 // gradient flowing into the previous cell state
  T h;                       // o * tanh(c) recomputed (the projection's input)
};

// dh: gradient of o * tanh(c) at this step; dc: gradient of c arriving from the next step.
template <typename Act = StdActivations, typename T>
FUSEDRNN_HD LstmPointGrad<T> lstm_backward_point(T i, T f, T g, T o, T c_prev, T dh, T dc) {
  const T c = f * c_prev + i * g;  // recomputed rather than saved: one FMA beats a stored T
  const T tc = Act::tanh(c);
  dc += dh * o * (T(1) - tc * tc);
  LstmPointGrad<T> r;
  r.da_i = dc * g * i * (T(1) - i);
  r.da_f = dc * c_prev * f * (T(1) - f);
  r.da_g = dc * i * (T(1) - g * g);
  r.da_o = dh * tc * o * (T(1) - o);
  r.dc_prev = dc * f;
  r.h = o * tc;
  return r;
}

// ---------------------------------------------------------------- GRU (gates r, z, n)

// h' = (1 - z) * n + z * h
template <typename T>
FUSEDRNN_HD T gru_blend(T z, T n, T h_prev) {
  return n + z * (h_prev - n);
}

template <typename T>
struct GruPoint {
  T r, z, n;  // activated gates
  T h;        // new hidden state
};

// linear_before_reset: hn_lin = W_hn h + b_hn, and n = tanh(x_n + r * hn_lin).
template <typename Act = StdActivations, typename T>
FUSEDRNN_HD GruPoint<T> gru_forward_point_lbr(T a_r, T a_z, T x_n, T hn_lin, T h_prev) {
  GruPoint<T> p;
  p.r = Act::sigmoid(a_r);
  p.z = Act::sigmoid(a_z);
  p.n = Act::tanh(x_n + p.r * hn_lin);
  p.h = gru_blend(p.z, p.n, h_prev);
  return p;
}

// Backward of the blend and of n = tanh(a_n): the pieces both GRU variants share.
template <typename T>
struct GruBlendGrad {
  T da_z;     // gradient of z's pre-activation
  T da_n;     // gradient of n's pre-activation
  T dh_prev;  // the direct path z * dh (the recurrent GEMM adds the rest)
};

template <typename T>
FUSEDRNN_HD GruBlendGrad<T> gru_blend_backward(T z, T n, T h_prev, T dh) {
  GruBlendGrad<T> r;
  r.da_z = dh * (h_prev - n) * z * (T(1) - z);
  r.da_n = dh * (T(1) - z) * (T(1) - n * n);
  r.dh_prev = dh * z;
  return r;
}

template <typename T>
FUSEDRNN_HD T sigmoid_grad(T y, T dy) {
  return dy * y * (T(1) - y);
}

}  // namespace fusedrnn::math
