// Dense: y = x kernel + bias, over the last axis of inputs of any rank.
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"

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
  // [..., in] x [in, units]: the leading dimensions fold into the rows of one product.
  Tensor h = matmul(x, kernel_);
  if (bias_.defined()) h = h + bias_;
  return apply(options_.activation, h);
}

}  // namespace maas::nn

// ---- Keras codec: Dense ---------------------------------------------------------

namespace maas::detail::keras {

std::vector<Weight> dense_weights(LayerContext& ctx, int64_t units, bool use_bias, const Tensor& kernel,
                                  const Tensor& bias) {
  std::vector<Weight> w{ctx.weight("kernel", {ctx.input.back(), units}, kernel, Layout::FlatRows)};
  if (use_bias) w.push_back(ctx.weight("bias", {units}, bias));
  return w;
}

void write_dense_config(ojson& c, int64_t units, const nn::DenseOptions& o) {
  c["units"] = units;
  kernel_fields(c, o.activation, o.use_bias, o.kernel_initializer, o.bias_initializer);
}

nn::DenseOptions read_dense_options(const Reading& r, const ReadContext& ctx) {
  if (ctx.input.size() == 3)
    r.bad("takes images directly; Keras applies it over the channels (channels_last), maas over the width "
          "(NCHW), so maas cannot load it (a Flatten before it would do)");
  nn::DenseOptions o;
  read_kernel_fields(r, o);
  return o;
}

namespace {

class DenseCodec : public Codec {
 public:
  DenseCodec() : Codec({"Dense"}, {"Dense"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& d = as<const nn::Dense>(m);
    return dense_weights(ctx, d.units(), d.options().use_bias, d.kernel(), d.bias());
  }
  void write_config(const nn::Module& m, const Shape& input, const std::string& where, ojson& c) const override {
    const auto& d = as<const nn::Dense>(m);
    MAAS_CHECK(input.size() != 3, where << " takes images " << nn::batch_shape_string(input)
                                        << ": maas applies Dense over the width (NCHW), Keras over the channels "
                                           "(channels_last), so Keras cannot express it; put a Flatten before the "
                                           "Dense");
    write_dense_config(c, d.units(), d.options());
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const nn::DenseOptions o = read_dense_options(r, ctx);
    return make<nn::Dense>(r, r.positive("units"), o);
  }
};

}  // namespace

std::shared_ptr<const Codec> dense_codec() { return std::make_shared<DenseCodec>(); }

}  // namespace maas::detail::keras
