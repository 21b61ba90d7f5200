// Embedding: a trainable lookup table of vectors, one per index.
#include <string>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"

namespace maas::nn {

Embedding::Embedding(int64_t input_dim, int64_t output_dim) : input_dim_(input_dim), output_dim_(output_dim) {
  MAAS_CHECK(input_dim > 0, "Embedding: input_dim must be positive, got " << input_dim);
  MAAS_CHECK(output_dim > 0, "Embedding: output_dim must be positive, got " << output_dim);
  MAAS_CHECK(input_dim <= kMaxEmbeddingRows, "Embedding: input_dim " << input_dim << " is above 2^24 = "
                                                                     << kMaxEmbeddingRows
                                                                     << "; indices are floats, which hold whole "
                                                                        "numbers exactly only up to 2^24");
  numel({input_dim, output_dim});  // the table's size must be countable
}

Shape Embedding::compute_output_shape(const Shape& input_shape) const {
  Shape out = input_shape;
  out.push_back(output_dim_);
  numel(out);
  return out;
}

Shape Embedding::build(const Shape& input_shape) {
  Shape out = compute_output_shape(input_shape);
  if (!built()) {
    Tensor e = Tensor::empty({input_dim_, output_dim_});
    initialize_uniform(e, -0.05f, 0.05f, default_generator());
    embeddings_ = register_parameter("embeddings", e);
    mark_built(input_shape);
  }
  return out;
}

Tensor Embedding::forward(const Tensor& x) {
  // The table does not depend on the input's shape: any sequence length goes.
  if (!built()) ensure_built(x);
  MAAS_CHECK(x.defined() && x.dim() >= 1, "Embedding '" << name() << "': input of shape "
                                                        << (x.defined() ? maas::to_string(x.shape()) : "(undefined)")
                                                        << " has no batch dimension");
  try {
    return embedding(x, embeddings_);
  } catch (const Error& e) {
    std::string msg = e.what();
    const std::string op = "embedding: ";
    if (msg.compare(0, op.size(), op) == 0) msg.erase(0, op.size());
    MAAS_FAIL("Embedding '" << name() << "': " << msg);
  }
}

EmbeddingTranspose::EmbeddingTranspose(std::shared_ptr<Embedding> source, bool use_bias)
    : source_(std::move(source)), use_bias_(use_bias) {
  MAAS_CHECK(source_ != nullptr, "EmbeddingTranspose: the Embedding is null");
}

Shape EmbeddingTranspose::compute_output_shape(const Shape& input_shape) const {
  MAAS_CHECK(!input_shape.empty() && input_shape.back() == source_->output_dim(),
             "EmbeddingTranspose: input " << batch_shape_string(input_shape) << " must end in the "
                                          << source_->output_dim() << " features of Embedding '" << source_->name()
                                          << "'");
  Shape out = input_shape;
  out.back() = source_->input_dim();
  return out;
}

Shape EmbeddingTranspose::build(const Shape& input_shape) {
  Shape out = compute_output_shape(input_shape);
  if (!built()) {
    if (use_bias_) bias_ = register_parameter("bias", Tensor::zeros({source_->input_dim()}));
    mark_built(input_shape);
  }
  return out;
}

Tensor EmbeddingTranspose::forward(const Tensor& x) {
  if (!built() || x.dim() < 2) ensure_built(x);
  MAAS_CHECK(source_->built(), "EmbeddingTranspose '" << name() << "': Embedding '" << source_->name()
                                                      << "' has no table yet (build it first)");
  MAAS_CHECK(x.size(-1) == source_->output_dim(), "EmbeddingTranspose '" << name() << "' takes "
                                                                          << source_->output_dim()
                                                                          << " features but got a batch of shape "
                                                                          << maas::to_string(x.shape()));
  // The table is read at each call: loading weights into the Embedding
  // changes what this layer computes.
  Tensor logits = matmul(x, source_->embeddings(), false, true);
  return bias_.defined() ? logits + bias_ : logits;
}

}  // namespace maas::nn

// ---- Keras codec: Embedding -----------------------------------------------------------
// maas' 3-D per-sample shapes are NCHW images; Keras' are not: only (None, T)
// and (None,) indices mean the same in both.

namespace maas::detail::keras {

namespace {

class EmbeddingCodec : public Codec {
 public:
  EmbeddingCodec() : Codec({"Embedding"}, {"Embedding"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& emb = as<const nn::Embedding>(m);
    return {ctx.weight("embeddings", {emb.input_dim(), emb.output_dim()}, emb.embeddings())};
  }
  void write_config(const nn::Module& m, const Shape& input, const std::string& where, ojson& c) const override {
    const auto& emb = as<const nn::Embedding>(m);
    MAAS_CHECK(input.size() <= 1, where << " takes indices " << nn::batch_shape_string(input)
                                        << "; Keras files hold an Embedding of (None,) or (None, T) indices only");
    c["input_dim"] = emb.input_dim();
    c["output_dim"] = emb.output_dim();
    ojson init;
    init["class_name"] = "RandomUniform";
    init["config"] = {{"minval", -0.05}, {"maxval", 0.05}, {"seed", nullptr}};
    c["embeddings_initializer"] = init;
    c = with_nulls(c, {"embeddings_regularizer", "activity_regularizer", "embeddings_constraint"});
    c["mask_zero"] = false;
    c["input_length"] = nullptr;
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    if (ctx.input.size() > 1)
      r.bad("takes input " + nn::batch_shape_string(ctx.input) +
            "; maas reads an Embedding of (None,) or (None, T) indices");
    if (r.boolean("mask_zero", false)) r.bad("mask_zero true is not supported (maas has no masking)");
    const int64_t input_dim = r.integer("input_dim", 0), output_dim = r.integer("output_dim", 0);
    if (input_dim <= 0) r.bad("input_dim must be positive");
    if (output_dim <= 0) r.bad("output_dim must be positive");
    return make<nn::Embedding>(r, input_dim, output_dim);
  }
  bool takes_scalar_input() const override { return true; }
};

class EmbeddingTransposeCodec : public Codec {
 public:
  EmbeddingTransposeCodec() : Codec({"EmbeddingTranspose"}, {"EmbeddingTranspose"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& t = as<const nn::EmbeddingTranspose>(m);
    if (!t.use_bias()) return {};
    return {ctx.weight("bias", {t.source()->input_dim()}, t.bias())};
  }
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    const auto& t = as<const nn::EmbeddingTranspose>(m);
    c["embedding"] = t.source()->name();
    c["use_bias"] = t.use_bias();
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const std::string source = r.text("embedding", "");
    if (source.empty()) r.bad("names no embedding layer (config \"embedding\")");
    const auto found = ctx.layers ? ctx.layers->find(source) : decltype(ctx.layers->end()){};
    if (!ctx.layers || found == ctx.layers->end())
      r.bad("uses the table of layer '" + brief(source) + "', which is not a layer read before it");
    auto embedding = std::dynamic_pointer_cast<nn::Embedding>(found->second);
    if (!embedding) r.bad("uses the table of layer '" + brief(source) + "', which is not an Embedding");
    return make<nn::EmbeddingTranspose>(r, embedding, r.boolean("use_bias", false));
  }
};

}  // namespace

std::shared_ptr<const Codec> embedding_codec() { return std::make_shared<EmbeddingCodec>(); }
std::shared_ptr<const Codec> embedding_transpose_codec() { return std::make_shared<EmbeddingTransposeCodec>(); }

}  // namespace maas::detail::keras
