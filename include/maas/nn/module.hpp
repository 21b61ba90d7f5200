// maas/nn/module.hpp: Module, the base of every layer and model.
//
// A Module owns named parameters (trainable tensors), named buffers (state
// that is saved but not trained, e.g. BatchNorm's running statistics) and
// named child modules. Names join with dots: "conv2d.kernel".
//
// Shapes passed to build() and output_shape() are per sample, without the
// batch dimension (as Keras' input_shape): {1, 28, 28} for MNIST images.
// A layer creates its parameters in build(), once it knows its input shape;
// Sequential builds every layer when it is given the model's input shape, so
// users write Dense(128) without counting inputs. A layer called on a batch
// before it was built builds itself from that batch.
//
// A layer and its Keras codec. A layer lives in include/maas/nn/layers.hpp
// and src/nn/<layer>.cpp; what it means in a Keras .h5 file (save_model,
// load_model) is its codec, at the end of the same .cpp, listed once in
// builtin_codecs() (src/nn/keras_codec.cpp). src/checkpoint/ knows no
// particular layer. A layer of your own registers its codec with
// register_codec() before saving or loading (tests/checkpoint/test_keras_codec.cpp):
//
//   class Scale : public Module {                     // y = x * scale, per feature
//    public:
//     Shape build(const Shape& in) override {
//       if (!built()) { scale_ = register_parameter("scale", Tensor::ones({in.back()})); mark_built(in); }
//       return in;
//     }
//     Shape compute_output_shape(const Shape& in) const override { return in; }
//     Tensor forward(const Tensor& x) override { ensure_built(x); return x * scale_; }
//     std::string type_name() const override { return "Scale"; }
//     const Tensor& scale() const { return scale_; }
//    private:
//     Tensor scale_;
//   };
//
//   // src/nn/keras_codec.hpp (namespace maas::detail::keras)
//   class ScaleCodec : public Codec {
//    public:
//     ScaleCodec() : Codec({"Scale"}, {"Scale"}) {}  // Keras classes read (first: written); maas types
//     std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const override {
//       return {ctx.weight("scale", {ctx.input.back()}, as<const Scale>(m).scale())};  // "scale:0", Keras' order
//     }
//     void write_config(const nn::Module&, const Shape&, const std::string&, ojson&) const override {}
//     std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override {
//       return make<Scale>(r);                        // options from r.number("...", default), ...
//     }
//   };
//   register_codec(std::make_shared<ScaleCodec>());
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "maas/tensor.hpp"

namespace maas::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  // Layers are moved into models (model.add(Dense(10))); a move carries the
  // registered handles along, so the moved-to layer owns the same tensors.
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Creates parameters for per-sample input shape `input_shape` (if not yet
  // built) and returns the per-sample output shape. Throws maas::Error when
  // the shape does not suit the layer, naming layer and shapes.
  virtual Shape build(const Shape& input_shape) = 0;
  bool built() const { return built_; }
  // The per-sample output shape build() would return for `input_shape`,
  // creating nothing (Keras' compute_output_shape): a loader checks a whole
  // model against a file before it allocates a weight. Throws maas::Error
  // as build() does. Every maas layer has it; the default throws.
  virtual Shape compute_output_shape(const Shape& input_shape) const;

  // Layers of several inputs (Add, Concatenate; a Model of several inputs)
  // override these; a layer of one input keeps the defaults, which take a
  // list of exactly one and call forward() / build() / compute_output_shape().
  // A functional Model calls every layer through them.
  virtual Tensor forward_many(const std::vector<Tensor>& xs);
  virtual Shape build_many(const std::vector<Shape>& input_shapes);
  virtual Shape compute_output_shape_many(const std::vector<Shape>& input_shapes) const;

  // Keras' class name ("Conv2D", "Dense", ...).
  virtual std::string type_name() const = 0;
  // True when, in evaluation mode, each output sample depends only on the
  // same input sample (every maas layer; BatchNorm uses its running
  // statistics then). Sequential relies on it to run a large batch under
  // NoGradGuard in cache-sized pieces. A layer of your own that mixes the
  // samples of a batch keeps the default, false.
  virtual bool samples_independent() const { return false; }
  // Hooks for the files maas writes and reads (maas/checkpoint.hpp):
  // A layer that draws random numbers while training (Dropout) returns its
  // generator; training checkpoints save and restore it, so that a resumed
  // fit draws what the uninterrupted one would. Others return null.
  virtual Generator* random_state() { return nullptr; }
  // Called once a load has written this layer's weights and buffers: a
  // layer that derives data from them (a quantized layer packs its kernel)
  // does it here, and throws maas::Error when they cannot be used.
  virtual void weights_loaded() {}
  // This module's own name ("conv2d_1"); Sequential assigns Keras-style
  // unique names to layers that have none.
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  // All parameters / buffers of this module and its children, recursively,
  // in registration order.
  std::vector<Tensor> parameters() const;
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  int64_t num_parameters() const;  // trainable elements

  void zero_grad(bool set_to_none = false);
  // Training mode (dropout active, batch statistics) vs evaluation mode.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

 protected:
  // Registers a parameter (made a leaf requiring grad) and returns the handle
  // the module keeps.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  void register_module(const std::string& name, std::shared_ptr<Module> m);
  // Layers call this at the top of forward(): builds from x's shape when
  // not yet built, and checks x's per-sample shape when built.
  void ensure_built(const Tensor& x);
  void mark_built(const Shape& input_shape) {
    built_ = true;
    input_shape_ = input_shape;
  }
  const Shape& built_input_shape() const { return input_shape_; }

 private:
  void collect(const std::string& prefix, NamedTensors& out, bool buffers) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::set<std::string> child_names_;  // children_'s names: a model of n layers registers them in O(n log n)
  std::string name_;
  Shape input_shape_;
  bool built_ = false;
  bool training_ = true;
};

// Keras' shape notation for a batch of per-sample shapes: "(None, 32, 26, 26)".
std::string batch_shape_string(const Shape& per_sample);

}  // namespace maas::nn
