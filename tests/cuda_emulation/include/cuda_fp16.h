// Host emulation: IEEE binary16 storage with round-to-nearest-even conversions, as __half.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

struct __half {
  uint16_t bits;
};

inline float __half2float(__half h) {
  const float sign = (h.bits & 0x8000u) ? -1.0f : 1.0f;
  const int exp = (h.bits >> 10) & 0x1f, man = h.bits & 0x3ff;
  if (exp == 0x1f) return man ? NAN : sign * INFINITY;
  if (exp == 0) return sign * std::ldexp(float(man), -24);  // subnormal
  return sign * std::ldexp(float(man | 0x400), exp - 25);
}

inline __half __float2half_rn(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) return {uint16_t(sign | 0x7e00u)};  // NaN
  if (absx >= 0x477ff000u) return {uint16_t(sign | 0x7c00u)};  // rounds to >= 65520: inf
  if (absx < 0x38800000u) {  // below 2^-14: a subnormal half (or zero), in units of 2^-24
    const float a = std::fabs(f);
    return {uint16_t(sign | uint16_t(std::nearbyint(a * 16777216.0f)))};  // ties to even
  }
  const uint32_t man = absx & 0x7fffffu, exp = (absx >> 23) - 112;
  uint32_t h = (exp << 10) | (man >> 13);
  const uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // to nearest, ties to even
  return {uint16_t(sign | h)};
}
