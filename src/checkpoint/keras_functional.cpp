// Keras' Functional model_config for a maas functional Model: writing (Keras
// 2's nested inbound_nodes) and reading (Keras 2's and Keras 3's spellings),
// the graph rebuilt call by call in a topological order.
#include <map>

#include "checkpoint/keras.hpp"
#include "maas/error.hpp"

namespace maas::detail::keras {

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

namespace {

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

}  // namespace

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
  std::map<std::string, std::shared_ptr<nn::Module>> read_so_far;  // for layers that use another's weights
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
      const Codec& codec = *codec_for_class(r.cls);  // check_supported() found them all
      std::vector<nn::Node> ins;
      bool flat = false;
      for (const Ref& ref : calls[i][node_of[id]]) {
        const size_t from = first_call[ref.layer] + ref.node;
        ins.push_back(made[from]);
        flat = flat || flat_image[from];
      }
      if (modules[i] == nullptr) {
        PendingPadding none;
        ReadContext ctx{ins[0].shape(), flat, false, none, &read_so_far};
        modules[i] = make_layer(r, ctx);
        if (modules[i] == nullptr) r.bad("is read only in Sequential models");
        read_so_far.emplace(names[i], modules[i]);
      }
      try {
        made[id] = nn::call(modules[i], ins);
      } catch (const Error& e2) {
        r.bad(without_prefix(e2.what()));
      }
      flat_image[id] = flat || (codec.flattens() && ins[0].shape().size() == 3);
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

}  // namespace maas::detail::keras
