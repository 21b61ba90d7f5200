// QuantizedConv2D and QuantizedDense: int8 layers over the ops in
// ops/lowp/int8_ops.hpp.
#include "maas/nn/quantized.hpp"

#include <algorithm>
#include <cmath>

#include "maas/error.hpp"
#include "nn/keras_codec.hpp"
#include "nn/padding.hpp"
#include "ops/lowp/int8_ops.hpp"

namespace maas::nn {

void QuantizedLayer::set_input_quant(ActivationQuant q) {
  MAAS_CHECK(std::isfinite(q.scale) && q.scale > 0.f,
             type_name() << " '" << name() << "': input scale " << q.scale << " must be finite and positive");
  MAAS_CHECK(q.zero_point >= 0 && q.zero_point <= 255,
             type_name() << " '" << name() << "': input zero point " << q.zero_point << " is outside [0, 255]");
  MAAS_CHECK(built(), type_name() << " '" << name() << "': build it before setting its input quantization");
  input_scale_.data()[0] = q.scale;
  input_zero_point_.data()[0] = static_cast<float>(q.zero_point);
  repack();
}

ActivationQuant QuantizedLayer::input_quant() const {
  ActivationQuant q;
  if (!input_scale_.defined()) return q;
  q.scale = input_scale_.data()[0];
  const float z = input_zero_point_.data()[0];
  q.zero_point = z >= 0.f && z <= 255.f ? static_cast<int32_t>(z) : -1;  // -1: refused when packed
  return q;
}

void QuantizedLayer::repack() {
  const std::lock_guard<std::mutex> lock(cache_->mutex);
  cache_->layer.reset();
}

void QuantizedLayer::create_buffers(const Shape& kernel_shape, int64_t out, bool use_bias) {
  kernel_ = register_buffer("kernel", Tensor::zeros(kernel_shape));
  kernel_scale_ = register_buffer("kernel_scale", Tensor::ones({out}));
  if (use_bias) bias_ = register_buffer("bias", Tensor::zeros({out}));
  input_scale_ = register_buffer("input_scale", Tensor::scalar(1.f));
  input_zero_point_ = register_buffer("input_zero_point", Tensor::scalar(0.f));
}

void QuantizedLayer::quantize_weights(const Tensor& kernel, const Tensor& bias) {
  MAAS_CHECK(built(), type_name() << " '" << name() << "': build it before setting its weights");
  MAAS_CHECK(kernel.defined() && kernel.shape() == kernel_.shape(),
             type_name() << " '" << name() << "': kernel " << (kernel.defined() ? maas::to_string(kernel.shape()) : "undefined")
                         << ", expected " << maas::to_string(kernel_.shape()));
  MAAS_CHECK(bias.defined() == bias_.defined() && (!bias.defined() || bias.shape() == bias_.shape()),
             type_name() << " '" << name() << "': bias " << (bias.defined() ? maas::to_string(bias.shape()) : "undefined")
                         << ", expected " << (bias_.defined() ? maas::to_string(bias_.shape()) : "none (use_bias is false)"));
  const auto [codes, scale] = quantize_per_channel(kernel, out_dim());
  std::copy(codes.data(), codes.data() + codes.numel(), kernel_.data());
  std::copy(scale.data(), scale.data() + scale.numel(), kernel_scale_.data());
  if (bias.defined()) std::copy(bias.data(), bias.data() + bias.numel(), bias_.data());
  repack();
}

const maas::detail::Int8Layer& QuantizedLayer::packed() {
  const std::lock_guard<std::mutex> lock(cache_->mutex);
  if (!cache_->layer) {
    try {
      const float z = input_zero_point_.data()[0];
      MAAS_CHECK(z == std::nearbyint(z), "input zero point " << z << " is not an integer");
      cache_->layer = pack();
    } catch (const Error& e) {
      MAAS_FAIL(type_name() << " '" << name() << "': " << e.what());
    }
  }
  return *cache_->layer;
}

std::pair<Tensor, Tensor> quantize_per_channel(const Tensor& w, int out_dim) {
  MAAS_CHECK(w.defined() && (out_dim == 0 || out_dim == 1) && w.dim() > out_dim,
             "quantize_per_channel: weight " << (w.defined() ? maas::to_string(w.shape()) : "undefined")
                                             << " has no dimension " << out_dim);
  const int64_t O = w.size(out_dim);
  // Element e belongs to channel (e / inner) % O.
  const int64_t inner = out_dim == 0 ? w.numel() / O : 1;
  Tensor codes = Tensor::empty(w.shape()), scale = Tensor::zeros({O});
  const float* src = w.data();
  float* s = scale.data();
  for (int64_t e = 0; e < w.numel(); ++e) {
    MAAS_CHECK(std::isfinite(src[e]), "quantize_per_channel: the weight holds " << src[e]);
    float& m = s[(e / inner) % O];
    m = std::max(m, std::fabs(src[e]));
  }
  for (int64_t o = 0; o < O; ++o) s[o] = s[o] > 0.f ? s[o] / 127.f : 1.f;
  float* q = codes.data();
  for (int64_t e = 0; e < w.numel(); ++e)
    q[e] = std::min(127.f, std::max(-127.f, std::nearbyint(src[e] / s[(e / inner) % O])));
  return {codes, scale};
}

// ---- QuantizedConv2D ----------------------------------------------------------

QuantizedConv2D::QuantizedConv2D(int64_t filters, Pair kernel_size, Conv2DOptions options)
    : conv_(filters, kernel_size, options) {}

Shape QuantizedConv2D::compute_output_shape(const Shape& input_shape) const {
  try {
    return conv_.compute_output_shape(input_shape);
  } catch (const Error& e) {
    std::string m = e.what();
    if (m.rfind("Conv2D", 0) == 0) m = "Quantized" + m;
    throw Error(m);
  }
}

Shape QuantizedConv2D::build(const Shape& input_shape) {
  const Shape out = compute_output_shape(input_shape);
  const int64_t c = input_shape[0];
  if (!built()) {
    create_buffers({filters(), c, kernel_size()[0], kernel_size()[1]}, filters(), options().use_bias);
    mark_built(input_shape);
  } else {
    MAAS_CHECK(c == kernel_.size(1), "QuantizedConv2D '" << name() << "' has " << kernel_.size(1)
                                                         << " input channels but got input "
                                                         << batch_shape_string(input_shape));
  }
  return out;
}

std::shared_ptr<maas::detail::Int8Layer> QuantizedConv2D::pack() const {
  const bool relu = options().activation == Activation::ReLU;
  const ActivationQuant in = input_quant();
  return std::make_shared<maas::detail::Int8Layer>(maas::detail::int8_conv_layer(
      kernel_.data(), filters(), kernel_.size(1), kernel_size()[0], kernel_size()[1], kernel_scale_.data(),
      bias_.defined() ? bias_.data() : nullptr, in.scale, in.zero_point, relu));
}

Tensor QuantizedConv2D::forward(const Tensor& x) {
  MAAS_CHECK(x.dim() == 4, "QuantizedConv2D '" << name() << "': input " << maas::to_string(x.shape())
                                               << " must be 4-D [N, C, H, W]");
  ensure_built(x);
  const Conv2DOptions& o = options();
  maas::detail::Int8ConvGeometry g;
  g.C = x.size(1), g.kh = kernel_size()[0], g.kw = kernel_size()[1];
  g.stride_h = o.strides[0], g.stride_w = o.strides[1], g.dil_h = o.dilation_rate[0], g.dil_w = o.dilation_rate[1];
  if (o.padding == Padding::Same) {
    const auto ph = nn::detail::same_padding(x.size(2), g.kh, g.stride_h, g.dil_h);
    const auto pw = nn::detail::same_padding(x.size(3), g.kw, g.stride_w, g.dil_w);
    g.pad_top = ph.before, g.pad_bottom = ph.after, g.pad_left = pw.before, g.pad_right = pw.after;
  } else if (o.padding == Padding::Explicit) {
    g.pad_top = g.pad_bottom = o.explicit_padding[0];
    g.pad_left = g.pad_right = o.explicit_padding[1];
  }
  const bool relu = o.activation == Activation::ReLU;
  Tensor y = maas::detail::int8_conv2d(x, packed(), g);
  return relu ? y : apply(o.activation, y);
}

// ---- QuantizedDense -------------------------------------------------------------

QuantizedDense::QuantizedDense(int64_t units, DenseOptions options) : dense_(units, options) {}

Shape QuantizedDense::compute_output_shape(const Shape& input_shape) const {
  MAAS_CHECK(!input_shape.empty() && input_shape.back() > 0,
             "QuantizedDense: input " << batch_shape_string(input_shape) << " needs a last dimension of features");
  numel({input_shape.back(), units()});
  Shape out = input_shape;
  out.back() = units();
  return out;
}

Shape QuantizedDense::build(const Shape& input_shape) {
  const Shape out = compute_output_shape(input_shape);
  if (!built()) {
    create_buffers({input_shape.back(), units()}, units(), options().use_bias);
    mark_built(input_shape);
  } else {
    MAAS_CHECK(input_shape.back() == kernel_.size(0), "QuantizedDense '" << name() << "' has " << kernel_.size(0)
                                                                         << " inputs but got input "
                                                                         << batch_shape_string(input_shape));
  }
  return out;
}

std::shared_ptr<maas::detail::Int8Layer> QuantizedDense::pack() const {
  const bool relu = options().activation == Activation::ReLU;
  const ActivationQuant in = input_quant();
  return std::make_shared<maas::detail::Int8Layer>(
      maas::detail::int8_dense_layer(kernel_.data(), kernel_.size(0), units(), kernel_scale_.data(),
                               bias_.defined() ? bias_.data() : nullptr, in.scale, in.zero_point, relu));
}

Tensor QuantizedDense::forward(const Tensor& x) {
  if (!built() || x.dim() < 2) ensure_built(x);
  MAAS_CHECK(x.size(-1) == kernel_.size(0), "QuantizedDense '" << name() << "' has " << kernel_.size(0)
                                                               << " inputs but got a batch of shape "
                                                               << maas::to_string(x.shape()));
  const bool relu = options().activation == Activation::ReLU;
  const maas::detail::Int8Layer& L = packed();
  Tensor y = x.dim() == 2 ? maas::detail::int8_dense(x, L)
                          : reshape(maas::detail::int8_dense(reshape(x, {-1, kernel_.size(0)}), L), [&] {
                              Shape s = x.shape();
                              s.back() = units();
                              return s;
                            }());
  return relu ? y : apply(options().activation, y);
}

}  // namespace maas::nn

// ---- Keras codecs: QuantizedConv2D, QuantizedDense --------------------------------
// Conv2D's and Dense's config and weights (the kernel as int8 codes), then
// the per-channel kernel scales and the input's quantization.

namespace maas::detail::keras {

namespace {

void quantized_weights(const nn::QuantizedLayer& q, int64_t out, LayerContext& ctx, std::vector<Weight>& w) {
  w.front().dtype = Dtype::I8;
  w.push_back(ctx.weight("kernel_scale", {out}, q.kernel_scale()));
  w.push_back(ctx.weight("input_scale", {}, q.input_scale()));
  w.push_back(ctx.weight("input_zero_point", {}, q.input_zero_point()));
  w.back().dtype = Dtype::I32;
}

class QuantizedConv2DCodec : public Codec {
 public:
  QuantizedConv2DCodec() : Codec({"QuantizedConv2D"}, {"QuantizedConv2D"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& q = as<const nn::QuantizedConv2D>(m);
    std::vector<Weight> w = conv_weights(ctx, q.filters(), q.kernel_size(), q.options(), q.kernel(), q.bias());
    quantized_weights(q, q.filters(), ctx, w);
    return w;
  }
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    const auto& q = as<const nn::QuantizedConv2D>(m);
    write_conv_config(c, q.filters(), q.kernel_size(), q.options());
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const nn::Conv2DOptions o = read_conv_options(r, ctx);
    const int64_t filters = r.positive("filters");
    return make<nn::QuantizedConv2D>(r, filters, r.pair("kernel_size", {0, 0}), o);
  }
  bool folds_zero_padding() const override { return true; }
};

class QuantizedDenseCodec : public Codec {
 public:
  QuantizedDenseCodec() : Codec({"QuantizedDense"}, {"QuantizedDense"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& q = as<const nn::QuantizedDense>(m);
    std::vector<Weight> w = dense_weights(ctx, q.units(), q.options().use_bias, q.kernel(), q.bias());
    quantized_weights(q, q.units(), ctx, w);
    return w;
  }
  void write_config(const nn::Module& m, const Shape& input, const std::string& where, ojson& c) const override {
    const auto& q = as<const nn::QuantizedDense>(m);
    MAAS_CHECK(input.size() != 3,
               where << " takes images " << nn::batch_shape_string(input) << ": put a Flatten before it");
    write_dense_config(c, q.units(), q.options());
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const nn::DenseOptions o = read_dense_options(r, ctx);
    return make<nn::QuantizedDense>(r, r.positive("units"), o);
  }
};

}  // namespace

std::shared_ptr<const Codec> quantized_conv2d_codec() { return std::make_shared<QuantizedConv2DCodec>(); }
std::shared_ptr<const Codec> quantized_dense_codec() { return std::make_shared<QuantizedDenseCodec>(); }

}  // namespace maas::detail::keras
