// maas/quantize.hpp: post-training int8 quantization of a trained model.
//
//   maas::Tensor calib = ...;                   // a few hundred training inputs
//   maas::QuantizeReport report;
//   auto q = maas::quantize(model, calib, {}, &report);
//   maas::save_model(*q, "model-int8.h5");      // about a quarter of the fp32 file
//
// The result is a new Sequential (or functional Model, see the second
// quantize() below) in which every Conv2D and Dense is a
// QuantizedConv2D / QuantizedDense (maas/nn/quantized.hpp): weights int8,
// symmetric per output channel; the layer's input uint8 with one scale and
// zero point, calibrated on the fp32 model's activations over `calibration`
// (its first max_samples samples). Also:
//   - a BatchNorm right after a Conv2D without activation is folded into the
//     convolution's weights and bias (exact in fp32 before rounding);
//   - a ReLU layer right after a quantized layer is fused into its store;
//   - Dropout layers are left out (the identity at inference);
//   - every other layer (pooling, Flatten, Normalization, an unfolded
//     BatchNorm, ...) runs in fp32: it is shared with the source model (not
//     copied), and quantize() logs one line for it. Both models are in
//     evaluation mode afterwards; a shared layer follows train() / eval()
//     of either model, so train the source model again only after you are
//     done with the int8 one (or quantize again).
// The model never silently changes its answers: quantize() logs each
// layer's calibrated range, scale and zero point, then runs `calibration`
// through both models and logs how far int8 is from fp32 (top-1
// agreement, largest and relative difference of the outputs); the same
// figures are in the QuantizeReport.
//
// Calibration of an input range [lo, hi] (widened to hold 0, so that 0 is
// exact, as padding needs):
//   MinMax      lo, hi = the smallest and largest value seen;
//   Percentile  lo, hi = the (100 - p)-th and p-th percentiles of the values
//               seen (numpy's linear interpolation), clipping rare outliers;
// then scale = (hi - lo) / 255 (1 when hi == lo) and zero_point =
// round(-lo / scale), in [0, 255].
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "maas/nn/model.hpp"
#include "maas/nn/quantized.hpp"
#include "maas/nn/sequential.hpp"
#include "maas/tensor.hpp"

namespace maas {

enum class Calibration { MinMax, Percentile };
// "minmax", "percentile"; from_string throws maas::Error for anything else.
std::string to_string(Calibration c);
Calibration calibration_from_string(const std::string& name);

struct QuantizeOptions {
  Calibration method = Calibration::Percentile;
  double percentile = 99.99;    // Percentile: in (50, 100]
  int64_t max_samples = 512;    // of calibration, the first ones
  bool fold_batch_norm = true;
  bool fuse_relu = true;
  std::ostream* log = nullptr;  // where the lines go; null: std::cerr
  bool quiet = false;           // no lines at all
};

struct QuantizedLayerReport {
  std::string name, type;  // the quantized layer ("conv2d", "QuantizedConv2D")
  float min = 0, max = 0;  // the input values seen
  float lo = 0, hi = 0;    // the range calibrated
  nn::ActivationQuant input;
  std::string folded;      // what was merged into it ("batch_normalization, re_lu"), or empty
};

struct QuantizeReport {
  std::vector<QuantizedLayerReport> quantized;
  std::vector<std::string> fp32_layers;  // "max_pooling2d (MaxPooling2D)"
  std::string kernel;                    // the int8 kernel that runs ("VNNI (vpdpbusd)")
  int64_t samples = 0;                   // calibration samples used
  double top1_agreement = -1;            // share of samples whose argmax agrees (outputs [N, classes]); -1 otherwise
  double max_abs_diff = 0;               // max |int8 - fp32| over the outputs
  double relative_error = 0;             // ||int8 - fp32|| / ||fp32||
};

// The range [lo, hi] calibrated from `values` (see the top of this file).
// Throws maas::Error for no values, a non-finite one, or a percentile
// outside (50, 100].
std::pair<float, float> calibrate_range(std::vector<float> values, Calibration method, double percentile);
// scale and zero point for [lo, hi] (lo <= 0 <= hi).
nn::ActivationQuant activation_quant(float lo, float hi);

// The int8 model of a built `model` (see the top of this file); `model`
// itself is set to evaluation mode and otherwise unchanged. calibration is
// [S, per-sample input shape]. Throws maas::Error when the model is not
// built, has no Conv2D or Dense, or the calibration batch does not fit it.
std::unique_ptr<nn::Sequential> quantize(nn::Sequential& model, const Tensor& calibration,
                                         const QuantizeOptions& options = {}, QuantizeReport* report = nullptr);

// The same for a functional model of one input and one output (a ResNet):
// a new Model of the same graph in which each Conv2D or Dense called once is
// int8, with a BatchNorm that alone reads its output folded in and a ReLU
// that alone reads the result fused, as above. Every other call (Add,
// Concatenate, pooling, a layer called more than once, ...) runs in fp32 on
// the shared layer, and is logged once per layer; Dropout calls are left
// out. Throws maas::Error as above, and for several inputs or outputs.
std::unique_ptr<nn::Model> quantize(nn::Model& model, const Tensor& calibration, const QuantizeOptions& options = {},
                                    QuantizeReport* report = nullptr);

}  // namespace maas
