// Keras' model-level format for a maas Sequential or functional Model: the
// layer list (with each layer's weights), the model_config JSON (Sequential
// and Functional, written as Keras 2 does and read from Keras 2 and Keras 3
// files). What each layer means to Keras is its codec's (nn/keras_codec.hpp,
// beside the layer): this file knows models, never a particular layer.
#include "checkpoint/keras.hpp"

#include <algorithm>
#include <map>

#include "maas/error.hpp"

namespace maas::detail::keras {

namespace {

// ---- Layer list -----------------------------------------------------------------

bool valid_group_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

// The Keras layers of `model` for per-sample inputs `inputs`; with `built`,
// each Weight holds the model's tensor. Each layer's codec lists its weights
// (and may put stand-in layers before it) and says how the flattened-image
// order of its features follows from its inputs'.
std::vector<Layer> collect_layers(const nn::Network& model, const std::vector<Shape>& inputs, bool built,
                                  const std::string& who) {
  const auto* functional = dynamic_cast<const nn::Model*>(&model);
  const std::vector<std::shared_ptr<nn::Module>>& mods = model.layers();
  const std::vector<nn::Network::Call> calls = model.calls();
  Names names;
  std::vector<std::string> input_names;
  if (functional != nullptr)
    for (const nn::Node& in : functional->input_nodes()) {
      input_names.push_back(in.name());
      names.take(in.name());
    }
  for (const auto& l : mods) {
    MAAS_CHECK(valid_group_name(l->name()), who << ": layer name '" << l->name()
                                                << "' cannot name an HDF5 group (it must be non-empty, without '/')");
    names.take(l->name());
  }
  MAAS_CHECK(!inputs.empty(), who << ": the model's input shape is not known");

  std::vector<Layer> out;
  std::vector<Shape> shapes(calls.size()), flats(calls.size());
  std::vector<size_t> ordinal(calls.size()), count(mods.size(), 0);
  std::vector<long> entry(mods.size(), -1);  // each layer's index in `out`
  std::vector<Shape> first_flat(mods.size());
  for (size_t c = 0; c < calls.size(); ++c) {
    nn::Module& m = *mods[calls[c].layer];
    const Codec* codec = codec_for(m);
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
    flats[c] = codec != nullptr ? codec->flat_order(m, ins, flat_ins, shapes[c], who)
                                : default_flat_order(m, ins, flat_ins, shapes[c]);
    if (entry[calls[c].layer] >= 0) {  // a shared layer's later call: the same weights must fit
      MAAS_CHECK(flat_ins[0] == first_flat[calls[c].layer] || (m.named_parameters().empty() && m.named_buffers().empty()),
                 who << ": layer '" << m.name() << "' (" << m.type_name()
                     << ") is called on features in different orders (flattened images and others), which one set "
                        "of weights in Keras' layout cannot follow");
      out[static_cast<size_t>(entry[calls[c].layer])].inbound.push_back(std::move(inbound));
      continue;
    }
    first_flat[calls[c].layer] = flat_ins[0];
    Layer L;
    L.name = m.name();
    L.class_name = codec != nullptr ? codec->class_names().front() : m.type_name();
    L.module = &m;
    L.codec = codec;
    L.input_shape = ins[0];
    L.inbound.push_back(std::move(inbound));
    LayerContext ctx(m, ins, flat_ins[0], built, functional != nullptr, who, out, names);
    L.weights = codec != nullptr ? codec->weights(m, ctx) : no_weights(m, who);
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

// ---- model_config: writing ----------------------------------------------------

ojson layer_config(const Layer& L, const std::string& who) {
  ojson c = base_config(L.name);
  if (L.module == nullptr) {  // a stand-in: its config is known
    for (const auto& [key, value] : L.config.items()) c[key] = value;
    return c;
  }
  const std::string where = who + ": layer '" + L.name + "' (" + L.class_name + ")";
  MAAS_CHECK(L.codec != nullptr, where << ": maas cannot write a Keras config for this layer");
  L.codec->write_config(*L.module, L.input_shape, where, c);
  return c;
}

ojson batch_shape_json(Shape in) {
  if (in.size() == 3) in = {in[1], in[2], in[0]};  // (C, H, W) -> (H, W, C)
  ojson batch = ojson::array({nullptr});
  for (int64_t d : in) batch.push_back(d);
  return batch;
}

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

}  // namespace

std::string entry_name(const json& entry, size_t index) {
  const json& c = entry["config"];
  if (c.contains("name") && c["name"].is_string()) return c["name"].get<std::string>();
  return "layer_" + std::to_string(index);
}

Shape batch_shape_of(const json& batch, const std::string& who, bool allow_scalar) {
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

namespace {

// The per-sample input shape (Keras' layout) from the InputLayer, the first
// layer's batch_input_shape, or Keras 3's build_config.
// `indices_first`: the first layer may take one index per sample, (None,)
// (an Embedding).
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

}  // namespace

std::shared_ptr<nn::Module> make_layer(const Reading& r, ReadContext& ctx) {
  const Codec* codec = codec_for_class(r.cls);
  MAAS_CHECK(codec != nullptr, r.who << ": layer '" << brief(r.name) << "' of class " << brief(r.cls)
                                     << " is not supported (maas has " << supported_text() << ")");
  std::shared_ptr<nn::Module> layer = codec->read(r, ctx);
  if (layer != nullptr) layer->set_name(r.name);
  return layer;
}

namespace {

// Throws naming every entry of an unsupported class, all in one message.
void check_supported(const json& layers, const std::string& who) {
  std::string unsupported;
  size_t n_unsupported = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    check_entry(layers[i], i, who);
    const std::string cls = layers[i]["class_name"].get<std::string>();
    if (cls != "InputLayer" && codec_for_class(cls) == nullptr) {
      if (n_unsupported < 10)
        unsupported += (n_unsupported ? ", " : "") + ("'" + brief(entry_name(layers[i], i)) + "' of class " + brief(cls));
      ++n_unsupported;
    }
  }
  if (n_unsupported > 10) unsupported += " and " + std::to_string(n_unsupported - 10) + " more";
  MAAS_CHECK(n_unsupported == 0, who << ": layer" << (n_unsupported > 1 ? "s " : " ") << unsupported
                                     << (n_unsupported > 1 ? " are" : " is") << " not supported (maas has "
                                     << supported_text() << ")");
}

ConfigModel sequential_from_config(const json& root, const json& layers, std::string model_name,
                                   const std::string& who) {
  bool indices_first = false;
  for (const json& entry : layers) {
    const std::string cls = entry["class_name"].get<std::string>();
    if (cls == "InputLayer") continue;
    indices_first = codec_for_class(cls) != nullptr && codec_for_class(cls)->takes_scalar_input();
    break;
  }
  Shape in = input_shape(root, layers, who, indices_first);
  if (in.size() == 3) in = {in[2], in[0], in[1]};  // (H, W, C) -> (C, H, W)
  auto model = std::make_unique<nn::Sequential>();  // built later, after the file's shapes are checked
  model->set_name(model_name);
  Shape cur = in;  // the per-sample shape entering the next layer

  const bool image_input = in.size() == 3;
  bool flattened = false;  // a Flatten came before the layer read
  PendingPadding pending;  // a ZeroPadding2D waiting for the layer it folds into
  std::map<std::string, std::shared_ptr<nn::Module>> read_so_far;  // for layers that use another's weights
  for (size_t i = 0; i < layers.size(); ++i) {
    const json& entry = layers[i];
    Reading r{who, entry_name(entry, i), entry["class_name"].get<std::string>(), &entry["config"]};
    const std::string& cls = r.cls;
    if (cls == "InputLayer") {
      MAAS_CHECK(i == 0, who << ": InputLayer '" << brief(r.name) << "' is not the first layer");
      continue;
    }
    const Codec& codec = *codec_for_class(cls);  // check_supported() found them all
    check_padding_folds(pending, codec, r);
    ReadContext ctx{cur, image_input && flattened, true, pending, &read_so_far};
    std::shared_ptr<nn::Module> layer = make_layer(r, ctx);
    flattened = flattened || codec.flattens();
    if (layer == nullptr) continue;  // a stand-in, folded into the next layer
    read_so_far.emplace(r.name, layer);
    try {
      cur = layer->compute_output_shape(cur);
      model->add(layer);
    } catch (const Error& e) {
      r.bad(without_prefix(e.what()));
    }
  }
  check_no_padding_left(pending, who);
  ConfigModel out;
  out.model = std::move(model);
  out.input_shapes = {in};
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
    if (c.contains("rate") && c["rate"].is_number()) L.rate = c["rate"].get<double>();
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
