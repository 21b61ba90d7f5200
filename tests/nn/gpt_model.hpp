// examples/gpt.cpp's build_gpt for tests (tests/nn/test_gpt_parity.cpp,
// tests/checkpoint/test_keras_gpt.cpp), without dropout: token embedding plus
// learned positions; per block LayerNorm -> causal MultiHeadAttention ->
// residual, LayerNorm -> Dense 4C with GELU -> Dense C -> residual; a final
// LayerNorm, and the logits from the token embedding's table transposed
// (EmbeddingTranspose, as the example ties them) when `tied`, else from a
// Dense with a bias.
#pragma once

#include <cstdint>

#include "maas/maas.hpp"

namespace maas::test {

inline nn::Model build_gpt(int64_t vocab, int64_t block, int64_t layers, int64_t heads, int64_t embd, bool tied) {
  using namespace nn;
  Node tokens = Input({block});
  auto embedding = layer(Embedding(vocab, embd));
  Node x = embedding(tokens);
  x = layer(Add())({x, layer(PositionEmbedding(block))(x)});
  MultiHeadAttentionOptions attention;
  attention.use_causal_mask = true;
  DenseOptions gelu;
  gelu.activation = Activation::Gelu;
  for (int64_t i = 0; i < layers; ++i) {
    Node h = layer(LayerNormalization())(x);
    x = layer(Add())({x, layer(MultiHeadAttention(heads, embd / heads, attention))({h, h})});
    h = layer(Dense(4 * embd, gelu))(layer(LayerNormalization())(x));
    x = layer(Add())({x, layer(Dense(embd))(h)});
  }
  x = layer(LayerNormalization())(x);
  return Model(tokens, tied ? layer(EmbeddingTranspose(embedding.get()))(x) : layer(Dense(vocab))(x));
}

}  // namespace maas::test
