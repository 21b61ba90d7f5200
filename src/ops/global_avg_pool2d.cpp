// global_avg_pool2d: the mean of each channel's H x W plane, forward and
// backward. x [N, C, H, W] -> out [N, C]; out[n, c] = sum(x[n, c]) / (H*W),
// and the gradient spreads dout[n, c] / (H*W) evenly over the plane.
//
// Each of the N*C planes is summed on its own (in double, so a large plane
// loses nothing to float rounding), split across OpenMP threads; a thread
// writes only its own planes, forward and backward.
//
// What this file is not: no keepdims (the layer reshapes if it wants
// [N, C, 1, 1]), no global max.
#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

Tensor global_avg_pool2d(const Tensor& x) {
  detail::check_defined(x, "global_avg_pool2d", "input");
  MAAS_CHECK(x.dim() == 4, "global_avg_pool2d: input " << to_string(x.shape()) << " must be 4-D [N,C,H,W]");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  MAAS_CHECK(H > 0 && W > 0, "global_avg_pool2d: input " << to_string(x.shape()) << " has an empty H x W plane");
  const int64_t planes = N * C, plane = H * W;
  const double scale = 1.0 / static_cast<double>(plane);
  Tensor out = Tensor::empty({N, C});
  const float* p = x.data();
  float* q = out.data();
#pragma omp parallel for if (x.numel() > detail::kParallelGrain) schedule(static)
  for (int64_t i = 0; i < planes; ++i) {
    const float* src = p + i * plane;
    double acc = 0.0;
    for (int64_t k = 0; k < plane; ++k) acc += src[k];
    q[i] = static_cast<float>(acc * scale);
  }
  const float dscale = static_cast<float>(scale);
  autograd::record("global_avg_pool2d", out, {x}, [planes, plane, dscale](const Tensor& dout, std::vector<Tensor>& dx) {
    const float* g = dout.data();
    float* d = dx[0].data();
#pragma omp parallel for if (planes * plane > detail::kParallelGrain) schedule(static)
    for (int64_t i = 0; i < planes; ++i) {
      const float gi = g[i] * dscale;
      float* dst = d + i * plane;
      for (int64_t k = 0; k < plane; ++k) dst[k] += gi;
    }
  });
  return out;
}

}  // namespace maas
