// Activation layers, Flatten, LeakyReLU and the fused-activation helper.
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"

namespace maas::nn {

int64_t softmax_axis(int64_t dim) { return dim == 4 ? 1 : dim - 1; }

Tensor apply(Activation a, const Tensor& x) {
  switch (a) {
    case Activation::None: return x;
    case Activation::ReLU: return relu(x);
    case Activation::Sigmoid: return sigmoid(x);
    case Activation::Tanh: return tanh(x);
    case Activation::Softmax: return softmax(x, softmax_axis(x.dim()));
    case Activation::Gelu: return gelu(x);
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
    case Activation::Gelu: return "gelu";
  }
  return "?";
}

Activation activation_from_string(const std::string& name) {
  for (Activation a : {Activation::None, Activation::ReLU, Activation::Sigmoid, Activation::Tanh, Activation::Softmax,
                       Activation::Gelu})
    if (to_string(a) == name) return a;
  MAAS_FAIL("activation '" << name << "' is not supported (expected linear, relu, sigmoid, tanh, softmax or gelu)");
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

// ---- Keras codecs: Activation, ReLU, Softmax, LeakyReLU, Flatten ---------------

namespace maas::detail::keras {

namespace {

// Sigmoid and Tanh are written as Keras' Activation layer (Keras has no such classes).
class ActivationCodec : public Codec {
 public:
  ActivationCodec() : Codec({"Activation"}, {"Activation", "Sigmoid", "Tanh"}) {}
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    c["activation"] = nn::to_string(as<const nn::ActivationLayer>(m).activation());
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override {
    return make<nn::ActivationLayer>(r, r.activation());
  }
};

// A ReLU with a negative slope reads as a LeakyReLU.
class ReLUCodec : public Codec {
 public:
  ReLUCodec() : Codec({"ReLU"}, {"ReLU"}) {}
  void write_config(const nn::Module&, const Shape&, const std::string&, ojson& c) const override {
    c["max_value"] = nullptr;
    c["negative_slope"] = 0.0;
    c["threshold"] = 0.0;
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override {
    if (r.has("max_value")) r.bad("max_value is not supported");
    if (r.number("threshold", 0.0) != 0.0) r.bad("a non-zero threshold is not supported");
    const double slope = r.number("negative_slope", 0.0);
    if (slope != 0.0) return make<nn::LeakyReLU>(r, static_cast<float>(slope));
    return make<nn::ReLU>(r);
  }
};

class SoftmaxCodec : public Codec {
 public:
  SoftmaxCodec() : Codec({"Softmax"}, {"Softmax"}) {}
  void write_config(const nn::Module&, const Shape&, const std::string&, ojson& c) const override { c["axis"] = -1; }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const int64_t a = r.integer("axis", -1);
    if (a != -1 && a != static_cast<int64_t>(ctx.input.size()))
      r.bad("axis " + std::to_string(a) + " is not supported (maas' Softmax takes the last axis, the channels)");
    return make<nn::Softmax>(r);
  }
};

// Keras 2 calls the slope alpha, Keras 3 negative_slope.
class LeakyReLUCodec : public Codec {
 public:
  LeakyReLUCodec() : Codec({"LeakyReLU"}, {"LeakyReLU"}) {}
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    c["alpha"] = short_decimal(as<const nn::LeakyReLU>(m).negative_slope());
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override {
    const double slope = r.has("alpha") ? r.number("alpha", 0.3) : r.number("negative_slope", 0.3);
    return make<nn::LeakyReLU>(r, static_cast<float>(slope));
  }
};

// A Flatten of images starts the flattened-image order the next layers' weights follow.
class FlattenCodec : public Codec {
 public:
  FlattenCodec() : Codec({"Flatten"}, {"Flatten"}) {}
  void write_config(const nn::Module&, const Shape&, const std::string&, ojson& c) const override {
    c["data_format"] = "channels_last";
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override {
    r.channels_last();
    return make<nn::Flatten>(r);
  }
  Shape flat_order(const nn::Module&, const std::vector<Shape>& ins, const std::vector<Shape>& flat_ins, const Shape&,
                   const std::string&) const override {
    return ins[0].size() == 3 ? ins[0] : flat_ins[0];
  }
  bool flattens() const override { return true; }
};

}  // namespace

std::shared_ptr<const Codec> activation_codec() { return std::make_shared<ActivationCodec>(); }
std::shared_ptr<const Codec> relu_codec() { return std::make_shared<ReLUCodec>(); }
std::shared_ptr<const Codec> softmax_codec() { return std::make_shared<SoftmaxCodec>(); }
std::shared_ptr<const Codec> leaky_relu_codec() { return std::make_shared<LeakyReLUCodec>(); }
std::shared_ptr<const Codec> flatten_codec() { return std::make_shared<FlattenCodec>(); }

}  // namespace maas::detail::keras
