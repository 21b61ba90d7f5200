// Dropout layer.
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"

namespace maas::nn {

Dropout::Dropout(float rate, int64_t seed)
    : rate_(rate), gen_(seed >= 0 ? static_cast<uint64_t>(seed) : default_generator().engine()()) {
  MAAS_CHECK(rate >= 0.f && rate < 1.f, "Dropout: rate must be in [0, 1), got " << rate);
}

Shape Dropout::compute_output_shape(const Shape& input_shape) const { return input_shape; }

Shape Dropout::build(const Shape& input_shape) {
  mark_built(input_shape);
  return input_shape;
}

Tensor Dropout::forward(const Tensor& x) {
  ensure_built(x);
  return dropout(x, rate_, is_training(), gen_);
}

}  // namespace maas::nn
