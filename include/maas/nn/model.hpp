// maas/nn/model.hpp: functional models, Keras' functional API. Input()
// gives a symbolic node; a layer called on nodes gives a node; Model(inputs,
// outputs) runs the calls in topological order. A layer called twice
// shares its weights.
//
//   using namespace maas::nn;
//   Conv2DOptions same;
//   same.padding = Padding::Same;
//   Node in = Input({1, 28, 28});                      // per sample (C, H, W), as Sequential({1, 28, 28})
//   Node h = layer(Conv2D(16, 3, same))(in);
//   Node r = layer(ReLU())(layer(Conv2D(16, 3, same))(h));
//   h = layer(Add())({h, r});                          // a residual connection
//   h = layer(Flatten())(layer(MaxPool2D(2))(h));
//   Model model(in, layer(Dense(10))(h));
//   std::cout << model.summary();                     // Keras' table, with "Connected to"
//   // Trainer, save_model, load_model and maas-serve take it as they take a Sequential.
//
//   auto dense = layer(Dense(8));                     // one layer, one set of weights:
//   Node a = dense(x1), b = dense(x2);                 // called twice
//
// Calling a layer on nodes checks their shapes (an error names the layer and
// shapes at the line of the call) and creates no weight; Model(...) names
// unnamed layers as Sequential does ("conv2d", "conv2d_1", ...; inputs
// "input_1", ...) and builds them. A Model is a Module: it can itself be
// called as a layer of another model's node graph only through forward().
//
// Inference in pieces, as Sequential: under NoGradGuard, in evaluation mode,
// with every layer samples_independent(), a large batch runs through the
// graph kInferencePiece samples at a time, with the same result bit for bit.
//
// What this file is not: no layers with several outputs, no nested models
// in files, no masks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "maas/nn/network.hpp"

namespace maas::nn {

struct NodeData;

// A symbolic tensor: the output of Input() or of a layer called on nodes.
// Copies refer to the same node.
class Node {
 public:
  Node() = default;
  bool defined() const { return data_ != nullptr; }
  const Shape& shape() const;  // per sample, maas' layout
  // The layer whose call made this node; null for an Input.
  const std::shared_ptr<Module>& layer() const;
  // The nodes that call read (none for an Input).
  const std::vector<Node>& inputs() const;
  // An Input's name ("" until given or until a Model names it).
  const std::string& name() const;
  bool operator==(const Node& o) const { return data_ == o.data_; }
  bool operator!=(const Node& o) const { return data_ != o.data_; }
  const NodeData* id() const { return data_.get(); }

 private:
  friend Node Input(Shape shape, std::string name);
  friend Node call(const std::shared_ptr<Module>& layer, const std::vector<Node>& inputs);
  friend class Model;
  friend struct NodeData;
  explicit Node(std::shared_ptr<NodeData> data) : data_(std::move(data)) {}
  std::shared_ptr<NodeData> data_;
};

struct NodeData {
  NodeData() = default;
  NodeData(const NodeData&) = delete;
  NodeData& operator=(const NodeData&) = delete;
  // Frees a chain of nodes without recursing once per node (a graph read
  // from a file may be 100,000 calls deep).
  ~NodeData();
  std::shared_ptr<Module> layer;  // null: an Input
  std::vector<Node> inputs;
  Shape shape;
  std::string name;  // an Input's
};

// A model input of per-sample shape `shape` (without the batch dimension).
Node Input(Shape shape, std::string name = "");

// `layer` called on `inputs` (one, or several for Add / Concatenate): the
// node of its output. Throws maas::Error naming the layer when it cannot
// take the inputs' shapes.
Node call(const std::shared_ptr<Module>& layer, const std::vector<Node>& inputs);

// A layer held by shared_ptr, callable on nodes: layer(Dense(8))(x).
template <class L>
class Layer {
 public:
  explicit Layer(std::shared_ptr<L> ptr) : ptr_(std::move(ptr)) {}
  Node operator()(const Node& x) const { return call(ptr_, {x}); }
  Node operator()(const std::vector<Node>& xs) const { return call(ptr_, xs); }
  L* operator->() const { return ptr_.get(); }
  L& operator*() const { return *ptr_; }
  const std::shared_ptr<L>& get() const { return ptr_; }

 private:
  std::shared_ptr<L> ptr_;
};

template <class L, class = std::enable_if_t<std::is_base_of_v<Module, std::decay_t<L>>>>
Layer<std::decay_t<L>> layer(L&& l) {
  return Layer<std::decay_t<L>>(std::make_shared<std::decay_t<L>>(std::forward<L>(l)));
}
template <class L>
Layer<L> layer(std::shared_ptr<L> l) {
  return Layer<L>(std::move(l));
}

class Model : public Network {
 public:
  // build false: the layers are built later by build() / build_many() (a
  // loader checks a file's shapes first). Throws maas::Error when an output
  // depends on an Input not in `inputs`, an input is not an Input node, or
  // two different layers have the same name.
  Model(Node input, Node output, bool build = true);
  Model(std::vector<Node> inputs, std::vector<Node> outputs, bool build = true);

  Tensor forward(const Tensor& x) override;                       // one input, one output
  Tensor forward_many(const std::vector<Tensor>& xs) override;    // one output
  std::vector<Tensor> forward_all(const std::vector<Tensor>& xs);  // every output
  Shape build(const Shape& input_shape) override;
  Shape build_many(const std::vector<Shape>& input_shapes) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  Shape compute_output_shape_many(const std::vector<Shape>& input_shapes) const override;
  std::string type_name() const override { return "Functional"; }
  bool samples_independent() const override;

  const std::vector<std::shared_ptr<Module>>& layers() const override { return layers_; }
  std::vector<Call> calls() const override { return calls_; }
  std::vector<Source> outputs() const override { return outputs_; }
  std::vector<Shape> input_shapes() const override;
  std::vector<Shape> output_shapes() const override;
  // Keras' table for functional models: layer (type), output shape,
  // parameters and "Connected to" (each input as 'layer[node][tensor]'),
  // the InputLayers first; shapes channels_last, as Sequential's.
  std::string summary() const override;

  const std::vector<Node>& input_nodes() const { return inputs_; }
  const std::vector<Node>& output_nodes() const { return output_nodes_; }
  // Per call: its node's shape, and which call of its layer it is (Keras' node index).
  const Shape& call_shape(size_t c) const { return call_shapes_.at(c); }
  size_t call_ordinal(size_t c) const { return ordinals_.at(c); }

  static constexpr int64_t kInferencePiece = 64;

 private:
  std::vector<Tensor> run(const std::vector<Tensor>& xs);
  void check_inputs(const std::vector<Tensor>& xs) const;

  std::vector<Node> inputs_, output_nodes_;
  std::vector<std::shared_ptr<Module>> layers_;
  std::vector<Call> calls_;
  std::vector<Shape> call_shapes_;
  std::vector<size_t> ordinals_;
  std::vector<Source> outputs_;
  std::vector<int> uses_;  // per call: how many calls and outputs read it
};

}  // namespace maas::nn
