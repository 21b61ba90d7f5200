// Adam and AdamW: torch.optim's single-tensor (non-foreach) updates, element
// by element in float; bias corrections in double, as PyTorch computes them
// in Python. Each parameter has its own weight decay (its group's).
#include "maas/optim/adam.hpp"

#include <cmath>

#include "core/internal.hpp"
#include "flags.hpp"
#include "maas/error.hpp"

namespace maas::optim {

namespace {

struct AdamCoefficients {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps;
  float weight_decay;  // Adam's L2 term
  float decay;         // AdamW's 1 - lr * weight_decay
  float neg_step_size;
  float bias_correction2_sqrt;
};

struct AdamBuffers {
  float* exp_avg;
  float* exp_avg_sq;
  float* max_exp_avg_sq;  // amsgrad only
};

template <bool kL2, bool kDecoupled, bool kAmsgrad>
void adam_update(int64_t n, float* p, const float* g, const AdamBuffers b, const AdamCoefficients c) {
  float* m = b.exp_avg;
  float* v = b.exp_avg_sq;
  float* vmax = b.max_exp_avg_sq;
#pragma omp parallel for if (n > maas::detail::kParallelGrain)
  for (int64_t j = 0; j < n; ++j) {
    if constexpr (kDecoupled) p[j] = p[j] * c.decay;
    float gj = g[j];
    if constexpr (kL2) gj = gj + c.weight_decay * p[j];
    m[j] = m[j] * c.beta1 + c.one_minus_beta1 * gj;
    v[j] = v[j] * c.beta2 + c.one_minus_beta2 * gj * gj;
    float second = v[j];
    if constexpr (kAmsgrad) {
      // max that keeps a NaN, as torch.maximum
      second = vmax[j] >= second ? vmax[j] : second;
      vmax[j] = second;
    }
    const float denom = std::sqrt(second) / c.bias_correction2_sqrt + c.eps;
    p[j] = p[j] + c.neg_step_size * m[j] / denom;
  }
}

// The groups' parameters, group after group.
std::vector<Tensor> flatten(const std::vector<ParamGroup>& groups) {
  std::vector<Tensor> params;
  for (const ParamGroup& g : groups) params.insert(params.end(), g.params.begin(), g.params.end());
  return params;
}

AdamOptions to_adam(const AdamWOptions& o) {
  AdamOptions a;
  a.lr = o.lr;
  a.beta1 = o.beta1;
  a.beta2 = o.beta2;
  a.eps = o.eps;
  a.weight_decay = o.weight_decay;
  a.amsgrad = o.amsgrad;
  return a;
}

}  // namespace

std::vector<ParamGroup> decay_groups(const std::vector<Tensor>& params, float weight_decay) {
  std::vector<ParamGroup> groups{{{}, weight_decay}, {{}, 0.f}};
  for (const Tensor& p : params) groups[p.defined() && p.dim() >= 2 ? 0 : 1].params.push_back(p);
  return groups;
}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(std::vector<ParamGroup>{{std::move(params), options.weight_decay}}, options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options) : Adam(std::move(groups), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options, bool decoupled)
    : Optimizer(flatten(groups), options.lr, decoupled ? "AdamW" : "Adam"), options_(options), decoupled_(decoupled) {
  const char* who = decoupled ? "AdamW" : "Adam";
  const AdamOptions& o = options;
  MAAS_CHECK(o.beta1 >= 0.f && o.beta1 < 1.f, who << ": beta1 must be in [0, 1), got " << o.beta1);
  MAAS_CHECK(o.beta2 >= 0.f && o.beta2 < 1.f, who << ": beta2 must be in [0, 1), got " << o.beta2);
  MAAS_CHECK(std::isfinite(o.eps) && o.eps >= 0.f, who << ": eps must be >= 0, got " << o.eps);
  MAAS_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0.f,
             who << ": weight_decay must be >= 0, got " << o.weight_decay);
  for (size_t k = 0; k < groups.size(); ++k) {
    const float wd = groups[k].weight_decay;
    MAAS_CHECK(std::isfinite(wd) && wd >= 0.f,
               who << ": parameter group " << k << ": weight_decay must be >= 0, got " << wd);
    weight_decay_.insert(weight_decay_.end(), groups[k].params.size(), wd);
  }
  declare_buffer("exp_avg");
  declare_buffer("exp_avg_sq");
  if (o.amsgrad) declare_buffer("max_exp_avg_sq");
  declare_buffer("step", /*scalar=*/true);
}

AdamOptions Adam::options() const {
  AdamOptions o = options_;
  o.lr = lr();
  return o;
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : Adam(std::vector<ParamGroup>{{std::move(params), options.weight_decay}}, to_adam(options), true) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options)
    : Adam(std::move(groups), to_adam(options), true) {}

AdamWOptions AdamW::options() const {
  const AdamOptions a = Adam::options();
  AdamWOptions o;
  o.lr = a.lr;
  o.beta1 = a.beta1;
  o.beta2 = a.beta2;
  o.eps = a.eps;
  o.weight_decay = a.weight_decay;
  o.amsgrad = a.amsgrad;
  return o;
}

void Adam::step() {
  const AdamOptions& o = options_;
  const double lr_d = lr();
  AdamCoefficients c;
  c.beta1 = o.beta1;
  c.beta2 = o.beta2;
  c.eps = o.eps;
  // Coefficients PyTorch forms in double and rounds once to float.
  c.one_minus_beta1 = static_cast<float>(1.0 - static_cast<double>(o.beta1));
  c.one_minus_beta2 = static_cast<float>(1.0 - static_cast<double>(o.beta2));
  for (size_t i = 0; i < params().size(); ++i) {
    Tensor p = params()[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const float weight_decay = weight_decay_[i];
    c.weight_decay = weight_decay;
    c.decay = static_cast<float>(1.0 - lr_d * static_cast<double>(weight_decay));
    const bool l2 = !decoupled_ && weight_decay != 0.f;
    const bool decoupled = decoupled_ && weight_decay != 0.f;
    init_buffers(i);
    std::vector<Tensor>& bufs = buffers(i);
    AdamBuffers b;
    b.exp_avg = bufs[0].data();
    b.exp_avg_sq = bufs[1].data();
    b.max_exp_avg_sq = o.amsgrad ? bufs[2].data() : nullptr;
    float& step_t = bufs.back().data()[0];
    step_t += 1.f;

    const double t = step_t;
    const double bias_correction1 = 1.0 - std::pow(static_cast<double>(o.beta1), t);
    const double bias_correction2 = 1.0 - std::pow(static_cast<double>(o.beta2), t);
    c.neg_step_size = static_cast<float>(-(lr_d / bias_correction1));
    c.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));

    float* pd = p.data();
    const float* gd = g.data();
    const int64_t n = p.numel();
    using detail::with_flag;
    with_flag(l2, [&](auto kL2) {
      with_flag(decoupled, [&](auto kDecoupled) {
        with_flag(o.amsgrad, [&](auto kAmsgrad) {
          adam_update<decltype(kL2)::value, decltype(kDecoupled)::value, decltype(kAmsgrad)::value>(n, pd, gd, b, c);
        });
      });
    });
  }
  count_step();
}

}  // namespace maas::optim
