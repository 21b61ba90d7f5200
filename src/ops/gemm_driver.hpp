// Internal: the loops every precision's matrix product runs around its
// macro-kernel, written once: the empty-k case, the thread split, the
// blocking of C and k (BLIS' five loops) and the packing buffers. Not
// installed. sgemm_blocked (fp32, gemm.cpp) and bf16_gemm (bf16,
// lowp/bf16_gemm.cpp) instantiate it; int8_gemm (lowp/int8_gemm.cpp), whose
// B comes packed whole and whose k is not blocked, shares its thread count
// and kernel choice.
//
// A precision hands gemm_drive a Gemm policy, a small value that adapts its
// kernel table (F32Kernel in gemm.hpp, Bf16Kernel in lowp/bf16_gemm.hpp) to
// the loops:
//   using Word = ...;                    what a packed operand holds (4 bytes)
//   static constexpr int MR, NR, W;      rows of A per sliver, columns of B
//                                        per panel, lanes of one vector
//   static constexpr int64_t KC;         depth of a k block (even for bf16)
//   int64_t depth(int64_t kc) const;     words along k of a packed k block
//   void pack_a(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, Word* dst) const;
//   void pack_b(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, Word* dst) const;
//   void macro(int64_t mc, int64_t nc, int64_t kc, const Word* ap, const Word* bp, float* c, int64_t ldc,
//              bool accumulate) const;
//   static constexpr bool kInPlaceB;     macro_in_place exists (below)
//   void macro_in_place(int64_t mc, int64_t nc, int64_t kc, const Word* ap, const float* b, int64_t ldb,
//                       float* c, int64_t ldc, bool accumulate) const;
// pack_a packs op(A) [mc x kc] (A stored [kc x mc] when trans) into slivers
// of MR rows, pack_b op(B) [kc x nc] (B stored [nc x kc] when trans) into
// panels of NR columns, and macro multiplies them into C.
//
// A product whose A is a few slivers (m <= 4 MR: tokens being decoded)
// would spend about as long packing B as multiplying; where the policy can
// (kInPlaceB), a B stored row-major in whole vectors is read in place (its
// rows stay in cache from one sliver to the next).
// The micro-kernel and the order of each sum are the same, so the results
// are the same bits as through the packed path.
//
// Determinism: each thread takes a block of C whole, split along its longer
// side at vector (or sliver) multiples, and k is cut into blocks of KC that
// depend on k alone; every element of C is summed in the same order whatever
// the thread count.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "ops/gemm.hpp"
#include "ops/scratch.hpp"

namespace maas::detail {

// C [m x n] = row_bias (or 0) unless accumulate: a product over an empty k.
inline void gemm_fill_empty(int64_t m, int64_t n, float* c, int64_t ldc, bool accumulate,
                            const float* row_bias = nullptr) {
  if (accumulate) return;
  for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, row_bias ? row_bias[i] : 0.f);
}

// Threads for a product: up to max_threads, no more than its units of work,
// and one per 2^shift multiply-adds (fewer do not pay for waking a thread).
inline int gemm_threads(int max_threads, int64_t units, int64_t macs, int shift) {
  return static_cast<int>(
      std::min<int64_t>({static_cast<int64_t>(std::max(1, max_threads)), units, std::max<int64_t>(1, macs >> shift)}));
}

// Serial product over the whole of C: panels of NC columns of B and blocks
// of KC along k are packed once each, blocks of MC rows of A per k block.
template <class Gemm>
void gemm_drive_serial(const Gemm& g, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                       int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  using Word = typename Gemm::Word;
  constexpr int64_t MR = Gemm::MR, NR = Gemm::NR, KC = Gemm::KC, MC = MR * 6, NC = NR * 32;
  const int64_t depth = g.depth(std::min(KC, k));
  if constexpr (Gemm::kInPlaceB) {
    if (m <= 4 * MR && !trans_b && n % Gemm::W == 0) {
      Word* ap = scratch_as<Word>(kScratchPackA, depth * gemm_round_up(m, MR));
      for (int64_t pc = 0; pc < k; pc += KC) {
        const int64_t kc = std::min(KC, k - pc);
        g.pack_a(trans_a ? a + pc * lda : a + pc, lda, trans_a, m, kc, ap);
        g.macro_in_place(m, n, kc, ap, b + pc * ldb, ldb, c, ldc, accumulate || pc > 0);
      }
      return;
    }
  }
  Word* bp = scratch_as<Word>(kScratchPackB, depth * std::min(NC, gemm_round_up(n, NR)));
  Word* ap = scratch_as<Word>(kScratchPackA, depth * std::min(MC, gemm_round_up(m, MR)));
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      g.pack_b(trans_b ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, trans_b, kc, nc, bp);
      for (int64_t ic = 0; ic < m; ic += MC) {
        const int64_t mc = std::min(MC, m - ic);
        g.pack_a(trans_a ? a + pc * lda + ic : a + ic * lda + pc, lda, trans_a, mc, kc, ap);
        g.macro(mc, nc, kc, ap, bp, c + ic * ldc + jc, ldc, accumulate || pc > 0);
      }
    }
  }
}

// C [m x n] (+)= op(A) [m x k] * op(B) [k x n] (A stored [k x m] when
// trans_a, B [n x k] when trans_b) on up to max_threads OpenMP threads:
// threads pay off from about a million multiply-adds.
template <class Gemm>
void gemm_drive(const Gemm& g, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return gemm_fill_empty(m, n, c, ldc, accumulate);
  const bool by_cols = n >= m;
  const int64_t len = by_cols ? n : m, unit = by_cols ? Gemm::W : Gemm::MR;
  const int threads = gemm_threads(max_threads, (len + unit - 1) / unit, m * n * k, 20);
  if (threads <= 1 || omp_in_parallel()) {
    gemm_drive_serial(g, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t lo = std::min(len, gemm_round_up(len * t / nt, unit));
    const int64_t hi = std::min(len, gemm_round_up(len * (t + 1) / nt, unit));
    if (hi > lo) {
      if (by_cols)
        gemm_drive_serial(g, trans_a, trans_b, m, hi - lo, k, a, lda, trans_b ? b + lo * ldb : b + lo, ldb, c + lo,
                          ldc, accumulate);
      else
        gemm_drive_serial(g, trans_a, trans_b, hi - lo, n, k, trans_a ? a + lo : a + lo * lda, lda, b, ldb,
                          c + lo * ldc, ldc, accumulate);
    }
  }
}

}  // namespace maas::detail
