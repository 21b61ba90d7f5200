// Internal: the portable bf16 kernel of bf16_gemm.hpp, as always-inline
// functions, and MAAS_BF16_GENERIC_KERNEL, which compiles them into a kernel
// table. bf16_gemm.cpp instantiates it for the scalar kernel, and
// bf16_avx512.cpp with an AVX-512 target (the compiler vectorises them
// there): one source for the fallbacks, and a new primitive is one line in
// the macro. The operands are the rounded bf16
// values widened to fp32 (exactly), multiplied in fp32; each product of two
// bf16 values is exact in fp32, so the sums round exactly as vdpbf16ps'
// (odd product first, then even), subnormal results aside.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "ops/lowp/bf16_gemm.hpp"

namespace maas::detail::bf16_generic {

#define MAAS_BF16_INLINE inline __attribute__((always_inline))

MAAS_BF16_INLINE uint16_t from_float(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);  // zero or subnormal: signed zero
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN: quiet
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even (may carry into the exponent: inf)
  return static_cast<uint16_t>(u >> 16);
}

MAAS_BF16_INLINE float word_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
MAAS_BF16_INLINE float lo(uint32_t pair) { return word_to_float(pair << 16); }
MAAS_BF16_INLINE float hi(uint32_t pair) { return word_to_float(pair & 0xffff0000u); }
MAAS_BF16_INLINE uint32_t pair(float even, float odd) {
  return static_cast<uint32_t>(from_float(even)) | static_cast<uint32_t>(from_float(odd)) << 16;
}

MAAS_BF16_INLINE void pack_across(const float* r0, const float* r1, int64_t n, uint32_t* dst) {
  if (r1) {
    for (int64_t j = 0; j < n; ++j) dst[j] = pair(r0[j], r1[j]);
  } else {
    for (int64_t j = 0; j < n; ++j) dst[j] = from_float(r0[j]);
  }
}

MAAS_BF16_INLINE void pack_along(const float* src, int64_t ld, int rows, int64_t k, uint32_t* dst, int64_t p) {
  const int64_t full = k / 2, kp = bf16_pairs(k);
  for (int j = 0; j < 8; ++j) {
    if (j >= rows) {
      for (int64_t q = 0; q < kp; ++q) dst[q * p + j] = 0;
      continue;
    }
    const float* r = src + j * ld;
    for (int64_t q = 0; q < full; ++q) dst[q * p + j] = pair(r[2 * q], r[2 * q + 1]);
    if (k & 1) dst[full * p + j] = from_float(r[k - 1]);
  }
}

// Lane l of the run of 16 positions described by e, from plane p.
MAAS_BF16_INLINE float gathered(const float* p, const Bf16Gather& e, int l) {
  return (e.keep >> l & 1) ? p[e.base + e.idx[l]] : 0.f;
}

MAAS_BF16_INLINE void gather_b(const Bf16Columns& s, int64_t r0, int64_t rows, uint32_t* dst) {
  constexpr int NR = kBf16NR, NV = kBf16NV;
  const int64_t vecs = (s.positions + 15) / 16, kp = bf16_pairs(rows);
  const int64_t slots = bf16_round_up(s.positions, NR) / 16;  // vectors of the panels, the unread ones zero
  for (int64_t q = 0; q < kp; ++q) {
    const int64_t ra = r0 + 2 * q, rb = ra + 1;
    const bool has_b = 2 * q + 1 < rows;
    const float* pa = s.x + ra / s.taps * s.plane;
    const float* pb = s.x + rb / s.taps * s.plane;
    const Bf16Gather* ga = s.plan + ra % s.taps * vecs;
    const Bf16Gather* gb = s.plan + rb % s.taps * vecs;
    for (int64_t v = 0; v < slots; ++v) {
      uint32_t* d = dst + v / NV * kp * NR + q * NR + v % NV * 16;
      for (int l = 0; l < 16; ++l)
        d[l] = v < vecs ? pair(gathered(pa, ga[v], l), has_b ? gathered(pb, gb[v], l) : 0.f) : 0u;
    }
  }
}

MAAS_BF16_INLINE void gather_t(const Bf16Columns& s, int64_t r0, int64_t rows, uint32_t* dst, int64_t p) {
  const int64_t vecs = (s.positions + 15) / 16, kp = bf16_pairs(s.positions);
  for (int64_t j = 0; j < bf16_round_up(rows, p); ++j) {
    uint32_t* d = dst + j / p * kp * p + j % p;  // column j % p of panel j / p
    if (j >= rows) {
      for (int64_t q = 0; q < kp; ++q) d[q * p] = 0;
      continue;
    }
    const int64_t r = r0 + j;
    const float* x = s.x + r / s.taps * s.plane;
    const Bf16Gather* g = s.plan + r % s.taps * vecs;
    for (int64_t q = 0; q < kp; ++q) {
      const int64_t e = 2 * q, o = e + 1;  // positions; o < 16 * vecs, lanes past P are zero
      d[q * p] = pair(gathered(x, g[e / 16], static_cast<int>(e % 16)), gathered(x, g[o / 16], static_cast<int>(o % 16)));
    }
  }
}

// One kBf16MR x kBf16NR tile at a time; only [rows x cols] of it is stored.
MAAS_BF16_INLINE void macro(int64_t m, int64_t n, int64_t kp, const uint32_t* a, int64_t a_step, const uint32_t* b,
                            int64_t b_step, float* c, int64_t ldc, bool accumulate, const float* bias) {
  constexpr int MR = kBf16MR, NR = kBf16NR;
  for (int64_t j0 = 0, q = 0; j0 < n; j0 += NR, ++q) {
    const int cols = static_cast<int>(std::min<int64_t>(NR, n - j0));
    for (int64_t i0 = 0, s = 0; i0 < m; i0 += MR, ++s) {
      const int rows = static_cast<int>(std::min<int64_t>(MR, m - i0));
      const uint32_t* as = a + s * a_step;
      const uint32_t* bs = b + q * b_step;
      alignas(64) float acc[MR][NR] = {};
      for (int64_t p = 0; p < kp; ++p) {
        alignas(64) float blo[NR], bhi[NR];
        for (int j = 0; j < NR; ++j) {
          blo[j] = lo(bs[p * NR + j]);
          bhi[j] = hi(bs[p * NR + j]);
        }
        for (int i = 0; i < MR; ++i) {
          const float alo = lo(as[p * MR + i]), ahi = hi(as[p * MR + i]);
          for (int j = 0; j < NR; ++j) {
            float t = acc[i][j] + ahi * bhi[j];  // exact products: with or without FMA contraction alike
            acc[i][j] = t + alo * blo[j];
          }
        }
      }
      for (int i = 0; i < rows; ++i) {
        float* pc = c + (i0 + i) * ldc + j0;
        const float base = bias ? bias[i0 + i] : 0.f;
        if (accumulate) {
          for (int j = 0; j < cols; ++j) pc[j] += acc[i][j];
        } else {
          for (int j = 0; j < cols; ++j) pc[j] = acc[i][j] + base;
        }
      }
    }
  }
}

}  // namespace maas::detail::bf16_generic

// Defines `const Bf16Kernel table` (in maas::detail, at namespace scope there)
// named `label`, needing `needs` (CpuNeed bits), from the functions above,
// each compiled with the attributes `attrs` (empty: the build's target).
#define MAAS_BF16_GENERIC_KERNEL(table, label, needs, attrs)                                                         \
  namespace {                                                                                                        \
  namespace table##_fns {                                                                                            \
  attrs void pack_across(const float* r0, const float* r1, int64_t n, uint32_t* dst) {                               \
    bf16_generic::pack_across(r0, r1, n, dst);                                                                       \
  }                                                                                                                  \
  attrs void pack_along(const float* src, int64_t ld, int rows, int64_t k, uint32_t* dst, int64_t p) {               \
    bf16_generic::pack_along(src, ld, rows, k, dst, p);                                                              \
  }                                                                                                                  \
  attrs void macro(int64_t m, int64_t n, int64_t kp, const uint32_t* a, int64_t a_step, const uint32_t* b,           \
                   int64_t b_step, float* c, int64_t ldc, bool accumulate, const float* bias) {                      \
    bf16_generic::macro(m, n, kp, a, a_step, b, b_step, c, ldc, accumulate, bias);                                   \
  }                                                                                                                  \
  attrs void gather_b(const Bf16Columns& src, int64_t r0, int64_t rows, uint32_t* dst) {                             \
    bf16_generic::gather_b(src, r0, rows, dst);                                                                      \
  }                                                                                                                  \
  attrs void gather_t(const Bf16Columns& src, int64_t r0, int64_t rows, uint32_t* dst, int64_t p) {                  \
    bf16_generic::gather_t(src, r0, rows, dst, p);                                                                   \
  }                                                                                                                  \
  }                                                                                                                  \
  }                                                                                                                  \
  const Bf16Kernel table = {label,                 needs,                  table##_fns::pack_across,                 \
                            table##_fns::pack_along, table##_fns::macro,   table##_fns::gather_b,                    \
                            table##_fns::gather_t}
