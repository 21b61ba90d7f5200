#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/loss.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

namespace {
// pred - target = {1, 0, -2, 0.5}: squares {1, 0, 4, 0.25}, sum 5.25, mean 1.3125.
Tensor pred_values() { return Tensor::from_vector({1, 2, 3, 4}, {2, 2}); }
Tensor target_values() { return Tensor::from_vector({0, 2, 5, 3.5f}, {2, 2}); }
}  // namespace

TEST_CASE("mse_loss forward by hand for each reduction", "[loss]") {
  const Tensor p = pred_values(), t = target_values();
  Tensor mean_loss = mse_loss(p, t);
  REQUIRE(mean_loss.dim() == 0);
  REQUIRE(mean_loss.item() == Approx(1.3125f));
  REQUIRE(mse_loss(p, t, Reduction::Sum).item() == Approx(5.25f));
  Tensor none = mse_loss(p, t, Reduction::None);
  REQUIRE(none.shape() == Shape{2, 2});
  require_close(none, {1, 0, 4, 0.25f});
  // 0-d inputs
  REQUIRE(mse_loss(Tensor::scalar(3.f), Tensor::scalar(1.f)).item() == 4.f);
}

TEST_CASE("mse_loss gradients by hand", "[loss]") {
  // Mean: dpred = 2 (p - t) / 4 = {0.5, 0, -1, 0.25}; dtarget = -dpred.
  Tensor p = pred_values().requires_grad_();
  Tensor t = target_values().requires_grad_();
  mse_loss(p, t).backward();
  require_close(p.grad(), {0.5f, 0, -1, 0.25f});
  require_close(t.grad(), {-0.5f, 0, 1, -0.25f});
  // Sum: dpred = 2 (p - t) = {2, 0, -4, 1}.
  p.zero_grad();
  mse_loss(p, target_values(), Reduction::Sum).backward();
  require_close(p.grad(), {2, 0, -4, 1});
  // None with upstream {1, 2, 3, 4}: dpred = 2 (p - t) * up = {2, 0, -12, 4}.
  p.zero_grad();
  mse_loss(p, target_values(), Reduction::None).backward(Tensor::from_vector({1, 2, 3, 4}, {2, 2}));
  require_close(p.grad(), {2, 0, -12, 4});
  // The same tensor as pred and target: the loss is 0, and so is the gradient.
  Tensor x = pred_values().requires_grad_();
  mse_loss(x, x).backward();
  require_close(x.grad(), {0, 0, 0, 0});
}

TEST_CASE("mse_loss gradient check", "[loss][grad]") {
  Generator gen(11);
  using V = std::vector<Tensor>;
  Tensor p = Tensor::randn({3, 4}, gen);
  Tensor t = Tensor::randn({3, 4}, gen);
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    check_gradients([r](const V& v) { return mse_loss(v[0], v[1], r); }, {p, t});
  Tensor img = Tensor::randn({2, 3, 2, 2}, gen);
  Tensor img_t = Tensor::randn({2, 3, 2, 2}, gen);
  check_gradients([](const V& v) { return mse_loss(v[0], v[1]); }, {img, img_t});
}

TEST_CASE("mse_loss on a large input takes the parallel path", "[loss]") {
  // 100000 elements, each (1 - 0)^2 = 1 except every tenth (3 - 0)^2 = 9: mean 1.8.
  const int64_t n = 100000;
  Tensor p = Tensor::ones({n / 10, 10});
  for (int64_t i = 0; i < n; i += 10) p.data()[i] = 3.f;
  p.requires_grad_();
  Tensor loss = mse_loss(p, Tensor::zeros({n / 10, 10}));
  REQUIRE(loss.item() == Approx(1.8f).epsilon(1e-6));
  loss.backward();
  // dpred = 2 p / n
  REQUIRE(p.grad().data()[0] == Approx(6.0 / n));
  REQUIRE(p.grad().data()[1] == Approx(2.0 / n));
  REQUIRE(p.grad().data()[n - 1] == Approx(2.0 / n));
}

TEST_CASE("mse_loss errors name the loss and the shapes", "[loss]") {
  MAAS_REQUIRE_THROWS_WITH(mse_loss(Tensor::zeros({4, 1}), Tensor::zeros({4})),
                           "mse_loss: pred [4,1] and target [4] must have the same shape");
  MAAS_REQUIRE_THROWS_WITH(mse_loss(Tensor::zeros({0, 3}), Tensor::zeros({0, 3})),
                           "mse_loss: mean over an empty input [0,3]");
  REQUIRE(mse_loss(Tensor::zeros({0, 3}), Tensor::zeros({0, 3}), Reduction::Sum).item() == 0.f);
  MAAS_REQUIRE_THROWS_WITH(mse_loss(Tensor(), Tensor::zeros({2})), "mse_loss: pred is an undefined tensor");
}
