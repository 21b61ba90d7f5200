// Internal: what the CPU offers the kernels, and the one way every precision
// picks its kernel table from it. Not installed.
//
// One detection, done once: cpuid for AVX-512 (F, BW, VL, DQ), AVX512_BF16,
// AVX512_VNNI, AMX-TILE, AMX-BF16 and AMX-INT8; XCR0 for the OS saving zmm
// and tile state; and on Linux arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA),
// without which a tile instruction dies with SIGILL (the request fails under
// valgrind and in some sandboxes, and AMX is then treated as absent).
// MAAS_ISA caps the result (see maas/precision.hpp).
#pragma once

#include <cstddef>
#include <string>

#include "maas/precision.hpp"

namespace maas::detail {

struct CpuFeatures {
  bool avx512 = false;       // F + BW + VL + DQ, with zmm state enabled by the OS
  bool avx512_bf16 = false;  // vcvtne2ps2bf16, vdpbf16ps
  bool avx512_vnni = false;  // vpdpbusd
  bool amx_bf16 = false;     // tiles usable (cpuid + XCR0 + permission granted)
  bool amx_int8 = false;
  std::string amx_absent_reason;  // why AMX is not used, when it is not
};

// The CPU's features, capped by MAAS_ISA (read once; an unknown value throws
// maas::Error naming the accepted ones).
const CpuFeatures& cpu_features();

// What a kernel table needs of the CPU (bits, or'ed together).
enum CpuNeed : unsigned { kNeedNothing = 0, kNeedAvx512 = 1, kNeedAvx512Bf16 = 2, kNeedAvx512Vnni = 4 };
// Whether cpu_features() has everything in `needs`.
bool cpu_runs(unsigned needs);

// The dispatch of every precision (fp32, bf16, int8): a kernel table is a
// struct with `const char* name`, `unsigned needs` and the precision's
// function pointers, one constant per instruction set; the precision's
// xxx_kernel() returns choose_kernel() of its tables, richest first, once.
// The last table must need nothing.
template <class Kernel, size_t N>
const Kernel& choose_kernel(const Kernel* const (&richest_first)[N]) {
  static_assert(N > 0, "choose_kernel: no kernel table");
  for (const Kernel* k : richest_first)
    if (cpu_runs(k->needs)) return *k;
  return *richest_first[N - 1];
}

}  // namespace maas::detail
