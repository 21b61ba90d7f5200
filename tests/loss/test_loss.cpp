#include <catch2/catch.hpp>

#include <memory>

#include "gradcheck.hpp"
#include "maas/loss.hpp"

using namespace maas;
using maas::test::require_close;

TEST_CASE("loss objects wrap the loss functions", "[loss]") {
  Generator gen(3);
  Tensor logits = Tensor::randn({4, 3}, gen);
  Tensor labels = Tensor::from_vector({0, 2, 1, 1}, {4});
  Tensor target = Tensor::randn({4, 3}, gen);
  Tensor binary = Tensor::from_vector({1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1}, {4, 3});

  std::vector<std::unique_ptr<Loss>> losses;
  losses.push_back(std::make_unique<MSELoss>(Reduction::Sum));
  CrossEntropyOptions ce;
  ce.class_weights = {1.f, 2.f, 0.5f};
  ce.label_smoothing = 0.1f;
  losses.push_back(std::make_unique<CrossEntropyLoss>(ce));
  BCEOptions bo;
  bo.pos_weight = {2.f, 1.f, 1.f};
  losses.push_back(std::make_unique<BinaryCrossEntropyWithLogitsLoss>(bo));
  losses.push_back(std::make_unique<HingeLoss>());

  const Loss& mse = *losses[0];
  REQUIRE(mse.name() == "mse_loss");
  REQUIRE(mse(logits, target).item() == mse_loss(logits, target, Reduction::Sum).item());
  const Loss& xent = *losses[1];
  REQUIRE(xent.name() == "cross_entropy");
  REQUIRE(xent(logits, labels).item() == cross_entropy(logits, labels, ce).item());
  // Targets shaped like the logits are probabilities, as torch.nn.CrossEntropyLoss.
  Tensor probs = Tensor::from_vector({1, 0, 0, 0, 0, 1, 0, 1, 0, 0.5f, 0.5f, 0}, {4, 3});
  REQUIRE(xent(logits, probs).item() == cross_entropy_with_probs(logits, probs, ce).item());
  const Loss& bce = *losses[2];
  REQUIRE(bce.name() == "binary_cross_entropy_with_logits");
  REQUIRE(bce(logits, binary).item() == binary_cross_entropy_with_logits(logits, binary, bo).item());
  const Loss& hinge = *losses[3];
  REQUIRE(hinge.name() == "hinge_loss");
  REQUIRE(hinge(logits, binary).item() == hinge_loss(logits, binary).item());

  // Gradients flow through the objects.
  Tensor x = logits.clone().detach().requires_grad_();
  xent(x, labels).backward();
  REQUIRE(x.grad().defined());
  REQUIRE(x.grad_fn_name().empty());
  REQUIRE(xent(x, labels).grad_fn_name() == "cross_entropy");
  REQUIRE(xent(x, probs).grad_fn_name() == "cross_entropy_with_probs");
}

TEST_CASE("loss objects validate their options in the constructor", "[loss]") {
  CrossEntropyOptions ce;
  ce.label_smoothing = -0.1f;
  MAAS_REQUIRE_THROWS_WITH(CrossEntropyLoss{ce}, "CrossEntropyLoss: label_smoothing -0.1 is outside [0, 1]");
  ce.label_smoothing = 0.f;
  ce.class_weights = {1.f, -1.f};
  MAAS_REQUIRE_THROWS_WITH(CrossEntropyLoss{ce}, "CrossEntropyLoss: class_weights[1] = -1 must be finite and >= 0");
  BCEOptions bo;
  bo.pos_weight = {INFINITY};
  MAAS_REQUIRE_THROWS_WITH(BinaryCrossEntropyWithLogitsLoss{bo},
                           "BinaryCrossEntropyWithLogitsLoss: pos_weight[0] = inf must be finite and >= 0");
  // Errors that need the data come from the function.
  CrossEntropyLoss xent;
  MAAS_REQUIRE_THROWS_WITH(xent(Tensor::zeros({4, 10}), Tensor::zeros({3})),
                           "cross_entropy: labels [3] do not match logits [4,10]");
}

TEST_CASE("reductions have names", "[loss]") {
  REQUIRE(to_string(Reduction::Mean) == "mean");
  REQUIRE(to_string(Reduction::Sum) == "sum");
  REQUIRE(to_string(Reduction::None) == "none");
}
