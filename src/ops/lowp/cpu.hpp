// Internal: what the CPU offers the low-precision kernels. Not installed.
//
// One detection, done once: cpuid for AVX-512 (F, BW, VL, DQ), AVX512_BF16,
// AVX512_VNNI, AMX-TILE, AMX-BF16 and AMX-INT8; XCR0 for the OS saving zmm
// and tile state; and on Linux arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA),
// without which a tile instruction dies with SIGILL (the request fails under
// valgrind and in some sandboxes, and AMX is then treated as absent).
// MAAS_ISA caps the result (see maas/precision.hpp).
#pragma once

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

}  // namespace maas::detail
