// maas/nn/layers.hpp: the layers. Each holds parameters and options and
// calls one op in forward(); the math (and its gradient) lives in the ops.
//
// Names and defaults follow Keras where the two frameworks differ in naming
// (kernel/bias, units/filters, pool_size, rate), and PyTorch where Keras has
// no NCHW counterpart (BatchNorm's momentum convention). Weights:
//   Dense   kernel [in, units], bias [units]          (Keras' layout)
//   Conv2D  kernel [filters, in_channels, kh, kw], bias [filters]  (NCHW)
//   BatchNorm gamma, beta (parameters), moving_mean, moving_variance (buffers)
//   Normalization mean [C], variance [C], count (buffers)
//   Embedding embeddings [input_dim, output_dim]         (Keras' layout)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "maas/nn/init.hpp"
#include "maas/nn/module.hpp"
#include "maas/ops.hpp"

namespace maas::nn {

// An activation fused into Dense or Conv2D (Keras' activation= argument).
enum class Activation { None, ReLU, Sigmoid, Tanh, Softmax, Gelu };
Tensor apply(Activation a, const Tensor& x);
// The axis Softmax normalises over in a batch of `dim` dimensions: Keras'
// last axis (the features), which is maas' last axis for [N, F] and
// [N, T, F], and axis 1 for NCHW images [N, C, H, W] (the channels, Keras'
// last axis in channels_last).
int64_t softmax_axis(int64_t dim);
// Keras' names: "linear", "relu", "sigmoid", "tanh", "softmax", "gelu" (the
// exact erf form, Keras' default).
std::string to_string(Activation a);
Activation activation_from_string(const std::string& name);

// Valid: no padding. Same: output size ceil(in / stride), padding split as
// Keras does (any odd pixel on the bottom/right). Explicit: the given amounts.
enum class Padding { Valid, Same, Explicit };

struct DenseOptions {
  bool use_bias = true;
  Activation activation = Activation::None;
  Init kernel_initializer = Init::GlorotUniform;
  Init bias_initializer = Init::Zeros;
};

// y = x kernel + bias over the last dimension.
class Dense : public Module {
 public:
  explicit Dense(int64_t units, DenseOptions options = {});
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "Dense"; }
  bool samples_independent() const override { return true; }
  int64_t units() const { return units_; }
  const DenseOptions& options() const { return options_; }
  const Tensor& kernel() const { return kernel_; }
  const Tensor& bias() const { return bias_; }

 private:
  int64_t units_;
  DenseOptions options_;
  Tensor kernel_, bias_;
};

struct Conv2DOptions {
  Pair strides{1, 1};
  Padding padding = Padding::Valid;
  Pair explicit_padding{0, 0};  // used when padding == Padding::Explicit
  Pair dilation_rate{1, 1};
  bool use_bias = true;
  Activation activation = Activation::None;
  Init kernel_initializer = Init::GlorotUniform;
  Init bias_initializer = Init::Zeros;
};

class Conv2D : public Module {
 public:
  Conv2D(int64_t filters, Pair kernel_size, Conv2DOptions options = {});
  Conv2D(int64_t filters, int64_t kernel_size, Conv2DOptions options = {})
      : Conv2D(filters, Pair{kernel_size, kernel_size}, options) {}
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "Conv2D"; }
  bool samples_independent() const override { return true; }
  int64_t filters() const { return filters_; }
  const Pair& kernel_size() const { return kernel_size_; }
  const Conv2DOptions& options() const { return options_; }
  const Tensor& kernel() const { return kernel_; }
  const Tensor& bias() const { return bias_; }

 private:
  int64_t filters_;
  Pair kernel_size_;
  Conv2DOptions options_;
  Tensor kernel_, bias_;
};

struct Pool2DOptions {
  Pair strides{0, 0};  // {0,0}: equal to pool_size (Keras' default)
  Padding padding = Padding::Valid;
  Pair explicit_padding{0, 0};
};

class MaxPool2D : public Module {
 public:
  explicit MaxPool2D(Pair pool_size = {2, 2}, Pool2DOptions options = {});
  explicit MaxPool2D(int64_t pool_size, Pool2DOptions options = {}) : MaxPool2D(Pair{pool_size, pool_size}, options) {}
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "MaxPooling2D"; }
  bool samples_independent() const override { return true; }
  const Pair& pool_size() const { return pool_size_; }
  const Pool2DOptions& options() const { return options_; }

 private:
  Pair pool_size_;
  Pool2DOptions options_;
};

// Average pooling; with Same padding, padded zeros are not counted (Keras).
class AvgPool2D : public Module {
 public:
  explicit AvgPool2D(Pair pool_size = {2, 2}, Pool2DOptions options = {});
  explicit AvgPool2D(int64_t pool_size, Pool2DOptions options = {}) : AvgPool2D(Pair{pool_size, pool_size}, options) {}
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "AveragePooling2D"; }
  bool samples_independent() const override { return true; }
  const Pair& pool_size() const { return pool_size_; }
  const Pool2DOptions& options() const { return options_; }

 private:
  Pair pool_size_;
  Pool2DOptions options_;
};

// The mean of each channel over the image: [N, C, H, W] -> [N, C] (Keras'
// GlobalAveragePooling2D, keepdims=False). The usual head of a ResNet: it
// takes any H x W.
class GlobalAveragePooling2D : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "GlobalAveragePooling2D"; }
  bool samples_independent() const override { return true; }
};
using GlobalAvgPool2D = GlobalAveragePooling2D;

// [N, d1, d2, ...] -> [N, d1*d2*...]
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "Flatten"; }
  bool samples_independent() const override { return true; }
};

// An activation as a layer of its own (Keras' Activation("relu")); ReLU,
// Sigmoid, Tanh and Softmax below are the same with a fixed function.
class ActivationLayer : public Module {
 public:
  explicit ActivationLayer(Activation activation) : activation_(activation) {}
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "Activation"; }
  bool samples_independent() const override { return true; }
  Activation activation() const { return activation_; }

 private:
  Activation activation_;
};

class ReLU : public ActivationLayer {
 public:
  ReLU() : ActivationLayer(Activation::ReLU) {}
  std::string type_name() const override { return "ReLU"; }
};

class Sigmoid : public ActivationLayer {
 public:
  Sigmoid() : ActivationLayer(Activation::Sigmoid) {}
  std::string type_name() const override { return "Sigmoid"; }
};

class Tanh : public ActivationLayer {
 public:
  Tanh() : ActivationLayer(Activation::Tanh) {}
  std::string type_name() const override { return "Tanh"; }
};

// Softmax over the features: the last axis, or the channels of NCHW images
// (see softmax_axis()).
class Softmax : public ActivationLayer {
 public:
  Softmax() : ActivationLayer(Activation::Softmax) {}
  std::string type_name() const override { return "Softmax"; }
};

class LeakyReLU : public Module {
 public:
  // PyTorch's default slope 0.01 (Keras' LeakyReLU defaults to 0.3).
  explicit LeakyReLU(float negative_slope = 0.01f) : negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "LeakyReLU"; }
  bool samples_independent() const override { return true; }
  float negative_slope() const { return negative_slope_; }

 private:
  float negative_slope_;
};

// Zeroes a fraction `rate` of activations in training (scaling the rest by
// 1/(1-rate)); identity in evaluation. Its generator is seeded from
// default_generator() when the layer is made, or from `seed` when given.
class Dropout : public Module {
 public:
  explicit Dropout(float rate, int64_t seed = -1);
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "Dropout"; }
  bool samples_independent() const override { return true; }
  float rate() const { return rate_; }
  Generator& generator() { return gen_; }
  Generator* random_state() override { return &gen_; }

 private:
  float rate_;
  Generator gen_;
};

// A lookup table of input_dim vectors of output_dim features: indices
// [N] or [N, T] (whole numbers in [0, input_dim) held as floats) ->
// [N, output_dim] or [N, T, output_dim] (any shape S -> [S..., output_dim]).
// The weight "embeddings" [input_dim, output_dim] starts U(-0.05, 0.05), as
// Keras' "uniform". An index that is not a whole number in range throws
// maas::Error naming the layer, the index and input_dim. The gradient goes
// to the rows used (a scatter-add); the indices get none. input_dim is at
// most 2^24 (kMaxEmbeddingRows): a float cannot hold larger indices exactly.
// Built once, it takes sequences of any length T.
class Embedding : public Module {
 public:
  Embedding(int64_t input_dim, int64_t output_dim);
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "Embedding"; }
  bool samples_independent() const override { return true; }
  int64_t input_dim() const { return input_dim_; }
  int64_t output_dim() const { return output_dim_; }
  const Tensor& embeddings() const { return embeddings_; }

 private:
  int64_t input_dim_, output_dim_;
  Tensor embeddings_;
};

// The output projection of a language model tied to its token embedding:
// logits = x E^T (+ bias) for x [..., C], where E [V, C] is `source`'s
// table, shared, not copied. The table stays the Embedding's parameter (a
// model lists it once, trains it once, and a file stores it once); this
// layer's own parameter is the bias [V] when use_bias. In a Keras file it
// is a layer of class EmbeddingTranspose (maas' own) whose config names the
// Embedding ("embedding": its layer name); load_model ties them again.
class EmbeddingTranspose : public Module {
 public:
  explicit EmbeddingTranspose(std::shared_ptr<Embedding> source, bool use_bias = false);
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "EmbeddingTranspose"; }
  bool samples_independent() const override { return true; }
  const std::shared_ptr<Embedding>& source() const { return source_; }
  bool use_bias() const { return use_bias_; }
  const Tensor& bias() const { return bias_; }

 private:
  std::shared_ptr<Embedding> source_;
  bool use_bias_;
  Tensor bias_;
};

struct BatchNormOptions {
  float momentum = 0.1f;  // PyTorch's convention; Keras' momentum m is 1 - m here
  // Keras' default epsilon (PyTorch's is 1e-5). Files store it as Keras'
  // "epsilon", and a file without one reads as 1e-3, as Keras reads it.
  float eps = 1e-3f;
  bool affine = true;     // learn gamma and beta
};

// Batch normalisation over channels: dimension 1 of [N,C] (1-D) or
// [N,C,H,W] (2-D). Training mode uses batch statistics and updates the
// moving averages; evaluation mode uses the moving averages.
class BatchNorm : public Module {
 public:
  explicit BatchNorm(BatchNormOptions options = {});
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "BatchNormalization"; }
  bool samples_independent() const override { return true; }
  const BatchNormOptions& options() const { return options_; }
  const Tensor& gamma() const { return gamma_; }
  const Tensor& beta() const { return beta_; }
  const Tensor& moving_mean() const { return moving_mean_; }
  const Tensor& moving_variance() const { return moving_variance_; }

 private:
  BatchNormOptions options_;
  Tensor gamma_, beta_, moving_mean_, moving_variance_;
};
using BatchNorm1D = BatchNorm;
using BatchNorm2D = BatchNorm;

// Layers that join several inputs into one (Keras' merge layers). A Model
// calls them on a list of nodes (add({a, b})); called on one tensor, they
// take it as a list of one. They have no weights.
class Merge : public Module {
 public:
  Tensor forward(const Tensor& x) override { return forward_many({x}); }
  Shape build(const Shape& input_shape) override { return build_many({input_shape}); }
  Shape compute_output_shape(const Shape& input_shape) const override {
    return compute_output_shape_many({input_shape});
  }
  Shape build_many(const std::vector<Shape>& input_shapes) override;
  bool samples_independent() const override { return true; }

 protected:
  // Checks that xs is a list of batches of the same size whose per-sample
  // shapes this layer takes; returns the per-sample output shape.
  Shape check_inputs(const std::vector<Tensor>& xs) const;
};

// The element-wise sum of inputs of equal shapes (a residual connection).
class Add : public Merge {
 public:
  Tensor forward_many(const std::vector<Tensor>& xs) override;
  Shape compute_output_shape_many(const std::vector<Shape>& input_shapes) const override;
  std::string type_name() const override { return "Add"; }
};

// Joins inputs along the channels: dimension 1 of images [N, C, H, W] and
// the last dimension otherwise ([N, F], [N, T, F]), as Keras' default
// axis=-1 does in channels_last. The other dimensions must agree.
class Concatenate : public Merge {
 public:
  Tensor forward_many(const std::vector<Tensor>& xs) override;
  Shape compute_output_shape_many(const std::vector<Shape>& input_shapes) const override;
  std::string type_name() const override { return "Concatenate"; }
};

// Keras' preprocessing layers, so that a saved model carries its own input
// scaling and takes raw pixels. Neither has trainable parameters; gradients
// flow through them to the input.

// y = x * scale + offset (Keras' Rescaling; Rescaling(1 / 255.f) maps bytes to [0, 1]).
class Rescaling : public Module {
 public:
  explicit Rescaling(float scale, float offset = 0.f);
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  // The output shape for `input_shape` (Keras' compute_output_shape), creating nothing.
  Shape compute_output_shape(const Shape& input_shape) const;
  std::string type_name() const override { return "Rescaling"; }
  bool samples_independent() const override { return true; }
  float scale() const { return scale_; }
  float offset() const { return offset_; }

 private:
  float scale_, offset_;
};

// Keras' Normalization with axis=-1: per channel (dimension 1 of [N,C] or
// [N,C,H,W], Keras' last axis), y = (x - mean) / max(sqrt(variance), 1e-7).
// mean, variance [C] and count (0-d, the samples they came from) are
// buffers, saved as Keras saves them. Constructed without statistics, mean
// is 0 and variance 1 (Keras' initial state) until loaded; with statistics,
// their size must equal the channel count at build time.
class Normalization : public Module {
 public:
  Normalization() = default;
  Normalization(std::vector<float> mean, std::vector<float> variance);
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  // The output shape for `input_shape` (Keras' compute_output_shape),
  // creating nothing; throws as build() does for a shape that does not fit.
  Shape compute_output_shape(const Shape& input_shape) const;
  std::string type_name() const override { return "Normalization"; }
  bool samples_independent() const override { return true; }
  const Tensor& mean() const { return mean_; }
  const Tensor& variance() const { return variance_; }
  const Tensor& count() const { return count_; }
  // false (the default): save_model stores mean, variance and count as the
  // layer's weights (Keras' adapted Normalization). true: it writes them into
  // model_config instead and the file holds no weights for the layer (Keras'
  // Normalization(mean=..., variance=...)); load_model sets it for such files.
  bool stats_in_config() const { return stats_in_config_; }
  void set_stats_in_config(bool on) { stats_in_config_ = on; }

 private:
  std::vector<float> init_mean_, init_variance_;
  bool stats_in_config_ = false;
  Tensor mean_, variance_, count_;
};

// ---- Sequence layers ----------------------------------------------------------
// Per-sample inputs [T, C]: T positions of C features (the batch is [B, T, C]).

struct LayerNormOptions {
  float epsilon = 1e-3f;  // Keras' default (PyTorch's is 1e-5)
  bool center = true;     // learn beta
  bool scale = true;      // learn gamma
};

// Layer normalisation over the last axis (the features), as Keras'
// LayerNormalization(axis=-1): y = (x - mean) / sqrt(var + epsilon) * gamma
// + beta per position, with gamma [C] (ones) and beta [C] (zeros).
class LayerNormalization : public Module {
 public:
  explicit LayerNormalization(LayerNormOptions options = {});
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "LayerNormalization"; }
  bool samples_independent() const override { return true; }
  const LayerNormOptions& options() const { return options_; }
  const Tensor& gamma() const { return gamma_; }
  const Tensor& beta() const { return beta_; }

 private:
  LayerNormOptions options_;
  Tensor gamma_, beta_;
};

struct MultiHeadAttentionOptions {
  int64_t value_dim = 0;     // per head; 0 means key_dim
  float dropout = 0.f;       // on the attention weights, in training
  bool use_bias = true;
  int64_t output_shape = 0;  // features out; 0 means the query's
  // Keras passes use_causal_mask at each call; a maas layer keeps it: query
  // i attends to keys 0..i only (a language model's self-attention).
  bool use_causal_mask = false;
  int64_t seed = -1;  // the dropout's generator; -1 draws it from default_generator()
};

// Keras' MultiHeadAttention: num_heads heads of key_dim, over query [T, Dq]
// and value [S, Dv] (and key [S, Dk], the value when not given):
//   Q = query Wq + bq, K = key Wk + bk, V = value Wv + bv   (per head)
//   O = softmax(Q K^T / sqrt(key_dim)) V,  out = concat(O) Wo + bo
// on the fused scaled_dot_product_attention. forward(x) is self-attention
// (query = value = key = x); forward_many takes {query, value} or {query,
// value, key}, as Keras' call. Weights are maas matrices whose elements
// are in the order of Keras' EinsumDense kernels: query/key/value kernel
// [D, heads * key_dim] = Keras (D, heads, key_dim), bias (heads, key_dim);
// attention_output kernel [heads * value_dim, out] = Keras (heads,
// value_dim, out), bias (out,). Kernels start Glorot-uniform over those
// matrices, biases zero.
class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(int64_t num_heads, int64_t key_dim, MultiHeadAttentionOptions options = {});
  Tensor forward(const Tensor& x) override;
  Tensor forward_many(const std::vector<Tensor>& xs) override;
  Shape build(const Shape& input_shape) override;
  Shape build_many(const std::vector<Shape>& input_shapes) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  Shape compute_output_shape_many(const std::vector<Shape>& input_shapes) const override;
  std::string type_name() const override { return "MultiHeadAttention"; }
  bool samples_independent() const override { return true; }
  Generator* random_state() override { return &gen_; }
  int64_t num_heads() const { return heads_; }
  int64_t key_dim() const { return key_dim_; }
  int64_t value_dim() const { return value_dim_; }
  const MultiHeadAttentionOptions& options() const { return options_; }
  // query, key, value, attention_output: kernel then bias (undefined without).
  const Tensor& kernel(int i) const { return kernels_[static_cast<size_t>(i)]; }
  const Tensor& bias(int i) const { return biases_[static_cast<size_t>(i)]; }

 private:
  Tensor attend(const Tensor& query, const Tensor& value, const Tensor& key);
  // Throws unless {query, value[, key]} per-sample shapes fit; the output shape.
  Shape check(const std::vector<Shape>& in) const;

  int64_t heads_, key_dim_, value_dim_;
  MultiHeadAttentionOptions options_;
  Generator gen_;
  Tensor kernels_[4], biases_[4];
};

// Learned position embeddings, as keras_hub's PositionEmbedding: for input
// [T, C] (T <= sequence_length) the output is rows 0..T-1 of the table
// embeddings [sequence_length, C], the same for every sample; add it to the
// token embeddings (an Add layer). The table starts Glorot-uniform.
class PositionEmbedding : public Module {
 public:
  explicit PositionEmbedding(int64_t sequence_length);
  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "PositionEmbedding"; }
  bool samples_independent() const override { return true; }
  int64_t sequence_length() const { return length_; }
  const Tensor& embeddings() const { return embeddings_; }

 private:
  int64_t length_;
  Tensor embeddings_;
};

}  // namespace maas::nn
