// maas/optim/clip.hpp: gradient clipping, as torch.nn.utils.clip_grad_norm_.
//
// Example (between backward() and the optimizer's step()):
//   float norm = maas::optim::clip_grad_norm(model.parameters(), 1.0f);
#pragma once

#include <vector>

#include "maas/tensor.hpp"

namespace maas::optim {

// Treats the gradients of `params` (those that are defined; the others are
// ignored) as one vector g and, when its norm exceeds max_norm, scales every
// gradient in place by max_norm / (norm + 1e-6). Returns the norm before
// clipping (0 when no parameter has a gradient).
// norm_type: any p > 0, or INFINITY for the largest |g|.
// requires: max_norm >= 0; norm_type > 0.
// ensures: a non-finite norm (a NaN or inf gradient) is returned and makes the
// gradients non-finite, as PyTorch does (error_if_nonfinite=False): check the
// result before stepping when that can happen.
float clip_grad_norm(const std::vector<Tensor>& params, float max_norm, float norm_type = 2.f);

}  // namespace maas::optim
