#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;

TEST_CASE("reshape and flatten shapes", "[op]") {
  Tensor x = Tensor::zeros({2, 3, 4, 5});
  REQUIRE(flatten(x).shape() == Shape{2, 60});
  REQUIRE(flatten(x, 0).shape() == Shape{120});
  REQUIRE(flatten(x, 1, 2).shape() == Shape{2, 12, 5});
  REQUIRE(reshape(x, {-1, 5}).shape() == Shape{24, 5});
  REQUIRE(reshape(Tensor::zeros({0, 3}), {0, 3, 1}).shape() == Shape{0, 3, 1});
  MAAS_REQUIRE_THROWS_WITH(flatten(x, 2, 1), "start_dim 2 comes after end_dim 1");
}

TEST_CASE("reshape, flatten and clone gradients", "[op][grad]") {
  Generator gen(5);
  using V = std::vector<Tensor>;
  Tensor x = Tensor::randn({2, 3, 2}, gen);
  check_gradients([](const V& v) { return reshape(v[0], {3, 4}); }, {x});
  check_gradients([](const V& v) { return flatten(v[0]); }, {x});
  check_gradients([](const V& v) { return v[0].clone() * v[0]; }, {x});
}
