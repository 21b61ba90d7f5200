// Internal: what every loss shares. A loss computes one value per element
// (or per row); Reducer turns those into its output (Mean, Sum or None) and,
// in backward, hands each element its share of the upstream gradient.
#pragma once

#include <cmath>
#include <vector>

#include "core/internal.hpp"
#include "maas/loss.hpp"

namespace maas::detail {

struct Reducer {
  Reduction reduction = Reduction::Mean;
  double scale = 1.0;  // 1 / denominator for Mean, 1 otherwise

  // The loss output from per-element losses `per`, already shaped as None
  // returns them: `per` itself for None, else a 0-d sum(per) * scale.
  Tensor output(const Tensor& per) const {
    if (reduction == Reduction::None) return per;
    const float* p = per.data();
    double acc = 0.0;
    for (int64_t i = 0; i < per.numel(); ++i) acc += p[i];
    return Tensor::scalar(static_cast<float>(acc * scale));
  }

  // d output / d per[i], times the upstream gradient dout.
  float grad(const float* dout, int64_t i) const {
    return reduction == Reduction::None ? dout[i] : static_cast<float>(dout[0] * scale);
  }
};

// A Reducer whose Mean divides by `denominator` (the element count, or a sum
// of weights). Mean over zero elements throws, naming `op` and `shape`.
Reducer make_reducer(Reduction reduction, int64_t count, double denominator, const char* op,
                     const Shape& shape);

// Throws unless every value is finite and >= 0, naming `op` and `what`.
void check_weights(const std::vector<float>& weights, const char* op, const char* what);

// Throws unless a and b have the same shape.
void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* name_a,
                      const char* name_b);

}  // namespace maas::detail
