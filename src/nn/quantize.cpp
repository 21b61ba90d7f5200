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

namespace {

// What quantize() shares between Sequential and functional models: the
// options and checks, the log, the report, the making of each int8 layer
// and the comparison at the end.
class Quantizer {
 public:
  Quantizer(const QuantizeOptions& options, const Shape& model_input, const Tensor& calibration)
      : options_(options), log_(options.log != nullptr ? *options.log : std::cerr) {
    MAAS_CHECK(options.max_samples >= 1, "quantize: max_samples must be at least 1, got " << options.max_samples);
    MAAS_CHECK(calibration.defined() && calibration.dim() >= 1 && calibration.size(0) >= 1,
               "quantize: the calibration batch is empty");
    const Shape sample(calibration.shape().begin() + 1, calibration.shape().end());
    MAAS_CHECK(sample == model_input, "quantize: calibration batch " << maas::to_string(calibration.shape())
                                                                    << " does not fit the model's input "
                                                                    << nn::batch_shape_string(model_input));
    if (options.method == Calibration::Percentile)
      MAAS_CHECK(options.percentile > 50.0 && options.percentile <= 100.0,
                 "quantize: percentile " << options.percentile << " must be in (50, 100]");
    report_.kernel = detail::int8_kernel_description();
    report_.samples = std::min(calibration.size(0), options.max_samples);
    calib_ = calibration.slice_rows(0, report_.samples);
    say("int8 kernel: " + report_.kernel + "; calibrating on " + std::to_string(report_.samples) + " samples (" +
        to_string(options.method) +
        (options.method == Calibration::Percentile ? " " + fmt(options.percentile) : std::string()) + ")");
  }

  const QuantizeOptions& options() const { return options_; }
  const Tensor& calibration() const { return calib_; }

  void say(const std::string& line) const {
    if (!options_.quiet) log_ << "quantize: " << line << "\n";
  }

  // A layer with no int8 kernel, kept in fp32 (`why` says why).
  void keep_fp32(const nn::Module& m, const std::string& why = "maas has no int8 kernel for it") {
    report_.fp32_layers.push_back(m.name() + " (" + m.type_name() + ")");
    say("layer '" + m.name() + "' (" + m.type_name() + ") runs in fp32: " + why);
  }
  void leave_out(const nn::Module& m) const {
    say("layer '" + m.name() + "' (" + m.type_name() + ") left out: it is the identity at inference");
  }

  // The BatchNorm `next` when it can be folded into conv/dense `m` (taking
  // per-sample input `in`): no activation between them, one channel per
  // output of m.
  const nn::BatchNorm* foldable_batch_norm(const nn::Module& m, const Shape& in, const nn::Module& next) const {
    const auto* conv = dynamic_cast<const nn::Conv2D*>(&m);
    const auto* dense = dynamic_cast<const nn::Dense*>(&m);
    const auto* bn = dynamic_cast<const nn::BatchNorm*>(&next);
    if (!options_.fold_batch_norm || bn == nullptr || activation(m) != nn::Activation::None) return nullptr;
    const int64_t O = conv ? conv->filters() : dense->units();
    return bn->moving_mean().numel() == O && (conv != nullptr || in.size() == 1) ? bn : nullptr;
  }
  // Whether `next` is a ReLU that can be fused into m's store.
  bool fusable_relu(const nn::Module& m, const nn::Module& next) const {
    return options_.fuse_relu && activation(m) == nn::Activation::None && is_relu(next);
  }

  // The int8 layer for Conv2D or Dense `m`, whose input (per sample `in`)
  // takes the values `h` on the calibration samples, with `bn` (may be
  // null) folded in and `relu` (may be null) fused.
  std::shared_ptr<nn::Module> make(const nn::Module& m, const Shape& in, const Tensor& h, const nn::BatchNorm* bn,
                                   const nn::Module* relu) {
    const auto* conv = dynamic_cast<const nn::Conv2D*>(&m);
    const auto* dense = dynamic_cast<const nn::Dense*>(&m);
    QuantizedLayerReport lr;
    lr.name = m.name();
    // The range of this layer's input.
    const std::vector<float> values(h.data(), h.data() + h.numel());
    const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    lr.min = *mn, lr.max = *mx;
    std::tie(lr.lo, lr.hi) = calibrate_range(values, options_.method, options_.percentile);
    lr.input = activation_quant(lr.lo, lr.hi);

    // The fp32 weights, with the BatchNorm folded in.
    Tensor kernel = (conv ? conv->kernel() : dense->kernel()).clone();
    Tensor bias = conv ? conv->bias() : dense->bias();
    bias = bias.defined() ? bias.clone() : Tensor();
    const int64_t O = conv ? conv->filters() : dense->units();
    std::vector<std::string> folded;
    if (bn != nullptr) {
      std::vector<float> inv, shift;
      batch_norm_affine(*bn, inv, shift);
      float* k = kernel.data();
      const int64_t per = conv ? kernel.numel() / O : 1;
      for (int64_t e = 0; e < kernel.numel(); ++e) k[e] *= inv[static_cast<size_t>(conv ? e / per : e % O)];
      if (!bias.defined()) bias = Tensor::zeros({O});
      for (int64_t o = 0; o < O; ++o)
        bias.data()[o] = bias.data()[o] * inv[static_cast<size_t>(o)] + shift[static_cast<size_t>(o)];
      folded.push_back(bn->name() + " (BatchNormalization)");
    }
    const nn::Activation fused = relu != nullptr ? nn::Activation::ReLU : activation(m);
    if (relu != nullptr) folded.push_back(relu->name() + " (" + relu->type_name() + ")");

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
    q->eval();
    lr.type = q->type_name();
    for (size_t f = 0; f < folded.size(); ++f) lr.folded += (f ? ", " : "") + folded[f];
    say("layer '" + lr.name + "' (" + m.type_name() + ") -> int8: input seen in [" + fmt(lr.min) + ", " +
        fmt(lr.max) + "], calibrated [" + fmt(lr.lo) + ", " + fmt(lr.hi) + "], scale " + fmt(lr.input.scale) +
        ", zero point " + std::to_string(lr.input.zero_point) +
        (lr.folded.empty() ? std::string() : "; merged into it: " + lr.folded));
    report_.quantized.push_back(lr);
    return q;
  }

  // How far the int8 model is from the fp32 one, on the calibration
  // samples; hands the report over.
  void finish(nn::Module& fp32, nn::Module& int8, QuantizeReport* report_out) {
    MAAS_CHECK(!report_.quantized.empty(), "quantize: the model has no Conv2D or Dense layer to quantize");
    const Tensor want = fp32.forward(calib_);
    const Tensor got = int8.forward(calib_);
    const float* a = want.data();
    const float* b = got.data();
    double diff2 = 0, norm2 = 0;
    for (int64_t e = 0; e < want.numel(); ++e) {
      const double d = static_cast<double>(b[e]) - a[e];
      report_.max_abs_diff = std::max(report_.max_abs_diff, std::fabs(d));
      diff2 += d * d;
      norm2 += static_cast<double>(a[e]) * a[e];
    }
    report_.relative_error = norm2 > 0 ? std::sqrt(diff2 / norm2) : std::sqrt(diff2);
    std::string line = "int8 vs fp32 on the " + std::to_string(report_.samples) + " calibration samples: ";
    if (want.dim() == 2 && want.size(1) > 1) {
      const int64_t N = want.size(0), C = want.size(1);
      int64_t agree = 0;
      for (int64_t n = 0; n < N; ++n)
        agree += std::max_element(a + n * C, a + (n + 1) * C) - (a + n * C) ==
                 std::max_element(b + n * C, b + (n + 1) * C) - (b + n * C);
      report_.top1_agreement = static_cast<double>(agree) / static_cast<double>(N);
      line += "top-1 agreement " + fmt(100.0 * report_.top1_agreement) + "%, ";
    }
    say(line + "max |difference| " + fmt(report_.max_abs_diff) + ", relative error " +
        fmt(100.0 * report_.relative_error) + "%");
    if (report_out != nullptr) *report_out = std::move(report_);
  }

  static bool quantizable(const nn::Module& m) {
    return dynamic_cast<const nn::Conv2D*>(&m) != nullptr || dynamic_cast<const nn::Dense*>(&m) != nullptr;
  }

 private:
  static nn::Activation activation(const nn::Module& m) {
    if (const auto* conv = dynamic_cast<const nn::Conv2D*>(&m)) return conv->options().activation;
    if (const auto* dense = dynamic_cast<const nn::Dense*>(&m)) return dense->options().activation;
    return nn::Activation::None;
  }

  const QuantizeOptions& options_;
  std::ostream& log_;
  QuantizeReport report_;
  Tensor calib_;
};

}  // namespace

std::unique_ptr<nn::Sequential> quantize(nn::Sequential& model, const Tensor& calibration,
                                         const QuantizeOptions& options, QuantizeReport* report_out) {
  MAAS_CHECK(model.built(), "quantize: the model is not built: give the Sequential its input shape or run a batch "
                            "through it first");
  Quantizer quantizer(options, model.input_shape(), calibration);
  model.eval();
  const NoGradGuard no_grad;
  auto out = std::make_unique<nn::Sequential>(model.input_shape());
  out->eval();  // before any add(): a layer added takes its model's mode, and the fp32 ones are shared
  Tensor h = quantizer.calibration();  // the fp32 model's activation at the current layer's input
  const auto& layers = model.layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    nn::Module& m = *layers[i];
    const Shape in = i == 0 ? model.input_shape() : model.output_shape(i - 1);
    if (dynamic_cast<nn::Dropout*>(&m) != nullptr) {
      quantizer.leave_out(m);
      continue;
    }
    if (!Quantizer::quantizable(m)) {
      quantizer.keep_fp32(m);
      out->add(layers[i]);
      h = m.forward(h);
      continue;
    }
    size_t next = i + 1;
    const nn::BatchNorm* bn = next < layers.size() ? quantizer.foldable_batch_norm(m, in, *layers[next]) : nullptr;
    if (bn != nullptr) ++next;
    const nn::Module* relu = next < layers.size() && quantizer.fusable_relu(m, *layers[next]) ? layers[next].get() : nullptr;
    if (relu != nullptr) ++next;
    out->add(quantizer.make(m, in, h, bn, relu));
    for (size_t j = i; j < next; ++j) h = layers[j]->forward(h);
    i = next - 1;
  }
  quantizer.finish(model, *out, report_out);
  return out;
}

std::unique_ptr<nn::Model> quantize(nn::Model& model, const Tensor& calibration, const QuantizeOptions& options,
                                    QuantizeReport* report_out) {
  MAAS_CHECK(model.built(), "quantize: the model is not built");
  MAAS_CHECK(model.input_nodes().size() == 1 && model.output_nodes().size() == 1,
             "quantize: takes a model of one input and one output; this one has "
                 << model.input_nodes().size() << " inputs and " << model.output_nodes().size() << " outputs");
  Quantizer quantizer(options, model.input_nodes()[0].shape(), calibration);
  model.eval();
  const NoGradGuard no_grad;

  // The graph, and who reads each call's output.
  const auto& layers = model.layers();
  const std::vector<nn::Network::Call> calls = model.calls();
  const nn::Network::Source output = model.outputs()[0];
  std::vector<std::vector<size_t>> readers(calls.size());
  std::vector<int> calls_of(layers.size(), 0);
  for (size_t c = 0; c < calls.size(); ++c) {
    ++calls_of[calls[c].layer];
    for (const auto& s : calls[c].inputs)
      if (!s.model_input) readers[s.index].push_back(c);
  }
  // The one call reading c's output, when there is exactly one and c's
  // output is not the model's; and its layer is called nowhere else.
  auto sole_reader = [&](size_t c) -> const nn::Network::Call* {
    if ((!output.model_input && output.index == c) || readers[c].size() != 1) return nullptr;
    const nn::Network::Call& r = calls[readers[c][0]];
    return r.inputs.size() == 1 && calls_of[r.layer] == 1 ? &r : nullptr;
  };

  // Walks the calls in order with the fp32 activations of the calibration
  // samples (each let go after its last reader), making the int8 graph:
  // node[c] is call c's node there. A BatchNorm folded or a ReLU fused
  // into a call shares its node.
  const nn::Node& input = model.input_nodes()[0];
  const nn::Node in_node = nn::Input(input.shape(), input.name());
  std::vector<nn::Node> node(calls.size());
  std::vector<Tensor> value(calls.size());
  std::vector<size_t> left(calls.size());
  for (size_t c = 0; c < calls.size(); ++c) left[c] = readers[c].size();
  std::vector<bool> merged(calls.size(), false), said(layers.size(), false);
  auto source_node = [&](const nn::Network::Source& s) { return s.model_input ? in_node : node[s.index]; };
  auto source_value = [&](const nn::Network::Source& s) {
    return s.model_input ? quantizer.calibration() : value[s.index];
  };
  auto source_shape = [&](const nn::Network::Source& s) {
    return s.model_input ? input.shape() : model.call_shape(s.index);
  };
  for (size_t c = 0; c < calls.size(); ++c) {
    if (merged[c]) continue;
    const nn::Network::Call& call = calls[c];
    nn::Module& m = *layers[call.layer];
    std::vector<nn::Node> in_nodes;
    std::vector<Tensor> ins;
    for (const auto& s : call.inputs) {
      in_nodes.push_back(source_node(s));
      ins.push_back(source_value(s));
    }
    size_t last = c;  // the call whose output the int8 node gives
    if (dynamic_cast<nn::Dropout*>(&m) != nullptr && ins.size() == 1) {
      if (!said[call.layer]) quantizer.leave_out(m);
      node[c] = in_nodes[0];
      value[c] = ins[0];
    } else if (Quantizer::quantizable(m) && calls_of[call.layer] == 1) {
      const Shape in = source_shape(call.inputs[0]);
      const nn::BatchNorm* bn = nullptr;
      const nn::Module* relu = nullptr;
      const nn::Network::Call* r = sole_reader(last);
      if (r != nullptr && (bn = quantizer.foldable_batch_norm(m, in, *layers[r->layer])) != nullptr) {
        last = readers[last][0];
        r = sole_reader(last);
      }
      if (r != nullptr && quantizer.fusable_relu(m, *layers[r->layer])) {
        relu = layers[r->layer].get();
        last = readers[last][0];
      }
      const nn::Node q = nn::call(quantizer.make(m, in, ins[0], bn, relu), {in_nodes[0]});
      Tensor h = m.forward(ins[0]);
      for (size_t j = c; j != last;) {
        j = readers[j][0];
        merged[j] = true;
        node[j] = q;
        h = layers[calls[j].layer]->forward(h);
      }
      node[c] = q;
      value[last] = h;
    } else {
      if (!said[call.layer])
        quantizer.keep_fp32(m, Quantizer::quantizable(m)
                                   ? "it is called " + std::to_string(calls_of[call.layer]) +
                                         " times, and one input range would have to serve every call"
                                   : "maas has no int8 kernel for it");
      node[c] = nn::call(layers[call.layer], in_nodes);
      value[c] = m.forward_many(ins);
    }
    said[call.layer] = true;
    for (const auto& s : call.inputs)
      if (!s.model_input && --left[s.index] == 0) value[s.index] = Tensor();
  }
  auto out = std::make_unique<nn::Model>(in_node, source_node(output));
  out->set_name(model.name());
  out->eval();
  quantizer.finish(model, *out, report_out);
  return out;
}

}  // namespace maas
