// dropout: inverted dropout, forward and backward.
//
// In training each element is zeroed when gen.uniform() < p and otherwise
// scaled by 1/(1-p), so the expected value of every element is unchanged and
// evaluation needs no rescaling. The mask (0 or 1/(1-p) per element) is drawn
// sequentially on the calling thread, exactly numel() draws from `gen` in
// element order, so the same seed gives the same mask whatever the thread
// count; it is kept for backward: dx += dout * mask.
//
// Contract:
//   requires 0 <= p < 1, checked in training and evaluation alike. p == 1 is
//            an error (PyTorch returns zeros): it would drop everything and
//            the scale 1/(1-p) is infinite, so it is almost surely a bug.
//   ensures  when training is false or p == 0, the result IS x (the same
//            handle, no copy, no graph node, no draws from gen): gradients
//            reach x directly.
#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  detail::check_defined(x, "dropout", "input");
  MAAS_CHECK(p >= 0.f && p < 1.f, "dropout: probability p = " << p << " must be in [0, 1) (input shape "
                                  << to_string(x.shape()) << ")");
  if (!training || p == 0.f) return x;

  const int64_t n = x.numel();
  const float scale = 1.f / (1.f - p);
  Tensor mask = Tensor::empty(x.shape());
  float* m = mask.data();
  for (int64_t i = 0; i < n; ++i) m[i] = gen.uniform() < p ? 0.f : scale;  // sequential: reproducible

  Tensor out = Tensor::empty(x.shape());
  const float* px = x.data();
  float* py = out.data();
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) py[i] = px[i] * m[i];

  autograd::record("dropout", out, {x}, [mask](const Tensor& dout, std::vector<Tensor>& dx) {
    const float* g = dout.data();
    const float* m = mask.data();
    float* d = dx[0].data();
    const int64_t n = mask.numel();
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i) d[i] += g[i] * m[i];
  });
  return out;
}

}  // namespace maas
