// Internal: a layer's Keras codec — what one maas layer means in Keras'
// legacy .h5 model: its class names (Keras 2 and Keras 3 spellings), its
// config written and read with Keras' defaults, and its weights' names,
// order and layouts. Each layer's codec sits beside the layer in
// src/nn/<layer>.cpp and is listed once in builtin_codecs()
// (src/nn/keras_codec.cpp: its function's declaration and one entry);
// src/checkpoint/ writes and reads models through the registry below and
// knows no particular layer. maas/nn/module.hpp shows a layer and its codec.
//
// maas computes in NCHW, Keras (on CPU) in NHWC ("channels_last"). So that
// the same weights give the same predictions in both:
//   input shape     maas (C, H, W)          <-> Keras (H, W, C)
//   Conv2D kernel   maas [O, C, kh, kw]     <-> Keras (kh, kw, C, O)
//   Flatten         maas flattens C, H, W   ;   Keras flattens H, W, C
//     so the first Dense after a Flatten of (C, H, W) has its kernel rows
//     permuted from maas' CHW order to Keras' HWC order (and a BatchNorm
//     between them its vectors). Layers that keep the per-sample shape
//     (Dropout, activations) pass the permutation on to the next layer:
//     Codec::flat_order() says how each layer treats it.
//   explicit padding of Conv2D / AvgPool2D  <-> ZeroPadding2D before a
//     "valid" Conv2D / AveragePooling2D: a codec may put a stand-in layer
//     before its own (LayerContext::insert_before) and read one back
//     (ReadContext::padding).
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"

namespace maas::detail::keras {

using ojson = nlohmann::ordered_json;  // written configs keep Keras' field order
using json = nlohmann::json;

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

class Codec;

struct Layer {
  std::string name;
  std::string class_name;        // Keras' class ("Conv2D", "Activation", ...)
  nn::Module* module = nullptr;  // null for a stand-in (a ZeroPadding2D for explicit padding)
  const Codec* codec = nullptr;  // the module's codec; null for a stand-in
  ojson config;                  // a stand-in's config fields (after name, trainable, dtype)
  Shape input_shape;             // per sample, maas' layout
  std::vector<Weight> weights;   // in Keras' order
  std::vector<std::vector<Inbound>> inbound;  // per call of the layer, its inputs
};

// A weight's values in Keras' order, and back (writes into w.tensor).
std::vector<float> to_keras(const Weight& w);
void from_keras(const Weight& w, const std::vector<float>& values);

// `s` for an error message: at most `max` characters, then "... (N
// characters)". Names and values read from a file go into messages so.
std::string brief(const std::string& s, size_t max = 80);
// A JSON value for a message: at most a short prefix of it.
std::string brief_json(const json& v);
// "(3, 3, 1, 32)", Keras' / numpy's notation for a dataset shape.
std::string shape_text(const Shape& s);

// ---- Writing ------------------------------------------------------------------

// The layer names of a model being written, and the stand-ins' new ones.
class Names {
 public:
  void take(const std::string& name) { taken_.insert(name); }
  // `base`, or `base_1`, `base_2`, ...: the first not taken, now taken. The
  // names tried stay taken: linear in the number of stand-ins.
  std::string unique(const std::string& base);

 private:
  std::set<std::string> taken_;
  std::map<std::string, int> next_;  // per base, the suffix to try next
};

// What a codec sees while listing its layer's weights (for a built model, or
// one only planned: then `built` is false and every tensor is undefined).
class LayerContext {
 public:
  LayerContext(const nn::Module& m, const std::vector<Shape>& inputs, const Shape& flat, bool built, bool functional,
               const std::string& who, std::vector<Layer>& out, Names& names)
      : inputs(inputs), input(inputs.at(0)), flat(flat), built(built), functional(functional), who(who), module_(m),
        out_(out), names_(names) {}

  const std::vector<Shape>& inputs;  // per-sample inputs, maas' layout (several for Add, MultiHeadAttention)
  const Shape& input;                // the first of them
  const Shape& flat;   // the (C, H, W) a Flatten made the input's features of; empty if none
  const bool built;
  const bool functional;  // a functional Model (no stand-in layers)
  const std::string& who;

  // "who: layer 'conv2d' (Conv2D)", to begin a message.
  std::string where() const;
  // True when the input is a flattened image's features: FlatRows /
  // FlatVector weights follow Keras' (H, W, C) order.
  bool flat_image() const { return !flat.empty() && input.size() == 1; }
  // A weight of maas shape `s` holding `t` (undefined when not built).
  // FlatRows and FlatVector apply only to a flattened image's features
  // (Same otherwise).
  Weight weight(const std::string& name, const Shape& s, const Tensor& t, Layout layout = Layout::Same) const;
  // Puts a stand-in layer of Keras class `class_name` before this one, named
  // `base` or `base_1`, `base_2`, ... (the first not taken), with the config
  // fields `config`.
  void insert_before(const std::string& class_name, const std::string& base, ojson config);

 private:
  const nn::Module& module_;
  std::vector<Layer>& out_;
  Names& names_;
};

// The fields a written config starts with (name, trainable, dtype).
ojson base_config(const std::string& name);
// The shortest decimal that reads back as `f` ("0.1", not 0.10000000149).
double short_decimal(float f);
// x rounded to 15 significant digits (1 - 0.1 -> 0.9, not 0.90000000000000002).
double round15(double x);
ojson pair_json(const Pair& p);
ojson initializer_json(nn::Init init);
std::string padding_text(nn::Padding p);
// `c` with each of `keys` null (the regularisers and constraints maas lacks).
ojson with_nulls(ojson c, std::initializer_list<const char*> keys);
// The fields Conv2D and Dense end with, in Keras' order: activation, bias,
// initialisers, then the regularisers and constraints maas does not have.
void kernel_fields(ojson& c, nn::Activation activation, bool use_bias, nn::Init kernel, nn::Init bias);
// A ZeroPadding2D before a layer with explicit padding `pad` (nothing for
// other modes or zero padding); throws in a functional Model.
void zero_padding_before(LayerContext& ctx, nn::Padding mode, const Pair& pad);

// The default of Codec::weights(), and the weights of a layer without a
// codec: none; throws when the layer has parameters or buffers.
std::vector<Weight> no_weights(const nn::Module& m, const std::string& who);
// The default of Codec::flat_order(), and a codec-less layer's order.
Shape default_flat_order(const nn::Module& m, const std::vector<Shape>& ins, const std::vector<Shape>& flat_ins,
                         const Shape& out);

// ---- Reading ------------------------------------------------------------------

// A layer's config being read; errors name the file and the layer:
// "load_model: m.h5: layer 'conv2d' (Conv2D): ...". The accessors return
// `def` for a missing or null field (Keras' default) and throw for one of
// the wrong type.
struct Reading {
  std::string who, name, cls;
  const json* cfg;

  [[noreturn]] void bad(const std::string& msg) const;
  bool has(const char* key) const { return cfg->contains(key) && !(*cfg)[key].is_null(); }
  const json& at(const char* key) const;
  int64_t integer(const char* key, int64_t def) const;
  // A count the layer needs ("filters", "units"): an integer > 0; throws
  // "<key> must be positive" when it is missing or not.
  int64_t positive(const char* key) const;
  double number(const char* key, double def) const;
  bool boolean(const char* key, bool def) const;
  std::string text(const char* key, const std::string& def) const;
  Pair pair(const char* key, Pair def) const;  // an int n (n x n) or a list [a, b]
  nn::Padding padding() const;                 // "valid" or "same"
  void channels_last() const;                  // throws for another data_format
  nn::Activation activation() const;
  // Initializers only matter for re-initialising; unknown ones read as `def`.
  nn::Init init(const char* key, nn::Init def) const;
};

// The fields kernel_fields() writes, read back into Conv2D's or Dense's
// options (activation, use_bias, the initialisers), with Keras' defaults.
template <class Options>
void read_kernel_fields(const Reading& r, Options& o) {
  o.activation = r.activation();
  o.use_bias = r.boolean("use_bias", true);
  o.kernel_initializer = r.init("kernel_initializer", nn::Init::GlorotUniform);
  o.bias_initializer = r.init("bias_initializer", nn::Init::Zeros);
}

// A ZeroPadding2D read in a Sequential, waiting for the layer it folds into.
struct PendingPadding {
  std::array<int64_t, 4> amounts{0, 0, 0, 0};  // top, bottom, left, right
  std::string name;                            // empty: none
};

// What a codec sees while making its layer from a config entry.
struct ReadContext {
  const Shape& input;               // per-sample input (the first input's, for merge layers), maas' layout
  bool after_image_flatten;         // a Flatten of images comes before this layer
  bool sequential;                  // a Sequential model (stand-in layers allowed)
  PendingPadding& padding;          // a ZeroPadding2D before this layer, if any
  // The layers read so far by name (a layer that uses another's weights
  // finds it here); null where there are none.
  const std::map<std::string, std::shared_ptr<nn::Module>>* layers = nullptr;
};

// In a Sequential: throws when a ZeroPadding2D is pending before layer `r`
// of codec `next`, which does not fold it in, or at the end of the model.
void check_padding_folds(const PendingPadding& pending, const Codec& next, const Reading& r);
void check_no_padding_left(const PendingPadding& pending, const std::string& who);

// A layer's own message without the "Conv2D: " or "Sequential::add: " it
// starts with: Reading::bad() names the layer instead.
std::string without_prefix(const std::string& msg);

// A layer made from a file's options: the constructor's errors name the file and layer.
template <class L, class... Args>
std::shared_ptr<nn::Module> make(const Reading& r, Args&&... args) {
  try {
    return std::make_shared<L>(std::forward<Args>(args)...);
  } catch (const Error& e) {
    r.bad(without_prefix(e.what()));
  }
}

// The explicit padding of a layer that follows a ZeroPadding2D: sets
// `out_mode` and `out_pad` from `mode` and the pending padding, which it
// clears. Throws for a 'same' layer after a ZeroPadding2D.
void take_zero_padding(const Reading& r, ReadContext& ctx, nn::Padding mode, nn::Padding& out_mode, Pair& out_pad);

// ---- Shared by Conv2D and Dense and their quantized versions ------------------

// Conv2D's weights (in src/nn/conv2d.cpp): kernel as (kh, kw, C, O), bias;
// a ZeroPadding2D before the layer for explicit padding.
std::vector<Weight> conv_weights(LayerContext& ctx, int64_t filters, const Pair& kernel_size,
                                 const nn::Conv2DOptions& o, const Tensor& kernel, const Tensor& bias);
// Conv2D's config fields.
void write_conv_config(ojson& c, int64_t filters, const Pair& kernel_size, const nn::Conv2DOptions& o);
// Conv2D's options from a config, a pending ZeroPadding2D folded in.
nn::Conv2DOptions read_conv_options(const Reading& r, ReadContext& ctx);
// Dense's weights (in src/nn/dense.cpp): kernel (in, units), its rows in
// Keras' (H, W, C) order after a Flatten of images; bias (units,).
std::vector<Weight> dense_weights(LayerContext& ctx, int64_t units, bool use_bias, const Tensor& kernel,
                                  const Tensor& bias);
// Dense's config fields after the check for images (its message is the caller's).
void write_dense_config(ojson& c, int64_t units, const nn::DenseOptions& o);
// Dense's options from a config (throws for images).
nn::DenseOptions read_dense_options(const Reading& r, const ReadContext& ctx);

// ---- The codec ------------------------------------------------------------------

// One layer's Keras mapping. A codec is stateless and shared; its layer is
// passed in (of one of its type_names(), so the codec may cast to it).
class Codec {
 public:
  // `classes`: the Keras classes it reads, the one it writes first;
  // `types`: the maas type_name()s it writes (none for a stand-in layer).
  Codec(std::vector<std::string> classes, std::vector<std::string> types)
      : classes_(std::move(classes)), types_(std::move(types)) {}
  virtual ~Codec() = default;

  const std::vector<std::string>& class_names() const { return classes_; }
  const std::vector<std::string>& type_names() const { return types_; }

  // The layer's weights in Keras' order. The default: none, and the layer
  // must have no parameters or buffers.
  virtual std::vector<Weight> weights(const nn::Module& m, LayerContext& ctx) const;
  // The config fields after name, trainable and dtype, into `c`. Throws
  // (naming `where`) for a layer Keras cannot express.
  virtual void write_config(const nn::Module& m, const Shape& input, const std::string& where, ojson& c) const = 0;
  // The layer for config `r`, unnamed; null for a stand-in that folds into
  // the next layer (it records itself in ctx).
  virtual std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const = 0;

  // The flattened-image order (C, H, W) of the features the layer outputs,
  // from its inputs' (`flat_ins`, empty where the features are not a
  // flattened image) and shapes. The default: a layer with weights ends the
  // order, one that keeps the shape (Dropout, activations) passes it on.
  virtual Shape flat_order(const nn::Module& m, const std::vector<Shape>& ins, const std::vector<Shape>& flat_ins,
                           const Shape& out, const std::string& where) const;
  // True for Flatten: its output is a flattened image when its input is an image.
  virtual bool flattens() const { return false; }
  // True when, as a Sequential's first layer, it may take one index per sample, (None,).
  virtual bool takes_scalar_input() const { return false; }
  // True when a ZeroPadding2D may come directly before it in a Sequential.
  virtual bool folds_zero_padding() const { return false; }
  // How the list of supported layers names it; a stand-in's note comes last.
  virtual std::string listing() const { return classes_.front(); }

 private:
  std::vector<std::string> classes_, types_;
};

// `m` as its codec's layer class T (a type_name() of T on another class is a
// programming error, reported).
template <class T, class M>
T& as(M& m) {
  auto* t = dynamic_cast<T*>(&m);
  MAAS_CHECK(t != nullptr, "Keras codec: layer '" << m.name() << "' has type_name " << m.type_name()
                                                  << " but is not of that codec's class");
  return *t;
}

// ---- The registry ---------------------------------------------------------------

// Makes `codec` the one for its class names and type names (replacing any
// codec registered before for them). maas' own layers are registered from
// builtin_codecs() at first use; a layer of your own registers its codec
// once before its models are saved or loaded.
void register_codec(std::shared_ptr<const Codec> codec);
// The codec that reads Keras class `keras_class`; null if none.
const Codec* codec_for_class(const std::string& keras_class);
// The codec that writes layer `m` (by its type_name()); null if none.
const Codec* codec_for(const nn::Module& m);
// "Conv2D, Dense, ..., and (in Sequential models) ZeroPadding2D before ...".
std::string supported_text();

}  // namespace maas::detail::keras
