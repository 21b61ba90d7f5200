// Rescaling and Normalization layers: Keras' input preprocessing, built
// from the element-wise ops so that gradients reach the input.
#include <algorithm>
#include <cmath>
#include <utility>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"

namespace maas::nn {

Rescaling::Rescaling(float scale, float offset) : scale_(scale), offset_(offset) {
  MAAS_CHECK(std::isfinite(scale) && std::isfinite(offset),
             "Rescaling: scale " << scale << " and offset " << offset << " must be finite");
}

Shape Rescaling::compute_output_shape(const Shape& input_shape) const { return input_shape; }

Shape Rescaling::build(const Shape& input_shape) {
  mark_built(input_shape);
  return input_shape;
}

Tensor Rescaling::forward(const Tensor& x) {
  ensure_built(x);
  return add(mul(x, scale_), offset_);
}

namespace {
constexpr float kEpsilon = 1e-7f;  // keras.backend.epsilon()
}  // namespace

Normalization::Normalization(std::vector<float> mean, std::vector<float> variance)
    : init_mean_(std::move(mean)), init_variance_(std::move(variance)) {
  MAAS_CHECK(!init_mean_.empty() && init_mean_.size() == init_variance_.size(),
             "Normalization: mean (" << init_mean_.size() << " values) and variance (" << init_variance_.size()
                                     << " values) must be non-empty and of one size, one value per channel");
  for (size_t c = 0; c < init_mean_.size(); ++c)
    MAAS_CHECK(std::isfinite(init_mean_[c]) && std::isfinite(init_variance_[c]) && init_variance_[c] >= 0.f,
               "Normalization: channel " << c << " has mean " << init_mean_[c] << " and variance "
                                         << init_variance_[c] << " (both finite, the variance >= 0)");
}

Shape Normalization::compute_output_shape(const Shape& input_shape) const {
  MAAS_CHECK(input_shape.size() == 1 || input_shape.size() == 3,
             "Normalization: input " << batch_shape_string(input_shape)
                                     << " must be (None, features) or (None, channels, height, width)");
  const int64_t c = input_shape[0];
  if (!built() && !init_mean_.empty())
    MAAS_CHECK(static_cast<int64_t>(init_mean_.size()) == c,
               "Normalization '" << name() << "' has " << init_mean_.size() << " means and variances but input "
                                 << batch_shape_string(input_shape) << " has " << c << " channels");
  return input_shape;
}

Shape Normalization::build(const Shape& input_shape) {
  compute_output_shape(input_shape);
  const int64_t c = input_shape[0];
  if (!built()) {
    mean_ = register_buffer("mean", init_mean_.empty() ? Tensor::zeros({c}) : Tensor::from_vector(init_mean_, {c}));
    variance_ = register_buffer("variance", init_variance_.empty() ? Tensor::ones({c})
                                                                    : Tensor::from_vector(init_variance_, {c}));
    count_ = register_buffer("count", Tensor::scalar(0.f));
    mark_built(input_shape);
  } else {
    MAAS_CHECK(c == mean_.size(0), "Normalization '" << name() << "' has " << mean_.size(0)
                                                     << " channels but got input " << batch_shape_string(input_shape));
  }
  return input_shape;
}

Tensor Normalization::forward(const Tensor& x) {
  ensure_built(x);
  build(Shape(x.shape().begin() + 1, x.shape().end()));  // checks the rank and channel count of every batch
  // The divisor max(sqrt(variance), epsilon) per channel, as Keras computes it.
  const int64_t c = variance_.size(0);
  Tensor std = Tensor::empty({c});
  for (int64_t i = 0; i < c; ++i) std.data()[i] = std::max(std::sqrt(variance_.data()[i]), kEpsilon);
  const Shape per_channel = x.dim() == 4 ? Shape{c, 1, 1} : Shape{c};
  return div(sub(x, reshape(mean_, per_channel)), reshape(std, per_channel));
}

}  // namespace maas::nn
