// Post-training quantization: the calibration arithmetic by hand, the int8
// layers against fp32 layers fed the same quantized values, quantize() on
// small Sequential and functional models (BatchNorm folded, ReLU fused, fp32
// layers logged), and the
// error bounds of int8 against fp32.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "maas/maas.hpp"

using namespace maas;
using namespace maas::nn;

namespace {

void fill(const Tensor& t, const std::vector<float>& v) {
  REQUIRE(t.numel() == static_cast<int64_t>(v.size()));
  std::copy(v.begin(), v.end(), const_cast<Tensor&>(t).data());
}

// x as the int8 layers see it: quantized, then back to fp32.
Tensor fake_quantize(const Tensor& x, ActivationQuant q) {
  Tensor y = x.clone();
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float c = std::min(255.f, std::max(0.f, std::nearbyint(x.data()[i] / q.scale) + q.zero_point));
    y.data()[i] = (c - q.zero_point) * q.scale;
  }
  return y;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::fabs(double{t.data()[i]}));
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(double{a.data()[i]} - b.data()[i]));
  return m;
}

QuantizeOptions quiet() {
  QuantizeOptions o;
  o.quiet = true;
  return o;
}

}  // namespace

TEST_CASE("calibrate_range and activation_quant by hand", "[int8][quantize]") {
  const std::vector<float> v = {100, -1, 4, 0, 2};  // sorted: -1 0 2 4 100
  auto r = calibrate_range(v, Calibration::MinMax, 0);
  CHECK(r.first == -1.f);
  CHECK(r.second == 100.f);
  // numpy.percentile(v, 90) = 4 + 0.6 * (100 - 4) = 61.6; percentile(v, 10) = -1 + 0.4 * 1 = -0.6.
  r = calibrate_range(v, Calibration::Percentile, 90);
  CHECK(r.first == Approx(-0.6f));
  CHECK(r.second == Approx(61.6f));
  // percentile 75: 4 (index 3 exactly); percentile 25: 0 (index 1).
  r = calibrate_range(v, Calibration::Percentile, 75);
  CHECK(r.first == 0.f);
  CHECK(r.second == 4.f);
  // A range not holding 0 is widened to hold it.
  r = calibrate_range({2, 3}, Calibration::MinMax, 0);
  CHECK(r.first == 0.f);
  CHECK(r.second == 3.f);

  // scale = 62.2 / 255 = 0.243922; zero point = round(0.6 / 0.243922) = round(2.46) = 2.
  ActivationQuant q = activation_quant(-0.6f, 61.6f);
  CHECK(q.scale == Approx(62.2 / 255));
  CHECK(q.zero_point == 2);
  q = activation_quant(-1, 3);  // scale 4 / 255; -lo / scale = 63.75 -> 64
  CHECK(q.scale == Approx(4.0 / 255));
  CHECK(q.zero_point == 64);
  q = activation_quant(0, 0);
  CHECK(q.scale == 1.f);
  CHECK(q.zero_point == 0);
  q = activation_quant(-5, 0);
  CHECK(q.zero_point == 255);

  CHECK_THROWS_WITH(calibrate_range({}, Calibration::MinMax, 0), Catch::Contains("no values"));
  CHECK_THROWS_WITH(calibrate_range({1, NAN}, Calibration::MinMax, 0), Catch::Contains("nan"));
  CHECK_THROWS_WITH(calibrate_range({1}, Calibration::Percentile, 40), Catch::Contains("(50, 100]"));
  CHECK(calibration_from_string("minmax") == Calibration::MinMax);
  CHECK_THROWS_WITH(calibration_from_string("mse"), Catch::Contains("minmax, percentile"));
}

TEST_CASE("quantize_per_channel by hand", "[int8][quantize]") {
  // Conv kernel [2, 1, 1, 2]: channel 0 {0.5, -1}, channel 1 all zero.
  const Tensor w = Tensor::from_vector({0.5f, -1.f, 0.f, 0.f}, {2, 1, 1, 2});
  auto [codes, scale] = quantize_per_channel(w, 0);
  CHECK(scale.to_vector() == std::vector<float>{1.f / 127, 1.f});
  // 0.5 * 127 = 63.5: ties to even, 64.
  CHECK(codes.to_vector() == std::vector<float>{64, -127, 0, 0});
  // Dense kernel [in 2, out 2]: column 0 {3, -6}, column 1 {1, 0.25}.
  const Tensor d = Tensor::from_vector({3, 1, -6, 0.25f}, {2, 2});
  std::tie(codes, scale) = quantize_per_channel(d, 1);
  CHECK(scale.to_vector() == std::vector<float>{6.f / 127, 1.f / 127});
  CHECK(codes.to_vector() == std::vector<float>{64, 127, -127, 32});  // 63.5 -> 64; 31.75 -> 32
}

TEST_CASE("QuantizedConv2D equals Conv2D fed the same quantized values", "[int8][quantize]") {
  Generator gen(3);
  struct Case {
    int64_t c, o, k, h, w;
    Conv2DOptions opt;
  };
  std::vector<Case> cases;
  Conv2DOptions plain;
  cases.push_back({1, 32, 3, 28, 28, plain});
  Conv2DOptions same;
  same.padding = Padding::Same;
  same.strides = {2, 1};
  same.activation = Activation::ReLU;
  cases.push_back({5, 70, 3, 9, 8, same});
  Conv2DOptions dil;
  dil.dilation_rate = {2, 2};
  dil.padding = Padding::Explicit;
  dil.explicit_padding = {1, 2};
  dil.use_bias = false;
  cases.push_back({3, 17, 2, 7, 6, dil});
  Conv2DOptions wide;  // a column stride of 2: the byte-at-a-time gather
  wide.strides = {1, 2};
  wide.padding = Padding::Same;
  cases.push_back({4, 8, 3, 6, 9, wide});
  for (const Case& cs : cases) {
    Conv2D ref(cs.o, cs.k, cs.opt);
    ref.build({cs.c, cs.h, cs.w});
    QuantizedConv2D q(cs.o, Pair{cs.k, cs.k}, cs.opt);
    q.build({cs.c, cs.h, cs.w});
    q.quantize_weights(ref.kernel(), ref.bias().defined() ? Tensor::randn({cs.o}, gen) : Tensor());
    const ActivationQuant in = activation_quant(-1.5f, 2.5f);
    q.set_input_quant(in);
    // The fp32 layer gets the dequantized weights and the bias.
    for (int64_t e = 0; e < ref.kernel().numel(); ++e)
      const_cast<float*>(ref.kernel().data())[e] =
          q.kernel().data()[e] * q.kernel_scale().data()[e / (ref.kernel().numel() / cs.o)];
    if (ref.bias().defined()) std::copy(q.bias().data(), q.bias().data() + cs.o, const_cast<float*>(ref.bias().data()));
    const Tensor x = Tensor::rand({3, cs.c, cs.h, cs.w}, gen, -2.f, 3.f);  // some values clip
    // And the values quantization must pin: NaN to code 0 (as fake_quantize
    // does), infinities and huge values to 0 and 255, spread over the image
    // so that both the vector body and the scalar tail of a row see them.
    const float odd[] = {NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 0.5f * in.scale};
    for (int64_t e = 0; e < x.numel(); e += 7) const_cast<float*>(x.data())[e] = odd[(e / 7) % 6];
    const Tensor got = q(x);
    const Tensor want = ref(fake_quantize(x, in));
    INFO("C=" << cs.c << " O=" << cs.o << " k=" << cs.k);
    // The same sums of exact products, in int32 against fp32 (each of at
    // most C*k*k = 45 terms, rounded at 2^-24 relative): 1e-5 of the scale.
    CHECK(max_abs_diff(got, want) <= 1e-5 * (1 + max_abs(want)));
  }
}

TEST_CASE("QuantizedDense: equals Dense on quantized values, and the worst-case bound against fp32", "[int8][quantize]") {
  Generator gen(4);
  const int64_t K = 37, U = 19, N = 6;
  Dense ref(U);
  ref.build({K});
  fill(ref.bias(), std::vector<float>(U, 0.25f));
  const Tensor x = Tensor::randn({N, K}, gen);
  // Calibrated with min/max on x itself: nothing clips.
  const auto range = calibrate_range(x.to_vector(), Calibration::MinMax, 0);
  const ActivationQuant in = activation_quant(range.first, range.second);
  QuantizedDense q(U);
  q.build({K});
  q.quantize_weights(ref.kernel(), ref.bias());
  q.set_input_quant(in);
  const Tensor got = q(x);
  const Tensor fp32 = ref(x);
  // |x_q w_q - x w| <= |x - x_q| |w| + |x| |w - w_q| + |x - x_q| |w - w_q|, with
  // |x - x_q| <= s_x / 2 and |w - w_q| <= s_w[u] / 2, summed over the K
  // inputs: the exact worst case of one layer (plus fp32 rounding).
  for (int64_t n = 0; n < N; ++n)
    for (int64_t u = 0; u < U; ++u) {
      const double sw = q.kernel_scale().data()[u], sx = in.scale;
      double bound = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double w = ref.kernel().data()[k * U + u], xv = x.data()[n * K + k];
        bound += sx / 2 * std::fabs(w) + std::fabs(xv) * sw / 2 + sx / 2 * sw / 2;
      }
      const double d = std::fabs(double{got.data()[n * U + u]} - fp32.data()[n * U + u]);
      CHECK(d <= bound * 1.0001 + 1e-5);
    }
  // And exactly the fp32 product of the dequantized operands.
  Dense deq(U);
  deq.build({K});
  for (int64_t e = 0; e < K * U; ++e)
    const_cast<float*>(deq.kernel().data())[e] = q.kernel().data()[e] * q.kernel_scale().data()[e % U];
  fill(deq.bias(), std::vector<float>(U, 0.25f));
  CHECK(max_abs_diff(got, deq(fake_quantize(x, in))) <= 1e-5 * (1 + max_abs(got)));
}

TEST_CASE("quantize: a small CNN with BatchNorm stays close to fp32 and says what it did", "[int8][quantize]") {
  manual_seed(7);
  Sequential model({2, 12, 12});
  model.add(Conv2D(8, 3)).add(BatchNorm()).add(ReLU()).add(MaxPool2D(2));
  model.add(Flatten()).add(Dropout(0.5f)).add(Dense(16)).add(ReLU()).add(Dense(4));
  Generator gen(5);
  // BatchNorm statistics that are not the identity.
  auto& bn = dynamic_cast<BatchNorm&>(model[1]);
  for (int64_t c = 0; c < 8; ++c) {
    const_cast<float*>(bn.moving_mean().data())[c] = 0.1f * static_cast<float>(c) - 0.3f;
    const_cast<float*>(bn.moving_variance().data())[c] = 0.5f + 0.2f * static_cast<float>(c);
    const_cast<float*>(bn.gamma().data())[c] = 1.f + 0.1f * static_cast<float>(c);
    const_cast<float*>(bn.beta().data())[c] = 0.05f * static_cast<float>(c);
  }
  const Tensor calib = Tensor::rand({200, 2, 12, 12}, gen);
  std::ostringstream log;
  QuantizeOptions o;
  o.log = &log;
  o.method = Calibration::MinMax;
  QuantizeReport report;
  auto q = quantize(model, calib, o, &report);
  // conv2d (+ batch_normalization, re_lu), max_pooling2d, flatten, dense (+ re_lu_1), dense_1;
  // the Dropout left out.
  REQUIRE(q->size() == 5);
  CHECK(q->layers()[0]->type_name() == "QuantizedConv2D");
  CHECK(q->layers()[3]->type_name() == "QuantizedDense");
  CHECK(report.quantized.size() == 3);
  CHECK(report.quantized[0].folded == "batch_normalization (BatchNormalization), re_lu (ReLU)");
  CHECK(report.fp32_layers == std::vector<std::string>{"max_pooling2d (MaxPooling2D)", "flatten (Flatten)"});
  CHECK(report.quantized[0].min >= 0.f);
  CHECK(report.quantized[0].max < 1.f);
  const std::string text = log.str();
  CHECK_THAT(text, Catch::Contains("layer 'max_pooling2d' (MaxPooling2D) runs in fp32"));
  CHECK_THAT(text, Catch::Contains("layer 'conv2d' (Conv2D) -> int8"));
  CHECK_THAT(text, Catch::Contains("top-1 agreement"));
  CHECK_THAT(text, Catch::Contains("layer 'dropout' (Dropout) left out"));
  // Both models evaluate: the fp32 one (whose layers the int8 one shares) too.
  for (const auto& l : model.layers()) CHECK_FALSE(l->is_training());
  for (const auto& l : q->layers()) CHECK_FALSE(l->is_training());
  // Quantization noise: a uniform rounding error of step s has rms s /
  // sqrt(12); with 255 steps over each range, each layer adds about 0.3% of
  // its signal's range, and three layers about 1% of the output. 4% leaves
  // room for the ReLU and pooling reshaping the noise, not for a wrong
  // scale or zero point (those are off by tens of percent).
  CHECK(report.relative_error < 0.04);
  CHECK(report.top1_agreement >= 0.9);
  // The fp32 model is unchanged and the int8 model answers on new inputs too.
  const Tensor x = Tensor::rand({50, 2, 12, 12}, gen);
  const Tensor want = model(x), got = (*q)(x);
  double d2 = 0, n2 = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    d2 += std::pow(double{got.data()[i]} - want.data()[i], 2);
    n2 += std::pow(double{want.data()[i]}, 2);
  }
  CHECK(std::sqrt(d2 / n2) < 0.04);
  // One image at a time gives the same answers as the batch (bit for bit).
  const Tensor one = (*q)(x.slice_rows(7, 8));
  for (int64_t c = 0; c < 4; ++c) CHECK(one.data()[c] == got.data()[7 * 4 + c]);
}

namespace {

// BatchNorm statistics that are not the identity.
void set_statistics(BatchNorm& bn) {
  for (int64_t c = 0; c < bn.moving_mean().numel(); ++c) {
    const float f = static_cast<float>(c);
    const_cast<float*>(bn.moving_mean().data())[c] = 0.1f * f - 0.3f;
    const_cast<float*>(bn.moving_variance().data())[c] = 0.5f + 0.2f * f;
    const_cast<float*>(bn.gamma().data())[c] = 1.f + 0.1f * f;
    const_cast<float*>(bn.beta().data())[c] = 0.05f * f;
  }
}

}  // namespace

TEST_CASE("quantize: a functional model with a residual connection", "[int8][quantize]") {
  manual_seed(21);
  Conv2DOptions same;
  same.padding = Padding::Same;
  auto bn0 = layer(BatchNorm()), bn1 = layer(BatchNorm());
  auto shared = layer(Dense(8));  // called twice: one input range cannot serve both calls
  Node in = Input({2, 10, 10});
  Node h = layer(ReLU())(bn0(layer(Conv2D(8, 3, same))(in)));  // BatchNorm folded, ReLU fused
  Node r = bn1(layer(Conv2D(8, 3, same))(h));                   // folded; the Add reads it, so no ReLU
  h = layer(ReLU())(layer(Add())({h, r}));
  h = layer(Dropout(0.5f))(layer(GlobalAveragePooling2D())(h));
  Model model(in, layer(Dense(4))(shared(layer(ReLU())(shared(h)))));
  set_statistics(*bn0);
  set_statistics(*bn1);
  Generator gen(22);
  const Tensor calib = Tensor::rand({200, 2, 10, 10}, gen);
  const Tensor x = Tensor::rand({50, 2, 10, 10}, gen);
  model.eval();
  const Tensor before = model(x);

  std::ostringstream log;
  QuantizeOptions o;
  o.log = &log;
  QuantizeReport report;
  std::unique_ptr<Model> q = quantize(model, calib, o, &report);
  std::vector<std::string> types;
  for (const auto& l : q->layers()) types.push_back(l->name() + " " + l->type_name());
  CHECK(types == std::vector<std::string>{"conv2d QuantizedConv2D", "conv2d_1 QuantizedConv2D", "add Add",
                                          "re_lu_1 ReLU", "global_average_pooling2d GlobalAveragePooling2D",
                                          "dense Dense", "re_lu_2 ReLU", "dense_1 QuantizedDense"});
  REQUIRE(report.quantized.size() == 3);
  CHECK(report.quantized[0].folded == "batch_normalization (BatchNormalization), re_lu (ReLU)");
  CHECK(report.quantized[1].folded == "batch_normalization_1 (BatchNormalization)");
  CHECK(report.quantized[2].folded.empty());
  CHECK(report.fp32_layers == std::vector<std::string>{"add (Add)", "re_lu_1 (ReLU)",
                                                       "global_average_pooling2d (GlobalAveragePooling2D)",
                                                       "dense (Dense)", "re_lu_2 (ReLU)"});
  const std::string text = log.str();
  CHECK_THAT(text, Catch::Contains("layer 'dense' (Dense) runs in fp32: it is called 2 times"));
  CHECK_THAT(text, Catch::Contains("layer 'dropout' (Dropout) left out"));
  // As for the Sequential CNN above: about 1% of rounding noise per layer.
  CHECK(report.relative_error < 0.04);
  CHECK(report.top1_agreement >= 0.9);
  // The fp32 model gives the same bits as before; the int8 one is close on new inputs.
  CHECK(model(x).to_vector() == before.to_vector());
  const Tensor got = (*q)(x);
  double d2 = 0, n2 = 0;
  for (int64_t i = 0; i < before.numel(); ++i) {
    d2 += std::pow(double{got.data()[i]} - before.data()[i], 2);
    n2 += std::pow(double{before.data()[i]}, 2);
  }
  CHECK(std::sqrt(d2 / n2) < 0.04);
  CHECK(d2 > 0);  // it did quantize

  // Two outputs: refused.
  Node in2 = Input({3});
  Node a = layer(Dense(2))(in2), b = layer(Dense(2))(in2);
  Model two({in2}, {a, b});
  CHECK_THROWS_WITH(quantize(two, Tensor::zeros({4, 3}), quiet()), Catch::Contains("one input and one output"));
}

TEST_CASE("quantize: refuses what it cannot do", "[int8][quantize]") {
  Sequential pools({1, 4, 4});
  pools.add(MaxPool2D(2));
  CHECK_THROWS_WITH(quantize(pools, Tensor::zeros({2, 1, 4, 4}), quiet()), Catch::Contains("no Conv2D or Dense"));
  Sequential m({3});
  m.add(Dense(2));
  CHECK_THROWS_WITH(quantize(m, Tensor::zeros({2, 4}), quiet()), Catch::Contains("does not fit the model's input"));
  Sequential unbuilt;
  unbuilt.add(Dense(2));
  CHECK_THROWS_WITH(quantize(unbuilt, Tensor::zeros({2, 4}), quiet()), Catch::Contains("not built"));
  QuantizedDense d(2);
  d.build({3});
  CHECK_THROWS_WITH(d.set_input_quant({0.f, 0}), Catch::Contains("finite and positive"));
  CHECK_THROWS_WITH(d.set_input_quant({1.f, 256}), Catch::Contains("outside [0, 255]"));
  fill(d.kernel(), {1, 2, 3, 4, 5, 300});  // not an int8 code
  CHECK_THROWS_WITH(d(Tensor::zeros({1, 3})), Catch::Contains("not an integer in [-127, 127]"));
}
