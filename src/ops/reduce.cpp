// sum and mean, of everything or along one dimension.
#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {


// out = scale * sum(x); in double so long sums stay exact to float precision.
Tensor sum_all(const Tensor& x, float scale, const char* name) {
  detail::check_defined(x, name, "input");
  const float* p = x.data();
  const int64_t n = x.numel();
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += p[i];
  Tensor out = Tensor::scalar(static_cast<float>(acc * scale));
  autograd::record(name, out, {x}, [scale](const Tensor& dout, std::vector<Tensor>& dx) {
    const float g = dout.data()[0] * scale;
    float* d = dx[0].data();
    const int64_t n = dx[0].numel();
    for (int64_t i = 0; i < n; ++i) d[i] += g;
  });
  return out;
}

Tensor sum_dim(const Tensor& x, int64_t dim, bool keepdim, bool average, const char* name) {
  detail::check_defined(x, name, "input");
  const int64_t d = detail::normalize_dim(dim, x.dim(), name, x.shape());
  const detail::Axis ax = detail::split_axis(x.shape(), d);
  MAAS_CHECK(!average || ax.len > 0, name << ": mean over empty dimension " << dim << " of shape "
                                          << to_string(x.shape()));
  const float scale = average ? 1.f / static_cast<float>(ax.len) : 1.f;
  Shape out_shape = x.shape();
  if (keepdim) out_shape[d] = 1;
  else out_shape.erase(out_shape.begin() + d);
  Tensor out = Tensor::zeros(out_shape);
  const float* p = x.data();
  float* q = out.data();
#pragma omp parallel for if (x.numel() > detail::kParallelGrain) schedule(static)
  for (int64_t o = 0; o < ax.outer; ++o) {
    float* row = q + o * ax.inner;
    for (int64_t l = 0; l < ax.len; ++l) {
      const float* src = p + (o * ax.len + l) * ax.inner;
      for (int64_t i = 0; i < ax.inner; ++i) row[i] += src[i];
    }
    for (int64_t i = 0; i < ax.inner; ++i) row[i] *= scale;
  }
  autograd::record(name, out, {x}, [ax, scale](const Tensor& dout, std::vector<Tensor>& dx) {
    const float* g = dout.data();
    float* dp = dx[0].data();
#pragma omp parallel for if (dx[0].numel() > detail::kParallelGrain) schedule(static)
    for (int64_t o = 0; o < ax.outer; ++o)
      for (int64_t l = 0; l < ax.len; ++l) {
        float* dst = dp + (o * ax.len + l) * ax.inner;
        const float* src = g + o * ax.inner;
        for (int64_t i = 0; i < ax.inner; ++i) dst[i] += src[i] * scale;
      }
  });
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) { return sum_all(x, 1.f, "sum"); }

Tensor mean(const Tensor& x) {
  detail::check_defined(x, "mean", "input");
  MAAS_CHECK(x.numel() > 0, "mean: input of shape " << to_string(x.shape()) << " is empty");
  return sum_all(x, 1.f / static_cast<float>(x.numel()), "mean");
}

Tensor sum(const Tensor& x, int64_t dim, bool keepdim) { return sum_dim(x, dim, keepdim, false, "sum"); }
Tensor mean(const Tensor& x, int64_t dim, bool keepdim) { return sum_dim(x, dim, keepdim, true, "mean"); }

}  // namespace maas
