// The precision of matrix products: the public setting and the CPU report
// (maas/precision.hpp), and the one decision every op's products follow
// (ops/product.hpp).
#include <atomic>

#include "maas/error.hpp"
#include "maas/precision.hpp"
#include "ops/cpu.hpp"
#include "ops/gemm.hpp"
#include "ops/lowp/bf16_gemm.hpp"
#include "ops/product.hpp"

namespace maas {

namespace {
std::atomic<Precision> g_precision{Precision::FP32};
}

void set_matmul_precision(Precision p) { g_precision.store(p, std::memory_order_relaxed); }
Precision matmul_precision() { return g_precision.load(std::memory_order_relaxed); }

std::string to_string(Precision p) { return p == Precision::BF16 ? "bf16" : "fp32"; }

Precision precision_from_string(const std::string& name) {
  if (name == "fp32") return Precision::FP32;
  if (name == "bf16") return Precision::BF16;
  MAAS_FAIL("precision '" << name.substr(0, 40) << "' is not one of fp32, bf16");
}

Isa active_isa() {
  const auto& f = detail::cpu_features();
  if (f.amx_bf16) return Isa::Amx;
  if (f.avx512_bf16) return Isa::Avx512Bf16;
  if (f.avx512) return Isa::Avx512;
  return Isa::Scalar;
}

std::string isa_description() {
  const auto& f = detail::cpu_features();
  std::string s = f.avx512_bf16 ? "AVX512_BF16" : f.avx512 ? "AVX-512 (bf16 emulated)" : "scalar";
  if (f.avx512_vnni) s += " + AVX512_VNNI";
  if (f.amx_bf16 || f.amx_int8) return s + " (AMX present, unused: maas has no tile kernel)";
  return s + " (no AMX: " + f.amx_absent_reason + ")";
}

namespace detail {

Precision product_precision() { return matmul_precision(); }

void product_gemm(Precision p, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate, int max_threads) {
  if (p == Precision::BF16) return bf16_gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate, max_threads);
  sgemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, accumulate, max_threads);
}

}  // namespace detail

}  // namespace maas
