// The bf16 kernel for AVX-512 CPUs without AVX512_BF16 (Skylake-X, Ice Lake,
// or MAAS_ISA=avx512): the portable kernel (bf16_generic.hpp) compiled for
// AVX-512F, which the compiler vectorises; bf16 is emulated (software
// rounding where the operands are packed, fp32 FMAs on the widened values).
#include "ops/cpu.hpp"
#include "ops/lowp/bf16_gemm.hpp"
#include "ops/lowp/bf16_generic.hpp"

namespace maas::detail {

#if defined(__x86_64__)
MAAS_BF16_GENERIC_KERNEL(kBf16Avx512, "AVX-512 (bf16 emulated)", kNeedAvx512,
                         __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))));
#else
const Bf16Kernel kBf16Avx512 = kBf16Scalar;
#endif

}  // namespace maas::detail
