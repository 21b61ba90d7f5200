// Internal: the int8 matrix product of quantized inference. Not installed.
//
//   C [m x n] (int32) = A [m x k] * B [k x n], one operand uint8, the other int8
//
// Activations are quantized with a zero point (uint8), weights
// symmetrically (int8); the caller folds zero_point * (sum over k of the
// weights) into its offsets. Two forms, the same kernels:
//   A uint8 (activation rows), B int8 (weights, packed by int8_pack_b):
//     a dense layer, C [batch x units];
//   A int8 (weight rows), B uint8 (im2col columns, packed by the caller):
//     a convolution, C [filters x positions], which is already NCHW.
// B is packed in panels of kInt8NR = 64 columns, the k dimension in groups
// of 4: panel p, group g holds, for each of its 64 columns j, the 4 bytes
// B[4g .. 4g+3][64p + j] (zero past k and n). That is the operand layout of
// vpdpbusd: one 64-byte vector is 16 columns x 4 k. The micro-kernel
// broadcasts 4 bytes of a row of A and multiply-adds them into 16 columns
// at a time, 4 rows x 64 columns per call, in int32. Its store writes int32
// C, or fp32 scale * C + offset (per row or per column, ReLU optional): the
// dequantization of a layer, with no int32 pass over memory.
//
// Kernel tables, chosen once by choose_kernel() (ops/cpu.hpp):
//   Vnni    vpdpbusd: its four u8 x s8 products (each fits int16) are
//           summed with the int32 lane without intermediate saturation
//           (vpdpbusds would saturate the final sum; vpdpbusd wraps, and no
//           sum here reaches 2^31).
//   Avx512  without VNNI: the bytes are widened to int16 and multiplied by
//           vpmaddwd (exact: int16 pairs summed into int32). Not vpmaddubsw,
//           whose sum of two u8 x s8 products saturates at int16 (255 * 127
//           * 2 = 64770 > 32767) and so would change answers.
//   Scalar  portable C++.
// Every kernel gives exactly the int32 sums (bit-exact, for any thread
// count): k is limited to kInt8MaxK, where |sum| <= k * 255 * 128 < 2^31.
// Where AMX int8 is reported, the VNNI kernel runs (there is no tile kernel)
// and int8_kernel_description() says so.
//
// What this is not: no int8 x int8 or uint8 x uint8 products, no blocking
// of k (a panel of B is 64 * k bytes, in L1 up to k ~ 400), no AMX tiles.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace maas::detail {

constexpr int64_t kInt8NR = 64;        // columns per packed panel
constexpr int64_t kInt8MaxK = 65536;   // k * 255 * 128 < 2^31
inline int64_t int8_round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

enum class Int8Kernel { Scalar, Avx512, Vnni };
// The kernel int8_gemm runs on this CPU (after MAAS_ISA), chosen once.
Int8Kernel int8_kernel();
// "VNNI (vpdpbusd)", "AVX-512 (vpmaddwd, no VNNI)", "scalar"; where AMX int8
// is reported the text says that the VNNI kernel stands in for it.
std::string int8_kernel_description();

struct Int8PackedB {
  int64_t k = 0, n = 0;
  int64_t k4 = 0;                // groups of 4 along k: ceil(k / 4)
  std::vector<int8_t> data;      // panels of k4 * 256 bytes
  std::vector<int32_t> col_sums; // sum over k of B[.][j], per column
};

// Packs B [k x n]: element (kk, j) is b[kk * row_step + j * col_step]
// (row-major: row_step = ldb, col_step = 1; a weight stored [n, k]:
// row_step = 1, col_step = k). Throws maas::Error when k > kInt8MaxK.
Int8PackedB int8_pack_b(const int8_t* b, int64_t k, int64_t n, int64_t row_step, int64_t col_step);

// Bytes of a packed operand of k x n: panels of 64 columns, groups of 4 k.
inline int64_t int8_packed_bytes(int64_t k, int64_t n) {
  return int8_round_up(n, kInt8NR) * int8_round_up(k, 4);
}
// The offset of element (kk, j) in a packed operand with k4 groups.
inline int64_t int8_packed_offset(int64_t kk, int64_t j, int64_t k4) {
  return ((j / kInt8NR) * k4 + kk / 4) * kInt8NR * 4 + (j % kInt8NR) * 4 + kk % 4;
}

// Optional: instead of int32 C, write fp32
//   out[i * ldo + j] = scale[x] * C[i][j] + offset[x]   (one fma; x = i when
// per_row, else j), clamped at 0 when relu.
struct Int8Epilogue {
  float* out = nullptr;
  int64_t ldo = 0;
  const float* scale = nullptr;
  const float* offset = nullptr;
  bool per_row = false;
  bool relu = false;
};

// C [m x n] = A [m x k] * B [k x n], where A's rows are read as they are
// (row i at a + i * lda, readable up to int8_round_up(k, 4) bytes; what lies
// past k is multiplied by zero) and B is packed (int8_packed_offset; zero
// past k). The types: a_signed false: A uint8, B int8 (a weight packed by
// int8_pack_b, activations in A); a_signed true: A int8, B uint8 (weights
// in A, activations packed in B). With `epilogue`, C is not written (c may
// be null) and the epilogue's output is. Splits the work over up to
// max_threads OpenMP threads. `kernel` forces a kernel the CPU must have
// (tests); by default int8_kernel().
void int8_gemm(int64_t m, int64_t n, int64_t k, const void* a, int64_t lda, bool a_signed, const void* b_packed,
               int32_t* c, int64_t ldc, const Int8Epilogue* epilogue, int max_threads,
               const Int8Kernel* kernel = nullptr);

// The same with B packed by int8_pack_b (A uint8).
inline void int8_gemm(int64_t m, const uint8_t* a, int64_t lda, const Int8PackedB& b, int32_t* c, int64_t ldc,
                      int max_threads, const Int8Kernel* kernel = nullptr) {
  int8_gemm(m, b.n, b.k, a, lda, false, b.data.data(), c, ldc, nullptr, max_threads, kernel);
}

// The plain triple loop, in int64 then checked to fit int32: the reference
// the kernels are tested against. B is row-major [k x n] (stride ldb); A
// holds uint8 and B int8, or, with a_signed, A int8 and B uint8.
void int8_gemm_reference(int64_t m, int64_t n, int64_t k, const void* a, int64_t lda, const void* b, int64_t ldb,
                         bool a_signed, int32_t* c, int64_t ldc);

}  // namespace maas::detail
