// pad2d: pads the two spatial dimensions of [N,C,H,W] with a constant.
#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

Tensor pad2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right, float value) {
  detail::check_defined(x, "pad2d", "input");
  MAAS_CHECK(x.dim() == 4, "pad2d: input " << to_string(x.shape()) << " must be 4-D [N,C,H,W]");
  MAAS_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0,
             "pad2d: padding must be non-negative, got top " << top << " bottom " << bottom << " left " << left
                                                             << " right " << right);
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ho = h + top + bottom, wo = w + left + right;
  Tensor out = Tensor::full({x.size(0), x.size(1), ho, wo}, value);
  const float* src = x.data();
  float* dst = out.data();
#pragma omp parallel for if (out.numel() > detail::kParallelGrain) schedule(static)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < h; ++i) {
      const float* s = src + (p * h + i) * w;
      float* d = dst + (p * ho + i + top) * wo + left;
      for (int64_t j = 0; j < w; ++j) d[j] = s[j];
    }
  autograd::record("pad2d", out, {x}, [planes, h, w, ho, wo, top, left](const Tensor& dout, std::vector<Tensor>& dx) {
    const float* g = dout.data();
    float* d = dx[0].data();
#pragma omp parallel for if (dx[0].numel() > detail::kParallelGrain) schedule(static)
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t i = 0; i < h; ++i) {
        const float* s = g + (p * ho + i + top) * wo + left;
        float* t = d + (p * h + i) * w;
        for (int64_t j = 0; j < w; ++j) t[j] += s[j];
      }
  });
  return out;
}

}  // namespace maas
