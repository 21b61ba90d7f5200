// softmax and log_softmax along one dimension, forward and backward.
//
// x is viewed as [outer, len, inner] around `dim`: each of the outer*inner
// lanes is one softmax over `len` values lying `inner` apart in memory. Lanes
// are processed in blocks of up to kBlock neighbouring inner positions, so
// every pass over a block reads contiguous memory, and blocks are spread over
// OpenMP threads when the tensor is large. Stable: each lane's maximum is
// subtracted before exp, so logits of +-1e4 give exact one-hots (softmax) and
// finite logs (log_softmax), never inf or NaN.
//
//   softmax:      y = exp(x - max) / sum(exp(x - max))
//                 dx += y * (g - sum(g * y))
//   log_softmax:  y = (x - max) - log(sum(exp(x - max)))
//                 dx += g - exp(y) * sum(g)
//
// Not here: masking, temperature, or a fused cross-entropy; 0-d inputs are
// rejected (no dimension to normalise over).
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {

constexpr int64_t kBlock = 64;


// Calls fn(base, w) for every block of w <= kBlock adjacent lanes; the
// element at position l of lane i of the block is at base + l * inner + i.
// Blocks write disjoint elements, so they may run on any thread.
template <class Fn>
void for_each_block(const detail::Axis& ax, Fn fn) {
  const int64_t nblk = (ax.inner + kBlock - 1) / kBlock;
  const int64_t tasks = ax.outer * nblk;
  const bool parallel = ax.outer * ax.len * ax.inner > detail::kParallelGrain;
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / nblk;
    const int64_t i0 = (t % nblk) * kBlock;
    fn(o * ax.len * ax.inner + i0, std::min(kBlock, ax.inner - i0));
  }
}

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log_space, const char* name) {
  detail::check_defined(x, name, "input");
  const int64_t d = detail::normalize_dim(dim, x.dim(), name, x.shape());
  const detail::Axis ax = detail::split_axis(x.shape(), d);
  Tensor out = Tensor::empty(x.shape());
  const float* px = x.data();
  float* py = out.data();
  for_each_block(ax, [&](int64_t base, int64_t w) {
    const float* src = px + base;
    float* dst = py + base;
    const int64_t len = ax.len, inner = ax.inner;
    float m[kBlock], s[kBlock];
    for (int64_t i = 0; i < w; ++i) m[i] = -std::numeric_limits<float>::infinity();
    for (int64_t l = 0; l < len; ++l)
      for (int64_t i = 0; i < w; ++i) m[i] = std::max(m[i], src[l * inner + i]);
    for (int64_t i = 0; i < w; ++i) s[i] = 0.f;
    if (log_space) {
      for (int64_t l = 0; l < len; ++l)
        for (int64_t i = 0; i < w; ++i) s[i] += std::exp(src[l * inner + i] - m[i]);
      // (x - max) - log(s), not x - (max + log(s)): with max = 1e4 the sum
      // max + log(s) would round away the digits of log(s).
      for (int64_t i = 0; i < w; ++i) s[i] = std::log(s[i]);
      for (int64_t l = 0; l < len; ++l)
        for (int64_t i = 0; i < w; ++i) dst[l * inner + i] = (src[l * inner + i] - m[i]) - s[i];
    } else {
      for (int64_t l = 0; l < len; ++l)
        for (int64_t i = 0; i < w; ++i) {
          const float e = std::exp(src[l * inner + i] - m[i]);
          dst[l * inner + i] = e;
          s[i] += e;
        }
      for (int64_t i = 0; i < w; ++i) s[i] = 1.f / s[i];  // s >= 1: the maximum contributes exp(0)
      for (int64_t l = 0; l < len; ++l)
        for (int64_t i = 0; i < w; ++i) dst[l * inner + i] *= s[i];
    }
  });

  autograd::record(name, out, {x}, [ax, log_space, ys = out.detach()](const Tensor& dout, std::vector<Tensor>& dx) {
    const float* py = ys.data();
    const float* pg = dout.data();
    float* pd = dx[0].data();
    for_each_block(ax, [&](int64_t base, int64_t w) {
      const float* y = py + base;
      const float* g = pg + base;
      float* dinp = pd + base;
      const int64_t len = ax.len, inner = ax.inner;
      float s[kBlock];
      for (int64_t i = 0; i < w; ++i) s[i] = 0.f;
      if (log_space) {
        for (int64_t l = 0; l < len; ++l)
          for (int64_t i = 0; i < w; ++i) s[i] += g[l * inner + i];
        for (int64_t l = 0; l < len; ++l)
          for (int64_t i = 0; i < w; ++i) {
            const int64_t k = l * inner + i;
            dinp[k] += g[k] - std::exp(y[k]) * s[i];
          }
      } else {
        for (int64_t l = 0; l < len; ++l)
          for (int64_t i = 0; i < w; ++i) s[i] += g[l * inner + i] * y[l * inner + i];
        for (int64_t l = 0; l < len; ++l)
          for (int64_t i = 0; i < w; ++i) {
            const int64_t k = l * inner + i;
            dinp[k] += y[k] * (g[k] - s[i]);
          }
      }
    });
  });
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true, "log_softmax"); }

}  // namespace maas
