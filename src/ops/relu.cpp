// relu and leaky_relu.
#include "maas/ops.hpp"
#include "ops/elementwise.hpp"

namespace maas {

Tensor relu(const Tensor& x) {
  return detail::unary_op(
      "relu", x, [](float v) { return v > 0.f ? v : 0.f; },
      [](float v, float, float g) { return v > 0.f ? g : 0.f; });
}

Tensor leaky_relu(const Tensor& x, float negative_slope) {
  return detail::unary_op(
      "leaky_relu", x, [negative_slope](float v) { return v > 0.f ? v : v * negative_slope; },
      [negative_slope](float v, float, float g) { return v > 0.f ? g : g * negative_slope; });
}

}  // namespace maas
