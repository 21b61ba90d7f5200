#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

namespace {

Pool2dOptions pool_opts(Pair kernel, Pair stride = {0, 0}, Pair padding = {0, 0}, bool count_include_pad = true) {
  Pool2dOptions o;
  o.kernel = kernel;
  o.stride = stride;
  o.padding = padding;
  o.count_include_pad = count_include_pad;
  return o;
}

// Naive pooling straight from the definition: every window position is
// visited, padding included; for max a padded position is -inf and the first
// strictly larger value wins. Also back-propagates `dout` the same way.
struct NaivePool {
  Tensor out;
  Tensor dx;
};

NaivePool naive_pool(const Tensor& x, const Pool2dOptions& o, bool is_max, const Tensor& dout) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t kh = o.kernel[0], kw = o.kernel[1];
  const int64_t sh = o.stride[0] ? o.stride[0] : kh, sw = o.stride[1] ? o.stride[1] : kw;
  const int64_t ph = o.padding[0], pw = o.padding[1];
  const int64_t Ho = (H + 2 * ph - kh) / sh + 1, Wo = (W + 2 * pw - kw) / sw + 1;
  NaivePool r{Tensor::zeros({N, C, Ho, Wo}), Tensor::zeros(x.shape())};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double best = -std::numeric_limits<double>::infinity(), acc = 0;
          int64_t bh = -1, bw = -1, count = 0;
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t h = oh * sh - ph + i, w = ow * sw - pw + j;
              if (h < 0 || h >= H || w < 0 || w >= W) continue;  // padding
              const float v = x.at({n, c, h, w});
              ++count;
              acc += v;
              if (v > best) {
                best = v;
                bh = h;
                bw = w;
              }
            }
          const float g = dout.at({n, c, oh, ow});
          if (is_max) {
            r.out.at({n, c, oh, ow}) = static_cast<float>(best);
            r.dx.at({n, c, bh, bw}) += g;
          } else {
            const double div = o.count_include_pad ? static_cast<double>(kh * kw) : static_cast<double>(count);
            r.out.at({n, c, oh, ow}) = static_cast<float>(acc / div);
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t h = oh * sh - ph + i, w = ow * sw - pw + j;
                if (h >= 0 && h < H && w >= 0 && w < W) r.dx.at({n, c, h, w}) += static_cast<float>(g / div);
              }
          }
        }
  return r;
}

// Like require_close, but cheap on large tensors: it formats only the first
// mismatch (require_close prints the whole tensor for every element).
void require_all_close(const Tensor& got, const Tensor& want, float tol = 1e-5f) {
  REQUIRE(got.shape() == want.shape());
  for (int64_t i = 0; i < got.numel(); ++i) {
    const float g = got.data()[i], w = want.data()[i];
    if (!(std::fabs(g - w) <= tol + tol * std::fabs(w))) {
      FAIL("element " << i << " of shape " << to_string(got.shape()) << ": got " << g << ", want " << w);
    }
  }
}

// Distinct values spaced 0.1 apart (a shuffled 0..n-1 scaled by 0.1), so a
// finite-difference step of 1e-2 never changes which element is the maximum.
Tensor spaced_values(const Shape& shape, uint64_t seed) {
  const int64_t n = numel(shape);
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0.f);
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  for (float& e : v) e = 0.1f * e - 0.05f * static_cast<float>(n);
  return Tensor::from_vector(v, shape);
}

}  // namespace

TEST_CASE("max_pool2d and avg_pool2d on a 4x4 input, 2x2 windows", "[op]") {
  // x = 1  2 | 5  3       max: 4 7      avg: (1+2+4+0)/4 = 1.75  (5+3+1+7)/4 = 4
  //     4  0 | 1  7            9 8           (2+9+3+1)/4 = 3.75  (6+6+8+2)/4 = 5.5
  //     -----+-----
  //     2  9 | 6  6
  //     3  1 | 8  2
  Tensor x = Tensor::from_vector({1, 2, 5, 3, 4, 0, 1, 7, 2, 9, 6, 6, 3, 1, 8, 2}, {1, 1, 4, 4});
  Tensor m = max_pool2d(x);  // defaults: kernel 2x2, stride = kernel
  REQUIRE(m.shape() == Shape{1, 1, 2, 2});
  require_close(m, {4, 7, 9, 8});
  Tensor a = avg_pool2d(x);
  REQUIRE(a.shape() == Shape{1, 1, 2, 2});
  require_close(a, {1.75f, 4, 3.75f, 5.5f});

  // Gradient of sum(max): 1 on each window's maximum (4 at (1,0), 7 at (1,3),
  // 9 at (2,1), 8 at (3,2)); of sum(avg): 1/4 everywhere.
  Tensor xg = x.clone().detach().requires_grad_();
  sum(max_pool2d(xg)).backward();
  require_close(xg.grad(), {0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0});
  xg.zero_grad(true);
  sum(avg_pool2d(xg)).backward();
  require_close(xg.grad(), std::vector<float>(16, 0.25f));
}

TEST_CASE("pool2d with a 3x3 window, stride 1, padding 1", "[op]") {
  // x = 1 2 3    Each output sees the in-bounds 3x3 neighbourhood of its position.
  //     4 5 6    Window sums:  12 21 16    real elements:  4 6 4
  //     7 8 9                  27 45 33                    6 9 6
  //                            24 39 28                    4 6 4
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  const Pool2dOptions inc = pool_opts({3, 3}, {1, 1}, {1, 1}, true);
  const Pool2dOptions exc = pool_opts({3, 3}, {1, 1}, {1, 1}, false);
  // max: 5 6 6 / 8 9 9 / 8 9 9
  require_close(max_pool2d(x, inc), {5, 6, 6, 8, 9, 9, 8, 9, 9});
  // count_include_pad: every sum / 9.
  require_close(avg_pool2d(x, inc),
                {12.f / 9, 21.f / 9, 16.f / 9, 27.f / 9, 45.f / 9, 33.f / 9, 24.f / 9, 39.f / 9, 28.f / 9});
  // Otherwise each sum over its number of real elements: 3 3.5 4 / 4.5 5 5.5 / 6 6.5 7.
  require_close(avg_pool2d(x, exc), {3, 3.5f, 4, 4.5f, 5, 5.5f, 6, 6.5f, 7});

  // Padding never wins a max: with x = -1..-9 every window's maximum is a
  // real element (-1 -1 -2 / -1 -1 -2 / -4 -4 -5), never the 0 a zero
  // padding would give.
  Tensor nx = neg(x);
  require_close(max_pool2d(nx, inc), {-1, -1, -2, -1, -1, -2, -4, -4, -5});

  // avg backward with padding: element (0,0) lies in windows (0,0),(0,1),(1,0),(1,1).
  // With count_include_pad its gradient of sum(avg) is 4/9; without it
  // 1/4 + 1/6 + 1/6 + 1/9.
  Tensor xg = x.clone().detach().requires_grad_();
  sum(avg_pool2d(xg, inc)).backward();
  REQUIRE(xg.grad().at({0, 0, 0, 0}) == Approx(4.f / 9));
  REQUIRE(xg.grad().at({0, 0, 1, 1}) == Approx(1.f));  // the centre is in all 9 windows
  xg.zero_grad(true);
  sum(avg_pool2d(xg, exc)).backward();
  REQUIRE(xg.grad().at({0, 0, 0, 0}) == Approx(1.f / 4 + 1.f / 6 + 1.f / 6 + 1.f / 9));
}

TEST_CASE("pool2d with non-square windows and a default stride", "[op]") {
  // One row 0 3 1 4 1 5 pooled by 1x2 windows (stride 1x2): max 3 4 5, avg 1.5 2.5 3.
  Tensor x = Tensor::from_vector({0, 3, 1, 4, 1, 5}, {1, 1, 1, 6});
  require_close(max_pool2d(x, pool_opts({1, 2})), {3, 4, 5});
  require_close(avg_pool2d(x, pool_opts({1, 2})), {1.5f, 2.5f, 3});
  // 1x3 windows with stride 1x2: [0 3 1] [1 4 1] -> max 3 4, avg 4/3 2 (the
  // trailing 5 is not covered, as in PyTorch with ceil_mode=False).
  require_close(max_pool2d(x, pool_opts({1, 3}, {1, 2})), {3, 4});
  require_close(avg_pool2d(x, pool_opts({1, 3}, {1, 2})), {4.f / 3, 2});
  REQUIRE(max_pool2d(x, pool_opts({1, 3}, {1, 2})).shape() == Shape{1, 1, 1, 2});
  // A batch of two planes is pooled plane by plane.
  Tensor y = Tensor::from_vector({1, 2, 3, 4, -1, -2, -3, -4}, {2, 1, 2, 2});
  require_close(max_pool2d(y), {4, -1});
  require_close(avg_pool2d(y), {2.5f, -2.5f});
}

TEST_CASE("max_pool2d ties: the gradient goes to the first maximum", "[op]") {
  // All four equal: the first in row-major order, (0,0), takes the gradient.
  Tensor x = Tensor::full({1, 1, 2, 2}, 3.f).requires_grad_();
  Tensor y = max_pool2d(x);
  REQUIRE(y.item() == 3.f);
  REQUIRE(y.grad_fn_name() == "max_pool2d");
  y.backward();
  require_close(x.grad(), {1, 0, 0, 0});

  // 1 5 / 5 2: the 5 at (0,1) comes before the 5 at (1,0).
  Tensor x2 = Tensor::from_vector({1, 5, 5, 2}, {1, 1, 2, 2}).requires_grad_();
  max_pool2d(x2).backward(Tensor::from_vector({2.5f}, {1, 1, 1, 1}));
  require_close(x2.grad(), {0, 2.5f, 0, 0});

  // Padding does not count as "first": with padding 1 and a 3x3 window the
  // first real element of the top-left window is (0,0).
  Tensor x3 = Tensor::full({1, 1, 2, 2}, -7.f).requires_grad_();
  Tensor y3 = max_pool2d(x3, pool_opts({3, 3}, {2, 2}, {1, 1}));
  REQUIRE(y3.shape() == Shape{1, 1, 1, 1});
  REQUIRE(y3.item() == -7.f);
  y3.backward();
  require_close(x3.grad(), {1, 0, 0, 0});
}

TEST_CASE("max_pool2d propagates NaN as PyTorch does", "[op]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector({1, nan, 3, 2}, {1, 1, 2, 2});
  REQUIRE(std::isnan(max_pool2d(x).item()));
}

TEST_CASE("overlapping max_pool2d accumulates gradient on a shared maximum", "[op]") {
  // x = 0 1 2      2x2 windows, stride 1: all four windows hold the 9 at the
  //     3 9 4      centre, so its gradient is the sum of the four upstream
  //     5 6 7      gradients 1 + 2 + 3 + 4 = 10, and every other element gets 0.
  Tensor x = Tensor::from_vector({0, 1, 2, 3, 9, 4, 5, 6, 7}, {1, 1, 3, 3}).requires_grad_();
  Tensor y = max_pool2d(x, pool_opts({2, 2}, {1, 1}));
  require_close(y, {9, 9, 9, 9});
  y.backward(Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2}));
  require_close(x.grad(), {0, 0, 0, 0, 10, 0, 0, 0, 0});

  // A row 0 1 8 2 3 with 1x3 windows at stride 1: 8 wins all three windows.
  Tensor r = Tensor::from_vector({0, 1, 8, 2, 3}, {1, 1, 1, 5}).requires_grad_();
  sum(max_pool2d(r, pool_opts({1, 3}, {1, 1}))).backward();
  require_close(r.grad(), {0, 0, 3, 0, 0});
}

TEST_CASE("pool2d matches a naive loop across a sweep of options", "[op]") {
  Generator gen(11);
  for (const Shape& shape : {Shape{1, 1, 7, 5}, Shape{3, 2, 7, 5}, Shape{1, 3, 6, 6}, Shape{3, 4, 5, 8}})
    for (int64_t k : {2, 3})
      for (int64_t s : {1, 2, 3})
        for (int64_t p : {0, 1})
          for (bool inc : {true, false}) {
            const Pool2dOptions o = pool_opts({k, k}, {s, s}, {p, p}, inc);
            INFO("shape " << to_string(shape) << " kernel " << k << " stride " << s << " padding " << p
                          << " count_include_pad " << inc);
            Tensor x = Tensor::randn(shape, gen);
            for (bool is_max : {true, false}) {
              if (is_max && !inc) continue;  // count_include_pad does not affect max
              Tensor xg = x.clone().detach().requires_grad_();
              Tensor y = is_max ? max_pool2d(xg, o) : avg_pool2d(xg, o);
              Tensor dout = Tensor::randn(y.shape(), gen);
              const NaivePool want = naive_pool(x, o, is_max, dout);
              require_all_close(y, want.out);
              y.backward(dout);
              require_all_close(xg.grad(), want.dx);
            }
          }
  // Non-square kernel, stride and padding.
  Tensor x = Tensor::randn({2, 3, 7, 5}, gen);
  const Pool2dOptions o = pool_opts({3, 2}, {2, 1}, {1, 0}, false);
  Tensor dout = Tensor::randn({2, 3, 4, 4}, gen);
  for (bool is_max : {true, false}) {
    Tensor xg = x.clone().detach().requires_grad_();
    Tensor y = is_max ? max_pool2d(xg, o) : avg_pool2d(xg, o);
    const NaivePool want = naive_pool(x, o, is_max, dout);
    REQUIRE(y.shape() == Shape{2, 3, 4, 4});
    require_all_close(y, want.out);
    y.backward(dout);
    require_all_close(xg.grad(), want.dx);
  }
}

TEST_CASE("pool2d on a large batch uses threads and still matches the naive loop", "[op]") {
  // Big enough to pass the parallel grain in both forward and backward.
  Generator gen(5);
  Tensor x = Tensor::randn({8, 16, 33, 31}, gen);
  const Pool2dOptions o = pool_opts({3, 3}, {2, 2}, {1, 1}, false);
  for (bool is_max : {true, false}) {
    Tensor xg = x.clone().detach().requires_grad_();
    Tensor y = is_max ? max_pool2d(xg, o) : avg_pool2d(xg, o);
    Tensor dout = Tensor::randn(y.shape(), gen);
    const NaivePool want = naive_pool(x, o, is_max, dout);
    require_all_close(y, want.out);
    y.backward(dout);
    require_all_close(xg.grad(), want.dx);
  }
}

TEST_CASE("max_pool2d gradients (distinct, well-spaced inputs)", "[op][grad]") {
  using V = std::vector<Tensor>;
  uint64_t seed = 1;
  for (const Shape& shape : {Shape{1, 1, 5, 4}, Shape{2, 2, 5, 5}})
    for (int64_t k : {2, 3})
      for (int64_t s : {1, 2})
        for (int64_t p : {0, 1}) {
          INFO("shape " << to_string(shape) << " kernel " << k << " stride " << s << " padding " << p);
          const Pool2dOptions o = pool_opts({k, k}, {s, s}, {p, p});
          check_gradients([o](const V& v) { return max_pool2d(v[0], o); }, {spaced_values(shape, seed++)});
        }
}

TEST_CASE("avg_pool2d gradients", "[op][grad]") {
  using V = std::vector<Tensor>;
  Generator gen(3);
  for (const Shape& shape : {Shape{1, 1, 5, 4}, Shape{2, 2, 5, 5}})
    for (int64_t k : {2, 3})
      for (int64_t s : {1, 2})
        for (int64_t p : {0, 1})
          for (bool inc : {true, false}) {
            INFO("shape " << to_string(shape) << " kernel " << k << " stride " << s << " padding " << p
                          << " count_include_pad " << inc);
            const Pool2dOptions o = pool_opts({k, k}, {s, s}, {p, p}, inc);
            check_gradients([o](const V& v) { return avg_pool2d(v[0], o); }, {Tensor::randn(shape, gen)});
          }
}

TEST_CASE("pool2d records no graph without gradients, and handles an empty batch", "[op]") {
  Tensor x = Tensor::ones({1, 1, 4, 4}).requires_grad_();
  {
    NoGradGuard ng;
    REQUIRE_FALSE(max_pool2d(x).requires_grad());
    REQUIRE_FALSE(avg_pool2d(x).requires_grad());
  }
  REQUIRE(max_pool2d(Tensor::ones({1, 1, 4, 4})).is_leaf());
  REQUIRE(max_pool2d(Tensor::zeros({0, 3, 4, 4})).shape() == Shape{0, 3, 2, 2});
  REQUIRE(avg_pool2d(Tensor::zeros({0, 3, 4, 4})).shape() == Shape{0, 3, 2, 2});
}

TEST_CASE("pool2d errors", "[op]") {
  const Tensor x = Tensor::zeros({1, 1, 4, 4});
  MAAS_REQUIRE_THROWS_WITH(max_pool2d(Tensor::zeros({3, 4})), "max_pool2d: input [3,4] must be 4-D [N,C,H,W]");
  MAAS_REQUIRE_THROWS_WITH(avg_pool2d(Tensor::zeros({1, 3, 4})), "avg_pool2d: input [1,3,4] must be 4-D [N,C,H,W]");
  MAAS_REQUIRE_THROWS_WITH(max_pool2d(Tensor()), "max_pool2d: input is an undefined tensor");
  MAAS_REQUIRE_THROWS_WITH(max_pool2d(Tensor::zeros({1, 1, 0, 4})),
                           "max_pool2d: input [1,1,0,4] has an empty H x W plane");
  MAAS_REQUIRE_THROWS_WITH(max_pool2d(x, pool_opts({0, 2})), "max_pool2d: kernel [0,2] must be at least 1");
  MAAS_REQUIRE_THROWS_WITH(avg_pool2d(x, pool_opts({2, -1})), "avg_pool2d: kernel [2,-1] must be at least 1");
  MAAS_REQUIRE_THROWS_WITH(max_pool2d(x, pool_opts({2, 2}, {-1, 1})), "max_pool2d: stride [-1,1] must be at least 1");
  MAAS_REQUIRE_THROWS_WITH(avg_pool2d(x, pool_opts({2, 2}, {0, 1})), "avg_pool2d: stride [0,1] must be at least 1");
  MAAS_REQUIRE_THROWS_WITH(max_pool2d(x, pool_opts({3, 3}, {1, 1}, {2, 0})),
                           "max_pool2d: padding [2,0] must be between 0 and half the kernel [3,3]");
  MAAS_REQUIRE_THROWS_WITH(avg_pool2d(x, pool_opts({2, 2}, {1, 1}, {0, -1})),
                           "avg_pool2d: padding [0,-1] must be between 0 and half the kernel [2,2]");
  MAAS_REQUIRE_THROWS_WITH(max_pool2d(x, pool_opts({5, 2})),
                           "max_pool2d: kernel [5,2] is larger than the padded input [4,4]");
  MAAS_REQUIRE_THROWS_WITH(avg_pool2d(x, pool_opts({7, 7}, {1, 1}, {1, 1})),
                           "avg_pool2d: kernel [7,7] is larger than the padded input [6,6]");
  // The edge cases that are allowed: padding exactly half the kernel, a window
  // exactly the padded input.
  REQUIRE(max_pool2d(x, pool_opts({2, 2}, {1, 1}, {1, 1})).shape() == Shape{1, 1, 5, 5});
  REQUIRE(avg_pool2d(x, pool_opts({6, 6}, {1, 1}, {3, 3})).shape() == Shape{1, 1, 5, 5});
  REQUIRE(max_pool2d(x, pool_opts({4, 4})).shape() == Shape{1, 1, 1, 1});
}

TEST_CASE("max_pool2d 2x2 stride 2 (the vectorised path) keeps the first maximum and lets NaN win", "[op]") {
  // Values from {-2..2} give many ties; NaN and infinities are sprinkled in.
  // The reference is the rule the op documents: the window's elements in
  // row-major order, a later one replacing the best when strictly greater or
  // a NaN over a number. Odd H and W drop the last row/column; W = 35 and 64
  // need two 16-output chunks per row.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::mt19937_64 rng(3);
  for (const Shape& shape : {Shape{2, 3, 7, 35}, Shape{1, 2, 26, 26}, Shape{3, 1, 11, 11}, Shape{1, 1, 2, 2},
                             Shape{2, 2, 4, 64}, Shape{16, 32, 13, 13}}) {
    INFO("shape " << to_string(shape));
    std::vector<float> v(static_cast<size_t>(numel(shape)));
    for (float& e : v) {
      const int r = static_cast<int>(rng() % 100);
      e = r < 4 ? nan : r < 6 ? inf : r < 8 ? -inf : static_cast<float>(static_cast<int>(rng() % 5) - 2);
    }
    Tensor x = Tensor::from_vector(v, shape).requires_grad_();
    Tensor y = max_pool2d(x);
    const int64_t N = shape[0], C = shape[1], H = shape[2], W = shape[3], Ho = H / 2, Wo = W / 2;
    REQUIRE(y.shape() == Shape{N, C, Ho, Wo});
    Generator gen(4);
    Tensor dout = Tensor::randn(y.shape(), gen);
    y.backward(dout);
    std::vector<float> dx(v.size(), 0.f);
    int64_t bad = 0;
    for (int64_t pl = 0; pl < N * C; ++pl)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          int64_t best_i = -1;
          float best = 0.f;
          for (int64_t h = 2 * oh; h < 2 * oh + 2; ++h)
            for (int64_t w = 2 * ow; w < 2 * ow + 2; ++w) {
              const float e = v[static_cast<size_t>((pl * H + h) * W + w)];
              if (best_i < 0 || e > best || (std::isnan(e) && !std::isnan(best))) {
                best = e;
                best_i = (pl * H + h) * W + w;
              }
            }
          const int64_t o = (pl * Ho + oh) * Wo + ow;
          const float got = y.data()[o];
          bad += !(got == best || (std::isnan(got) && std::isnan(best)));
          dx[static_cast<size_t>(best_i)] += dout.data()[o];
        }
    REQUIRE(bad == 0);
    for (size_t i = 0; i < dx.size(); ++i) bad += x.grad().data()[i] != dx[i];
    REQUIRE(bad == 0);
  }
}
