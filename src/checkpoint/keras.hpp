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
#include "maas/nn/model.hpp"
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

// Where a call of a layer reads from (Keras' inbound node entry): a layer
// (or InputLayer) name and which of its calls; maas layers have one output
// tensor. For a Sequential, the model's input has the name "".
struct Inbound {
  std::string layer;
  size_t node = 0;
};

struct Layer {
  std::string name;
  std::string class_name;          // Keras' class ("Conv2D", "Activation", ...)
  nn::Module* module = nullptr;    // null for a ZeroPadding2D standing for explicit padding
  Pair padding{0, 0};              // that ZeroPadding2D's padding (per side)
  Shape input_shape;               // per sample, maas' layout
  std::vector<Weight> weights;     // in Keras' order
  std::vector<std::vector<Inbound>> inbound;  // per call of the layer, its inputs
};

// The Keras layers of a built model (Sequential or functional Model), in
// the order of model.layers(): one per maas layer, plus, in a Sequential, a
// ZeroPadding2D before each Conv2D / AvgPool2D with explicit padding.
// Throws maas::Error naming `who` when the model is not built, a layer has
// parameters of an unknown kind, or a name cannot be an HDF5 group.
std::vector<Layer> layers_of(const nn::Network& model, const std::string& who);

// The same list for a model not built yet, for per-sample inputs
// `input_shapes`: every Weight has its file_shape and an undefined tensor.
// Allocates no weight, so a loader can compare a file's declared shapes
// before it builds anything. Throws maas::Error naming `who` and the layer
// when a shape does not suit a layer.
std::vector<Layer> planned_layers(const nn::Network& model, const std::vector<Shape>& input_shapes,
                                  const std::string& who);

// A weight's values in Keras' order, and back (writes into w.tensor).
std::vector<float> to_keras(const Weight& w);
void from_keras(const Weight& w, const std::vector<float>& values);

// The model_config JSON for `layers` (from layers_of(model)): a Sequential's,
// or for a functional Model Keras 2's "Functional" with inbound_nodes,
// input_layers and output_layers. Throws maas::Error naming `who` for a
// layer that Keras cannot express.
std::string model_config(const nn::Network& model, const std::vector<Layer>& layers, const std::string& who);

// A model rebuilt from a model_config: its layers, with their names and
// options, but not built (no weight exists yet), and its input shapes.
struct ConfigModel {
  std::unique_ptr<nn::Network> model;
  std::vector<Shape> input_shapes;  // per sample, maas' layout
  bool functional = false;          // the file's layer names are the model's (match weights by name)
};

// Rebuilds a model from a Keras model_config: Sequential, or Functional /
// Model with inbound_nodes in Keras 2's nested lists or Keras 3's
// {"args": [keras tensors]} spelling. `who` prefixes errors ("load_model:
// model.h5"); errors about a layer name it and its class ("load_model: m.h5:
// layer 'conv2d' (Conv2D): strides must be positive, got 0"). Throws for
// other model classes, unsupported layer classes (naming all of them),
// options and shapes the layers refuse, and graphs that refer to unknown
// layers or nodes or form a cycle.
ConfigModel model_from_config(const std::string& json, const std::string& who);

// A layer of a model_config, as a checkpoint's resume compares it.
struct ConfigLayer {
  std::string name, class_name;
  double rate = -1.0;  // a Dropout's rate; -1 for other layers, or when the config has none
};

// Each layer of a model_config, in order (InputLayer left out). Throws for
// JSON that is not a Sequential's or functional model's config.
std::vector<ConfigLayer> config_layers(const std::string& json, const std::string& who);

// `s` for an error message: at most `max` characters, then "... (N
// characters)". Names and values read from a file go into messages so.
std::string brief(const std::string& s, size_t max = 80);

// "(3, 3, 1, 32)", Keras' / numpy's notation for a dataset shape.
std::string shape_text(const Shape& s);

}  // namespace maas::detail::keras
