// bf16 mixed precision: the rounding, the bf16 GEMM kernels against fp32 and
// double references, matmul and conv2d under Precision::BF16, and a short
// fit. Tag [bf16]; tests/CMakeLists.txt runs this tag again under
// MAAS_ISA=avx512 and MAAS_ISA=scalar, so the fallback kernels are the ones
// bf16_kernel() dispatches to there.
//
// Tolerances, derived rather than tuned. bf16 keeps 8 significant bits, so
// rounding to nearest moves a value by at most u_b = 2^-9 of itself; a product
// of two rounded operands is off by at most (2 u_b + u_b^2) |a||b|
// <= 2^-8 (1 + 2^-9) |a||b|, and is exact in fp32 (8 + 8 bits < 24). The fp32
// sum of n such terms adds at most gamma_n = n u / (1 - n u), u = 2^-24, of
// sum |a~||b~| (Higham, Accuracy and Stability, 3.1), and |a~||b~| <=
// (1 + 2^-9)^2 |a||b|. So, per element of C, with S = sum_i |a_i||b_i|:
//   |C - exact|  <=  (2^-8 (1 + 2^-9) + gamma_n (1 + 2^-9)^2) S      (bound_bf16)
// and against the exact product of the ROUNDED operands, S~ = sum |a~||b~|:
//   |C - exact~| <=  gamma_n S~                                      (bound_rounded)
// conv2d sums over one image in the kernel and then adds the images' partial
// sums in fp32, another sum of at most N terms: n is taken as the whole
// reduction length (N*P for dweight), which covers both stages.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gradcheck.hpp"
#include "maas/loss.hpp"
#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"
#include "maas/trainer.hpp"
#include "ops/cpu.hpp"
#include "ops/gemm.hpp"
#include "ops/lowp/bf16_gemm.hpp"

using namespace maas;
using detail::Bf16Kernel;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

double gamma_n(int64_t n) {
  const double u = std::ldexp(1.0, -24);
  return n * u / (1 - n * u);
}
double bound_bf16(double s, int64_t n) {
  const double e = 1 + std::ldexp(1.0, -9);
  return (std::ldexp(1.0, -8) * e + gamma_n(n) * e * e) * s;
}

// The kernels this CPU can run (the scalar one always).
std::vector<const Bf16Kernel*> runnable_kernels() {
  std::vector<const Bf16Kernel*> ks = {&detail::kBf16Scalar};
  const auto& f = detail::cpu_features();
  if (f.avx512) ks.push_back(&detail::kBf16Avx512);
  if (f.avx512_bf16) ks.push_back(&detail::kBf16Avx512Bf16);
  return ks;
}

// C = A B with an explicit kernel: pack both whole, one macro call.
std::vector<float> gemm_with(const Bf16Kernel& kern, int64_t m, int64_t n, int64_t k, const std::vector<float>& a,
                             const std::vector<float>& b) {
  const int64_t kp = detail::bf16_pairs(k);
  std::vector<uint32_t> ap(static_cast<size_t>(detail::bf16_packed_size(k, m, detail::kBf16MR)));
  std::vector<uint32_t> bp(static_cast<size_t>(detail::bf16_packed_size(k, n, detail::kBf16NR)));
  // A^T: pairs contiguous in A's rows; B: pairs across its rows.
  for (int64_t s = 0; s < m; s += detail::kBf16MR)
    kern.pack_along(a.data() + s * k, k, static_cast<int>(std::min<int64_t>(8, m - s)), k,
                    ap.data() + s * kp, detail::kBf16MR);
  for (int64_t q = 0; q < n; q += detail::kBf16NR)
    for (int64_t p = 0; p < kp; ++p) {
      const int64_t cols = std::min<int64_t>(detail::kBf16NR, n - q);
      uint32_t* d = bp.data() + q * kp + p * detail::kBf16NR;
      kern.pack_across(b.data() + 2 * p * n + q, 2 * p + 1 < k ? b.data() + (2 * p + 1) * n + q : nullptr, cols, d);
    }
  std::vector<float> c(static_cast<size_t>(m * n), -1.f);
  kern.macro(m, n, kp, ap.data(), kp * detail::kBf16MR, bp.data(), kp * detail::kBf16NR, c.data(), n, false,
             nullptr);
  return c;
}

std::vector<float> random_vector(int64_t n, uint64_t seed, float scale = 1.f) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

struct PrecisionGuard {
  Precision saved = matmul_precision();
  explicit PrecisionGuard(Precision p) { set_matmul_precision(p); }
  ~PrecisionGuard() { set_matmul_precision(saved); }
};

}  // namespace

TEST_CASE("bf16 rounding is round-to-nearest-even, worked by hand", "[bf16]") {
  // 1 + 2^-8 lies halfway between 1 (0x3F80) and 1 + 2^-7 (0x3F81): even wins.
  CHECK(detail::bf16_from_float(from_bits(0x3F808000u)) == 0x3F80);
  // 1 + 3*2^-8 lies halfway between 0x3F81 and 0x3F82: even (0x3F82) wins.
  CHECK(detail::bf16_from_float(from_bits(0x3F818000u)) == 0x3F82);
  // Just above / below a tie go to the nearer neighbour.
  CHECK(detail::bf16_from_float(from_bits(0x3F808001u)) == 0x3F81);
  CHECK(detail::bf16_from_float(from_bits(0x3F817FFFu)) == 0x3F81);
  // Negative ties, by magnitude: -(1 + 2^-8) -> -1.
  CHECK(detail::bf16_from_float(from_bits(0xBF808000u)) == 0xBF80);
  // 3.140625 = 0x40490000 is exact; pi rounds to 0x4049 (3.140625).
  CHECK(detail::bf16_from_float(3.140625f) == 0x4049);
  CHECK(detail::bf16_from_float(3.14159265f) == 0x4049);
  // The largest float rounds up to infinity; infinity stays; NaN stays a quiet NaN.
  CHECK(detail::bf16_from_float(std::numeric_limits<float>::max()) == 0x7F80);
  CHECK(detail::bf16_from_float(-std::numeric_limits<float>::infinity()) == 0xFF80);
  const uint16_t nan = detail::bf16_from_float(from_bits(0x7F800001u));  // a signalling NaN
  CHECK((nan & 0x7F80) == 0x7F80);
  CHECK((nan & 0x0040) != 0);
  // Subnormals become zero of their sign, as vcvtne2ps2bf16.
  CHECK(detail::bf16_from_float(from_bits(0x00400000u)) == 0x0000);
  CHECK(detail::bf16_from_float(from_bits(0x80000001u)) == 0x8000);
  CHECK(detail::bf16_to_float(0x3F81) == 1.0078125f);
}

TEST_CASE("every runnable kernel rounds as the software reference, bit for bit", "[bf16]") {
  // Random bit patterns (every class: normals, subnormals, NaN, inf) and
  // exact ties, through both packing primitives of each kernel.
  std::mt19937 rng(11);
  const int64_t n = 4099;  // not a multiple of a vector
  std::vector<float> r0(n), r1(n);
  for (int64_t j = 0; j < n; ++j) {
    r0[j] = from_bits(rng());
    r1[j] = from_bits((rng() & 0xFFFF0000u) | (j % 3 == 0 ? 0x8000u : rng() & 0xFFFFu));
  }
  std::vector<uint32_t> want(n);
  for (int64_t j = 0; j < n; ++j)
    want[j] = detail::bf16_from_float(r0[j]) | static_cast<uint32_t>(detail::bf16_from_float(r1[j])) << 16;
  for (const Bf16Kernel* kern : runnable_kernels()) {
    INFO(kern->name);
    std::vector<uint32_t> got(n + 1, 0xDEADBEEFu);
    kern->pack_across(r0.data(), r1.data(), n, got.data());
    CHECK(got[n] == 0xDEADBEEFu);  // nothing written past n
    got.resize(n);
    CHECK(got == want);
    // pack_along: 8 rows of pairs (r0[2q], r0[2q+1]) land in column j.
    const int64_t k = 37;  // odd: the last pair's high half is zero
    std::vector<uint32_t> along(static_cast<size_t>(detail::bf16_pairs(k) * 8));
    kern->pack_along(r0.data(), k, 5, k, along.data(), 8);
    for (int64_t q = 0; q < detail::bf16_pairs(k); ++q)
      for (int j = 0; j < 8; ++j) {
        uint32_t w = 0;
        if (j < 5) {
          w = detail::bf16_from_float(r0[j * k + 2 * q]);
          if (2 * q + 1 < k) w |= static_cast<uint32_t>(detail::bf16_from_float(r0[j * k + 2 * q + 1])) << 16;
        }
        CHECK(along[q * 8 + j] == w);
      }
  }
}

namespace {

// The column matrix of one image [C*kh*kw, P], worked out from the definition.
std::vector<float> reference_columns(const std::vector<float>& x, int64_t C, const detail::Bf16ConvShape& s) {
  const int64_t P = s.Ho * s.Wo, K = C * s.kh * s.kw;
  std::vector<float> col(static_cast<size_t>(K * P), 0.f);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < s.kh; ++i)
      for (int64_t j = 0; j < s.kw; ++j)
        for (int64_t oh = 0; oh < s.Ho; ++oh)
          for (int64_t ow = 0; ow < s.Wo; ++ow) {
            const int64_t ih = oh * s.stride_h + i * s.dil_h - s.pad_h, iw = ow * s.stride_w + j * s.dil_w - s.pad_w;
            if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
              col[static_cast<size_t>(((c * s.kh + i) * s.kw + j) * P + oh * s.Wo + ow)] = x[static_cast<size_t>((c * s.H + ih) * s.W + iw)];
          }
  return col;
}

uint32_t reference_pair(float even, float odd) {
  return detail::bf16_from_float(even) | static_cast<uint32_t>(detail::bf16_from_float(odd)) << 16;
}

}  // namespace

TEST_CASE("conv operands gathered from the image equal im2col then packing, word for word", "[bf16]") {
  // {C, H, W, kh, kw, stride, pad, dilation}: the reference CNN's conv2
  // (P = 121, not a multiple of 16 or 48), padding, a small stride-2 case,
  // dilation, a 1-channel 5x5 kernel (odd K).
  struct Case {
    int64_t C, H, W, kh, kw, stride, pad, dil;
  };
  const Case cases[] = {{3, 13, 13, 3, 3, 1, 0, 1}, {2, 8, 9, 3, 3, 1, 1, 1}, {2, 5, 5, 3, 3, 2, 1, 1},
                        {2, 10, 10, 3, 3, 1, 2, 2}, {1, 12, 7, 5, 5, 1, 2, 1}};
  for (const Case& c : cases) {
    detail::Bf16ConvShape s{c.H, c.W, c.kh, c.kw, 0, 0, c.stride, c.stride, c.pad, c.pad, c.dil, c.dil};
    s.Ho = (c.H + 2 * c.pad - c.dil * (c.kh - 1) - 1) / c.stride + 1;
    s.Wo = (c.W + 2 * c.pad - c.dil * (c.kw - 1) - 1) / c.stride + 1;
    const int64_t P = s.Ho * s.Wo, taps = c.kh * c.kw, K = c.C * taps;
    const std::vector<detail::Bf16Gather> plan = detail::bf16_gather_plan(s);
    INFO("C " << c.C << " H " << c.H << " W " << c.W << " k " << c.kh << " stride " << c.stride << " pad " << c.pad
              << " dilation " << c.dil);
    REQUIRE(static_cast<int64_t>(plan.size()) == taps * ((P + 15) / 16));
    const std::vector<float> x = random_vector(c.C * c.H * c.W, static_cast<uint64_t>(P + K));
    const std::vector<float> col = reference_columns(x, c.C, s);
    // Whole images, and a block that starts inside a channel with an odd count of rows.
    const int64_t blocks[2][2] = {{0, K}, {3, K - 3 - (K % 2 == 0 ? 1 : 2)}};
    for (const auto& block : blocks) {
      const int64_t r0 = block[0], rows = block[1];
      auto at = [&](int64_t r, int64_t p) { return r < rows && p < P ? col[static_cast<size_t>((r0 + r) * P + p)] : 0.f; };
      // As B: pairs over the rows, panels of kBf16NR positions.
      const int64_t kp = detail::bf16_pairs(rows), NR = detail::kBf16NR;
      std::vector<uint32_t> want_b(static_cast<size_t>(detail::bf16_packed_size(rows, P, NR)));
      for (int64_t q = 0; q < kp; ++q)
        for (int64_t j = 0; j < detail::bf16_round_up(P, NR); ++j)
          want_b[static_cast<size_t>(j / NR * kp * NR + q * NR + j % NR)] = reference_pair(at(2 * q, j), at(2 * q + 1, j));
      // Transposed: pairs over the positions, panels of p rows.
      const int64_t kpP = detail::bf16_pairs(P);
      auto want_t = [&](int64_t p) {
        std::vector<uint32_t> w(static_cast<size_t>(detail::bf16_packed_size(P, rows, static_cast<int>(p))));
        for (int64_t r = 0; r < detail::bf16_round_up(rows, p); ++r)
          for (int64_t q = 0; q < kpP; ++q)
            w[static_cast<size_t>(r / p * kpP * p + q * p + r % p)] = reference_pair(at(r, 2 * q), at(r, 2 * q + 1));
        return w;
      };
      const detail::Bf16Columns src{x.data(), c.H * c.W, taps, P, plan.data()};
      for (const Bf16Kernel* kern : runnable_kernels()) {
        INFO(kern->name << ", rows [" << r0 << ", " << r0 + rows << ")");
        std::vector<uint32_t> got(want_b.size(), 0xDEADBEEFu);
        kern->gather_b(src, r0, rows, got.data());
        CHECK(got == want_b);
        for (int64_t p : {int64_t{detail::kBf16MR}, int64_t{detail::kBf16NR}}) {
          const std::vector<uint32_t> want = want_t(p);
          got.assign(want.size(), 0xDEADBEEFu);
          kern->gather_t(src, r0, rows, got.data(), p);
          CHECK(got == want);
        }
      }
    }
  }
  // A run of 16 positions spanning 32 or more elements of a plane has no
  // plan (conv2d then builds the column matrix): stride 3 along a row.
  CHECK(detail::bf16_gather_plan({40, 40, 3, 3, 13, 13, 3, 3, 0, 0, 1, 1}).empty());
}

TEST_CASE("bf16 GEMM on small integers equals fp32 exactly", "[bf16]") {
  // Integers in [-16, 16] are exact in bf16 (5 bits); |sums| < 2^24 stay
  // exact in fp32 whatever the order: every kernel must give fp32's answer.
  for (int64_t m : {1, 7, 8, 9, 19})
    for (int64_t n : {1, 16, 47, 48, 50, 97})
      for (int64_t k : {1, 2, 3, 16, 33}) {
        std::mt19937 rng(static_cast<uint32_t>(m * 10000 + n * 100 + k));
        std::uniform_int_distribution<int> d(-16, 16);
        std::vector<float> a(m * k), b(k * n);
        for (auto& x : a) x = static_cast<float>(d(rng));
        for (auto& x : b) x = static_cast<float>(d(rng));
        std::vector<float> ref(m * n);
        detail::sgemm(false, false, m, n, k, a.data(), k, b.data(), n, ref.data(), n, false, 1);
        for (const Bf16Kernel* kern : runnable_kernels()) {
          INFO(kern->name << " m=" << m << " n=" << n << " k=" << k);
          CHECK(gemm_with(*kern, m, n, k, a, b) == ref);
        }
        // The driver, every transpose combination.
        for (int t = 0; t < 4; ++t) {
          const bool ta = t & 1, tb = t & 2;
          std::vector<float> at(a), bt(b);
          if (ta)
            for (int64_t i = 0; i < m; ++i)
              for (int64_t p = 0; p < k; ++p) at[p * m + i] = a[i * k + p];
          if (tb)
            for (int64_t p = 0; p < k; ++p)
              for (int64_t j = 0; j < n; ++j) bt[j * k + p] = b[p * n + j];
          std::vector<float> c(m * n, 1.f);
          detail::bf16_gemm(ta, tb, m, n, k, at.data(), ta ? m : k, bt.data(), tb ? k : n, c.data(), n, false, 2);
          INFO("driver ta=" << ta << " tb=" << tb << " m=" << m << " n=" << n << " k=" << k);
          CHECK(c == ref);
        }
      }
}

TEST_CASE("bf16 GEMM stays within the bound derived from bf16's 8-bit mantissa", "[bf16]") {
  // Sizes across the driver's blocks (k 1024, m 48, n 1536) and the tile edges.
  struct Case {
    int64_t m, n, k;
  };
  for (const Case& cs : {Case{9, 50, 7}, Case{53, 100, 300}, Case{20, 1600, 1100}}) {
    const int64_t m = cs.m, n = cs.n, k = cs.k;
    const std::vector<float> a = random_vector(m * k, 1 + m), b = random_vector(k * n, 2 + n, 3.f);
    std::vector<float> c(m * n), c32(m * n);
    detail::bf16_gemm(false, false, m, n, k, a.data(), k, b.data(), n, c.data(), n, false, 2);
    detail::sgemm(false, false, m, n, k, a.data(), k, b.data(), n, c32.data(), n, false, 2);
    int64_t differ = 0;
    double worst = 0;  // the largest error as a fraction of the bound
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double exact = 0, s = 0, exact_r = 0, s_r = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double x = a[i * k + p], y = b[p * n + j];
          const double xr = detail::bf16_round(a[i * k + p]), yr = detail::bf16_round(b[p * n + j]);
          exact += x * y;
          s += std::fabs(x * y);
          exact_r += xr * yr;
          s_r += std::fabs(xr * yr);
        }
        const double got = c[i * n + j];
        REQUIRE(std::fabs(got - exact) <= bound_bf16(s, k));
        REQUIRE(std::fabs(got - exact_r) <= gamma_n(k) * s_r);
        worst = std::max(worst, std::fabs(got - exact) / bound_bf16(s, k));
        differ += c[i * n + j] != c32[i * n + j];
      }
    // The operands were rounded: most results differ from fp32's, and the
    // bound is used by a sizeable fraction, not vacuous.
    CHECK(differ > m * n / 2);
    CHECK(worst > 0.05);
  }
}

TEST_CASE("the emulated kernels sum as vdpbf16ps does", "[bf16]") {
  // Same operands, same order: where AVX512_BF16 runs, the fallbacks agree
  // with it bit for bit on normal-range data (vdpbf16ps is specified as two
  // fp32 FMAs per pair, odd element first, round to nearest even).
  const auto kernels = runnable_kernels();
  const int64_t m = 17, n = 70, k = 301;
  const std::vector<float> a = random_vector(m * k, 5), b = random_vector(k * n, 6);
  const std::vector<float> ref = gemm_with(detail::kBf16Scalar, m, n, k, a, b);
  for (const Bf16Kernel* kern : kernels) {
    INFO(kern->name);
    CHECK(gemm_with(*kern, m, n, k, a, b) == ref);
  }
}

TEST_CASE("bf16 GEMM is bit-identical for any thread count", "[bf16]") {
  const int64_t m = 70, n = 300, k = 1500;
  const std::vector<float> a = random_vector(m * k, 8), b = random_vector(k * n, 9);
  std::vector<float> c1(m * n), c2(m * n), c3(m * n);
  detail::bf16_gemm(false, false, m, n, k, a.data(), k, b.data(), n, c1.data(), n, false, 1);
  detail::bf16_gemm(false, false, m, n, k, a.data(), k, b.data(), n, c2.data(), n, false, 2);
  detail::bf16_gemm(false, false, m, n, k, a.data(), k, b.data(), n, c3.data(), n, false, 3);
  CHECK(c1 == c2);
  CHECK(c1 == c3);
  // Tall C splits by rows instead.
  std::vector<float> d1(n * m), d2(n * m);
  detail::bf16_gemm(true, true, n, m, k, b.data(), n, a.data(), k, d1.data(), m, false, 1);
  detail::bf16_gemm(true, true, n, m, k, b.data(), n, a.data(), k, d2.data(), m, false, 2);
  CHECK(d1 == d2);
}

TEST_CASE("the dispatched bf16 kernel follows the CPU and MAAS_ISA", "[bf16]") {
  const auto& f = detail::cpu_features();
  const std::string name = detail::bf16_kernel().name;
  if (f.avx512_bf16) CHECK(name == detail::kBf16Avx512Bf16.name);
  else if (f.avx512) CHECK(name == detail::kBf16Avx512.name);
  else CHECK(name == detail::kBf16Scalar.name);
}

TEST_CASE("matmul under BF16: forward and gradients within the bf16 bound; FP32 untouched", "[bf16]") {
  Generator gen(4);
  const int64_t m = 33, k = 70, n = 21;
  Tensor a = Tensor::randn({m, k}, gen).requires_grad_();
  Tensor b = Tensor::randn({k, n}, gen).requires_grad_();
  Tensor dc = Tensor::randn({m, n}, gen);
  Tensor c32 = matmul(a, b);
  c32.backward(dc);
  const std::vector<float> da32(a.grad().data(), a.grad().data() + a.numel());
  const std::vector<float> c32v(c32.data(), c32.data() + c32.numel());
  a.zero_grad();
  b.zero_grad();
  {
    PrecisionGuard bf16(Precision::BF16);
    Tensor c = matmul(a, b);
    c.backward(dc);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double exact = 0, s = 0;
        for (int64_t p = 0; p < k; ++p) {
          exact += static_cast<double>(a.data()[i * k + p]) * b.data()[p * n + j];
          s += std::fabs(static_cast<double>(a.data()[i * k + p]) * b.data()[p * n + j]);
        }
        REQUIRE(std::fabs(c.data()[i * n + j] - exact) <= bound_bf16(s, k));
      }
    // dA = dC B^T: reduction over n.
    for (int64_t i = 0; i < m; ++i)
      for (int64_t p = 0; p < k; ++p) {
        double exact = 0, s = 0;
        for (int64_t j = 0; j < n; ++j) {
          exact += static_cast<double>(dc.data()[i * n + j]) * b.data()[p * n + j];
          s += std::fabs(static_cast<double>(dc.data()[i * n + j]) * b.data()[p * n + j]);
        }
        REQUIRE(std::fabs(a.grad().data()[i * k + p] - exact) <= bound_bf16(s, n));
      }
    CHECK(std::vector<float>(c.data(), c.data() + c.numel()) != c32v);
  }
  // Back in FP32, the same product gives the same bits as before.
  a.zero_grad();
  Tensor again = matmul(a, b);
  again.backward(dc);
  CHECK(std::vector<float>(again.data(), again.data() + again.numel()) == c32v);
  CHECK(std::vector<float>(a.grad().data(), a.grad().data() + a.numel()) == da32);
}

namespace {

struct ConvCase {
  int64_t N, C, H, W, O, k, stride, pad;
};

// conv2d under BF16 (forward, dx, dweight, dbias) against sums in double of
// the unrounded fp32 operands, each element within bound_bf16 of its own
// sum of |products|; the reduction lengths are C*k*k (forward), O*k*k at
// most (dx) and N*Ho*Wo (dweight).
void check_conv_bf16(const ConvCase& cs) {
  Generator gen(static_cast<uint64_t>(cs.C * 100 + cs.O));
  Tensor x = Tensor::randn({cs.N, cs.C, cs.H, cs.W}, gen).requires_grad_();
  Tensor w = Tensor::randn({cs.O, cs.C, cs.k, cs.k}, gen).requires_grad_();
  Tensor b = Tensor::randn({cs.O}, gen).requires_grad_();
  Conv2dOptions opt;
  opt.stride = {cs.stride, cs.stride};
  opt.padding = {cs.pad, cs.pad};
  const Tensor y32 = conv2d(x.detach(), w.detach(), b.detach(), opt);
  PrecisionGuard bf16(Precision::BF16);
  Tensor y = conv2d(x, w, b, opt);
  const int64_t Ho = y.size(2), Wo = y.size(3), K = cs.C * cs.k * cs.k;
  Tensor dy = Tensor::randn(y.shape(), gen);
  y.backward(dy);
  const float *px = x.data(), *pw = w.data(), *pg = dy.data();
  std::vector<double> dx(x.numel(), 0.0), dxs(x.numel(), 0.0), dw(w.numel(), 0.0), dws(w.numel(), 0.0);
  int64_t differ = 0;
  for (int64_t n = 0; n < cs.N; ++n)
    for (int64_t o = 0; o < cs.O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = 0, s = 0;
          const double g = pg[((n * cs.O + o) * Ho + oh) * Wo + ow];
          for (int64_t c = 0; c < cs.C; ++c)
            for (int64_t i = 0; i < cs.k; ++i)
              for (int64_t j = 0; j < cs.k; ++j) {
                const int64_t ih = oh * cs.stride + i - cs.pad, iw = ow * cs.stride + j - cs.pad;
                if (ih < 0 || ih >= cs.H || iw < 0 || iw >= cs.W) continue;
                const int64_t xi = ((n * cs.C + c) * cs.H + ih) * cs.W + iw, wi = ((o * cs.C + c) * cs.k + i) * cs.k + j;
                acc += static_cast<double>(px[xi]) * pw[wi];
                s += std::fabs(static_cast<double>(px[xi]) * pw[wi]);
                dx[xi] += g * pw[wi];
                dxs[xi] += std::fabs(g * pw[wi]);
                dw[wi] += g * px[xi];
                dws[wi] += std::fabs(g * px[xi]);
              }
          const float got = y.data()[((n * cs.O + o) * Ho + oh) * Wo + ow];
          const double bias = b.data()[o];
          // The bias is added to the fp32 sum: one more rounding of |result|.
          REQUIRE(std::fabs(got - (acc + bias)) <= bound_bf16(s, K + 1) + std::ldexp(std::fabs(acc + bias), -24));
          differ += got != y32.data()[((n * cs.O + o) * Ho + oh) * Wo + ow];
        }
  for (int64_t i = 0; i < x.numel(); ++i)
    REQUIRE(std::fabs(x.grad().data()[i] - dx[i]) <= bound_bf16(dxs[i], cs.O * cs.k * cs.k));
  for (int64_t i = 0; i < w.numel(); ++i)
    REQUIRE(std::fabs(w.grad().data()[i] - dw[i]) <= bound_bf16(dws[i], cs.N * Ho * Wo));
  CHECK(differ > 0);  // the forward did round its operands
}

}  // namespace

TEST_CASE("conv2d under BF16 stays within the bf16 bound, forward and both gradients", "[bf16]") {
  check_conv_bf16({3, 5, 9, 8, 7, 3, 1, 1});     // K = 45: every product on the bf16 kernel
  check_conv_bf16({2, 12, 11, 10, 20, 3, 2, 0});  // stride 2; several channel blocks (96 rows each)
  check_conv_bf16({2, 6, 8, 8, 9, 1, 1, 0});      // 1x1: the image is the column matrix
  check_conv_bf16({2, 1, 12, 12, 6, 3, 1, 0});    // K = 9: dweight on the fp32 dot path
}

TEST_CASE("conv2d and matmul under BF16 are bit-identical for any thread count", "[bf16]") {
  Generator gen(12);
  Tensor x = Tensor::randn({9, 32, 13, 13}, gen);
  Tensor w = Tensor::randn({64, 32, 3, 3}, gen);
  Tensor b = Tensor::randn({64}, gen);
  Tensor m1 = Tensor::randn({200, 300}, gen), m2 = Tensor::randn({300, 120}, gen);
  PrecisionGuard bf16(Precision::BF16);
  test::require_thread_invariant([&] {
    Tensor xs = x.detach().requires_grad_(), ws = w.detach().requires_grad_();
    Tensor y = conv2d(xs, ws, b, {});
    y.backward(y.detach());
    Tensor z = matmul(m1, m2);
    std::vector<float> out = y.to_vector();
    for (const Tensor& t : {xs.grad(), ws.grad(), z})
      for (float v : t.to_vector()) out.push_back(v);
    return out;
  });
}

namespace {

// Records the matmul precision seen at the end of each epoch.
struct SeenPrecision : Callback {
  std::vector<Precision> seen;
  void on_epoch_end(int64_t, const Logs&) override { seen.push_back(matmul_precision()); }
};

}  // namespace

TEST_CASE("a small CNN fits under FitOptions::precision = BF16; the setting is restored", "[bf16]") {
  // 64 random 2x8x8 images of 4 random classes: learnable only by memorising,
  // through two convolutions (the second's dweight on the bf16 kernel) and a
  // Dense layer (matmul).
  Generator gen(21);
  Tensor x = Tensor::randn({64, 2, 8, 8}, gen);
  Tensor y = Tensor::empty({64});
  for (int64_t i = 0; i < 64; ++i) y.at({i}) = static_cast<float>(i % 4);
  data::TensorDataset train(x, y);
  manual_seed(5);
  nn::Sequential model({2, 8, 8});
  model.add(nn::Conv2D(8, 3)).add(nn::ReLU()).add(nn::Conv2D(16, 3)).add(nn::ReLU()).add(nn::Flatten()).add(
      nn::Dense(4));
  CrossEntropyLoss loss;
  optim::AdamOptions ao;
  ao.lr = 0.01f;
  optim::Adam adam(model.parameters(), ao);
  Trainer trainer(model, loss, adam);
  auto seen = std::make_shared<SeenPrecision>();
  FitOptions o;
  o.epochs = 40;
  o.batch_size = 16;
  o.verbose = Verbose::Silent;
  o.precision = Precision::BF16;
  o.callbacks.push_back(seen);
  REQUIRE(matmul_precision() == Precision::FP32);
  const History h = trainer.fit(train, o);
  CHECK(matmul_precision() == Precision::FP32);  // restored
  REQUIRE(seen->seen.size() == 40);
  CHECK(seen->seen.front() == Precision::BF16);
  CHECK(h["loss"].back() < h["loss"].front() / 10);
  CHECK(h["accuracy"].back() == 1.0);
}
