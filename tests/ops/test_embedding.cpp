#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

namespace {
// weight [4,2]: row r is (10r, 10r + 1).
Tensor table() { return Tensor::from_vector({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2}); }
}  // namespace

TEST_CASE("embedding by hand: rows picked in the shape of the indices", "[op]") {
  Tensor w = table();
  Tensor y = embedding(Tensor::from_vector({2, 0, 2}, {3}), w);
  REQUIRE(y.shape() == Shape{3, 2});
  require_close(y, {20, 21, 0, 1, 20, 21});
  Tensor y2 = embedding(Tensor::from_vector({3, 1, 1, 0}, {2, 2}), w);
  REQUIRE(y2.shape() == Shape{2, 2, 2});
  require_close(y2, {30, 31, 10, 11, 10, 11, 0, 1});
  // -0 is index 0.
  require_close(embedding(Tensor::from_vector({-0.f}, {1}), w), {0, 1});
  // No indices: an empty result.
  REQUIRE(embedding(Tensor::zeros({0}), w).shape() == Shape{0, 2});
}

TEST_CASE("embedding's gradient is a scatter-add into the rows used", "[op]") {
  Tensor w = table().requires_grad_();
  // Row 2 is used twice, row 0 once, rows 1 and 3 never.
  Tensor y = embedding(Tensor::from_vector({2, 0, 2}, {3}), w);
  sum(y * Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2})).backward();
  require_close(w.grad(), {3, 4, 0, 0, 1 + 5, 2 + 6, 0, 0});
  // The indices get no gradient, even when they ask for one.
  Tensor idx = Tensor::from_vector({1}, {1}).requires_grad_();
  Tensor w2 = table().requires_grad_();
  sum(embedding(idx, w2)).backward();
  CHECK_FALSE(idx.grad().defined());
  require_close(w2.grad(), {0, 0, 1, 1, 0, 0, 0, 0});
}

TEST_CASE("embedding gradients by finite differences", "[op][grad]") {
  Generator gen(5);
  for (const Tensor& idx : {Tensor::from_vector({4, 0, 4, 2, 1, 4}, {6}), Tensor::from_vector({0, 3, 3, 1, 2, 0}, {2, 3})}) {
    check_gradients([idx](const std::vector<Tensor>& in) { return embedding(idx, in[0]); },
                    {Tensor::randn({5, 3}, gen)});
  }
}

TEST_CASE("embedding names a bad index, where it is and input_dim", "[op]") {
  Tensor w = table();
  MAAS_REQUIRE_THROWS_WITH(embedding(Tensor::from_vector({1, 4}, {2}), w),
                           "embedding: index 4 (element 1 of indices [2]) is out of range for input_dim 4 "
                           "(indices must be in [0, 4))");
  MAAS_REQUIRE_THROWS_WITH(embedding(Tensor::from_vector({0, 1, 2, -1}, {2, 2}), w),
                           "index -1 (element 3 of indices [2,2]) is out of range for input_dim 4");
  MAAS_REQUIRE_THROWS_WITH(embedding(Tensor::from_vector({1.5f}, {1}), w),
                           "embedding: index 1.5 (element 0 of indices [1]) is not a whole number; indices must be "
                           "integers in [0, input_dim 4)");
  MAAS_REQUIRE_THROWS_WITH(embedding(Tensor::from_vector({std::numeric_limits<float>::quiet_NaN()}, {1}), w),
                           "is not a whole number");
  MAAS_REQUIRE_THROWS_WITH(embedding(Tensor::from_vector({std::numeric_limits<float>::infinity()}, {1}), w),
                           "index inf");
  MAAS_REQUIRE_THROWS_WITH(embedding(Tensor::from_vector({1e30f}, {1}), w), "index 1e+30");
  MAAS_REQUIRE_THROWS_WITH(embedding(Tensor::from_vector({0}, {1}), Tensor::zeros({4})), "weight [4] must be 2-D");
}
