// Vectorisable sigmoid and tanh for the CPU step kernels. Written as straight-line arithmetic
// (no calls, no branches) so that the compiler turns a loop of them into SIMD code at whatever
// level the step kernels are built for. float: exp and sigmoid ~2e-7 relative error (Cephes'
// expf polynomial), tanh 3.3e-7 (a rational fit); double keeps the standard library, whose
// accuracy the float64 checks rely on.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "fusedrnn/gate_math.hpp"

namespace fusedrnn::cpu {

FUSEDRNN_HD float exp_approx(float x) {
  // Clamped so that 2^n stays a normal float; exp(-87) already rounds sigmoid/tanh to 0 or 1.
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // x = n ln2 + r with |r| <= ln2 / 2; adding and subtracting 1.5 * 2^23 rounds to nearest.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;  // ln2 split in two parts: r is exact to float precision
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // NaN stays NaN through p; the exponent takes 0 then, as converting NaN to int is undefined.
  const int32_t bits = (static_cast<int32_t>(n == n ? n : 0.0f) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// tanh(a) = a P(a^2) / Q(a^2) for |a| <= 9, beyond which float tanh rounds to +-1: a rational fit
// of the relative error (tools/fit_tanh.py; 6.6e-9 in exact arithmetic, 3.3e-7 evaluated in float
// with FMA, 3.8e-7 without). No exp and no branch near 0 (where exp's 1 - e cancels), so it costs
// 0.40 ns an element against 0.99 for (1 - e) / (1 + e) with a Taylor series near 0 (AVX2, one
// thread), and the LSTM's gate pass 3.3 ns a unit against 4.6. Computed on |a| and capped at 1,
// which rounding would pass by an ulp from |a| = 8.19 on; NaN stays NaN through both comparisons.
FUSEDRNN_HD float tanh_approx(float a) {
  float x = std::fabs(a);
  x = x > 9.0f ? 9.0f : x;
  const float x2 = x * x;
  float p = -8.488779883e-14f;
  p = p * x2 + 5.277977014e-11f;
  p = p * x2 - 2.022528811e-08f;
  p = p * x2 + 1.115432406e-05f;
  p = p * x2 + 3.103957744e-03f;
  p = p * x2 + 1.308401227e-01f;
  float q = 2.546147443e-04f;
  q = q * x2 + 2.449518442e-02f;
  q = q * x2 + 4.641733766e-01f;
  q = q * x2 + 1.0f;
  const float t = (x + x * (x2 * p)) / q;
  return std::copysign(t > 1.0f ? 1.0f : t, a);
}

struct FastActivations {
  static FUSEDRNN_HD float sigmoid(float a) { return 1.0f / (1.0f + exp_approx(-a)); }
  static FUSEDRNN_HD float tanh(float a) { return tanh_approx(a); }
  static FUSEDRNN_HD double sigmoid(double a) { return math::sigmoid(a); }
  static FUSEDRNN_HD double tanh(double a) { return math::tanh_(a); }
};

}  // namespace fusedrnn::cpu
