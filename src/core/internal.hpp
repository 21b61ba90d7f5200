// Internal helpers shared by maas' sources; not installed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "maas/error.hpp"
#include "maas/tensor.hpp"

namespace maas::detail {

// Loops shorter than this run on one thread: starting a team costs more.
constexpr int64_t kParallelGrain = 1 << 15;

// a * b and a + b, or maas::Error naming `what` when the result leaves
// int64_t: every size computed from outside input (a model_config's filters,
// a kernel size times a dilation) goes through these before it is used.
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  MAAS_CHECK(!__builtin_mul_overflow(a, b, &r), what << ": " << a << " * " << b << " overflows 64-bit sizes");
  return r;
}
inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r = 0;
  MAAS_CHECK(!__builtin_add_overflow(a, b, &r), what << ": " << a << " + " << b << " overflows 64-bit sizes");
  return r;
}

// Maps a possibly negative dimension into [0, ndim); throws naming `op`.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op, const Shape& shape);

// A tensor viewed as [outer, len, inner] around one dimension: the shape of
// every reduction or normalisation along an axis.
struct Axis {
  int64_t outer = 1, len = 1, inner = 1;
};
inline Axis split_axis(const Shape& s, int64_t dim) {
  Axis ax;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
    if (i < dim) ax.outer *= s[i];
    else if (i == dim) ax.len = s[i];
    else ax.inner *= s[i];
  }
  return ax;
}

// dst[i] += src[i] for i < n: how a backward adds a gradient it passes
// through unchanged (reshape, the engine's accumulation). Vectorised, and
// split over the threads for large n.
inline void add_to(float* dst, const float* src, int64_t n) {
#pragma omp parallel for simd if (n > 8 * kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// Throws unless `t` is defined, naming the op and the argument.
void check_defined(const Tensor& t, const char* op, const char* arg);

}  // namespace maas::detail
