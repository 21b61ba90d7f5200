// examples/common.hpp on its own: run_main's exit codes and messages (ctest
// "examples_common_tests"). The examples themselves run end to end in the
// *_pipeline drivers beside this file.
#include <catch2/catch.hpp>

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
