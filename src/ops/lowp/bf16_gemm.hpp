// Internal: maas' bf16 matrix product (bf16 operands, fp32 accumulation), used
// by matmul and conv2d when matmul_precision() is BF16. Not installed.
//
// The operands arrive in fp32 and are rounded to bfloat16 where they are
// packed: round to nearest, ties to even, as _mm512_cvtne2ps_pbh (NaN stays a
// quiet NaN, subnormal inputs become zero of the same sign, as that
// instruction). A packed operand is a sequence of bf16 PAIRS, one uint32 each
// (the even k in the low half, the odd k in the high half), the layout
// vdpbf16ps multiplies: lane j of C gains a_lo*b_lo + a_hi*b_hi. Panels of P
// columns hold pair kp of column j at dst[kp*P + j]; A is packed as panels of
// its rows (op(A)^T, P = kBf16MR), B as panels of its columns (P = kBf16NR).
// k is padded to an even count with zeros.
//
// Accumulation: each element of C is summed over k in pair order (within a
// pair, the odd product is added first, then the even one, as vdpbf16ps is
// specified), in blocks of k fixed by the shapes alone, whatever the thread
// count: results are bit-identical for any number of threads. The fallback
// kernels (no AVX512_BF16) multiply the same rounded operands in fp32 with
// the same order.
//
// The kernel is chosen once (bf16_kernel(), by choose_kernel() of
// ops/cpu.hpp, as every precision's), and the first use logs which one
// runs. A new ISA is one kernel file and one line in bf16_kernel(). The
// loops around the macro-kernel, the packing buffers and the thread split
// are gemm_drive's (ops/gemm_driver.hpp), shared with the fp32 product.
//
// What this is not: no AMX tile kernel (where the CPU has AMX, the
// AVX512_BF16 kernel runs and the log line says so); no bf16 tensors (the
// tensor API stays fp32).
#pragma once

#include <cstdint>
#include <vector>

namespace maas::detail {

constexpr int kBf16MR = 8;   // rows of C per micro-tile (a sliver of A)
constexpr int kBf16W = 16;   // fp32 lanes of one vector
constexpr int kBf16NV = 3;   // vectors of C per micro-tile row
constexpr int kBf16NR = kBf16W * kBf16NV;

inline int64_t bf16_pairs(int64_t k) { return (k + 1) / 2; }
inline int64_t bf16_round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// Software RNE conversion, the reference every kernel matches bit for bit.
uint16_t bf16_from_float(float x);
float bf16_to_float(uint16_t h);
inline float bf16_round(float x) { return bf16_to_float(bf16_from_float(x)); }

// uint32 words (pairs) of a packed operand with n columns (rows of A, or
// columns of B) and reduction length k, in panels of p.
inline int64_t bf16_packed_size(int64_t k, int64_t n, int p) { return bf16_round_up(n, p) * bf16_pairs(k); }

// Convolution operands packed straight from the image (im2col fused with the
// packing, no fp32 column matrix). Column row r of one image is tap
// r % taps (tap = i*kw + j) of channel r / taps; its value at output
// position p = oh*Wo + ow is x[c, oh*stride_h + i*dil_h - pad_h,
// ow*stride_w + j*dil_w - pad_w], zero in the padding. A gather plan holds,
// for each tap and each run of 16 positions [16v, 16v + 16), where those 16
// values lie in one input plane: lane l is plane[base + idx[l]] where bit l
// of keep is set and zero where it is not (padding, or p >= P). Every idx
// is below 32, and only the elements of plane[base, base + 32) under the
// load masks (load_lo for the first 16, load_hi for the next) are read, all
// inside the plane.
struct Bf16Gather {
  int32_t base;
  uint16_t keep, load_lo, load_hi;
  uint8_t idx[16];
};

struct Bf16ConvShape {
  int64_t H, W, kh, kw, Ho, Wo, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};

// The plan, entry tap * ceil(P/16) + v. Empty when some run of 16 positions
// spans 32 or more elements of a plane (wide strides or dilations, narrow
// outputs of wide inputs) or a plane holds 2^31 or more elements: the caller
// then builds the column matrix and packs it.
std::vector<Bf16Gather> bf16_gather_plan(const Bf16ConvShape& s);

// Column rows [r0, r0 + rows) of one image, gathered by a plan.
struct Bf16Columns {
  const float* x;             // the image, C planes
  int64_t plane;              // H*W
  int64_t taps;               // kh*kw
  int64_t positions;          // P = Ho*Wo
  const Bf16Gather* plan;
};

// One ISA's kernel: packing primitives and the macro-kernel.
// Its shape is every precision's (see choose_kernel(), ops/cpu.hpp).
struct Bf16Kernel {
  const char* name;
  unsigned needs;  // CpuNeed bits
  // dst[j] = pair(r0[j], r1 ? r1[j] : 0) for j < n (two rows of a row-major
  // operand whose pairs run down its columns).
  void (*pack_across)(const float* r0, const float* r1, int64_t n, uint32_t* dst);
  // dst[kp*p + j] = pair(src[j*ld + 2kp], src[j*ld + 2kp + 1]) for j < rows
  // (<= 8) and kp < pairs(k), zero past k (rows whose pairs are contiguous).
  void (*pack_along)(const float* src, int64_t ld, int rows, int64_t k, uint32_t* dst, int64_t p);
  // C [m x n] = (accumulate ? C : row_bias or 0) + A * B over kp pairs: A's
  // sliver s (kBf16MR rows) at a + s*a_step, B's panel q (kBf16NR columns)
  // at b + q*b_step. Stores only inside [m x n].
  void (*macro)(int64_t m, int64_t n, int64_t kp, const uint32_t* a, int64_t a_step, const uint32_t* b,
                int64_t b_step, float* c, int64_t ldc, bool accumulate, const float* row_bias);
  // Column rows [r0, r0 + rows) of src packed as B (pairs over the rows,
  // panels of kBf16NR positions): the words bf16_pack(col, ldc, false, rows,
  // P, kBf16NR, dst) writes for the column matrix col of those rows.
  void (*gather_b)(const Bf16Columns& src, int64_t r0, int64_t rows, uint32_t* dst);
  // The same rows with pairs over the positions, in panels of p rows (a
  // multiple of 8: kBf16MR for an A operand, kBf16NR for B): the words of
  // bf16_pack(col, ldc, true, P, rows, p, dst).
  void (*gather_t)(const Bf16Columns& src, int64_t r0, int64_t rows, uint32_t* dst, int64_t p);
};

// The kernel for this CPU (after MAAS_ISA), chosen at the first call, which
// logs it once on stderr.
const Bf16Kernel& bf16_kernel();

// Packs the logical operand X [k x n] into panels of p columns (zero past n
// and past k): element (kk, j) is src[kk*ld + j], or with `contiguous`
// src[j*ld + kk]. A [m x k] packs as X = A^T (contiguous unless A is stored
// transposed); B [k x n] as X = B (contiguous when B is stored transposed).
void bf16_pack(const float* src, int64_t ld, bool contiguous, int64_t k, int64_t n, int p, uint32_t* dst);

// C [m x n] (+)= op(A) [m x k] * op(B) [k x n], as sgemm (gemm.hpp) with bf16
// operands: op transposes when asked (A stored [k x m], B stored [n x k]).
// Splits C over up to max_threads OpenMP threads when large enough.
void bf16_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads);

// The kernels, for bf16_kernel() and the tests (bf16_kernel() picks one the
// CPU runs; the tests call others only where cpu_features() has them). On
// CPUs other than x86-64 the two AVX-512 ones are the scalar kernel.
extern const Bf16Kernel kBf16Scalar;
extern const Bf16Kernel kBf16Avx512;      // AVX-512F: bf16 emulated in fp32 FMAs
extern const Bf16Kernel kBf16Avx512Bf16;  // vdpbf16ps

}  // namespace maas::detail
