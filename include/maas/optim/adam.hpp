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
#pragma once

#include "maas/optim/optimizer.hpp"

namespace maas::optim {

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
  void step() override;
  std::string name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  // The options, with lr the current learning rate.
  AdamOptions options() const;

 protected:
  // For AdamW: decoupled weight decay.
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled);

 private:
  AdamOptions options_;
  bool decoupled_;
};

class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
  // The options, with lr the current learning rate.
  AdamWOptions options() const;
};

}  // namespace maas::optim
