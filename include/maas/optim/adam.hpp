// maas/optim/adam.hpp: Adam and AdamW, as torch.optim.Adam and torch.optim.AdamW.
//
// For each parameter p with gradient g, at its own step t (t counts the
// updates of this parameter, so a parameter skipped for lack of a gradient
// lags, as in PyTorch), in float with the bias corrections in double:
//   Adam:  g = g + weight_decay * p             (L2 penalty in the gradient)
//   AdamW: p = p * (1 - lr * weight_decay)      (decoupled weight decay)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   v_max = max(v_max, v)                       (amsgrad; v_max replaces v below)
//   step_size = lr / (1 - beta1^t)
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p - step_size * m / denom
// State: "<i>/exp_avg", "<i>/exp_avg_sq", "<i>/max_exp_avg_sq" (amsgrad), and
// "<i>/step", a 0-d tensor holding t (exact up to 2^24 steps, as PyTorch's).
//
// AdamW's weight_decay defaults to 1e-2, Adam's to 0, as in PyTorch: hence the
// two options structs.
//
// Parameter groups give each parameter its own weight_decay (PyTorch's
// param_groups with only that key). Transformer recipes decay the matrices
// and embeddings, not the biases and normalisation gains (nanoGPT's
// configure_optimizers):
//   maas::optim::AdamWOptions o;
//   o.lr = 1e-3f;
//   o.beta2 = 0.99f;
//   maas::optim::AdamW opt(maas::optim::decay_groups(model.parameters(), 0.1f), o);
// The optimizer's params() are then the groups' parameters, group after
// group, and state() numbers them in that order.
#pragma once

#include <vector>

#include "maas/optim/optimizer.hpp"

namespace maas::optim {

// Parameters that share a weight decay. The groups' weight_decay replaces the
// options' one.
struct ParamGroup {
  std::vector<Tensor> params;
  float weight_decay = 0.f;
};

// Two groups, as nanoGPT's configure_optimizers: the parameters with dim() >= 2
// get weight_decay, the others 0 (each keeps its order in `params`; either
// group may be empty).
std::vector<ParamGroup> decay_groups(const std::vector<Tensor>& params, float weight_decay);

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
  bool amsgrad = false;
};

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 1e-2f;
  bool amsgrad = false;
};

class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  // requires: each group's weight_decay >= 0 and finite; the parameters of
  // all groups together as the other constructor requires them.
  explicit Adam(std::vector<ParamGroup> groups, const AdamOptions& options = {});
  void step() override;
  std::string name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  // The options, with lr the current learning rate (weight_decay as given,
  // even where groups replace it).
  AdamOptions options() const;
  // The weight decay params()[i] gets.
  float weight_decay(size_t i) const { return weight_decay_[i]; }

 protected:
  // For AdamW: decoupled weight decay.
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options, bool decoupled);

 private:
  AdamOptions options_;
  bool decoupled_;
  std::vector<float> weight_decay_;  // per parameter
};

class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
  // requires: as Adam's constructor from groups.
  explicit AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = {});
  // The options, with lr the current learning rate.
  AdamWOptions options() const;
};

}  // namespace maas::optim
