// BatchNorm layer (1-D and 2-D).
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"

namespace maas::nn {

BatchNorm::BatchNorm(BatchNormOptions options) : options_(options) {
  MAAS_CHECK(options.momentum >= 0.f && options.momentum <= 1.f,
             "BatchNorm: momentum must be in [0, 1], got " << options.momentum);
  MAAS_CHECK(options.eps > 0.f, "BatchNorm: eps must be positive, got " << options.eps);
}

Shape BatchNorm::compute_output_shape(const Shape& input_shape) const {
  MAAS_CHECK(input_shape.size() == 1 || input_shape.size() == 3,
             "BatchNorm: input " << batch_shape_string(input_shape)
                                 << " must be (None, features) or (None, channels, height, width)");
  return input_shape;
}

Shape BatchNorm::build(const Shape& input_shape) {
  compute_output_shape(input_shape);
  if (!built()) {
    const int64_t c = input_shape[0];
    if (options_.affine) {
      gamma_ = register_parameter("gamma", Tensor::ones({c}));
      beta_ = register_parameter("beta", Tensor::zeros({c}));
    }
    moving_mean_ = register_buffer("moving_mean", Tensor::zeros({c}));
    moving_variance_ = register_buffer("moving_variance", Tensor::ones({c}));
    mark_built(input_shape);
  } else {
    MAAS_CHECK(input_shape[0] == moving_mean_.size(0), "BatchNorm '" << name() << "' has " << moving_mean_.size(0)
                                                                      << " channels but got input "
                                                                      << batch_shape_string(input_shape));
  }
  return input_shape;
}

Tensor BatchNorm::forward(const Tensor& x) {
  ensure_built(x);
  return batch_norm(x, gamma_, beta_, moving_mean_, moving_variance_, is_training(), options_.momentum, options_.eps);
}

}  // namespace maas::nn
