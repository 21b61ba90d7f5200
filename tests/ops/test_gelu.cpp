#include <catch2/catch.hpp>

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
