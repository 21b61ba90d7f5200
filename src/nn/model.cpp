// Model: the functional graph — nodes, topological order, naming, build,
// forward and summary.
#include "maas/nn/model.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "maas/autograd.hpp"
#include "maas/error.hpp"
#include "nn/naming.hpp"

namespace maas::nn {

namespace {

using detail::shapes_text;

std::string layer_text(const Module& m) {
  return m.name().empty() ? "a " + m.type_name() : "layer '" + m.name() + "' (" + m.type_name() + ")";
}

}  // namespace

NodeData::~NodeData() {
  // The inputs only this node holds are taken out and freed one by one, each
  // after its own sole-owned inputs are taken out in turn.
  std::vector<std::shared_ptr<NodeData>> orphans;
  auto take = [&orphans](std::vector<Node>& nodes) {
    for (Node& n : nodes)
      if (n.data_ != nullptr && n.data_.use_count() == 1) orphans.push_back(std::move(n.data_));
  };
  take(inputs);
  while (!orphans.empty()) {
    std::shared_ptr<NodeData> d = std::move(orphans.back());
    orphans.pop_back();
    take(d->inputs);
  }  // each d is freed here with no sole-owned input left
}

const Shape& Node::shape() const {
  MAAS_CHECK(data_ != nullptr, "Node: an undefined node has no shape");
  return data_->shape;
}

const std::shared_ptr<Module>& Node::layer() const {
  MAAS_CHECK(data_ != nullptr, "Node: an undefined node has no layer");
  return data_->layer;
}

const std::vector<Node>& Node::inputs() const {
  MAAS_CHECK(data_ != nullptr, "Node: an undefined node has no inputs");
  return data_->inputs;
}

const std::string& Node::name() const {
  MAAS_CHECK(data_ != nullptr, "Node: an undefined node has no name");
  return data_->name;
}

Node Input(Shape shape, std::string name) {
  MAAS_CHECK(!shape.empty(), "Input: the per-sample shape is empty; give e.g. {1, 28, 28} or {4}");
  for (int64_t d : shape) MAAS_CHECK(d > 0, "Input: shape " << batch_shape_string(shape) << " must be positive");
  numel(shape);  // countable
  auto d = std::make_shared<NodeData>();
  d->shape = std::move(shape);
  d->name = std::move(name);
  return Node(std::move(d));
}

Node call(const std::shared_ptr<Module>& layer, const std::vector<Node>& inputs) {
  MAAS_CHECK(layer != nullptr, "call: the layer is null");
  MAAS_CHECK(!inputs.empty(), layer_text(*layer) << " called on no nodes");
  std::vector<Shape> shapes;
  for (size_t k = 0; k < inputs.size(); ++k) {
    MAAS_CHECK(inputs[k].defined(), layer_text(*layer) << " called on an undefined node (input " << k << ")");
    shapes.push_back(inputs[k].shape());
  }
  auto d = std::make_shared<NodeData>();
  try {
    // A built layer (called before) checks the shapes against its weights.
    d->shape = layer->built() ? layer->build_many(shapes) : layer->compute_output_shape_many(shapes);
  } catch (const Error& e) {
    MAAS_FAIL(layer_text(*layer) << " cannot take input " << shapes_text(shapes) << ": " << e.what());
  }
  d->layer = layer;
  d->inputs = inputs;
  return Node(std::move(d));
}

Model::Model(Node input, Node output, bool build)
    : Model(std::vector<Node>{std::move(input)}, std::vector<Node>{std::move(output)}, build) {}

Model::Model(std::vector<Node> inputs, std::vector<Node> outputs, bool build)
    : inputs_(std::move(inputs)), output_nodes_(std::move(outputs)) {
  MAAS_CHECK(!inputs_.empty(), "Model: needs at least one input");
  MAAS_CHECK(!output_nodes_.empty(), "Model: needs at least one output");
  std::unordered_map<const NodeData*, size_t> input_index, call_index;
  for (size_t k = 0; k < inputs_.size(); ++k) {
    MAAS_CHECK(inputs_[k].defined(), "Model: input " << k << " is an undefined node");
    MAAS_CHECK(inputs_[k].layer() == nullptr, "Model: input " << k << " is the output of "
                                                             << layer_text(*inputs_[k].layer())
                                                             << ", not an Input()");
    MAAS_CHECK(input_index.emplace(inputs_[k].id(), k).second, "Model: input " << k << " is given twice");
  }
  // Depth-first from the outputs, without recursion (a graph may be deep):
  // a node is appended after every node it reads, so calls_ is topological.
  std::vector<Node> order;
  std::set<const NodeData*> done;
  std::vector<std::pair<Node, size_t>> stack;
  for (const Node& out : output_nodes_) {
    MAAS_CHECK(out.defined(), "Model: an output is an undefined node");
    stack.emplace_back(out, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (done.count(node.id()) != 0) {
        stack.pop_back();
        continue;
      }
      if (node.layer() == nullptr) {
        MAAS_CHECK(input_index.count(node.id()) != 0,
                   "Model: the outputs depend on Input " << (node.name().empty() ? "" : "'" + node.name() + "' ")
                                                         << batch_shape_string(node.shape())
                                                         << ", which is not among the model's inputs");
        done.insert(node.id());
        stack.pop_back();
        continue;
      }
      if (next < node.inputs().size()) {
        const Node in = node.inputs()[next++];
        if (done.count(in.id()) == 0) stack.emplace_back(in, 0);
        continue;
      }
      done.insert(node.id());
      order.push_back(node);
      stack.pop_back();
    }
  }

  // Layers in the order of their first call; calls as Sources.
  std::unordered_map<const Module*, size_t> layer_index;
  std::vector<size_t> calls_per_layer;
  for (const Node& node : order) {
    const Module* m = node.layer().get();
    auto it = layer_index.find(m);
    if (it == layer_index.end()) {
      it = layer_index.emplace(m, layers_.size()).first;
      layers_.push_back(node.layer());
      calls_per_layer.push_back(0);
    }
    Call c;
    c.layer = it->second;
    for (const Node& in : node.inputs()) {
      const auto ii = input_index.find(in.id());
      c.inputs.push_back(ii != input_index.end() ? Source{true, ii->second} : Source{false, call_index.at(in.id())});
    }
    call_index.emplace(node.id(), calls_.size());
    calls_.push_back(std::move(c));
    call_shapes_.push_back(node.shape());
    ordinals_.push_back(calls_per_layer[it->second]++);
  }
  for (const Node& out : output_nodes_) {
    const auto ii = input_index.find(out.id());
    outputs_.push_back(ii != input_index.end() ? Source{true, ii->second} : Source{false, call_index.at(out.id())});
  }
  uses_.assign(calls_.size(), 0);
  for (const Call& c : calls_)
    for (const Source& s : c.inputs)
      if (!s.model_input) ++uses_[s.index];
  for (const Source& s : outputs_)
    if (!s.model_input) ++uses_[s.index];

  // Names: the given ones first (unique among different layers), then Keras'
  // defaults for the rest, as Sequential assigns them.
  std::set<std::string> names;
  for (const Node& in : inputs_)
    if (!in.name().empty())
      MAAS_CHECK(names.insert(in.name()).second, "Model: two inputs are named '" << in.name() << "'");
  for (const auto& l : layers_)
    if (!l->name().empty())
      MAAS_CHECK(names.insert(l->name()).second,
                 "Model: two different layers (or a layer and an input) are named '" << l->name() << "'");
  std::map<std::string, int> next_suffix;
  auto fresh = [&](const std::string& base, bool one_based) {
    int& k = next_suffix[base];
    if (one_based && k == 0) k = 1;
    std::string candidate = k == 0 ? base : base + "_" + std::to_string(k);
    while (names.count(candidate) != 0) candidate = base + "_" + std::to_string(++k);
    names.insert(candidate);
    return candidate;
  };
  for (Node& in : inputs_)
    if (in.name().empty()) in.data_->name = fresh("input", true);
  for (const auto& l : layers_)
    if (l->name().empty()) l->set_name(fresh(detail::snake_case(l->type_name()), false));
  for (const auto& l : layers_) register_module(l->name(), l);
  if (build) build_many(input_shapes());
}

std::vector<Shape> Model::input_shapes() const {
  std::vector<Shape> out;
  for (const Node& in : inputs_) out.push_back(in.shape());
  return out;
}

std::vector<Shape> Model::output_shapes() const {
  std::vector<Shape> out;
  for (const Node& n : output_nodes_) out.push_back(n.shape());
  return out;
}

Shape Model::build(const Shape& input_shape) { return build_many({input_shape}); }

Shape Model::build_many(const std::vector<Shape>& input_shapes) {
  MAAS_CHECK(input_shapes == this->input_shapes(), "Model: takes input " << shapes_text(this->input_shapes())
                                                                         << " but was asked to build for "
                                                                         << shapes_text(input_shapes));
  if (!built()) {
    for (size_t c = 0; c < calls_.size(); ++c) {
      std::vector<Shape> in;
      for (const Source& s : calls_[c].inputs)
        in.push_back(s.model_input ? inputs_[s.index].shape() : call_shapes_[s.index]);
      Module& l = *layers_[calls_[c].layer];
      try {
        const Shape out = l.build_many(in);
        MAAS_CHECK(out == call_shapes_[c], "gives " << batch_shape_string(out) << " where its node has "
                                                    << batch_shape_string(call_shapes_[c]));
      } catch (const Error& e) {
        MAAS_FAIL("Model: " << layer_text(l) << " cannot take input " << shapes_text(in) << ": " << e.what());
      }
    }
    mark_built(input_shapes[0]);
  }
  return output_nodes_[0].shape();
}

Shape Model::compute_output_shape(const Shape& input_shape) const { return compute_output_shape_many({input_shape}); }

Shape Model::compute_output_shape_many(const std::vector<Shape>& input_shapes) const {
  MAAS_CHECK(input_shapes == this->input_shapes(), "Model: takes input " << shapes_text(this->input_shapes())
                                                                         << ", not " << shapes_text(input_shapes));
  return output_nodes_[0].shape();
}

bool Model::samples_independent() const {
  return std::all_of(layers_.begin(), layers_.end(), [](const auto& l) { return l->samples_independent(); });
}

void Model::check_inputs(const std::vector<Tensor>& xs) const {
  MAAS_CHECK(xs.size() == inputs_.size(), "Model: takes " << inputs_.size() << " input(s), got " << xs.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    MAAS_CHECK(xs[k].defined() && xs[k].dim() >= 1,
               "Model: input " << k << " must be a batch, got "
                               << (xs[k].defined() ? maas::to_string(xs[k].shape()) : "an undefined tensor"));
    const Shape sample(xs[k].shape().begin() + 1, xs[k].shape().end());
    MAAS_CHECK(sample == inputs_[k].shape(), "Model: input '" << inputs_[k].name() << "' takes "
                                                              << batch_shape_string(inputs_[k].shape())
                                                              << " but got a batch of shape "
                                                              << maas::to_string(xs[k].shape()));
    MAAS_CHECK(xs[k].size(0) == xs[0].size(0), "Model: input " << k << " has " << xs[k].size(0)
                                                               << " samples but input 0 has " << xs[0].size(0));
  }
}

std::vector<Tensor> Model::run(const std::vector<Tensor>& xs) {
  std::vector<Tensor> values(calls_.size());
  std::vector<int> left = uses_;
  std::vector<Tensor> ins;
  for (size_t c = 0; c < calls_.size(); ++c) {
    ins.clear();
    for (const Source& s : calls_[c].inputs) ins.push_back(s.model_input ? xs[s.index] : values[s.index]);
    values[c] = layers_[calls_[c].layer]->forward_many(ins);
    // An intermediate output is let go once its last reader has run.
    for (const Source& s : calls_[c].inputs)
      if (!s.model_input && --left[s.index] == 0) values[s.index] = Tensor();
  }
  std::vector<Tensor> out;
  for (const Source& s : outputs_) out.push_back(s.model_input ? xs[s.index] : values[s.index]);
  return out;
}

std::vector<Tensor> Model::forward_all(const std::vector<Tensor>& xs) {
  check_inputs(xs);
  if (!built()) build_many(input_shapes());
  const int64_t n = xs[0].size(0);
  const bool evaluating = std::none_of(layers_.begin(), layers_.end(), [](const auto& l) { return l->is_training(); });
  if (n <= kInferencePiece || grad_enabled() || !evaluating || !samples_independent()) return run(xs);
  // Large no-grad batch in evaluation mode: piece by piece (see the header).
  std::vector<Tensor> out(outputs_.size());
  std::vector<int64_t> row(outputs_.size());
  for (int64_t n0 = 0; n0 < n; n0 += kInferencePiece) {
    const int64_t n1 = std::min(n, n0 + kInferencePiece);
    std::vector<Tensor> piece_in;
    for (const Tensor& x : xs) piece_in.push_back(x.slice_rows(n0, n1));
    const std::vector<Tensor> piece = run(piece_in);
    for (size_t k = 0; k < piece.size(); ++k) {
      if (!out[k].defined()) {
        Shape shape = piece[k].shape();
        shape[0] = n;
        out[k] = Tensor::empty(shape);
        row[k] = piece[k].numel() / (n1 - n0);
      }
      std::copy(piece[k].data(), piece[k].data() + piece[k].numel(), out[k].data() + n0 * row[k]);
    }
  }
  return out;
}

Tensor Model::forward_many(const std::vector<Tensor>& xs) {
  MAAS_CHECK(outputs_.size() == 1, "Model: has " << outputs_.size() << " outputs; use forward_all()");
  return forward_all(xs)[0];
}

Tensor Model::forward(const Tensor& x) { return forward_many({x}); }

std::string Model::summary() const {
  struct Row {
    std::string name, shape, count, connected;
  };
  std::vector<Row> rows;
  // 'layer[node][tensor]' for where a call's input comes from.
  auto source_text = [&](const Source& s) {
    if (s.model_input) return "'" + inputs_[s.index].name() + "[0][0]'";
    return "'" + layers_[calls_[s.index].layer]->name() + "[" + std::to_string(ordinals_[s.index]) + "][0]'";
  };
  for (const Node& in : inputs_)
    rows.push_back({" " + in.name() + " (InputLayer)", "[" + detail::channels_last_shape_string(in.shape()) + "]",
                    "0", "[]"});
  int64_t trainable = 0, fixed = 0;
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Module& l = *layers_[li];
    const int64_t n = l.num_parameters();
    int64_t nb = 0;
    for (const auto& [bn, b] : l.named_buffers()) nb += b.numel();
    trainable += n;
    fixed += nb;
    std::string shape, connected;
    for (size_t c = 0; c < calls_.size(); ++c) {
      if (calls_[c].layer != li) continue;
      const std::string s = detail::channels_last_shape_string(call_shapes_[c]);
      shape = shape.empty() || shape == s ? s : "multiple";
      for (const Source& src : calls_[c].inputs) connected += (connected.empty() ? "" : ", ") + source_text(src);
    }
    rows.push_back({" " + l.name() + " (" + l.type_name() + ")", shape, detail::with_commas(n + nb),
                    "[" + connected + "]"});
  }
  // Keras' columns for functional models (33, 22, 12, 31 characters of 98),
  // widened to fit.
  size_t w1 = 33, w2 = 22, w3 = 12, w4 = 31;
  for (const Row& r : rows) {
    w1 = std::max(w1, r.name.size() + 1);
    w2 = std::max(w2, r.shape.size() + 1);
    w3 = std::max(w3, r.count.size() + 1);
    w4 = std::max(w4, r.connected.size() + 1);
  }
  const size_t width = w1 + w2 + w3 + w4;
  auto pad = [](std::string s, size_t w) { return s.size() < w ? s + std::string(w - s.size(), ' ') : s; };
  std::ostringstream os;
  os << "Model: \"" << (name().empty() ? "model" : name()) << "\"\n" << std::string(width, '_') << "\n";
  os << pad(" Layer (type)", w1) << pad("Output Shape", w2) << pad("Param #", w3) << "Connected to\n"
     << std::string(width, '=') << "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    os << pad(rows[i].name, w1) << pad(rows[i].shape, w2) << pad(rows[i].count, w3) << rows[i].connected << "\n";
    os << (i + 1 < rows.size() ? "\n" : "");
  }
  os << std::string(width, '=') << "\n";
  os << "Total params: " << detail::with_commas(trainable + fixed) << "\n";
  os << "Trainable params: " << detail::with_commas(trainable) << "\n";
  os << "Non-trainable params: " << detail::with_commas(fixed) << "\n" << std::string(width, '_') << "\n";
  return os.str();
}

}  // namespace maas::nn
