#include <catch2/catch.hpp>

#include <cmath>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("batch_norm training forward and running statistics by hand", "[op]") {
  // One channel, x = 1,2,3,4: mean 2.5, biased var 1.25, unbiased var 5/3.
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {4, 1});
  Tensor gamma = Tensor::from_vector({2}, {1});
  Tensor beta = Tensor::from_vector({1}, {1});
  Tensor rm = Tensor::zeros({1}), rv = Tensor::ones({1});
  Tensor y = batch_norm(x, gamma, beta, rm, rv, true, 0.1f, 1e-5f);
  const float s = 1.f / std::sqrt(1.25f + 1e-5f);
  require_close(y, {2 * -1.5f * s + 1, 2 * -0.5f * s + 1, 2 * 0.5f * s + 1, 2 * 1.5f * s + 1});
  require_close(rm, {0.25f});                        // 0.9*0 + 0.1*2.5
  require_close(rv, {0.9f + 0.1f * 5.f / 3.f});      // 0.9*1 + 0.1*5/3
  // Evaluation uses the running statistics.
  Tensor ye = batch_norm(x, gamma, beta, rm, rv, false, 0.1f, 1e-5f);
  const float se = 1.f / std::sqrt(rv.item() + 1e-5f);
  require_close(ye, {2 * (1 - 0.25f) * se + 1, 2 * (2 - 0.25f) * se + 1, 2 * (3 - 0.25f) * se + 1,
                     2 * (4 - 0.25f) * se + 1});
  require_close(rm, {0.25f});  // unchanged in evaluation
}

TEST_CASE("batch_norm normalises each channel of images", "[op]") {
  Generator gen(10);
  Tensor x = Tensor::randn({4, 3, 5, 5}, gen, 3.f, 2.f);
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true);
  for (int64_t c = 0; c < 3; ++c) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t i = 0; i < 25; ++i) {
        const double v = y.data()[(n * 3 + c) * 25 + i];
        s += v;
        ss += v * v;
      }
    REQUIRE(s / 100 == Approx(0).margin(1e-5));
    REQUIRE(ss / 100 == Approx(1).margin(1e-3));
  }
}

TEST_CASE("batch_norm gradients in training and evaluation", "[op][grad]") {
  Generator gen(11);
  using V = std::vector<Tensor>;
  for (bool training : {true, false}) {
    for (Shape s : {Shape{5, 3}, Shape{2, 3, 2, 3}}) {
      Tensor x = Tensor::randn(s, gen);
      Tensor gamma = Tensor::rand({3}, gen, 0.5f, 1.5f);
      Tensor beta = Tensor::randn({3}, gen);
      Tensor rm = Tensor::randn({3}, gen), rv = Tensor::rand({3}, gen, 0.5f, 2.f);
      check_gradients(
          [&](const V& v) {
            Tensor m = rm.clone().detach(), var = rv.clone().detach();  // keep statistics fixed across calls
            return batch_norm(v[0], v[1], v[2], m, var, training);
          },
          {x, gamma, beta});
    }
  }
}

TEST_CASE("batch_norm errors", "[op]") {
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  MAAS_REQUIRE_THROWS_WITH(batch_norm(Tensor::zeros({2, 4}), Tensor(), Tensor(), rm, rv, true),
                           "running_mean [3] does not match 4 channels of input [2,4]");
  MAAS_REQUIRE_THROWS_WITH(batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), rm, rv, true),
                           "more than one value per channel");
  MAAS_REQUIRE_THROWS_WITH(batch_norm(Tensor::zeros({2, 3, 4}), Tensor(), Tensor(), rm, rv, true),
                           "must be [N,C] or [N,C,H,W]");
}
