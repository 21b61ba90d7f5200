// Internal: maas' single-precision matrix product (GEMM), used by matmul and
// conv2d. Not installed.
//
// All matrices are row-major with explicit row strides ("ld"). The product is
// computed BLIS-style: op(A) is packed into slivers of kGemmMR rows, B is read
// in panels of kGemmNR columns (packed, or straight from a padded row-major
// buffer), and a register-tiled micro-kernel computes one kGemmMR x kGemmNR
// tile of C per call. Every element of C is summed over k in the same order
// whatever the thread count or blocking of the other dimensions, so results
// are bit-identical for any number of threads.
//
// The loops around the micro-kernel (blocking, packing buffers, thread
// split) are gemm_drive's (gemm_driver.hpp), shared with the bf16 product.
// The kernel table has the shape of every precision's (a named struct of
// function pointers, chosen once by choose_kernel(), ops/cpu.hpp); fp32
// has one entry per build, the compiler's target (AVX-512, AVX2+FMA, or
// portable C++), which MAAS_ISA does not cap.
//
// What this is not: no complex or double types, no alpha/beta beyond
// "overwrite or accumulate"; sgemm on the portable target is Eigen's.
#pragma once

#include <cstdint>

namespace maas::detail {

#if defined(__AVX512F__)
constexpr int kGemmW = 16, kGemmMR = 8, kGemmNV = 3;  // 24 zmm accumulators
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kGemmW = 8, kGemmMR = 6, kGemmNV = 2;  // 12 ymm accumulators
#else
constexpr int kGemmW = 1, kGemmMR = 4, kGemmNV = 8;  // scalar; the compiler may vectorise
#endif
constexpr int kGemmNR = kGemmW * kGemmNV;
// Row strides of B buffers handed to gemm_packed_a are padded to a multiple
// of this (a multiple of every kGemmW), so a vector load never leaves the row.
constexpr int64_t kGemmPad = 16;
inline int64_t gemm_round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// Floats gemm_pack_a writes for op(A) [m x k].
inline int64_t gemm_packed_a_size(int64_t m, int64_t k) { return gemm_round_up(m, kGemmMR) * k; }

// Packs op(A) [m x k] into slivers of kGemmMR rows: sliver s holds rows
// [s*MR, s*MR + MR) as dst[s*k*MR + kk*MR + i]; rows past m are zero.
// trans: A is stored [k x m] with row stride lda and op(A) = A^T.
void gemm_pack_a(const float* a, int64_t lda, bool trans, int64_t m, int64_t k, float* dst);

// C [m x n] = (accumulate ? C : row_bias) + Ap * B, where Ap is op(A) packed
// by gemm_pack_a and B is row-major [k x n] with row stride ldb. Each row of
// B must be readable up to column gemm_round_up(n, kGemmPad) (the caller pads
// it; what the padding holds only reaches columns of C that are not written).
// row_bias (m values, may be null) is used only when !accumulate. One thread.
void gemm_packed_a(int64_t m, int64_t n, int64_t k, const float* ap, const float* b, int64_t ldb, float* c,
                   int64_t ldc, bool accumulate, const float* row_bias = nullptr);

// One block of the product, for callers that lay out their own operands:
// C [m x n] = (accumulate ? C : row_bias) + A [m x kc] * B [kc x n], where
// sliver s of A (kGemmMR rows, as gemm_pack_a lays them out) starts at
// a + s*a_step, and B is row-major with row stride ldb, padded as for
// gemm_packed_a. With a_step = k*kGemmMR, a + k0*kGemmMR is the k range
// [k0, k0 + kc) of a matrix packed by gemm_pack_a. One thread.
void gemm_block(int64_t m, int64_t n, int64_t kc, const float* a, int64_t a_step, const float* b, int64_t ldb,
                float* c, int64_t ldc, bool accumulate, const float* row_bias = nullptr);

// The fp32 kernel table: gemm_pack_a, the panel packing of B, and the
// macro-kernel over packed operands (A's slivers a_step floats apart, B's
// panels b_step floats apart, each kGemmNR floats a row).
struct F32Kernel {
  const char* name;
  unsigned needs;  // CpuNeed bits (ops/cpu.hpp)
  void (*pack_a)(const float* a, int64_t lda, bool trans, int64_t m, int64_t k, float* dst);
  // op(B) [k x n] into panels of kGemmNR columns (B stored [n x k] when trans).
  void (*pack_b)(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, float* dst);
  void (*macro)(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_step, const float* b, int64_t b_step,
                float* c, int64_t ldc, bool accumulate, const float* row_bias);
};
// The kernel sgemm_blocked runs, chosen once.
const F32Kernel& f32_kernel();

// C [m x n] (+)= op(A) [m x k] * op(B) [k x n]; op transposes when asked (A
// stored [k x m], B stored [n x k]). Splits C over up to max_threads OpenMP
// threads when it is large enough; 1 keeps it on the calling thread.
// With AVX2 or AVX-512 it is sgemm_blocked; on the portable path (neither)
// it is Eigen's product over fixed tiles of C (gemm.cpp), which measured
// faster there. Bit-identical for any thread count either way.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads);
// The same product on maas' own packing and micro-kernel, on every target
// (what sgemm runs with AVX2 or AVX-512; the benchmark's anchor for Eigen).
void sgemm_blocked(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads);

// dst [cols x rows] (row stride ldd) = src [rows x cols] (row stride lds)^T.
void transpose(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd);

}  // namespace maas::detail
