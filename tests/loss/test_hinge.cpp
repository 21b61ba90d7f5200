#include <catch2/catch.hpp>

#include <cmath>

#include "gradcheck.hpp"
#include "maas/loss.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("hinge_loss by hand for each reduction", "[loss]") {
  // y * pred = {2, 0.5, -1, 0.25}: max(0, 1 - y pred) = {0, 0.5, 2, 0.75}; sum 3.25, mean 0.8125.
  Tensor pred = Tensor::from_vector({2, 0.5f, 1, -0.25f}, {2, 2});
  Tensor y = Tensor::from_vector({1, 1, -1, -1}, {2, 2});
  REQUIRE(hinge_loss(pred, y).item() == Approx(0.8125f));
  REQUIRE(hinge_loss(pred, y, Reduction::Sum).item() == Approx(3.25f));
  Tensor none = hinge_loss(pred, y, Reduction::None);
  REQUIRE(none.shape() == Shape{2, 2});
  require_close(none, {0, 0.5f, 2, 0.75f});
}

TEST_CASE("hinge_loss gradients by hand", "[loss]") {
  // d/dpred = -y / 4 where the margin is active ({0, 0.5, 2, 0.75} > 0 for the last three).
  Tensor pred = Tensor::from_vector({2, 0.5f, 1, -0.25f}, {2, 2}).requires_grad_();
  Tensor y = Tensor::from_vector({1, 1, -1, -1}, {2, 2});
  hinge_loss(pred, y).backward();
  require_close(pred.grad(), {0, -0.25f, 0.25f, 0.25f});
  // None with upstream {1, 2, 3, 4}: {0, -2, 3, 4}.
  pred.zero_grad();
  hinge_loss(pred, y, Reduction::None).backward(Tensor::from_vector({1, 2, 3, 4}, {2, 2}));
  require_close(pred.grad(), {0, -2, 3, 4});
  // At the kink y * pred = 1 the gradient is -y (TensorFlow's maximum sends it to 1 - y pred).
  Tensor k = Tensor::from_vector({1, -1}, {2}).requires_grad_();
  hinge_loss(k, Tensor::from_vector({1, -1}, {2}), Reduction::Sum).backward();
  require_close(k.grad(), {-1, 1});
}

TEST_CASE("hinge_loss maps 0/1 targets to -1/1 as Keras", "[loss]") {
  Tensor pred = Tensor::from_vector({2, 0.5f, 1, -0.25f}, {4});
  Tensor y01 = Tensor::from_vector({1, 1, 0, 0}, {4});
  Tensor ypm = Tensor::from_vector({1, 1, -1, -1}, {4});
  require_close(hinge_loss(pred, y01, Reduction::None), hinge_loss(pred, ypm, Reduction::None).to_vector());
  // All ones (a 0/1 set as well): y = 1 stays 1.
  require_close(hinge_loss(pred, Tensor::ones({4}), Reduction::None), {0, 0.5f, 0, 1.25f});
  // All zeros map to -1: max(0, 1 + pred) = {3, 1.5, 2, 0.75}.
  require_close(hinge_loss(pred, Tensor::zeros({4}), Reduction::None), {3, 1.5f, 2, 0.75f});
}

TEST_CASE("hinge_loss with extreme predictions", "[loss]") {
  // pred = +-1e4 with y = 1: loss 0 (gradient 0) and 1 + 1e4 (gradient -1).
  Tensor pred = Tensor::from_vector({1e4f, -1e4f}, {2}).requires_grad_();
  Tensor loss = hinge_loss(pred, Tensor::ones({2}), Reduction::Sum);
  REQUIRE(loss.item() == 10001.f);
  loss.backward();
  require_close(pred.grad(), {0, -1});
}

TEST_CASE("hinge_loss gradient check", "[loss][grad]") {
  // Predictions kept away from the kink at y * pred = 1 by more than the finite-difference step.
  using V = std::vector<Tensor>;
  Tensor pred = Tensor::from_vector({2, 0.5f, 1.3f, -0.25f, 0.8f, -3, 0.1f, 1.6f, -0.7f, 0.2f, -1.4f, 0.6f}, {3, 4});
  Tensor y = Tensor::from_vector({1, 1, -1, -1, 1, 1, -1, 1, -1, 1, -1, -1}, {3, 4});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    check_gradients([y, r](const V& v) { return hinge_loss(v[0], y, r); }, {pred});
}

TEST_CASE("hinge_loss errors name the loss, shapes and targets", "[loss]") {
  MAAS_REQUIRE_THROWS_WITH(hinge_loss(Tensor::zeros({3}), Tensor::zeros({3, 1})),
                           "hinge_loss: pred [3] and targets [3,1] must have the same shape");
  MAAS_REQUIRE_THROWS_WITH(hinge_loss(Tensor::zeros({3}), Tensor::from_vector({1, -1, 0.5f}, {3})),
                           "hinge_loss: target 0.5 at index 2 is not -1 or 1");
  // A mix of -1, 0 and 1 is neither convention.
  MAAS_REQUIRE_THROWS_WITH(hinge_loss(Tensor::zeros({3}), Tensor::from_vector({1, -1, 0}, {3})),
                           "hinge_loss: target 0 at index 2 is not -1 or 1");
  MAAS_REQUIRE_THROWS_WITH(hinge_loss(Tensor::zeros({0}), Tensor::zeros({0})), "hinge_loss: mean over an empty input [0]");
}
