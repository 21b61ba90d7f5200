// concat: joins tensors along one dimension, forward and backward.
//
// Every input k is viewed as [outer, len_k, inner] around `dim`; the output
// is [outer, sum(len_k), inner], so each outer row of the output is the
// inputs' rows laid end to end, each a contiguous run of len_k * inner
// floats. Backward cuts the same runs out of dout and adds them to the inputs
// that need a gradient. A tensor passed twice (concat({x, x})) gets both
// slices: backward accumulates.
//
// Not here: stack (a new dimension) or split; all inputs must be defined and
// of the same rank.
#include <string>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  MAAS_CHECK(!xs.empty(), "concat: needs at least one tensor, got an empty list");
  for (size_t k = 0; k < xs.size(); ++k)
    detail::check_defined(xs[k], "concat", ("tensor " + std::to_string(k)).c_str());
  const Shape& first = xs[0].shape();
  const int64_t nd = xs[0].dim();
  const int64_t d = detail::normalize_dim(dim, nd, "concat", first);
  for (size_t k = 1; k < xs.size(); ++k) {
    const Shape& sk = xs[k].shape();
    MAAS_CHECK(xs[k].dim() == nd, "concat: tensor " << k << " has shape " << to_string(sk) << " ("
                                  << xs[k].dim() << " dimensions) but tensor 0 has shape " << to_string(first)
                                  << " (" << nd << " dimensions)");
    for (int64_t i = 0; i < nd; ++i)
      MAAS_CHECK(i == d || sk[static_cast<size_t>(i)] == first[static_cast<size_t>(i)],
                 "concat: tensor " << k << " has shape " << to_string(sk) << " but tensor 0 has shape "
                                   << to_string(first) << " (they may differ only in dimension " << d << ")");
  }

  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= first[static_cast<size_t>(i)];
  for (int64_t i = d + 1; i < nd; ++i) inner *= first[static_cast<size_t>(i)];
  // run[k]: floats of input k per outer row; start[k]: where they begin in an output row.
  std::vector<int64_t> run(xs.size()), start(xs.size());
  int64_t total = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    start[k] = total * inner;
    run[k] = xs[k].shape()[static_cast<size_t>(d)] * inner;
    total += xs[k].shape()[static_cast<size_t>(d)];
  }
  const int64_t row = total * inner;  // floats per outer row of the output
  Shape out_shape = first;
  out_shape[static_cast<size_t>(d)] = total;
  Tensor out = Tensor::empty(out_shape);

  std::vector<const float*> src(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) src[k] = xs[k].data();
  float* dst = out.data();
  const int64_t nk = static_cast<int64_t>(xs.size());
#pragma omp parallel for if (out.numel() > detail::kParallelGrain && outer > 1) schedule(static)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < nk; ++k) {
      const float* from = src[static_cast<size_t>(k)] + o * run[static_cast<size_t>(k)];
      float* to = dst + o * row + start[static_cast<size_t>(k)];
      for (int64_t i = 0; i < run[static_cast<size_t>(k)]; ++i) to[i] = from[i];
    }

  autograd::record("concat", out, xs, [outer, row, run, start](const Tensor& dout, std::vector<Tensor>& dxs) {
    const float* g = dout.data();
    // One input after the other: two entries of dxs may be the same buffer.
    for (size_t k = 0; k < dxs.size(); ++k) {
      if (!dxs[k].defined()) continue;
      float* dinp = dxs[k].data();
      const int64_t n = run[k], off = start[k];
#pragma omp parallel for if (outer * n > detail::kParallelGrain && outer > 1) schedule(static)
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < n; ++i) dinp[o * n + i] += g[o * row + off + i];
    }
  });
  return out;
}

}  // namespace maas
