// MaxPool2D and AvgPool2D layers, with Keras' "same"/"valid" padding, and
// GlobalAveragePooling2D.
#include <limits>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
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
