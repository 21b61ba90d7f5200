// MaxPool2D and AvgPool2D layers, with Keras' "same"/"valid" padding, and
// GlobalAveragePooling2D.
#include <limits>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"
#include "nn/padding.hpp"

namespace maas::nn {

namespace {

Pair effective_strides(const Pair& pool, const Pool2DOptions& o) {
  return {o.strides[0] > 0 ? o.strides[0] : pool[0], o.strides[1] > 0 ? o.strides[1] : pool[1]};
}

void check_pool(const char* layer, const Pair& pool, const Pool2DOptions& o) {
  for (int i = 0; i < 2; ++i) {
    MAAS_CHECK(pool[i] > 0, layer << ": pool_size must be positive, got " << pool[0] << "x" << pool[1]);
    MAAS_CHECK(o.strides[i] >= 0, layer << ": strides must be positive (or 0 for pool_size), got " << o.strides[i]);
    MAAS_CHECK(o.explicit_padding[i] >= 0, layer << ": padding must be non-negative, got " << o.explicit_padding[i]);
  }
}

Shape pool_output(const char* layer, const Shape& in, const Pair& pool, const Pool2DOptions& o) {
  MAAS_CHECK(in.size() == 3, layer << ": input " << batch_shape_string(in)
                                   << " must be images (None, channels, height, width)");
  const Pair s = effective_strides(pool, o);
  Shape out{in[0], 0, 0};
  for (int i = 0; i < 2; ++i) {
    int64_t pad = 0;
    if (o.padding == Padding::Same) {
      const auto p = detail::same_padding(in[1 + i], pool[i], s[i], 1);
      pad = p.before + p.after;
    } else if (o.padding == Padding::Explicit) {
      pad = detail::both_sides(o.explicit_padding[i]);
    }
    out[1 + i] = detail::window_out(in[1 + i], pool[i], s[i], 1, pad);
    MAAS_CHECK(out[1 + i] >= 1, layer << ": pool " << pool[0] << "x" << pool[1] << " does not fit input "
                                      << batch_shape_string(in));
  }
  return out;
}

}  // namespace

MaxPool2D::MaxPool2D(Pair pool_size, Pool2DOptions options) : pool_size_(pool_size), options_(options) {
  check_pool("MaxPool2D", pool_size, options);
}

Shape MaxPool2D::compute_output_shape(const Shape& input_shape) const {
  return pool_output("MaxPool2D", input_shape, pool_size_, options_);
}

Shape MaxPool2D::build(const Shape& input_shape) {
  Shape out = compute_output_shape(input_shape);
  mark_built(input_shape);
  return out;
}

Tensor MaxPool2D::forward(const Tensor& x) {
  ensure_built(x);
  Pool2dOptions o;
  o.kernel = pool_size_;
  o.stride = effective_strides(pool_size_, options_);
  if (options_.padding == Padding::Explicit) o.padding = options_.explicit_padding;
  if (options_.padding == Padding::Same) {
    const auto ph = detail::same_padding(x.size(2), o.kernel[0], o.stride[0], 1);
    const auto pw = detail::same_padding(x.size(3), o.kernel[1], o.stride[1], 1);
    // Padding with -inf never wins the max, as Keras' "same".
    return max_pool2d(pad2d(x, ph.before, ph.after, pw.before, pw.after, -std::numeric_limits<float>::infinity()), o);
  }
  return max_pool2d(x, o);
}

AvgPool2D::AvgPool2D(Pair pool_size, Pool2DOptions options) : pool_size_(pool_size), options_(options) {
  check_pool("AvgPool2D", pool_size, options);
}

Shape AvgPool2D::compute_output_shape(const Shape& input_shape) const {
  return pool_output("AvgPool2D", input_shape, pool_size_, options_);
}

Shape AvgPool2D::build(const Shape& input_shape) {
  Shape out = compute_output_shape(input_shape);
  mark_built(input_shape);
  return out;
}

Tensor AvgPool2D::forward(const Tensor& x) {
  ensure_built(x);
  Pool2dOptions o;
  o.kernel = pool_size_;
  o.stride = effective_strides(pool_size_, options_);
  if (options_.padding == Padding::Explicit) o.padding = options_.explicit_padding;
  if (options_.padding == Padding::Same) {
    // Keras averages over the real pixels only: divide the window sums of
    // the zero-padded input by those of a padded mask of ones.
    const auto ph = detail::same_padding(x.size(2), o.kernel[0], o.stride[0], 1);
    const auto pw = detail::same_padding(x.size(3), o.kernel[1], o.stride[1], 1);
    const Tensor sums = avg_pool2d(pad2d(x, ph.before, ph.after, pw.before, pw.after), o);
    const Tensor ones = Tensor::ones({1, 1, x.size(2), x.size(3)});
    const Tensor counts = avg_pool2d(pad2d(ones, ph.before, ph.after, pw.before, pw.after), o);
    return sums / counts;
  }
  return avg_pool2d(x, o);
}

Shape GlobalAveragePooling2D::compute_output_shape(const Shape& input_shape) const {
  MAAS_CHECK(input_shape.size() == 3 && input_shape[1] > 0 && input_shape[2] > 0,
             "GlobalAveragePooling2D: input " << batch_shape_string(input_shape)
                                              << " must be images (None, channels, height, width)");
  return {input_shape[0]};
}

Shape GlobalAveragePooling2D::build(const Shape& input_shape) {
  Shape out = compute_output_shape(input_shape);
  mark_built(input_shape);
  return out;
}

Tensor GlobalAveragePooling2D::forward(const Tensor& x) {
  ensure_built(x);
  return global_avg_pool2d(x);
}

}  // namespace maas::nn

// ---- Keras codecs: MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D -------

namespace maas::detail::keras {

namespace {

void write_pool_config(ojson& c, const Pair& size, const nn::Pool2DOptions& o) {
  c["pool_size"] = pair_json(size);
  c["padding"] = padding_text(o.padding);
  c["strides"] = pair_json({o.strides[0] > 0 ? o.strides[0] : size[0], o.strides[1] > 0 ? o.strides[1] : size[1]});
  c["data_format"] = "channels_last";
}

// Keras' MaxPooling2D has no explicit padding (and no ZeroPadding2D folds
// into it: it would pad with zeros, not -inf).
class MaxPool2DCodec : public Codec {
 public:
  MaxPool2DCodec() : Codec({"MaxPooling2D", "MaxPool2D"}, {"MaxPooling2D"}) {}
  void write_config(const nn::Module& m, const Shape&, const std::string& where, ojson& c) const override {
    const auto& mp = as<const nn::MaxPool2D>(m);
    const Pair& p = mp.options().explicit_padding;
    MAAS_CHECK(mp.options().padding != nn::Padding::Explicit || (p[0] == 0 && p[1] == 0),
               where << " has explicit padding " << p[0] << "x" << p[1]
                     << ", which Keras' MaxPooling2D cannot express (use Padding::Same or Padding::Valid)");
    write_pool_config(c, mp.pool_size(), mp.options());
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override {
    r.channels_last();
    const Pair size = r.pair("pool_size", {2, 2});
    nn::Pool2DOptions o;
    o.strides = r.pair("strides", size);
    o.padding = r.padding();
    return make<nn::MaxPool2D>(r, size, o);
  }
};

// Explicit padding is a ZeroPadding2D before the layer.
class AvgPool2DCodec : public Codec {
 public:
  AvgPool2DCodec() : Codec({"AveragePooling2D", "AvgPool2D"}, {"AveragePooling2D"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& ap = as<const nn::AvgPool2D>(m);
    zero_padding_before(ctx, ap.options().padding, ap.options().explicit_padding);
    return {};
  }
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    const auto& ap = as<const nn::AvgPool2D>(m);
    write_pool_config(c, ap.pool_size(), ap.options());
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    r.channels_last();
    const Pair size = r.pair("pool_size", {2, 2});
    nn::Pool2DOptions o;
    o.strides = r.pair("strides", size);
    take_zero_padding(r, ctx, r.padding(), o.padding, o.explicit_padding);
    if (o.padding == nn::Padding::Explicit && (2 * o.explicit_padding[0] > size[0] || 2 * o.explicit_padding[1] > size[1]))
      r.bad("the zero padding before it is more than half the pool size, which maas' pooling cannot fold in");
    return make<nn::AvgPool2D>(r, size, o);
  }
  bool folds_zero_padding() const override { return true; }
};

class GlobalAvgPool2DCodec : public Codec {
 public:
  GlobalAvgPool2DCodec() : Codec({"GlobalAveragePooling2D", "GlobalAvgPool2D"}, {"GlobalAveragePooling2D"}) {}
  void write_config(const nn::Module&, const Shape&, const std::string&, ojson& c) const override {
    c["data_format"] = "channels_last";
    c["keepdims"] = false;
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override {
    r.channels_last();
    if (r.boolean("keepdims", false)) r.bad("keepdims true is not supported (maas' layer gives (None, channels))");
    return make<nn::GlobalAveragePooling2D>(r);
  }
};

}  // namespace

std::shared_ptr<const Codec> max_pool2d_codec() { return std::make_shared<MaxPool2DCodec>(); }
std::shared_ptr<const Codec> avg_pool2d_codec() { return std::make_shared<AvgPool2DCodec>(); }
std::shared_ptr<const Codec> global_avg_pool2d_codec() { return std::make_shared<GlobalAvgPool2DCodec>(); }

}  // namespace maas::detail::keras
