#include <catch2/catch.hpp>

#include <cmath>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("matmul forward by hand", "[op]") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({7, 8, 9, 10, 11, 12}, {3, 2});
  // [1*7+2*9+3*11, 1*8+2*10+3*12; 4*7+5*9+6*11, 4*8+5*10+6*12]
  require_close(matmul(a, b), {58, 64, 139, 154});
  Tensor ab = Tensor::from_vector({1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0}, {2, 2, 3});
  Tensor out = matmul(ab, b);
  REQUIRE(out.shape() == Shape{2, 2, 2});
  require_close(out, {58, 64, 139, 154, 7, 8, 9, 10});
  Tensor bb = Tensor::from_vector({7, 8, 9, 10, 11, 12, 1, 1, 1, 1, 1, 1}, {2, 3, 2});
  require_close(matmul(ab, bb), {58, 64, 139, 154, 1, 1, 1, 1});
}

TEST_CASE("matmul large enough to run on several threads matches a naive product", "[op]") {
  Generator gen(3);
  const int64_t m = 130, k = 70, n = 90;
  Tensor a = Tensor::randn({m, k}, gen);
  Tensor b = Tensor::randn({k, n}, gen);
  Tensor c = matmul(a, b);
  for (int64_t i = 0; i < m; i += 13)
    for (int64_t j = 0; j < n; j += 7) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(a.at({i, p})) * b.at({p, j});
      REQUIRE(c.at({i, j}) == Approx(acc).margin(1e-3));
    }
}

TEST_CASE("matmul gradients", "[op][grad]") {
  Generator gen(2);
  using V = std::vector<Tensor>;
  auto mm = [](const V& v) { return matmul(v[0], v[1]); };
  check_gradients(mm, {Tensor::randn({3, 4}, gen), Tensor::randn({4, 5}, gen)});
  check_gradients(mm, {Tensor::randn({1, 4}, gen), Tensor::randn({4, 1}, gen)});
  check_gradients(mm, {Tensor::randn({2, 3, 4}, gen), Tensor::randn({2, 4, 2}, gen)});
  check_gradients(mm, {Tensor::randn({2, 3, 4}, gen), Tensor::randn({4, 2}, gen)});
  check_gradients(mm, {Tensor::randn({1, 3, 4}, gen), Tensor::randn({1, 4, 2}, gen)});
}

TEST_CASE("matmul errors name the shapes", "[op]") {
  MAAS_REQUIRE_THROWS_WITH(matmul(Tensor::zeros({32, 784}), Tensor::zeros({100, 10})),
                           "matmul: [32,784] x [100,10]: inner dimensions differ");
  MAAS_REQUIRE_THROWS_WITH(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 2})), "batch sizes differ");
  MAAS_REQUIRE_THROWS_WITH(matmul(Tensor::zeros({4}), Tensor::zeros({4, 2})), "expected [m,k] x [k,n]");
}

TEST_CASE("matmul matches a naive product across the GEMM kernel's tiles, blocks and edges", "[op][grad]") {
  // m, k, n around the kernel's register tile (8 x 48 with AVX-512) and its
  // cache blocks (k 768, m 48, n 1536), forward and both gradients (which
  // run the kernel with a transposed operand).
  Generator gen(4);
  struct Size {
    int64_t m, k, n;
  };
  for (const Size& s : {Size{1, 1, 1}, Size{8, 1, 48}, Size{9, 257, 49}, Size{130, 300, 100}, Size{17, 20, 1600},
                        Size{3, 1000, 5}}) {
    INFO("m " << s.m << " k " << s.k << " n " << s.n);
    Tensor a = Tensor::randn({s.m, s.k}, gen).requires_grad_();
    Tensor b = Tensor::randn({s.k, s.n}, gen).requires_grad_();
    Tensor c = matmul(a, b);
    Tensor dout = Tensor::randn({s.m, s.n}, gen);
    c.backward(dout);
    auto close = [](float got, double want) { return std::fabs(got - want) <= 1e-3 * (1 + std::fabs(want)); };
    int64_t bad = 0;
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < s.k; ++p) acc += static_cast<double>(a.data()[i * s.k + p]) * b.data()[p * s.n + j];
        bad += !close(c.data()[i * s.n + j], acc);
      }
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t p = 0; p < s.k; ++p) {
        double acc = 0;  // dA = dout B^T
        for (int64_t j = 0; j < s.n; ++j) acc += static_cast<double>(dout.data()[i * s.n + j]) * b.data()[p * s.n + j];
        bad += !close(a.grad().data()[i * s.k + p], acc);
      }
    for (int64_t p = 0; p < s.k; ++p)
      for (int64_t j = 0; j < s.n; ++j) {
        double acc = 0;  // dB = A^T dout
        for (int64_t i = 0; i < s.m; ++i) acc += static_cast<double>(a.data()[i * s.k + p]) * dout.data()[i * s.n + j];
        bad += !close(b.grad().data()[p * s.n + j], acc);
      }
    REQUIRE(bad == 0);
  }
}

TEST_CASE("matmul with transpose flags equals matmul of the transposed copies", "[op][matmul]") {
  Generator gen(12);
  // Batch and heads: [2,3,m,k] x [2,3,k,n], each operand stored either way.
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const Tensor a = Tensor::randn(ta ? Shape{2, 3, 5, 4} : Shape{2, 3, 4, 5}, gen);
      const Tensor b = Tensor::randn(tb ? Shape{2, 3, 6, 5} : Shape{2, 3, 5, 6}, gen);
      const Tensor want = matmul(reshape(ta ? transpose(a, 2, 3) : a, {6, 4, 5}),
                                 reshape(tb ? transpose(b, 2, 3) : b, {6, 5, 6}));
      const Tensor got = matmul(a, b, ta, tb);
      REQUIRE(got.shape() == Shape{2, 3, 4, 6});
      require_close(got, want.to_vector(), 1e-5f);
      // One right-hand matrix for the whole batch.
      const Tensor b2 = Tensor::randn(tb ? Shape{6, 5} : Shape{5, 6}, gen);
      const Tensor want2 = matmul(reshape(ta ? transpose(a, 2, 3) : a, {24, 5}), tb ? transpose(b2, 0, 1) : b2);
      require_close(matmul(a, b2, ta, tb), want2.to_vector(), 1e-5f);
      // Plain matrices, and a batch of one.
      const Tensor a2 = Tensor::randn(ta ? Shape{5, 4} : Shape{4, 5}, gen);
      const Tensor want3 = matmul(ta ? transpose(a2, 0, 1) : a2, tb ? transpose(b2, 0, 1) : b2);
      require_close(matmul(a2, b2, ta, tb), want3.to_vector(), 1e-5f);
      const Tensor a3 = reshape(a2, ta ? Shape{1, 5, 4} : Shape{1, 4, 5});
      const Tensor b3 = reshape(b2, tb ? Shape{1, 6, 5} : Shape{1, 5, 6});
      require_close(matmul(a3, b3, ta, tb), want3.to_vector(), 1e-5f);
    }
}

TEST_CASE("matmul with transpose flags passes the finite-difference check", "[op][matmul]") {
  Generator gen(13);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      // op(a) [3,4], op(b) [4,2].
      const Shape a = ta ? Shape{4, 3} : Shape{3, 4}, b = tb ? Shape{2, 4} : Shape{4, 2};
      check_gradients([ta, tb](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); },
                      {Tensor::randn({2, 2, a[0], a[1]}, gen), Tensor::randn({2, 2, b[0], b[1]}, gen)});
      check_gradients([ta, tb](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); },
                      {Tensor::randn({2, a[0], a[1]}, gen), Tensor::randn(b, gen)});
      check_gradients([ta, tb](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); },
                      {Tensor::randn(a, gen), Tensor::randn(b, gen)});
    }
}

TEST_CASE("matmul over many small products gives the same bits for any thread count", "[op][matmul]") {
  Generator gen(14);
  const Tensor a = Tensor::randn({4, 4, 16, 8}, gen), b = Tensor::randn({4, 4, 16, 8}, gen);
  const Tensor r = Tensor::randn({4, 4, 16, 16}, gen);
  test::require_thread_invariant([&] {
    Tensor x = a.clone().requires_grad_(), y = b.clone().requires_grad_();
    Tensor c = matmul(x, y, false, true);
    sum(c * r).backward();
    std::vector<float> all = c.to_vector();
    for (const Tensor& t : {x.grad(), y.grad()})
      for (float v : t.to_vector()) all.push_back(v);
    return all;
  });
}
