// nn::Decoder, nn::KVCache and nn::sample_token: decoding step by step over
// cached keys and values gives the logits of a full forward pass; a batch of
// sequences at different lengths gives each one's logits alone, bit for bit
// (what lets a server batch conversations without changing their text); and
// every bad input is refused with a message naming it.
#include <catch2/catch.hpp>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "gradcheck.hpp"
#include "maas/maas.hpp"
#include "nn/gpt_model.hpp"

using namespace maas;
using namespace maas::nn;

namespace {

constexpr int64_t kVocab = 11, kBlock = 12;

Model tiny_gpt(uint64_t seed = 5) {
  manual_seed(seed);
  Model m = test::build_gpt(kVocab, kBlock, 2, 2, 16, true);
  // Every parameter off its initial value (LayerNorm's ones, zero biases),
  // so that each one shows in the logits.
  Generator gen(seed + 1);
  for (Tensor& p : m.parameters())
    for (int64_t i = 0; i < p.numel(); ++i) p.data()[i] += 0.2f * gen.normal();
  m.eval();
  return m;
}

const std::vector<int32_t> kText = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};

// The full forward pass's logits for tokens [0, n): [n, V].
std::vector<float> full_logits(Model& m, const std::vector<int32_t>& tokens) {
  NoGradGuard ng;
  Tensor x = Tensor::zeros({1, kBlock});
  for (size_t i = 0; i < tokens.size(); ++i) x.data()[i] = static_cast<float>(tokens[i]);
  const Tensor y = m(x);
  return std::vector<float>(y.data(), y.data() + static_cast<int64_t>(tokens.size()) * kVocab);
}

void require_row(const Tensor& got, int64_t row, const std::vector<float>& want, int64_t want_row) {
  for (int64_t v = 0; v < kVocab; ++v) {
    const float w = want[static_cast<size_t>(want_row * kVocab + v)];
    REQUIRE(got.data()[row * kVocab + v] == Approx(w).margin(1e-5).epsilon(1e-5));
  }
}

std::vector<float> floats(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

}  // namespace

TEST_CASE("Decoder: a prefill, then one token per step, gives the full forward pass's logits", "[decode]") {
  Model m = tiny_gpt();
  Decoder decoder(m);
  CHECK(decoder.context() == kBlock);
  CHECK(decoder.vocab() == kVocab);
  const std::vector<float> want = full_logits(m, kText);
  KVCache cache(decoder, 2);
  const Tensor first = decoder.step(cache, {1}, {{kText.begin(), kText.begin() + 5}});
  REQUIRE(first.shape() == Shape{1, kVocab});
  require_row(first, 0, want, 4);
  CHECK(cache.length(1) == 5);
  CHECK(cache.length(0) == 0);
  for (int64_t p = 5; p < kBlock; ++p) {
    const Tensor next = decoder.step(cache, {1}, {{kText[static_cast<size_t>(p)]}});
    require_row(next, 0, want, p);
  }
  CHECK(cache.length(1) == kBlock);
  cache.clear(1);
  CHECK(cache.length(1) == 0);
  require_row(decoder.step(cache, {1}, {{kText[0], kText[1]}}), 0, want, 1);
}

TEST_CASE("Decoder: sequences at different lengths in one step give their logits alone, bit for bit", "[decode]") {
  Model m = tiny_gpt();
  Decoder decoder(m);
  const std::vector<int32_t> a = {3, 1, 4, 1}, b = {7}, c = {2, 7, 1, 8, 2, 8, 1};
  // Alone: each in a cache of its own, in pieces.
  std::vector<std::vector<float>> alone;
  for (const auto& s : {a, b, c}) {
    KVCache own(decoder, 1);
    decoder.step(own, {0}, {{s.begin(), s.begin() + 1}});
    if (s.size() > 1) alone.push_back(floats(decoder.step(own, {0}, {{s.begin() + 1, s.end()}})));
    else alone.push_back(floats(decoder.step(own, {0}, {{5}})));
  }
  // Together: the first tokens in one step, then the rest of all three
  // (prefills and a single token) in another, slots out of order.
  KVCache shared(decoder, 4);
  decoder.step(shared, {3, 0, 2}, {{a[0]}, {b[0]}, {c[0]}});
  const Tensor together = decoder.step(shared, {2, 3, 0}, {{c.begin() + 1, c.end()}, {a.begin() + 1, a.end()}, {5}});
  REQUIRE(together.shape() == Shape{3, kVocab});
  const std::vector<float> got = floats(together);
  CHECK(std::memcmp(got.data(), alone[2].data(), kVocab * sizeof(float)) == 0);
  CHECK(std::memcmp(got.data() + kVocab, alone[0].data(), kVocab * sizeof(float)) == 0);
  CHECK(std::memcmp(got.data() + 2 * kVocab, alone[1].data(), kVocab * sizeof(float)) == 0);
  CHECK(shared.length(0) == 2);
  CHECK(shared.length(1) == 0);
  CHECK(shared.length(3) == 4);
}

TEST_CASE("Decoder: the same bits for any thread count", "[decode]") {
  Model m = tiny_gpt();
  Decoder decoder(m);
  test::require_thread_invariant([&] {
    KVCache cache(decoder, 3);
    std::vector<float> out = floats(decoder.step(cache, {0, 1}, {{kText.begin(), kText.begin() + 8}, {4, 4, 4}}));
    const std::vector<float> more = floats(decoder.step(cache, {1, 0, 2}, {{2}, {9}, {1, 2, 3}}));
    out.insert(out.end(), more.begin(), more.end());
    return out;
  });
}

TEST_CASE("Decoder::generate: greedy decoding follows the full forward pass's argmax", "[decode]") {
  Model m = tiny_gpt();
  Decoder decoder(m);
  SamplingOptions greedy;
  greedy.temperature = 0.f;
  Generator gen(1);
  const std::vector<int32_t> prompt = {3, 1, 4};
  const std::vector<int32_t> out = decoder.generate(prompt, 9, greedy, gen);
  REQUIRE(out.size() == 9);
  std::vector<int32_t> text = prompt;
  for (int32_t id : out) {
    const std::vector<float> logits = full_logits(m, text);
    const float* last = logits.data() + (text.size() - 1) * kVocab;
    CHECK(id == std::max_element(last, last + kVocab) - last);
    text.push_back(id);
  }
  // Past the context: decoding starts again from the last half, and goes on.
  const std::vector<int32_t> longer = decoder.generate(prompt, 40, SamplingOptions{}, gen);
  REQUIRE(longer.size() == 40);
  CHECK(std::all_of(longer.begin(), longer.end(), [](int32_t id) { return id >= 0 && id < kVocab; }));
  CHECK(decoder.generate(prompt, 0, greedy, gen).empty());
}

TEST_CASE("Decoder: bad steps are refused, naming what is wrong, and change nothing", "[decode]") {
  Model m = tiny_gpt();
  Decoder decoder(m);
  KVCache cache(decoder, 2);
  decoder.step(cache, {0}, {{1, 2, 3}});
  const auto refused = [&](const std::vector<int64_t>& slots, const std::vector<std::vector<int32_t>>& tokens,
                           const std::string& what) {
    REQUIRE_THROWS_WITH(decoder.step(cache, slots, tokens), Catch::Contains(what));
    CHECK(cache.length(0) == 3);
    CHECK(cache.length(1) == 0);
  };
  refused({0}, {{kVocab}}, "token id 11 is outside the vocabulary [0, 11)");
  refused({1, 0}, {{1}, {-1}}, "token id -1");
  refused({2}, {{1}}, "slot 2 is outside the cache's 2 sequences");
  refused({0, 0}, {{1}, {2}}, "slot 0 appears twice");
  refused({1}, {{}}, "the run of tokens for slot 1 is empty");
  refused({0, 1}, {{1}}, "2 slots and 1 runs of tokens");
  refused({0}, {std::vector<int32_t>(10, 1)}, "slot 0 holds 3 positions; 10 more make 13, longer than the context of 12");
  Generator gen(0);
  CHECK_THROWS_WITH(decoder.generate(std::vector<int32_t>(13, 1), 1, {}, gen),
                    Catch::Contains("the prompt's 13 tokens are longer than the model's context of 12"));
  CHECK_THROWS_WITH(KVCache(decoder, 0), Catch::Contains("sequences must be >= 1"));
  CHECK_THROWS_WITH(KVCache(decoder, 1, 13), Catch::Contains("context 13 must be in [1, 12]"));
  CHECK_THROWS_WITH(KVCache(decoder, int64_t{1} << 40), Catch::Contains("more than the 1 TiB"));
  CHECK_THROWS_WITH(cache.length(5), Catch::Contains("slot 5 is outside [0, 2)"));
  // A cache sized for another model.
  Model other = test::build_gpt(kVocab, kBlock, 1, 2, 16, true);
  Decoder other_decoder(other);
  KVCache wrong(other_decoder, 2);
  CHECK_THROWS_WITH(decoder.step(wrong, {0}, {{1}}), Catch::Contains("another model's attention layers"));
  // A shorter cache than the model's context bounds the sequences.
  KVCache short_cache(decoder, 1, 4);
  CHECK_THROWS_WITH(decoder.step(short_cache, {0}, {{1, 2, 3, 4, 5}}), Catch::Contains("context of 4"));
}

TEST_CASE("Decoder: a model that cannot be decoded step by step is refused, naming its layer", "[decode]") {
  const auto lm = [](bool causal, bool cross, bool flatten) {
    Node tokens = Input({8});
    Node x = layer(Embedding(10, 8))(tokens);
    MultiHeadAttentionOptions o;
    o.use_causal_mask = causal;
    auto attention = layer(MultiHeadAttention(2, 4, o));
    attention->set_name("attn");
    Node other = layer(Dense(8))(x);
    x = cross ? attention({x, other}) : attention({x, x});
    if (flatten) {
      auto f = layer(Flatten());
      f->set_name("flat");
      return Model(tokens, layer(Dense(10))(f(x)));
    }
    return Model(tokens, layer(Dense(10))(x));
  };
  Model plain = lm(true, false, false);
  CHECK_NOTHROW(Decoder(plain));
  Model bidirectional = lm(false, false, false);
  CHECK_THROWS_WITH(Decoder(bidirectional), Catch::Contains("MultiHeadAttention 'attn' has no causal mask"));
  Model cross = lm(true, true, false);
  CHECK_THROWS_WITH(Decoder(cross), Catch::Contains("'attn' attends over another input"));
  Model flat = lm(true, false, true);
  CHECK_THROWS_WITH(Decoder(flat), Catch::Contains("output (None, 10) is not logits per position"));
  Node image = Input({4, 4, 1});
  Model cnn(image, layer(Dense(3))(layer(Flatten())(image)));
  CHECK_THROWS_WITH(Decoder(cnn), Catch::Contains("takes one input of token ids (None, T); this model takes"));
}

TEST_CASE("sample_token: greedy, top-k, top-p and the temperature", "[decode]") {
  Generator gen(7);
  const float logits[4] = {0.f, std::log(3.f), 1.f, -2.f};
  SamplingOptions greedy;
  greedy.temperature = 0.f;
  CHECK(sample_token(logits, 4, greedy, gen) == 1);
  SamplingOptions top1;
  top1.top_k = 1;
  CHECK(sample_token(logits, 4, top1, gen) == 1);
  const float tie[3] = {2.f, 5.f, 5.f};
  CHECK(sample_token(tie, 3, greedy, gen) == 1);
  // top_k 2 keeps ids 1 and 2 with odds 3 : e; top_p 0.5 keeps id 1 alone.
  const auto frequency = [&](const float* l, int64_t v, SamplingOptions o, int32_t id) {
    int hits = 0;
    for (int i = 0; i < 20000; ++i) hits += sample_token(l, v, o, gen) == id;
    return hits / 20000.0;
  };
  SamplingOptions top2;
  top2.top_k = 2;
  CHECK(frequency(logits, 4, top2, 1) == Approx(3.0 / (3.0 + std::exp(1.0))).margin(0.015));
  CHECK(frequency(logits, 4, top2, 0) == 0.0);
  SamplingOptions nucleus;
  nucleus.top_p = 0.4f;
  CHECK(frequency(logits, 4, nucleus, 1) == 1.0);
  // Temperature 2 over {0, ln 3}: odds 1 : sqrt(3).
  const float two[2] = {0.f, std::log(3.f)};
  SamplingOptions warm;
  warm.temperature = 2.f;
  CHECK(frequency(two, 2, warm, 1) == Approx(std::sqrt(3.0) / (1.0 + std::sqrt(3.0))).margin(0.015));
  CHECK(frequency(two, 2, SamplingOptions{}, 1) == Approx(0.75).margin(0.015));
  SamplingOptions bad;
  bad.temperature = -1.f;
  CHECK_THROWS_WITH(sample_token(two, 2, bad, gen), Catch::Contains("temperature must be >= 0"));
  bad = {};
  bad.top_p = 0.f;
  CHECK_THROWS_WITH(sample_token(two, 2, bad, gen), Catch::Contains("top_p must be in (0, 1]"));
  bad = {};
  bad.top_k = -1;
  CHECK_THROWS_WITH(sample_token(two, 2, bad, gen), Catch::Contains("top_k must be >= 0"));
  CHECK_THROWS_WITH(sample_token(two, 0, SamplingOptions{}, gen), Catch::Contains("the vocabulary is empty"));
}
