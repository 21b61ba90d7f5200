// What the losses share (reductions, argument checks) and the loss objects,
// thin wrappers over the loss functions for the trainer.
#include "maas/loss.hpp"

#include <cmath>
#include <utility>

#include "loss/reduction.hpp"

namespace maas {

std::string to_string(Reduction reduction) {
  switch (reduction) {
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
    case Reduction::None: return "none";
  }
  return "unknown";
}

namespace detail {

Reducer make_reducer(Reduction reduction, int64_t count, double denominator, const char* op,
                     const Shape& shape) {
  MAAS_CHECK(reduction == Reduction::Mean || reduction == Reduction::Sum || reduction == Reduction::None,
             op << ": unknown reduction " << static_cast<int>(reduction));
  Reducer r;
  r.reduction = reduction;
  if (reduction == Reduction::Mean) {
    MAAS_CHECK(count > 0, op << ": mean over an empty input " << to_string(shape));
    r.scale = 1.0 / denominator;  // a zero sum of weights gives NaN, as PyTorch
  }
  return r;
}

void check_weights(const std::vector<float>& weights, const char* op, const char* what) {
  for (size_t i = 0; i < weights.size(); ++i)
    MAAS_CHECK(std::isfinite(weights[i]) && weights[i] >= 0.f,
               op << ": " << what << "[" << i << "] = " << weights[i] << " must be finite and >= 0");
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* name_a,
                      const char* name_b) {
  check_defined(a, op, name_a);
  check_defined(b, op, name_b);
  MAAS_CHECK(a.shape() == b.shape(), op << ": " << name_a << " " << to_string(a.shape()) << " and " << name_b
                                        << " " << to_string(b.shape()) << " must have the same shape");
}

}  // namespace detail

Tensor MSELoss::operator()(const Tensor& pred, const Tensor& target) const {
  return mse_loss(pred, target, reduction_);
}

CrossEntropyLoss::CrossEntropyLoss(CrossEntropyOptions options) : options_(std::move(options)) {
  MAAS_CHECK(options_.label_smoothing >= 0.f && options_.label_smoothing <= 1.f,
             "CrossEntropyLoss: label_smoothing " << options_.label_smoothing << " is outside [0, 1]");
  detail::check_weights(options_.class_weights, "CrossEntropyLoss", "class_weights");
}

Tensor CrossEntropyLoss::operator()(const Tensor& pred, const Tensor& target) const {
  // Targets shaped like the logits are probabilities; anything else is labels.
  if (pred.defined() && target.defined() && pred.dim() == 2 && target.shape() == pred.shape())
    return cross_entropy_with_probs(pred, target, options_);
  return cross_entropy(pred, target, options_);
}

BinaryCrossEntropyWithLogitsLoss::BinaryCrossEntropyWithLogitsLoss(BCEOptions options)
    : options_(std::move(options)) {
  detail::check_weights(options_.pos_weight, "BinaryCrossEntropyWithLogitsLoss", "pos_weight");
}

Tensor BinaryCrossEntropyWithLogitsLoss::operator()(const Tensor& pred, const Tensor& target) const {
  return binary_cross_entropy_with_logits(pred, target, options_);
}

Tensor HingeLoss::operator()(const Tensor& pred, const Tensor& target) const {
  return hinge_loss(pred, target, reduction_);
}

}  // namespace maas
