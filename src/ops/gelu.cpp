// gelu: the Gaussian error linear unit, x * Phi(x), in its exact (erf) form
// and in the tanh approximation of GPT-2 and BERT:
//   none: y = 0.5 x (1 + erf(x / sqrt 2))
//         dy/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi)
//   tanh: u = sqrt(2/pi) (x + 0.044715 x^3), y = 0.5 x (1 + tanh u)
//         dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// as torch.nn.functional.gelu(x, approximate="none" | "tanh"). erf and exp
// are ops/vmath.hpp's, which vectorise (the erf form is PyTorch's own on CPU).
#include <cmath>

#include "maas/ops.hpp"
#include "ops/elementwise.hpp"
#include "ops/vmath.hpp"

namespace maas {

namespace {

constexpr float kSqrt1_2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kCubic = 0.044715f;

}  // namespace

Tensor gelu(const Tensor& x, GeluApproximation approximate) {
  if (approximate == GeluApproximation::tanh)
    return detail::unary_op(
        "gelu", x,
        [](float v) { return 0.5f * v * (1.f + std::tanh(kSqrt2OverPi * (v + kCubic * v * v * v))); },
        [](float v, float, float g) {
          const float t = std::tanh(kSqrt2OverPi * (v + kCubic * v * v * v));
          return g * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * kSqrt2OverPi * (1.f + 3.f * kCubic * v * v));
        });
  return detail::unary_op(
      "gelu", x, [](float v) { return 0.5f * v * (1.f + detail::verf(v * kSqrt1_2)); },
      [](float v, float, float g) {
        return g * (0.5f * (1.f + detail::verf(v * kSqrt1_2)) + v * kInvSqrt2Pi * detail::vexp(-0.5f * v * v));
      });
}

}  // namespace maas
