#include <catch2/catch.hpp>

#include <cmath>

#include "gradcheck.hpp"
#include "maas/maas.hpp"
#include "ops/transformer_reference.hpp"

using namespace maas;
using maas::test::fill;
using maas::test::require_close;

namespace {

struct Case {
  Tensor q, k, v;
};

Case inputs() {
  return {fill({2, 2, 4, 3}, 0.31, 0.2).requires_grad_(), fill({2, 2, 5, 3}, 0.17, 0.9).requires_grad_(),
          fill({2, 2, 5, 2}, 0.41, 0.4).requires_grad_()};
}

Tensor key_padding() {  // batch 0 sees 4 keys, batch 1 sees 3
  return Tensor::from_vector({1, 1, 1, 1, 0, 1, 1, 1, 0, 0}, {2, 1, 5});
}

// The same attention without fusion: softmax(Q K^T / sqrt(D) + mask) V, by the
// existing ops, with -1e9 for hidden scores.
Tensor unfused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& hidden) {
  Tensor s = matmul(q, k, false, true) * (1.f / std::sqrt(static_cast<float>(q.size(3))));
  return matmul(softmax(s + hidden * -1e9f, -1), v);
}

}  // namespace

TEST_CASE("scaled_dot_product_attention matches PyTorch, causal and masked", "[attention]") {
  for (bool causal : {true, false}) {
    Case c = inputs();
    AttentionOptions o;
    o.causal = causal;
    if (!causal) o.mask = key_padding();
    Tensor out = scaled_dot_product_attention(c.q, c.k, c.v, o);
    require_close(out, causal ? test::kAttnCausalOut : test::kAttnMaskedOut, 1e-5f);
    sum(out * fill({2, 2, 4, 2}, 0.29, 0.5)).backward();
    require_close(c.q.grad(), causal ? test::kAttnCausalDq : test::kAttnMaskedDq, 1e-4f);
    require_close(c.k.grad(), causal ? test::kAttnCausalDk : test::kAttnMaskedDk, 1e-4f);
    require_close(c.v.grad(), causal ? test::kAttnCausalDv : test::kAttnMaskedDv, 1e-4f);
  }
}

TEST_CASE("attention with more keys than one block agrees with the unfused ops", "[attention]") {
  // 300 keys span three blocks of the online softmax; causal, bottom-right.
  Generator gen(4);
  Tensor q = Tensor::randn({1, 2, 7, 8}, gen), k = Tensor::randn({1, 2, 300, 8}, gen) * 3.f;
  Tensor v = Tensor::randn({1, 2, 300, 5}, gen);
  AttentionOptions o;
  o.causal = true;
  Tensor hidden = Tensor::zeros({7, 300});
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = i + 294; j < 300; ++j) hidden.data()[i * 300 + j] = 1.f;
  require_close(scaled_dot_product_attention(q, k, v, o), unfused(q, k, v, hidden).to_vector(), 1e-5f);
}

TEST_CASE("attention in [B, T, H, D] layout equals [B, H, T, D] permuted", "[attention]") {
  Generator gen(6);
  Tensor q = Tensor::randn({2, 5, 3, 4}, gen), k = Tensor::randn({2, 5, 3, 4}, gen);
  Tensor v = Tensor::randn({2, 5, 3, 6}, gen);
  AttentionOptions o;
  o.causal = true;
  const Tensor want = permute(scaled_dot_product_attention(permute(q, {0, 2, 1, 3}), permute(k, {0, 2, 1, 3}),
                                                           permute(v, {0, 2, 1, 3}), o),
                              {0, 2, 1, 3});
  o.layout = AttentionLayout::bthd;
  REQUIRE(scaled_dot_product_attention(q, k, v, o).to_vector() == want.to_vector());
}

TEST_CASE("attention passes the finite-difference check, with masks and dropout", "[attention]") {
  Generator gen(8);
  const std::vector<Tensor> in{Tensor::randn({2, 2, 3, 4}, gen), Tensor::randn({2, 2, 4, 4}, gen),
                               Tensor::randn({2, 2, 4, 3}, gen)};
  test::check_gradients(
      [](const std::vector<Tensor>& x) {
        AttentionOptions o;
        o.causal = true;
        return scaled_dot_product_attention(x[0], x[1], x[2], o);
      },
      in);
  test::check_gradients(
      [](const std::vector<Tensor>& x) {
        AttentionOptions o;
        o.mask = Tensor::from_vector({1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1}, {3, 4});
        Generator drop(21);  // the same mask for every evaluation
        o.dropout = 0.3f;
        o.generator = &drop;
        return scaled_dot_product_attention(x[0], x[1], x[2], o);
      },
      in);
}

TEST_CASE("attention dropout keeps the expected share and rescales it", "[attention]") {
  // With V one-hot per key and uniform scores, output column j is the
  // dropped-out weight of key j: 0 or 1/(S (1 - p)).
  const int64_t s = 64;
  Tensor q = Tensor::zeros({1, 1, 64, 1}), k = Tensor::zeros({1, 1, s, 1});
  Tensor v = Tensor::zeros({1, 1, s, s});
  for (int64_t j = 0; j < s; ++j) v.data()[j * s + j] = 1.f;
  AttentionOptions o;
  Generator gen(1);
  o.dropout = 0.25f;
  o.generator = &gen;
  const Tensor out = scaled_dot_product_attention(q, k, v, o);
  int64_t kept = 0;
  for (float w : out.to_vector()) {
    REQUIRE((w == 0.f || w == Approx(1.f / (s * 0.75f))));
    kept += w != 0.f;
  }
  REQUIRE(static_cast<double>(kept) / out.numel() == Approx(0.75).margin(0.03));
}

TEST_CASE("attention gives the same bits for any thread count", "[attention]") {
  Generator gen(9);
  const Tensor q = Tensor::randn({3, 4, 16, 8}, gen), k = Tensor::randn({3, 4, 16, 8}, gen);
  const Tensor v = Tensor::randn({3, 4, 16, 8}, gen), r = Tensor::randn({3, 4, 16, 8}, gen);
  test::require_thread_invariant([&] {
    Tensor qq = q.clone().requires_grad_(), kk = k.clone().requires_grad_(), vv = v.clone().requires_grad_();
    AttentionOptions o;
    o.causal = true;
    Tensor out = scaled_dot_product_attention(qq, kk, vv, o);
    sum(out * r).backward();
    std::vector<float> all = out.to_vector();
    for (const Tensor& t : {qq.grad(), kk.grad(), vv.grad()})
      for (float x : t.to_vector()) all.push_back(x);
    return all;
  });
}

TEST_CASE("a query that sees no key outputs zeros and passes no gradient", "[attention]") {
  Tensor q = Tensor::ones({1, 1, 2, 2}).requires_grad_(), k = Tensor::ones({1, 1, 2, 2}).requires_grad_();
  Tensor v = Tensor::ones({1, 1, 2, 2}).requires_grad_();
  AttentionOptions o;
  o.mask = Tensor::from_vector({0, 0, 1, 1}, {2, 2});
  Tensor out = scaled_dot_product_attention(q, k, v, o);
  REQUIRE(out.to_vector() == std::vector<float>{0, 0, 1, 1});
  sum(out).backward();
  REQUIRE(q.grad().to_vector()[0] == 0.f);
}

TEST_CASE("attention names shapes that do not fit", "[attention]") {
  const Tensor q = Tensor::zeros({2, 2, 4, 3}), k = Tensor::zeros({2, 2, 5, 3}), v = Tensor::zeros({2, 2, 5, 2});
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, Tensor::zeros({2, 2, 5, 4}), v),
                      Catch::Contains("key [2,2,5,4]") && Catch::Contains("do not fit"));
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(Tensor::zeros({2, 4, 3}), k, v), Catch::Contains("4-D"));
  AttentionOptions o;
  o.mask = Tensor::ones({4, 4});
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, k, v, o),
                      Catch::Contains("mask [4,4]") && Catch::Contains("[2,2,4,5]"));
  o.mask = Tensor::ones({3, 1, 5});
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, k, v, o), Catch::Contains("mask [3,1,5]"));
  o.mask = Tensor();
  o.dropout = 0.1f;
  REQUIRE_THROWS_WITH(scaled_dot_product_attention(q, k, v, o), Catch::Contains("needs a generator"));
}

TEST_CASE("a NaN in attention's inputs reaches its output, not a crash", "[attention]") {
  Tensor q = Tensor::ones({1, 1, 2, 2}), k = Tensor::ones({1, 1, 2, 2}), v = Tensor::ones({1, 1, 2, 2});
  k.data()[0] = std::nanf("");
  const Tensor out = scaled_dot_product_attention(q, k, v);
  REQUIRE(std::isnan(out.data()[0]));
}
