// mse_loss: mean squared error, forward and backward.
#include "maas/loss.hpp"
#include "loss/reduction.hpp"
#include "maas/autograd.hpp"

namespace maas {

// l_i = (p_i - t_i)^2;  dp_i += 2 (p_i - t_i) g_i;  dt_i -= 2 (p_i - t_i) g_i.
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
  const char* name = "mse_loss";
  detail::check_same_shape(pred, target, name, "pred", "target");
  const int64_t n = pred.numel();
  const detail::Reducer reducer =
      detail::make_reducer(reduction, n, static_cast<double>(n), name, pred.shape());
  Tensor per = Tensor::empty(pred.shape());
  const float* pp = pred.data();
  const float* pt = target.data();
  float* pl = per.data();
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float diff = pp[i] - pt[i];
    pl[i] = diff * diff;
  }
  Tensor out = reducer.output(per);
  autograd::record(name, out, {pred, target},
                   [ps = pred.detach(), ts = target.detach(), reducer](const Tensor& dout, std::vector<Tensor>& d) {
                     const float* pp = ps.data();
                     const float* pt = ts.data();
                     const float* g = dout.data();
                     const int64_t n = ps.numel();
                     // dpred and dtarget may alias (mse_loss(x, x)): one after the other.
                     for (int k = 0; k < 2; ++k) {
                       if (!d[k].defined()) continue;
                       float* dk = d[k].data();
                       const float sign = k == 0 ? 2.f : -2.f;
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(static)
                       for (int64_t i = 0; i < n; ++i) dk[i] += sign * (pp[i] - pt[i]) * reducer.grad(g, i);
                     }
                   });
  return out;
}

}  // namespace maas
