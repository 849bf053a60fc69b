// Gate math shared by every backend: activations, the per-hidden-unit cell updates and their
// derivatives. Written once here so that the CPU loops and the CUDA kernels compute the very
// same expressions (under nvcc these functions are __host__ __device__).
//
// Each function handles one hidden unit j of one batch row: scalar in, scalar out. Inputs named
// a_* are gate pre-activations (x-projection + recurrent projection + biases); gate values
// (i, f, g, o; r, z, n) are after their activation. Backward functions take the saved gate
// values, so no activation is evaluated twice.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define FUSEDRNN_HD __host__ __device__ __forceinline__
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

// ---------------------------------------------------------------- LSTM (gates i, f, g, o)

template <typename T>
struct LstmPoint {
  T i, f, g, o;  // activated gates
  T c;           // new cell state
  T h;           // o * tanh(c): the new hidden state, or its pre-projection value
};

template <typename T>
FUSEDRNN_HD LstmPoint<T> lstm_forward_point(T a_i, T a_f, T a_g, T a_o, T c_prev) {
  LstmPoint<T> p;
  p.i = sigmoid(a_i);
  p.f = sigmoid(a_f);
  p.g = tanh_(a_g);
  p.o = sigmoid(a_o);
  p.c = p.f * c_prev + p.i * p.g;
  p.h = p.o * tanh_(p.c);
  return p;
}

template <typename T>
struct LstmPointGrad {
  T da_i, da_f, da_g, da_o;  // gradients of the gate pre-activations
  T dc_prev;                 // gradient flowing into the previous cell state
  T h;                       // o * tanh(c) recomputed (the projection's input)
};

// dh: gradient of o * tanh(c) at this step; dc: gradient of c arriving from the next step.
template <typename T>
FUSEDRNN_HD LstmPointGrad<T> lstm_backward_point(T i, T f, T g, T o, T c_prev, T dh, T dc) {
  const T c = f * c_prev + i * g;  // recomputed rather than saved: one FMA beats a stored T
  const T tc = tanh_(c);
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
