// Internal: exp and erf in float written so that the compiler vectorises
// the loops that call them (no calls into libm, no branches). Not installed.
//
// exp: Cephes' expf. x = n ln2 + r with |r| <= ln2 / 2, exp(r) from a
// degree-6 polynomial, 2^n put into the exponent bits; inputs are clamped
// to [-87.3, 88.7], so the result is a normal float (exp(-87.3) ~ 1.2e-38
// stands for anything smaller). Relative error about 1e-7.
// erf: Abramowitz and Stegun 7.1.26 (the form PyTorch's vectorised CPU erf
// uses), absolute error below 3e-7.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace maas::detail {

inline float vexp(float in) {
  float x = in < -87.3f ? -87.3f : in;  // (std::min / std::max here would not vectorise)
  x = x > 88.7f ? 88.7f : x;
  // round(x / ln2) as floor(t + 0.5) with t + 128.5 > 0, so truncation is
  // floor (std::floor would not vectorise). A NaN stays NaN through r and p;
  // the exponent bits are then unsigned arithmetic, defined for any k0.
  const int32_t k0 = static_cast<int32_t>(x * 1.44269504088896341f + 128.5f);  // round(x / ln2) + 128
  const float n = static_cast<float>(k0) - 128.f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const uint32_t bits = (static_cast<uint32_t>(k0) - 1u) << 23;  // (n + 127) << 23
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float verf(float x) {
  const float a = std::fabs(x);
  const float t = 1.f / (1.f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.f - p * t * vexp(-a * a);
  return std::copysign(y, x);
}

}  // namespace maas::detail
