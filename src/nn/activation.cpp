// Activation layers, Flatten, LeakyReLU and the fused-activation helper.
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"

namespace maas::nn {

int64_t softmax_axis(int64_t dim) { return dim == 4 ? 1 : dim - 1; }

Tensor apply(Activation a, const Tensor& x) {
  switch (a) {
    case Activation::None: return x;
    case Activation::ReLU: return relu(x);
    case Activation::Sigmoid: return sigmoid(x);
    case Activation::Tanh: return tanh(x);
    case Activation::Softmax: return softmax(x, softmax_axis(x.dim()));
  }
  return x;
}

std::string to_string(Activation a) {
  switch (a) {
    case Activation::None: return "linear";
    case Activation::ReLU: return "relu";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::Tanh: return "tanh";
    case Activation::Softmax: return "softmax";
  }
  return "?";
}

Activation activation_from_string(const std::string& name) {
  for (Activation a : {Activation::None, Activation::ReLU, Activation::Sigmoid, Activation::Tanh, Activation::Softmax})
    if (to_string(a) == name) return a;
  MAAS_FAIL("activation '" << name << "' is not supported (expected linear, relu, sigmoid, tanh or softmax)");
}

Shape ActivationLayer::compute_output_shape(const Shape& input_shape) const { return input_shape; }

Shape ActivationLayer::build(const Shape& input_shape) {
  mark_built(input_shape);
  return input_shape;
}

Tensor ActivationLayer::forward(const Tensor& x) {
  ensure_built(x);
  return apply(activation_, x);
}

Shape LeakyReLU::compute_output_shape(const Shape& input_shape) const { return input_shape; }

Shape LeakyReLU::build(const Shape& input_shape) {
  mark_built(input_shape);
  return input_shape;
}

Tensor LeakyReLU::forward(const Tensor& x) {
  ensure_built(x);
  return leaky_relu(x, negative_slope_);
}

Shape Flatten::compute_output_shape(const Shape& input_shape) const { return {numel(input_shape)}; }

Shape Flatten::build(const Shape& input_shape) {
  Shape out = compute_output_shape(input_shape);
  mark_built(input_shape);
  return out;
}

Tensor Flatten::forward(const Tensor& x) {
  ensure_built(x);
  return x.dim() == 1 ? reshape(x, {x.size(0), 1}) : flatten(x, 1);
}

}  // namespace maas::nn
