// The GEMM kernel of gemm.hpp: packing, a register-tiled micro-kernel, its
// kernel table, and the portable path on Eigen. The loops around it (BLIS'
// five-loop scheme) and the thread split are gemm_drive's (gemm_driver.hpp).
//
// Sizes: MR x NR is the register tile of C (8 x 48 with AVX-512: 24 zmm
// accumulators, 3 loads of B and 8 broadcasts of A per step of k). sgemm
// packs KC x NC of B (panels of NR columns) and MC x KC of A (slivers of MR
// rows) at a time: KC = 768, MC = 48 (A block and one B panel 144 KB each,
// in L2), NC = 1536 (gemm_drive sets MC and NC from MR and NR). Measured on
// a Zen 5 core (1 MB L2): KC 256..1024 and MC 32..128 all land within 10% of
// each other; the larger KC (fewer passes over C) did best at 1024-2048.
#include "ops/gemm.hpp"

#include <omp.h>

#include "ops/cpu.hpp"
#include "ops/gemm_driver.hpp"

// Without AVX2 or AVX-512, sgemm hands its tiles to Eigen's product, which
// measured 1.1-1.7x the portable micro-kernel at the same SSE2 flags
// (bench/RESULTS.md). Eigen stays on the calling thread: maas splits the
// work itself.
#if !defined(__AVX512F__) && !(defined(__AVX2__) && defined(__FMA__))
#define MAAS_GEMM_EIGEN 1
#define EIGEN_DONT_PARALLELIZE
#include <Eigen/Core>
#endif

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace maas::detail {

namespace {

// ---- One vector of kGemmW floats -------------------------------------------
#if defined(__AVX512F__)
struct Vec {
  using T = __m512;
  static T zero() { return _mm512_setzero_ps(); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T bcast(float x) { return _mm512_set1_ps(x); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
};
#elif defined(__AVX2__) && defined(__FMA__)
struct Vec {
  using T = __m256;
  static T zero() { return _mm256_setzero_ps(); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T bcast(float x) { return _mm256_set1_ps(x); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
};
#else
struct Vec {
  using T = float;
  static T zero() { return 0.f; }
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T bcast(float x) { return x; }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T add(T a, T b) { return a + b; }
};
#endif

constexpr int MR = kGemmMR, NR = kGemmNR, W = kGemmW;

// ---- Micro-kernel ------------------------------------------------------------
// The MR x (NV*W) tile of C at c: (accumulate ? C : bias) + sum over p < kc of
// a[p*MR + i] * b[p*ldb + j]. kEdge: only rows x cols of the tile are stored
// (the rest of C is not touched); the sums are the same either way. R < MR:
// only the first R rows are computed (a sliver's last rows, a single
// decoded token), each summed exactly as in the full tile.
template <int NV, bool kEdge, int R = MR>
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb, float* __restrict c,
                  int64_t ldc, int rows, int cols, bool accumulate, const float* __restrict bias) {
  using V = Vec::T;
  V acc[R][NV];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = Vec::zero();
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = Vec::load(b + v * W);
    for (int i = 0; i < R; ++i) {
      const V ai = Vec::bcast(a[i]);
      for (int v = 0; v < NV; ++v) acc[i][v] = Vec::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += ldb;
  }
  if constexpr (!kEdge) {
    static_assert(R == MR, "a full tile has MR rows");
    (void)rows;
    (void)cols;
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        float* pc = c + i * ldc + v * W;
        V r = acc[i][v];
        if (accumulate) r = Vec::add(r, Vec::load(pc));
        else if (bias) r = Vec::add(r, Vec::bcast(bias[i]));
        Vec::store(pc, r);
      }
  } else {
#if defined(__AVX512F__)
    // Masked stores for the partial vector, and only the first `rows` rows
    // (the row loop is unrolled, so the accumulators stay in registers).
    const int full = cols / W;
    const __mmask16 tail = static_cast<__mmask16>((1u << (cols - full * W)) - 1);
    for (int i = 0; i < R; ++i) {
      if (i >= rows) break;
      for (int v = 0; v < NV; ++v) {
        float* pc = c + i * ldc + v * W;
        V r = acc[i][v];
        if (v < full) {
          if (accumulate) r = Vec::add(r, Vec::load(pc));
          else if (bias) r = Vec::add(r, Vec::bcast(bias[i]));
          Vec::store(pc, r);
        } else if (v == full && tail) {
          if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(tail, pc));
          else if (bias) r = Vec::add(r, Vec::bcast(bias[i]));
          _mm512_mask_storeu_ps(pc, tail, r);
        }
      }
    }
#else
    alignas(64) float t[R][NV * W];
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < NV; ++v) Vec::store(&t[i][v * W], acc[i][v]);
    for (int i = 0; i < rows; ++i) {
      float* pc = c + i * ldc;
      if (accumulate) {
        for (int j = 0; j < cols; ++j) pc[j] = t[i][j] + pc[j];
      } else if (bias) {
        for (int j = 0; j < cols; ++j) pc[j] = t[i][j] + bias[i];
      } else {
        for (int j = 0; j < cols; ++j) pc[j] = t[i][j];
      }
    }
#endif
  }
}

using MicroFn = void (*)(int64_t, const float*, const float*, int64_t, float*, int64_t, int, int, bool, const float*);

template <int... NVs>
struct MicroTable {
  // table[nv - 1][edge]
  static constexpr MicroFn full[] = {&micro_kernel<NVs, false>...};
  static constexpr MicroFn edge[] = {&micro_kernel<NVs, true>...};
};

template <int... I>
constexpr auto make_table(std::integer_sequence<int, I...>) {
  return MicroTable<(I + 1)...>{};
}
using Table = decltype(make_table(std::make_integer_sequence<int, kGemmNV>{}));

// Edge kernels computing only R < MR rows: kShort[R - 1][NV - 1].
template <int R, int... I>
constexpr std::array<MicroFn, sizeof...(I)> rows_table(std::integer_sequence<int, I...>) {
  return {&micro_kernel<I + 1, true, R>...};
}
template <int... I>
constexpr std::array<std::array<MicroFn, kGemmNV>, sizeof...(I)> short_tables(std::integer_sequence<int, I...>) {
  return {rows_table<I + 1>(std::make_integer_sequence<int, kGemmNV>{})...};
}
constexpr auto kShort = short_tables(std::make_integer_sequence<int, MR - 1>{});

// ---- Macro-kernel ------------------------------------------------------------
// C [m x n] (+)= Ap [m x kc] * B [kc x n] for one block: Ap packed in slivers
// a_step floats apart; panel jp of B starts at b + jp*b_step, rows b_ld apart.
void macro_kernel(int64_t m, int64_t n, int64_t kc, const float* ap, int64_t a_step, const float* b, int64_t b_step,
                  int64_t b_ld, float* c, int64_t ldc, bool accumulate, const float* bias) {
  for (int64_t j0 = 0, jp = 0; j0 < n; j0 += NR, ++jp) {
    const int cols = static_cast<int>(std::min<int64_t>(NR, n - j0));
    const int nv = (cols + W - 1) / W;
    const float* bp = b + jp * b_step;
    for (int64_t i0 = 0, s = 0; i0 < m; i0 += MR, ++s) {
      const int rows = static_cast<int>(std::min<int64_t>(MR, m - i0));
      const bool edge = rows < MR || cols < nv * W;
      const MicroFn fn = rows < MR ? kShort[rows - 1][nv - 1] : edge ? Table::edge[nv - 1] : Table::full[nv - 1];
      fn(kc, ap + s * a_step, bp, b_ld, c + i0 * ldc + j0, ldc, rows, cols, accumulate, bias ? bias + i0 : nullptr);
    }
  }
}

// ---- Packing -----------------------------------------------------------------
#if defined(__AVX__)
// Transposes the 8x8 block held in r[0..7] (row i in r[i]) in place.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// dst rows j (8 of them, ldd apart) = column j of the 8x8 block at src.
inline void transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  transpose8(r);
  for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + j * ldd, r[j]);
}

// The same for a block of rows < 8 rows: dst rows j get `rows` values.
inline void transpose_short8(const float* src, int64_t lds, int64_t rows, float* dst, int64_t ldd) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_loadu_ps(src + i * lds) : _mm256_setzero_ps();
  transpose8(r);
  const __m256i mask = _mm256_castps_si256(
      _mm256_cmp_ps(_mm256_set1_ps(static_cast<float>(rows)), _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), _CMP_GT_OQ));
  for (int j = 0; j < 8; ++j) _mm256_maskstore_ps(dst + j * ldd, mask, r[j]);
}
#endif

// Packs a k x n operand into panels of P columns: panel p holds columns
// [p*P, p*P + P) as dst[p*k*P + kk*P + j], columns past n zero. `rows_major`:
// element (kk, j) is src[kk*ld + j] (copied row by row); else it is
// src[j*ld + kk] (transposed). B packs with P = NR, A (as op(A)^T) with MR.
template <int P>
void pack_panels(const float* src, int64_t ld, bool rows_major, int64_t k, int64_t n, float* dst) {
  for (int64_t j0 = 0; j0 < n; j0 += P) {
    const int64_t cols = std::min<int64_t>(P, n - j0);
    float* d = dst + (j0 / P) * k * P;
    if (rows_major) {
      if (cols == P) {
        for (int64_t kk = 0; kk < k; ++kk)
          for (int j = 0; j < P; ++j) d[kk * P + j] = src[kk * ld + j0 + j];  // fixed length: vectorised
      } else {
        for (int64_t kk = 0; kk < k; ++kk) {
          for (int64_t j = 0; j < cols; ++j) d[kk * P + j] = src[kk * ld + j0 + j];
          for (int64_t j = cols; j < P; ++j) d[kk * P + j] = 0.f;
        }
      }
    } else {
      if (cols < P) std::fill(d, d + k * P, 0.f);
      transpose(src + j0 * ld, ld, cols, k, d, P);
    }
  }
}

// Panel layout of op(B) rows [0, kc) and columns [0, nc). trans: B stored
// [n x k], op(B)[kk][j] = b[j*ldb + kk].
void pack_b(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, float* dst) {
  pack_panels<NR>(b, ldb, !trans, kc, nc, dst);
}

// The macro-kernel over a packed B (panels kGemmNR floats a row).
void macro_packed(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_step, const float* b, int64_t b_step,
                  float* c, int64_t ldc, bool accumulate, const float* row_bias) {
  macro_kernel(m, n, k, a, a_step, b, b_step, NR, c, ldc, accumulate, row_bias);
}

#if defined(__AVX512F__)
constexpr const char* kTargetName = "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
constexpr const char* kTargetName = "AVX2+FMA";
#else
constexpr const char* kTargetName = "portable";
#endif

// The compiler's target: the build requires it, so it needs nothing more.
const F32Kernel kF32Target = {kTargetName, kNeedNothing, gemm_pack_a, pack_b, macro_packed};

// The fp32 kernel table as gemm_drive's policy (gemm_driver.hpp).
struct F32Gemm {
  using Word = float;
  static constexpr int MR = kGemmMR, NR = kGemmNR, W = kGemmW;
  static constexpr int64_t KC = 768;
  const F32Kernel& kern;
  int64_t depth(int64_t kc) const { return kc; }
  void pack_a(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, float* dst) const {
    kern.pack_a(a, lda, trans, mc, kc, dst);
  }
  void pack_b(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, float* dst) const {
    kern.pack_b(b, ldb, trans, kc, nc, dst);
  }
  void macro(int64_t mc, int64_t nc, int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
             bool accumulate) const {
    kern.macro(mc, nc, kc, ap, kc * MR, bp, kc * NR, c, ldc, accumulate, nullptr);
  }
  static constexpr bool kInPlaceB = true;
  void macro_in_place(int64_t mc, int64_t nc, int64_t kc, const float* ap, const float* b, int64_t ldb, float* c,
                      int64_t ldc, bool accumulate) const {
    gemm_block(mc, nc, kc, ap, kc * MR, b, ldb, c, ldc, accumulate, nullptr);
  }
};

}  // namespace

void transpose(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd) {
  int64_t i0 = 0;
#if defined(__AVX__)
  for (; i0 + 8 <= rows; i0 += 8) {
    int64_t j0 = 0;
    for (; j0 + 8 <= cols; j0 += 8) transpose8x8(src + i0 * lds + j0, lds, dst + j0 * ldd + i0, ldd);
    for (int64_t j = j0; j < cols; ++j)
      for (int64_t i = i0; i < i0 + 8; ++i) dst[j * ldd + i] = src[i * lds + j];
  }
  // Fewer than 8 rows left (the 6-row slivers of A): 8 columns at a time,
  // the missing rows read as zeros and not written.
  const int64_t left = rows - i0;
  int64_t j_done = 0;
  if (left > 0)
    for (; j_done + 8 <= cols; j_done += 8)
      transpose_short8(src + i0 * lds + j_done, lds, left, dst + j_done * ldd + i0, ldd);
  for (int64_t j = j_done; j < cols; ++j)
    for (int64_t i = i0; i < rows; ++i) dst[j * ldd + i] = src[i * lds + j];
#else
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = i0; i < rows; ++i) dst[j * ldd + i] = src[i * lds + j];
#endif
}

void gemm_pack_a(const float* a, int64_t lda, bool trans, int64_t m, int64_t k, float* dst) {
  pack_panels<MR>(a, lda, trans, k, m, dst);
}

void gemm_packed_a(int64_t m, int64_t n, int64_t k, const float* ap, const float* b, int64_t ldb, float* c,
                   int64_t ldc, bool accumulate, const float* row_bias) {
  constexpr int64_t KC = 512;
  if (k == 0) return gemm_fill_empty(m, n, c, ldc, accumulate, row_bias);
  for (int64_t k0 = 0; k0 < k; k0 += KC) {
    const int64_t kc = std::min(KC, k - k0);
    macro_kernel(m, n, kc, ap + k0 * MR, k * MR, b + k0 * ldb, NR, ldb, c, ldc, accumulate || k0 > 0,
                 k0 == 0 ? row_bias : nullptr);
  }
}

void gemm_block(int64_t m, int64_t n, int64_t kc, const float* a, int64_t a_step, const float* b, int64_t ldb,
                float* c, int64_t ldc, bool accumulate, const float* row_bias) {
  if (m <= 0 || n <= 0) return;
  if (kc <= 0) return gemm_fill_empty(m, n, c, ldc, accumulate, row_bias);
  macro_kernel(m, n, kc, a, a_step, b, NR, ldb, c, ldc, accumulate, row_bias);
}

#if MAAS_GEMM_EIGEN
namespace {

// The portable sgemm: C cut into tiles of kTileM x kTileN at fixed
// positions, each computed whole (all of k) by one thread as one Eigen
// product. Eigen picks its blocking (and so the order of each sum) from the
// shape of the product it is given, so every tile is always the same
// product, whatever the number of threads: the results are bit-identical
// for any thread count, as with the micro-kernel.
constexpr int64_t kTileM = 256, kTileN = 512;

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
using MutMap = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;

void sgemm_eigen(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads) {
  const int64_t tiles_m = (m + kTileM - 1) / kTileM, tiles_n = (n + kTileN - 1) / kTileN;
  const int64_t tiles = tiles_m * tiles_n;
  const int threads = gemm_threads(max_threads, tiles, m * n * k, 20);
  // A stored [m x k] (or [k x m] when trans_a), B [k x n] (or [n x k]).
  const ConstMap A(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
  const ConstMap B(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
  MutMap C(c, m, n, Eigen::OuterStride<>(ldc));
  auto tile = [&](int64_t t) {
    const int64_t i0 = (t / tiles_n) * kTileM, j0 = (t % tiles_n) * kTileN;
    const int64_t tm = std::min(kTileM, m - i0), tn = std::min(kTileN, n - j0);
    auto ct = C.block(i0, j0, tm, tn);
    auto run = [&](const auto& at, const auto& bt) {
      if (accumulate) ct.noalias() += at * bt;
      else ct.noalias() = at * bt;
    };
    const auto at = trans_a ? A.block(0, i0, k, tm) : A.block(i0, 0, tm, k);
    const auto bt = trans_b ? B.block(j0, 0, tn, k) : B.block(0, j0, k, tn);
    if (trans_a && trans_b) run(at.transpose(), bt.transpose());
    else if (trans_a) run(at.transpose(), bt);
    else if (trans_b) run(at, bt.transpose());
    else run(at, bt);
  };
  if (threads <= 1 || omp_in_parallel()) {
    for (int64_t t = 0; t < tiles; ++t) tile(t);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < tiles; ++t) tile(t);
}

}  // namespace
#endif

const F32Kernel& f32_kernel() {
  static const F32Kernel* const tables[] = {&kF32Target};
  static const F32Kernel& kernel = choose_kernel(tables);
  return kernel;
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return gemm_fill_empty(m, n, c, ldc, accumulate);
#if MAAS_GEMM_EIGEN
  sgemm_eigen(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate, max_threads);
#else
  sgemm_blocked(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate, max_threads);
#endif
}

void sgemm_blocked(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads) {
  gemm_drive(F32Gemm{f32_kernel()}, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate, max_threads);
}

}  // namespace maas::detail
