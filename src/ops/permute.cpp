// permute: reorders the dimensions of a tensor by copying (maas tensors are
// contiguous): out.size(i) = x.size(dims[i]).
//
// The copy walks the output in order; the last output dimension is the
// inner loop, read from x with its stride. Rows of the output are spread
// over OpenMP threads when the tensor is large. Backward is the inverse
// permutation, accumulated into dx.
#include <vector>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {

// dst (=, or += when Accumulate) src permuted: dst's dimension i is src's
// dimension dims[i]; `shape` is src's.
template <bool Accumulate>
void permute_copy(const float* src, float* dst, const Shape& shape, const std::vector<int64_t>& dims) {
  const size_t nd = shape.size();
  std::vector<int64_t> src_stride(nd, 1);
  for (size_t d = nd - 1; d-- > 0;) src_stride[d] = src_stride[d + 1] * shape[d + 1];
  Shape out(nd);
  std::vector<int64_t> stride(nd);  // src stride of each dst dimension
  for (size_t i = 0; i < nd; ++i) {
    out[i] = shape[dims[i]];
    stride[i] = src_stride[dims[i]];
  }
  const int64_t inner = out[nd - 1], step = stride[nd - 1];
  const int64_t total = numel(out);
  if (total == 0) return;
  const int64_t rows = total / inner;
#pragma omp parallel for if (total > detail::kParallelGrain) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t from = 0;
    for (int64_t d = static_cast<int64_t>(nd) - 2, rest = r; d >= 0; --d) {
      from += (rest % out[d]) * stride[d];
      rest /= out[d];
    }
    float* to = dst + r * inner;
    for (int64_t j = 0; j < inner; ++j) {
      if (Accumulate) to[j] += src[from + j * step];
      else to[j] = src[from + j * step];
    }
  }
}

}  // namespace

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  detail::check_defined(x, "permute", "input");
  const int64_t nd = x.dim();
  std::vector<int64_t> axes(dims.size());
  std::vector<bool> seen(static_cast<size_t>(nd), false);
  MAAS_CHECK(static_cast<int64_t>(dims.size()) == nd,
             "permute: " << dims.size() << " dimensions given for input " << to_string(x.shape()) << " of " << nd);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t a = dims[i] < 0 ? dims[i] + nd : dims[i];
    MAAS_CHECK(a >= 0 && a < nd && !seen[static_cast<size_t>(a)],
               "permute: dimension " << dims[i] << " is out of range or repeated for input " << to_string(x.shape()));
    seen[static_cast<size_t>(a)] = true;
    axes[i] = a;
  }
  Shape out_shape(static_cast<size_t>(nd));
  std::vector<int64_t> inverse(static_cast<size_t>(nd));
  for (int64_t i = 0; i < nd; ++i) {
    out_shape[i] = x.size(axes[i]);
    inverse[axes[i]] = i;
  }
  Tensor out = Tensor::empty(out_shape);
  if (nd == 0) {
    out.data()[0] = x.data()[0];
  } else {
    permute_copy<false>(x.data(), out.data(), x.shape(), axes);
  }
  autograd::record("permute", out, {x}, [out_shape, inverse](const Tensor& dout, std::vector<Tensor>& d) {
    if (out_shape.empty()) d[0].data()[0] += dout.data()[0];
    else permute_copy<true>(dout.data(), d[0].data(), out_shape, inverse);
  });
  return out;
}

}  // namespace maas
