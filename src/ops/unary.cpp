// sigmoid, tanh, exp, log: element-wise math whose derivative reuses the output.
#include <cmath>

#include "maas/ops.hpp"
#include "ops/elementwise.hpp"

namespace maas {

Tensor sigmoid(const Tensor& x) {
  return detail::unary_op(
      "sigmoid", x,
      [](float v) {
        // Split by sign so exp never overflows.
        if (v >= 0.f) return 1.f / (1.f + std::exp(-v));
        const float e = std::exp(v);
        return e / (1.f + e);
      },
      [](float, float y, float g) { return g * y * (1.f - y); });
}

Tensor tanh(const Tensor& x) {
  return detail::unary_op(
      "tanh", x, [](float v) { return std::tanh(v); }, [](float, float y, float g) { return g * (1.f - y * y); });
}

Tensor exp(const Tensor& x) {
  return detail::unary_op(
      "exp", x, [](float v) { return std::exp(v); }, [](float, float y, float g) { return g * y; });
}

Tensor log(const Tensor& x) {
  return detail::unary_op(
      "log", x, [](float v) { return std::log(v); }, [](float v, float, float g) { return g / v; });
}

}  // namespace maas
