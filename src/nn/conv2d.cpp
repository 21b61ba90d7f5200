// Conv2D: the layer over the conv2d op, with Keras' "same"/"valid" padding.
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"
#include "nn/padding.hpp"

namespace maas::nn {

Conv2D::Conv2D(int64_t filters, Pair kernel_size, Conv2DOptions options)
    : filters_(filters), kernel_size_(kernel_size), options_(options) {
  MAAS_CHECK(filters > 0, "Conv2D: filters must be positive, got " << filters);
  MAAS_CHECK(kernel_size[0] > 0 && kernel_size[1] > 0,
             "Conv2D: kernel_size must be positive, got " << kernel_size[0] << "x" << kernel_size[1]);
  for (int i = 0; i < 2; ++i) {
    MAAS_CHECK(options.strides[i] > 0, "Conv2D: strides must be positive, got " << options.strides[i]);
    MAAS_CHECK(options.dilation_rate[i] > 0, "Conv2D: dilation_rate must be positive, got " << options.dilation_rate[i]);
    MAAS_CHECK(options.explicit_padding[i] >= 0, "Conv2D: padding must be non-negative, got " << options.explicit_padding[i]);
  }
}

Shape Conv2D::compute_output_shape(const Shape& input_shape) const {
  MAAS_CHECK(input_shape.size() == 3, "Conv2D: input " << batch_shape_string(input_shape)
                                                       << " must be images (None, channels, height, width)");
  const int64_t c = input_shape[0];
  Shape out{filters_, 0, 0};
  for (int i = 0; i < 2; ++i) {
    const int64_t in = input_shape[1 + i], k = kernel_size_[i], s = options_.strides[i], d = options_.dilation_rate[i];
    int64_t pad = 0;
    if (options_.padding == Padding::Same) {
      const auto p = detail::same_padding(in, k, s, d);
      pad = p.before + p.after;
    } else if (options_.padding == Padding::Explicit) {
      pad = detail::both_sides(options_.explicit_padding[i]);
    }
    out[1 + i] = detail::window_out(in, k, s, d, pad);
    MAAS_CHECK(out[1 + i] >= 1, "Conv2D: kernel " << kernel_size_[0] << "x" << kernel_size_[1]
                                                  << " does not fit input " << batch_shape_string(input_shape));
  }
  numel({filters_, c, kernel_size_[0], kernel_size_[1]});  // the kernel's size must be countable
  return out;
}

Shape Conv2D::build(const Shape& input_shape) {
  const Shape out = compute_output_shape(input_shape);
  const int64_t c = input_shape[0];
  if (!built()) {
    const int64_t kh = kernel_size_[0], kw = kernel_size_[1];
    Generator& gen = default_generator();
    Tensor k = Tensor::empty({filters_, c, kh, kw});
    const int64_t taps = maas::detail::checked_mul(kh, kw, "Conv2D: kernel size");
    const int64_t fan_in = maas::detail::checked_mul(c, taps, "Conv2D: fan in");
    const int64_t fan_out = maas::detail::checked_mul(filters_, taps, "Conv2D: fan out");
    initialize(k, options_.kernel_initializer, fan_in, fan_out, gen);
    kernel_ = register_parameter("kernel", k);
    if (options_.use_bias) {
      Tensor b = Tensor::empty({filters_});
      initialize(b, options_.bias_initializer, fan_in, fan_out, gen);
      bias_ = register_parameter("bias", b);
    }
    mark_built(input_shape);
  } else {
    MAAS_CHECK(c == kernel_.size(1), "Conv2D '" << name() << "' has " << kernel_.size(1)
                                                << " input channels but got input " << batch_shape_string(input_shape));
  }
  return out;
}

Tensor Conv2D::forward(const Tensor& x) {
  ensure_built(x);
  Conv2dOptions o;
  o.stride = options_.strides;
  o.dilation = options_.dilation_rate;
  Tensor in = x;
  if (options_.padding == Padding::Explicit) {
    o.padding = options_.explicit_padding;
  } else if (options_.padding == Padding::Same) {
    const auto ph = detail::same_padding(x.size(2), kernel_size_[0], o.stride[0], o.dilation[0]);
    const auto pw = detail::same_padding(x.size(3), kernel_size_[1], o.stride[1], o.dilation[1]);
    if (ph.before == ph.after && pw.before == pw.after) {
      o.padding = {ph.before, pw.before};
    } else {
      in = pad2d(x, ph.before, ph.after, pw.before, pw.after);
    }
  }
  return apply(options_.activation, conv2d(in, kernel_, bias_, o));
}

}  // namespace maas::nn

// ---- Keras codec: Conv2D --------------------------------------------------------

namespace maas::detail::keras {

std::vector<Weight> conv_weights(LayerContext& ctx, int64_t filters, const Pair& kernel_size,
                                 const nn::Conv2DOptions& o, const Tensor& kernel, const Tensor& bias) {
  zero_padding_before(ctx, o.padding, o.explicit_padding);
  std::vector<Weight> w{
      ctx.weight("kernel", {filters, ctx.input.at(0), kernel_size[0], kernel_size[1]}, kernel, Layout::ConvKernel)};
  if (o.use_bias) w.push_back(ctx.weight("bias", {filters}, bias));
  return w;
}

void write_conv_config(ojson& c, int64_t filters, const Pair& kernel_size, const nn::Conv2DOptions& o) {
  c["filters"] = filters;
  c["kernel_size"] = pair_json(kernel_size);
  c["strides"] = pair_json(o.strides);
  c["padding"] = padding_text(o.padding);
  c["data_format"] = "channels_last";
  c["dilation_rate"] = pair_json(o.dilation_rate);
  c["groups"] = 1;
  kernel_fields(c, o.activation, o.use_bias, o.kernel_initializer, o.bias_initializer);
}

nn::Conv2DOptions read_conv_options(const Reading& r, ReadContext& ctx) {
  r.channels_last();
  if (r.integer("groups", 1) != 1) r.bad("groups " + std::to_string(r.integer("groups", 1)) + " is not supported");
  nn::Conv2DOptions o;
  o.strides = r.pair("strides", {1, 1});
  o.dilation_rate = r.pair("dilation_rate", {1, 1});
  take_zero_padding(r, ctx, r.padding(), o.padding, o.explicit_padding);
  read_kernel_fields(r, o);
  return o;
}

namespace {

class Conv2DCodec : public Codec {
 public:
  Conv2DCodec() : Codec({"Conv2D", "Convolution2D"}, {"Conv2D"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& conv = as<const nn::Conv2D>(m);
    return conv_weights(ctx, conv.filters(), conv.kernel_size(), conv.options(), conv.kernel(), conv.bias());
  }
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    const auto& conv = as<const nn::Conv2D>(m);
    write_conv_config(c, conv.filters(), conv.kernel_size(), conv.options());
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const nn::Conv2DOptions o = read_conv_options(r, ctx);
    const int64_t filters = r.positive("filters");
    return make<nn::Conv2D>(r, filters, r.pair("kernel_size", {0, 0}), o);
  }
  bool folds_zero_padding() const override { return true; }
};

}  // namespace

std::shared_ptr<const Codec> conv2d_codec() { return std::make_shared<Conv2DCodec>(); }

}  // namespace maas::detail::keras
