// Internal: how a maas Sequential maps onto Keras' legacy .h5 model — the
// layer list, each weight's dataset shape and element order, and the JSON
// model_config (written with Keras' field names, read from Keras 2 and
// Keras 3 files). No HDF5 here: h5.hpp does the file, this does the mapping.
//
// maas computes in NCHW, Keras (on CPU) in NHWC ("channels_last"). So that
// the same weights give the same predictions in both:
//   input shape     maas (C, H, W)          <-> Keras (H, W, C)
//   Conv2D kernel   maas [O, C, kh, kw]     <-> Keras (kh, kw, C, O)
//   Flatten         maas flattens C, H, W   ;   Keras flattens H, W, C
//     so the first Dense after a Flatten of (C, H, W) has its kernel rows
//     permuted from maas' CHW order to Keras' HWC order (and a BatchNorm
//     between them its vectors). Layers that keep the per-sample shape
//     (Dropout, activations) pass the permutation on to the next layer.
//   BatchNormalization  maas momentum m     <-> Keras momentum 1 - m
//   explicit padding of Conv2D / AvgPool2D  <-> ZeroPadding2D before a
//     "valid" Conv2D / AveragePooling2D (MaxPool2D's explicit padding has no
//     Keras equivalent: its model_config cannot be written).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "maas/nn/layers.hpp"
#include "maas/nn/quantized.hpp"
#include "maas/nn/sequential.hpp"

namespace maas::detail::keras {

// The Keras version and backend written into files (the layout they follow).
inline constexpr const char* kKerasVersion = "2.13.1";
inline constexpr const char* kBackend = "tensorflow";

// How a maas tensor's elements map onto its Keras dataset.
enum class Layout {
  Same,        // identical shape and order
  ConvKernel,  // [O, C, kh, kw] <-> (kh, kw, C, O)
  FlatRows,    // Dense kernel [C*H*W, U]: rows in CHW order <-> HWC order
  FlatVector,  // BatchNorm vector [C*H*W]: CHW order <-> HWC order
};

// The element type of a weight's dataset: the tensor holds floats; an int8
// or int32 weight (a quantized layer's) holds integers in that type's range.
enum class Dtype { F32, I8, I32 };

struct Weight {
  std::string name;  // "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"
  Tensor tensor;     // the model's tensor (shares its storage)
  Shape file_shape;  // the dataset's shape in Keras' layout
  Layout layout = Layout::Same;
  Shape chw;  // FlatRows / FlatVector: the (C, H, W) that Flatten flattened
  Dtype dtype = Dtype::F32;
};

struct Layer {
  std::string name;
  std::string class_name;          // Keras' class ("Conv2D", "Activation", ...)
  nn::Module* module = nullptr;    // null for a ZeroPadding2D standing for explicit padding
  Pair padding{0, 0};              // that ZeroPadding2D's padding (per side)
  Shape input_shape;               // per sample, maas' layout
  std::vector<Weight> weights;     // in Keras' order
};

// The Keras layers of a built model, in order: one per maas layer, plus a
// ZeroPadding2D before each Conv2D / AvgPool2D with explicit padding.
// Throws maas::Error naming `who` when the model is not built, a layer has
// parameters of an unknown kind, or a name cannot be an HDF5 group.
std::vector<Layer> layers_of(const nn::Sequential& model, const std::string& who);

// The same list for a model not built yet, for per-sample input
// `input_shape`: every Weight has its file_shape and an undefined tensor.
// Allocates no weight, so a loader can compare a file's declared shapes
// before it builds anything. Throws maas::Error naming `who` and the layer
// when a shape does not suit a layer.
std::vector<Layer> planned_layers(const nn::Sequential& model, const Shape& input_shape, const std::string& who);

// A weight's values in Keras' order, and back (writes into w.tensor).
std::vector<float> to_keras(const Weight& w);
void from_keras(const Weight& w, const std::vector<float>& values);

// The model_config JSON for `layers` (from layers_of(model)). Throws
// maas::Error naming `who` for a layer that Keras cannot express.
std::string model_config(const nn::Sequential& model, const std::vector<Layer>& layers, const std::string& who);

// A model rebuilt from a model_config: its layers, with their names and
// options, added but not built (no weight exists yet), and its input shape.
struct ConfigModel {
  std::unique_ptr<nn::Sequential> model;
  Shape input_shape;  // per sample, maas' layout
};

// Rebuilds a model from a Keras model_config. `who` prefixes errors
// ("load_model: model.h5"); errors about a layer name it and its class
// ("load_model: m.h5: layer 'conv2d' (Conv2D): strides must be positive,
// got 0"). Throws for a model that is not a Sequential, for unsupported
// layer classes (naming all of them), options and shapes the layers refuse.
ConfigModel model_from_config(const std::string& json, const std::string& who);

// A layer of a model_config, as a checkpoint's resume compares it.
struct ConfigLayer {
  std::string name, class_name;
  double rate = -1.0;  // a Dropout's rate; -1 for other layers, or when the config has none
};

// Each layer of a model_config, in order (InputLayer left out). Throws for
// JSON that is not a Sequential's config.
std::vector<ConfigLayer> config_layers(const std::string& json, const std::string& who);

// `s` for an error message: at most `max` characters, then "... (N
// characters)". Names and values read from a file go into messages so.
std::string brief(const std::string& s, size_t max = 80);

// "(3, 3, 1, 32)", Keras' / numpy's notation for a dataset shape.
std::string shape_text(const Shape& s);

}  // namespace maas::detail::keras
