// examples/common.hpp on its own: run_main's exit codes and messages (ctest
// "examples_common_tests"). The examples themselves run end to end in the
// *_pipeline drivers beside this file.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cstdint>
#include <cstdio>
#include <new>
#include <stdexcept>
#include <string>

#include "common.hpp"

namespace {

// What run_main returns and prints for `body`.
template <class Body>
int run_captured(Body&& body, std::string& printed) {
  std::FILE* err = std::tmpfile();
  REQUIRE(err != nullptr);
  const int code = examples::run_main("prog", std::forward<Body>(body), err);
  std::rewind(err);
  printed.clear();
  for (int ch; (ch = std::fgetc(err)) != EOF;) printed.push_back(static_cast<char>(ch));
  std::fclose(err);
  return code;
}

}  // namespace

TEST_CASE("run_main turns every exception into a message and a documented exit code", "[examples]") {
  std::string printed;
  REQUIRE(run_captured([] { return 0; }, printed) == examples::kExitOk);
  REQUIRE(printed.empty());
  REQUIRE(run_captured([] { return 7; }, printed) == 7);

  REQUIRE(run_captured([]() -> int { MAAS_FAIL("data/x: no such directory"); }, printed) == 1);
  REQUIRE(printed == "prog: data/x: no such directory\n");

  // These ended the examples with std::terminate (SIGABRT).
  REQUIRE(run_captured([]() -> int { throw std::bad_alloc(); }, printed) == 3);
  REQUIRE(printed == "prog: out of memory (std::bad_alloc); try a smaller --batch or less data\n");
  REQUIRE(run_captured([]() -> int { throw std::out_of_range("vector::at"); }, printed) == 3);
  REQUIRE(printed == "prog: unexpected error: vector::at\n");
  REQUIRE(run_captured([]() -> int { throw 42; }, printed) == 3);
  REQUIRE(printed == "prog: unexpected error: an exception of unknown type\n");
  REQUIRE(examples::kExitUnexpected == 3);
  REQUIRE(examples::kExitUsage == 2);
  REQUIRE(examples::kExitError == 1);
}

TEST_CASE("numeric flags: integers read as integers, every type's range checked", "[examples]") {
  using examples::parse_integer;
  using examples::parse_real;
  using examples::parse_unsigned;
  int64_t n = -7;
  REQUIRE(parse_integer("12", 0, 1024, n));
  REQUIRE(n == 12);
  REQUIRE(parse_integer("-3", -5, 5, n));
  REQUIRE(n == -3);
  REQUIRE(parse_integer("9223372036854775807", 0, INT64_MAX, n));
  REQUIRE(n == INT64_MAX);
  for (const char* bad : {"4294967297", "1025", "-1", "1e3", "1.0", "12.5", "+5", " 5", "5 ", "", "0x10", "five",
                          "9223372036854775808", "1e19", "-9223372036854775809"})
    REQUIRE_FALSE(parse_integer(bad, 0, 1024, n));
  REQUIRE_FALSE(parse_integer("9223372036854775808", INT64_MIN, INT64_MAX, n));

  uint64_t u = 0;
  REQUIRE(parse_unsigned("18446744073709551615", u));
  REQUIRE(u == UINT64_MAX);
  for (const char* bad : {"18446744073709551616", "-1", "1e19", "", "7 "}) REQUIRE_FALSE(parse_unsigned(bad, u));

  double d = 0;
  REQUIRE(parse_real("2e-3", 0, FLT_MAX, d));
  REQUIRE(d == 2e-3);
  for (const char* bad : {"1e39", "-0.1", "nan", "inf", "", " 1", "1x"}) REQUIRE_FALSE(parse_real(bad, 0, FLT_MAX, d));
  REQUIRE(examples::integer_kind(1, 2147483647) == "a whole number in [1, 2147483647]");
}

TEST_CASE("common flags: --precision sets the matmul precision for the run and the fit", "[examples]") {
  const char* argv_c[] = {"prog", "--precision", "bf16", "--epochs", "2"};
  char* argv[5];
  for (int i = 0; i < 5; ++i) argv[i] = const_cast<char*>(argv_c[i]);
  examples::Args defaults;
  defaults.epochs = 1;
  const examples::Args a = examples::parse_args(5, argv, defaults);
  CHECK(a.precision == maas::Precision::BF16);
  CHECK(maas::matmul_precision() == maas::Precision::BF16);
  CHECK(a.epochs == 2);
  maas::set_matmul_precision(maas::Precision::FP32);
  const examples::Args b = examples::parse_args(1, argv, defaults);
  CHECK(b.precision == maas::Precision::FP32);
  CHECK(maas::matmul_precision() == maas::Precision::FP32);
}
