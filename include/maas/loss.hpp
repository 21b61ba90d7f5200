// maas/loss.hpp: loss functions, and loss objects for the trainer.
//
// Example:
//   maas::Tensor logits = maas::matmul(features, weight);            // [N, C] = [3, 4]
//   maas::Tensor labels = maas::Tensor::from_vector({2, 0, 3}, {3}); // class indices, as float
//   maas::Tensor loss = maas::cross_entropy(logits, labels);         // 0-d, the mean over rows
//   loss.backward();                                                 // fills weight.grad()
//
//   maas::CrossEntropyOptions options;
//   options.label_smoothing = 0.1f;
//   maas::CrossEntropyLoss criterion(options);                       // what a trainer holds
//   maas::Tensor smoothed = criterion(logits, labels);
//
// Each loss is ONE op with its own forward and backward (src/loss/<loss>.cpp),
// computed stably: cross_entropy never takes log(0), and logits of +-1e4 give
// finite losses and exact limit gradients. Reductions:
//   Mean  the average over elements (cross_entropy with class weights: the
//         weighted average sum(w[y_i] l_i) / sum(w[y_i]), as PyTorch);
//   Sum   the sum;
//   None  one loss per element: [N] for cross_entropy, the input's shape for
//         mse_loss, binary_cross_entropy_with_logits and hinge_loss.
// Mean over an empty input throws. Class labels are a Tensor [N] of whole
// numbers in [0, C) stored as float (maas tensors are fp32 only); anything else
// throws naming the bad index.
//
// Bad shapes or arguments throw maas::Error naming the loss and the shapes.
#pragma once

#include <string>
#include <vector>

#include "maas/tensor.hpp"

namespace maas {

enum class Reduction { Mean, Sum, None };

// "mean", "sum", "none".
std::string to_string(Reduction reduction);

// Mean squared error (pred - target)^2; pred and target have the same shape.
// Differentiable in both.
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::Mean);

struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;
  // One weight per class, multiplying that class's term; empty means all 1.
  std::vector<float> class_weights;
  // In [0, 1]: the target becomes (1 - s) * target + s / C, as PyTorch.
  float label_smoothing = 0.f;
  // cross_entropy: rows whose label is this value count for nothing (no
  // loss, no gradient, not in the Mean's denominator), as PyTorch's.
  int64_t ignore_index = -100;
};

// logits [N,C], labels [N] (whole numbers in [0, C)); or logits [N,...,C] and
// labels [N,...], the classes on the last axis (a sequence's [B,T,V] and
// [B,T]), where None returns the labels' shape. Log-softmax and negative
// log-likelihood fused: per row l_i = -sum_c t_ic log softmax(x_i)_c with
// t_ic = w_c ((1 - s) [c == y_i] + s / C), and dlogits = (softmax * sum_c t_ic - t_i) * dout.
// Mean divides by sum_i w[y_i] over the rows not ignored (their count without
// weights); if that is 0 the result is NaN, as in PyTorch. Differentiable in logits only.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyOptions& options = {});

// logits [N,C] (or [N,...,C]), target_probs shaped alike: probabilities or one-hot rows (not checked
// to sum to 1). l_i = -sum_c w_c q_ic log softmax(x_i)_c with
// q = (1 - s) target + s / C, as PyTorch's probability-target mode; Mean
// divides by N. Differentiable in logits and target_probs.
Tensor cross_entropy_with_probs(const Tensor& logits, const Tensor& target_probs,
                                const CrossEntropyOptions& options = {});

struct BCEOptions {
  Reduction reduction = Reduction::Mean;
  // Weight of the positive term, one per entry of the last dimension (or a
  // single value for all); empty means 1.
  std::vector<float> pos_weight;
};

// Binary cross-entropy on logits (PyTorch's BCEWithLogitsLoss), element-wise:
//   l = (1 - y) x + (1 + (p - 1) y) log(1 + exp(-x)),  p the pos_weight,
// which for p = 1 is max(x,0) - x y + log(1 + exp(-|x|)), computed without
// overflow. logits and targets (in [0,1], soft targets allowed) have the same
// shape. Differentiable in both.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        const BCEOptions& options = {});

// Keras' hinge loss, element-wise max(0, 1 - y * pred). targets are -1 or 1;
// if every target is 0 or 1 they are mapped to -1 and 1 first, as Keras does.
// Any other target throws. At the kink (y * pred == 1) the gradient is -y, as
// TensorFlow's maximum. Differentiable in pred.
Tensor hinge_loss(const Tensor& pred, const Tensor& targets, Reduction reduction = Reduction::Mean);

// ---- Loss objects ----------------------------------------------------------
// What a trainer holds (like Keras' loss= or torch.nn.*Loss): called with
// (prediction, target), returns the loss. Each is a thin wrapper over the
// function above; the options are validated in the constructor.
class Loss {
 public:
  virtual ~Loss() = default;
  virtual Tensor operator()(const Tensor& pred, const Tensor& target) const = 0;
  // The function's name: "mse_loss", "cross_entropy", ...
  virtual std::string name() const = 0;
};

class MSELoss final : public Loss {
 public:
  explicit MSELoss(Reduction reduction = Reduction::Mean) : reduction_(reduction) {}
  Tensor operator()(const Tensor& pred, const Tensor& target) const override;
  std::string name() const override { return "mse_loss"; }

 private:
  Reduction reduction_;
};

// target: labels [N] (cross_entropy), or probabilities shaped like the logits
// [N,C] (cross_entropy_with_probs), as torch.nn.CrossEntropyLoss.
class CrossEntropyLoss final : public Loss {
 public:
  explicit CrossEntropyLoss(CrossEntropyOptions options = {});
  Tensor operator()(const Tensor& pred, const Tensor& target) const override;
  std::string name() const override { return "cross_entropy"; }
  const CrossEntropyOptions& options() const { return options_; }

 private:
  CrossEntropyOptions options_;
};

class BinaryCrossEntropyWithLogitsLoss final : public Loss {
 public:
  explicit BinaryCrossEntropyWithLogitsLoss(BCEOptions options = {});
  Tensor operator()(const Tensor& pred, const Tensor& target) const override;
  std::string name() const override { return "binary_cross_entropy_with_logits"; }
  const BCEOptions& options() const { return options_; }

 private:
  BCEOptions options_;
};

class HingeLoss final : public Loss {
 public:
  explicit HingeLoss(Reduction reduction = Reduction::Mean) : reduction_(reduction) {}
  Tensor operator()(const Tensor& pred, const Tensor& target) const override;
  std::string name() const override { return "hinge_loss"; }

 private:
  Reduction reduction_;
};

}  // namespace maas
