// Internal: the precision an op's matrix products run in, decided in one
// place (ops/precision.cpp) for every op that multiplies (matmul, conv2d).
// Not installed.
//
// An op reads product_precision() when its forward starts, and again when
// its backward starts (the setting may change in between), and runs every
// product of that pass on that precision's kernel: product_gemm for whole
// products, or the kernel tables themselves (f32_kernel(), bf16_kernel())
// where it packs its own operands.
#pragma once

#include <cstdint>

#include "maas/precision.hpp"

namespace maas::detail {

// The precision of the products of a pass starting now.
Precision product_precision();

// C [m x n] (+)= op(A) [m x k] * op(B) [k x n] in precision p: sgemm
// (gemm.hpp) or bf16_gemm (lowp/bf16_gemm.hpp), same arguments.
void product_gemm(Precision p, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads);

}  // namespace maas::detail
