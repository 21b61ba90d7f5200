// The bf16 GEMM of bf16_gemm.hpp: the scalar kernel, packing, the loops
// around the macro-kernel, the thread split, and the one dispatch point.
#include "ops/lowp/bf16_gemm.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>

#include "ops/lowp/bf16_generic.hpp"
#include "ops/lowp/cpu.hpp"

namespace maas::detail {

namespace {

void scalar_pack_across(const float* r0, const float* r1, int64_t n, uint32_t* dst) {
  bf16_generic::pack_across(r0, r1, n, dst);
}
void scalar_pack_along(const float* src, int64_t ld, int rows, int64_t k, uint32_t* dst, int64_t p) {
  bf16_generic::pack_along(src, ld, rows, k, dst, p);
}
void scalar_macro(int64_t m, int64_t n, int64_t kp, const uint32_t* a, int64_t a_step, const uint32_t* b,
                  int64_t b_step, float* c, int64_t ldc, bool accumulate, const float* bias) {
  bf16_generic::macro(m, n, kp, a, a_step, b, b_step, c, ldc, accumulate, bias);
}

void scalar_gather_b(const Bf16Columns& src, int64_t r0, int64_t rows, uint32_t* dst) {
  bf16_generic::gather_b(src, r0, rows, dst);
}
void scalar_gather_t(const Bf16Columns& src, int64_t r0, int64_t rows, uint32_t* dst, int64_t p) {
  bf16_generic::gather_t(src, r0, rows, dst, p);
}

struct FreeDeleter {
  void operator()(uint32_t* p) const { std::free(p); }
};
thread_local std::unique_ptr<uint32_t, FreeDeleter> t_scratch[kBf16Slots];
thread_local int64_t t_scratch_size[kBf16Slots] = {};

const Bf16Kernel& choose() {
  const CpuFeatures& f = cpu_features();
  const Bf16Kernel* k = f.avx512_bf16 ? &kBf16Avx512Bf16 : f.avx512 ? &kBf16Avx512 : &kBf16Scalar;
  std::fprintf(stderr, "maas: bf16 matrix products on the %s kernel (%s%s)\n", k->name, isa_description().c_str(),
               f.amx_bf16 ? "; AMX is present, but its tile kernel is not written: AVX512_BF16 runs" : "");
  return *k;
}

// Serial product over the whole of C. k is cut into blocks of KC (even), so
// each pair sums in the same order whatever the split of C.
void gemm_serial(const Bf16Kernel& kern, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  constexpr int MR = kBf16MR, NR = kBf16NR;
  constexpr int64_t KC = 1024, MC = MR * 6, NC = NR * 32;
  uint32_t* bp = bf16_scratch(kBf16PackB, bf16_pairs(std::min(KC, k)) * std::min(NC, bf16_round_up(n, NR)));
  uint32_t* ap = bf16_scratch(kBf16PackA, bf16_pairs(std::min(KC, k)) * std::min(MC, bf16_round_up(m, MR)));
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc), kp = bf16_pairs(kc);
      bf16_pack(trans_b ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, trans_b, kc, nc, NR, bp);
      for (int64_t ic = 0; ic < m; ic += MC) {
        const int64_t mc = std::min(MC, m - ic);
        bf16_pack(trans_a ? a + pc * lda + ic : a + ic * lda + pc, lda, !trans_a, kc, mc, MR, ap);
        kern.macro(mc, nc, kp, ap, kp * MR, bp, kp * NR, c + ic * ldc + jc, ldc, accumulate || pc > 0, nullptr);
      }
    }
  }
}

}  // namespace

uint16_t bf16_from_float(float x) { return bf16_generic::from_float(x); }
float bf16_to_float(uint16_t h) { return bf16_generic::lo(h); }

const Bf16Kernel kBf16Scalar = {"scalar (bf16 emulated)", scalar_pack_across, scalar_pack_along, scalar_macro,
                                 scalar_gather_b,          scalar_gather_t};

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
  static const Bf16Kernel& kernel = choose();
  return kernel;
}

uint32_t* bf16_scratch(Bf16Slot slot, int64_t n) {
  auto& buf = t_scratch[slot];
  int64_t& size = t_scratch_size[slot];
  if (n > size || !buf) {
    // Grown by at least a quarter, in whole KB: aligned_alloc takes a
    // multiple of the alignment (ASan refuses anything else).
    const int64_t want = bf16_round_up(std::max<int64_t>({n, 1, size * 5 / 4}), 1024);
    buf.reset(static_cast<uint32_t*>(std::aligned_alloc(64, static_cast<size_t>(want) * sizeof(uint32_t))));
    if (!buf) throw std::bad_alloc();
    size = want;
  }
  return buf.get();
}

void bf16_pack(const float* src, int64_t ld, bool contiguous, int64_t k, int64_t n, int p, uint32_t* dst) {
  const Bf16Kernel& kern = bf16_kernel();
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

void bf16_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.f);
    return;
  }
  const Bf16Kernel& kern = bf16_kernel();
  // As sgemm: each thread takes a block of C whole, split along its longer
  // side at vector (or sliver) multiples; the k blocks do not depend on it.
  const int64_t work = m * n * k;
  const bool by_cols = n >= m;
  const int64_t len = by_cols ? n : m, unit = by_cols ? kBf16W : kBf16MR;
  const int threads = static_cast<int>(std::min<int64_t>({static_cast<int64_t>(std::max(1, max_threads)),
                                                         (len + unit - 1) / unit, std::max<int64_t>(1, work >> 20)}));
  if (threads <= 1 || omp_in_parallel()) {
    gemm_serial(kern, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t lo = std::min(len, bf16_round_up(len * t / nt, unit));
    const int64_t hi = std::min(len, bf16_round_up(len * (t + 1) / nt, unit));
    if (hi > lo) {
      if (by_cols)
        gemm_serial(kern, trans_a, trans_b, m, hi - lo, k, a, lda, trans_b ? b + lo * ldb : b + lo, ldb, c + lo, ldc,
                    accumulate);
      else
        gemm_serial(kern, trans_a, trans_b, hi - lo, n, k, trans_a ? a + lo : a + lo * lda, lda, b, ldb,
                    c + lo * ldc, ldc, accumulate);
    }
  }
}

}  // namespace maas::detail
