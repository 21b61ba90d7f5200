// quantize(): calibration, BatchNorm folding, ReLU fusion and the int8/fp32
// comparison (see maas/quantize.hpp).
#include "maas/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "maas/autograd.hpp"
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "ops/lowp/int8_gemm.hpp"

namespace maas {

std::string to_string(Calibration c) { return c == Calibration::MinMax ? "minmax" : "percentile"; }

Calibration calibration_from_string(const std::string& name) {
  if (name == "minmax") return Calibration::MinMax;
  if (name == "percentile") return Calibration::Percentile;
  MAAS_FAIL("calibration '" << name.substr(0, 40) << "' is not one of minmax, percentile");
}

namespace {

// numpy.percentile(values, q) with linear interpolation; reorders values.
float percentile_of(std::vector<float>& v, double q) {
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(pos));
  const double frac = pos - static_cast<double>(i);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  const float a = v[i];
  if (frac == 0.0 || i + 1 >= v.size()) return a;
  const float b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(i) + 1, v.end());
  return static_cast<float>(a + frac * (static_cast<double>(b) - a));
}

bool is_relu(const nn::Module& m) {
  const auto* a = dynamic_cast<const nn::ActivationLayer*>(&m);
  return a != nullptr && a->activation() == nn::Activation::ReLU;
}

// The BatchNorm's per-channel y = inv * x + shift, in fp32.
void batch_norm_affine(const nn::BatchNorm& bn, std::vector<float>& inv, std::vector<float>& shift) {
  const int64_t C = bn.moving_mean().numel();
  inv.resize(static_cast<size_t>(C));
  shift.resize(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const float g = bn.options().affine ? bn.gamma().data()[c] : 1.f;
    const float b = bn.options().affine ? bn.beta().data()[c] : 0.f;
    const float s = g / std::sqrt(bn.moving_variance().data()[c] + bn.options().eps);
    inv[static_cast<size_t>(c)] = s;
    shift[static_cast<size_t>(c)] = b - bn.moving_mean().data()[c] * s;
  }
}

std::string fmt(double v) {
  std::ostringstream os;
  os << std::setprecision(4) << v;
  return os.str();
}

}  // namespace

std::pair<float, float> calibrate_range(std::vector<float> values, Calibration method, double percentile) {
  MAAS_CHECK(!values.empty(), "quantize: no values to calibrate a range on");
  for (float v : values) MAAS_CHECK(std::isfinite(v), "quantize: a calibration activation is " << v);
  float lo, hi;
  if (method == Calibration::MinMax) {
    const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    lo = *mn, hi = *mx;
  } else {
    MAAS_CHECK(percentile > 50.0 && percentile <= 100.0,
               "quantize: percentile " << percentile << " must be in (50, 100]");
    hi = percentile_of(values, percentile);
    lo = percentile_of(values, 100.0 - percentile);
  }
  return {std::min(lo, 0.f), std::max(hi, 0.f)};
}

nn::ActivationQuant activation_quant(float lo, float hi) {
  MAAS_CHECK(lo <= 0.f && hi >= 0.f && std::isfinite(lo) && std::isfinite(hi),
             "activation_quant: range [" << lo << ", " << hi << "] must be finite and hold 0");
  nn::ActivationQuant q;
  q.scale = hi > lo ? (hi - lo) / 255.f : 1.f;
  q.zero_point = static_cast<int32_t>(std::min(255.f, std::max(0.f, std::nearbyint(-lo / q.scale))));
  return q;
}

std::unique_ptr<nn::Sequential> quantize(nn::Sequential& model, const Tensor& calibration,
                                         const QuantizeOptions& options, QuantizeReport* report_out) {
  MAAS_CHECK(model.built(), "quantize: the model is not built: give the Sequential its input shape or run a batch "
                            "through it first");
  MAAS_CHECK(options.max_samples >= 1, "quantize: max_samples must be at least 1, got " << options.max_samples);
  MAAS_CHECK(calibration.defined() && calibration.dim() >= 1 && calibration.size(0) >= 1,
             "quantize: the calibration batch is empty");
  const Shape sample(calibration.shape().begin() + 1, calibration.shape().end());
  MAAS_CHECK(sample == model.input_shape(), "quantize: calibration batch " << maas::to_string(calibration.shape())
                                                                          << " does not fit the model's input "
                                                                          << nn::batch_shape_string(model.input_shape()));
  if (options.method == Calibration::Percentile)
    MAAS_CHECK(options.percentile > 50.0 && options.percentile <= 100.0,
               "quantize: percentile " << options.percentile << " must be in (50, 100]");
  std::ostream& log = options.log != nullptr ? *options.log : std::cerr;
  auto say = [&](const std::string& line) {
    if (!options.quiet) log << "quantize: " << line << "\n";
  };

  QuantizeReport report;
  report.kernel = detail::int8_kernel_description();
  report.samples = std::min(calibration.size(0), options.max_samples);
  const Tensor calib = calibration.slice_rows(0, report.samples);
  say("int8 kernel: " + report.kernel + "; calibrating on " + std::to_string(report.samples) + " samples (" +
      to_string(options.method) +
      (options.method == Calibration::Percentile ? " " + fmt(options.percentile) : std::string()) + ")");

  model.eval();
  const NoGradGuard no_grad;
  auto out = std::make_unique<nn::Sequential>(model.input_shape());
  out->eval();  // before any add(): a layer added takes its model's mode, and the fp32 ones are shared
  Tensor h = calib;  // the fp32 model's activation at the current layer's input
  const auto& layers = model.layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    nn::Module& m = *layers[i];
    const Shape in = i == 0 ? model.input_shape() : model.output_shape(i - 1);
    auto* conv = dynamic_cast<nn::Conv2D*>(&m);
    auto* dense = dynamic_cast<nn::Dense*>(&m);
    if (dynamic_cast<nn::Dropout*>(&m) != nullptr) {  // the identity at inference
      say("layer '" + m.name() + "' (Dropout) left out: it is the identity at inference");
      continue;
    }
    if (conv == nullptr && dense == nullptr) {
      const std::string what = "'" + m.name() + "' (" + m.type_name() + ")";
      report.fp32_layers.push_back(m.name() + " (" + m.type_name() + ")");
      say("layer " + what + " runs in fp32: maas has no int8 kernel for it");
      out->add(layers[i]);
      h = m.forward(h);
      continue;
    }
    QuantizedLayerReport lr;
    lr.name = m.name();
    // The range of this layer's input.
    const std::vector<float> values(h.data(), h.data() + h.numel());
    const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    lr.min = *mn, lr.max = *mx;
    std::tie(lr.lo, lr.hi) = calibrate_range(values, options.method, options.percentile);
    lr.input = activation_quant(lr.lo, lr.hi);

    // The fp32 weights, with a following BatchNorm folded in.
    Tensor kernel = (conv ? conv->kernel() : dense->kernel()).clone();
    Tensor bias = conv ? conv->bias() : dense->bias();
    bias = bias.defined() ? bias.clone() : Tensor();
    const nn::Activation act = conv ? conv->options().activation : dense->options().activation;
    const int64_t O = conv ? conv->filters() : dense->units();
    h = m.forward(h);
    size_t next = i + 1;
    std::vector<std::string> folded;
    if (options.fold_batch_norm && act == nn::Activation::None && next < layers.size()) {
      const auto* bn = dynamic_cast<const nn::BatchNorm*>(layers[next].get());
      const bool fits = bn != nullptr && bn->moving_mean().numel() == O && (conv != nullptr || in.size() == 1);
      if (fits) {
        std::vector<float> inv, shift;
        batch_norm_affine(*bn, inv, shift);
        float* k = kernel.data();
        const int64_t per = conv ? kernel.numel() / O : 1;
        for (int64_t e = 0; e < kernel.numel(); ++e) k[e] *= inv[static_cast<size_t>(conv ? e / per : e % O)];
        if (!bias.defined()) bias = Tensor::zeros({O});
        for (int64_t o = 0; o < O; ++o)
          bias.data()[o] = bias.data()[o] * inv[static_cast<size_t>(o)] + shift[static_cast<size_t>(o)];
        folded.push_back(bn->name() + " (BatchNormalization)");
        h = layers[next]->forward(h);
        ++next;
      }
    }
    nn::Activation fused = act;
    if (options.fuse_relu && act == nn::Activation::None && next < layers.size() && is_relu(*layers[next])) {
      fused = nn::Activation::ReLU;
      folded.push_back(layers[next]->name() + " (" + layers[next]->type_name() + ")");
      h = layers[next]->forward(h);
      ++next;
    }

    std::shared_ptr<nn::QuantizedLayer> q;
    if (conv != nullptr) {
      nn::Conv2DOptions o = conv->options();
      o.activation = fused;
      o.use_bias = bias.defined();
      q = std::make_shared<nn::QuantizedConv2D>(conv->filters(), conv->kernel_size(), o);
    } else {
      nn::DenseOptions o = dense->options();
      o.activation = fused;
      o.use_bias = bias.defined();
      q = std::make_shared<nn::QuantizedDense>(dense->units(), o);
    }
    q->set_name(m.name());
    q->build(in);
    q->quantize_weights(kernel, bias);
    q->set_input_quant(lr.input);
    out->add(std::static_pointer_cast<nn::Module>(q));
    lr.type = q->type_name();
    for (size_t f = 0; f < folded.size(); ++f) lr.folded += (f ? ", " : "") + folded[f];
    say("layer '" + lr.name + "' (" + m.type_name() + ") -> int8: input seen in [" + fmt(lr.min) + ", " +
        fmt(lr.max) + "], calibrated [" + fmt(lr.lo) + ", " + fmt(lr.hi) + "], scale " + fmt(lr.input.scale) +
        ", zero point " + std::to_string(lr.input.zero_point) +
        (lr.folded.empty() ? std::string() : "; merged into it: " + lr.folded));
    report.quantized.push_back(lr);
    i = next - 1;
  }
  MAAS_CHECK(!report.quantized.empty(), "quantize: the model has no Conv2D or Dense layer to quantize");

  // How far the int8 model is from the fp32 one, on the calibration samples.
  const Tensor want = model.forward(calib);
  const Tensor got = out->forward(calib);
  const float* a = want.data();
  const float* b = got.data();
  double diff2 = 0, norm2 = 0;
  for (int64_t e = 0; e < want.numel(); ++e) {
    const double d = static_cast<double>(b[e]) - a[e];
    report.max_abs_diff = std::max(report.max_abs_diff, std::fabs(d));
    diff2 += d * d;
    norm2 += static_cast<double>(a[e]) * a[e];
  }
  report.relative_error = norm2 > 0 ? std::sqrt(diff2 / norm2) : std::sqrt(diff2);
  std::string line = "int8 vs fp32 on the " + std::to_string(report.samples) + " calibration samples: ";
  if (want.dim() == 2 && want.size(1) > 1) {
    const int64_t N = want.size(0), C = want.size(1);
    int64_t agree = 0;
    for (int64_t n = 0; n < N; ++n)
      agree += std::max_element(a + n * C, a + (n + 1) * C) - (a + n * C) ==
               std::max_element(b + n * C, b + (n + 1) * C) - (b + n * C);
    report.top1_agreement = static_cast<double>(agree) / static_cast<double>(N);
    line += "top-1 agreement " + fmt(100.0 * report.top1_agreement) + "%, ";
  }
  say(line + "max |difference| " + fmt(report.max_abs_diff) + ", relative error " +
      fmt(100.0 * report.relative_error) + "%");
  if (report_out != nullptr) *report_out = std::move(report);
  return out;
}

}  // namespace maas
