// int8 GEMM: packing, the three micro-kernels (VNNI, AVX-512, scalar), the
// dispatch between them, and the reference. See int8_gemm.hpp.
#include "ops/lowp/int8_gemm.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "maas/error.hpp"
#include "ops/lowp/cpu.hpp"

namespace maas::detail {

namespace {

constexpr int64_t kGroupBytes = kInt8NR * 4;  // one group of 4 k for a panel's 64 columns
constexpr int64_t kChunkRows = 96;            // rows of A per unit of work: a multiple of every MR

int32_t load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Rows of A the kernel reads: past the last row of the sliver, the last row
// again (its sums are computed and not stored).
template <int MR>
void sliver_rows(const uint8_t* a, int64_t lda, int64_t rows, const uint8_t* (&r)[MR]) {
  for (int i = 0; i < MR; ++i) r[i] = a + std::min<int64_t>(i, rows - 1) * lda;
}

#if defined(__x86_64__)

// Stores the first `cols` (<= 16 * NV) columns of a row of accumulators.
#define MAAS_STORE_ROW(acc_row, dst, cols)                                                         \
  for (int v = 0; v < NV; ++v) {                                                                  \
    const int64_t left = (cols)-16 * v;                                                           \
    if (left >= 16)                                                                               \
      _mm512_storeu_si512((dst) + 16 * v, (acc_row)[v]);                                          \
    else if (left > 0)                                                                            \
      _mm512_mask_storeu_epi32((dst) + 16 * v, static_cast<__mmask16>((1u << left) - 1), (acc_row)[v]); \
  }

constexpr int kVnniMR = 6;  // 6 rows x 4 vectors: 24 accumulators, 4 B vectors, a broadcast

template <int NV>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void kernel_vnni(int64_t rows, const uint8_t* a, int64_t lda,
                                                                        const int8_t* bp, int64_t k4, int32_t* c,
                                                                        int64_t ldc, int64_t cols) {
  constexpr int MR = kVnniMR;
  const uint8_t* r[MR];
  sliver_rows<MR>(a, lda, rows, r);
  __m512i acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  for (int64_t g = 0; g < k4; ++g) {
    const int8_t* bg = bp + g * kGroupBytes;
    __m512i b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(bg + 64 * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512i av = _mm512_set1_epi32(load4(r[i] + 4 * g));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], av, b[v]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    if (i >= rows) break;
    MAAS_STORE_ROW(acc[i], c + i * ldc, cols)
  }
}

constexpr int kAvx512MR = 4;  // 16 accumulators, 8 widened B vectors, 2 broadcasts

// u8 x s8 without vpmaddubsw's saturation: each 32-bit lane holds 4 bytes
// (k = 4g .. 4g+3); the even bytes (k, k+2) and the odd ones (k+1, k+3) are
// widened to int16 in place, and vpmaddwd sums each pair exactly in int32.
template <int NV>
__attribute__((target("avx512f,avx512bw"))) void kernel_avx512(int64_t rows, const uint8_t* a, int64_t lda,
                                                             const int8_t* bp, int64_t k4, int32_t* c, int64_t ldc,
                                                             int64_t cols) {
  constexpr int MR = kAvx512MR;
  const uint8_t* r[MR];
  sliver_rows<MR>(a, lda, rows, r);
  const __m512i low_bytes = _mm512_set1_epi16(0x00ff);
  __m512i acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  for (int64_t g = 0; g < k4; ++g) {
    const int8_t* bg = bp + g * kGroupBytes;
    __m512i be[NV], bo[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m512i b = _mm512_loadu_si512(bg + 64 * v);
      be[v] = _mm512_srai_epi16(_mm512_slli_epi16(b, 8), 8);  // bytes 0, 2 sign-extended
      bo[v] = _mm512_srai_epi16(b, 8);                        // bytes 1, 3 sign-extended
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512i av = _mm512_set1_epi32(load4(r[i] + 4 * g));
      const __m512i ae = _mm512_and_si512(av, low_bytes);  // bytes 0, 2 zero-extended
      const __m512i ao = _mm512_srli_epi16(av, 8);         // bytes 1, 3 zero-extended
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        acc[i][v] = _mm512_add_epi32(acc[i][v], _mm512_add_epi32(_mm512_madd_epi16(ae, be[v]), _mm512_madd_epi16(ao, bo[v])));
    }
  }
  for (int i = 0; i < MR; ++i) {
    if (i >= rows) break;
    MAAS_STORE_ROW(acc[i], c + i * ldc, cols)
  }
}
#undef MAAS_STORE_ROW

#endif  // __x86_64__

constexpr int kScalarMR = 4;

void kernel_scalar(int64_t rows, const uint8_t* a, int64_t lda, const int8_t* bp, int64_t k4, int32_t* c, int64_t ldc,
                   int64_t cols) {
  constexpr int MR = kScalarMR;
  const uint8_t* r[MR];
  sliver_rows<MR>(a, lda, rows, r);
  int32_t acc[MR][kInt8NR] = {};
  for (int64_t g = 0; g < k4; ++g) {
    const int8_t* bg = bp + g * kGroupBytes;
    for (int i = 0; i < MR; ++i) {
      const uint8_t* ap = r[i] + 4 * g;
      const int32_t a0 = ap[0], a1 = ap[1], a2 = ap[2], a3 = ap[3];
      for (int64_t j = 0; j < cols; ++j) {
        const int8_t* b = bg + 4 * j;
        acc[i][j] += a0 * b[0] + a1 * b[1] + a2 * b[2] + a3 * b[3];
      }
    }
  }
  for (int64_t i = 0; i < std::min<int64_t>(rows, MR); ++i) std::memcpy(c + i * ldc, acc[i], sizeof(int32_t) * cols);
}

using KernelFn = void (*)(int64_t, const uint8_t*, int64_t, const int8_t*, int64_t, int32_t*, int64_t, int64_t);

struct KernelSet {
  int mr = kScalarMR;
  KernelFn by_nv[4] = {kernel_scalar, kernel_scalar, kernel_scalar, kernel_scalar};  // 16, 32, 48, 64 columns
};

KernelSet kernels(Int8Kernel k) {
  KernelSet s;
#if defined(__x86_64__)
  if (k == Int8Kernel::Vnni) {
    s.mr = kVnniMR;
    s.by_nv[0] = kernel_vnni<1>, s.by_nv[1] = kernel_vnni<2>, s.by_nv[2] = kernel_vnni<3>, s.by_nv[3] = kernel_vnni<4>;
  } else if (k == Int8Kernel::Avx512) {
    s.mr = kAvx512MR;
    s.by_nv[0] = kernel_avx512<1>, s.by_nv[1] = kernel_avx512<2>, s.by_nv[2] = kernel_avx512<3>,
    s.by_nv[3] = kernel_avx512<4>;
  }
#else
  (void)k;
#endif
  return s;
}

bool available(Int8Kernel k) {
  const CpuFeatures& f = cpu_features();
  if (k == Int8Kernel::Vnni) return f.avx512_vnni;
  if (k == Int8Kernel::Avx512) return f.avx512;
  return true;
}

}  // namespace

Int8Kernel int8_kernel() {
  static const Int8Kernel k = available(Int8Kernel::Vnni)     ? Int8Kernel::Vnni
                              : available(Int8Kernel::Avx512) ? Int8Kernel::Avx512
                                                              : Int8Kernel::Scalar;
  return k;
}

std::string int8_kernel_description() {
  const Int8Kernel k = int8_kernel();
  std::string s = k == Int8Kernel::Vnni ? "VNNI (vpdpbusd)" : k == Int8Kernel::Avx512 ? "AVX-512 (vpmaddwd, no VNNI)" : "scalar";
  if (cpu_features().amx_int8) s += "; AMX int8 is available but maas has no tile kernel, so VNNI runs";
  return s;
}

Int8PackedB int8_pack_b(const int8_t* b, int64_t k, int64_t n, int64_t row_step, int64_t col_step) {
  MAAS_CHECK(k >= 1 && n >= 1, "int8_pack_b: empty matrix [" << k << " x " << n << "]");
  MAAS_CHECK(k <= kInt8MaxK, "int8 product: the reduction length " << k << " exceeds " << kInt8MaxK
                                                                    << ", where int32 sums of u8 x s8 could overflow");
  Int8PackedB p;
  p.k = k, p.n = n, p.k4 = (k + 3) / 4;
  const int64_t panels = (n + kInt8NR - 1) / kInt8NR;
  p.data.assign(static_cast<size_t>(panels * p.k4 * kGroupBytes), 0);
  p.col_sums.assign(static_cast<size_t>(n), 0);
  for (int64_t kk = 0; kk < k; ++kk)
    for (int64_t j = 0; j < n; ++j) {
      const int8_t v = b[kk * row_step + j * col_step];
      const int64_t panel = j / kInt8NR, col = j % kInt8NR;
      p.data[static_cast<size_t>((panel * p.k4 + kk / 4) * kGroupBytes + col * 4 + kk % 4)] = v;
      p.col_sums[static_cast<size_t>(j)] += v;
    }
  return p;
}

void int8_gemm(int64_t m, const uint8_t* a, int64_t lda, const Int8PackedB& b, int32_t* c, int64_t ldc,
               int max_threads, const Int8Kernel* kernel) {
  if (m <= 0) return;
  const Int8Kernel which = kernel != nullptr ? *kernel : int8_kernel();
  MAAS_CHECK(available(which), "int8_gemm: the requested kernel is not available on this CPU");
  const KernelSet ks = kernels(which);
  const int64_t panels = (b.n + kInt8NR - 1) / kInt8NR;
  const int64_t chunks = (m + kChunkRows - 1) / kChunkRows;
  const int64_t units = panels * chunks;
  auto run = [&](int64_t u) {
    const int64_t panel = u % panels, chunk = u / panels;
    const int64_t j0 = panel * kInt8NR, cols = std::min(kInt8NR, b.n - j0);
    const KernelFn fn = ks.by_nv[(cols + 15) / 16 - 1];
    const int8_t* bp = b.data.data() + panel * b.k4 * kGroupBytes;
    const int64_t i_end = std::min(m, (chunk + 1) * kChunkRows);
    for (int64_t i = chunk * kChunkRows; i < i_end; i += ks.mr)
      fn(std::min<int64_t>(ks.mr, i_end - i), a + i * lda, lda, bp, b.k4, c + i * ldc + j0, ldc, cols);
  };
  const int threads = static_cast<int>(std::min<int64_t>(std::max(1, max_threads), units));
  if (threads <= 1) {
    for (int64_t u = 0; u < units; ++u) run(u);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t u = 0; u < units; ++u) run(u);
}

void int8_gemm_reference(int64_t m, int64_t n, int64_t k, const uint8_t* a, int64_t lda, const int8_t* b,
                         int64_t ldb, int32_t* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t s = 0;
      for (int64_t kk = 0; kk < k; ++kk) s += int64_t{a[i * lda + kk]} * b[kk * ldb + j];
      MAAS_CHECK(s >= INT32_MIN && s <= INT32_MAX, "int8_gemm_reference: sum " << s << " does not fit int32");
      c[i * ldc + j] = static_cast<int32_t>(s);
    }
}

}  // namespace maas::detail
