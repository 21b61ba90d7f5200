// The bf16 kernel on AVX512_BF16 (Cooper Lake, Sapphire Rapids, Zen 4 and
// later): operands rounded by vcvtne2ps2bf16 / vcvtneps2bf16 as they are
// packed, products by vdpbf16ps into fp32 accumulators.
//
// Micro-tile: 8 rows x 48 columns of C, 24 zmm accumulators; per pair of k,
// 3 loads of B (16 pairs each), 8 broadcasts of A's pairs, 24 vdpbf16ps
// (64 flops each). Compiled with target attributes, so the library builds
// without -march=native and runs this only where cpuid reports AVX512_BF16.
#include "ops/cpu.hpp"
#include "ops/lowp/bf16_gemm.hpp"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <utility>
#endif

namespace maas::detail {

#if defined(__x86_64__)
namespace {

#define MAAS_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

constexpr int MR = kBf16MR, NR = kBf16NR, W = kBf16W;

// The MR x (NV*W) tile at c; kEdge: only rows x cols of it are stored.
template <int NV, bool kEdge>
MAAS_BF16_TARGET void micro(int64_t kp, const uint32_t* __restrict a, const uint32_t* __restrict b,
                            float* __restrict c, int64_t ldc, int rows, int cols, bool accumulate,
                            const float* __restrict bias) {
  __m512 acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t p = 0; p < kp; ++p) {
    __m512bh bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + v * W);
    for (int i = 0; i < MR; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[i]));
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
    }
    a += MR;
    b += NR;
  }
  const int full = kEdge ? cols / W : NV;
  const __mmask16 tail = kEdge ? static_cast<__mmask16>((1u << (cols - full * W)) - 1) : 0;
  for (int i = 0; i < MR; ++i) {
    if (kEdge && i >= rows) break;
    for (int v = 0; v < NV; ++v) {
      float* pc = c + i * ldc + v * W;
      __m512 r = acc[i][v];
      if (v < full) {
        if (accumulate) r = _mm512_add_ps(r, _mm512_loadu_ps(pc));
        else if (bias) r = _mm512_add_ps(r, _mm512_set1_ps(bias[i]));
        _mm512_storeu_ps(pc, r);
      } else if (v == full && tail) {
        if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(tail, pc));
        else if (bias) r = _mm512_add_ps(r, _mm512_set1_ps(bias[i]));
        _mm512_mask_storeu_ps(pc, tail, r);
      }
    }
  }
}

using MicroFn = void (*)(int64_t, const uint32_t*, const uint32_t*, float*, int64_t, int, int, bool, const float*);
constexpr MicroFn kFull[kBf16NV] = {&micro<1, false>, &micro<2, false>, &micro<3, false>};
constexpr MicroFn kEdgeFn[kBf16NV] = {&micro<1, true>, &micro<2, true>, &micro<3, true>};

void macro(int64_t m, int64_t n, int64_t kp, const uint32_t* a, int64_t a_step, const uint32_t* b, int64_t b_step,
           float* c, int64_t ldc, bool accumulate, const float* bias) {
  for (int64_t j0 = 0, q = 0; j0 < n; j0 += NR, ++q) {
    const int cols = static_cast<int>(std::min<int64_t>(NR, n - j0));
    const int nv = (cols + W - 1) / W;
    for (int64_t i0 = 0, s = 0; i0 < m; i0 += MR, ++s) {
      const int rows = static_cast<int>(std::min<int64_t>(MR, m - i0));
      const bool edge = rows < MR || cols < nv * W;
      const MicroFn fn = edge ? kEdgeFn[nv - 1] : kFull[nv - 1];
      fn(kp, a + s * a_step, b + q * b_step, c + i0 * ldc + j0, ldc, rows, cols, accumulate,
         bias ? bias + i0 : nullptr);
    }
  }
}

// out word j = (bf16(r0[j]), bf16(r1[j])): vcvtne2ps2bf16 gives r0's 16
// values then r1's; a word permutation interleaves them.
alignas(64) constexpr uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                  8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

MAAS_BF16_TARGET void pack_across(const float* r0, const float* r1, int64_t n, uint32_t* dst) {
  const __m512i idx = _mm512_load_si512(kInterleave);
  for (int64_t j = 0; j < n; j += W) {
    const __mmask16 mask = n - j >= W ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - j)) - 1);
    const __m512 x0 = _mm512_maskz_loadu_ps(mask, r0 + j);
    const __m512 x1 = r1 ? _mm512_maskz_loadu_ps(mask, r1 + j) : _mm512_setzero_ps();
    const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
    _mm512_mask_storeu_epi32(dst + j, mask, _mm512_permutexvar_epi16(idx, h));
  }
}

// dst rows t (8 of them, ldd words apart) = word t of each of the 8 vectors.
MAAS_BF16_TARGET inline void transpose8x8(const __m256i in[8], uint32_t* dst, int64_t ldd, int count) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_castsi256_ps(in[i]);
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  const __m256 o[8] = {_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                       _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                       _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                       _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
  for (int t = 0; t < count; ++t) _mm256_storeu_ps(reinterpret_cast<float*>(dst + t * ldd), o[t]);
}

// 16 values of each of 8 rows (8 pairs) at a time: vcvtneps2bf16 keeps
// their order, so pair t of a row is word t; an 8x8 word transpose puts
// the rows side by side.
MAAS_BF16_TARGET void pack_along(const float* src, int64_t ld, int rows, int64_t k, uint32_t* dst, int64_t p) {
  __m256i v[8];
  for (int64_t q = 0; q < k; q += 2 * 8) {
    const int64_t left = k - q;
    const __mmask16 mask = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    for (int j = 0; j < 8; ++j)
      v[j] = j < rows ? (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + j * ld + q))
                      : _mm256_setzero_si256();
    transpose8x8(v, dst + (q / 2) * p, p, static_cast<int>(std::min<int64_t>(8, (left + 1) / 2)));
  }
}

// The 16 values of a gather plan entry: two masked loads (only the planned
// elements are touched), one two-source permutation, padding lanes zeroed.
MAAS_BF16_TARGET inline __m512 gather16(const float* plane, const Bf16Gather& e) {
  const float* p = plane + e.base;
  const __m512 lo = _mm512_maskz_loadu_ps(e.load_lo, p);
  const __m512 hi = _mm512_maskz_loadu_ps(e.load_hi, p + 16);
  // (maskz: GCC 12 warns on the unmasked form's undefined source)
  const __m512i idx = _mm512_maskz_cvtepu8_epi32(0xffff, _mm_loadu_si128(reinterpret_cast<const __m128i*>(e.idx)));
  return _mm512_maskz_permutex2var_ps(e.keep, lo, idx, hi);
}

// Per pair of rows, each run of 16 positions of both rows: gathered, rounded
// and interleaved by one vcvtne2ps2bf16 and one word permutation, stored
// into its panel (as pack_across does from a column matrix).
MAAS_BF16_TARGET void gather_b(const Bf16Columns& s, int64_t r0, int64_t rows, uint32_t* dst) {
  const __m512i inter = _mm512_load_si512(kInterleave);
  const int64_t vecs = (s.positions + 15) / 16, kp = bf16_pairs(rows);
  const int64_t slots = bf16_round_up(s.positions, NR) / W;
  int64_t c = r0 / s.taps, tap = r0 % s.taps;  // of the next row
  auto next_row = [&](const float*& plane, const Bf16Gather*& g) {
    plane = s.x + c * s.plane;
    g = s.plan + tap * vecs;
    if (++tap == s.taps) tap = 0, ++c;
  };
  for (int64_t q = 0; q < kp; ++q) {
    const float *pa, *pb = nullptr;
    const Bf16Gather *ga, *gb = nullptr;
    next_row(pa, ga);
    if (2 * q + 1 < rows) next_row(pb, gb);
    uint32_t* d = dst + q * NR;
    for (int64_t v0 = 0; v0 < slots; v0 += kBf16NV, d += kp * NR)
      for (int u = 0; u < kBf16NV; ++u) {
        const int64_t v = v0 + u;
        __m512i out = _mm512_setzero_si512();
        if (v < vecs) {
          const __m512 a = gather16(pa, ga[v]);
          const __m512 b = pb ? gather16(pb, gb[v]) : _mm512_setzero_ps();
          out = _mm512_permutexvar_epi16(inter, (__m512i)_mm512_cvtne2ps_pbh(b, a));
        }
        _mm512_storeu_si512(d + u * W, out);
      }
  }
}

// Per group of 8 rows, each run of 16 positions: 8 pairs of each row,
// rounded by vcvtneps2bf16, then the 8x8 word transpose of pack_along into
// the group's 8 columns of its panel.
MAAS_BF16_TARGET void gather_t(const Bf16Columns& s, int64_t r0, int64_t rows, uint32_t* dst, int64_t p) {
  const int64_t vecs = (s.positions + 15) / 16, kp = bf16_pairs(s.positions);
  __m256i t[8];
  for (int64_t j0 = 0; j0 < bf16_round_up(rows, p); j0 += 8) {
    uint32_t* d = dst + j0 / p * kp * p + j0 % p;
    if (j0 >= rows) {
      for (int64_t q = 0; q < kp; ++q) _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + q * p), _mm256_setzero_si256());
      continue;
    }
    const int live = static_cast<int>(std::min<int64_t>(8, rows - j0));
    const float* x[8];
    const Bf16Gather* g[8];
    for (int j = 0; j < live; ++j) {
      const int64_t r = r0 + j0 + j;
      x[j] = s.x + r / s.taps * s.plane;
      g[j] = s.plan + r % s.taps * vecs;
    }
    for (int j = live; j < 8; ++j) t[j] = _mm256_setzero_si256();
    for (int64_t v = 0; v < vecs; ++v) {
      for (int j = 0; j < live; ++j) t[j] = (__m256i)_mm512_cvtneps_pbh(gather16(x[j], g[j][v]));
      transpose8x8(t, d + v * 8 * p, p, static_cast<int>(std::min<int64_t>(8, kp - v * 8)));
    }
  }
}

}  // namespace

const Bf16Kernel kBf16Avx512Bf16 = {"AVX512_BF16", kNeedAvx512 | kNeedAvx512Bf16, pack_across, pack_along, macro,
                                    gather_b,      gather_t};
#else
const Bf16Kernel kBf16Avx512Bf16 = kBf16Scalar;
#endif

}  // namespace maas::detail
