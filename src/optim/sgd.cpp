// SGD: torch.optim.SGD's single-tensor update, element by element in float.
#include "maas/optim/sgd.hpp"

#include <cmath>

#include "core/internal.hpp"
#include "flags.hpp"
#include "maas/error.hpp"

namespace maas::optim {

namespace {

struct SGDCoefficients {
  float neg_lr;
  float weight_decay;
  float momentum;
  float undamped;  // 1 - dampening
};

// kFirst: the parameter's first update, where the buffer starts as the gradient.
template <bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void sgd_update(int64_t n, float* p, const float* g, float* buf, const SGDCoefficients c) {
#pragma omp parallel for if (n > maas::detail::kParallelGrain)
  for (int64_t j = 0; j < n; ++j) {
    float d = g[j];
    if constexpr (kDecay) d = d + c.weight_decay * p[j];
    if constexpr (kMomentum) {
      if constexpr (kFirst)
        buf[j] = d;
      else
        buf[j] = buf[j] * c.momentum + c.undamped * d;
      if constexpr (kNesterov)
        d = d + c.momentum * buf[j];
      else
        d = buf[j];
    }
    p[j] = p[j] + c.neg_lr * d;
  }
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : Optimizer(std::move(params), options.lr, "SGD"), options_(options) {
  const SGDOptions& o = options;
  MAAS_CHECK(std::isfinite(o.momentum) && o.momentum >= 0.f, "SGD: momentum must be >= 0, got " << o.momentum);
  MAAS_CHECK(std::isfinite(o.dampening), "SGD: dampening must be finite, got " << o.dampening);
  MAAS_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.f,
             "SGD: weight_decay must be >= 0, got " << o.weight_decay);
  MAAS_CHECK(!o.nesterov || (o.momentum > 0.f && o.dampening == 0.f),
             "SGD: nesterov requires momentum > 0 and dampening == 0, got momentum " << o.momentum << " and dampening "
                                                                                     << o.dampening);
  if (o.momentum != 0.f) declare_buffer("momentum_buffer");
}

SGDOptions SGD::options() const {
  SGDOptions o = options_;
  o.lr = lr();
  return o;
}

void SGD::step() {
  SGDCoefficients c;
  c.neg_lr = -lr();
  c.weight_decay = options_.weight_decay;
  c.momentum = options_.momentum;
  // PyTorch forms 1 - dampening in double and rounds it once to float.
  c.undamped = static_cast<float>(1.0 - static_cast<double>(options_.dampening));
  const bool use_momentum = options_.momentum != 0.f;
  for (size_t i = 0; i < params().size(); ++i) {
    Tensor p = params()[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const bool first = use_momentum && init_buffers(i);
    float* buf = use_momentum ? buffers(i)[0].data() : nullptr;
    float* pd = p.data();
    const float* gd = g.data();
    const int64_t n = p.numel();
    using detail::with_flag;
    with_flag(c.weight_decay != 0.f, [&](auto kDecay) {
      with_flag(use_momentum, [&](auto kMomentum) {
        with_flag(first, [&](auto kFirst) {
          with_flag(options_.nesterov, [&](auto kNesterov) {
            sgd_update<decltype(kDecay)::value, decltype(kMomentum)::value, decltype(kFirst)::value,
                       decltype(kNesterov)::value>(n, pd, gd, buf, c);
          });
        });
      });
    });
  }
  count_step();
}

}  // namespace maas::optim
