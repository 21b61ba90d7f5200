#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("concat by hand", "[op]") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector({5, 6}, {2, 1});
  Tensor c = Tensor::from_vector({7, 8}, {1, 2});
  // Along columns: each row of a followed by the row of b.
  Tensor ab = concat({a, b}, 1);
  REQUIRE(ab.shape() == Shape{2, 3});
  require_close(ab, {1, 2, 5, 3, 4, 6});
  require_close(concat({b, a}, -1), {5, 1, 2, 6, 3, 4});
  // Along rows: a's rows then c's.
  Tensor ac = concat({a, c, a}, 0);
  REQUIRE(ac.shape() == Shape{5, 2});
  require_close(ac, {1, 2, 3, 4, 7, 8, 1, 2, 3, 4});
  // One tensor: a copy.
  Tensor one = concat({a}, 0);
  require_close(one, {1, 2, 3, 4});
  REQUIRE_FALSE(one.shares_storage(a));
  // An empty piece contributes nothing.
  require_close(concat({a, Tensor::zeros({2, 0}), b}, 1), {1, 2, 5, 3, 4, 6});
}

TEST_CASE("concat of 3-D tensors along the middle", "[op]") {
  // x [2,1,2] = [[[0,1]],[[2,3]]], y [2,2,2] = 10 + [0..7].
  Tensor x = Tensor::from_vector({0, 1, 2, 3}, {2, 1, 2});
  Tensor y = Tensor::from_vector({10, 11, 12, 13, 14, 15, 16, 17}, {2, 2, 2});
  Tensor z = concat({x, y}, 1);
  REQUIRE(z.shape() == Shape{2, 3, 2});
  require_close(z, {0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17});
  require_close(concat({x, y}, -2), z.to_vector(), 0.f);
}

TEST_CASE("concat of large tensors matches element by element", "[op]") {
  // Large enough for the parallel path.
  Generator gen(41);
  Tensor a = Tensor::randn({40, 30, 20}, gen);
  Tensor b = Tensor::randn({40, 7, 20}, gen);
  Tensor z = concat({a, b}, 1);
  REQUIRE(z.shape() == Shape{40, 37, 20});
  bool ok = true;
  for (int64_t i = 0; i < 40; ++i)
    for (int64_t j = 0; j < 37; ++j)
      for (int64_t k = 0; k < 20; ++k)
        ok = ok && z.at({i, j, k}) == (j < 30 ? a.at({i, j, k}) : b.at({i, j - 30, k}));
  REQUIRE(ok);
}

TEST_CASE("concat gradients", "[op][grad]") {
  Generator gen(42);
  using V = std::vector<Tensor>;
  check_gradients([](const V& v) { return concat(v, 0); },
                  {Tensor::randn({1, 3, 4}, gen), Tensor::randn({2, 3, 4}, gen)});
  check_gradients([](const V& v) { return concat(v, 1); },
                  {Tensor::randn({2, 2, 4}, gen), Tensor::randn({2, 1, 4}, gen), Tensor::randn({2, 3, 4}, gen)});
  check_gradients([](const V& v) { return concat(v, -1); },
                  {Tensor::randn({2, 3, 1}, gen), Tensor::randn({2, 3, 4}, gen)});
  // The same tensor twice: both slices accumulate into its gradient.
  check_gradients([](const V& v) { return concat({v[0], v[0]}, 1); }, {Tensor::randn({2, 3, 2}, gen)});
}

TEST_CASE("concat sends gradients only to inputs that need them", "[op][grad]") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}).requires_grad_();
  Tensor b = Tensor::from_vector({5, 6}, {2, 1});  // a constant
  Tensor z = concat({b, a}, 1);
  REQUIRE(z.grad_fn_name() == "concat");
  // dout = [[1,2,3],[4,5,6]]: a gets columns 1..2.
  z.backward(Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));
  require_close(a.grad(), {2, 3, 5, 6});
  REQUIRE_FALSE(b.grad().defined());
  // No input needs a gradient: nothing is recorded.
  REQUIRE_FALSE(concat({b, b}, 0).requires_grad());
}

TEST_CASE("concat errors", "[op]") {
  MAAS_REQUIRE_THROWS_WITH(concat({}, 0), "concat: needs at least one tensor");
  MAAS_REQUIRE_THROWS_WITH(concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 4})}, 0),
                           "concat: tensor 1 has shape [2,4] but tensor 0 has shape [2,3] "
                           "(they may differ only in dimension 0)");
  MAAS_REQUIRE_THROWS_WITH(concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 3}), Tensor::zeros({3, 4})}, -1),
                           "concat: tensor 2 has shape [3,4] but tensor 0 has shape [2,3] "
                           "(they may differ only in dimension 1)");
  MAAS_REQUIRE_THROWS_WITH(concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 3, 1})}, 0),
                           "concat: tensor 1 has shape [2,3,1] (3 dimensions) but tensor 0 has shape [2,3] (2 dimensions)");
  MAAS_REQUIRE_THROWS_WITH(concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 3})}, 2),
                           "concat: dimension 2 is out of range for shape [2,3]");
  MAAS_REQUIRE_THROWS_WITH(concat({Tensor::zeros({2, 3}), Tensor()}, 0), "concat: tensor 1 is an undefined tensor");
}
