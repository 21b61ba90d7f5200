#include <catch2/catch.hpp>

#include <utility>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("transpose by hand", "[op]") {
  // [[1,2,3],[4,5,6]] transposed is [[1,4],[2,5],[3,6]].
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor t = transpose(x, 0, 1);
  REQUIRE(t.shape() == Shape{3, 2});
  require_close(t, {1, 4, 2, 5, 3, 6});
  require_close(transpose(x, -1, -2), {1, 4, 2, 5, 3, 6});
  REQUIRE_FALSE(t.shares_storage(x));  // a copy, not a view

  // Same dimension twice: an unchanged copy.
  Tensor same = transpose(x, 1, -1);
  REQUIRE(same.shape() == Shape{2, 3});
  require_close(same, {1, 2, 3, 4, 5, 6});
  REQUIRE_FALSE(same.shares_storage(x));
}

TEST_CASE("transpose moves every element of a 4-D tensor", "[op]") {
  Generator gen(31);
  // The second shape is large enough for the parallel, multi-tile path.
  for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{3, 70, 5, 40}}) {
    Tensor x = Tensor::randn(shape, gen);
    for (auto [d0, d1] : {std::pair<int64_t, int64_t>{0, 1}, {0, 3}, {1, 3}, {2, -1}, {-1, 1}, {3, 0}}) {
      Tensor y = transpose(x, d0, d1);
      const int64_t a = d0 < 0 ? d0 + 4 : d0, b = d1 < 0 ? d1 + 4 : d1;
      Shape want = shape;
      std::swap(want[static_cast<size_t>(a)], want[static_cast<size_t>(b)]);
      INFO("shape " << to_string(shape) << " dims " << d0 << "," << d1);
      REQUIRE(y.shape() == want);
      bool all_equal = true;
      for (int64_t i0 = 0; i0 < shape[0]; ++i0)
        for (int64_t i1 = 0; i1 < shape[1]; ++i1)
          for (int64_t i2 = 0; i2 < shape[2]; ++i2)
            for (int64_t i3 = 0; i3 < shape[3]; ++i3) {
              int64_t j[4] = {i0, i1, i2, i3};
              std::swap(j[a], j[b]);
              all_equal = all_equal && y.at({j[0], j[1], j[2], j[3]}) == x.at({i0, i1, i2, i3});
            }
      REQUIRE(all_equal);
      // Transposing back restores x exactly.
      REQUIRE(transpose(y, d0, d1).to_vector() == x.to_vector());
    }
  }
}

TEST_CASE("transpose gradients", "[op][grad]") {
  Generator gen(32);
  using V = std::vector<Tensor>;
  Tensor x = Tensor::randn({2, 3, 4}, gen);
  for (auto [d0, d1] : {std::pair<int64_t, int64_t>{0, 1}, {0, 2}, {1, -1}, {-1, 0}, {1, 1}}) {
    INFO("dims " << d0 << "," << d1);
    check_gradients([d0 = d0, d1 = d1](const V& v) { return transpose(v[0], d0, d1); }, {x});
  }
  // Through a matrix product: x^T x.
  check_gradients([](const V& v) { return matmul(transpose(v[0], 0, 1), v[0]); }, {Tensor::randn({3, 2}, gen)});
}

TEST_CASE("transpose errors", "[op]") {
  MAAS_REQUIRE_THROWS_WITH(transpose(Tensor::zeros({2, 3}), 0, 2),
                           "transpose: dimension 2 is out of range for shape [2,3]");
  MAAS_REQUIRE_THROWS_WITH(transpose(Tensor::zeros({2, 3}), -3, 1),
                           "transpose: dimension -3 is out of range for shape [2,3]");
  MAAS_REQUIRE_THROWS_WITH(transpose(Tensor(), 0, 1), "transpose: input is an undefined tensor");
}
