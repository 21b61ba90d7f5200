// The GEMM kernel behind matmul (src/ops/gemm.hpp) gives the same bits on
// any number of threads, in all four transpose combinations: with AVX2 or
// AVX-512 that is maas' blocked micro-kernel, on the portable target Eigen's
// product over fixed tiles of C. Both are checked against each other and a
// double-precision product too.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "maas/maas.hpp"
#include "ops/gemm.hpp"

using namespace maas;

namespace {

struct Case {
  int64_t m, n, k;
};

}  // namespace

TEST_CASE("sgemm is bit-identical on 1 to 4 threads, and agrees with the blocked kernel", "[op]") {
  Generator gen(11);
  // Several tiles in both directions (Eigen's tiles are 256 x 512), edges,
  // and sizes whose work passes the thread threshold (2^20 multiply-adds).
  for (const Case& s : {Case{300, 700, 130}, Case{97, 1100, 64}, Case{600, 90, 257}, Case{33, 45, 1000}}) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = (t & 1) != 0, tb = (t & 2) != 0;
      INFO("m " << s.m << " n " << s.n << " k " << s.k << " trans_a " << ta << " trans_b " << tb);
      const Tensor a = Tensor::randn({s.m * s.k}, gen), b = Tensor::randn({s.k * s.n}, gen);
      const Tensor c0 = Tensor::randn({s.m * s.n}, gen);  // for accumulate
      const int64_t lda = ta ? s.m : s.k, ldb = tb ? s.k : s.n;
      std::vector<std::vector<float>> results;
      for (bool accumulate : {false, true})
        for (int threads = 1; threads <= 4; ++threads) {
          std::vector<float> c = c0.to_vector();
          detail::sgemm(ta, tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, c.data(), s.n, accumulate, threads);
          if (threads > 1) {
            const std::vector<float>& one = results.back();
            REQUIRE(std::memcmp(c.data(), one.data(), c.size() * sizeof(float)) == 0);
            continue;
          }
          results.push_back(c);
        }
      // Against the blocked kernel and a double-precision product, on a grid of elements.
      std::vector<float> blocked(static_cast<size_t>(s.m * s.n));
      detail::sgemm_blocked(ta, tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, blocked.data(), s.n, false, 2);
      for (int64_t i = 0; i < s.m; i += 7)
        for (int64_t j = 0; j < s.n; j += 11) {
          double acc = 0;
          for (int64_t p = 0; p < s.k; ++p)
            acc += static_cast<double>(a.data()[ta ? p * lda + i : i * lda + p]) * b.data()[tb ? j * ldb + p : p * ldb + j];
          const auto at = static_cast<size_t>(i * s.n + j);
          REQUIRE(results[0][at] == Approx(acc).margin(1e-3));
          REQUIRE(blocked[at] == Approx(acc).margin(1e-3));
          REQUIRE(results[1][at] == Approx(acc + c0.data()[at]).margin(1e-3));
        }
    }
  }
}
