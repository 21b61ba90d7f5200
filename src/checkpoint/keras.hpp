// Internal: how a maas model maps onto Keras' legacy .h5 model — the layer
// list with each weight's dataset shape and element order, and the JSON
// model_config (written with Keras' field names, read from Keras 2 and
// Keras 3 files). No HDF5 here: h5.hpp does the file, this does the mapping.
// What a particular layer means to Keras (its class names, config, weights
// and their layouts, the NCHW <-> channels_last mapping) is its codec's:
// nn/keras_codec.hpp, beside each layer in src/nn/.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "maas/nn/model.hpp"
#include "maas/nn/sequential.hpp"
#include "nn/keras_codec.hpp"

namespace maas::detail::keras {

// The Keras version and backend written into files (the layout they follow).
inline constexpr const char* kKerasVersion = "2.13.1";
inline constexpr const char* kBackend = "tensorflow";

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
  double rate = -1.0;  // the config's "rate" (a Dropout's); -1 when it has none
};

// Each layer of a model_config, in order (InputLayer left out). Throws for
// JSON that is not a Sequential's or functional model's config.
std::vector<ConfigLayer> config_layers(const std::string& json, const std::string& who);

// ---- Between keras.cpp and keras_functional.cpp --------------------------------

// A layer's config entry: its codec's fields, or a stand-in's.
ojson layer_config(const Layer& L, const std::string& who);
// [null, d1, ...] for per-sample shape `in` (maas' layout: images as (H, W, C)).
ojson batch_shape_json(Shape in);
// Keras 2's "Functional" config: every layer with its inbound_nodes, each
// input as an InputLayer entry.
std::string functional_config(const nn::Model& model, const std::vector<Layer>& layers, const std::string& who);
// The name in a config entry, or "layer_<index>".
std::string entry_name(const json& entry, size_t index);
// The per-sample shape (Keras' layout) of a batch shape [null, d1, ...];
// [null] (one index per sample) only with `allow_scalar`.
Shape batch_shape_of(const json& batch, const std::string& who, bool allow_scalar = false);
// The maas layer for a config entry (not an InputLayer), named as the entry,
// by its class's codec; null for a stand-in folded into the next layer.
std::shared_ptr<nn::Module> make_layer(const Reading& r, ReadContext& ctx);
// A functional model from a Functional / Model config whose layer list is
// `layers` (checked by check_supported).
ConfigModel functional_from_config(const json& root, const json& layers, std::string model_name,
                                   const std::string& who);

}  // namespace maas::detail::keras
