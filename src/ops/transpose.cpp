// transpose: swaps two dimensions by copying (maas tensors are contiguous).
//
// With dim0 < dim1, x is viewed as [A, D0, B, D1, C] (A the dimensions before
// dim0, B those between, C those after dim1) and the output is
// [A, D1, B, D0, C]. The copy walks (D1, D0) in kTile x kTile tiles so both
// reads and writes stay in cache; tiles are spread over OpenMP threads when
// the tensor is large. Backward is the same copy the other way round,
// accumulating into dx. transpose(x, d, d) is a plain copy.
//
// Not here: general permutations (permute) or strided views.
#include <algorithm>
#include <utility>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {

constexpr int64_t kTile = 32;

struct Dims {
  int64_t a = 1, d0 = 1, b = 1, d1 = 1, c = 1;
};

// dst [A, D1, B, D0, C] (=, or += when Accumulate) src [A, D0, B, D1, C].
template <bool Accumulate>
void transpose_copy(const float* src, float* dst, const Dims& s) {
  const int64_t jtiles = (s.d1 + kTile - 1) / kTile;
  const int64_t tasks = s.a * jtiles * s.b;
  const bool parallel = s.a * s.d0 * s.b * s.d1 * s.c > detail::kParallelGrain;
  // Each task owns the output rows j in [j0, j1) of one (a, b): tasks write
  // disjoint elements.
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t a = t / (jtiles * s.b);
    const int64_t jt = (t / s.b) % jtiles;
    const int64_t b = t % s.b;
    const int64_t j0 = jt * kTile, j1 = std::min(s.d1, j0 + kTile);
    for (int64_t i0 = 0; i0 < s.d0; i0 += kTile) {
      const int64_t i1 = std::min(s.d0, i0 + kTile);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) {
          const float* from = src + (((a * s.d0 + i) * s.b + b) * s.d1 + j) * s.c;
          float* to = dst + (((a * s.d1 + j) * s.b + b) * s.d0 + i) * s.c;
          for (int64_t k = 0; k < s.c; ++k) {
            if (Accumulate) to[k] += from[k];
            else to[k] = from[k];
          }
        }
    }
  }
}

}  // namespace

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  detail::check_defined(x, "transpose", "input");
  int64_t lo = detail::normalize_dim(dim0, x.dim(), "transpose", x.shape());
  int64_t hi = detail::normalize_dim(dim1, x.dim(), "transpose", x.shape());
  if (lo > hi) std::swap(lo, hi);
  const Shape& in = x.shape();
  Dims s;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < lo) s.a *= in[i];
    else if (i == lo) s.d0 = in[i];
    else if (i < hi) s.b *= in[i];
    else if (i == hi) { if (hi != lo) s.d1 = in[i]; }
    else s.c *= in[i];
  }
  Shape out_shape = in;
  std::swap(out_shape[static_cast<size_t>(lo)], out_shape[static_cast<size_t>(hi)]);
  Tensor out = Tensor::empty(out_shape);
  transpose_copy<false>(x.data(), out.data(), s);
  autograd::record("transpose", out, {x}, [s](const Tensor& dout, std::vector<Tensor>& dx) {
    // dout is [A, D1, B, D0, C]; dx is [A, D0, B, D1, C].
    transpose_copy<true>(dout.data(), dx[0].data(), Dims{s.a, s.d1, s.b, s.d0, s.c});
  });
  return out;
}

}  // namespace maas
