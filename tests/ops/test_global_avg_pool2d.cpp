#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("global_avg_pool2d by hand", "[op]") {
  // x [2,2,2,3]: sample 0 channel 0 is 0..5 (mean 2.5), channel 1 is 6..11
  // (mean 8.5); sample 1 is 12..23 (means 14.5, 20.5).
  std::vector<float> v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  Tensor x = Tensor::from_vector(v, {2, 2, 2, 3}).requires_grad_();
  Tensor y = global_avg_pool2d(x);
  REQUIRE(y.shape() == Shape{2, 2});
  require_close(y, {2.5f, 8.5f, 14.5f, 20.5f});
  // d/dx of sum(y * [1,2,3,4]): each plane gets its weight / 6.
  sum(y * Tensor::from_vector({1, 2, 3, 4}, {2, 2})).backward();
  const std::vector<float> g = x.grad().to_vector();
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(static_cast<float>(i / 6 + 1) / 6.f));
  // A 1x1 plane is the identity.
  require_close(global_avg_pool2d(Tensor::from_vector({3, -4}, {1, 2, 1, 1})), {3, -4});
}

TEST_CASE("global_avg_pool2d gradients over shapes", "[op][grad]") {
  Generator gen(3);
  for (const Shape& s : {Shape{1, 1, 1, 1}, Shape{2, 3, 4, 5}, Shape{3, 2, 1, 7}, Shape{1, 4, 6, 2}})
    check_gradients([](const std::vector<Tensor>& in) { return global_avg_pool2d(in[0]); }, {Tensor::randn(s, gen)});
}

TEST_CASE("global_avg_pool2d refuses what is not an image batch", "[op]") {
  MAAS_REQUIRE_THROWS_WITH(global_avg_pool2d(Tensor::zeros({2, 3, 4})), "global_avg_pool2d: input [2,3,4] must be 4-D");
  MAAS_REQUIRE_THROWS_WITH(global_avg_pool2d(Tensor::zeros({2, 3, 0, 4})), "has an empty H x W plane");
  MAAS_REQUIRE_THROWS_WITH(global_avg_pool2d(Tensor()), "global_avg_pool2d");
}
