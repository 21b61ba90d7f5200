// clip_grad_norm: one global norm over every gradient, accumulated in double.
#include "maas/optim/clip.hpp"

#include <algorithm>
#include <cmath>

#include "core/internal.hpp"
#include "maas/error.hpp"

namespace maas::optim {

float clip_grad_norm(const std::vector<Tensor>& params, float max_norm, float norm_type) {
  MAAS_CHECK(max_norm >= 0.f, "clip_grad_norm: max_norm must be >= 0, got " << max_norm);
  MAAS_CHECK(norm_type > 0.f,
             "clip_grad_norm: norm_type must be > 0 (2 for the Euclidean norm, INFINITY for the "
             "largest magnitude), got "
                 << norm_type);
  const bool inf_norm = std::isinf(norm_type);
  const double p = norm_type;
  double acc = 0.0;  // sum of |g|^p, or max |g|
  bool has_nan = false;
  bool any = false;
  for (size_t i = 0; i < params.size(); ++i) {
    MAAS_CHECK(params[i].defined(), "clip_grad_norm: parameter " << i << " is an undefined tensor");
    const Tensor g = params[i].grad();
    if (!g.defined()) continue;
    any = true;
    const float* gd = g.data();
    const int64_t n = g.numel();
    if (inf_norm) {
      float m = 0.f;
      bool nan = false;
#pragma omp parallel for if (n > maas::detail::kParallelGrain) reduction(max : m) reduction(|| : nan)
      for (int64_t j = 0; j < n; ++j) {
        const float a = std::fabs(gd[j]);
        if (a != a) nan = true;
        m = std::max(m, a);
      }
      acc = std::max(acc, static_cast<double>(m));
      has_nan = has_nan || nan;
    } else if (p == 2.0) {
      double s = 0.0;
#pragma omp parallel for if (n > maas::detail::kParallelGrain) reduction(+ : s)
      for (int64_t j = 0; j < n; ++j) s += static_cast<double>(gd[j]) * gd[j];
      acc += s;
    } else {
      double s = 0.0;
#pragma omp parallel for if (n > maas::detail::kParallelGrain) reduction(+ : s)
      for (int64_t j = 0; j < n; ++j) s += std::pow(std::fabs(static_cast<double>(gd[j])), p);
      acc += s;
    }
  }
  if (!any) return 0.f;
  double norm_d;
  if (inf_norm) {
    norm_d = has_nan ? std::nan("") : acc;
  } else {
    norm_d = p == 2.0 ? std::sqrt(acc) : p == 1.0 ? acc : std::pow(acc, 1.0 / p);
  }
  const float norm = static_cast<float>(norm_d);
  // As PyTorch: max_norm * (1 / (norm + 1e-6)) in float, clamped to 1.
  const float coef = (1.f / (norm + 1e-6f)) * max_norm;
  if (coef >= 1.f) return norm;  // also false for NaN, which then spreads as in PyTorch
  for (const Tensor& param : params) {
    Tensor g = param.grad();
    if (!g.defined()) continue;
    float* gd = g.data();
    const int64_t n = g.numel();
#pragma omp parallel for if (n > maas::detail::kParallelGrain)
    for (int64_t j = 0; j < n; ++j) gd[j] = gd[j] * coef;
  }
  return norm;
}

}  // namespace maas::optim
