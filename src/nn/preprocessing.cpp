// Rescaling and Normalization layers: Keras' input preprocessing, built
// from the element-wise ops so that gradients reach the input.
#include <algorithm>
#include <cmath>
#include <utility>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"

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

// ---- Keras codecs: Rescaling, Normalization -------------------------------------------

namespace maas::detail::keras {

namespace {

class RescalingCodec : public Codec {
 public:
  RescalingCodec() : Codec({"Rescaling"}, {"Rescaling"}) {}
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    const auto& rs = as<const nn::Rescaling>(m);
    c["scale"] = short_decimal(rs.scale());
    c["offset"] = short_decimal(rs.offset());
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override {
    const double scale = r.number("scale", 1.0), offset = r.number("offset", 0.0);
    try {
      return std::make_shared<nn::Rescaling>(static_cast<float>(scale), static_cast<float>(offset));
    } catch (const Error& e) {
      r.bad(e.what());
    }
  }
};

// Keras' Normalization over the last axis (maas' channels). Statistics in
// the config (a number or one per channel) make a layer without weights in
// the file; null ones are its weights mean, variance (in Keras' (H, W, C)
// order after a Flatten of images) and count.
class NormalizationCodec : public Codec {
 public:
  NormalizationCodec() : Codec({"Normalization"}, {"Normalization"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& norm = as<const nn::Normalization>(m);
    MAAS_CHECK(!(ctx.flat_image() && norm.stats_in_config()),
               ctx.who << ": Normalization '" << m.name()
                       << "' follows a Flatten of images and keeps its statistics in model_config, where they would "
                          "be in maas' (C, H, W) order; call set_stats_in_config(false) to store them as weights");
    if (norm.stats_in_config()) return {};
    // Shapes from the input (the tensors are undefined until the layer is built).
    return {ctx.weight("mean", {ctx.input.at(0)}, norm.mean(), Layout::FlatVector),
            ctx.weight("variance", {ctx.input.at(0)}, norm.variance(), Layout::FlatVector),
            ctx.weight("count", {}, norm.count())};
  }
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    const auto& norm = as<const nn::Normalization>(m);
    c["axis"] = ojson::array({-1});  // the channels, last in Keras
    c["invert"] = false;
    c["mean"] = nullptr;  // null: the statistics are the layer's weights
    c["variance"] = nullptr;
    if (norm.stats_in_config()) {
      c["mean"] = ojson::array();
      c["variance"] = ojson::array();
      for (float v : norm.mean().to_vector()) c["mean"].push_back(short_decimal(v));
      for (float v : norm.variance().to_vector()) c["variance"].push_back(short_decimal(v));
    }
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const Shape& cur = ctx.input;
    if (cur.size() != 1 && cur.size() != 3)
      r.bad("input " + nn::batch_shape_string(cur) + " must be (None, features) or images");
    const std::string axis_msg = "maas normalises over the channels, the last axis: axis -1";
    if (r.has("axis")) {  // absent: Keras' default, -1
      const json& axis = r.at("axis");
      int64_t a = 0;
      if (axis.is_number_integer()) a = axis.get<int64_t>();
      else if (axis.is_array() && axis.size() == 1 && axis[0].is_number_integer()) a = axis[0].get<int64_t>();
      else r.bad("axis " + axis.dump() + " is not supported (" + axis_msg + ")");
      if (a != -1 && a != static_cast<int64_t>(cur.size()))
        r.bad("axis " + axis.dump() + " is not supported (" + axis_msg + ")");
    } else if (r.cfg->contains("axis")) {
      r.bad("axis null (one mean over everything) is not supported (" + axis_msg + ")");
    }
    if (r.boolean("invert", false)) r.bad("invert true (de-normalisation) is not supported");
    if (r.has("mean") != r.has("variance")) r.bad("mean and variance must be both given or both null");
    if (!r.has("mean")) return std::make_shared<nn::Normalization>();
    if (ctx.after_image_flatten)  // the statistics would be in Keras' (H, W, C) order
      r.bad("follows a Flatten of images and gives its statistics in model_config; maas reads such statistics "
            "only before the Flatten");
    const auto channels = static_cast<size_t>(cur[0]);
    auto values = [&](const char* key) {
      const json& v = r.at(key);
      std::vector<float> out;
      if (v.is_number()) out.assign(channels, v.get<float>());
      else if (v.is_array() && v.size() == channels)
        for (const json& e : v) {
          if (!e.is_number()) r.bad(std::string("'") + key + "' holds " + e.dump() + ", not a number");
          out.push_back(e.get<float>());
        }
      else r.bad(std::string("'") + key + "' must be a number or a list of " + std::to_string(channels) +
                 " (one per channel), got " + (v.is_array() ? std::to_string(v.size()) + " values" : v.dump()));
      return out;
    };
    std::vector<float> mean = values("mean"), variance = values("variance");
    try {
      auto layer = std::make_shared<nn::Normalization>(std::move(mean), std::move(variance));
      layer->set_stats_in_config(true);
      return layer;
    } catch (const Error& e) {
      r.bad(e.what());
    }
  }
  // Per-feature statistics keep a flattened image's order (and follow it).
  Shape flat_order(const nn::Module&, const std::vector<Shape>& ins, const std::vector<Shape>& flat_ins, const Shape&,
                   const std::string&) const override {
    return !flat_ins[0].empty() && ins[0].size() == 1 ? flat_ins[0] : Shape{};
  }
};

}  // namespace

std::shared_ptr<const Codec> rescaling_codec() { return std::make_shared<RescalingCodec>(); }
std::shared_ptr<const Codec> normalization_codec() { return std::make_shared<NormalizationCodec>(); }

}  // namespace maas::detail::keras
