// PositionEmbedding: a learned vector per position, as keras_hub's.
#include <vector>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"

namespace maas::nn {

PositionEmbedding::PositionEmbedding(int64_t sequence_length) : length_(sequence_length) {
  MAAS_CHECK(sequence_length > 0 && sequence_length <= kMaxEmbeddingRows,
             "PositionEmbedding: sequence_length must be in [1, 2^24], got " << sequence_length);
}

Shape PositionEmbedding::compute_output_shape(const Shape& input_shape) const {
  MAAS_CHECK(input_shape.size() == 2 && input_shape[1] > 0,
             "PositionEmbedding: input " << batch_shape_string(input_shape) << " must be a sequence (None, T, C)");
  MAAS_CHECK(input_shape[0] <= length_, "PositionEmbedding: a sequence of " << input_shape[0]
                                                                            << " positions is longer than the "
                                                                            << length_ << " it has embeddings for");
  return input_shape;
}

Shape PositionEmbedding::build(const Shape& input_shape) {
  compute_output_shape(input_shape);
  if (!built()) {
    const int64_t c = input_shape[1];
    Tensor e = Tensor::empty({length_, c});
    initialize(e, Init::GlorotUniform, length_, c, default_generator());
    embeddings_ = register_parameter("embeddings", e);
    mark_built(input_shape);
  }
  return input_shape;
}

Tensor PositionEmbedding::forward(const Tensor& x) {
  // Any length up to sequence_length goes; the features must match.
  if (!built() || x.dim() != 3) ensure_built(x);
  const int64_t c = embeddings_.size(1), t = x.size(1);
  MAAS_CHECK(x.size(2) == c && t <= length_,
             "PositionEmbedding '" << name() << "' has " << length_ << " positions of " << c
                                   << " features but got a batch of shape " << maas::to_string(x.shape()));
  // Row t of the table for every (sample, position): a gather, whose
  // gradient sums over the batch into the rows used.
  Tensor positions = Tensor::empty({x.size(0), t});
  for (int64_t b = 0; b < x.size(0); ++b)
    for (int64_t i = 0; i < t; ++i) positions.data()[b * t + i] = static_cast<float>(i);
  return embedding(positions, embeddings_);
}

}  // namespace maas::nn

// ---- Keras codec: PositionEmbedding ----------------------------------------------
// keras_hub's (formerly keras_nlp's) layer: a custom object to Keras itself.

namespace maas::detail::keras {

namespace {

class PositionEmbeddingCodec : public Codec {
 public:
  PositionEmbeddingCodec()
      : Codec({"PositionEmbedding", "keras_hub>PositionEmbedding", "keras_nlp>PositionEmbedding"},
              {"PositionEmbedding"}) {}
  std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
    const auto& p = as<const nn::PositionEmbedding>(m);
    return {ctx.weight("embeddings", {p.sequence_length(), ctx.input.back()}, p.embeddings())};
  }
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    c["sequence_length"] = as<const nn::PositionEmbedding>(m).sequence_length();
    c["initializer"] = initializer_json(nn::Init::GlorotUniform);
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    if (ctx.input.size() != 2)
      r.bad("takes input " + nn::batch_shape_string(ctx.input) + "; it needs a sequence (None, T, C)");
    return make<nn::PositionEmbedding>(r, r.positive("sequence_length"));
  }
};

}  // namespace

std::shared_ptr<const Codec> position_embedding_codec() { return std::make_shared<PositionEmbeddingCodec>(); }

}  // namespace maas::detail::keras
