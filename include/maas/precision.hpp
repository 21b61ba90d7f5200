// maas/precision.hpp: the precision of matrix products, and what the CPU
// offers the kernels that compute them.
//
//   maas::set_matmul_precision(maas::Precision::BF16);   // mixed precision
//
// FP32 (the default) multiplies in single precision. BF16 rounds the operands
// of GEMMs and convolutions to bfloat16 (round to nearest even, as
// _mm512_cvtne2ps_pbh) where they are packed, and accumulates in fp32.
// Weights, gradients, optimizer state and every tensor stay fp32. The setting
// is process-wide, read when a product starts.
//
// Which kernel runs is chosen once, at the first product, from the CPU
// (cpuid): bf16 products on AVX512_BF16 (vdpbf16ps), else AVX-512 with bf16
// emulated in fp32, else portable code; int8 products (quantized inference)
// on AVX512_VNNI, else AVX-512, else portable code; fp32 products on the
// instruction set the library was compiled for. AMX is detected (cpuid,
// XCR0, and on Linux the permission to use tile data) and reported, but maas
// has no AMX kernel: where the CPU has AMX, the AVX512_BF16 and VNNI kernels
// run. The environment variable MAAS_ISA caps the choice, to test the
// fallbacks on a CPU that has more:
//   MAAS_ISA=amx           no cap (the default)
//   MAAS_ISA=avx512_bf16   AMX reported absent
//   MAAS_ISA=avx512        no bf16 or VNNI instructions either (BF16 is then
//                          emulated: the operands are still rounded to bf16)
//   MAAS_ISA=scalar        portable bf16 and int8 code only
// isa_description() says what the CPU offers; the first BF16 product logs
// the kernel that runs once on stderr.
#pragma once

#include <string>

namespace maas {

enum class Precision { FP32, BF16 };

void set_matmul_precision(Precision p);
Precision matmul_precision();
// "fp32", "bf16"; from_string throws maas::Error for anything else.
std::string to_string(Precision p);
Precision precision_from_string(const std::string& name);

// The richest instruction set this CPU offers the kernels, after MAAS_ISA.
// Each names what the CPU has, not a kernel of its own: Avx512Bf16 runs the
// AVX512_BF16 kernels; Amx (AMX bf16 tiles usable) runs those same
// AVX512_BF16 kernels too, since maas has no tile kernel.
enum class Isa { Scalar, Avx512, Avx512Bf16, Amx };
Isa active_isa();
std::string isa_description();  // e.g. "AVX512_BF16 + AVX512_VNNI (no AMX: not in cpuid)"

}  // namespace maas
