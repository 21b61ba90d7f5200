// MultiHeadAttention: Keras' layer on the fused attention op.
#include <limits>
#include <string>
#include <vector>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"

namespace {

// The four projections, in the order of kernel(i) and of Keras' sublayers:
// the names of the layer's parameters ("query_kernel") and of its weights
// in a Keras file ("query/kernel").
const char* const kParts[4] = {"query", "key", "value", "attention_output"};

}  // namespace

namespace maas::nn {

MultiHeadAttention::MultiHeadAttention(int64_t num_heads, int64_t key_dim, MultiHeadAttentionOptions options)
    : heads_(num_heads),
      key_dim_(key_dim),
      value_dim_(options.value_dim > 0 ? options.value_dim : key_dim),
      options_(options),
      gen_(options.seed >= 0 ? static_cast<uint64_t>(options.seed) : default_generator().engine()()) {
  MAAS_CHECK(num_heads > 0, "MultiHeadAttention: num_heads must be positive, got " << num_heads);
  MAAS_CHECK(key_dim > 0, "MultiHeadAttention: key_dim must be positive, got " << key_dim);
  MAAS_CHECK(options.value_dim >= 0, "MultiHeadAttention: value_dim must be positive (or 0 for key_dim), got "
                                         << options.value_dim);
  MAAS_CHECK(options.output_shape >= 0, "MultiHeadAttention: output_shape must be positive (or 0 for the "
                                        "query's features), got "
                                            << options.output_shape);
  MAAS_CHECK(options.dropout >= 0.f && options.dropout < 1.f,
             "MultiHeadAttention: dropout must be in [0, 1), got " << options.dropout);
  for (int64_t dim : {key_dim, value_dim_})
    MAAS_CHECK(dim <= std::numeric_limits<int64_t>::max() / num_heads,
               "MultiHeadAttention: num_heads " << num_heads << " x " << (dim == key_dim ? "key_dim " : "value_dim ")
                                                << dim << " does not fit a 64-bit size (the projections' width)");
}

Shape MultiHeadAttention::check(const std::vector<Shape>& in) const {
  MAAS_CHECK(in.size() == 2 || in.size() == 3, "MultiHeadAttention: takes {query, value} or {query, value, key}, got "
                                                   << in.size() << " inputs");
  const char* names[3] = {"query", "value", "key"};
  for (size_t i = 0; i < in.size(); ++i)
    MAAS_CHECK(in[i].size() == 2 && in[i][0] > 0 && in[i][1] > 0,
               "MultiHeadAttention: " << names[i] << " " << batch_shape_string(in[i])
                                      << " must be a sequence (None, T, features)");
  const Shape& key = in.size() == 3 ? in[2] : in[1];
  MAAS_CHECK(key[0] == in[1][0], "MultiHeadAttention: key " << batch_shape_string(key) << " and value "
                                                             << batch_shape_string(in[1])
                                                             << " must have the same length");
  return {in[0][0], options_.output_shape > 0 ? options_.output_shape : in[0][1]};
}

Shape MultiHeadAttention::compute_output_shape_many(const std::vector<Shape>& input_shapes) const {
  return check(input_shapes);
}

Shape MultiHeadAttention::compute_output_shape(const Shape& input_shape) const {
  return check({input_shape, input_shape});
}

Shape MultiHeadAttention::build_many(const std::vector<Shape>& input_shapes) {
  const Shape out = check(input_shapes);
  if (!built()) {
    const int64_t qk = heads_ * key_dim_, vw = heads_ * value_dim_;
    const Shape& key = input_shapes.size() == 3 ? input_shapes[2] : input_shapes[1];
    const int64_t rows[4] = {input_shapes[0][1], key[1], input_shapes[1][1], vw};
    const int64_t cols[4] = {qk, qk, vw, out[1]};
    Generator& gen = default_generator();
    for (int i = 0; i < 4; ++i) {
      Tensor k = Tensor::empty({rows[i], cols[i]});
      initialize(k, Init::GlorotUniform, rows[i], cols[i], gen);
      kernels_[i] = register_parameter(std::string(kParts[i]) + "_kernel", k);
      if (options_.use_bias)
        biases_[i] = register_parameter(std::string(kParts[i]) + "_bias", Tensor::zeros({cols[i]}));
    }
    mark_built(input_shapes[0]);
  } else {
    MAAS_CHECK(input_shapes[0][1] == kernels_[0].size(0) && input_shapes[1][1] == kernels_[2].size(0) &&
                   (input_shapes.size() == 2 ? input_shapes[1][1] : input_shapes[2][1]) == kernels_[1].size(0),
               "MultiHeadAttention '" << name() << "' was built for query, key and value features "
                                      << kernels_[0].size(0) << ", " << kernels_[1].size(0) << ", "
                                      << kernels_[2].size(0) << " but got query " << batch_shape_string(input_shapes[0])
                                      << " and value " << batch_shape_string(input_shapes[1]));
  }
  return out;
}

Shape MultiHeadAttention::build(const Shape& input_shape) { return build_many({input_shape, input_shape}); }

Tensor MultiHeadAttention::attend(const Tensor& query, const Tensor& value, const Tensor& key) {
  for (const Tensor* t : {&query, &value, &key})
    MAAS_CHECK(t->defined() && t->dim() == 3, "MultiHeadAttention '" << name() << "': inputs must be batches of "
                                                                        "sequences [B, T, features], got "
                                                                     << (t->defined() ? maas::to_string(t->shape())
                                                                                      : "(undefined)"));
  if (!built())
    build_many({{query.size(1), query.size(2)}, {value.size(1), value.size(2)}, {key.size(1), key.size(2)}});
  const int64_t b = query.size(0), t = query.size(1), s = key.size(1);
  MAAS_CHECK(value.size(0) == b && key.size(0) == b && value.size(1) == s && query.size(2) == kernels_[0].size(0) &&
                 key.size(2) == kernels_[1].size(0) && value.size(2) == kernels_[2].size(0),
             "MultiHeadAttention '" << name() << "' (features: query " << kernels_[0].size(0) << ", key "
                                    << kernels_[1].size(0) << ", value " << kernels_[2].size(0)
                                    << ") got query " << maas::to_string(query.shape()) << ", value "
                                    << maas::to_string(value.shape()) << ", key " << maas::to_string(key.shape()));
  const auto project = [&](const Tensor& x, int i) {
    Tensor h = matmul(x, kernels_[i]);
    return biases_[i].defined() ? h + biases_[i] : h;
  };
  // [B, T, heads * dim] is [B, T, heads, dim]: the attention reads the heads in place.
  const Tensor q = reshape(project(query, 0), {b, t, heads_, key_dim_});
  const Tensor k = reshape(project(key, 1), {b, s, heads_, key_dim_});
  const Tensor v = reshape(project(value, 2), {b, s, heads_, value_dim_});
  AttentionOptions o;
  o.layout = AttentionLayout::bthd;
  o.causal = options_.use_causal_mask;
  if (is_training() && options_.dropout > 0.f) {
    o.dropout = options_.dropout;
    o.generator = &gen_;
  }
  const Tensor heads = scaled_dot_product_attention(q, k, v, o);
  return project(reshape(heads, {b, t, heads_ * value_dim_}), 3);
}

Tensor MultiHeadAttention::forward(const Tensor& x) { return attend(x, x, x); }

Tensor MultiHeadAttention::forward_many(const std::vector<Tensor>& xs) {
  MAAS_CHECK(xs.size() == 2 || xs.size() == 3, "MultiHeadAttention '" << name()
                                                                      << "': takes {query, value} or {query, value, "
                                                                         "key}, got "
                                                                      << xs.size() << " inputs");
  return attend(xs[0], xs[1], xs.size() == 3 ? xs[2] : xs[1]);
}

}  // namespace maas::nn

// ---- Keras codec: MultiHeadAttention ------------------------------------------------
// Keras keeps each projection as an EinsumDense sublayer; the .h5 names its
// weights "<layer>/query/kernel:0" and so on, with the kernels 3-D: (D, heads,
// key_dim) and (heads, value_dim, out). maas' matrices hold the same elements
// in the same order.

namespace maas::detail::keras {

namespace {

class MultiHeadAttentionCodec : public Codec {
 public:
  MultiHeadAttentionCodec() : Codec({"MultiHeadAttention"}, {"MultiHeadAttention"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& a = as<const nn::MultiHeadAttention>(m);
    const int64_t h = a.num_heads(), kd = a.key_dim(), vd = a.value_dim();
    // Per-sample feature counts come from the kernels once built; planned
    // models (not built) list them from the inputs {query, value[, key]}.
    const std::vector<Shape>& in = ctx.inputs;
    const int64_t dq = in[0].back(), dv = in.size() > 1 ? in[1].back() : dq;
    const int64_t dk = in.size() > 2 ? in[2].back() : dv;
    const int64_t dims[4] = {a.kernel(0).defined() ? a.kernel(0).size(0) : dq,
                             a.kernel(1).defined() ? a.kernel(1).size(0) : dk,
                             a.kernel(2).defined() ? a.kernel(2).size(0) : dv, h * vd};
    const int64_t out = a.kernel(3).defined() ? a.kernel(3).size(1)
                                              : (a.options().output_shape > 0 ? a.options().output_shape : dq);
    std::vector<Weight> w;
    for (int i = 0; i < 4; ++i) {
      const std::string part = kParts[i];
      const int64_t cols = i < 2 ? h * kd : i == 2 ? h * vd : out;
      Weight k = ctx.weight(part + "/kernel", {dims[i], cols}, a.kernel(i));
      k.file_shape = i < 3 ? Shape{dims[i], h, i < 2 ? kd : vd} : Shape{h, vd, out};
      w.push_back(k);
      if (!a.options().use_bias) continue;
      Weight b = ctx.weight(part + "/bias", {cols}, a.bias(i));
      b.file_shape = i < 3 ? Shape{h, i < 2 ? kd : vd} : Shape{out};
      w.push_back(b);
    }
    return w;
  }
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    const auto& a = as<const nn::MultiHeadAttention>(m);
    const nn::MultiHeadAttentionOptions& o = a.options();
    c["num_heads"] = a.num_heads();
    c["key_dim"] = a.key_dim();
    c["value_dim"] = a.value_dim();
    c["dropout"] = short_decimal(o.dropout);
    c["use_bias"] = o.use_bias;
    c["output_shape"] = o.output_shape > 0 ? ojson(o.output_shape) : ojson(nullptr);
    c["attention_axes"] = nullptr;
    c["kernel_initializer"] = initializer_json(nn::Init::GlorotUniform);
    c["bias_initializer"] = initializer_json(nn::Init::Zeros);
    c = with_nulls(c, {"kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                       "bias_constraint"});
    // Keras takes it at call time; maas keeps it in the layer (Keras ignores
    // a field it does not know).
    c["use_causal_mask"] = o.use_causal_mask;
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    if (ctx.input.size() != 2)
      r.bad("takes input " + nn::batch_shape_string(ctx.input) + "; maas reads attention over sequences (None, T, C)");
    if (r.has("attention_axes")) {
      const json& axes = r.at("attention_axes");
      const bool last = (axes.is_number_integer() && (axes.get<int64_t>() == 1 || axes.get<int64_t>() == -2)) ||
                        (axes.is_array() && axes.size() == 1 && axes[0].is_number_integer() &&
                         (axes[0].get<int64_t>() == 1 || axes[0].get<int64_t>() == -2));
      if (!last) r.bad("attention_axes " + brief_json(axes) + " is not supported (maas attends over the sequence)");
    }
    nn::MultiHeadAttentionOptions o;
    o.value_dim = r.has("value_dim") ? r.positive("value_dim") : 0;
    o.dropout = static_cast<float>(r.number("dropout", 0.0));
    o.use_bias = r.boolean("use_bias", true);
    if (r.has("output_shape")) {
      const json& os = r.at("output_shape");
      if (os.is_number_integer() && os.get<int64_t>() > 0) o.output_shape = os.get<int64_t>();
      else if (os.is_array() && os.size() == 1 && os[0].is_number_integer() && os[0].get<int64_t>() > 0)
        o.output_shape = os[0].get<int64_t>();
      else r.bad("output_shape " + brief_json(os) + " is not supported (maas takes one positive feature count)");
    }
    o.use_causal_mask = r.boolean("use_causal_mask", false);
    return make<nn::MultiHeadAttention>(r, r.positive("num_heads"), r.positive("key_dim"), o);
  }
};

}  // namespace

std::shared_ptr<const Codec> multi_head_attention_codec() { return std::make_shared<MultiHeadAttentionCodec>(); }

}  // namespace maas::detail::keras
