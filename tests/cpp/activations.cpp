// The float activations of the CPU kernels (csrc/cpu/activations.hpp) against double precision:
// prints "case: value" lines for tests/test_embedding.py. Every 61st float of each range is
// checked, about a million values, both signs.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>

#include "activations.hpp"

namespace {

using fusedrnn::cpu::exp_approx;
using fusedrnn::cpu::FastActivations;

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// Calls visit(x) for every 61st positive float in [lo, hi].
template <typename Visit>
void each_float(float lo, float hi, Visit visit) {
  for (uint32_t b = to_bits(lo); b <= to_bits(hi); b += 61) visit(from_bits(b));
}

double relative(double got, double want) { return std::fabs(got - want) / std::fabs(want); }

void show(const char* name, double value) { std::printf("%s: %.9g\n", name, value); }

void check_tanh() {
  double worst = 0, above_one = 0, odd = 0;
  each_float(1e-30f, 12.0f, [&](float x) {
    const float t = FastActivations::tanh(x);
    if (x > 1e-6f) worst = std::fmax(worst, relative(t, std::tanh(double(x))));
    above_one = std::fmax(above_one, t - 1.0);
    odd += FastActivations::tanh(-x) != -t;
  });
  show("tanh_worst_relative", worst);
  show("tanh_above_one", above_one);
  show("tanh_not_odd", odd);
  show("tanh_tiny", FastActivations::tanh(1e-30f) / 1e-30f);
  show("tanh_inf", FastActivations::tanh(INFINITY));
  show("tanh_minus_inf", FastActivations::tanh(-INFINITY));
  show("tanh_minus_zero_sign", std::signbit(FastActivations::tanh(-0.0f)));
  show("tanh_nan_is_nan", std::isnan(FastActivations::tanh(NAN)));
}

void check_sigmoid_and_exp() {
  double sigmoid = 0, exp = 0, outside = 0;
  for (float sign : {1.0f, -1.0f}) {
    each_float(1e-30f, 80.0f, [&](float m) {
      const float x = sign * m;
      const float s = FastActivations::sigmoid(x);
      sigmoid = std::fmax(sigmoid, relative(s, 1.0 / (1.0 + std::exp(-double(x)))));
      exp = std::fmax(exp, relative(exp_approx(x), std::exp(double(x))));
      outside += s < 0.0f || s > 1.0f;
    });
  }
  show("sigmoid_worst_relative", sigmoid);
  show("exp_worst_relative", exp);
  show("sigmoid_outside_0_1", outside);
  show("sigmoid_minus_inf", FastActivations::sigmoid(-INFINITY));
  show("sigmoid_inf", FastActivations::sigmoid(INFINITY));
  show("sigmoid_nan_is_nan", std::isnan(FastActivations::sigmoid(NAN)));
}

}  // namespace

int main() {
  check_tanh();
  check_sigmoid_and_exp();
}
