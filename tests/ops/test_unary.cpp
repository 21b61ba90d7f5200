#include <catch2/catch.hpp>

#include <cmath>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("sigmoid, tanh, exp, log by hand", "[op]") {
  Tensor x = Tensor::from_vector({-1, 0, 2}, {3});
  require_close(sigmoid(x), {1.f / (1.f + std::exp(1.f)), 0.5f, 1.f / (1.f + std::exp(-2.f))});
  require_close(tanh(x), {std::tanh(-1.f), 0.f, std::tanh(2.f)});
  require_close(exp(x), {std::exp(-1.f), 1.f, std::exp(2.f)});
  require_close(log(Tensor::from_vector({1, 2.718281828f, 0.5f}, {3})), {0, 1, std::log(0.5f)});
}

TEST_CASE("sigmoid saturates without overflow", "[op]") {
  Tensor s = sigmoid(Tensor::from_vector({-1e4f, 1e4f, -100.f}, {3}));
  require_close(s, {0, 1, 0});
  for (float v : s.to_vector()) REQUIRE(std::isfinite(v));
}

TEST_CASE("sigmoid, tanh, exp, log gradients", "[op][grad]") {
  Generator gen(6);
  using V = std::vector<Tensor>;
  Tensor x = Tensor::randn({3, 4}, gen);
  check_gradients([](const V& v) { return sigmoid(v[0]); }, {x});
  check_gradients([](const V& v) { return tanh(v[0]); }, {x});
  check_gradients([](const V& v) { return exp(v[0]); }, {x});
  check_gradients([](const V& v) { return log(v[0]); }, {Tensor::rand({3, 4}, gen, 0.5f, 3.f)});
}
