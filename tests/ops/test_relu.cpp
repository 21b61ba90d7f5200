#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("relu and leaky_relu by hand", "[op]") {
  Tensor x = Tensor::from_vector({-2, -0.5f, 0, 1.5f}, {4});
  require_close(relu(x), {0, 0, 0, 1.5f});
  require_close(leaky_relu(x, 0.1f), {-0.2f, -0.05f, 0, 1.5f});
  require_close(leaky_relu(x), {-0.02f, -0.005f, 0, 1.5f});
}

TEST_CASE("relu gradients away from the kink", "[op][grad]") {
  // Values at least 0.1 from zero, so the finite difference never crosses it.
  Tensor x = Tensor::from_vector({-1.5f, -0.3f, 0.2f, 0.7f, 2.f, -0.9f}, {2, 3});
  using V = std::vector<Tensor>;
  check_gradients([](const V& v) { return relu(v[0]); }, {x});
  check_gradients([](const V& v) { return leaky_relu(v[0], 0.2f); }, {x});
}

TEST_CASE("relu gradient at zero is zero (PyTorch's convention)", "[op]") {
  Tensor x = Tensor::from_vector({0.f}, {1}).requires_grad_();
  sum(relu(x)).backward();
  REQUIRE(x.grad().item() == 0.f);
}
