#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "gradcheck.hpp"
#include "maas/maas.hpp"
#include "ops/transformer_reference.hpp"

using namespace maas;
using maas::test::require_close;

TEST_CASE("gelu matches PyTorch in both forms, value and derivative", "[gelu]") {
  const std::vector<float> points{-4.f, -2.5f, -1.f, -0.3f, 0.f, 0.2f, 1.f, 1.7f, 5.f};
  for (auto form : {GeluApproximation::none, GeluApproximation::tanh}) {
    const bool exact = form == GeluApproximation::none;
    Tensor x = Tensor::from_vector(points, {9}).requires_grad_();
    Tensor y = gelu(x, form);
    require_close(y, exact ? test::kGeluErf : test::kGeluTanh, 1e-6f);
    sum(y).backward();
    require_close(x.grad(), exact ? test::kGeluErfGrad : test::kGeluTanhGrad, 1e-6f);
  }
}

TEST_CASE("gelu passes the finite-difference check", "[gelu]") {
  Generator gen(11);
  for (auto form : {GeluApproximation::none, GeluApproximation::tanh})
    test::check_gradients([form](const std::vector<Tensor>& in) { return gelu(in[0], form); },
                          {Tensor::randn({3, 5}, gen)});
}

TEST_CASE("gelu passes NaN and infinities through as PyTorch does", "[gelu]") {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = Tensor::from_vector({std::nanf(""), inf, -inf, -100.f, 100.f}, {5}).requires_grad_();
  for (auto form : {GeluApproximation::none, GeluApproximation::tanh}) {
    const Tensor y = gelu(x, form);
    REQUIRE(std::isnan(y.data()[0]));
    REQUIRE(y.data()[1] == inf);
    REQUIRE(std::isnan(y.data()[2]));  // -inf * 0, as PyTorch 1.13 gives
    REQUIRE(y.data()[3] == 0.f);
    REQUIRE(y.data()[4] == 100.f);
  }
  sum(gelu(x)).backward();
  REQUIRE(std::isnan(x.grad().data()[0]));
  REQUIRE(x.grad().data()[4] == Approx(1.f));
}
