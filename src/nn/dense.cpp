// Dense: y = x kernel + bias.
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"

namespace maas::nn {

Dense::Dense(int64_t units, DenseOptions options) : units_(units), options_(options) {
  MAAS_CHECK(units > 0, "Dense: units must be positive, got " << units);
}

Shape Dense::compute_output_shape(const Shape& input_shape) const {
  MAAS_CHECK(!input_shape.empty() && input_shape.back() > 0,
             "Dense: input " << batch_shape_string(input_shape) << " needs a last dimension of features");
  numel({input_shape.back(), units_});  // the kernel's size must be countable
  Shape out = input_shape;
  out.back() = units_;
  return out;
}

Shape Dense::build(const Shape& input_shape) {
  Shape out = compute_output_shape(input_shape);
  if (!built()) {
    const int64_t in = input_shape.back();
    Generator& gen = default_generator();
    Tensor k = Tensor::empty({in, units_});
    initialize(k, options_.kernel_initializer, in, units_, gen);
    kernel_ = register_parameter("kernel", k);
    if (options_.use_bias) {
      Tensor b = Tensor::empty({units_});
      initialize(b, options_.bias_initializer, in, units_, gen);
      bias_ = register_parameter("bias", b);
    }
    mark_built(input_shape);
  } else {
    MAAS_CHECK(input_shape.back() == kernel_.size(0), "Dense '" << name() << "' has " << kernel_.size(0)
                                                                << " inputs but got input " << batch_shape_string(input_shape));
  }
  return out;
}

Tensor Dense::forward(const Tensor& x) {
  // Only the last dimension must match: Dense applies to any leading shape.
  if (!built() || x.dim() < 2) ensure_built(x);
  MAAS_CHECK(x.size(-1) == kernel_.size(0), "Dense '" << name() << "' has " << kernel_.size(0)
                                                     << " inputs but got a batch of shape " << maas::to_string(x.shape()));
  Tensor h = x.dim() == 2 ? matmul(x, kernel_) : matmul(reshape(x, {-1, kernel_.size(0)}), kernel_);
  if (bias_.defined()) h = h + bias_;
  if (x.dim() != 2) {
    Shape s = x.shape();
    s.back() = units_;
    h = reshape(h, s);
  }
  return apply(options_.activation, h);
}

}  // namespace maas::nn
