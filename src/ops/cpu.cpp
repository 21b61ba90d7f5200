// CPU feature detection for the kernels (ops/cpu.hpp): cpuid, XCR0, the
// AMX tile permission, and the MAAS_ISA cap.
#include "ops/cpu.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "maas/error.hpp"

namespace maas {
namespace detail {
namespace {

#if defined(__x86_64__)
bool cpuid(unsigned leaf, unsigned sub, unsigned r[4]) { return __get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]) != 0; }

uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

// Asks Linux for permission to use AMX tile data (XTILEDATA, feature 18).
bool request_tile_permission(std::string& why) {
#if defined(__linux__) && defined(__x86_64__)
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
    why = std::string("the kernel refused tile data (arch_prctl: ") + std::strerror(errno) + ")";
    return false;
  }
  return true;
#else
  why = "tile permission is requested on Linux only";
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned r[4] = {0, 0, 0, 0};
  if (!cpuid(0, 0, r) || r[0] < 7) {
    f.amx_absent_reason = "cpuid leaf 7 missing";
    return f;
  }
  unsigned l1[4] = {0, 0, 0, 0};
  cpuid(1, 0, l1);
  const bool osxsave = (l1[2] >> 27) & 1;
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;       // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;  // XTILECFG, XTILEDATA
  unsigned l7[4] = {0, 0, 0, 0}, l7s1[4] = {0, 0, 0, 0};
  cpuid(7, 0, l7);
  cpuid(7, 1, l7s1);
  const unsigned ebx = l7[1], ecx = l7[2], edx = l7[3];
  f.avx512 = zmm_state && (ebx >> 16 & 1) && (ebx >> 17 & 1) && (ebx >> 30 & 1) && (ebx >> 31 & 1);
  f.avx512_vnni = f.avx512 && (ecx >> 11 & 1);
  f.avx512_bf16 = f.avx512 && (l7s1[0] >> 5 & 1);
  const bool amx_tile = edx >> 24 & 1, amx_bf16 = edx >> 22 & 1, amx_int8 = edx >> 25 & 1;
  if (!amx_tile) {
    f.amx_absent_reason = "not in cpuid";
  } else if (!tile_state) {
    f.amx_absent_reason = "the OS does not enable tile state (XCR0)";
  } else if (request_tile_permission(f.amx_absent_reason)) {
    f.amx_bf16 = amx_bf16;
    f.amx_int8 = amx_int8;
  }
#else
  f.amx_absent_reason = "not an x86-64 CPU";
#endif
  return f;
}

CpuFeatures capped(CpuFeatures f) {
  const char* env = std::getenv("MAAS_ISA");
  if (env == nullptr || *env == '\0' || std::strcmp(env, "amx") == 0) return f;
  const std::string isa = env;
  MAAS_CHECK(isa == "avx512_bf16" || isa == "avx512" || isa == "scalar",
             "MAAS_ISA=" << isa.substr(0, 40) << " is not one of amx, avx512_bf16, avx512, scalar");
  if (f.amx_bf16 || f.amx_int8) f.amx_absent_reason = "disabled by MAAS_ISA=" + isa;
  f.amx_bf16 = f.amx_int8 = false;
  if (isa == "avx512_bf16") return f;
  f.avx512_bf16 = f.avx512_vnni = false;
  if (isa == "avx512") return f;
  f.avx512 = false;
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = capped(detect());
  return features;
}

bool cpu_runs(unsigned needs) {
  if (needs == kNeedNothing) return true;  // without detecting (nor reading MAAS_ISA)
  const CpuFeatures& f = cpu_features();
  return (!(needs & kNeedAvx512) || f.avx512) && (!(needs & kNeedAvx512Bf16) || f.avx512_bf16) &&
         (!(needs & kNeedAvx512Vnni) || f.avx512_vnni);
}

}  // namespace detail
}  // namespace maas
