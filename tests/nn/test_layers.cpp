#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using namespace maas::nn;
using maas::test::check_module_gradients;
using maas::test::require_close;

namespace {
void set(const Tensor& t, const std::vector<float>& v) {
  REQUIRE(t.numel() == static_cast<int64_t>(v.size()));
  std::copy(v.begin(), v.end(), const_cast<Tensor&>(t).data());
}
}  // namespace

TEST_CASE("Dense forward by hand, gradients, and fused activation", "[layer]") {
  Dense d(2);
  REQUIRE(d.build({3}) == Shape{2});
  REQUIRE(d.kernel().shape() == Shape{3, 2});  // Keras' (in, out) layout
  set(d.kernel(), {1, 2, 3, 4, 5, 6});
  set(d.bias(), {0.5f, -0.5f});
  // [1,1,1] . [[1,2],[3,4],[5,6]] = [9, 12]; plus bias
  require_close(d(Tensor::ones({1, 3})), {9.5f, 11.5f});
  DenseOptions o;
  o.activation = Activation::ReLU;
  o.use_bias = false;
  Dense r(2, o);
  r.build({2});
  set(r.kernel(), {1, -1, 1, -1});
  require_close(r(Tensor::from_vector({1, 2}, {1, 2})), {3, 0});
  REQUIRE_FALSE(r.bias().defined());
  Generator gen(1);
  Dense g(3);
  check_module_gradients(g, Tensor::randn({4, 5}, gen));
  // Higher-rank input applies to the last dimension.
  REQUIRE(g(Tensor::randn({2, 4, 5}, gen)).shape() == Shape{2, 4, 3});
}

TEST_CASE("Glorot-uniform kernels stay within the Keras limit", "[layer]") {
  Dense d(50);
  d.build({200});
  const float limit = std::sqrt(6.f / 250.f);
  float mx = 0;
  for (float v : d.kernel().to_vector()) mx = std::max(mx, std::fabs(v));
  REQUIRE(mx <= limit);
  REQUIRE(mx > 0.9f * limit);
  for (float v : d.bias().to_vector()) REQUIRE(v == 0.f);
  Tensor he = Tensor::empty({1000, 100});
  Generator gen(2);
  initialize(he, Init::HeNormal, 100, 1000, gen);
  double ss = 0;
  for (float v : he.to_vector()) ss += v * v;
  REQUIRE(std::sqrt(ss / he.numel()) == Approx(std::sqrt(2.0 / 100)).epsilon(0.02));
  REQUIRE(init_from_string("he_uniform") == Init::HeUniform);
  MAAS_REQUIRE_THROWS_WITH(init_from_string("lecun"), "initializer 'lecun' is not known");
}

TEST_CASE("Conv2D valid, same and explicit padding shapes", "[layer]") {
  Conv2DOptions same;
  same.padding = Padding::Same;
  REQUIRE(Conv2D(4, 3, same).build({2, 7, 7}) == Shape{4, 7, 7});
  same.strides = {2, 2};
  REQUIRE(Conv2D(4, 3, same).build({2, 8, 8}) == Shape{4, 4, 4});  // asymmetric: 1 pixel bottom/right
  REQUIRE(Conv2D(4, 2, same).build({2, 5, 5}) == Shape{4, 3, 3});
  REQUIRE(Conv2D(4, 3).build({2, 7, 7}) == Shape{4, 5, 5});
  Conv2DOptions ex;
  ex.padding = Padding::Explicit;
  ex.explicit_padding = {2, 1};
  REQUIRE(Conv2D(4, 3, ex).build({2, 7, 7}) == Shape{4, 9, 7});
}

TEST_CASE("Conv2D forward by hand with same padding", "[layer]") {
  Conv2DOptions o;
  o.padding = Padding::Same;
  Conv2D c(1, 2, o);  // 2x2 kernel, stride 1: Keras pads 0 before, 1 after
  c.build({1, 2, 2});
  set(c.kernel(), {1, 1, 1, 1});
  set(c.bias(), {0});
  // x = [[1,2],[3,4]] padded to [[1,2,0],[3,4,0],[0,0,0]]; 2x2 window sums:
  // [1+2+3+4, 2+4; 3+4, 4]
  require_close(c(Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2})), {10, 6, 7, 4});
}

TEST_CASE("Conv2D gradients through the layer", "[layer][grad]") {
  Generator gen(3);
  Conv2DOptions o;
  o.padding = Padding::Same;
  o.strides = {2, 2};
  Conv2D a(3, 3, o);
  check_module_gradients(a, Tensor::randn({2, 2, 6, 6}, gen));
  Conv2DOptions t;
  t.activation = Activation::Tanh;
  Conv2D b(2, Pair{2, 3}, t);
  check_module_gradients(b, Tensor::randn({1, 3, 5, 5}, gen));
}

TEST_CASE("MaxPool2D and AvgPool2D layers by hand", "[layer]") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  MaxPool2D mp(2);
  REQUIRE(mp.build({1, 3, 3}) == Shape{1, 1, 1});
  require_close(mp(x), {5});
  Pool2DOptions same;
  same.padding = Padding::Same;
  MaxPool2D ms(2, same);  // windows [1,2;4,5] [3;6] [7,8] [9]
  require_close(ms(x), {5, 6, 8, 9});
  AvgPool2D as(2, same);  // Keras averages the real pixels only
  require_close(as(x), {3, 4.5f, 7.5f, 9});
  Pool2DOptions s1;
  s1.strides = {1, 1};
  require_close(AvgPool2D(2, s1)(x), {3, 4, 6, 7});
  Generator gen(4);
  AvgPool2D g(2, same);
  check_module_gradients(g, Tensor::randn({2, 2, 5, 5}, gen));
}

TEST_CASE("activation layers, Flatten and LeakyReLU", "[layer]") {
  Tensor x = Tensor::from_vector({-1, 0.5f, 2, -3}, {2, 2});
  require_close(ReLU()(x), {0, 0.5f, 2, 0});
  require_close(LeakyReLU(0.1f)(x), {-0.1f, 0.5f, 2, -0.3f});
  require_close(Sigmoid()(x), {1 / (1 + std::exp(1.f)), 1 / (1 + std::exp(-0.5f)), 1 / (1 + std::exp(-2.f)),
                               1 / (1 + std::exp(3.f))});
  require_close(Tanh()(x), {std::tanh(-1.f), std::tanh(0.5f), std::tanh(2.f), std::tanh(-3.f)});
  Tensor p = Softmax()(x);
  require_close(p, {1 / (1 + std::exp(1.5f)), 1 / (1 + std::exp(-1.5f)), 1 / (1 + std::exp(-5.f)),
                    1 / (1 + std::exp(5.f))});
  REQUIRE(Flatten()(Tensor::zeros({2, 3, 4, 5})).shape() == Shape{2, 60});
  REQUIRE(Flatten().build({3, 4, 5}) == Shape{60});
  REQUIRE(activation_from_string("relu") == Activation::ReLU);
  REQUIRE(to_string(Activation::None) == "linear");
  REQUIRE(activation_from_string("gelu") == Activation::Gelu);
  MAAS_REQUIRE_THROWS_WITH(activation_from_string("swish"), "activation 'swish' is not supported");
}

TEST_CASE("Dropout is active in training only and repeats given a seed", "[layer]") {
  Tensor x = Tensor::ones({1000});
  Dropout a(0.5f, 7), b(0.5f, 7);
  Tensor ya = a(x.reshape({10, 100})), yb = b(x.reshape({10, 100}));
  REQUIRE(ya.to_vector() == yb.to_vector());
  int zeros = 0;
  for (float v : ya.to_vector()) {
    REQUIRE((v == 0.f || v == 2.f));
    zeros += v == 0.f;
  }
  REQUIRE(zeros > 400);
  REQUIRE(zeros < 600);
  a.eval();
  REQUIRE(a(x.reshape({10, 100})).to_vector() == x.to_vector());
  MAAS_REQUIRE_THROWS_WITH(Dropout(1.f), "rate must be in [0, 1), got 1");
}

TEST_CASE("BatchNorm layer trains on batch statistics and evaluates on moving ones", "[layer]") {
  BatchNorm bn;
  REQUIRE(bn.build({2, 3, 3}) == Shape{2, 3, 3});
  REQUIRE(bn.num_parameters() == 4);
  Generator gen(5);
  Tensor x = Tensor::randn({4, 2, 3, 3}, gen, 5.f, 1.f);
  bn(x);
  for (float m : bn.moving_mean().to_vector()) REQUIRE(m == Approx(0.5f).margin(0.1f));  // 0.1 * ~5
  bn.eval();
  Tensor y = bn(x);
  // In evaluation, y = (x - mm) / sqrt(mv + eps), eps Keras' default 1e-3
  // (1e-5, PyTorch's, would differ in the fourth digit): one element by hand.
  REQUIRE(BatchNormOptions{}.eps == 1e-3f);
  const float mm = bn.moving_mean().data()[0], mv = bn.moving_variance().data()[0];
  REQUIRE(y.data()[0] == Approx((x.data()[0] - mm) / std::sqrt(mv + 1e-3f)));
  BatchNorm g1;
  check_module_gradients(g1, Tensor::randn({6, 3}, gen));
  BatchNorm g2;
  check_module_gradients(g2, Tensor::randn({2, 2, 3, 3}, gen));
  MAAS_REQUIRE_THROWS_WITH(BatchNorm().build({2, 3}), "must be (None, features) or (None, channels, height, width)");
}

TEST_CASE("layer option errors are caught in constructors", "[layer]") {
  MAAS_REQUIRE_THROWS_WITH(Dense(0), "Dense: units must be positive, got 0");
  MAAS_REQUIRE_THROWS_WITH(Conv2D(0, 3), "Conv2D: filters must be positive");
  Conv2DOptions o;
  o.strides = {0, 1};
  MAAS_REQUIRE_THROWS_WITH(Conv2D(2, 3, o), "strides must be positive");
  MAAS_REQUIRE_THROWS_WITH(MaxPool2D(0), "pool_size must be positive");
  MAAS_REQUIRE_THROWS_WITH(Conv2D(2, 3).build({3, 4}), "must be images (None, channels, height, width)");
  Dense d(2);
  d.build({3});
  MAAS_REQUIRE_THROWS_WITH(d(Tensor::zeros({1, 4})), "has 3 inputs but got a batch of shape [1,4]");
}

TEST_CASE("Softmax normalises over the features: the last axis, or the channels of NCHW images", "[layer]") {
  // Dense(3, softmax) on ones[1, 2, 4] with a zero kernel and bias (0, 1, 2):
  // every row is softmax(0, 1, 2) = (1, e, e^2) / (1 + e + e^2)
  // = (0.0900306, 0.2447285, 0.6652410), as Keras gives.
  DenseOptions o;
  o.activation = Activation::Softmax;
  o.kernel_initializer = Init::Zeros;
  Dense d(3, o);
  Tensor y = d(Tensor::ones({1, 2, 4}));
  set(d.bias(), {0, 1, 2});
  y = d(Tensor::ones({1, 2, 4}));
  REQUIRE(y.shape() == Shape{1, 2, 3});
  require_close(y, {0.0900306f, 0.2447285f, 0.6652410f, 0.0900306f, 0.2447285f, 0.6652410f});
  // Softmax() on one sample [[0, 1, 2], [0, 0, 0]]: per row, the second uniform.
  const float third = 1.f / 3.f;
  require_close(Softmax()(Tensor::from_vector({0, 1, 2, 0, 0, 0}, {1, 2, 3})),
                {0.0900306f, 0.2447285f, 0.6652410f, third, third, third});
  // 2-D: over the features, as before.
  require_close(Softmax()(Tensor::from_vector({0, 1, 2, 0, 0, 0}, {2, 3})),
                {0.0900306f, 0.2447285f, 0.6652410f, third, third, third});
  // NCHW [1, 3, 1, 2]: over the 3 channels at each pixel (Keras' channels_last last axis).
  require_close(Softmax()(Tensor::from_vector({0, 0, 1, 0, 2, 0}, {1, 3, 1, 2})),
                {0.0900306f, third, 0.2447285f, third, 0.6652410f, third});
  REQUIRE(softmax_axis(2) == 1);
  REQUIRE(softmax_axis(3) == 2);
  REQUIRE(softmax_axis(4) == 1);
  // The gradient along the last axis of a 3-D batch.
  Generator g(3);
  maas::test::check_gradients([](const std::vector<Tensor>& v) { return apply(Activation::Softmax, v[0]); },
                              {Tensor::randn({2, 3, 4}, g)});
}

TEST_CASE("GlobalAveragePooling2D by hand, shapes and gradients", "[layer]") {
  GlobalAveragePooling2D g;
  CHECK(g.type_name() == "GlobalAveragePooling2D");
  CHECK(g.samples_independent());
  CHECK(g.compute_output_shape({3, 5, 7}) == Shape{3});
  MAAS_REQUIRE_THROWS_WITH(g.compute_output_shape({3, 5}), "GlobalAveragePooling2D: input (None, 3, 5) must be images");
  CHECK_FALSE(g.built());
  // Channel 0 of the one sample: 1,2,3,4 (mean 2.5); channel 1: 5,5,5,-3 (mean 3).
  require_close(g(Tensor::from_vector({1, 2, 3, 4, 5, 5, 5, -3}, {1, 2, 2, 2})), {2.5f, 3.f});
  CHECK(g.built());
  CHECK(g.num_parameters() == 0);
  Generator gen(4);
  check_module_gradients(g, Tensor::randn({2, 2, 2, 2}, gen));
}

TEST_CASE("Embedding: Keras' weight and initialiser, lookups by hand, gradients to the rows used", "[layer]") {
  manual_seed(3);
  Embedding e(5, 3);
  CHECK(e.type_name() == "Embedding");
  CHECK(e.samples_independent());
  CHECK(e.compute_output_shape({}) == Shape{3});
  CHECK(e.compute_output_shape({7}) == Shape{7, 3});
  REQUIRE(e.build({4}) == Shape{4, 3});
  const NamedTensors p = e.named_parameters();
  REQUIRE(p.size() == 1);
  CHECK(p[0].first == "embeddings");
  REQUIRE(e.embeddings().shape() == Shape{5, 3});
  float lo = 1, hi = -1;
  for (float v : e.embeddings().to_vector()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  CHECK(lo >= -0.05f);
  CHECK(hi <= 0.05f);
  CHECK(hi - lo > 0.03f);  // drawn, not constant
  set(e.embeddings(), {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42});
  // [N] -> [N, 3]; [N, T] -> [N, T, 3] for any T once built.
  Tensor y = e(Tensor::from_vector({4, 0}, {2}));
  REQUIRE(y.shape() == Shape{2, 3});
  require_close(y, {40, 41, 42, 0, 1, 2});
  Tensor y2 = e(Tensor::from_vector({1, 1, 3, 0, 2, 4}, {2, 3}));
  REQUIRE(y2.shape() == Shape{2, 3, 3});
  require_close(y2, {10, 11, 12, 10, 11, 12, 30, 31, 32, 0, 1, 2, 20, 21, 22, 40, 41, 42});
  // Gradient: row 1 twice, rows 0 and 3 once.
  e.zero_grad(true);
  sum(e(Tensor::from_vector({1, 3, 1, 0}, {4}))).backward();
  require_close(e.embeddings().grad(), {1, 1, 1, 2, 2, 2, 0, 0, 0, 1, 1, 1, 0, 0, 0});
  // The weight's gradient against central differences (indices have none).
  maas::test::GradCheckOptions o;
  o.check_input = false;
  check_module_gradients(e, Tensor::from_vector({2, 2, 0, 4, 1, 2}, {3, 2}), o);
}

TEST_CASE("Embedding refuses bad sizes and names bad indices with the layer", "[layer]") {
  MAAS_REQUIRE_THROWS_WITH(Embedding(0, 3), "Embedding: input_dim must be positive, got 0");
  MAAS_REQUIRE_THROWS_WITH(Embedding(3, -1), "Embedding: output_dim must be positive, got -1");
  MAAS_REQUIRE_THROWS_WITH(Embedding((int64_t{1} << 24) + 1, 2), "input_dim 16777217 is above 2^24");
  MAAS_REQUIRE_THROWS_WITH(Embedding(int64_t{1} << 24, int64_t{1} << 60), "more elements than a 64-bit size");
  Embedding e(4, 2);
  e.set_name("users");
  MAAS_REQUIRE_THROWS_WITH(e(Tensor::from_vector({1, 7}, {2})),
                           "Embedding 'users': index 7 (element 1 of indices [2]) is out of range for input_dim 4");
  MAAS_REQUIRE_THROWS_WITH(e(Tensor::from_vector({0.25f}, {1})), "Embedding 'users': index 0.25");
  MAAS_REQUIRE_THROWS_WITH(e(Tensor::scalar(1)), "has no batch dimension");
}
