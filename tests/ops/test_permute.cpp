#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;

TEST_CASE("permute moves every element where its new index says", "[permute]") {
  Tensor x = Tensor::empty({2, 3, 4, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(i);
  const Tensor y = permute(x, {2, 0, 3, 1});
  REQUIRE(y.shape() == Shape{4, 2, 5, 3});
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t c = 0; c < 4; ++c)
        for (int64_t d = 0; d < 5; ++d)
          REQUIRE(y.data()[((c * 2 + a) * 5 + d) * 3 + b] == x.data()[((a * 3 + b) * 4 + c) * 5 + d]);
  REQUIRE(permute(x, {-4, -3, -2, -1}).to_vector() == x.to_vector());
}

TEST_CASE("permute passes the finite-difference check", "[permute]") {
  Generator gen(2);
  test::check_gradients([](const std::vector<Tensor>& in) { return permute(in[0], {0, 2, 1, 3}); },
                        {Tensor::randn({2, 3, 2, 4}, gen)});
}

TEST_CASE("permute names a bad order", "[permute]") {
  const Tensor x = Tensor::zeros({2, 3});
  REQUIRE_THROWS_WITH(permute(x, {0}), Catch::Contains("1 dimensions given") && Catch::Contains("[2,3]"));
  REQUIRE_THROWS_WITH(permute(x, {0, 0}), Catch::Contains("out of range or repeated"));
  REQUIRE_THROWS_WITH(permute(x, {0, 2}), Catch::Contains("dimension 2"));
}
