// Embedding: a trainable lookup table of vectors, one per index.
#include <string>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"

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

}  // namespace maas::nn
