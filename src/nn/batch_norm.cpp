// BatchNorm layer (1-D and 2-D).
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"

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

// ---- Keras codec: BatchNormalization ------------------------------------------------
// maas' momentum m is Keras' 1 - m. gamma, beta (when affine), moving_mean,
// moving_variance: (C,), in Keras' (H, W, C) order after a Flatten of images.

namespace maas::detail::keras {

namespace {

class BatchNormCodec : public Codec {
 public:
  BatchNormCodec() : Codec({"BatchNormalization"}, {"BatchNormalization"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& bn = as<const nn::BatchNorm>(m);
    const Shape ch{ctx.input.at(0)};
    std::vector<Weight> w;
    if (bn.options().affine) {
      w.push_back(ctx.weight("gamma", ch, bn.gamma(), Layout::FlatVector));
      w.push_back(ctx.weight("beta", ch, bn.beta(), Layout::FlatVector));
    }
    w.push_back(ctx.weight("moving_mean", ch, bn.moving_mean(), Layout::FlatVector));
    w.push_back(ctx.weight("moving_variance", ch, bn.moving_variance(), Layout::FlatVector));
    return w;
  }
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    const nn::BatchNormOptions& o = as<const nn::BatchNorm>(m).options();
    c["axis"] = -1;  // the channels, last in Keras (an int: Keras 3 takes no list)
    c["momentum"] = round15(1.0 - short_decimal(o.momentum));
    c["epsilon"] = short_decimal(o.eps);
    c["center"] = o.affine;
    c["scale"] = o.affine;
    c["beta_initializer"] = initializer_json(nn::Init::Zeros);
    c["gamma_initializer"] = initializer_json(nn::Init::Ones);
    c["moving_mean_initializer"] = initializer_json(nn::Init::Zeros);
    c["moving_variance_initializer"] = initializer_json(nn::Init::Ones);
    c = with_nulls(c, {"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"});
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const Shape& cur = ctx.input;
    const json& axis = r.at("axis");
    int64_t a = 0;
    if (axis.is_number_integer()) a = axis.get<int64_t>();
    else if (axis.is_array() && axis.size() == 1 && axis[0].is_number_integer()) a = axis[0].get<int64_t>();
    else r.bad("axis " + brief_json(axis) + " is not supported (maas normalises over the channels, the last axis)");
    const int64_t last = static_cast<int64_t>(cur.size());  // the last axis of a batch (N, ..., C)
    if (a != -1 && a != last)
      r.bad("axis " + brief_json(axis) + " is not supported (maas normalises over the channels, the last axis)");
    if (cur.size() != 1 && cur.size() != 3)
      r.bad("input " + nn::batch_shape_string(cur) + " must be (None, features) or images");
    const bool center = r.boolean("center", true), scale = r.boolean("scale", true);
    if (center != scale) r.bad("center and scale must be both true or both false in maas");
    nn::BatchNormOptions o;
    o.momentum = static_cast<float>(1.0 - r.number("momentum", 0.99));
    o.eps = static_cast<float>(r.number("epsilon", 1e-3));
    o.affine = center;
    return make<nn::BatchNorm>(r, o);
  }
  // Per-feature vectors keep a flattened image's order (and follow it).
  Shape flat_order(const nn::Module&, const std::vector<Shape>& ins, const std::vector<Shape>& flat_ins, const Shape&,
                   const std::string&) const override {
    return !flat_ins[0].empty() && ins[0].size() == 1 ? flat_ins[0] : Shape{};
  }
};

}  // namespace

std::shared_ptr<const Codec> batch_norm_codec() { return std::make_shared<BatchNormCodec>(); }

}  // namespace maas::detail::keras
