// maas/nn/network.hpp: Network, what Sequential and the functional Model
// have in common: named layers called in a known order. save_model,
// load_model, load_weights and checkpoints take a Network, and maas-serve
// serves one.
//
// The graph is described as Keras describes it: each call of a layer is a
// node (a layer called twice, sharing its weights, has two), and each node
// reads the model's inputs or earlier nodes' outputs. A Sequential is the
// chain of its layers.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "maas/nn/module.hpp"

namespace maas::nn {

class Network : public Module {
 public:
  // Where a node's input comes from: the model's input `index`, or the
  // output of node `index` (an earlier entry of calls()).
  struct Source {
    bool model_input = false;
    size_t index = 0;
    bool operator==(const Source& o) const { return model_input == o.model_input && index == o.index; }
  };
  // One call of a layer: layers()[layer] on `inputs`.
  struct Call {
    size_t layer = 0;
    std::vector<Source> inputs;
  };

  // Each layer once, in the order they first run (Keras' model.layers
  // without the InputLayers); the order of parameters() and of the files.
  virtual const std::vector<std::shared_ptr<Module>>& layers() const = 0;
  // Every call, in the order forward() runs them (inputs before users).
  virtual std::vector<Call> calls() const = 0;
  // The model's outputs.
  virtual std::vector<Source> outputs() const = 0;
  // Per-sample shapes of the inputs (empty when not known yet) and, once
  // built, of the outputs.
  virtual std::vector<Shape> input_shapes() const = 0;
  virtual std::vector<Shape> output_shapes() const = 0;
  // Keras' model.summary() table.
  virtual std::string summary() const = 0;

  size_t size() const { return layers().size(); }
  Module& operator[](size_t i) const { return *layers().at(i); }

  // Text that travels with the model in its files: save_model and
  // save_checkpoint write it, load_model restores it (a language model's
  // tokenizer, so that a loaded model encodes and decodes text without its
  // training data). Stored as one JSON object of strings in the file's root
  // attribute "maas_metadata", which Keras and h5py leave alone.
  std::map<std::string, std::string>& metadata() { return metadata_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::map<std::string, std::string> metadata_;
};

}  // namespace maas::nn
