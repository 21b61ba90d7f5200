#include <catch2/catch.hpp>

#include "maas/maas.hpp"
#include "ops/cpu.hpp"

using namespace maas;

TEST_CASE("matmul precision: set, read back, names", "[precision]") {
  REQUIRE(matmul_precision() == Precision::FP32);  // the default
  set_matmul_precision(Precision::BF16);
  CHECK(matmul_precision() == Precision::BF16);
  set_matmul_precision(Precision::FP32);
  CHECK(matmul_precision() == Precision::FP32);
  CHECK(to_string(Precision::BF16) == "bf16");
  CHECK(precision_from_string("fp32") == Precision::FP32);
  CHECK(precision_from_string("bf16") == Precision::BF16);
  REQUIRE_THROWS_WITH(precision_from_string("fp16"), Catch::Contains("'fp16' is not one of fp32, bf16"));
}

TEST_CASE("CPU features are consistent with the active ISA", "[precision]") {
  const auto& f = detail::cpu_features();
  // Every richer feature implies AVX-512 here; AMX implies a reason is empty.
  if (f.avx512_bf16 || f.avx512_vnni) CHECK(f.avx512);
  if (f.amx_bf16) CHECK(f.amx_absent_reason.empty());
  if (!f.amx_bf16 && !f.amx_int8) CHECK_FALSE(f.amx_absent_reason.empty());
  const Isa isa = active_isa();
  CHECK((isa == Isa::Amx) == f.amx_bf16);
  CHECK(!isa_description().empty());
}
