// embedding: a table lookup, forward and backward. indices (any shape S,
// integers held as floats) and weight [V, D] -> out [S..., D] with
// out[i, :] = weight[indices[i], :].
//
// Indices are checked before anything is allocated: each must be finite, a
// whole number and in [0, V), or the op throws naming the index, where it
// stands and V. A float holds every whole number up to 2^24 exactly, so V
// may be at most 2^24 (kMaxEmbeddingRows).
//
// Backward is a scatter-add: dweight[indices[i], :] += dout[i, :], in the
// order of the indices, on one thread, so a row used several times in a
// batch sums its gradients the same way on every run and every thread
// count. The indices get no gradient (they are not differentiable); only
// the weight is recorded as an input.
//
// What this file is not: no padding index, no max_norm, no sparse
// gradients (dweight is dense, as Keras' and PyTorch's defaults).
#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {

// An index for a message: whole numbers as integers ("12", not "12.0" or
// "1.2e+01"), anything else as the float it is.
std::string index_text(float v) {
  std::ostringstream os;
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15f) os << static_cast<int64_t>(v);
  else os << v;
  return os.str();
}

}  // namespace

Tensor embedding(const Tensor& indices, const Tensor& weight) {
  detail::check_defined(indices, "embedding", "indices");
  detail::check_defined(weight, "embedding", "weight");
  MAAS_CHECK(weight.dim() == 2,
             "embedding: weight " << to_string(weight.shape()) << " must be 2-D [input_dim, output_dim]");
  const int64_t V = weight.size(0), D = weight.size(1);
  MAAS_CHECK(V <= kMaxEmbeddingRows, "embedding: weight " << to_string(weight.shape()) << " has more than 2^24 rows; "
                                                          << "a float index cannot address them exactly");
  const int64_t n = indices.numel();
  Shape out_shape = indices.shape();
  out_shape.push_back(D);
  numel(out_shape);  // throws before allocating when the output cannot be counted
  auto rows = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(n));
  const float* ip = indices.data();
  for (int64_t i = 0; i < n; ++i) {
    const float v = ip[i];
    MAAS_CHECK(std::isfinite(v) && v == std::floor(v),
               "embedding: index " << index_text(v) << " (element " << i << " of indices " << to_string(indices.shape())
                                   << ") is not a whole number; indices must be integers in [0, input_dim " << V
                                   << ")");
    MAAS_CHECK(v >= 0.f && v < static_cast<float>(V),
               "embedding: index " << index_text(v) << " (element " << i << " of indices "
                                   << to_string(indices.shape()) << ") is out of range for input_dim " << V
                                   << " (indices must be in [0, " << V << "))");
    (*rows)[static_cast<size_t>(i)] = static_cast<int64_t>(v);
  }
  Tensor out = Tensor::empty(out_shape);
  const float* w = weight.data();
  float* q = out.data();
#pragma omp parallel for if (n * D > detail::kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* src = w + (*rows)[static_cast<size_t>(i)] * D;
    float* dst = q + i * D;
    for (int64_t k = 0; k < D; ++k) dst[k] = src[k];
  }
  autograd::record("embedding", out, {weight}, [rows, D](const Tensor& dout, std::vector<Tensor>& dw) {
    const float* g = dout.data();
    float* d = dw[0].data();
    const int64_t n = static_cast<int64_t>(rows->size());
    for (int64_t i = 0; i < n; ++i) {
      float* dst = d + (*rows)[static_cast<size_t>(i)] * D;
      const float* src = g + i * D;
      for (int64_t k = 0; k < D; ++k) dst[k] += src[k];
    }
  });
  return out;
}

}  // namespace maas
