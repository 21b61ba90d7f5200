#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("arithmetic forward by hand", "[op]") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector({10, 20}, {2});
  require_close(a + b, {11, 22, 13, 24});
  require_close(a - b, {-9, -18, -7, -16});
  require_close(a * b, {10, 40, 30, 80});
  require_close(b / a, {10, 10, 10.f / 3, 5});
  require_close(-a, {-1, -2, -3, -4});
  require_close(a + 1.f, {2, 3, 4, 5});
  require_close(1.f - a, {0, -1, -2, -3});
  require_close(a * 2.f, {2, 4, 6, 8});
  require_close(a / 2.f, {0.5f, 1, 1.5f, 2});
  require_close(2.f / a, {2, 1, 2.f / 3, 0.5f});
  require_close(pow(a, 2.f), {1, 4, 9, 16});
  require_close(pow(a, 0.5f), {1, std::sqrt(2.f), std::sqrt(3.f), 2});
}

TEST_CASE("broadcasting of a bias over batch and channel", "[op]") {
  // [N=2, C=2, H=1, W=2] + bias [C,1,1]
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 1, 2});
  Tensor bias = Tensor::from_vector({100, 200}, {2, 1, 1});
  Tensor y = x + bias;
  REQUIRE(y.shape() == Shape{2, 2, 1, 2});
  require_close(y, {101, 102, 203, 204, 105, 106, 207, 208});
  // [3,1] * [1,2] -> [3,2]
  Tensor c = Tensor::from_vector({1, 2, 3}, {3, 1});
  Tensor r = Tensor::from_vector({10, 100}, {1, 2});
  require_close(c * r, {10, 100, 20, 200, 30, 300});
  // 0-d tensor with anything
  require_close(Tensor::scalar(2.f) * x, {2, 4, 6, 8, 10, 12, 14, 16});
}

TEST_CASE("broadcast gradients sum over stretched dimensions", "[op]") {
  Tensor x = Tensor::ones({2, 3, 2, 2}).requires_grad_();
  Tensor bias = Tensor::zeros({3, 1, 1}).requires_grad_();
  sum(x + bias).backward();
  require_close(bias.grad(), {8, 8, 8});  // N*H*W ones per channel
}

TEST_CASE("arithmetic gradients", "[op][grad]") {
  Generator gen(1);
  Tensor a = Tensor::randn({3, 4}, gen);
  Tensor b = Tensor::randn({3, 4}, gen);
  Tensor pos = Tensor::rand({3, 4}, gen, 0.5f, 2.f);
  Tensor row = Tensor::randn({4}, gen);
  Tensor col = Tensor::randn({3, 1}, gen);
  using V = std::vector<Tensor>;
  check_gradients([](const V& v) { return v[0] + v[1]; }, {a, b});
  check_gradients([](const V& v) { return v[0] - v[1]; }, {a, row});
  check_gradients([](const V& v) { return v[0] * v[1]; }, {a, col});
  check_gradients([](const V& v) { return v[0] / v[1]; }, {a, pos});
  check_gradients([](const V& v) { return v[1] / v[0]; }, {pos, col});
  check_gradients([](const V& v) { return v[0] * v[0]; }, {a});  // aliasing inputs
  check_gradients([](const V& v) { return -v[0]; }, {a});
  check_gradients([](const V& v) { return 3.f - v[0] * 2.f + 1.f; }, {a});
  check_gradients([](const V& v) { return 2.f / v[0]; }, {pos});
  check_gradients([](const V& v) { return pow(v[0], 3.f); }, {a});
  check_gradients([](const V& v) { return pow(v[0], -1.5f); }, {pos});
  // 4-D bias broadcasting, batch 1
  Tensor img = Tensor::randn({1, 3, 2, 3}, gen);
  Tensor bias = Tensor::randn({3, 1, 1}, gen);
  check_gradients([](const V& v) { return v[0] + v[1]; }, {img, bias});
  check_gradients([](const V& v) { return v[0] * v[1]; }, {img, bias});
}

TEST_CASE("arithmetic errors name the op and the shapes", "[op]") {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({4});
  MAAS_REQUIRE_THROWS_WITH(a + b, "add: shapes [2,3] and [4] cannot be broadcast");
  MAAS_REQUIRE_THROWS_WITH(a * Tensor::zeros({3, 3}), "mul: shapes [2,3] and [3,3] cannot be broadcast");
  MAAS_REQUIRE_THROWS_WITH(a / 0.f, "by scalar zero");
  MAAS_REQUIRE_THROWS_WITH(a - Tensor(), "sub: second input is an undefined tensor");
}
