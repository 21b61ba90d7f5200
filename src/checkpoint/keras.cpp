// Keras' layer list, weight layouts and model_config for a maas Sequential
// (see keras.hpp for the NCHW <-> channels_last mapping).
#include "checkpoint/keras.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "maas/error.hpp"

namespace maas::detail::keras {

using nn::Padding;

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

std::string shape_text(const Shape& s) {
  std::string t = "(";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

std::string brief(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return s.substr(0, max) + "... (" + std::to_string(s.size()) + " characters)";
}

namespace {

// ---- Layer list and weight layouts ------------------------------------------

std::string keras_class(const nn::Module& m) {
  const std::string t = m.type_name();
  if (t == "Sigmoid" || t == "Tanh") return "Activation";  // Keras has no such layer classes
  return t;                                              // maas' type names are Keras' class names
}

bool valid_group_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

// A weight of maas shape `s`; `t` is its tensor, or undefined when the model
// is not built yet (planned_layers).
Weight weight(const std::string& name, const Shape& s, const Tensor& t, Layout layout = Layout::Same, Shape chw = {}) {
  Weight w;
  w.name = name;
  w.tensor = t;
  w.layout = layout;
  w.chw = std::move(chw);
  w.file_shape = layout == Layout::ConvKernel ? Shape{s[2], s[3], s[1], s[0]} : s;
  return w;
}

// Index in Keras' HWC flattening of the feature that maas' CHW flattening puts at c*H*W + h*W + w.
int64_t hwc_index(int64_t chw_index, const Shape& chw) {
  const int64_t H = chw[1], W = chw[2], C = chw[0];
  const int64_t c = chw_index / (H * W), h = (chw_index / W) % H, w = chw_index % W;
  return (h * W + w) * C + c;
}

// The flattened-image order (C, H, W) of the features a layer outputs, from
// the order of its inputs' (`flat_ins`, empty where the features are not a
// flattened image) and its shapes: a Flatten of images starts one, layers
// that keep their shape pass it on, others end it. Merge layers pass it on
// when every input has the same; otherwise Keras' order of the joined
// features differs from maas' in a way no weight layout can follow.
Shape flat_order(const nn::Module& m, const std::vector<Shape>& ins, const std::vector<Shape>& flat_ins,
                 const Shape& out, const std::string& who) {
  const Shape& in = ins[0];
  const Shape& flat_in = flat_ins[0];
  if (dynamic_cast<const nn::Merge*>(&m) != nullptr) {
    const bool any = std::any_of(flat_ins.begin(), flat_ins.end(), [](const Shape& f) { return !f.empty(); });
    const bool same = std::all_of(flat_ins.begin(), flat_ins.end(), [&](const Shape& f) { return f == flat_in; });
    MAAS_CHECK(!any || (same && dynamic_cast<const nn::Add*>(&m) != nullptr),
               who << ": layer '" << m.name() << "' (" << m.type_name()
                   << ") joins features of flattened images, which Keras orders (H, W, C) and maas (C, H, W); "
                      "join the images before the Flatten instead");
    return flat_in;
  }
  if (dynamic_cast<const nn::Flatten*>(&m) != nullptr) return in.size() == 3 ? in : flat_in;
  const bool flat = !flat_in.empty() && in.size() == 1;
  if (dynamic_cast<const nn::BatchNorm*>(&m) != nullptr || dynamic_cast<const nn::Normalization*>(&m) != nullptr)
    return flat ? flat_in : Shape{};
  if (!m.named_parameters().empty() || !m.named_buffers().empty()) return {};
  return in == out ? flat_in : Shape{};  // element-wise layers (Dropout, activations) keep the order
}

// The Keras layers of `model` for per-sample inputs `inputs`; with `built`,
// each Weight holds the model's tensor.
std::vector<Layer> collect_layers(const nn::Network& model, const std::vector<Shape>& inputs, bool built,
                                  const std::string& who) {
  const auto* functional = dynamic_cast<const nn::Model*>(&model);
  const std::vector<std::shared_ptr<nn::Module>>& mods = model.layers();
  const std::vector<nn::Network::Call> calls = model.calls();
  std::set<std::string> taken;
  std::vector<std::string> input_names;
  if (functional != nullptr)
    for (const nn::Node& in : functional->input_nodes()) {
      input_names.push_back(in.name());
      taken.insert(in.name());
    }
  for (const auto& l : mods) {
    MAAS_CHECK(valid_group_name(l->name()), who << ": layer name '" << l->name()
                                                << "' cannot name an HDF5 group (it must be non-empty, without '/')");
    taken.insert(l->name());
  }
  MAAS_CHECK(!inputs.empty(), who << ": the model's input shape is not known");
  int next_padding = 0;  // the names tried so far stay taken: linear in the number of paddings
  auto padding_name = [&taken, &next_padding] {
    std::string n;
    do {
      n = next_padding == 0 ? "zero_padding2d" : "zero_padding2d_" + std::to_string(next_padding);
      ++next_padding;
    } while (taken.count(n) != 0);
    taken.insert(n);
    return n;
  };
  auto tensor = [built](const Tensor& t) { return built ? t : Tensor(); };

  std::vector<Layer> out;
  std::vector<Shape> shapes(calls.size()), flats(calls.size());
  std::vector<size_t> ordinal(calls.size()), count(mods.size(), 0);
  std::vector<long> entry(mods.size(), -1);  // each layer's index in `out`
  std::vector<Shape> first_flat(mods.size());
  for (size_t c = 0; c < calls.size(); ++c) {
    nn::Module& m = *mods[calls[c].layer];
    std::vector<Shape> ins, flat_ins;
    std::vector<Inbound> inbound;
    for (const nn::Network::Source& s : calls[c].inputs) {
      ins.push_back(s.model_input ? inputs.at(s.index) : shapes[s.index]);
      flat_ins.push_back(s.model_input ? Shape{} : flats[s.index]);
      if (s.model_input) inbound.push_back({functional != nullptr ? input_names[s.index] : "", 0});
      else inbound.push_back({mods[calls[s.index].layer]->name(), ordinal[s.index]});
    }
    try {
      shapes[c] = m.compute_output_shape_many(ins);
    } catch (const Error& e) {
      MAAS_FAIL(who << ": layer '" << brief(m.name()) << "' (" << m.type_name() << "): " << e.what());
    }
    ordinal[c] = count[calls[c].layer]++;
    flats[c] = flat_order(m, ins, flat_ins, shapes[c], who);
    const Shape& in = ins[0];
    if (entry[calls[c].layer] >= 0) {  // a shared layer's later call: the same weights must fit
      MAAS_CHECK(flat_ins[0] == first_flat[calls[c].layer] || (m.named_parameters().empty() && m.named_buffers().empty()),
                 who << ": layer '" << m.name() << "' (" << m.type_name()
                     << ") is called on features in different orders (flattened images and others), which one set "
                        "of weights in Keras' layout cannot follow");
      out[static_cast<size_t>(entry[calls[c].layer])].inbound.push_back(std::move(inbound));
      continue;
    }
    first_flat[calls[c].layer] = flat_ins[0];
    const Shape& flat_in = flat_ins[0];
    const bool flat = !flat_in.empty() && in.size() == 1;
    Layer L;
    L.name = m.name();
    L.class_name = keras_class(m);
    L.module = &m;
    L.input_shape = in;
    L.inbound.push_back(std::move(inbound));

    auto explicit_padding = [&](Padding mode, const Pair& pad) {
      if (mode != Padding::Explicit || (pad[0] == 0 && pad[1] == 0)) return;
      MAAS_CHECK(functional == nullptr,
                 who << ": layer '" << m.name() << "' (" << m.type_name()
                     << ") has explicit padding, which Keras writes as a ZeroPadding2D layer that maas reads only in "
                        "Sequential models; use Padding::Same or Padding::Valid in a functional Model");
      Layer P;
      P.name = padding_name();
      P.class_name = "ZeroPadding2D";
      P.padding = pad;
      P.input_shape = in;
      out.push_back(std::move(P));
    };

    // A quantized layer's weights after its kernel and bias: the per-channel
    // scales and the input's quantization.
    auto quantized_weights = [&](const nn::QuantizedLayer& q, int64_t out) {
      L.weights.front().dtype = Dtype::I8;
      L.weights.push_back(weight("kernel_scale", {out}, tensor(q.kernel_scale())));
      L.weights.push_back(weight("input_scale", {}, tensor(q.input_scale())));
      L.weights.push_back(weight("input_zero_point", {}, tensor(q.input_zero_point())));
      L.weights.back().dtype = Dtype::I32;
    };
    if (auto* qconv = dynamic_cast<nn::QuantizedConv2D*>(&m)) {
      explicit_padding(qconv->options().padding, qconv->options().explicit_padding);
      const int64_t f = qconv->filters();
      L.weights.push_back(weight("kernel", {f, in.at(0), qconv->kernel_size()[0], qconv->kernel_size()[1]},
                                 tensor(qconv->kernel()), Layout::ConvKernel));
      if (qconv->options().use_bias) L.weights.push_back(weight("bias", {f}, tensor(qconv->bias())));
      quantized_weights(*qconv, f);
    } else if (auto* qdense = dynamic_cast<nn::QuantizedDense*>(&m)) {
      const int64_t u = qdense->units();
      L.weights.push_back(weight("kernel", {in.back(), u}, tensor(qdense->kernel()),
                                 flat ? Layout::FlatRows : Layout::Same, flat_in));
      if (qdense->options().use_bias) L.weights.push_back(weight("bias", {u}, tensor(qdense->bias())));
      quantized_weights(*qdense, u);
    } else if (auto* conv = dynamic_cast<nn::Conv2D*>(&m)) {
      explicit_padding(conv->options().padding, conv->options().explicit_padding);
      const int64_t f = conv->filters();
      L.weights.push_back(weight("kernel", {f, in.at(0), conv->kernel_size()[0], conv->kernel_size()[1]},
                                 tensor(conv->kernel()), Layout::ConvKernel));
      if (conv->options().use_bias) L.weights.push_back(weight("bias", {f}, tensor(conv->bias())));
    } else if (auto* dense = dynamic_cast<nn::Dense*>(&m)) {
      const int64_t u = dense->units();
      L.weights.push_back(weight("kernel", {in.back(), u}, tensor(dense->kernel()),
                                 flat ? Layout::FlatRows : Layout::Same, flat_in));
      if (dense->options().use_bias) L.weights.push_back(weight("bias", {u}, tensor(dense->bias())));
    } else if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) {
      const Layout lay = flat ? Layout::FlatVector : Layout::Same;
      const Shape ch{in.at(0)};
      if (bn->options().affine) {
        L.weights.push_back(weight("gamma", ch, tensor(bn->gamma()), lay, flat_in));
        L.weights.push_back(weight("beta", ch, tensor(bn->beta()), lay, flat_in));
      }
      L.weights.push_back(weight("moving_mean", ch, tensor(bn->moving_mean()), lay, flat_in));
      L.weights.push_back(weight("moving_variance", ch, tensor(bn->moving_variance()), lay, flat_in));
    } else if (auto* norm = dynamic_cast<nn::Normalization*>(&m)) {
      MAAS_CHECK(!(flat && norm->stats_in_config()),
                 who << ": Normalization '" << m.name()
                     << "' follows a Flatten of images and keeps its statistics in model_config, where they would "
                        "be in maas' (C, H, W) order; call set_stats_in_config(false) to store them as weights");
      if (!norm->stats_in_config()) {
        // Shapes from the input (the tensors are undefined until the layer is built).
        auto stat = [&](const char* name, const Tensor& t, Shape shape, Layout lay) {
          Weight w;
          w.name = name;
          w.tensor = t;
          w.file_shape = std::move(shape);
          w.layout = lay;
          if (lay == Layout::FlatVector) w.chw = flat_in;
          return w;
        };
        const Layout lay = flat ? Layout::FlatVector : Layout::Same;
        L.weights.push_back(stat("mean", norm->mean(), {in.at(0)}, lay));
        L.weights.push_back(stat("variance", norm->variance(), {in.at(0)}, lay));
        L.weights.push_back(stat("count", norm->count(), {}, Layout::Same));
      }
    } else if (auto* emb = dynamic_cast<nn::Embedding*>(&m)) {
      L.weights.push_back(weight("embeddings", {emb->input_dim(), emb->output_dim()}, tensor(emb->embeddings())));
    } else if (auto* avg = dynamic_cast<nn::AvgPool2D*>(&m)) {
      explicit_padding(avg->options().padding, avg->options().explicit_padding);
    } else {
      MAAS_CHECK(m.named_parameters().empty() && m.named_buffers().empty(),
                 who << ": layer '" << m.name() << "' (" << m.type_name()
                     << ") has weights of a kind maas cannot store in Keras' format");
    }
    entry[calls[c].layer] = static_cast<long>(out.size());
    out.push_back(std::move(L));
  }
  return out;
}

}  // namespace

std::vector<Layer> layers_of(const nn::Network& model, const std::string& who) {
  MAAS_CHECK(model.built(), who << ": the model is not built: give the Sequential its input shape (Sequential({1, 28, "
                                   "28})) or run a batch through it first");
  return collect_layers(model, model.input_shapes(), true, who);
}

std::vector<Layer> planned_layers(const nn::Network& model, const std::vector<Shape>& input_shapes,
                                  const std::string& who) {
  return collect_layers(model, input_shapes, false, who);
}

namespace {

// keras_index[i]: where element i of maas' tensor goes in Keras' flat order.
std::vector<int64_t> keras_index(const Weight& w) {
  const Shape& s = w.tensor.shape();
  std::vector<int64_t> to(static_cast<size_t>(w.tensor.numel()));
  switch (w.layout) {
    case Layout::Same:
      for (size_t i = 0; i < to.size(); ++i) to[i] = static_cast<int64_t>(i);
      break;
    case Layout::ConvKernel: {  // [O,C,KH,KW] -> (KH,KW,C,O)
      const int64_t O = s[0], C = s[1], KH = s[2], KW = s[3];
      for (int64_t o = 0; o < O; ++o)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t y = 0; y < KH; ++y)
            for (int64_t x = 0; x < KW; ++x)
              to[static_cast<size_t>(((o * C + c) * KH + y) * KW + x)] = ((y * KW + x) * C + c) * O + o;
      break;
    }
    case Layout::FlatRows:
    case Layout::FlatVector: {  // rows in CHW order -> rows in HWC order
      const int64_t rows = s[0], cols = w.layout == Layout::FlatRows ? s[1] : 1;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t k = hwc_index(r, w.chw);
        for (int64_t u = 0; u < cols; ++u) to[static_cast<size_t>(r * cols + u)] = k * cols + u;
      }
      break;
    }
  }
  return to;
}

}  // namespace

std::vector<float> to_keras(const Weight& w) {
  const float* src = w.tensor.data();
  const std::vector<int64_t> to = keras_index(w);
  std::vector<float> dst(to.size());
  for (size_t i = 0; i < to.size(); ++i) dst[static_cast<size_t>(to[i])] = src[i];
  return dst;
}

void from_keras(const Weight& w, const std::vector<float>& values) {
  Tensor t = w.tensor;
  float* dst = t.data();
  const int64_t n = t.numel();
  MAAS_CHECK(static_cast<int64_t>(values.size()) == n, "from_keras: " << values.size() << " values for " << n);
  const std::vector<int64_t> to = keras_index(w);
  for (size_t i = 0; i < to.size(); ++i) dst[i] = values[static_cast<size_t>(to[i])];
}

// ---- model_config: writing ----------------------------------------------------

namespace {

// The shortest decimal that reads back as `f` ("0.1", not 0.10000000149).
double short_decimal(float f) {
  char buf[32];
  for (int p = 6; p <= 9; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) return std::strtod(buf, nullptr);
  }
  return static_cast<double>(f);
}

// x rounded to 15 significant digits (1 - 0.1 -> 0.9, not 0.90000000000000002).
double round15(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", x);
  return std::strtod(buf, nullptr);
}

ojson pair_json(const Pair& p) { return ojson::array({p[0], p[1]}); }

ojson initializer_json(nn::Init init) {
  static const char* names[] = {"GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "Zeros", "Ones"};
  ojson j;
  j["class_name"] = names[static_cast<int>(init)];
  j["config"] = (init == nn::Init::Zeros || init == nn::Init::Ones) ? ojson::object() : ojson{{"seed", nullptr}};
  return j;
}

ojson base_config(const std::string& name) {
  ojson c;
  c["name"] = name;
  c["trainable"] = true;
  c["dtype"] = "float32";
  return c;
}

std::string padding_text(Padding p) { return p == Padding::Same ? "same" : "valid"; }

ojson regularizers(ojson c, std::initializer_list<const char*> keys) {
  for (const char* k : keys) c[k] = nullptr;
  return c;
}

// The fields Conv2D and Dense end with, in Keras' order: activation, bias,
// initialisers, then the regularisers and constraints maas does not have.
template <class Options>
ojson with_kernel_fields(ojson c, const Options& o) {
  c["activation"] = nn::to_string(o.activation);
  c["use_bias"] = o.use_bias;
  c["kernel_initializer"] = initializer_json(o.kernel_initializer);
  c["bias_initializer"] = initializer_json(o.bias_initializer);
  return regularizers(c, {"kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                          "bias_constraint"});
}

ojson layer_config(const Layer& L, const std::string& who) {
  const std::string where = who + ": layer '" + L.name + "' (" + L.class_name + ")";
  ojson c = base_config(L.name);
  if (L.module == nullptr) {  // ZeroPadding2D standing for explicit padding
    c["padding"] = ojson::array({pair_json({L.padding[0], L.padding[0]}), pair_json({L.padding[1], L.padding[1]})});
    c["data_format"] = "channels_last";
    return c;
  }
  const nn::Module& m = *L.module;
  auto conv_fields = [&c](int64_t filters, const Pair& kernel_size, const nn::Conv2DOptions& o) {
    c["filters"] = filters;
    c["kernel_size"] = pair_json(kernel_size);
    c["strides"] = pair_json(o.strides);
    c["padding"] = padding_text(o.padding);
    c["data_format"] = "channels_last";
    c["dilation_rate"] = pair_json(o.dilation_rate);
    c["groups"] = 1;
    return with_kernel_fields(c, o);
  };
  if (auto* conv = dynamic_cast<const nn::Conv2D*>(&m))
    return conv_fields(conv->filters(), conv->kernel_size(), conv->options());
  if (auto* qconv = dynamic_cast<const nn::QuantizedConv2D*>(&m))  // Conv2D's fields; the weights say the rest
    return conv_fields(qconv->filters(), qconv->kernel_size(), qconv->options());
  if (auto* qdense = dynamic_cast<const nn::QuantizedDense*>(&m)) {
    MAAS_CHECK(L.input_shape.size() != 3, where << " takes images " << nn::batch_shape_string(L.input_shape)
                                                << ": put a Flatten before it");
    c["units"] = qdense->units();
    return with_kernel_fields(c, qdense->options());
  }
  if (auto* dense = dynamic_cast<const nn::Dense*>(&m)) {
    MAAS_CHECK(L.input_shape.size() != 3,
               where << " takes images " << nn::batch_shape_string(L.input_shape)
                     << ": maas applies Dense over the width (NCHW), Keras over the channels (channels_last), so "
                        "Keras cannot express it; put a Flatten before the Dense");
    const nn::DenseOptions& o = dense->options();
    c["units"] = dense->units();
    return with_kernel_fields(c, o);
  }
  auto pool = [&](const Pair& size, const nn::Pool2DOptions& o) {
    c["pool_size"] = pair_json(size);
    c["padding"] = padding_text(o.padding);
    c["strides"] = pair_json({o.strides[0] > 0 ? o.strides[0] : size[0], o.strides[1] > 0 ? o.strides[1] : size[1]});
    c["data_format"] = "channels_last";
    return c;
  };
  if (auto* mp = dynamic_cast<const nn::MaxPool2D*>(&m)) {
    const Pair& p = mp->options().explicit_padding;
    MAAS_CHECK(mp->options().padding != Padding::Explicit || (p[0] == 0 && p[1] == 0),
               where << " has explicit padding " << p[0] << "x" << p[1]
                     << ", which Keras' MaxPooling2D cannot express (use Padding::Same or Padding::Valid)");
    return pool(mp->pool_size(), mp->options());
  }
  if (auto* ap = dynamic_cast<const nn::AvgPool2D*>(&m)) return pool(ap->pool_size(), ap->options());
  if (dynamic_cast<const nn::GlobalAveragePooling2D*>(&m) != nullptr) {
    c["data_format"] = "channels_last";
    c["keepdims"] = false;
    return c;
  }
  if (auto* emb = dynamic_cast<const nn::Embedding*>(&m)) {
    // maas' 3-D per-sample shapes are NCHW images; Keras' are not: only
    // (None, T) and (None,) indices mean the same in both.
    MAAS_CHECK(L.input_shape.size() <= 1,
               where << " takes indices " << nn::batch_shape_string(L.input_shape)
                     << "; Keras files hold an Embedding of (None,) or (None, T) indices only");
    c["input_dim"] = emb->input_dim();
    c["output_dim"] = emb->output_dim();
    ojson init;
    init["class_name"] = "RandomUniform";
    init["config"] = {{"minval", -0.05}, {"maxval", 0.05}, {"seed", nullptr}};
    c["embeddings_initializer"] = init;
    c = regularizers(c, {"embeddings_regularizer", "activity_regularizer", "embeddings_constraint"});
    c["mask_zero"] = false;
    c["input_length"] = nullptr;
    return c;
  }
  if (dynamic_cast<const nn::Flatten*>(&m) != nullptr) {
    c["data_format"] = "channels_last";
    return c;
  }
  if (auto* d = dynamic_cast<const nn::Dropout*>(&m)) {
    c["rate"] = short_decimal(d->rate());
    c["noise_shape"] = nullptr;
    c["seed"] = nullptr;
    return c;
  }
  if (auto* bn = dynamic_cast<const nn::BatchNorm*>(&m)) {
    const nn::BatchNormOptions& o = bn->options();
    c["axis"] = -1;  // the channels, last in Keras (an int: Keras 3 takes no list)
    c["momentum"] = round15(1.0 - short_decimal(o.momentum));
    c["epsilon"] = short_decimal(o.eps);
    c["center"] = o.affine;
    c["scale"] = o.affine;
    c["beta_initializer"] = initializer_json(nn::Init::Zeros);
    c["gamma_initializer"] = initializer_json(nn::Init::Ones);
    c["moving_mean_initializer"] = initializer_json(nn::Init::Zeros);
    c["moving_variance_initializer"] = initializer_json(nn::Init::Ones);
    return regularizers(c, {"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"});
  }
  if (auto* rs = dynamic_cast<const nn::Rescaling*>(&m)) {
    c["scale"] = short_decimal(rs->scale());
    c["offset"] = short_decimal(rs->offset());
    return c;
  }
  if (auto* norm = dynamic_cast<const nn::Normalization*>(&m)) {
    c["axis"] = ojson::array({-1});  // the channels, last in Keras
    c["invert"] = false;
    c["mean"] = nullptr;  // null: the statistics are the layer's weights
    c["variance"] = nullptr;
    if (norm->stats_in_config()) {
      c["mean"] = ojson::array();
      c["variance"] = ojson::array();
      for (float v : norm->mean().to_vector()) c["mean"].push_back(short_decimal(v));
      for (float v : norm->variance().to_vector()) c["variance"].push_back(short_decimal(v));
    }
    return c;
  }
  const std::string t = m.type_name();
  if (t == "Add") return c;
  if (t == "Concatenate") {
    c["axis"] = -1;  // the channels, last in Keras
    return c;
  }
  if (t == "ReLU") {
    c["max_value"] = nullptr;
    c["negative_slope"] = 0.0;
    c["threshold"] = 0.0;
    return c;
  }
  if (t == "Softmax") {
    c["axis"] = -1;
    return c;
  }
  if (auto* a = dynamic_cast<const nn::ActivationLayer*>(&m)) {
    c["activation"] = nn::to_string(a->activation());
    return c;
  }
  if (auto* lr = dynamic_cast<const nn::LeakyReLU*>(&m)) {
    c["alpha"] = short_decimal(lr->negative_slope());
    return c;
  }
  MAAS_FAIL(where << ": maas cannot write a Keras config for this layer");
}

}  // namespace

namespace {

ojson batch_shape_json(Shape in) {
  if (in.size() == 3) in = {in[1], in[2], in[0]};  // (C, H, W) -> (H, W, C)
  ojson batch = ojson::array({nullptr});
  for (int64_t d : in) batch.push_back(d);
  return batch;
}

// Keras 2's "Functional" config: every layer with its inbound_nodes, each
// input as an InputLayer entry.
std::string functional_config(const nn::Model& model, const std::vector<Layer>& layers, const std::string& who) {
  ojson list = ojson::array();
  ojson input_layers = ojson::array(), output_layers = ojson::array();
  for (const nn::Node& in : model.input_nodes()) {
    ojson entry;
    entry["class_name"] = "InputLayer";
    entry["config"] = {{"batch_input_shape", batch_shape_json(in.shape())}, {"dtype", "float32"}, {"sparse", false},
                       {"ragged", false}, {"name", in.name()}};
    entry["name"] = in.name();
    entry["inbound_nodes"] = ojson::array();
    list.push_back(entry);
    input_layers.push_back(ojson::array({in.name(), 0, 0}));
  }
  for (const Layer& L : layers) {
    ojson entry;
    entry["class_name"] = L.class_name;
    entry["config"] = layer_config(L, who);
    entry["name"] = L.name;
    ojson nodes = ojson::array();
    for (const std::vector<Inbound>& node : L.inbound) {
      ojson args = ojson::array();
      for (const Inbound& in : node) args.push_back(ojson::array({in.layer, in.node, 0, ojson::object()}));
      nodes.push_back(args);
    }
    entry["inbound_nodes"] = nodes;
    list.push_back(entry);
  }
  const std::vector<nn::Network::Call> calls = model.calls();
  for (const nn::Network::Source& s : model.outputs()) {
    if (s.model_input) output_layers.push_back(ojson::array({model.input_nodes()[s.index].name(), 0, 0}));
    else output_layers.push_back(ojson::array({model[calls[s.index].layer].name(), model.call_ordinal(s.index), 0}));
  }
  ojson root;
  root["class_name"] = "Functional";
  root["config"] = {{"name", model.name().empty() ? std::string("model") : model.name()},
                    {"trainable", true},
                    {"layers", list},
                    {"input_layers", input_layers},
                    {"output_layers", output_layers}};
  return root.dump();
}

}  // namespace

std::string model_config(const nn::Network& network, const std::vector<Layer>& layers, const std::string& who) {
  if (const auto* functional = dynamic_cast<const nn::Model*>(&network))
    return functional_config(*functional, layers, who);
  const auto* model = dynamic_cast<const nn::Sequential*>(&network);
  MAAS_CHECK(model != nullptr, who << ": a " << network.type_name() << " model cannot be written in Keras' format");
  ojson input;
  input["class_name"] = "InputLayer";
  input["config"] = {{"batch_input_shape", batch_shape_json(model->input_shape())}, {"dtype", "float32"}, {"sparse", false}, {"ragged", false},
                     {"name", (layers.empty() ? std::string("input") : layers.front().name) + "_input"}};
  ojson list = ojson::array({input});
  for (const Layer& L : layers) {
    ojson entry;
    entry["class_name"] = L.class_name;
    entry["config"] = layer_config(L, who);
    list.push_back(entry);
  }
  ojson root;
  root["class_name"] = "Sequential";
  root["config"] = {{"name", model->name().empty() ? std::string("sequential") : model->name()}, {"layers", list}};
  return root.dump();
}

// ---- model_config: reading ----------------------------------------------------

namespace {

// A JSON value for a message: at most a short prefix of it (a hostile file
// may hold megabytes, or strings that are not UTF-8).
std::string brief_json(const json& v) { return brief(v.dump(-1, ' ', false, json::error_handler_t::replace)); }

const char* kSupported =
    "maas has Conv2D, Dense, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Dropout, "
    "BatchNormalization, Activation, ReLU, LeakyReLU, Softmax, Rescaling, Normalization, Embedding, Add, "
    "Concatenate, QuantizedConv2D, QuantizedDense, and (in Sequential models) ZeroPadding2D before a Conv2D, "
    "QuantizedConv2D or AveragePooling2D";

bool supported_class(const std::string& c) {
  static const std::set<std::string> names = {"Conv2D",     "Convolution2D",      "Dense",     "MaxPooling2D",
                                              "MaxPool2D",  "AveragePooling2D",   "AvgPool2D", "Flatten",
                                              "Dropout",    "BatchNormalization", "Activation", "ReLU",
                                              "LeakyReLU",  "Softmax",            "ZeroPadding2D", "InputLayer",
                                              "Rescaling",  "Normalization",      "Embedding", "GlobalAveragePooling2D",
                                              "GlobalAvgPool2D", "Add",           "Concatenate", "QuantizedConv2D",
                                              "QuantizedDense"};
  return names.count(c) != 0;
}

// A layer being read, for messages: "load_model: m.h5: layer 'conv2d' (Conv2D): ...".
struct Reading {
  std::string who, name, cls;
  const json* cfg;

  [[noreturn]] void bad(const std::string& msg) const {
    MAAS_FAIL(who << ": layer '" << brief(name) << "' (" << brief(cls) << "): " << msg);
  }
  bool has(const char* key) const { return cfg->contains(key) && !(*cfg)[key].is_null(); }
  const json& at(const char* key) const {
    if (!has(key)) bad(std::string("model_config lacks '") + key + "'");
    return (*cfg)[key];
  }
  int64_t integer(const char* key, int64_t def) const {
    if (!has(key)) return def;
    const json& v = (*cfg)[key];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
      return static_cast<int64_t>(v.get<double>());
    bad(std::string("'") + key + "' must be an integer, got " + brief_json(v));
  }
  double number(const char* key, double def) const {
    if (!has(key)) return def;
    const json& v = (*cfg)[key];
    if (!v.is_number()) bad(std::string("'") + key + "' must be a number, got " + brief_json(v));
    return v.get<double>();
  }
  bool boolean(const char* key, bool def) const {
    if (!has(key)) return def;
    const json& v = (*cfg)[key];
    if (!v.is_boolean()) bad(std::string("'") + key + "' must be true or false, got " + brief_json(v));
    return v.get<bool>();
  }
  std::string text(const char* key, const std::string& def) const {
    if (!has(key)) return def;
    const json& v = (*cfg)[key];
    if (!v.is_string()) bad(std::string("'") + key + "' must be a string, got " + brief_json(v));
    return v.get<std::string>();
  }
  // An int n (n x n) or a list [a, b].
  Pair pair(const char* key, Pair def) const {
    if (!has(key)) return def;
    const json& v = (*cfg)[key];
    if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
    if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer())
      return {v[0].get<int64_t>(), v[1].get<int64_t>()};
    if (v.is_array() && v.size() == 1 && v[0].is_number_integer()) return {v[0].get<int64_t>(), v[0].get<int64_t>()};
    bad(std::string("'") + key + "' must be an integer or a list of two, got " + brief_json(v));
  }
  Padding padding() const {
    const std::string p = text("padding", "valid");
    if (p == "valid") return Padding::Valid;
    if (p == "same") return Padding::Same;
    bad("padding '" + brief(p) + "' is not supported (maas has 'valid' and 'same')");
  }
  void channels_last() const {
    const std::string f = text("data_format", "channels_last");
    if (f != "channels_last")
      bad("data_format '" + brief(f) + "' is not supported: maas reads channels_last models (Keras' default)");
  }
  nn::Activation activation() const {
    std::string a = "linear";
    if (has("activation")) {
      const json& v = (*cfg)["activation"];
      if (v.is_string()) {
        a = v.get<std::string>();
      } else if (v.is_object() && v.contains("config") && v["config"].is_string()) {  // Keras 3's serialised function
        a = v["config"].get<std::string>();
      } else {
        bad("activation " + brief_json(v) + " is not supported (maas has linear, relu, sigmoid, tanh, softmax)");
      }
    }
    try {
      return nn::activation_from_string(a);
    } catch (const Error&) {
      bad("activation '" + brief(a) + "' is not supported (maas has linear, relu, sigmoid, tanh, softmax)");
    }
  }
  // Initializers only matter for re-initialising; unknown ones read as `def`.
  nn::Init init(const char* key, nn::Init def) const {
    if (!has(key)) return def;
    const json& v = (*cfg)[key];
    std::string n;
    if (v.is_string()) n = v.get<std::string>();
    if (v.is_object() && v.contains("class_name") && v["class_name"].is_string()) n = v["class_name"].get<std::string>();
    static const std::pair<const char*, nn::Init> map[] = {
        {"GlorotUniform", nn::Init::GlorotUniform}, {"glorot_uniform", nn::Init::GlorotUniform},
        {"GlorotNormal", nn::Init::GlorotNormal},   {"glorot_normal", nn::Init::GlorotNormal},
        {"HeUniform", nn::Init::HeUniform},         {"he_uniform", nn::Init::HeUniform},
        {"HeNormal", nn::Init::HeNormal},           {"he_normal", nn::Init::HeNormal},
        {"Zeros", nn::Init::Zeros},                 {"zeros", nn::Init::Zeros},
        {"Ones", nn::Init::Ones},                   {"ones", nn::Init::Ones}};
    for (const auto& [name, i] : map)
      if (n == name) return i;
    return def;
  }
};

// Keras' configs nest about 8 deep (model, layers, layer, initializer,
// config, ...); anything past this is not a model and would cost stack in
// every recursive walk of the tree (nlohmann's dump() among them).
constexpr int kMaxDepth = 64;

// The deepest nesting of arrays and objects in `text`, counting brackets
// outside strings; stops counting past kMaxDepth.
int nesting_depth(const std::string& text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > kMaxDepth) break;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// A layer's own message without the "Conv2D: " or "Sequential::add: " it
// starts with: Reading::bad() names the layer instead.
std::string without_prefix(const std::string& msg) {
  const size_t colon = msg.find(": ");
  if (colon == std::string::npos || msg.find(' ') < colon) return msg;
  return msg.substr(colon + 2);
}

// A layer made from a file's options: the constructor's errors name the file and layer.
template <class L, class... Args>
std::shared_ptr<nn::Module> make(const Reading& r, Args&&... args) {
  try {
    return std::make_shared<L>(std::forward<Args>(args)...);
  } catch (const Error& e) {
    r.bad(without_prefix(e.what()));
  }
}

json parse(const std::string& text, const std::string& who) {
  MAAS_CHECK(nesting_depth(text) <= kMaxDepth,
             who << ": model_config nests arrays and objects more than " << kMaxDepth
                 << " levels deep; a Keras model's config nests about 8");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    MAAS_FAIL(who << ": model_config is not valid JSON: " << brief(e.what(), 240));
  }
}

// The layer list of a Sequential's or functional model's config; sets
// `name` to the model's name and `functional` to whether it is a graph.
const json& model_layers(const json& root, const std::string& who, std::string* name, bool* functional) {
  MAAS_CHECK(root.is_object() && root.contains("class_name") && root["class_name"].is_string(),
             who << ": model_config has no class_name");
  const std::string cls = root["class_name"].get<std::string>();
  const bool graph = cls == "Functional" || cls == "Model";
  MAAS_CHECK(cls == "Sequential" || graph, who << ": the model is a Keras " << brief(cls)
                                               << " model; load_model reads Sequential and functional models (build "
                                                  "the model in maas and use load_weights for others)");
  if (functional != nullptr) *functional = graph;
  MAAS_CHECK(root.contains("config"), who << ": model_config has no config");
  const json& cfg = root["config"];
  if (cfg.is_array() && !graph) return cfg;  // Keras 2.0's Sequential config: the bare layer list
  MAAS_CHECK(cfg.is_object() && cfg.contains("layers") && cfg["layers"].is_array(),
             who << ": model_config of the " << cls << " model has no layer list");
  if (name != nullptr && cfg.contains("name") && cfg["name"].is_string()) *name = cfg["name"].get<std::string>();
  return cfg["layers"];
}

void check_entry(const json& entry, size_t index, const std::string& who) {
  MAAS_CHECK(entry.is_object() && entry.contains("class_name") && entry["class_name"].is_string() &&
                 entry.contains("config") && entry["config"].is_object(),
             who << ": model_config layer " << index << " has no class_name and config");
}

std::string entry_name(const json& entry, size_t index) {
  const json& c = entry["config"];
  if (c.contains("name") && c["name"].is_string()) return c["name"].get<std::string>();
  return "layer_" + std::to_string(index);
}

// The per-sample shape (Keras' layout) of a batch shape [null, d1, ...];
// [null] (one index per sample, for an Embedding) only with `allow_scalar`.
Shape batch_shape_of(const json& batch, const std::string& who, bool allow_scalar = false) {
  MAAS_CHECK(batch.is_array() && !batch.empty() && batch.size() <= 9,
             who << ": the input shape " << brief_json(batch) << " is not a batch shape [null, d1, ...] (at most 8 d's)");
  MAAS_CHECK(batch.size() >= 2 || allow_scalar,
             who << ": the input shape " << brief_json(batch) << " has no per-sample dimensions");
  Shape s;
  for (size_t i = 1; i < batch.size(); ++i) {
    const json& d = batch[i];
    MAAS_CHECK(d.is_number_integer() && d.get<int64_t>() > 0,
               who << ": the input shape " << brief_json(batch) << " must have fixed positive sizes");
    s.push_back(d.get<int64_t>());
  }
  return s;
}

// The per-sample input shape (Keras' layout) from the InputLayer, the first
// layer's batch_input_shape, or Keras 3's build_config.
// `indices_first`: the first layer is an Embedding, which may take one index
// per sample, (None,).
Shape input_shape(const json& root, const json& layers, const std::string& who, bool indices_first) {
  const json* batch = nullptr;
  if (!layers.empty()) {
    const json& c = layers[0]["config"];
    for (const char* key : {"batch_input_shape", "batch_shape"})
      if (batch == nullptr && c.contains(key) && c[key].is_array()) batch = &c[key];
  }
  const json& cfg = root["config"];
  if (batch == nullptr && cfg.is_object() && cfg.contains("build_input_shape") && cfg["build_input_shape"].is_array())
    batch = &cfg["build_input_shape"];
  if (batch == nullptr && root.contains("build_config") && root["build_config"].is_object() &&
      root["build_config"].contains("input_shape") && root["build_config"]["input_shape"].is_array())
    batch = &root["build_config"]["input_shape"];
  MAAS_CHECK(batch != nullptr && !batch->empty(),
             who << ": model_config gives no input shape (no InputLayer or batch_input_shape)");
  return batch_shape_of(*batch, who, indices_first);
}

// ZeroPadding2D's padding as {top, bottom, left, right}.
std::array<int64_t, 4> zero_padding(const Reading& r) {
  const json& v = r.at("padding");
  if (v.is_number_integer()) {
    const int64_t p = v.get<int64_t>();
    return {p, p, p, p};
  }
  if (v.is_array() && v.size() == 2) {
    if (v[0].is_number_integer() && v[1].is_number_integer())
      return {v[0].get<int64_t>(), v[0].get<int64_t>(), v[1].get<int64_t>(), v[1].get<int64_t>()};
    if (v[0].is_array() && v[1].is_array() && v[0].size() == 2 && v[1].size() == 2 && v[0][0].is_number_integer() &&
        v[0][1].is_number_integer() && v[1][0].is_number_integer() && v[1][1].is_number_integer())
      return {v[0][0].get<int64_t>(), v[0][1].get<int64_t>(), v[1][0].get<int64_t>(), v[1][1].get<int64_t>()};
  }
  r.bad("padding " + brief_json(v) + " is not understood");
}

// True when one of the first `upto` entries of the layer list is a Flatten.
bool has_flatten(const json& layers, size_t upto) {
  for (size_t k = 0; k < upto && k < layers.size(); ++k)
    if (layers[k]["class_name"] == "Flatten") return true;
  return false;
}

std::shared_ptr<nn::Module> rescaling(const Reading& r) {
  const double scale = r.number("scale", 1.0), offset = r.number("offset", 0.0);
  try {
    return std::make_shared<nn::Rescaling>(static_cast<float>(scale), static_cast<float>(offset));
  } catch (const Error& e) {
    r.bad(e.what());
  }
}

// Keras' Normalization over the last axis (maas' channels). Statistics given
// in the config (a number or one per channel) make a layer without weights
// in the file; null ones are read from the file's weights.
std::shared_ptr<nn::Module> normalization(const Reading& r, const Shape& cur, bool after_image_flatten) {
  if (cur.size() != 1 && cur.size() != 3)
    r.bad("input " + nn::batch_shape_string(cur) + " must be (None, features) or images");
  const std::string axis_msg = "maas normalises over the channels, the last axis: axis -1";
  if (r.has("axis")) {  // absent: Keras' default, -1
    const json& axis = r.at("axis");
    int64_t a = 0;
    if (axis.is_number_integer()) a = axis.get<int64_t>();
    else if (axis.is_array() && axis.size() == 1 && axis[0].is_number_integer()) a = axis[0].get<int64_t>();
    else r.bad("axis " + axis.dump() + " is not supported (" + axis_msg + ")");
    if (a != -1 && a != static_cast<int64_t>(cur.size()))
      r.bad("axis " + axis.dump() + " is not supported (" + axis_msg + ")");
  } else if (r.cfg->contains("axis")) {
    r.bad("axis null (one mean over everything) is not supported (" + axis_msg + ")");
  }
  if (r.boolean("invert", false)) r.bad("invert true (de-normalisation) is not supported");
  if (r.has("mean") != r.has("variance")) r.bad("mean and variance must be both given or both null");
  if (!r.has("mean")) return std::make_shared<nn::Normalization>();
  if (after_image_flatten)  // the statistics would be in Keras' (H, W, C) order
    r.bad("follows a Flatten of images and gives its statistics in model_config; maas reads such statistics "
          "only before the Flatten");
  const auto channels = static_cast<size_t>(cur[0]);
  auto values = [&](const char* key) {
    const json& v = r.at(key);
    std::vector<float> out;
    if (v.is_number()) out.assign(channels, v.get<float>());
    else if (v.is_array() && v.size() == channels)
      for (const json& e : v) {
        if (!e.is_number()) r.bad(std::string("'") + key + "' holds " + e.dump() + ", not a number");
        out.push_back(e.get<float>());
      }
    else r.bad(std::string("'") + key + "' must be a number or a list of " + std::to_string(channels) +
               " (one per channel), got " + (v.is_array() ? std::to_string(v.size()) + " values" : v.dump()));
    return out;
  };
  std::vector<float> mean = values("mean"), variance = values("variance");
  try {
    auto layer = std::make_shared<nn::Normalization>(std::move(mean), std::move(variance));
    layer->set_stats_in_config(true);
    return layer;
  } catch (const Error& e) {
    r.bad(e.what());
  }
}

// A ZeroPadding2D read in a Sequential, waiting for the Conv2D /
// AveragePooling2D it is folded into.
struct PendingPadding {
  std::array<int64_t, 4> amounts{0, 0, 0, 0};  // top, bottom, left, right
  std::string name;                            // empty: none
};

// The maas layer for a config entry (not ZeroPadding2D or InputLayer), for
// per-sample input `cur` (the first input's, for merge layers). A `pending`
// padding is folded into a Conv2D / AveragePooling2D and cleared.
std::shared_ptr<nn::Module> make_layer(const Reading& r, const Shape& cur, bool after_image_flatten,
                                       PendingPadding& pending) {
  const std::string& cls = r.cls;
  const std::string& who = r.who;
  std::shared_ptr<nn::Module> layer;
  if (cls == "Rescaling") layer = rescaling(r);
  if (cls == "Normalization") layer = normalization(r, cur, after_image_flatten);
  // Explicit padding taken from a preceding ZeroPadding2D.
  auto take_padding = [&](Padding mode, Padding& out_mode, Pair& out_pad) {
    if (pending.name.empty()) {
      out_mode = mode;
      return;
    }
    if (mode != Padding::Valid)
      r.bad("follows ZeroPadding2D '" + brief(pending.name) + "' but has padding 'same'; maas folds the padding only into "
            "a 'valid' layer");
    out_mode = Padding::Explicit;
    out_pad = {pending.amounts[0], pending.amounts[2]};
    pending.name.clear();
  };

  if (cls == "Conv2D" || cls == "Convolution2D" || cls == "QuantizedConv2D") {
    r.channels_last();
    if (r.integer("groups", 1) != 1) r.bad("groups " + std::to_string(r.integer("groups", 1)) + " is not supported");
    nn::Conv2DOptions o;
    o.strides = r.pair("strides", {1, 1});
    o.dilation_rate = r.pair("dilation_rate", {1, 1});
    take_padding(r.padding(), o.padding, o.explicit_padding);
    o.activation = r.activation();
    o.use_bias = r.boolean("use_bias", true);
    o.kernel_initializer = r.init("kernel_initializer", nn::Init::GlorotUniform);
    o.bias_initializer = r.init("bias_initializer", nn::Init::Zeros);
    const int64_t filters = r.integer("filters", 0);
    if (filters <= 0) r.bad("filters must be positive");
    if (cls == "QuantizedConv2D")
      layer = make<nn::QuantizedConv2D>(r, filters, r.pair("kernel_size", {0, 0}), o);
    else
      layer = make<nn::Conv2D>(r, filters, r.pair("kernel_size", {0, 0}), o);
  } else if (cls == "Dense" || cls == "QuantizedDense") {
    if (cur.size() == 3)
      r.bad("takes images directly; Keras applies it over the channels (channels_last), maas over the width "
            "(NCHW), so maas cannot load it (a Flatten before it would do)");
    nn::DenseOptions o;
    o.activation = r.activation();
    o.use_bias = r.boolean("use_bias", true);
    o.kernel_initializer = r.init("kernel_initializer", nn::Init::GlorotUniform);
    o.bias_initializer = r.init("bias_initializer", nn::Init::Zeros);
    const int64_t units = r.integer("units", 0);
    if (units <= 0) r.bad("units must be positive");
    if (cls == "QuantizedDense")
      layer = make<nn::QuantizedDense>(r, units, o);
    else
      layer = make<nn::Dense>(r, units, o);
  } else if (cls == "MaxPooling2D" || cls == "MaxPool2D" || cls == "AveragePooling2D" || cls == "AvgPool2D") {
    r.channels_last();
    const Pair size = r.pair("pool_size", {2, 2});
    nn::Pool2DOptions o;
    o.strides = r.pair("strides", size);
    if (cls == "MaxPooling2D" || cls == "MaxPool2D") {
      o.padding = r.padding();
      layer = make<nn::MaxPool2D>(r, size, o);
    } else {
      take_padding(r.padding(), o.padding, o.explicit_padding);
      if (o.padding == Padding::Explicit && (2 * o.explicit_padding[0] > size[0] || 2 * o.explicit_padding[1] > size[1]))
        r.bad("the zero padding before it is more than half the pool size, which maas' pooling cannot fold in");
      layer = make<nn::AvgPool2D>(r, size, o);
    }
  } else if (cls == "Flatten") {
    r.channels_last();
    layer = make<nn::Flatten>(r);
  } else if (cls == "GlobalAveragePooling2D" || cls == "GlobalAvgPool2D") {
    r.channels_last();
    if (r.boolean("keepdims", false)) r.bad("keepdims true is not supported (maas' layer gives (None, channels))");
    layer = make<nn::GlobalAveragePooling2D>(r);
  } else if (cls == "Embedding") {
    if (cur.size() > 1)
      r.bad("takes input " + nn::batch_shape_string(cur) + "; maas reads an Embedding of (None,) or (None, T) indices");
    if (r.boolean("mask_zero", false)) r.bad("mask_zero true is not supported (maas has no masking)");
    const int64_t input_dim = r.integer("input_dim", 0), output_dim = r.integer("output_dim", 0);
    if (input_dim <= 0) r.bad("input_dim must be positive");
    if (output_dim <= 0) r.bad("output_dim must be positive");
    layer = make<nn::Embedding>(r, input_dim, output_dim);
  } else if (cls == "Dropout") {
    const double rate = r.number("rate", 0.0);
    if (!(rate >= 0.0 && rate < 1.0)) r.bad("rate must be in [0, 1)");
    layer = make<nn::Dropout>(r, static_cast<float>(rate), r.integer("seed", -1));
  } else if (cls == "BatchNormalization") {
    const json& axis = r.at("axis");
    int64_t a = 0;
    if (axis.is_number_integer()) a = axis.get<int64_t>();
    else if (axis.is_array() && axis.size() == 1 && axis[0].is_number_integer()) a = axis[0].get<int64_t>();
    else r.bad("axis " + brief_json(axis) + " is not supported (maas normalises over the channels, the last axis)");
    const int64_t last = static_cast<int64_t>(cur.size());  // the last axis of a batch (N, ..., C)
    if (a != -1 && a != last)
      r.bad("axis " + brief_json(axis) + " is not supported (maas normalises over the channels, the last axis)");
    if (cur.size() != 1 && cur.size() != 3)
      r.bad("input " + nn::batch_shape_string(cur) + " must be (None, features) or images");
    const bool center = r.boolean("center", true), scale = r.boolean("scale", true);
    if (center != scale) r.bad("center and scale must be both true or both false in maas");
    nn::BatchNormOptions o;
    o.momentum = static_cast<float>(1.0 - r.number("momentum", 0.99));
    o.eps = static_cast<float>(r.number("epsilon", 1e-3));
    o.affine = center;
    layer = make<nn::BatchNorm>(r, o);
  } else if (cls == "Activation") {
    layer = make<nn::ActivationLayer>(r, r.activation());
  } else if (cls == "ReLU") {
    if (r.has("max_value")) r.bad("max_value is not supported");
    if (r.number("threshold", 0.0) != 0.0) r.bad("a non-zero threshold is not supported");
    const double slope = r.number("negative_slope", 0.0);
    if (slope != 0.0) layer = make<nn::LeakyReLU>(r, static_cast<float>(slope));
    else layer = make<nn::ReLU>(r);
  } else if (cls == "LeakyReLU") {
    const double slope = r.has("alpha") ? r.number("alpha", 0.3) : r.number("negative_slope", 0.3);
    layer = make<nn::LeakyReLU>(r, static_cast<float>(slope));
  } else if (cls == "Softmax") {
    const int64_t a = r.integer("axis", -1);
    if (a != -1 && a != static_cast<int64_t>(cur.size()))
      r.bad("axis " + std::to_string(a) + " is not supported (maas' Softmax takes the last axis, the channels)");
    layer = make<nn::Softmax>(r);
  } else if (cls == "Add") {
    layer = make<nn::Add>(r);
  } else if (cls == "Concatenate") {
    const int64_t a = r.integer("axis", -1);
    if (a != -1 && a != static_cast<int64_t>(cur.size()))
      r.bad("axis " + std::to_string(a) + " is not supported (maas joins along the channels, Keras' last axis: -1)");
    layer = make<nn::Concatenate>(r);
  }
  MAAS_CHECK(layer != nullptr, who << ": layer '" << brief(r.name) << "' of class " << brief(cls) << " is not supported ("
                                   << kSupported << ")");
  layer->set_name(r.name);
  return layer;
}

// Throws naming every entry of an unsupported class, all in one message.
void check_supported(const json& layers, const std::string& who) {
  std::string unsupported;
  size_t n_unsupported = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    check_entry(layers[i], i, who);
    const std::string cls = layers[i]["class_name"].get<std::string>();
    if (!supported_class(cls)) {
      if (n_unsupported < 10)
        unsupported += (n_unsupported ? ", " : "") + ("'" + brief(entry_name(layers[i], i)) + "' of class " + brief(cls));
      ++n_unsupported;
    }
  }
  if (n_unsupported > 10) unsupported += " and " + std::to_string(n_unsupported - 10) + " more";
  MAAS_CHECK(n_unsupported == 0, who << ": layer" << (n_unsupported > 1 ? "s " : " ") << unsupported
                                     << (n_unsupported > 1 ? " are" : " is") << " not supported (" << kSupported
                                     << ")");
}

ConfigModel sequential_from_config(const json& root, const json& layers, std::string model_name,
                                   const std::string& who) {
  bool indices_first = false;
  for (const json& entry : layers) {
    const std::string cls = entry["class_name"].get<std::string>();
    if (cls == "InputLayer") continue;
    indices_first = cls == "Embedding";
    break;
  }
  Shape in = input_shape(root, layers, who, indices_first);
  if (in.size() == 3) in = {in[2], in[0], in[1]};  // (H, W, C) -> (C, H, W)
  auto model = std::make_unique<nn::Sequential>();  // built later, after the file's shapes are checked
  model->set_name(model_name);
  Shape cur = in;  // the per-sample shape entering the next layer

  PendingPadding pending;  // a ZeroPadding2D waiting for its Conv2D / AveragePooling2D
  for (size_t i = 0; i < layers.size(); ++i) {
    const json& entry = layers[i];
    Reading r{who, entry_name(entry, i), entry["class_name"].get<std::string>(), &entry["config"]};
    const std::string& cls = r.cls;
    if (cls == "InputLayer") {
      MAAS_CHECK(i == 0, who << ": InputLayer '" << brief(r.name) << "' is not the first layer");
      continue;
    }
    if (!pending.name.empty() && cls != "Conv2D" && cls != "Convolution2D" && cls != "QuantizedConv2D" &&
        cls != "AveragePooling2D" && cls != "AvgPool2D")
      MAAS_FAIL(who << ": layer '" << brief(pending.name)
                    << "' (ZeroPadding2D) is supported only directly before a Conv2D or AveragePooling2D, but it is "
                       "followed by '"
                    << brief(r.name) << "' (" << brief(cls) << ")");
    if (cls == "ZeroPadding2D") {
      r.channels_last();
      pending.amounts = zero_padding(r);
      if (pending.amounts[0] != pending.amounts[1] || pending.amounts[2] != pending.amounts[3])
        r.bad("padding " + brief_json(r.at("padding")) +
              " differs between sides; maas pads both sides of a dimension alike");
      pending.name = r.name;
      continue;
    }
    std::shared_ptr<nn::Module> layer = make_layer(r, cur, in.size() == 3 && has_flatten(layers, i), pending);
    try {
      cur = layer->compute_output_shape(cur);
      model->add(layer);
    } catch (const Error& e) {
      r.bad(without_prefix(e.what()));
    }
  }
  MAAS_CHECK(pending.name.empty(), who << ": layer '" << brief(pending.name)
                                       << "' (ZeroPadding2D) is last; maas supports it only before a Conv2D or "
                                          "AveragePooling2D");
  ConfigModel out;
  out.model = std::move(model);
  out.input_shapes = {in};
  return out;
}

// ---- Functional models ----------------------------------------------------------

// Bounds on a functional config: more layers, or calls of one layer, than
// any real model has are damage (each costs a node before the weights are
// checked).
constexpr size_t kMaxLayers = 100000;
constexpr size_t kMaxCallsPerLayer = 1000;
constexpr size_t kMaxInputsPerCall = 1000;

// A reference to a layer's call: Keras' [layer name, node index, tensor index].
struct Ref {
  size_t layer = 0;  // index in the config's layer list
  size_t node = 0;
};

// `v` as [name, node_index, tensor_index] (Keras 2's entries carry a fourth,
// the call's kwargs), resolved against `index`.
Ref coordinate(const json& v, const std::map<std::string, size_t>& index, const std::string& where) {
  MAAS_CHECK(v.is_array() && (v.size() == 3 || v.size() == 4) && v[0].is_string() && v[1].is_number_unsigned() &&
                 v[2].is_number_unsigned(),
             where << " " << brief_json(v) << " is not [layer name, node index, tensor index]");
  const std::string name = v[0].get<std::string>();
  const auto it = index.find(name);
  MAAS_CHECK(it != index.end(), where << " refers to layer '" << brief(name) << "', which the model does not have");
  MAAS_CHECK(v[2].get<uint64_t>() == 0, where << " refers to output " << v[2].get<uint64_t>() << " of layer '"
                                              << brief(name) << "'; maas layers have one output");
  const uint64_t node = v[1].get<uint64_t>();
  MAAS_CHECK(node < kMaxCallsPerLayer, where << " refers to node " << node << " of layer '" << brief(name) << "'");
  return {it->second, static_cast<size_t>(node)};
}

// A Keras 3 "__keras_tensor__" object's keras_history as a coordinate.
Ref keras_tensor(const json& t, const std::map<std::string, size_t>& index, const std::string& where) {
  MAAS_CHECK(t.is_object() && t.contains("class_name") && t["class_name"] == "__keras_tensor__" &&
                 t.contains("config") && t["config"].is_object() && t["config"].contains("keras_history"),
             where << " " << brief_json(t) << " is not a Keras tensor (__keras_tensor__ with a keras_history)");
  return coordinate(t["config"]["keras_history"], index, where);
}

// The inputs of one call (an entry of inbound_nodes): Keras 2's list of
// coordinates, or Keras 3's {"args": [tensor or list of tensors], "kwargs": {...}}.
std::vector<Ref> call_inputs(const json& node, const std::map<std::string, size_t>& index, const std::string& where) {
  std::vector<Ref> out;
  if (node.is_array()) {
    MAAS_CHECK(!node.empty() && node.size() <= kMaxInputsPerCall,
               where << " lists " << node.size() << " inputs (1 to " << kMaxInputsPerCall << ")");
    for (const json& c : node) out.push_back(coordinate(c, index, where));
    return out;
  }
  MAAS_CHECK(node.is_object() && node.contains("args") && node["args"].is_array() && !node["args"].empty(),
             where << " " << brief_json(node) << " is neither Keras 2's list of inputs nor Keras 3's {\"args\": [...]}");
  const json& args = node["args"];
  for (size_t k = 1; k < args.size(); ++k)
    MAAS_CHECK(!(args[k].is_object() && args[k].contains("class_name") && args[k]["class_name"] == "__keras_tensor__"),
               where << " passes a tensor as argument " << k << "; maas layers take their inputs as the first");
  const json& first = args[0];
  if (first.is_array()) {
    MAAS_CHECK(!first.empty() && first.size() <= kMaxInputsPerCall,
               where << " lists " << first.size() << " inputs (1 to " << kMaxInputsPerCall << ")");
    for (const json& t : first) out.push_back(keras_tensor(t, index, where));
  } else {
    out.push_back(keras_tensor(first, index, where));
  }
  return out;
}

// input_layers / output_layers: one coordinate, or a list of them.
std::vector<Ref> endpoints(const json& cfg, const char* key, const std::map<std::string, size_t>& index,
                           const std::string& who) {
  const std::string where = who + ": " + key;
  MAAS_CHECK(cfg.contains(key) && cfg[key].is_array() && !cfg[key].empty(), where << " is missing or empty");
  const json& v = cfg[key];
  std::vector<Ref> out;
  if (v[0].is_string()) {
    out.push_back(coordinate(v, index, where));
    return out;
  }
  MAAS_CHECK(v.size() <= kMaxInputsPerCall, where << " lists " << v.size() << " tensors");
  for (const json& c : v) out.push_back(coordinate(c, index, where));
  return out;
}

// Rebuilds a functional model: the calls are made in a topological order of
// the node graph (Kahn's algorithm: no recursion, a cycle leaves calls that
// never become ready), each layer created at its first call, when its input
// shape is known.
ConfigModel functional_from_config(const json& root, const json& layers, std::string model_name,
                                   const std::string& who) {
  MAAS_CHECK(layers.size() <= kMaxLayers, who << ": model_config lists " << layers.size() << " layers (at most "
                                              << kMaxLayers << ")");
  const json& cfg = root["config"];
  std::map<std::string, size_t> index;
  std::vector<std::string> names(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const json& e = layers[i];
    names[i] = e.contains("name") && e["name"].is_string() ? e["name"].get<std::string>() : entry_name(e, i);
    MAAS_CHECK(index.emplace(names[i], i).second, who << ": two layers are named '" << brief(names[i]) << "'");
  }
  // Every call's inputs, and the graph's edges from call to call.
  std::vector<std::vector<std::vector<Ref>>> calls(layers.size());
  std::vector<size_t> first_call(layers.size() + 1, 0);  // global id of (layer i, node k): first_call[i] + k
  for (size_t i = 0; i < layers.size(); ++i) {
    const json& e = layers[i];
    const std::string cls = e["class_name"].get<std::string>();
    const std::string where = who + ": layer '" + brief(names[i]) + "' (" + brief(cls) + "): inbound_nodes";
    const json empty = json::array();
    const json& nodes = e.contains("inbound_nodes") ? e["inbound_nodes"] : empty;
    MAAS_CHECK(nodes.is_array(), where << " is not a list");
    if (cls == "InputLayer") {
      MAAS_CHECK(nodes.empty(), where << " must be empty for an InputLayer");
      calls[i].emplace_back();  // its one node: the model input
    } else {
      MAAS_CHECK(!nodes.empty(), where << " is empty: the layer is never called");
      MAAS_CHECK(nodes.size() <= kMaxCallsPerLayer, where << " lists " << nodes.size() << " calls (at most "
                                                          << kMaxCallsPerLayer << ")");
      for (size_t k = 0; k < nodes.size(); ++k)
        calls[i].push_back(call_inputs(nodes[k], index, where + " " + std::to_string(k)));
    }
    first_call[i + 1] = first_call[i] + calls[i].size();
  }
  const size_t total = first_call[layers.size()];
  std::vector<size_t> waiting(total, 0);         // inputs not made yet
  std::vector<std::vector<size_t>> readers(total);  // calls that read each call
  for (size_t i = 0; i < layers.size(); ++i)
    for (size_t k = 0; k < calls[i].size(); ++k)
      for (const Ref& ref : calls[i][k]) {
        MAAS_CHECK(ref.node < calls[ref.layer].size(),
                   who << ": layer '" << brief(names[i]) << "' reads node " << ref.node << " of layer '"
                       << brief(names[ref.layer]) << "', which has " << calls[ref.layer].size());
        readers[first_call[ref.layer] + ref.node].push_back(first_call[i] + k);
        ++waiting[first_call[i] + k];
      }
  std::vector<size_t> layer_of(total), node_of(total);
  for (size_t i = 0; i < layers.size(); ++i)
    for (size_t k = 0; k < calls[i].size(); ++k) {
      layer_of[first_call[i] + k] = i;
      node_of[first_call[i] + k] = k;
    }

  std::vector<nn::Node> made(total);
  std::vector<char> flat_image(total, 0);  // the node's features are (or come from) a flattened image
  std::vector<std::shared_ptr<nn::Module>> modules(layers.size());
  std::vector<size_t> ready;
  for (size_t id = 0; id < total; ++id)
    if (waiting[id] == 0) ready.push_back(id);
  size_t done = 0;
  while (!ready.empty()) {
    const size_t id = ready.back();
    ready.pop_back();
    ++done;
    const size_t i = layer_of[id];
    const json& e = layers[i];
    Reading r{who, names[i], e["class_name"].get<std::string>(), &e["config"]};
    if (r.cls == "InputLayer") {
      const json& c = e["config"];
      const json* batch = nullptr;
      for (const char* key : {"batch_input_shape", "batch_shape"})
        if (batch == nullptr && c.contains(key) && c[key].is_array()) batch = &c[key];
      if (batch == nullptr) r.bad("has no batch_input_shape or batch_shape");
      Shape in = batch_shape_of(*batch, who + ": InputLayer '" + brief(names[i]) + "'");
      if (in.size() == 3) in = {in[2], in[0], in[1]};  // (H, W, C) -> (C, H, W)
      try {
        made[id] = nn::Input(in, names[i]);
      } catch (const Error& e2) {
        r.bad(e2.what());
      }
    } else {
      if (r.cls == "ZeroPadding2D")
        r.bad("maas reads ZeroPadding2D only in Sequential models; use padding 'same' in a functional model");
      std::vector<nn::Node> ins;
      bool flat = false;
      for (const Ref& ref : calls[i][node_of[id]]) {
        const size_t from = first_call[ref.layer] + ref.node;
        ins.push_back(made[from]);
        flat = flat || flat_image[from];
      }
      if (modules[i] == nullptr) {
        PendingPadding none;
        modules[i] = make_layer(r, ins[0].shape(), flat, none);
      }
      try {
        made[id] = nn::call(modules[i], ins);
      } catch (const Error& e2) {
        r.bad(without_prefix(e2.what()));
      }
      flat_image[id] = flat || (r.cls == "Flatten" && ins[0].shape().size() == 3);
    }
    for (const size_t next : readers[id])
      if (--waiting[next] == 0) ready.push_back(next);
  }
  if (done < total) {
    size_t stuck = 0;
    while (waiting[stuck] == 0) ++stuck;
    MAAS_FAIL(who << ": the inbound_nodes form a cycle: layer '" << brief(names[layer_of[stuck]])
                  << "' (node " << node_of[stuck] << ") depends, through its inputs, on itself");
  }

  std::vector<nn::Node> inputs, outputs;
  for (const Ref& ref : endpoints(cfg, "input_layers", index, who)) {
    MAAS_CHECK(layers[ref.layer]["class_name"] == "InputLayer",
               who << ": input_layers names '" << brief(names[ref.layer]) << "', which is not an InputLayer");
    inputs.push_back(made[first_call[ref.layer]]);
  }
  for (const Ref& ref : endpoints(cfg, "output_layers", index, who)) {
    MAAS_CHECK(ref.node < calls[ref.layer].size(), who << ": output_layers names node " << ref.node << " of layer '"
                                                       << brief(names[ref.layer]) << "', which has "
                                                       << calls[ref.layer].size());
    outputs.push_back(made[first_call[ref.layer] + ref.node]);
  }
  ConfigModel out;
  try {
    auto model = std::make_unique<nn::Model>(inputs, outputs, /*build=*/false);
    model->set_name(model_name);
    out.input_shapes = model->input_shapes();
    out.model = std::move(model);
  } catch (const Error& e) {
    MAAS_FAIL(who << ": " << e.what());
  }
  out.functional = true;
  return out;
}

}  // namespace

std::vector<ConfigLayer> config_layers(const std::string& text, const std::string& who) {
  const json root = parse(text, who);
  const json& layers = model_layers(root, who, nullptr, nullptr);
  std::vector<ConfigLayer> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    check_entry(layers[i], i, who);
    ConfigLayer L;
    L.class_name = layers[i]["class_name"].get<std::string>();
    if (L.class_name == "InputLayer") continue;
    L.name = entry_name(layers[i], i);
    const json& c = layers[i]["config"];
    if (L.class_name == "Dropout" && c.contains("rate") && c["rate"].is_number()) L.rate = c["rate"].get<double>();
    out.push_back(std::move(L));
  }
  return out;
}

ConfigModel model_from_config(const std::string& text, const std::string& who) {
  const json root = parse(text, who);
  std::string model_name;
  bool functional = false;
  const json& layers = model_layers(root, who, &model_name, &functional);
  check_supported(layers, who);
  if (functional) return functional_from_config(root, layers, model_name.empty() ? "model" : model_name, who);
  return sequential_from_config(root, layers, model_name.empty() ? "sequential" : model_name, who);
}

}  // namespace maas::detail::keras
