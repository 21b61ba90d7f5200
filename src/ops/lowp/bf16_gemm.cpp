// The bf16 GEMM of bf16_gemm.hpp: the scalar kernel, packing, the gather
// plan, the kernel choice, and the policy gemm_drive (ops/gemm_driver.hpp)
// runs the product's loops and thread split with.
#include "ops/lowp/bf16_gemm.hpp"

#include <algorithm>
#include <cstdio>

#include "maas/precision.hpp"
#include "ops/cpu.hpp"
#include "ops/gemm_driver.hpp"
#include "ops/lowp/bf16_generic.hpp"

namespace maas::detail {

namespace {

// bf16_pack on a given kernel's packing primitives.
void pack_with(const Bf16Kernel& kern, const float* src, int64_t ld, bool contiguous, int64_t k, int64_t n, int p,
               uint32_t* dst) {
  const int64_t kp = bf16_pairs(k);
  for (int64_t j0 = 0; j0 < n; j0 += p) {
    const int64_t cols = std::min<int64_t>(p, n - j0);
    uint32_t* d = dst + (j0 / p) * kp * p;
    if (contiguous) {
      // pack_along writes 8 columns, zero past `rows`; columns past them stay.
      for (int64_t j = 0; j < p; j += 8) {
        if (j < cols) {
          kern.pack_along(src + (j0 + j) * ld, ld, static_cast<int>(std::min<int64_t>(8, cols - j)), k, d + j, p);
        } else {
          for (int64_t q = 0; q < kp; ++q) std::fill(d + q * p + j, d + q * p + j + 8, 0u);
        }
      }
    } else {
      for (int64_t q = 0; q < kp; ++q) {
        const float* r0 = src + 2 * q * ld + j0;
        kern.pack_across(r0, 2 * q + 1 < k ? r0 + ld : nullptr, cols, d + q * p);
        std::fill(d + q * p + cols, d + (q + 1) * p, 0u);
      }
    }
  }
}

// The bf16 kernel table as gemm_drive's policy (ops/gemm_driver.hpp): k in
// blocks of KC (even), so each pair sums in the same order whatever the
// split of C.
struct Bf16Gemm {
  using Word = uint32_t;
  static constexpr int MR = kBf16MR, NR = kBf16NR, W = kBf16W;
  static constexpr int64_t KC = 1024;
  static constexpr bool kInPlaceB = false;  // B is converted to bf16 pairs as it is packed
  const Bf16Kernel& kern;
  int64_t depth(int64_t kc) const { return bf16_pairs(kc); }
  void pack_a(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, uint32_t* dst) const {
    pack_with(kern, a, lda, !trans, kc, mc, MR, dst);
  }
  void pack_b(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, uint32_t* dst) const {
    pack_with(kern, b, ldb, trans, kc, nc, NR, dst);
  }
  void macro(int64_t mc, int64_t nc, int64_t kc, const uint32_t* ap, const uint32_t* bp, float* c, int64_t ldc,
             bool accumulate) const {
    const int64_t kp = bf16_pairs(kc);
    kern.macro(mc, nc, kp, ap, kp * MR, bp, kp * NR, c, ldc, accumulate, nullptr);
  }
};

}  // namespace

uint16_t bf16_from_float(float x) { return bf16_generic::from_float(x); }
float bf16_to_float(uint16_t h) { return bf16_generic::lo(h); }

MAAS_BF16_GENERIC_KERNEL(kBf16Scalar, "scalar (bf16 emulated)", kNeedNothing, );

std::vector<Bf16Gather> bf16_gather_plan(const Bf16ConvShape& s) {
  const int64_t P = s.Ho * s.Wo, vecs = (P + 15) / 16;
  std::vector<Bf16Gather> plan;
  if (s.H * s.W >= (int64_t{1} << 31)) return plan;
  plan.reserve(static_cast<size_t>(s.kh * s.kw * vecs));
  for (int64_t i = 0; i < s.kh; ++i)
    for (int64_t j = 0; j < s.kw; ++j)
      for (int64_t v = 0; v < vecs; ++v) {
        int64_t at[16], lo = -1, hi = -1;
        for (int l = 0; l < 16; ++l) {
          const int64_t p = 16 * v + l, oh = p / s.Wo, ow = p % s.Wo;
          const int64_t ih = oh * s.stride_h + i * s.dil_h - s.pad_h, iw = ow * s.stride_w + j * s.dil_w - s.pad_w;
          at[l] = p < P && ih >= 0 && ih < s.H && iw >= 0 && iw < s.W ? ih * s.W + iw : -1;
          if (at[l] < 0) continue;
          lo = lo < 0 ? at[l] : std::min(lo, at[l]);
          hi = std::max(hi, at[l]);
        }
        if (hi - lo >= 32) return {};
        Bf16Gather e{};
        e.base = static_cast<int32_t>(std::max<int64_t>(lo, 0));
        for (int l = 0; l < 16; ++l) {
          if (at[l] < 0) continue;
          const int64_t d = at[l] - e.base;
          e.keep = static_cast<uint16_t>(e.keep | 1u << l);
          e.idx[l] = static_cast<uint8_t>(d);
          if (d < 16) e.load_lo = static_cast<uint16_t>(e.load_lo | 1u << d);
          else e.load_hi = static_cast<uint16_t>(e.load_hi | 1u << (d - 16));
        }
        plan.push_back(e);
      }
  return plan;
}

const Bf16Kernel& bf16_kernel() {
  static const Bf16Kernel& kernel = []() -> const Bf16Kernel& {
    static const Bf16Kernel* const tables[] = {&kBf16Avx512Bf16, &kBf16Avx512, &kBf16Scalar};
    const Bf16Kernel& k = choose_kernel(tables);
    std::fprintf(stderr, "maas: bf16 matrix products on the %s kernel (%s)\n", k.name, isa_description().c_str());
    return k;
  }();
  return kernel;
}

void bf16_pack(const float* src, int64_t ld, bool contiguous, int64_t k, int64_t n, int p, uint32_t* dst) {
  pack_with(bf16_kernel(), src, ld, contiguous, k, n, p, dst);
}

void bf16_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads) {
  gemm_drive(Bf16Gemm{bf16_kernel()}, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate, max_threads);
}

}  // namespace maas::detail
