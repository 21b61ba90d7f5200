// hinge_loss: Keras' hinge, max(0, 1 - y * pred), forward and backward.
#include <cmath>
#include <iomanip>

#include "loss/reduction.hpp"
#include "maas/autograd.hpp"
#include "maas/loss.hpp"

namespace maas {

// l_i = max(0, 1 - y_i p_i);  dp_i += -y_i g_i where 1 - y_i p_i >= 0, else 0
// (at the kink the gradient goes to the first argument, as TensorFlow's maximum).
Tensor hinge_loss(const Tensor& pred, const Tensor& targets, Reduction reduction) {
  const char* name = "hinge_loss";
  detail::check_same_shape(pred, targets, name, "pred", "targets");
  const int64_t n = pred.numel();
  const detail::Reducer reducer = detail::make_reducer(reduction, n, static_cast<double>(n), name, pred.shape());

  // Keras maps targets that are all 0 or 1 to -1 and 1; otherwise they must be -1 or 1.
  const float* pt = targets.data();
  bool binary = true;
  for (int64_t i = 0; i < n && binary; ++i) binary = pt[i] == 0.f || pt[i] == 1.f;
  Tensor y = Tensor::empty(targets.shape());
  float* py = y.data();
  for (int64_t i = 0; i < n; ++i) {
    if (binary) {
      py[i] = 2.f * pt[i] - 1.f;
    } else {
      MAAS_CHECK(pt[i] == -1.f || pt[i] == 1.f,
                 name << ": target " << std::setprecision(9) << pt[i] << " at index " << i
                      << " is not -1 or 1 (targets that are all 0 or 1 are mapped to -1 and 1)");
      py[i] = pt[i];
    }
  }

  Tensor per = Tensor::empty(pred.shape());
  const float* pp = pred.data();
  float* pl = per.data();
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float margin = 1.f - py[i] * pp[i];
    pl[i] = margin < 0.f ? 0.f : margin;  // NaN stays NaN
  }
  Tensor out = reducer.output(per);
  autograd::record(name, out, {pred}, [ps = pred.detach(), y, reducer](const Tensor& dout, std::vector<Tensor>& d) {
    const float* pp = ps.data();
    const float* py = y.data();
    const float* g = dout.data();
    float* dp = d[0].data();
    const int64_t n = ps.numel();
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i)
      if (1.f - py[i] * pp[i] >= 0.f) dp[i] -= py[i] * reducer.grad(g, i);
  });
  return out;
}

}  // namespace maas
