#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("dropout zeroes a fraction p and scales the rest", "[op]") {
  // 100000 elements (the parallel path). The zeroed fraction has standard
  // deviation sqrt(p(1-p)/n) = 0.0014 for p = 0.3: a margin of 0.01 is ~7 sigma.
  Generator gen(51);
  for (float p : {0.1f, 0.3f, 0.75f}) {
    Tensor x = Tensor::ones({1000, 100});
    Tensor y = dropout(x, p, true, gen);
    REQUIRE(y.shape() == x.shape());
    int64_t zeros = 0;
    bool scaled = true;
    for (float v : y.to_vector()) {
      if (v == 0.f) ++zeros;
      else scaled = scaled && v == Approx(1.f / (1.f - p)).epsilon(1e-6);
    }
    INFO("p = " << p);
    REQUIRE(static_cast<double>(zeros) / static_cast<double>(y.numel()) == Approx(p).margin(0.01));
    REQUIRE(scaled);
    // Inverted dropout keeps the mean.
    REQUIRE(mean(y).item() == Approx(1.f).margin(0.03));
  }
}

TEST_CASE("dropout by hand against the generator's draws", "[op]") {
  // Element i is dropped exactly when the i-th draw of the same generator is < p.
  const float p = 0.5f;
  Tensor x = Tensor::from_vector({1, -2, 3, -4, 5, -6, 7, -8}, {2, 4});
  Generator gen(52), twin(52);
  Tensor y = dropout(x, p, true, gen);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float want = twin.uniform() < p ? 0.f : x.data()[i] * 2.f;
    REQUIRE(y.data()[i] == want);
  }
  // Exactly numel() draws were taken: both generators are in the same state.
  REQUIRE(gen.uniform() == twin.uniform());
}

TEST_CASE("dropout in evaluation or with p = 0 is the identity", "[op]") {
  Generator gen(53);
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}).requires_grad_();
  Tensor eval = dropout(x, 0.5f, false, gen);
  REQUIRE(eval.is_same(x));  // documented: x itself, no copy
  Tensor p0 = dropout(x, 0.f, true, gen);
  REQUIRE(p0.is_same(x));
  // Neither drew from the generator.
  Generator fresh(53);
  REQUIRE(gen.uniform() == fresh.uniform());
}

TEST_CASE("dropout with the same seed gives the same mask", "[op]") {
  Tensor x = Tensor::ones({64, 33});
  Generator g1(54), g2(54), g3(55);
  Tensor a = dropout(x, 0.4f, true, g1);
  Tensor b = dropout(x, 0.4f, true, g2);
  Tensor c = dropout(x, 0.4f, true, g3);
  REQUIRE(a.to_vector() == b.to_vector());
  REQUIRE(a.to_vector() != c.to_vector());
  // The next call draws a fresh mask.
  REQUIRE(dropout(x, 0.4f, true, g1).to_vector() != a.to_vector());
}

TEST_CASE("dropout gradient is the mask times the scale", "[op][grad]") {
  const float p = 0.25f;
  Tensor x = Tensor::ones({8, 16}).requires_grad_();
  Generator gen(56);
  Tensor y = dropout(x, p, true, gen);  // with x = 1, y is the mask itself: 0 or 1/(1-p)
  REQUIRE(y.grad_fn_name() == "dropout");
  Generator wgen(57);
  Tensor w = Tensor::randn({8, 16}, wgen);
  sum(y * w).backward();
  std::vector<float> want(static_cast<size_t>(x.numel()));
  for (size_t i = 0; i < want.size(); ++i) want[i] = w.data()[i] * y.data()[i];
  require_close(x.grad(), want, 1e-6f);

  // Finite differences: a fresh generator inside the function draws the same mask every call.
  using V = std::vector<Tensor>;
  Generator xgen(58);
  for (float q : {0.2f, 0.5f})
    check_gradients(
        [q](const V& v) {
          Generator g(59);
          return dropout(v[0], q, true, g);
        },
        {Tensor::randn({2, 3, 4}, xgen)});
}

TEST_CASE("dropout errors", "[op]") {
  Generator gen(60);
  Tensor x = Tensor::zeros({2, 3});
  MAAS_REQUIRE_THROWS_WITH(dropout(x, 1.f, true, gen),
                           "dropout: probability p = 1 must be in [0, 1) (input shape [2,3])");
  MAAS_REQUIRE_THROWS_WITH(dropout(x, -0.1f, true, gen), "dropout: probability p = -0.1 must be in [0, 1)");
  MAAS_REQUIRE_THROWS_WITH(dropout(x, 1.5f, false, gen), "dropout: probability p = 1.5 must be in [0, 1)");
  MAAS_REQUIRE_THROWS_WITH(dropout(x, std::numeric_limits<float>::quiet_NaN(), true, gen), "must be in [0, 1)");
  MAAS_REQUIRE_THROWS_WITH(dropout(Tensor(), 0.5f, true, gen), "dropout: input is an undefined tensor");
}
