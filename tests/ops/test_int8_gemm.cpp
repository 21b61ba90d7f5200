// The int8 GEMM kernels against the plain int32 triple loop, bit for bit.
// Every kernel this CPU has runs here; ctest also runs this tag under
// MAAS_ISA=avx512 and MAAS_ISA=scalar (int8_isa_* in tests/CMakeLists.txt),
// where the default kernel is the fallback.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "ops/cpu.hpp"
#include "ops/lowp/int8_gemm.hpp"

using namespace maas::detail;

namespace {

std::vector<Int8Kernel> kernels_here() {
  std::vector<Int8Kernel> k{Int8Kernel::Scalar};
  if (cpu_features().avx512) k.push_back(Int8Kernel::Avx512);
  if (cpu_features().avx512_vnni) k.push_back(Int8Kernel::Vnni);
  return k;
}

// A [m x k] with row stride lda; the bytes past k are 255 (they must not
// count); B [k x n] row-major.
struct Case {
  int64_t m, n, k, lda;
  std::vector<uint8_t> a;
  std::vector<int8_t> b;
};

Case random_case(int64_t m, int64_t n, int64_t k, uint64_t seed) {
  std::mt19937_64 gen(seed);
  Case c{m, n, k, int8_round_up(k, 4) + 4, {}, {}};
  c.a.assign(static_cast<size_t>(m * c.lda), 255);
  c.b.resize(static_cast<size_t>(k * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t kk = 0; kk < k; ++kk) c.a[static_cast<size_t>(i * c.lda + kk)] = static_cast<uint8_t>(gen() & 0xff);
  for (auto& v : c.b) v = static_cast<int8_t>(static_cast<int>(gen() % 256) - 128);
  return c;
}

void check_all_kernels(const Case& c) {
  std::vector<int32_t> want(static_cast<size_t>(c.m * c.n));
  int8_gemm_reference(c.m, c.n, c.k, c.a.data(), c.lda, c.b.data(), c.n, false, want.data(), c.n);
  const Int8PackedB packed = int8_pack_b(c.b.data(), c.k, c.n, c.n, 1);
  for (const Int8Kernel kernel : kernels_here())
    for (int threads : {1, 2}) {
      const int64_t ldc = c.n + 3;
      std::vector<int32_t> got(static_cast<size_t>(c.m * ldc), -7);
      int8_gemm(c.m, c.a.data(), c.lda, packed, got.data(), ldc, threads, &kernel);
      INFO("m=" << c.m << " n=" << c.n << " k=" << c.k << " kernel=" << static_cast<int>(kernel)
                << " threads=" << threads);
      int64_t wrong = 0;
      for (int64_t i = 0; i < c.m; ++i) {
        for (int64_t j = 0; j < c.n; ++j)
          if (got[static_cast<size_t>(i * ldc + j)] != want[static_cast<size_t>(i * c.n + j)]) ++wrong;
        for (int64_t j = c.n; j < ldc; ++j)  // nothing written past n
          if (got[static_cast<size_t>(i * ldc + j)] != -7) ++wrong;
      }
      CHECK(wrong == 0);
    }
}

}  // namespace

TEST_CASE("int8_gemm: every kernel equals the int32 reference at odd sizes", "[int8][op]") {
  INFO("default kernel: " << int8_kernel_description());
  uint64_t seed = 1;
  for (int64_t m : {1, 5, 7, 13, 100})
    for (int64_t n : {1, 17, 64, 70, 130})
      for (int64_t k : {1, 3, 9, 33, 290}) check_all_kernels(random_case(m, n, k, seed++));
}

TEST_CASE("int8_gemm: extreme products do not saturate (vpmaddubsw would)", "[int8][op]") {
  // 255 * 127 + 255 * 127 = 64770 overflows int16; every product here is extreme.
  for (int8_t bval : {int8_t{127}, int8_t{-128}}) {
    Case c{7, 19, 1001, 1004, {}, {}};
    c.a.assign(static_cast<size_t>(c.m * c.lda), 255);
    c.b.assign(static_cast<size_t>(c.k * c.n), bval);
    check_all_kernels(c);
    // And the value itself, worked out by hand: 1001 * 255 * b.
    std::vector<int32_t> got(static_cast<size_t>(c.m * c.n));
    int8_gemm(c.m, c.a.data(), c.lda, int8_pack_b(c.b.data(), c.k, c.n, c.n, 1), got.data(), c.n, 1);
    CHECK(got[0] == 1001 * 255 * bval);
    CHECK(got.back() == 1001 * 255 * bval);
  }
}

TEST_CASE("int8_gemm: int8 rows times packed uint8 columns, and the fp32 epilogue", "[int8][op]") {
  // The convolution's form: weights (int8) broadcast, activations (uint8) packed.
  std::mt19937_64 gen(9);
  for (const auto& [m, n, k] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {5, 121, 288}, {32, 70, 9}, {13, 64, 33}}) {
    const int64_t lda = int8_round_up(k, 4);
    std::vector<int8_t> a(static_cast<size_t>(m * lda), -128);  // past k: must not count
    std::vector<uint8_t> b(static_cast<size_t>(k * n));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t kk = 0; kk < k; ++kk) a[static_cast<size_t>(i * lda + kk)] = static_cast<int8_t>(gen() % 256 - 128);
    for (auto& v : b) v = static_cast<uint8_t>(gen() % 256);
    b[0] = 255;
    a[0] = -128;
    std::vector<uint8_t> packed(static_cast<size_t>(int8_packed_bytes(k, n)), 0);
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < n; ++j)
        packed[static_cast<size_t>(int8_packed_offset(kk, j, (k + 3) / 4))] = b[static_cast<size_t>(kk * n + j)];
    std::vector<int32_t> want(static_cast<size_t>(m * n));
    int8_gemm_reference(m, n, k, a.data(), lda, b.data(), n, true, want.data(), n);
    // The epilogue's scales and offsets, per row, then per column.
    std::vector<float> scale(static_cast<size_t>(std::max(m, n))), offset(scale.size());
    for (size_t i = 0; i < scale.size(); ++i) {
      scale[i] = 0.001f * static_cast<float>(i + 1);
      offset[i] = 0.5f - 0.25f * static_cast<float>(i % 5);
    }
    for (const Int8Kernel kernel : kernels_here()) {
      INFO("m=" << m << " n=" << n << " k=" << k << " kernel=" << static_cast<int>(kernel));
      std::vector<int32_t> got(static_cast<size_t>(m * n), -7);
      int8_gemm(m, n, k, a.data(), lda, true, packed.data(), got.data(), n, nullptr, 2, &kernel);
      CHECK(got == want);
      for (bool per_row : {true, false})
        for (bool relu : {false, true}) {
          std::vector<float> out(static_cast<size_t>(m * n), -1.f);
          Int8Epilogue e{out.data(), n, scale.data(), offset.data(), per_row, relu};
          int8_gemm(m, n, k, a.data(), lda, true, packed.data(), nullptr, 0, &e, 1, &kernel);
          int64_t wrong = 0;
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              const size_t x = static_cast<size_t>(per_row ? i : j);
              float y = std::fma(static_cast<float>(want[static_cast<size_t>(i * n + j)]), scale[x], offset[x]);
              if (relu) y = std::max(y, 0.f);
              wrong += out[static_cast<size_t>(i * n + j)] != y;
            }
          CHECK(wrong == 0);
        }
    }
  }
}

TEST_CASE("int8_pack_b: column sums, a transposed source, and the bound on k", "[int8][op]") {
  // B stored [n, k] (a weight [out, in]): element (kk, j) at j * k + kk.
  const std::vector<int8_t> w = {1, -2, 3,   // column 0: k = 0, 1, 2
                                 -128, 127, 5};
  const Int8PackedB p = int8_pack_b(w.data(), 3, 2, 1, 3);
  REQUIRE(p.col_sums == std::vector<int32_t>{2, 4});
  const std::vector<uint8_t> a = {10, 20, 30, 0};
  std::vector<int32_t> c(2);
  int8_gemm(1, a.data(), 4, p, c.data(), 2, 1);
  CHECK(c[0] == 10 * 1 + 20 * -2 + 30 * 3);
  CHECK(c[1] == 10 * -128 + 20 * 127 + 30 * 5);
  CHECK_THROWS_WITH(int8_pack_b(w.data(), kInt8MaxK + 1, 1, 0, 0), Catch::Contains("could overflow"));
}
