// maas/optim/rmsprop.hpp: RMSprop, as torch.optim.RMSprop.
//
// For each parameter p with gradient g, in float:
//   g = g + weight_decay * p                          (when weight_decay != 0)
//   s = alpha * s + (1 - alpha) * g * g
//   centered: a = alpha * a + (1 - alpha) * g;  avg = sqrt(s - a * a) + eps
//   otherwise:                                  avg = sqrt(s) + eps
//   momentum > 0: b = momentum * b + g / avg;  p = p - lr * b
//   otherwise:                                 p = p - lr * g / avg
// State: "<i>/square_avg", "<i>/momentum_buffer" (momentum > 0), "<i>/grad_avg"
// (centered).
#pragma once

#include "maas/optim/optimizer.hpp"

namespace maas::optim {

struct RMSpropOptions {
  float lr = 1e-2f;
  float alpha = 0.99f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
  float momentum = 0.f;
  bool centered = false;
};

class RMSprop : public Optimizer {
 public:
  explicit RMSprop(std::vector<Tensor> params, const RMSpropOptions& options = {});
  void step() override;
  std::string name() const override { return "RMSprop"; }
  // The options, with lr the current learning rate.
  RMSpropOptions options() const;

 private:
  RMSpropOptions options_;
};

}  // namespace maas::optim
