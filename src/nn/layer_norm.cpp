// LayerNormalization: normalisation over the features of each position.
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"

namespace maas::nn {

LayerNormalization::LayerNormalization(LayerNormOptions options) : options_(options) {
  MAAS_CHECK(options.epsilon >= 0.f && std::isfinite(options.epsilon),
             "LayerNormalization: epsilon must be finite and >= 0, got " << options.epsilon);
}

Shape LayerNormalization::compute_output_shape(const Shape& input_shape) const {
  MAAS_CHECK(!input_shape.empty() && input_shape.back() > 0,
             "LayerNormalization: input " << batch_shape_string(input_shape) << " needs a last axis of features");
  return input_shape;
}

Shape LayerNormalization::build(const Shape& input_shape) {
  compute_output_shape(input_shape);
  if (!built()) {
    const int64_t c = input_shape.back();
    if (options_.scale) gamma_ = register_parameter("gamma", Tensor::ones({c}));
    if (options_.center) beta_ = register_parameter("beta", Tensor::zeros({c}));
    mark_built(input_shape);
  }
  return input_shape;
}

Tensor LayerNormalization::forward(const Tensor& x) {
  // Only the features must match: any number of positions goes.
  if (!built() || x.dim() < 2) ensure_built(x);
  const int64_t c = built_input_shape().back();
  MAAS_CHECK(x.size(-1) == c, "LayerNormalization '" << name() << "' normalises " << c
                                                     << " features but got a batch of shape "
                                                     << maas::to_string(x.shape()));
  return layer_norm(x, gamma_, beta_, options_.epsilon);
}

}  // namespace maas::nn

// ---- Keras codec: LayerNormalization ---------------------------------------------
// Over the last axis only. maas' 3-D per-sample shapes are NCHW images, whose
// last axis is the width, not Keras' channels: those are refused.

namespace maas::detail::keras {

namespace {

class LayerNormalizationCodec : public Codec {
 public:
  LayerNormalizationCodec() : Codec({"LayerNormalization"}, {"LayerNormalization"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& ln = as<const nn::LayerNormalization>(m);
    const Shape c{ctx.input.back()};
    std::vector<Weight> w;
    if (ln.options().scale) w.push_back(ctx.weight("gamma", c, ln.gamma()));
    if (ln.options().center) w.push_back(ctx.weight("beta", c, ln.beta()));
    return w;
  }
  void write_config(const nn::Module& m, const Shape& input, const std::string& where, ojson& c) const override {
    const nn::LayerNormOptions& o = as<const nn::LayerNormalization>(m).options();
    MAAS_CHECK(input.size() != 3, where << " takes images " << nn::batch_shape_string(input)
                                        << ": maas normalises over the width (NCHW), Keras over the channels, so "
                                           "Keras cannot express it");
    c["axis"] = -1;
    c["epsilon"] = short_decimal(o.epsilon);
    c["center"] = o.center;
    c["scale"] = o.scale;
    c["beta_initializer"] = initializer_json(nn::Init::Zeros);
    c["gamma_initializer"] = initializer_json(nn::Init::Ones);
    c = with_nulls(c, {"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"});
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const json& axis = r.has("axis") ? r.at("axis") : json(-1);
    int64_t a = 0;
    bool ok = true;
    if (axis.is_number_integer()) a = axis.get<int64_t>();
    else if (axis.is_array() && axis.size() == 1 && axis[0].is_number_integer()) a = axis[0].get<int64_t>();
    else ok = false;
    if (!ok || (a != -1 && a != static_cast<int64_t>(ctx.input.size())))
      r.bad("axis " + brief_json(axis) + " is not supported (maas normalises over the last axis, the features)");
    if (ctx.input.size() == 3)
      r.bad("takes input " + nn::batch_shape_string(ctx.input) +
            "; maas reads a LayerNormalization of features (None, C) or sequences (None, T, C)");
    if (r.boolean("rms_scaling", false)) r.bad("rms_scaling true is not supported");
    nn::LayerNormOptions o;
    o.epsilon = static_cast<float>(r.number("epsilon", 1e-3));
    o.center = r.boolean("center", true);
    o.scale = r.boolean("scale", true);
    return make<nn::LayerNormalization>(r, o);
  }
};

}  // namespace

std::shared_ptr<const Codec> layer_normalization_codec() { return std::make_shared<LayerNormalizationCodec>(); }

}  // namespace maas::detail::keras
