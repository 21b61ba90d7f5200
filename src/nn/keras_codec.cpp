// The Keras codecs' shared parts: the helpers codecs write and read configs
// with, ZeroPadding2D (the stand-in for explicit padding, a Keras layer with
// no maas class) and the registry, with the list of maas' own codecs.
#include "nn/keras_codec.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace maas::detail::keras {

using nn::Padding;

std::string shape_text(const Shape& s) {
  std::string t = "(";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

std::string brief(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return s.substr(0, max) + "... (" + std::to_string(s.size()) + " characters)";
}

// A hostile file may hold megabytes, or strings that are not UTF-8.
std::string brief_json(const json& v) { return brief(v.dump(-1, ' ', false, json::error_handler_t::replace)); }

// ---- Weight layouts -------------------------------------------------------------

namespace {

// Index in Keras' HWC flattening of the feature that maas' CHW flattening puts at c*H*W + h*W + w.
int64_t hwc_index(int64_t chw_index, const Shape& chw) {
  const int64_t H = chw[1], W = chw[2], C = chw[0];
  const int64_t c = chw_index / (H * W), h = (chw_index / W) % H, w = chw_index % W;
  return (h * W + w) * C + c;
}

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

// ---- Writing ------------------------------------------------------------------

std::string Names::unique(const std::string& base) {
  int& next = next_[base];
  std::string n;
  do {
    n = next == 0 ? base : base + "_" + std::to_string(next);
    ++next;
  } while (taken_.count(n) != 0);
  taken_.insert(n);
  return n;
}

std::string LayerContext::where() const {
  return who + ": layer '" + module_.name() + "' (" + module_.type_name() + ")";
}

Weight LayerContext::weight(const std::string& name, const Shape& s, const Tensor& t, Layout layout) const {
  if ((layout == Layout::FlatRows || layout == Layout::FlatVector) && !flat_image()) layout = Layout::Same;
  Weight w;
  w.name = name;
  w.tensor = built ? t : Tensor();
  w.layout = layout;
  w.chw = flat;
  w.file_shape = layout == Layout::ConvKernel ? Shape{s[2], s[3], s[1], s[0]} : s;
  return w;
}

void LayerContext::insert_before(const std::string& class_name, const std::string& base, ojson config) {
  Layer L;
  L.name = names_.unique(base);
  L.class_name = class_name;
  L.config = std::move(config);
  L.input_shape = input;
  out_.push_back(std::move(L));
}

std::vector<Weight> no_weights(const nn::Module& m, const std::string& who) {
  MAAS_CHECK(m.named_parameters().empty() && m.named_buffers().empty(),
             who << ": layer '" << m.name() << "' (" << m.type_name()
                 << ") has weights of a kind maas cannot store in Keras' format");
  return {};
}

Shape default_flat_order(const nn::Module& m, const std::vector<Shape>& ins, const std::vector<Shape>& flat_ins,
                         const Shape& out) {
  if (!m.named_parameters().empty() || !m.named_buffers().empty()) return {};
  return ins[0] == out ? flat_ins[0] : Shape{};  // element-wise layers (Dropout, activations) keep the order
}

std::vector<Weight> Codec::weights(const nn::Module& m, LayerContext& ctx) const { return no_weights(m, ctx.who); }

Shape Codec::flat_order(const nn::Module& m, const std::vector<Shape>& ins, const std::vector<Shape>& flat_ins,
                        const Shape& out, const std::string&) const {
  return default_flat_order(m, ins, flat_ins, out);
}

ojson base_config(const std::string& name) {
  ojson c;
  c["name"] = name;
  c["trainable"] = true;
  c["dtype"] = "float32";
  return c;
}

double short_decimal(float f) {
  char buf[32];
  for (int p = 6; p <= 9; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) return std::strtod(buf, nullptr);
  }
  return static_cast<double>(f);
}

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

std::string padding_text(Padding p) { return p == Padding::Same ? "same" : "valid"; }

ojson with_nulls(ojson c, std::initializer_list<const char*> keys) {
  for (const char* k : keys) c[k] = nullptr;
  return c;
}

void kernel_fields(ojson& c, nn::Activation activation, bool use_bias, nn::Init kernel, nn::Init bias) {
  c["activation"] = nn::to_string(activation);
  c["use_bias"] = use_bias;
  c["kernel_initializer"] = initializer_json(kernel);
  c["bias_initializer"] = initializer_json(bias);
  c = with_nulls(c, {"kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                     "bias_constraint"});
}

// ---- Reading ------------------------------------------------------------------

void Reading::bad(const std::string& msg) const {
  MAAS_FAIL(who << ": layer '" << brief(name) << "' (" << brief(cls) << "): " << msg);
}

const json& Reading::at(const char* key) const {
  if (!has(key)) bad(std::string("model_config lacks '") + key + "'");
  return (*cfg)[key];
}

int64_t Reading::integer(const char* key, int64_t def) const {
  if (!has(key)) return def;
  const json& v = (*cfg)[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
    return static_cast<int64_t>(v.get<double>());
  bad(std::string("'") + key + "' must be an integer, got " + brief_json(v));
}

int64_t Reading::positive(const char* key) const {
  const int64_t v = integer(key, 0);
  if (v <= 0) bad(std::string(key) + " must be positive");
  return v;
}

double Reading::number(const char* key, double def) const {
  if (!has(key)) return def;
  const json& v = (*cfg)[key];
  if (!v.is_number()) bad(std::string("'") + key + "' must be a number, got " + brief_json(v));
  return v.get<double>();
}

bool Reading::boolean(const char* key, bool def) const {
  if (!has(key)) return def;
  const json& v = (*cfg)[key];
  if (!v.is_boolean()) bad(std::string("'") + key + "' must be true or false, got " + brief_json(v));
  return v.get<bool>();
}

std::string Reading::text(const char* key, const std::string& def) const {
  if (!has(key)) return def;
  const json& v = (*cfg)[key];
  if (!v.is_string()) bad(std::string("'") + key + "' must be a string, got " + brief_json(v));
  return v.get<std::string>();
}

Pair Reading::pair(const char* key, Pair def) const {
  if (!has(key)) return def;
  const json& v = (*cfg)[key];
  if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer())
    return {v[0].get<int64_t>(), v[1].get<int64_t>()};
  if (v.is_array() && v.size() == 1 && v[0].is_number_integer()) return {v[0].get<int64_t>(), v[0].get<int64_t>()};
  bad(std::string("'") + key + "' must be an integer or a list of two, got " + brief_json(v));
}

Padding Reading::padding() const {
  const std::string p = text("padding", "valid");
  if (p == "valid") return Padding::Valid;
  if (p == "same") return Padding::Same;
  bad("padding '" + brief(p) + "' is not supported (maas has 'valid' and 'same')");
}

void Reading::channels_last() const {
  const std::string f = text("data_format", "channels_last");
  if (f != "channels_last")
    bad("data_format '" + brief(f) + "' is not supported: maas reads channels_last models (Keras' default)");
}

nn::Activation Reading::activation() const {
  std::string a = "linear";
  if (has("activation")) {
    const json& v = (*cfg)["activation"];
    if (v.is_string()) {
      a = v.get<std::string>();
    } else if (v.is_object() && v.contains("config") && v["config"].is_string()) {  // Keras 3's serialised function
      a = v["config"].get<std::string>();
    } else {
      bad("activation " + brief_json(v) + " is not supported (maas has linear, relu, sigmoid, tanh, softmax, gelu)");
    }
  }
  try {
    return nn::activation_from_string(a);
  } catch (const Error&) {
    bad("activation '" + brief(a) + "' is not supported (maas has linear, relu, sigmoid, tanh, softmax, gelu)");
  }
}

nn::Init Reading::init(const char* key, nn::Init def) const {
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

std::string without_prefix(const std::string& msg) {
  const size_t colon = msg.find(": ");
  if (colon == std::string::npos || msg.find(' ') < colon) return msg;
  return msg.substr(colon + 2);
}

// ---- ZeroPadding2D: explicit padding's stand-in ---------------------------------

void zero_padding_before(LayerContext& ctx, Padding mode, const Pair& pad) {
  if (mode != Padding::Explicit || (pad[0] == 0 && pad[1] == 0)) return;
  MAAS_CHECK(!ctx.functional,
             ctx.where() << " has explicit padding, which Keras writes as a ZeroPadding2D layer that maas reads only "
                            "in Sequential models; use Padding::Same or Padding::Valid in a functional Model");
  ojson c;
  c["padding"] = ojson::array({pair_json({pad[0], pad[0]}), pair_json({pad[1], pad[1]})});
  c["data_format"] = "channels_last";
  ctx.insert_before("ZeroPadding2D", "zero_padding2d", c);
}

void take_zero_padding(const Reading& r, ReadContext& ctx, Padding mode, Padding& out_mode, Pair& out_pad) {
  PendingPadding& pending = ctx.padding;
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
}

void check_padding_folds(const PendingPadding& pending, const Codec& next, const Reading& r) {
  MAAS_CHECK(pending.name.empty() || next.folds_zero_padding(),
             r.who << ": layer '" << brief(pending.name)
                   << "' (ZeroPadding2D) is supported only directly before a Conv2D or AveragePooling2D, but it is "
                      "followed by '"
                   << brief(r.name) << "' (" << brief(r.cls) << ")");
}

void check_no_padding_left(const PendingPadding& pending, const std::string& who) {
  MAAS_CHECK(pending.name.empty(), who << ": layer '" << brief(pending.name)
                                       << "' (ZeroPadding2D) is last; maas supports it only before a Conv2D or "
                                          "AveragePooling2D");
}

namespace {

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

// Read in a Sequential only, where it is folded into the next layer (one
// that folds_zero_padding()); maas writes it for explicit padding
// (zero_padding_before), never as a layer of its own.
class ZeroPadding2DCodec : public Codec {
 public:
  ZeroPadding2DCodec() : Codec({"ZeroPadding2D"}, {}) {}
  void write_config(const nn::Module&, const Shape&, const std::string&, ojson&) const override {}
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    if (!ctx.sequential)
      r.bad("maas reads ZeroPadding2D only in Sequential models; use padding 'same' in a functional model");
    r.channels_last();
    ctx.padding.amounts = zero_padding(r);
    if (ctx.padding.amounts[0] != ctx.padding.amounts[1] || ctx.padding.amounts[2] != ctx.padding.amounts[3])
      r.bad("padding " + brief_json(r.at("padding")) + " differs between sides; maas pads both sides of a dimension alike");
    ctx.padding.name = r.name;
    return nullptr;
  }
  std::string listing() const override {
    return "and (in Sequential models) ZeroPadding2D before a Conv2D, QuantizedConv2D or AveragePooling2D";
  }
};

}  // namespace

// ---- The registry ---------------------------------------------------------------

// maas' layers' codecs, each defined beside its layer. Listed here, not
// registered by static objects in the layers' files: from a static libmaas
// the linker drops object files that nothing references.
std::shared_ptr<const Codec> conv2d_codec();
std::shared_ptr<const Codec> dense_codec();
std::shared_ptr<const Codec> max_pool2d_codec();
std::shared_ptr<const Codec> avg_pool2d_codec();
std::shared_ptr<const Codec> global_avg_pool2d_codec();
std::shared_ptr<const Codec> flatten_codec();
std::shared_ptr<const Codec> dropout_codec();
std::shared_ptr<const Codec> batch_norm_codec();
std::shared_ptr<const Codec> activation_codec();
std::shared_ptr<const Codec> relu_codec();
std::shared_ptr<const Codec> leaky_relu_codec();
std::shared_ptr<const Codec> softmax_codec();
std::shared_ptr<const Codec> rescaling_codec();
std::shared_ptr<const Codec> normalization_codec();
std::shared_ptr<const Codec> embedding_codec();
std::shared_ptr<const Codec> add_codec();
std::shared_ptr<const Codec> concatenate_codec();
std::shared_ptr<const Codec> quantized_conv2d_codec();
std::shared_ptr<const Codec> quantized_dense_codec();
std::shared_ptr<const Codec> layer_normalization_codec();
std::shared_ptr<const Codec> multi_head_attention_codec();
std::shared_ptr<const Codec> position_embedding_codec();
std::shared_ptr<const Codec> embedding_transpose_codec();

namespace {

// In the order the list of supported layers names them.
std::vector<std::shared_ptr<const Codec>> builtin_codecs() {
  return {conv2d_codec(),        dense_codec(),      max_pool2d_codec(),       avg_pool2d_codec(),
          global_avg_pool2d_codec(), flatten_codec(), dropout_codec(),         batch_norm_codec(),
          activation_codec(),    relu_codec(),       leaky_relu_codec(),       softmax_codec(),
          rescaling_codec(),     normalization_codec(), embedding_codec(),     add_codec(),
          concatenate_codec(),   quantized_conv2d_codec(), quantized_dense_codec(),
          layer_normalization_codec(), multi_head_attention_codec(), position_embedding_codec(),
          embedding_transpose_codec(),
          std::make_shared<ZeroPadding2DCodec>()};
}

struct Registry {
  std::mutex mutex;
  std::vector<std::shared_ptr<const Codec>> codecs;  // in registration order
  std::map<std::string, const Codec*> by_class, by_type;

  void add(std::shared_ptr<const Codec> codec) {
    for (const std::string& c : codec->class_names()) by_class[c] = codec.get();
    for (const std::string& t : codec->type_names()) by_type[t] = codec.get();
    codecs.push_back(std::move(codec));
  }
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;  // never destroyed: codecs may be looked up while statics are torn down
    for (auto& codec : builtin_codecs()) reg->add(std::move(codec));
    return reg;
  }();
  return *r;
}

}  // namespace

void register_codec(std::shared_ptr<const Codec> codec) {
  MAAS_CHECK(codec != nullptr && !codec->class_names().empty(), "register_codec: a codec needs a Keras class name");
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  r.add(std::move(codec));
}

const Codec* codec_for_class(const std::string& keras_class) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.by_class.find(keras_class);
  return it == r.by_class.end() ? nullptr : it->second;
}

const Codec* codec_for(const nn::Module& m) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.by_type.find(m.type_name());
  return it == r.by_type.end() ? nullptr : it->second;
}

std::string supported_text() {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  std::string layers, stand_ins;
  for (const auto& codec : r.codecs) {
    const bool replaced = std::none_of(codec->class_names().begin(), codec->class_names().end(),
                                       [&](const std::string& c) { return r.by_class.at(c) == codec.get(); });
    if (replaced) continue;
    std::string& list = codec->type_names().empty() ? stand_ins : layers;
    list += (list.empty() ? "" : ", ") + codec->listing();
  }
  return layers + (stand_ins.empty() ? "" : ", " + stand_ins);
}

}  // namespace maas::detail::keras
