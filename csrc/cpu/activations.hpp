// Vectorisable sigmoid and tanh for the CPU step kernels. Written as straight-line arithmetic
// (no calls, no branches) so that the compiler turns a loop of them into SIMD code at whatever
// level the step kernels are built for. float: ~2e-7 relative error (Cephes' expf polynomial);
// double keeps the standard library, whose accuracy the float64 checks rely on.
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

FUSEDRNN_HD float tanh_approx(float a) {
  const float ax = std::fabs(a);
  const float e = exp_approx(-2.0f * ax);
  const float large = std::copysign((1.0f - e) / (1.0f + e), a);
  // Near 0, 1 - e cancels: use the Taylor series (to a^13; < 1e-8 relative for |a| < 0.3).
  const float a2 = a * a;
  float s = 6404582.0f / 10854718875.0f;
  s = s * a2 - 1382.0f / 155925.0f;
  s = s * a2 + 62.0f / 2835.0f;
  s = s * a2 - 17.0f / 315.0f;
  s = s * a2 + 2.0f / 15.0f;
  s = s * a2 - 1.0f / 3.0f;
  const float small = a + a * a2 * s;
  return ax < 0.3f ? small : large;
}

struct FastActivations {
  static FUSEDRNN_HD float sigmoid(float a) { return 1.0f / (1.0f + exp_approx(-a)); }
  static FUSEDRNN_HD float tanh(float a) { return tanh_approx(a); }
  static FUSEDRNN_HD double sigmoid(double a) { return math::sigmoid(a); }
  static FUSEDRNN_HD double tanh(double a) { return math::tanh_(a); }
};

}  // namespace fusedrnn::cpu
