// int8 GEMM: packing, the three micro-kernels (VNNI, AVX-512, scalar), their
// kernel tables, and the reference. See int8_gemm.hpp.
#include "ops/lowp/int8_gemm.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "maas/error.hpp"
#include "ops/cpu.hpp"
#include "ops/gemm_driver.hpp"

namespace maas::detail {

namespace {

constexpr int64_t kGroupBytes = kInt8NR * 4;  // one group of 4 k for a panel's 64 columns
constexpr int64_t kChunkRows = 96;            // rows of A per unit of work: a multiple of kMR
// Rows per micro-kernel call, every kernel: 4 rows x 64 columns is 16
// accumulators; 6 or 8 rows measured no faster with VNNI.
constexpr int kMR = 4;

int32_t load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Where a tile goes: int32 C, or the epilogue's fp32 output.
struct Tile {
  int64_t rows, cols;    // valid rows (<= MR) and columns (<= 64)
  int32_t* c;            // C at the tile's corner (no epilogue)
  int64_t ldc;
  const Int8Epilogue* e; // or null
  int64_t row0, col0;    // the tile's corner in C
};

// Rows of A the kernel reads: past the last valid row, the last row again
// (its sums are computed and not stored).
template <int MR>
void sliver_rows(const uint8_t* a, int64_t lda, int64_t rows, const uint8_t* (&r)[MR]) {
  for (int i = 0; i < MR; ++i) r[i] = a + std::min<int64_t>(i, rows - 1) * lda;
}

// The epilogue of one value, as the vector code computes it (one fma).
float epilogue_value(const Int8Epilogue& e, int32_t acc, int64_t i, int64_t j) {
  const int64_t x = e.per_row ? i : j;
  const float y = std::fma(static_cast<float>(acc), e.scale[x], e.offset[x]);
  return e.relu ? std::max(y, 0.f) : y;
}

#if defined(__x86_64__)

template <int MR, int NV>
__attribute__((target("avx512f,avx512bw"))) inline void store_tile(const __m512i (&acc)[MR][NV], const Tile& t) {
  for (int i = 0; i < MR; ++i) {
    if (i >= t.rows) break;
    for (int v = 0; v < NV; ++v) {
      const int64_t left = t.cols - 16 * v;
      if (left <= 0) break;
      const __mmask16 mask = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      if (t.e == nullptr) {
        _mm512_mask_storeu_epi32(t.c + i * t.ldc + 16 * v, mask, acc[i][v]);
        continue;
      }
      const Int8Epilogue& e = *t.e;
      const int64_t row = t.row0 + i, col = t.col0 + 16 * v;
      __m512 scale, offset;
      if (e.per_row) {
        scale = _mm512_set1_ps(e.scale[row]);
        offset = _mm512_set1_ps(e.offset[row]);
      } else {
        scale = _mm512_maskz_loadu_ps(mask, e.scale + col);
        offset = _mm512_maskz_loadu_ps(mask, e.offset + col);
      }
      // maskz forms: GCC 12 warns of the undefined source the plain ones pass.
      __m512 y = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, acc[i][v]), scale, offset);
      if (e.relu) y = _mm512_maskz_max_ps(0xffff, y, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(e.out + row * e.ldo + col, mask, y);
    }
  }
}

// acc + the four u8 x s8 products of each lane (u unsigned, s signed).
// Inline assembly, not _mm512_dpbusd_epi32: GCC 12 does not tie that
// builtin's accumulator to its destination, and in the micro-kernel's loop
// copied every accumulator twice per step and spilled one to the stack
// (1.4x slower at 1024^3).
__attribute__((target("avx512f,avx512vnni"))) inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}

// vpdpbusd multiplies unsigned bytes of its first source by signed bytes of
// its second: A broadcast as the unsigned side (A uint8), or as the signed
// side (A int8, B uint8).
template <int NV, bool ASigned>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void kernel_vnni(const uint8_t* a, int64_t lda,
                                                                        const uint8_t* bp, int64_t k4, const Tile& t) {
  const uint8_t* r[kMR];
  sliver_rows<kMR>(a, lda, t.rows, r);
  __m512i acc[kMR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  for (int64_t g = 0; g < k4; ++g) {
    const uint8_t* bg = bp + g * kGroupBytes;
    __m512i b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(bg + 64 * v);
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      const __m512i av = _mm512_set1_epi32(load4(r[i] + 4 * g));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        acc[i][v] = ASigned ? dpbusd(acc[i][v], b[v], av) : dpbusd(acc[i][v], av, b[v]);
    }
  }
  store_tile<kMR, NV>(acc, t);
}

// Bytes 0, 2 and 1, 3 of each 32-bit lane widened to int16 in place.
template <bool Signed>
__attribute__((target("avx512f,avx512bw"))) inline __m512i even_bytes(__m512i x) {
  return Signed ? _mm512_srai_epi16(_mm512_slli_epi16(x, 8), 8) : _mm512_and_si512(x, _mm512_set1_epi16(0x00ff));
}
template <bool Signed>
__attribute__((target("avx512f,avx512bw"))) inline __m512i odd_bytes(__m512i x) {
  return Signed ? _mm512_srai_epi16(x, 8) : _mm512_srli_epi16(x, 8);
}

// u8 x s8 without vpmaddubsw's saturation: the even bytes (k, k+2) and the
// odd ones (k+1, k+3) of each lane are widened to int16, and vpmaddwd sums
// each pair exactly in int32.
template <int NV, bool ASigned>
__attribute__((target("avx512f,avx512bw"))) void kernel_avx512(const uint8_t* a, int64_t lda, const uint8_t* bp,
                                                             int64_t k4, const Tile& t) {
  const uint8_t* r[kMR];
  sliver_rows<kMR>(a, lda, t.rows, r);
  __m512i acc[kMR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  for (int64_t g = 0; g < k4; ++g) {
    const uint8_t* bg = bp + g * kGroupBytes;
    __m512i be[NV], bo[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m512i b = _mm512_loadu_si512(bg + 64 * v);
      be[v] = even_bytes<!ASigned>(b);
      bo[v] = odd_bytes<!ASigned>(b);
    }
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      const __m512i av = _mm512_set1_epi32(load4(r[i] + 4 * g));
      const __m512i ae = even_bytes<ASigned>(av), ao = odd_bytes<ASigned>(av);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        acc[i][v] = _mm512_add_epi32(acc[i][v], _mm512_add_epi32(_mm512_madd_epi16(ae, be[v]), _mm512_madd_epi16(ao, bo[v])));
    }
  }
  store_tile<kMR, NV>(acc, t);
}

#endif  // __x86_64__

template <int NV, bool ASigned>
void kernel_scalar(const uint8_t* a, int64_t lda, const uint8_t* bp, int64_t k4, const Tile& t) {
  using AT = std::conditional_t<ASigned, int8_t, uint8_t>;
  using BT = std::conditional_t<ASigned, uint8_t, int8_t>;
  const uint8_t* r[kMR];
  sliver_rows<kMR>(a, lda, t.rows, r);
  int32_t acc[kMR][kInt8NR] = {};
  for (int64_t g = 0; g < k4; ++g) {
    const BT* bg = reinterpret_cast<const BT*>(bp + g * kGroupBytes);
    for (int i = 0; i < kMR; ++i) {
      const AT* ap = reinterpret_cast<const AT*>(r[i] + 4 * g);
      const int32_t a0 = ap[0], a1 = ap[1], a2 = ap[2], a3 = ap[3];
      for (int64_t j = 0; j < t.cols; ++j) {
        const BT* b = bg + 4 * j;
        acc[i][j] += a0 * b[0] + a1 * b[1] + a2 * b[2] + a3 * b[3];
      }
    }
  }
  for (int64_t i = 0; i < std::min<int64_t>(t.rows, kMR); ++i) {
    if (t.e == nullptr) {
      std::memcpy(t.c + i * t.ldc, acc[i], sizeof(int32_t) * static_cast<size_t>(t.cols));
      continue;
    }
    float* out = t.e->out + (t.row0 + i) * t.e->ldo + t.col0;
    for (int64_t j = 0; j < t.cols; ++j) out[j] = epilogue_value(*t.e, acc[i][j], t.row0 + i, t.col0 + j);
  }
}

using KernelFn = void (*)(const uint8_t*, int64_t, const uint8_t*, int64_t, const Tile&);

// One instruction set's kernels (the shape of every precision's table, see
// choose_kernel() in ops/cpu.hpp): by_nv[s][v] for a_signed = s and
// 16 * (v + 1) columns.
struct Int8Kernels {
  const char* name;
  unsigned needs;  // CpuNeed bits
  Int8Kernel id;
  KernelFn by_nv[2][4];
};

#define MAAS_KERNEL_SET(name)                                                                                    \
  {{name<1, false>, name<2, false>, name<3, false>, name<4, false>},                                             \
   {name<1, true>, name<2, true>, name<3, true>, name<4, true>}}

const Int8Kernels kScalar = {"scalar", kNeedNothing, Int8Kernel::Scalar, MAAS_KERNEL_SET(kernel_scalar)};
#if defined(__x86_64__)
const Int8Kernels kAvx512 = {"AVX-512 (vpmaddwd, no VNNI)", kNeedAvx512, Int8Kernel::Avx512,
                             MAAS_KERNEL_SET(kernel_avx512)};
const Int8Kernels kVnni = {"VNNI (vpdpbusd)", kNeedAvx512 | kNeedAvx512Vnni, Int8Kernel::Vnni,
                           MAAS_KERNEL_SET(kernel_vnni)};
const Int8Kernels* const kTables[] = {&kVnni, &kAvx512, &kScalar};  // richest first
#else
const Int8Kernels* const kTables[] = {&kScalar};
#endif
#undef MAAS_KERNEL_SET

// The table of kernel k, or null where this build has none.
const Int8Kernels* table(Int8Kernel k) {
  for (const Int8Kernels* t : kTables)
    if (t->id == k) return t;
  return nullptr;
}

const Int8Kernels& chosen() {
  static const Int8Kernels& kernels = choose_kernel(kTables);
  return kernels;
}

}  // namespace

Int8Kernel int8_kernel() { return chosen().id; }

std::string int8_kernel_description() {
  std::string s = chosen().name;
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

void int8_gemm(int64_t m, int64_t n, int64_t k, const void* a_bytes, int64_t lda, bool a_signed, const void* b_packed,
               int32_t* c, int64_t ldc, const Int8Epilogue* epilogue, int max_threads, const Int8Kernel* kernel) {
  if (m <= 0 || n <= 0) return;
  MAAS_CHECK(k >= 1 && k <= kInt8MaxK, "int8_gemm: the reduction length " << k << " is outside [1, " << kInt8MaxK << "]");
  const Int8Kernels* ks = kernel != nullptr ? table(*kernel) : &chosen();
  MAAS_CHECK(ks != nullptr && cpu_runs(ks->needs), "int8_gemm: the requested kernel is not available on this CPU");
  const auto* a = static_cast<const uint8_t*>(a_bytes);
  const auto* b = static_cast<const uint8_t*>(b_packed);
  const int64_t k4 = (k + 3) / 4;
  const int64_t panels = (n + kInt8NR - 1) / kInt8NR;
  const int64_t chunks = (m + kChunkRows - 1) / kChunkRows;
  const int64_t units = panels * chunks;
  auto run = [&](int64_t u) {
    const int64_t panel = u % panels, chunk = u / panels;
    const int64_t j0 = panel * kInt8NR, cols = std::min(kInt8NR, n - j0);
    const KernelFn fn = ks->by_nv[a_signed ? 1 : 0][(cols + 15) / 16 - 1];
    const uint8_t* bp = b + panel * k4 * kGroupBytes;
    const int64_t i_end = std::min(m, (chunk + 1) * kChunkRows);
    for (int64_t i = chunk * kChunkRows; i < i_end; i += kMR) {
      const Tile t{std::min<int64_t>(kMR, i_end - i), cols, epilogue ? nullptr : c + i * ldc + j0, ldc, epilogue, i, j0};
      fn(a + i * lda, lda, bp, k4, t);
    }
  };
  // A thread per 2^21 multiply-adds at least: a batch-1 convolution stays
  // on one thread, where waking a second costs more than it saves.
  const int64_t macs = m * n * k4 * 4;
  const int threads = gemm_threads(max_threads, units, macs, 21);
  if (threads <= 1) {
    for (int64_t u = 0; u < units; ++u) run(u);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t u = 0; u < units; ++u) run(u);
}

void int8_gemm_reference(int64_t m, int64_t n, int64_t k, const void* a_bytes, int64_t lda, const void* b_bytes,
                         int64_t ldb, bool a_signed, int32_t* c, int64_t ldc) {
  const auto* a = static_cast<const uint8_t*>(a_bytes);
  const auto* b = static_cast<const uint8_t*>(b_bytes);
  auto as_int = [](uint8_t byte, bool is_signed) -> int64_t {
    return is_signed ? static_cast<int64_t>(static_cast<int8_t>(byte)) : static_cast<int64_t>(byte);
  };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t s = 0;
      for (int64_t kk = 0; kk < k; ++kk) s += as_int(a[i * lda + kk], a_signed) * as_int(b[kk * ldb + j], !a_signed);
      MAAS_CHECK(s >= INT32_MIN && s <= INT32_MAX, "int8_gemm_reference: sum " << s << " does not fit int32");
      c[i * ldc + j] = static_cast<int32_t>(s);
    }
}

}  // namespace maas::detail
