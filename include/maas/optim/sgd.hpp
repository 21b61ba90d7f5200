// maas/optim/sgd.hpp: stochastic gradient descent with momentum, as torch.optim.SGD.
//
// For each parameter p with gradient g, in float:
//   g = g + weight_decay * p                          (when weight_decay != 0)
//   b = g on p's first update, else b = momentum * b + (1 - dampening) * g
//   g = nesterov ? g + momentum * b : b               (when momentum != 0)
//   p = p - lr * g
// State: "<i>/momentum_buffer" when momentum != 0.
#pragma once

#include "maas/optim/optimizer.hpp"

namespace maas::optim {

struct SGDOptions {
  float lr = 0.01f;
  float momentum = 0.f;
  float dampening = 0.f;
  float weight_decay = 0.f;
  bool nesterov = false;  // requires momentum > 0 and dampening == 0
};

class SGD : public Optimizer {
 public:
  explicit SGD(std::vector<Tensor> params, const SGDOptions& options = {});
  void step() override;
  std::string name() const override { return "SGD"; }
  // The options, with lr the current learning rate.
  SGDOptions options() const;

 private:
  SGDOptions options_;
};

}  // namespace maas::optim
