#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("sum and mean by hand", "[op]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(sum(x).item() == 21.f);
  REQUIRE(sum(x).dim() == 0);
  REQUIRE(mean(x).item() == 3.5f);
  require_close(sum(x, 0), {5, 7, 9});
  require_close(sum(x, 1), {6, 15});
  require_close(mean(x, -1), {2, 5});
  REQUIRE(sum(x, 1, true).shape() == Shape{2, 1});
  REQUIRE(mean(x, 0, false).shape() == Shape{3});
  Tensor y = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  require_close(sum(y, 1), {4, 6, 12, 14});
}

TEST_CASE("sum and mean gradients", "[op][grad]") {
  Generator gen(4);
  using V = std::vector<Tensor>;
  Tensor x = Tensor::randn({2, 3, 4}, gen);
  check_gradients([](const V& v) { return sum(v[0]); }, {x});
  check_gradients([](const V& v) { return mean(v[0]); }, {x});
  for (int64_t d : {0, 1, 2, -1})
    for (bool keep : {false, true}) {
      check_gradients([d, keep](const V& v) { return sum(v[0], d, keep); }, {x});
      check_gradients([d, keep](const V& v) { return mean(v[0], d, keep); }, {x});
    }
}

TEST_CASE("reduction errors", "[op]") {
  MAAS_REQUIRE_THROWS_WITH(sum(Tensor::zeros({2, 3}), 2), "sum: dimension 2 is out of range for shape [2,3]");
  MAAS_REQUIRE_THROWS_WITH(mean(Tensor::zeros({0})), "mean: input of shape [0] is empty");
}
