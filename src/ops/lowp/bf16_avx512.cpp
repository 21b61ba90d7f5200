// The bf16 kernel for AVX-512 CPUs without AVX512_BF16 (Skylake-X, Ice Lake,
// or MAAS_ISA=avx512): the portable kernel (bf16_generic.hpp) compiled for
// AVX-512F, which the compiler vectorises; bf16 is emulated (software
// rounding where the operands are packed, fp32 FMAs on the widened values).
#include "ops/lowp/bf16_gemm.hpp"
#include "ops/lowp/bf16_generic.hpp"

namespace maas::detail {

#if defined(__x86_64__)
namespace {

#define MAAS_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

MAAS_AVX512_TARGET void pack_across(const float* r0, const float* r1, int64_t n, uint32_t* dst) {
  bf16_generic::pack_across(r0, r1, n, dst);
}
MAAS_AVX512_TARGET void pack_along(const float* src, int64_t ld, int rows, int64_t k, uint32_t* dst, int64_t p) {
  bf16_generic::pack_along(src, ld, rows, k, dst, p);
}
MAAS_AVX512_TARGET void macro(int64_t m, int64_t n, int64_t kp, const uint32_t* a, int64_t a_step,
                              const uint32_t* b, int64_t b_step, float* c, int64_t ldc, bool accumulate,
                              const float* bias) {
  bf16_generic::macro(m, n, kp, a, a_step, b, b_step, c, ldc, accumulate, bias);
}

MAAS_AVX512_TARGET void gather_b(const Bf16Columns& src, int64_t r0, int64_t rows, uint32_t* dst) {
  bf16_generic::gather_b(src, r0, rows, dst);
}
MAAS_AVX512_TARGET void gather_t(const Bf16Columns& src, int64_t r0, int64_t rows, uint32_t* dst, int64_t p) {
  bf16_generic::gather_t(src, r0, rows, dst, p);
}

}  // namespace

const Bf16Kernel kBf16Avx512 = {"AVX-512 (bf16 emulated)", pack_across, pack_along, macro, gather_b, gather_t};
#else
const Bf16Kernel kBf16Avx512 = kBf16Scalar;
#endif

}  // namespace maas::detail
