#include <catch2/catch.hpp>

#include <cmath>

#include "gradcheck.hpp"
#include "maas/loss.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

// Reference values marked "PyTorch" were computed once with PyTorch 1.13
// (torch.nn.functional.binary_cross_entropy_with_logits, float64) and pasted here.

namespace {
using V = std::vector<Tensor>;

Tensor logits23() { return Tensor::from_vector({0.5f, -1, 2, -3, 0, 1.5f}, {2, 3}); }
// Hard and soft targets.
Tensor targets23() { return Tensor::from_vector({1, 0, 0.3f, 1, 0.5f, 0}, {2, 3}); }

BCEOptions bce(Reduction r, std::vector<float> pos_weight = {}) {
  BCEOptions o;
  o.reduction = r;
  o.pos_weight = std::move(pos_weight);
  return o;
}
}  // namespace

TEST_CASE("binary_cross_entropy_with_logits by hand", "[loss]") {
  // x = 0: log 2 whatever the target; gradient sigmoid(0) - y = 0.5 - y.
  Tensor x = Tensor::zeros({3}).requires_grad_();
  Tensor y = Tensor::from_vector({0, 1, 0.25f}, {3});
  require_close(binary_cross_entropy_with_logits(x, y, bce(Reduction::None)), {std::log(2.f), std::log(2.f), std::log(2.f)});
  binary_cross_entropy_with_logits(x, y, bce(Reduction::Sum)).backward();
  require_close(x.grad(), {0.5f, -0.5f, 0.25f});
  // x = log 3, y = 1: sigmoid = 3/4, loss -log(3/4) = 0.28768207; with pos_weight 2 twice that.
  Tensor z = Tensor::scalar(std::log(3.f));
  REQUIRE(binary_cross_entropy_with_logits(z, Tensor::scalar(1.f)).item() == Approx(0.28768207f));
  REQUIRE(binary_cross_entropy_with_logits(z, Tensor::scalar(1.f), bce(Reduction::Mean, {2.f})).item() ==
          Approx(2 * 0.28768207f));
}

TEST_CASE("binary_cross_entropy_with_logits against PyTorch", "[loss]") {
  Tensor x = logits23().requires_grad_();
  Tensor y = targets23().requires_grad_();
  require_close(binary_cross_entropy_with_logits(x, y), {1.2929024f});
  require_close(binary_cross_entropy_with_logits(x, y, bce(Reduction::Sum)), {7.7574145f});
  Tensor none = binary_cross_entropy_with_logits(x, y, bce(Reduction::None));
  REQUIRE(none.shape() == Shape{2, 3});
  require_close(none, {0.47407698f, 0.31326169f, 1.526928f, 3.0485874f, 0.69314718f, 1.7014133f});
  binary_cross_entropy_with_logits(x, y).backward();
  require_close(x.grad(), {-0.062923445f, 0.04482357f, 0.096799513f, -0.15876235f, 0, 0.13626241f});
  require_close(y.grad(), {-0.083333333f, 0.16666667f, -0.33333333f, 0.5f, 0, -0.25f});  // -x / 6
}

TEST_CASE("binary_cross_entropy_with_logits with pos_weight against PyTorch", "[loss]") {
  Tensor x = logits23().requires_grad_();
  Tensor y = targets23().requires_grad_();
  const std::vector<float> pw{2.f, 0.5f, 3.f};  // one per entry of the last dimension
  require_close(binary_cross_entropy_with_logits(x, y, bce(Reduction::Mean, pw)), {1.8638248f});
  require_close(binary_cross_entropy_with_logits(x, y, bce(Reduction::Sum, pw)), {11.182949f});
  require_close(binary_cross_entropy_with_logits(x, y, bce(Reduction::None, pw)),
                {0.94815397f, 0.31326169f, 1.6030848f, 6.0971747f, 0.51986039f, 1.7014133f});
  binary_cross_entropy_with_logits(x, y, bce(Reduction::Mean, pw)).backward();
  require_close(x.grad(), {-0.12584689f, 0.04482357f, 0.084879221f, -0.31752471f, 0.020833333f, 0.13626241f});
  require_close(y.grad(), {-0.0043205026f, 0.057228193f, -0.291024f, 1.0080979f, -0.057762265f, -0.18286224f});
  // A single pos_weight applies to every element: same as {2, 2, 2}.
  require_close(binary_cross_entropy_with_logits(logits23(), targets23(), bce(Reduction::None, {2.f})),
                binary_cross_entropy_with_logits(logits23(), targets23(), bce(Reduction::None, {2.f, 2.f, 2.f}))
                    .to_vector());
}

TEST_CASE("binary_cross_entropy_with_logits with extreme logits is finite and exact", "[loss]") {
  // PyTorch (float32) and by hand: x = +-1e4 against y = 1, 1, 0, 0 gives
  // losses {0, 1e4, 1e4, 0} and gradients sigmoid(x) - y = {0, -1, 1, 0};
  // with pos_weight 3 the positive term triples: {0, 3e4, 1e4, 0} and {0, -3, 1, 0}.
  Tensor y = Tensor::from_vector({1, 1, 0, 0}, {4});
  Tensor x = Tensor::from_vector({1e4f, -1e4f, 1e4f, -1e4f}, {4}).requires_grad_();
  Tensor none = binary_cross_entropy_with_logits(x, y, bce(Reduction::None));
  require_close(none, {0, 1e4f, 1e4f, 0});
  sum(none).backward();
  require_close(x.grad(), {0, -1, 1, 0});
  x.zero_grad();
  Tensor weighted = binary_cross_entropy_with_logits(x, y, bce(Reduction::None, {3.f}));
  require_close(weighted, {0, 3e4f, 1e4f, 0});
  sum(weighted).backward();
  require_close(x.grad(), {0, -3, 1, 0});
  for (float v : x.grad().to_vector()) REQUIRE(std::isfinite(v));
  // Large but not saturating: x = -30, y = 0 is log(1 + e^-30) = 9.357623e-14, not 0 and not cancelled.
  REQUIRE(binary_cross_entropy_with_logits(Tensor::scalar(-30.f), Tensor::scalar(0.f)).item() ==
          Approx(9.357623e-14f).epsilon(1e-5));
}

TEST_CASE("binary_cross_entropy_with_logits gradient check", "[loss][grad]") {
  Generator gen(9);
  Tensor x = Tensor::randn({3, 4}, gen, 0.f, 2.f);
  Tensor y = Tensor::rand({3, 4}, gen, 0.f, 1.f);
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    for (const auto& pw : {std::vector<float>{}, std::vector<float>{0.5f, 1.f, 2.f, 4.f}, std::vector<float>{3.f}})
      check_gradients([r, pw](const V& v) { return binary_cross_entropy_with_logits(v[0], v[1], bce(r, pw)); },
                      {x, y});
  // [N] logits as a binary classifier emits them.
  Tensor x1 = Tensor::randn({5}, gen);
  Tensor y1 = Tensor::from_vector({1, 0, 0, 1, 1}, {5});
  check_gradients([y1](const V& v) { return binary_cross_entropy_with_logits(v[0], y1); }, {x1});
}

TEST_CASE("binary_cross_entropy_with_logits on a large input takes the parallel path", "[loss]") {
  // 40000 zeros: log 2 each; gradient (0.5 - y) / n.
  const int64_t n = 40000;
  Tensor x = Tensor::zeros({n / 4, 4}).requires_grad_();
  Tensor loss = binary_cross_entropy_with_logits(x, Tensor::ones({n / 4, 4}));
  REQUIRE(loss.item() == Approx(std::log(2.f)));
  loss.backward();
  REQUIRE(x.grad().data()[0] == Approx(-0.5 / n));
  REQUIRE(x.grad().data()[n - 1] == Approx(-0.5 / n));
}

TEST_CASE("binary_cross_entropy_with_logits errors name the loss and the shapes", "[loss]") {
  MAAS_REQUIRE_THROWS_WITH(binary_cross_entropy_with_logits(Tensor::zeros({4, 1}), Tensor::zeros({4})),
                           "binary_cross_entropy_with_logits: logits [4,1] and targets [4] must have the same shape");
  MAAS_REQUIRE_THROWS_WITH(
      binary_cross_entropy_with_logits(Tensor::zeros({4, 5}), Tensor::zeros({4, 5}), bce(Reduction::Mean, {1, 2, 3})),
      "binary_cross_entropy_with_logits: pos_weight has 3 entries but logits [4,5] have 5 in the last dimension");
  MAAS_REQUIRE_THROWS_WITH(
      binary_cross_entropy_with_logits(Tensor::zeros({2}), Tensor::zeros({2}), bce(Reduction::Mean, {NAN})),
      "binary_cross_entropy_with_logits: pos_weight[0] = nan must be finite and >= 0");
  MAAS_REQUIRE_THROWS_WITH(binary_cross_entropy_with_logits(Tensor::zeros({0}), Tensor::zeros({0})),
                           "binary_cross_entropy_with_logits: mean over an empty input [0]");
}
