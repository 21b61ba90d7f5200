// RMSprop: torch.optim.RMSprop's single-tensor update, element by element in float.
#include "maas/optim/rmsprop.hpp"

#include <cmath>

#include "core/internal.hpp"
#include "flags.hpp"
#include "maas/error.hpp"

namespace maas::optim {

namespace {

struct RMSpropCoefficients {
  float neg_lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
};

struct RMSpropBuffers {
  float* square_avg;
  float* momentum_buffer;  // momentum > 0 only
  float* grad_avg;         // centered only
};

template <bool kDecay, bool kCentered, bool kMomentum>
void rmsprop_update(int64_t n, float* p, const float* g, const RMSpropBuffers b, const RMSpropCoefficients c) {
  float* sq = b.square_avg;
  float* buf = b.momentum_buffer;
  float* gavg = b.grad_avg;
#pragma omp parallel for if (n > maas::detail::kParallelGrain)
  for (int64_t j = 0; j < n; ++j) {
    float gj = g[j];
    if constexpr (kDecay) gj = gj + c.weight_decay * p[j];
    sq[j] = sq[j] * c.alpha + c.one_minus_alpha * gj * gj;
    float avg;
    if constexpr (kCentered) {
      gavg[j] = gavg[j] * c.alpha + c.one_minus_alpha * gj;
      avg = std::sqrt(sq[j] - gavg[j] * gavg[j]);
    } else {
      avg = std::sqrt(sq[j]);
    }
    avg = avg + c.eps;
    if constexpr (kMomentum) {
      buf[j] = buf[j] * c.momentum + gj / avg;
      p[j] = p[j] + c.neg_lr * buf[j];
    } else {
      p[j] = p[j] + c.neg_lr * gj / avg;
    }
  }
}

}  // namespace

RMSprop::RMSprop(std::vector<Tensor> params, const RMSpropOptions& options)
    : Optimizer(std::move(params), options.lr, "RMSprop"), options_(options) {
  const RMSpropOptions& o = options;
  MAAS_CHECK(o.alpha >= 0.f && o.alpha <= 1.f, "RMSprop: alpha must be in [0, 1], got " << o.alpha);
  MAAS_CHECK(std::isfinite(o.eps) && o.eps >= 0.f, "RMSprop: eps must be >= 0, got " << o.eps);
  MAAS_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.f,
             "RMSprop: weight_decay must be >= 0, got " << o.weight_decay);
  MAAS_CHECK(std::isfinite(o.momentum) && o.momentum >= 0.f, "RMSprop: momentum must be >= 0, got " << o.momentum);
  declare_buffer("square_avg");
  if (o.momentum > 0.f) declare_buffer("momentum_buffer");
  if (o.centered) declare_buffer("grad_avg");
}

RMSpropOptions RMSprop::options() const {
  RMSpropOptions o = options_;
  o.lr = lr();
  return o;
}

void RMSprop::step() {
  const RMSpropOptions& o = options_;
  RMSpropCoefficients c;
  c.neg_lr = -lr();
  c.alpha = o.alpha;
  // PyTorch forms 1 - alpha in double and rounds it once to float.
  c.one_minus_alpha = static_cast<float>(1.0 - static_cast<double>(o.alpha));
  c.eps = o.eps;
  c.weight_decay = o.weight_decay;
  c.momentum = o.momentum;
  const bool use_momentum = o.momentum > 0.f;
  for (size_t i = 0; i < params().size(); ++i) {
    Tensor p = params()[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    init_buffers(i);
    std::vector<Tensor>& bufs = buffers(i);
    RMSpropBuffers b;
    b.square_avg = bufs[0].data();
    b.momentum_buffer = use_momentum ? bufs[1].data() : nullptr;
    b.grad_avg = o.centered ? bufs.back().data() : nullptr;
    float* pd = p.data();
    const float* gd = g.data();
    const int64_t n = p.numel();
    using detail::with_flag;
    with_flag(o.weight_decay != 0.f, [&](auto kDecay) {
      with_flag(o.centered, [&](auto kCentered) {
        with_flag(use_momentum, [&](auto kMomentum) {
          rmsprop_update<decltype(kDecay)::value, decltype(kCentered)::value, decltype(kMomentum)::value>(n, pd, gd, b,
                                                                                                          c);
        });
      });
    });
  }
  count_step();
}

}  // namespace maas::optim
