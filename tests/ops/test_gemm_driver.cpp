// The shared GEMM driver (src/ops/gemm_driver.hpp), the kernel choice every
// precision makes (choose_kernel, src/ops/cpu.hpp) and the one
// precision decision of the ops (src/ops/product.hpp).
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "maas/maas.hpp"
#include "ops/cpu.hpp"
#include "ops/gemm.hpp"
#include "ops/gemm_driver.hpp"
#include "ops/lowp/bf16_gemm.hpp"
#include "ops/lowp/int8_gemm.hpp"
#include "ops/product.hpp"

using namespace maas;

namespace {

struct FakeKernel {
  const char* name;
  unsigned needs;
};

std::vector<float> normals(int64_t n, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = gen.normal();
  return v;
}

}  // namespace

TEST_CASE("choose_kernel takes the richest table the CPU runs", "[gemm]") {
  const auto& f = detail::cpu_features();
  const FakeKernel bf16{"bf16", detail::kNeedAvx512 | detail::kNeedAvx512Bf16};
  const FakeKernel avx512{"avx512", detail::kNeedAvx512};
  const FakeKernel scalar{"scalar", detail::kNeedNothing};
  const FakeKernel* const tables[] = {&bf16, &avx512, &scalar};
  const FakeKernel& k = detail::choose_kernel(tables);
  if (f.avx512_bf16) CHECK(&k == &bf16);
  else if (f.avx512) CHECK(&k == &avx512);
  else CHECK(&k == &scalar);
  CHECK(detail::cpu_runs(detail::kNeedNothing));
  CHECK(detail::cpu_runs(detail::kNeedAvx512Vnni) == f.avx512_vnni);
  // Every precision's table is chosen the same way.
  CHECK(std::string(detail::f32_kernel().name).size() > 0);
  CHECK(detail::cpu_runs(detail::bf16_kernel().needs));
  CHECK(!detail::int8_kernel_description().empty());
}

TEST_CASE("an empty k writes zeros, or leaves C, in every precision", "[gemm][bf16]") {
  for (const Precision p : {Precision::FP32, Precision::BF16}) {
    std::vector<float> c(6 * 5, 3.f);
    detail::product_gemm(p, false, false, 6, 5, 0, nullptr, 0, nullptr, 5, c.data(), 5, true, 2);
    CHECK(c == std::vector<float>(30, 3.f));
    detail::product_gemm(p, false, false, 6, 5, 0, nullptr, 0, nullptr, 5, c.data(), 5, false, 2);
    CHECK(c == std::vector<float>(30, 0.f));
  }
  const float bias[3] = {1.f, 2.f, 3.f};
  std::vector<float> c(3 * 4, 7.f);
  detail::gemm_block(3, 4, 0, nullptr, 0, nullptr, 16, c.data(), 4, false, bias);
  CHECK(c == std::vector<float>{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
}

TEST_CASE("product_gemm is sgemm or bf16_gemm, bit for bit, for any thread count", "[gemm][bf16]") {
  const int64_t m = 67, n = 130, k = 1100;  // more than one k block of either kernel
  const std::vector<float> a = normals(m * k, 1), b = normals(k * n, 2);
  for (const Precision p : {Precision::FP32, Precision::BF16}) {
    std::vector<float> want(static_cast<size_t>(m * n)), got(want.size());
    if (p == Precision::BF16) detail::bf16_gemm(false, true, m, n, k, a.data(), k, b.data(), k, want.data(), n, false, 1);
    else detail::sgemm(false, true, m, n, k, a.data(), k, b.data(), k, want.data(), n, false, 1);
    for (const int threads : {1, 2, 3}) {
      detail::product_gemm(p, false, true, m, n, k, a.data(), k, b.data(), k, got.data(), n, false, threads);
      CHECK(got == want);
    }
  }
}

TEST_CASE("gemm_threads: bounded by the request, the units and the work", "[gemm]") {
  CHECK(detail::gemm_threads(8, 100, int64_t{1} << 30, 20) == 8);
  CHECK(detail::gemm_threads(8, 3, int64_t{1} << 30, 20) == 3);
  CHECK(detail::gemm_threads(8, 100, int64_t{3} << 20, 20) == 3);
  CHECK(detail::gemm_threads(0, 100, 10, 20) == 1);
}

TEST_CASE("the product precision follows set_matmul_precision", "[precision]") {
  const Precision before = matmul_precision();
  set_matmul_precision(Precision::FP32);
  CHECK(detail::product_precision() == Precision::FP32);
  set_matmul_precision(Precision::BF16);
  CHECK(detail::product_precision() == Precision::BF16);
  set_matmul_precision(Precision::FP32);
  CHECK(detail::product_precision() == Precision::FP32);
  set_matmul_precision(before);
  // AMX is reported, never as a kernel that runs.
  const std::string isa = isa_description();
  if (detail::cpu_features().amx_bf16) CHECK(isa.find("no tile kernel") != std::string::npos);
}

TEST_CASE("each row of C is the same bits whatever the number of rows (B read in place or packed)", "[gemm]") {
  // Decoded tokens (up to 4 slivers of rows, B read in place) and the same
  // rows inside a larger batch (B packed) must give the same logits, so that a text sampled
  // alone and batched with others is the same. k spans two k blocks.
  for (const int64_t n : {8, 64, 200, 72}) {
    const int64_t k = 1000, m = 40;
    const std::vector<float> a = normals(m * k, 11), b = normals(k * n, 12);
    std::vector<float> all(static_cast<size_t>(m * n));
    detail::sgemm(false, false, m, n, k, a.data(), k, b.data(), n, all.data(), n, false, 1);
    for (const int64_t rows : {1, 2, 5, 6, 7, 13, 24, 25, 37}) {
      std::vector<float> some(static_cast<size_t>(rows * n), 1.f);
      detail::sgemm(false, false, rows, n, k, a.data() + 3 * k, k, b.data(), n, some.data(), n, false, 2);
      CAPTURE(n, rows);
      CHECK(std::equal(some.begin(), some.end(), all.begin() + 3 * n));
    }
  }
}
