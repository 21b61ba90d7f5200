// maas/nn/sequential.hpp: a stack of layers, each feeding the next.
//
//   maas::nn::Sequential model({1, 28, 28});          // per-sample input shape
//   model.add(maas::nn::Conv2D(32, 3))
//        .add(maas::nn::ReLU())
//        .add(maas::nn::MaxPool2D(2))
//        .add(maas::nn::Flatten())
//        .add(maas::nn::Dense(10));
//   std::cout << model.summary();
//
// Given the input shape, add() builds each layer as it arrives, so shape
// errors surface at the line that adds the offending layer.
//
// Inference in pieces: under NoGradGuard, in evaluation mode, when every
// layer has samples_independent(), a batch larger than kInferencePiece runs
// through the whole stack kInferencePiece samples at a time: each layer's
// output then stays in cache for the next instead of streaming the whole
// batch through memory once per layer (3x faster on the reference CNN at
// batch 1000). The result is the same as in one piece, bit for bit.
//
// A ReLU followed by a MaxPool2D runs as the pool followed by the ReLU:
// relu is non-decreasing, so the largest of the rectified values is the
// rectified largest value, and the gradient reaches the same input element
// (the window's first largest; nothing when that is <= 0). Outputs and
// gradients are the same, and ReLU touches a quarter of the elements after a
// 2x2 pool. Layer outputs in between are not observable from outside.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "maas/nn/network.hpp"

namespace maas::nn {

class Sequential : public Network {
 public:
  // Without an input shape, layers are built on the first forward().
  Sequential() = default;
  explicit Sequential(Shape input_shape) : input_shape_(std::move(input_shape)), known_(true) {}

  // Appends a layer (by value: moved into the model; or a shared_ptr).
  template <class L, class = std::enable_if_t<std::is_base_of_v<Module, std::decay_t<L>>>>
  Sequential& add(L&& layer) {
    return add(std::static_pointer_cast<Module>(std::make_shared<std::decay_t<L>>(std::forward<L>(layer))));
  }
  Sequential& add(std::shared_ptr<Module> layer);

  Tensor forward(const Tensor& x) override;
  Shape build(const Shape& input_shape) override;
  // Each layer's compute_output_shape() in turn; builds nothing.
  Shape compute_output_shape(const Shape& input_shape) const override;
  std::string type_name() const override { return "Sequential"; }
  bool samples_independent() const override;

  static constexpr int64_t kInferencePiece = 64;

  const std::vector<std::shared_ptr<Module>>& layers() const override { return layers_; }
  std::vector<Call> calls() const override;  // the chain: layer i reads layer i - 1
  std::vector<Source> outputs() const override;
  std::vector<Shape> input_shapes() const override;
  std::vector<Shape> output_shapes() const override;
  const Shape& input_shape() const { return input_shape_; }
  // Per-sample output shape of layer i (after building).
  const Shape& output_shape(size_t i) const { return output_shapes_.at(i); }

  // Keras' table: layer name (type), output shape, parameter count, then
  // total, trainable and non-trainable counts. Output shapes are printed as
  // Keras prints them, channels_last: images maas holds as (C, H, W) show as
  // (None, H, W, C), the shape Keras reports for the same model (and the one
  // save_model writes). Columns widen to fit long names.
  std::string summary() const override;

 private:
  // Layer i is a ReLU (or Activation("relu")) and layer i + 1 a MaxPool2D.
  bool relu_then_max_pool(size_t i) const;

  std::vector<std::shared_ptr<Module>> layers_;
  std::set<std::string> names_;                // the layers' names
  std::map<std::string, int> next_suffix_;     // per default base name ("dense"): the next suffix to try
  std::vector<Shape> output_shapes_;
  Shape input_shape_;
  bool known_ = false;
};

}  // namespace maas::nn
