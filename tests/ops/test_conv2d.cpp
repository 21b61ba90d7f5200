#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

namespace {

Conv2dOptions conv_options(Pair stride, Pair padding, Pair dilation) {
  Conv2dOptions o;
  o.stride = stride;
  o.padding = padding;
  o.dilation = dilation;
  return o;
}

// Output size along one axis, or <= 0 when the kernel does not fit.
int64_t out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  const int64_t span = dil * (k - 1) + 1;
  return in + 2 * pad < span ? 0 : (in + 2 * pad - span) / stride + 1;
}

// Direct convolution, straight from the definition, summed in double.
Tensor naive_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t Ho = out_size(H, kh, o.stride[0], o.padding[0], o.dilation[0]);
  const int64_t Wo = out_size(W, kw, o.stride[1], o.padding[1], o.dilation[1]);
  const float* px = x.data();
  const float* pw = w.data();
  Tensor y = Tensor::zeros({N, O, Ho, Wo});
  float* py = y.data();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < O; ++oc)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = b.defined() ? b.data()[oc] : 0.0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = oh * o.stride[0] - o.padding[0] + i * o.dilation[0];
                const int64_t iw = ow * o.stride[1] - o.padding[1] + j * o.dilation[1];
                if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;  // zero padding
                acc += static_cast<double>(pw[((oc * C + c) * kh + i) * kw + j]) * px[((n * C + c) * H + ih) * W + iw];
              }
          py[((n * O + oc) * Ho + oh) * Wo + ow] = static_cast<float>(acc);
        }
  return y;
}

// The gradients of sum(conv2d(x, w, b) * dout), from the same seven loops.
void naive_conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dout, const Conv2dOptions& o,
                           Tensor& dx, Tensor& dw, Tensor& db) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), kh = w.size(2), kw = w.size(3), Ho = dout.size(2), Wo = dout.size(3);
  const float* px = x.data();
  const float* pw = w.data();
  const float* pg = dout.data();
  std::vector<double> gx(x.numel(), 0.0), gw(w.numel(), 0.0), gb(O, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < O; ++oc)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const double g = pg[((n * O + oc) * Ho + oh) * Wo + ow];
          gb[oc] += g;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = oh * o.stride[0] - o.padding[0] + i * o.dilation[0];
                const int64_t iw = ow * o.stride[1] - o.padding[1] + j * o.dilation[1];
                if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
                const int64_t xi = ((n * C + c) * H + ih) * W + iw, wi = ((oc * C + c) * kh + i) * kw + j;
                gx[xi] += pw[wi] * g;
                gw[wi] += px[xi] * g;
              }
        }
  auto to_tensor = [](const std::vector<double>& v, const Shape& s) {
    return Tensor::from_vector(std::vector<float>(v.begin(), v.end()), s);
  };
  dx = to_tensor(gx, x.shape());
  dw = to_tensor(gw, w.shape());
  db = to_tensor(gb, {O});
}

// Like require_close, for large tensors: one assertion on the first element off by more than
// tol * (1 + |want|).
void require_close_to(const Tensor& got, const Tensor& want, float tol) {
  REQUIRE(got.shape() == want.shape());
  int64_t bad = -1;
  for (int64_t i = 0; i < got.numel() && bad < 0; ++i)
    if (!(std::fabs(got.data()[i] - want.data()[i]) <= tol * (1.f + std::fabs(want.data()[i])))) bad = i;
  INFO("first mismatch at element " << bad << " of " << to_string(got.shape()) << ": got "
                                    << (bad >= 0 ? got.data()[bad] : 0.f) << ", want "
                                    << (bad >= 0 ? want.data()[bad] : 0.f));
  REQUIRE(bad < 0);
}

// x [N,C,H,W] and weight [O,C,kh,kw] whose every value is a multiple of 1/8 or
// 1/4, so every product and short sum is exact in fp32.
Tensor ramp(const Shape& shape, int64_t mul, int64_t mod, float scale) {
  std::vector<float> v(static_cast<size_t>(numel(shape)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(static_cast<int64_t>(i) * mul % mod - mod / 2) / scale;
  return Tensor::from_vector(v, shape);
}

}  // namespace

TEST_CASE("conv2d forward by hand", "[op]") {
  // x = 1 2 3    kernel = 1 2
  //     4 5 6             3 4
  //     7 8 9
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});

  // Each 2x2 window: 1*1+2*2+4*3+5*4 = 37, 2+6+15+24 = 47, 4+10+21+32 = 67, 5+12+24+36 = 77.
  Tensor y = conv2d(x, w, Tensor());
  REQUIRE(y.shape() == Shape{1, 1, 2, 2});
  require_close(y, {37, 47, 67, 77});

  // The bias is added to every output.
  require_close(conv2d(x, w, Tensor::from_vector({0.5f}, {1})), {37.5f, 47.5f, 67.5f, 77.5f});

  // Padding 1, stride 2: the padded input is 5x5, Ho = (3 + 2 - 1 - 1) / 2 + 1 = 2, and the windows start
  // at padded rows/cols 0 and 2:
  //   [0 0; 0 1] -> 4*1 = 4          [0 0; 2 3] -> 3*2 + 4*3 = 18
  //   [0 4; 0 7] -> 2*4 + 4*7 = 36   [5 6; 8 9] -> 5 + 12 + 24 + 36 = 77
  Tensor yp = conv2d(x, w, Tensor(), conv_options({2, 2}, {1, 1}, {1, 1}));
  REQUIRE(yp.shape() == Shape{1, 1, 2, 2});
  require_close(yp, {4, 18, 36, 77});

  // Dilation 2: the kernel taps the corners 1, 3, 7, 9: 1*1 + 2*3 + 3*7 + 4*9 = 64.
  Tensor yd = conv2d(x, w, Tensor(), conv_options({1, 1}, {0, 0}, {2, 2}));
  REQUIRE(yd.shape() == Shape{1, 1, 1, 1});
  require_close(yd, {64});

  // 1x1 kernel, two channels in and out (the path without im2col):
  //   channel 0 = 1 2 3 4, channel 1 = 10 20 30 40
  //   out 0 = 1*ch0 + 0.5*ch1 + 1 = 7 13 19 25;  out 1 = -1*ch0 + 2*ch1 + 0 = 19 38 57 76
  Tensor x2 = Tensor::from_vector({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2});
  Tensor w2 = Tensor::from_vector({1, 0.5f, -1, 2}, {2, 2, 1, 1});
  Tensor y2 = conv2d(x2, w2, Tensor::from_vector({1, 0}, {2}));
  REQUIRE(y2.shape() == Shape{1, 2, 2, 2});
  require_close(y2, {7, 13, 19, 25, 19, 38, 57, 76});
}

TEST_CASE("conv2d matches a naive direct convolution over a sweep of options", "[op]") {
  Generator gen(11);
  struct Case {
    Shape x, w;
  };
  // Odd sizes, several channels; the last two are 1x1 kernels (with and without im2col).
  const std::vector<Case> cases = {{{1, 3, 7, 5}, {4, 3, 3, 2}},
                                   {{3, 2, 6, 9}, {5, 2, 2, 3}},
                                   {{3, 4, 5, 5}, {2, 4, 1, 1}},
                                   {{1, 1, 4, 3}, {3, 1, 1, 1}}};
  int checked = 0;
  for (const Case& cs : cases)
    for (int64_t stride : {1, 2})
      for (int64_t pad : {0, 1, 2})
        for (int64_t dil : {1, 2})
          for (bool with_bias : {false, true}) {
            const Conv2dOptions o = conv_options({stride, stride}, {pad, pad}, {dil, dil});
            if (out_size(cs.x[2], cs.w[2], stride, pad, dil) < 1 || out_size(cs.x[3], cs.w[3], stride, pad, dil) < 1)
              continue;
            Tensor x = Tensor::randn(cs.x, gen);
            Tensor w = Tensor::randn(cs.w, gen);
            Tensor b = with_bias ? Tensor::randn({cs.w[0]}, gen) : Tensor();
            INFO("x " << to_string(cs.x) << " w " << to_string(cs.w) << " stride " << stride << " pad " << pad
                      << " dil " << dil << " bias " << with_bias);
            require_close_to(conv2d(x, w, b, o), naive_conv2d(x, w, b, o), 1e-4f);
            ++checked;
          }
  // Mixed options per axis.
  Tensor x = Tensor::randn({3, 3, 7, 5}, gen);
  Tensor w = Tensor::randn({4, 3, 3, 2}, gen);
  Tensor b = Tensor::randn({4}, gen);
  for (const Conv2dOptions& o : {conv_options({2, 1}, {0, 1}, {1, 2}), conv_options({1, 3}, {2, 0}, {2, 1}),
                                 conv_options({3, 2}, {1, 2}, {1, 1})}) {
    require_close_to(conv2d(x, w, b, o), naive_conv2d(x, w, b, o), 1e-4f);
    ++checked;
  }
  REQUIRE(checked > 80);
}

TEST_CASE("conv2d matches values computed with PyTorch", "[op]") {
  // Expected values computed once with torch.nn.functional.conv2d (PyTorch 1.13, float64) on the same
  // inputs and pasted in; every input is a multiple of 1/8 or 1/4, so all of them are exact in fp32:
  //   y = F.conv2d(x, w, b, stride=(2,1), padding=(1,2), dilation=(1,2)); y.backward(dout)
  Tensor x = ramp({1, 2, 5, 6}, 37, 17, 8.f).requires_grad_();  // ((i*37) % 17 - 8) / 8
  Tensor w = ramp({2, 2, 3, 2}, 11, 13, 4.f).requires_grad_();  // ((i*11) % 13 - 6) / 4
  Tensor b = Tensor::from_vector({-0.5f, 0.25f}, {2}).requires_grad_();
  Tensor y = conv2d(x, w, b, conv_options({2, 1}, {1, 2}, {1, 2}));
  REQUIRE(y.shape() == Shape{1, 2, 3, 8});
  require_close(y, {-0.15625, -0.34375, -1.4375,  -1.0625,  -0.6875,  -0.3125,  -1.28125, -0.71875,
                    -1.75,    -0.90625, 1.03125,  2.46875,  -1.40625, 0.03125,  -0.75,    -2.28125,
                    -1.34375, -0.03125, 1.96875,  -1.34375, -0.40625, -2.125,   -0.78125, 0.4375,
                    -0.65625, -0.09375, -1.6875,  0.1875,   -0.0625,  1.8125,   -0.90625, 0.40625,
                    1.34375,  0.875,    0.1875,   0.375,    1.09375,  -0.84375, 0.0,      -2.53125,
                    0.9375,   0.5625,   0.375,    0.90625,  0.90625,  0.90625,  0.34375,  0.1875},
                0.f);
  y.backward(ramp({1, 2, 3, 8}, 5, 7, 2.f));  // dout = ((i*5) % 7 - 3) / 2
  require_close(w.grad(), {-1.0, 1.0,    -4.25, 4.0625, -3.5,  2.875,   1.75,   1.3125, 4.25,  -0.625,  4.375, -4.375,
                           3.0,  -0.25,  -0.75, -0.3125, -2.125, -1.0,  0.875,   -4.8125, 1.5,  -3.8125, 0.875, 1.75},
                0.f);
  require_close(x.grad(), {-0.5,  0.0,    -0.375, 1.0,   -1.125, -1.5,   2.5,    -2.5,   -3.125, 5.875,
                           1.75,  -4.125, 0.0,    -0.375, 1.0,   -1.125, -1.5,   2.5,    -2.5,   -3.125,
                           5.875, 1.75,   -4.125, -0.375, -0.375, 1.0,   -1.125, -1.5,   2.5,    -0.5,
                           -1.0,  0.25,   -0.25,  1.0,   -1.25,  -1.75,  2.25,   -2.125, -3.0,   5.75,
                           1.375, -3.875, 0.25,   -0.25, 1.0,    -1.25,  -1.75,  3.0,    -2.125, -3.0,
                           5.75,  1.375,  -3.875, -0.375, -0.25, 1.0,    -1.25,  -1.75,  3.0,    -1.0},
                0.f);
  require_close(b.grad(), {-0.5, 1.0}, 0.f);
}

TEST_CASE("conv2d gradients", "[op][grad]") {
  Generator gen(5);
  using V = std::vector<Tensor>;
  int checked = 0;
  for (int64_t stride : {1, 2})
    for (int64_t pad : {0, 1, 2})
      for (int64_t dil : {1, 2}) {
        const Conv2dOptions o = conv_options({stride, stride}, {pad, pad}, {dil, dil});
        INFO("stride " << stride << " pad " << pad << " dil " << dil);
        Tensor x = Tensor::randn({2, 2, 5, 6}, gen);
        Tensor w = Tensor::randn({3, 2, 2, 3}, gen);
        Tensor b = Tensor::randn({3}, gen);
        check_gradients([o](const V& v) { return conv2d(v[0], v[1], v[2], o); }, {x, w, b});
        check_gradients([o](const V& v) { return conv2d(v[0], v[1], Tensor(), o); }, {x, w});
        ++checked;
      }
  REQUIRE(checked == 12);
  // Mixed options per axis, batch 1, and the 1x1 kernel without im2col.
  const Conv2dOptions mixed = conv_options({2, 1}, {1, 0}, {1, 2});
  check_gradients([mixed](const V& v) { return conv2d(v[0], v[1], v[2], mixed); },
                  {Tensor::randn({1, 3, 5, 6}, gen), Tensor::randn({2, 3, 3, 2}, gen), Tensor::randn({2}, gen)});
  check_gradients([](const V& v) { return conv2d(v[0], v[1], v[2]); },
                  {Tensor::randn({2, 3, 3, 4}, gen), Tensor::randn({4, 3, 1, 1}, gen), Tensor::randn({4}, gen)});
}

TEST_CASE("conv2d gradients on several threads match a naive backward", "[op][grad]") {
  // Large enough that the batch is split across threads (when more than one is available).
  Generator gen(8);
  for (const Conv2dOptions& o : {conv_options({1, 1}, {1, 1}, {1, 1}), conv_options({2, 1}, {0, 2}, {1, 2})}) {
    Tensor x = Tensor::randn({7, 8, 12, 11}, gen).requires_grad_();
    Tensor w = Tensor::randn({9, 8, 3, 3}, gen).requires_grad_();
    Tensor b = Tensor::randn({9}, gen).requires_grad_();
    Tensor y = conv2d(x, w, b, o);
    require_close_to(y, naive_conv2d(x, w, b, o), 1e-3f);
    Tensor dout = Tensor::randn(y.shape(), gen);
    y.backward(dout);
    Tensor dx, dw, db;
    naive_conv2d_backward(x, w, dout, o, dx, dw, db);
    require_close_to(x.grad(), dx, 1e-3f);
    require_close_to(w.grad(), dw, 1e-3f);
    require_close_to(b.grad(), db, 1e-3f);
  }
  // And the 1x1 kernel without im2col.
  Tensor x = Tensor::randn({6, 16, 10, 10}, gen).requires_grad_();
  Tensor w = Tensor::randn({32, 16, 1, 1}, gen).requires_grad_();
  Tensor y = conv2d(x, w, Tensor());
  require_close_to(y, naive_conv2d(x, w, Tensor(), {}), 1e-3f);
  Tensor dout = Tensor::randn(y.shape(), gen);
  y.backward(dout);
  Tensor dx, dw, db;
  naive_conv2d_backward(x, w, dout, {}, dx, dw, db);
  require_close_to(x.grad(), dx, 1e-3f);
  require_close_to(w.grad(), dw, 1e-3f);
}

TEST_CASE("conv2d gradients are bit-identical across runs", "[op][grad]") {
  Generator gen(9);
  const Tensor x0 = Tensor::randn({8, 6, 11, 13}, gen);
  const Tensor w0 = Tensor::randn({10, 6, 3, 3}, gen);
  const Tensor b0 = Tensor::randn({10}, gen);
  const Conv2dOptions o = conv_options({1, 2}, {1, 1}, {1, 1});
  auto run = [&](std::vector<float>& y, std::vector<float>& dx, std::vector<float>& dw, std::vector<float>& db) {
    Tensor x = x0.clone().requires_grad_();
    Tensor w = w0.clone().requires_grad_();
    Tensor b = b0.clone().requires_grad_();
    Tensor out = conv2d(x, w, b, o);
    sum(out * out).backward();
    y = out.to_vector();
    dx = x.grad().to_vector();
    dw = w.grad().to_vector();
    db = b.grad().to_vector();
  };
  std::vector<float> y1, dx1, dw1, db1, y2, dx2, dw2, db2;
  run(y1, dx1, dw1, db1);
  run(y2, dx2, dw2, db2);
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  REQUIRE(same_bits(y1, y2));
  REQUIRE(same_bits(dx1, dx2));
  REQUIRE(same_bits(dw1, dw2));
  REQUIRE(same_bits(db1, db2));
}

TEST_CASE("conv2d computes only the gradients that are asked for", "[op][grad]") {
  Generator gen(10);
  Tensor x = Tensor::randn({2, 3, 6, 6}, gen);
  Tensor w = Tensor::randn({4, 3, 3, 3}, gen).requires_grad_();
  Tensor b = Tensor::randn({4}, gen);
  sum(conv2d(x, w, b, conv_options({1, 1}, {1, 1}, {1, 1}))).backward();
  REQUIRE(!x.grad().defined());
  REQUIRE(!b.grad().defined());
  // d sum(y) / dw[o,c,i,j] is the sum of x over the positions that tap touches.
  Tensor dw_ref, dx_ref, db_ref;
  naive_conv2d_backward(x, w, Tensor::ones({2, 4, 6, 6}), conv_options({1, 1}, {1, 1}, {1, 1}), dx_ref, dw_ref,
                        db_ref);
  require_close_to(w.grad(), dw_ref, 1e-4f);

  Tensor x2 = x.clone().requires_grad_();
  sum(conv2d(x2, w.detach(), Tensor())).backward();
  REQUIRE(x2.grad().defined());
  REQUIRE(x2.grad().shape() == x.shape());

  NoGradGuard no_grad;
  REQUIRE(!conv2d(x2, w, b).requires_grad());
}

TEST_CASE("conv2d errors name the shapes and options", "[op]") {
  const Tensor x = Tensor::zeros({2, 3, 8, 8});
  const Tensor w = Tensor::zeros({4, 3, 3, 3});
  MAAS_REQUIRE_THROWS_WITH(conv2d(Tensor::zeros({3, 8, 8}), w, Tensor()),
                           "conv2d: input [3,8,8] must be 4-D [N,C,H,W]");
  MAAS_REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 9}), Tensor()),
                           "conv2d: weight [4,3,9] must be 4-D [O,C,kh,kw]");
  MAAS_REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor()),
                           "conv2d: input [2,3,8,8] has 3 channels but weight [4,2,3,3] expects 2");
  MAAS_REQUIRE_THROWS_WITH(conv2d(x, w, Tensor::zeros({3})),
                           "conv2d: bias [3] must be [4], one value per output channel of weight [4,3,3,3]");
  MAAS_REQUIRE_THROWS_WITH(conv2d(x, w, Tensor::zeros({4, 1})), "conv2d: bias [4,1] must be [4]");
  MAAS_REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), conv_options({0, 1}, {0, 0}, {1, 1})),
                           "conv2d: stride (0,1) must be at least 1 (input [2,3,8,8])");
  MAAS_REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), conv_options({1, 1}, {0, 0}, {1, -2})),
                           "conv2d: dilation (1,-2) must be at least 1");
  MAAS_REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), conv_options({1, 1}, {-1, 0}, {1, 1})),
                           "conv2d: padding (-1,0) must not be negative");
  MAAS_REQUIRE_THROWS_WITH(conv2d(Tensor::zeros({1, 1, 3, 3}), Tensor::zeros({1, 1, 5, 5}), Tensor()),
                           "conv2d: weight [1,1,5,5] with dilation (1,1) spans 5x5, larger than input [1,1,3,3] "
                           "with padding (0,0) (3x3)");
  MAAS_REQUIRE_THROWS_WITH(
      conv2d(Tensor::zeros({1, 1, 3, 3}), Tensor::zeros({1, 1, 2, 2}), Tensor(), conv_options({1, 1}, {0, 0}, {3, 1})),
      "spans 4x2, larger than input [1,1,3,3] with padding (0,0)");
  // Padding makes room: a 5x5 kernel on a 3x3 input padded by 1 gives one output.
  REQUIRE(conv2d(Tensor::zeros({1, 1, 3, 3}), Tensor::zeros({1, 1, 5, 5}), Tensor(),
                 conv_options({1, 1}, {1, 1}, {1, 1}))
              .shape() == Shape{1, 1, 1, 1});
  MAAS_REQUIRE_THROWS_WITH(conv2d(x, Tensor::zeros({4, 3, 0, 3}), Tensor()),
                           "conv2d: weight [4,3,0,3] has an empty kernel");
  MAAS_REQUIRE_THROWS_WITH(conv2d(Tensor(), w, Tensor()), "conv2d: input is an undefined tensor");
}

TEST_CASE("conv2d kernel paths (channel blocks, 1x1, strides, tails) match the naive loops", "[op][grad]") {
  // Shapes chosen to reach every path of src/ops/conv2d.cpp: several channel
  // blocks of im2col/col2im (C = 20 with 3x3, C = 100 with 1x1), rows wider
  // than one vector (W = 37), the 1x1 kernel reading the image directly
  // (H*W = 16) or through im2col (H*W = 25), a stride of 2 along W (the
  // scalar copies), kernel rows K and channels O that are not multiples of
  // the GEMM tile, and a 5x5 kernel.
  struct Case {
    Shape x, w;
    Conv2dOptions o;
  };
  const std::vector<Case> cases = {
      {{3, 20, 9, 10}, {7, 20, 3, 3}, conv_options({1, 1}, {1, 1}, {1, 1})},
      {{2, 20, 9, 37}, {5, 20, 3, 3}, conv_options({1, 1}, {0, 0}, {1, 1})},
      {{2, 100, 4, 4}, {9, 100, 1, 1}, conv_options({1, 1}, {0, 0}, {1, 1})},
      {{2, 100, 5, 5}, {9, 100, 1, 1}, conv_options({1, 1}, {0, 0}, {1, 1})},
      {{2, 3, 11, 12}, {4, 3, 3, 3}, conv_options({2, 1}, {1, 2}, {2, 2})},
      {{2, 10, 9, 9}, {6, 10, 3, 3}, conv_options({1, 2}, {1, 1}, {1, 1})},
      {{3, 6, 14, 14}, {16, 6, 5, 5}, conv_options({1, 1}, {0, 0}, {1, 1})},
      {{4, 1, 28, 28}, {32, 1, 3, 3}, conv_options({1, 1}, {0, 0}, {1, 1})},
  };
  Generator gen(12);
  for (const Case& cs : cases) {
    INFO("x " << to_string(cs.x) << " w " << to_string(cs.w) << " stride (" << cs.o.stride[0] << ","
              << cs.o.stride[1] << ") pad (" << cs.o.padding[0] << "," << cs.o.padding[1] << ") dil ("
              << cs.o.dilation[0] << "," << cs.o.dilation[1] << ")");
    Tensor x = Tensor::randn(cs.x, gen).requires_grad_();
    Tensor w = Tensor::randn(cs.w, gen).requires_grad_();
    Tensor b = Tensor::randn({cs.w[0]}, gen).requires_grad_();
    Tensor y = conv2d(x, w, b, cs.o);
    require_close_to(y, naive_conv2d(x, w, b, cs.o), 1e-4f);
    Tensor dout = Tensor::randn(y.shape(), gen);
    y.backward(dout);
    Tensor dx, dw, db;
    naive_conv2d_backward(x, w, dout, cs.o, dx, dw, db);
    require_close_to(x.grad(), dx, 1e-3f);
    require_close_to(w.grad(), dw, 1e-3f);
    require_close_to(b.grad(), db, 1e-3f);
  }
}

TEST_CASE("conv2d results are bit-identical for any number of threads", "[op][grad]") {
  // The batch is cut into chunks that depend on N only and the per-chunk
  // weight and bias gradients are added in chunk order.
  Generator gen(13);
  const Tensor x0 = Tensor::randn({37, 5, 12, 11}, gen);
  const Tensor w0 = Tensor::randn({10, 5, 3, 3}, gen);
  const Tensor b0 = Tensor::randn({10}, gen);
  const Tensor dout = Tensor::randn({37, 10, 12, 11}, gen);
  test::require_thread_invariant([&] {
    Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(), b = b0.clone().requires_grad_();
    Tensor y = conv2d(x, w, b, conv_options({1, 1}, {1, 1}, {1, 1}));
    y.backward(dout);
    std::vector<float> all = y.to_vector();
    for (const Tensor& t : {x.grad(), w.grad(), b.grad()})
      for (float v : t.to_vector()) all.push_back(v);
    return all;
  });
}
