// maas/nn/quantized.hpp: int8 versions of Conv2D and Dense, for inference.
// maas::quantize() (maas/quantize.hpp) makes them from a trained model;
// save_model / load_model store them.
//
// Each holds, as buffers (saved, not trained):
//   kernel        the int8 weights, as integers in [-127, 127] (held as
//                 floats; stored as an int8 dataset), Conv2D's / Dense's shape
//   kernel_scale  [out]: the weight of output o is kernel_scale[o] * kernel[o]
//                 (symmetric, per output channel)
//   bias          [out], fp32 (when use_bias)
// and the input's quantization (per tensor, asymmetric uint8):
//   input_scale, input_zero_point   0-d (the zero point an integer in [0, 255])
//   q = clamp(round(x / input_scale) + input_zero_point, 0, 255)
// save_model writes them as Keras weights of the layer: kernel:0 (int8),
// kernel_scale:0, bias:0, input_scale:0 (float32) and input_zero_point:0
// (int32).
// The product runs on int8 kernels with int32 sums (ops/lowp/int8_gemm.hpp),
// dequantized with the bias and the activation added (ReLU fused into the
// store). Gradients do not flow through these layers: they are for
// inference only.
//
// The kernel is packed for the int8 kernels when first used; after changing
// kernel, kernel_scale, bias or the input's quantization in place, call
// repack().
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "maas/nn/layers.hpp"

namespace maas::detail {
struct Int8Layer;
}

namespace maas::nn {

// An activation's per-tensor uint8 quantization.
struct ActivationQuant {
  float scale = 1.f;
  int32_t zero_point = 0;  // in [0, 255]
};

// What the quantized layers share: their buffers, the input's quantization
// and the packed weights.
class QuantizedLayer : public Module {
 public:
  const Tensor& kernel() const { return kernel_; }
  const Tensor& kernel_scale() const { return kernel_scale_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& input_scale() const { return input_scale_; }
  const Tensor& input_zero_point() const { return input_zero_point_; }
  ActivationQuant input_quant() const;
  // Throws maas::Error unless scale is finite and positive and the zero point in [0, 255].
  void set_input_quant(ActivationQuant q);
  // Quantizes fp32 weights of the built layer's shapes into it (see
  // quantize_per_channel); `bias` must be given exactly when use_bias.
  void quantize_weights(const Tensor& kernel, const Tensor& bias);
  // Drops the packed weights; the next forward packs them again.
  void repack();
  // Packs the weights now; throws maas::Error naming the layer when a
  // buffer holds what the kernels cannot take (a code outside [-127, 127],
  // a scale that is not finite and positive, a zero point outside [0, 255]).
  void prepare() { packed(); }
  // After a load: drops what was packed from the old weights and packs the new.
  void weights_loaded() override {
    repack();
    prepare();
  }
  bool samples_independent() const override { return true; }

 protected:
  // Registers the buffers: kernel of `kernel_shape`, kernel_scale and bias [out].
  void create_buffers(const Shape& kernel_shape, int64_t out, bool use_bias);
  // The packed weights, made on first use (thread-safe).
  const maas::detail::Int8Layer& packed();
  virtual std::shared_ptr<maas::detail::Int8Layer> pack() const = 0;
  virtual int out_dim() const = 0;  // the kernel's output-channel dimension

  Tensor kernel_, kernel_scale_, bias_, input_scale_, input_zero_point_;

 private:
  struct Cache {
    std::mutex mutex;
    std::shared_ptr<maas::detail::Int8Layer> layer;
  };
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

class QuantizedConv2D : public QuantizedLayer {
 public:
  QuantizedConv2D(int64_t filters, Pair kernel_size, Conv2DOptions options = {});
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "QuantizedConv2D"; }
  int64_t filters() const { return conv_.filters(); }
  const Pair& kernel_size() const { return conv_.kernel_size(); }
  const Conv2DOptions& options() const { return conv_.options(); }

 protected:
  std::shared_ptr<maas::detail::Int8Layer> pack() const override;
  int out_dim() const override { return 0; }

 private:
  Conv2D conv_;  // the options and shape arithmetic (never built)
};

class QuantizedDense : public QuantizedLayer {
 public:
  explicit QuantizedDense(int64_t units, DenseOptions options = {});
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "QuantizedDense"; }
  int64_t units() const { return dense_.units(); }
  const DenseOptions& options() const { return dense_.options(); }

 protected:
  std::shared_ptr<maas::detail::Int8Layer> pack() const override;
  int out_dim() const override { return 1; }

 private:
  Dense dense_;
};

// Symmetric per-output-channel int8 quantization of a weight whose output
// channel is dimension `out_dim` (0 for a Conv2D kernel [O, C, kh, kw], 1
// for a Dense kernel [in, out]): scale[o] = max |w[o]| / 127 (1 for an
// all-zero channel), code = round_half_even(w / scale[o]). Returns the codes
// (as floats) and the scales.
std::pair<Tensor, Tensor> quantize_per_channel(const Tensor& w, int out_dim);

}  // namespace maas::nn
