#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("pad2d forward by hand", "[op]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  // top 1, bottom 0, left 0, right 1:
  // 0 0 0
  // 1 2 0
  // 3 4 0
  Tensor y = pad2d(x, 1, 0, 0, 1);
  REQUIRE(y.shape() == Shape{1, 1, 3, 3});
  require_close(y, {0, 0, 0, 1, 2, 0, 3, 4, 0});
  require_close(pad2d(x, 0, 0, 1, 0, -5.f), {-5, 1, 2, -5, 3, 4});
}

TEST_CASE("pad2d gradients", "[op][grad]") {
  Generator gen(9);
  using V = std::vector<Tensor>;
  check_gradients([](const V& v) { return pad2d(v[0], 1, 2, 0, 3); }, {Tensor::randn({2, 3, 3, 2}, gen)});
}

TEST_CASE("pad2d errors", "[op]") {
  MAAS_REQUIRE_THROWS_WITH(pad2d(Tensor::zeros({2, 2}), 1, 1, 1, 1), "pad2d: input [2,2] must be 4-D");
  MAAS_REQUIRE_THROWS_WITH(pad2d(Tensor::zeros({1, 1, 2, 2}), -1, 0, 0, 0), "padding must be non-negative");
}
