// maas/precision.hpp: the precision of matrix products, and the kernels the
// CPU offers for it.
//
//   maas::set_matmul_precision(maas::Precision::BF16);   // mixed precision
//
// FP32 (the default) multiplies in single precision. BF16 rounds the operands
// of GEMMs and convolutions to bfloat16 (round to nearest even, as
// _mm512_cvtne2ps_pbh) where they are packed, and accumulates in fp32.
// Weights, gradients, optimizer state and every tensor stay fp32. The setting
// is process-wide, read when a product starts.
//
// Which kernel runs is chosen once, at the first product, from the CPU (cpuid,
// and on Linux the permission to use AMX tile data): AMX, then AVX512_BF16 /
// AVX512_VNNI, then plain fp32 / scalar int8. The environment variable
// MAAS_ISA caps the choice, to test the fallbacks on a CPU that has more:
//   MAAS_ISA=avx512_bf16   no AMX
//   MAAS_ISA=avx512        no bf16 or VNNI instructions either (BF16 is then
//                          emulated: the operands are still rounded to bf16)
//   MAAS_ISA=scalar        portable code only
// isa_description() says which path runs; the first BF16 product logs it once
// on stderr.
#pragma once

#include <string>

namespace maas {

enum class Precision { FP32, BF16 };

void set_matmul_precision(Precision p);
Precision matmul_precision();
// "fp32", "bf16"; from_string throws maas::Error for anything else.
std::string to_string(Precision p);
Precision precision_from_string(const std::string& name);

// The instruction sets the kernels may use on this CPU, after MAAS_ISA.
enum class Isa { Scalar, Avx512, Avx512Bf16, Amx };
Isa active_isa();
std::string isa_description();  // e.g. "AVX512_BF16 + AVX512_VNNI (no AMX: not in cpuid)"

}  // namespace maas
