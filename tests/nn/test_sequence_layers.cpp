// LayerNormalization, MultiHeadAttention, PositionEmbedding and the GELU
// activation: values against the ops they are made of (each checked against
// PyTorch in tests/ops), gradients by finite differences, Keras files that
// reload to the same predictions, and a small causal language model whose
// loss falls.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "data/temp_dir.hpp"
#include "gradcheck.hpp"
#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"
#include "nn/gpt_model.hpp"

using namespace maas;
using namespace maas::nn;
using maas::test::require_close;

namespace {

Tensor predict(Module& m, const Tensor& x) {
  m.eval();
  NoGradGuard ng;
  return m(x);
}

// A one-block pre-LayerNorm transformer over tokens [T] with a tied output
// projection (examples/gpt's model, tests/nn/gpt_model.hpp).
Model tiny_gpt(int64_t vocab, int64_t block, int64_t embd, int64_t heads) {
  return test::build_gpt(vocab, block, 1, heads, embd, true);
}

}  // namespace

TEST_CASE("LayerNormalization normalises the features with Keras' epsilon", "[sequence_layers]") {
  LayerNormalization ln;
  REQUIRE(ln.options().epsilon == 1e-3f);
  Generator gen(1);
  const Tensor x = Tensor::randn({2, 3, 6}, gen);
  const Tensor y = ln(x);
  REQUIRE(ln.gamma().shape() == Shape{6});
  require_close(y, layer_norm(x, Tensor(), Tensor(), 1e-3f).to_vector(), 1e-6f);
  test::check_module_gradients(ln, x);
  REQUIRE_THROWS_WITH(ln(Tensor::zeros({2, 3, 5})), Catch::Contains("normalises 6 features") &&
                                                         Catch::Contains("[2,3,5]"));
}

TEST_CASE("MultiHeadAttention equals its projections and attention done op by op", "[sequence_layers]") {
  MultiHeadAttentionOptions o;
  o.use_causal_mask = true;
  o.value_dim = 3;
  o.output_shape = 5;
  MultiHeadAttention mha(2, 4, o);
  Generator gen(2);
  const Tensor q = Tensor::randn({2, 6, 8}, gen), v = Tensor::randn({2, 7, 10}, gen);
  const Tensor out = mha.forward_many({q, v});
  REQUIRE(out.shape() == Shape{2, 6, 5});
  REQUIRE(mha.kernel(0).shape() == Shape{8, 8});
  REQUIRE(mha.kernel(2).shape() == Shape{10, 6});
  REQUIRE(mha.kernel(3).shape() == Shape{6, 5});
  // Biases are zero at first: give them values so that they count.
  for (int i = 0; i < 4; ++i) {
    Tensor b = mha.bias(i);
    for (int64_t j = 0; j < b.numel(); ++j) b.data()[j] = 0.1f * static_cast<float>(j % 5) - 0.2f;
  }
  // Per head h: softmax(Q_h K_h^T / 2 + causal) V_h, key j seen by query i when j <= i + 1.
  const auto proj = [&](const Tensor& x, int i) { return matmul(x, mha.kernel(i)) + mha.bias(i); };
  const Tensor Q = permute(reshape(proj(q, 0), {2, 6, 2, 4}), {0, 2, 1, 3});
  const Tensor K = permute(reshape(proj(v, 1), {2, 7, 2, 4}), {0, 2, 1, 3});
  const Tensor V = permute(reshape(proj(v, 2), {2, 7, 2, 3}), {0, 2, 1, 3});
  Tensor hidden = Tensor::zeros({6, 7});
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = i + 2; j < 7; ++j) hidden.data()[i * 7 + j] = -1e9f;
  const Tensor heads = matmul(softmax(matmul(Q, K, false, true) * 0.5f + hidden, -1), V);
  const Tensor want = proj(reshape(permute(heads, {0, 2, 1, 3}), {2, 6, 6}), 3);
  require_close(mha.forward_many({q, v}), want.to_vector(), 1e-5f);
}

TEST_CASE("MultiHeadAttention passes the finite-difference check", "[sequence_layers]") {
  MultiHeadAttentionOptions o;
  o.use_causal_mask = true;
  MultiHeadAttention mha(2, 3, o);
  Generator gen(3);
  test::check_module_gradients(mha, Tensor::randn({2, 4, 5}, gen));
}

TEST_CASE("MultiHeadAttention and PositionEmbedding name bad shapes and options", "[sequence_layers]") {
  REQUIRE_THROWS_WITH(MultiHeadAttention(0, 4), Catch::Contains("num_heads must be positive"));
  REQUIRE_THROWS_WITH(MultiHeadAttention(int64_t{1} << 40, int64_t{1} << 40),
                      Catch::Contains("num_heads 1099511627776 x key_dim 1099511627776 does not fit"));
  MultiHeadAttention mha(2, 4);
  mha(Tensor::zeros({1, 3, 8}));
  REQUIRE_THROWS_WITH(mha(Tensor::zeros({1, 3, 9})), Catch::Contains("features: query 8") &&
                                                          Catch::Contains("[1,3,9]"));
  REQUIRE_THROWS_WITH(mha.forward_many({Tensor::zeros({1, 3, 8})}), Catch::Contains("got 1 inputs"));
  REQUIRE_THROWS_WITH(mha(Tensor::zeros({3, 8})), Catch::Contains("[B, T, features]"));
  PositionEmbedding pos(4);
  REQUIRE_THROWS_WITH(pos(Tensor::zeros({1, 5, 2})), Catch::Contains("5 positions is longer than the 4"));
  pos(Tensor::zeros({1, 4, 2}));
  REQUIRE_THROWS_WITH(pos(Tensor::zeros({1, 3, 3})), Catch::Contains("4 positions of 2 features"));
}

TEST_CASE("PositionEmbedding gives row t of its table at position t, for every sample", "[sequence_layers]") {
  PositionEmbedding pos(5);
  Tensor x = Tensor::zeros({2, 3, 4}).requires_grad_();
  Tensor y = pos(x);
  REQUIRE(y.shape() == Shape{2, 3, 4});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 12; ++i) REQUIRE(y.data()[b * 12 + i] == pos.embeddings().data()[i]);
  sum(y).backward();
  const std::vector<float> g = pos.embeddings().grad().to_vector();
  for (int64_t i = 0; i < 20; ++i) REQUIRE(g[static_cast<size_t>(i)] == (i < 12 ? 2.f : 0.f));
}

TEST_CASE("a transformer saved as a Keras file reloads to the same predictions", "[sequence_layers][keras]") {
  manual_seed(5);
  Model gpt = tiny_gpt(11, 8, 12, 3);
  Tensor tokens = Tensor::empty({2, 8});
  for (int64_t i = 0; i < 16; ++i) tokens.data()[i] = static_cast<float>((i * 7) % 11);
  const Tensor want = predict(gpt, tokens);
  REQUIRE(want.shape() == Shape{2, 8, 11});
  test::TempDir dir("gpt");
  gpt.metadata()["tokenizer"] = R"({"class_name": "CharTokenizer", "vocabulary": ["a", "\u00e9"]})";
  save_model(gpt, dir / "gpt.h5");
  std::unique_ptr<Network> back = load_model(dir / "gpt.h5");
  REQUIRE(predict(*back, tokens).to_vector() == want.to_vector());
  REQUIRE(back->metadata() == gpt.metadata());
  const std::string summary = back->summary();
  REQUIRE(summary.find("MultiHeadAttention") != std::string::npos);
  REQUIRE(summary.find("PositionEmbedding") != std::string::npos);
  // Tied again: the table is one parameter, and changing it changes the logits.
  REQUIRE(back->num_parameters() == gpt.num_parameters());
  auto& model = dynamic_cast<Model&>(*back);
  Embedding* table = nullptr;
  for (size_t i = 0; i < model.size(); ++i)
    if (auto* e = dynamic_cast<Embedding*>(&model[i])) table = e;
  REQUIRE(table != nullptr);
  Tensor shared = table->embeddings();
  shared.data()[0] += 1.f;
  REQUIRE(predict(*back, tokens).to_vector() != want.to_vector());
}

TEST_CASE("cross-attention over values and keys of other widths reloads from its Keras file", "[sequence_layers][keras]") {
  // Query, value and key of 8, 6 and 5 features: the file's kernels are
  // (8, 2, 4), (5, 2, 4) and (6, 2, 3), planned from each input's shape.
  manual_seed(9);
  Node query = Input({4, 8}), value = Input({3, 6}), key = Input({3, 5});
  MultiHeadAttentionOptions o;
  o.value_dim = 3;
  Model m({query, value, key}, {layer(MultiHeadAttention(2, 4, o))({query, value, key})});
  Generator gen(3);
  const std::vector<Tensor> xs = {Tensor::randn({2, 4, 8}, gen), Tensor::randn({2, 3, 6}, gen),
                                  Tensor::randn({2, 3, 5}, gen)};
  m.eval();
  NoGradGuard ng;
  const Tensor want = m.forward_many(xs);
  test::TempDir dir("cross");
  save_model(m, dir / "cross.h5");
  std::unique_ptr<Network> back = load_model(dir / "cross.h5");
  back->eval();
  REQUIRE(back->forward_many(xs).to_vector() == want.to_vector());
}

TEST_CASE("EmbeddingTranspose shares the Embedding's table and its gradient", "[sequence_layers]") {
  auto emb = std::make_shared<Embedding>(5, 3);
  emb->build({2});
  EmbeddingTranspose out(emb, true);
  Generator gen(4);
  const Tensor x = Tensor::randn({2, 4, 3}, gen);
  const Tensor logits = out(x);
  REQUIRE(logits.shape() == Shape{2, 4, 5});
  require_close(logits, matmul(x, emb->embeddings(), false, true).to_vector(), 1e-6f);
  REQUIRE(out.parameters().size() == 1);  // the bias; the table stays the Embedding's
  sum(logits).backward();
  // d/dE of sum(x E^T) is, for every row of E, the sum of x over the batch and positions.
  std::vector<float> col(3, 0.f);
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t c = 0; c < 3; ++c) col[static_cast<size_t>(c)] += x.data()[i * 3 + c];
  for (int64_t v = 0; v < 5; ++v)
    for (int64_t c = 0; c < 3; ++c)
      REQUIRE(emb->embeddings().grad().data()[v * 3 + c] == Approx(col[static_cast<size_t>(c)]).margin(1e-5));
  REQUIRE_THROWS_WITH(out(Tensor::zeros({2, 4, 4})), Catch::Contains("takes 3 features"));
  REQUIRE_THROWS_WITH(EmbeddingTranspose(nullptr), Catch::Contains("null"));
}

TEST_CASE("a tiny causal language model learns a repeating text", "[sequence_layers][gpt]") {
  // "abcdefg" repeated: each next character follows from the current one.
  manual_seed(7);
  const int64_t vocab = 7, block = 8, batch = 8;
  Model gpt = tiny_gpt(vocab, block, 16, 2);
  gpt.train();
  optim::AdamWOptions o;
  o.lr = 1e-2f;
  optim::AdamW opt(gpt.parameters(), o);
  Generator gen(3);
  float first = 0.f, last = 0.f;
  for (int step = 0; step < 60; ++step) {
    Tensor x = Tensor::empty({batch, block}), y = Tensor::empty({batch, block});
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t start = static_cast<int64_t>(gen.uniform() * vocab);
      for (int64_t t = 0; t < block; ++t) {
        x.data()[b * block + t] = static_cast<float>((start + t) % vocab);
        y.data()[b * block + t] = static_cast<float>((start + t + 1) % vocab);
      }
    }
    opt.zero_grad();
    Tensor loss = cross_entropy(gpt(x), y);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  INFO("loss " << first << " -> " << last);
  REQUIRE(first > 1.5f);  // about log(7) = 1.95 at the start
  REQUIRE(last < 0.25f);
}
