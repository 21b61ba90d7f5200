// layer_norm: normalisation over the last axis, fused.
//
// For each row x of the last axis (C values):
//   mean = sum(x) / C,  rstd = 1 / sqrt(sum((x - mean)^2) / C + eps)
//   xhat = (x - mean) * rstd,  y = xhat * gamma + beta
// in one pass over the row for the statistics (summed in double) and one
// for the output. mean and rstd are kept per row for the backward:
//   dxhat = dy * gamma
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//   dgamma = sum over rows of dy * xhat,  dbeta = sum over rows of dy
// Rows are spread over OpenMP threads in fixed blocks; dgamma and dbeta are
// summed per block, then the blocks in order, so that results do not depend
// on the number of threads.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {

constexpr int64_t kRowsPerBlock = 64;

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  detail::check_defined(x, "layer_norm", "input");
  MAAS_CHECK(x.dim() >= 1, "layer_norm: input must have at least one dimension, got a scalar");
  const int64_t c = x.size(-1);
  MAAS_CHECK(c > 0, "layer_norm: input " << to_string(x.shape()) << " has an empty last axis");
  for (const Tensor* t : {&gamma, &beta})
    if (t->defined())
      MAAS_CHECK(t->dim() == 1 && t->size(0) == c, "layer_norm: " << (t == &gamma ? "gamma" : "beta") << " "
                                                                 << to_string(t->shape()) << " does not match input "
                                                                 << to_string(x.shape()) << ": expected [" << c
                                                                 << "]");
  MAAS_CHECK(eps >= 0.f && std::isfinite(eps), "layer_norm: eps must be finite and >= 0, got " << eps);
  const int64_t rows = x.numel() / c;
  Tensor out = Tensor::empty(x.shape());
  Tensor stats = Tensor::empty({rows, 2});  // mean, rstd
  const float* px = x.data();
  const float* pg = gamma.defined() ? gamma.data() : nullptr;
  const float* pb = beta.defined() ? beta.data() : nullptr;
  float* py = out.data();
  float* ps = stats.data();
#pragma omp parallel for if (x.numel() > detail::kParallelGrain) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * c;
    double s = 0.0;
    for (int64_t i = 0; i < c; ++i) s += xr[i];
    const double mean = s / c;
    double ss = 0.0;
    for (int64_t i = 0; i < c; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
    const float m = static_cast<float>(mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(ss / c + eps));
    ps[2 * r] = m;
    ps[2 * r + 1] = rstd;
    float* yr = py + r * c;
    for (int64_t i = 0; i < c; ++i) {
      const float xh = (xr[i] - m) * rstd;
      yr[i] = (pg ? xh * pg[i] : xh) + (pb ? pb[i] : 0.f);
    }
  }
  autograd::record("layer_norm", out, {x, gamma, beta},
                   [xs = x.detach(), gs = gamma.defined() ? gamma.detach() : Tensor(), stats, rows, c](
                       const Tensor& dout, std::vector<Tensor>& d) {
                     const float* px = xs.data();
                     const float* pg = gs.defined() ? gs.data() : nullptr;
                     const float* ps = stats.data();
                     const float* pdy = dout.data();
                     float* pdx = d[0].defined() ? d[0].data() : nullptr;
                     const bool want_params = d[1].defined() || d[2].defined();
                     const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
                     // Per block: dgamma [c], dbeta [c].
                     std::vector<float> partial(want_params ? static_cast<size_t>(blocks * 2 * c) : 0, 0.f);
#pragma omp parallel for if (rows * c > detail::kParallelGrain) schedule(static)
                     for (int64_t blk = 0; blk < blocks; ++blk) {
                       float* dg = want_params ? partial.data() + blk * 2 * c : nullptr;
                       float* db = want_params ? dg + c : nullptr;
                       const int64_t r1 = std::min(rows, (blk + 1) * kRowsPerBlock);
                       for (int64_t r = blk * kRowsPerBlock; r < r1; ++r) {
                         const float* xr = px + r * c;
                         const float* dyr = pdy + r * c;
                         const float m = ps[2 * r], rstd = ps[2 * r + 1];
                         if (want_params)
                           for (int64_t i = 0; i < c; ++i) {
                             dg[i] += dyr[i] * (xr[i] - m) * rstd;
                             db[i] += dyr[i];
                           }
                         if (!pdx) continue;
                         float sum_dxh = 0.f, sum_dxh_xh = 0.f;
                         for (int64_t i = 0; i < c; ++i) {
                           const float dxh = pg ? dyr[i] * pg[i] : dyr[i];
                           sum_dxh += dxh;
                           sum_dxh_xh += dxh * (xr[i] - m) * rstd;
                         }
                         const float mean_dxh = sum_dxh / c, mean_dxh_xh = sum_dxh_xh / c;
                         float* dxr = pdx + r * c;
                         for (int64_t i = 0; i < c; ++i) {
                           const float dxh = pg ? dyr[i] * pg[i] : dyr[i];
                           dxr[i] += rstd * (dxh - mean_dxh - (xr[i] - m) * rstd * mean_dxh_xh);
                         }
                       }
                     }
                     if (!want_params) return;
                     for (int64_t blk = 0; blk < blocks; ++blk) {
                       const float* dg = partial.data() + blk * 2 * c;
                       if (d[1].defined())
                         for (int64_t i = 0; i < c; ++i) d[1].data()[i] += dg[i];
                       if (d[2].defined())
                         for (int64_t i = 0; i < c; ++i) d[2].data()[i] += dg[c + i];
                     }
                   });
  return out;
}

}  // namespace maas
