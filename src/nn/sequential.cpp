// Sequential: layer stacking, Keras-style naming, shape inference, summary.
#include "maas/nn/sequential.hpp"

#include <algorithm>
#include <cctype>
#include <iomanip>
#include <map>
#include <sstream>

#include "maas/autograd.hpp"
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/naming.hpp"

namespace maas::nn {

namespace detail {

// Keras' snake case for default layer names: "MaxPooling2D" -> "max_pooling2d",
// "ReLU" -> "re_lu".
std::string snake_case(const std::string& name) {
  // Pass 1: '_' before an upper-case letter that starts a capitalised word.
  std::string a;
  for (size_t i = 0; i < name.size(); ++i) {
    if (i > 0 && std::isupper(static_cast<unsigned char>(name[i])) && i + 1 < name.size() &&
        std::islower(static_cast<unsigned char>(name[i + 1])))
      a += '_';
    a += name[i];
  }
  // Pass 2: '_' between a lower-case letter and an upper-case one; lower all.
  std::string b;
  for (size_t i = 0; i < a.size(); ++i) {
    if (i > 0 && std::islower(static_cast<unsigned char>(a[i - 1])) && std::isupper(static_cast<unsigned char>(a[i])))
      b += '_';
    b += static_cast<char>(std::tolower(static_cast<unsigned char>(a[i])));
  }
  return b;
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

// As Keras prints shapes: images (C, H, W) as channels_last (None, H, W, C).
std::string channels_last_shape_string(const Shape& s) {
  if (s.size() != 3) return batch_shape_string(s);
  return batch_shape_string({s[1], s[2], s[0]});
}

}  // namespace detail

using detail::channels_last_shape_string;
using detail::snake_case;
using detail::with_commas;

Sequential& Sequential::add(std::shared_ptr<Module> layer) {
  MAAS_CHECK(layer != nullptr, "Sequential::add: layer is null");
  // Names are looked up in a set, and each base name remembers the next
  // suffix to try, so adding n layers costs O(n log n), not O(n^2).
  if (layer->name().empty()) {
    const std::string base = snake_case(layer->type_name());
    int& k = next_suffix_[base];
    std::string candidate = k == 0 ? base : base + "_" + std::to_string(k);
    while (names_.count(candidate) != 0) candidate = base + "_" + std::to_string(++k);
    layer->set_name(candidate);
  }
  MAAS_CHECK(names_.count(layer->name()) == 0,
             "Sequential::add: a layer named '" << layer->name() << "' already exists");
  if (known_) {
    const Shape& in = output_shapes_.empty() ? input_shape_ : output_shapes_.back();
    try {
      output_shapes_.push_back(layer->build(in));
    } catch (const Error& e) {
      MAAS_FAIL("Sequential::add: layer " << layers_.size() << " '" << layer->name() << "' (" << layer->type_name()
                                          << ") cannot take input " << batch_shape_string(in) << ": " << e.what());
    }
    mark_built(input_shape_);
  }
  register_module(layer->name(), layer);
  names_.insert(layer->name());
  layers_.push_back(std::move(layer));
  return *this;
}

Shape Sequential::build(const Shape& input_shape) {
  if (built()) {
    MAAS_CHECK(input_shape == input_shape_, "Sequential: built for input " << batch_shape_string(input_shape_)
                                                                           << " but got " << batch_shape_string(input_shape));
    return output_shapes_.empty() ? input_shape_ : output_shapes_.back();
  }
  input_shape_ = input_shape;
  known_ = true;
  output_shapes_.clear();
  Shape s = input_shape;
  for (auto& l : layers_) {
    s = l->build(s);
    output_shapes_.push_back(s);
  }
  mark_built(input_shape);
  return s;
}

Shape Sequential::compute_output_shape(const Shape& input_shape) const {
  Shape s = input_shape;
  for (const auto& l : layers_) s = l->compute_output_shape(s);
  return s;
}

Tensor Sequential::forward(const Tensor& x) {
  MAAS_CHECK(x.defined() && x.dim() >= 1, "Sequential: input must be a batch, got "
                                              << (x.defined() ? maas::to_string(x.shape()) : "an undefined tensor"));
  const Shape sample(x.shape().begin() + 1, x.shape().end());
  if (!built()) build(sample);
  MAAS_CHECK(sample == input_shape_, "Sequential: model takes input " << batch_shape_string(input_shape_)
                                                                      << " but got a batch of shape "
                                                                      << maas::to_string(x.shape()));
  auto run = [this](Tensor h) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (i + 1 < layers_.size() && relu_then_max_pool(i)) {
        // max(relu(x)) = relu(max(x)), gradients included (see the header):
        // pooling first leaves ReLU a quarter of the elements for a 2x2 pool.
        h = layers_[i]->forward(layers_[i + 1]->forward(h));
        ++i;
        continue;
      }
      h = layers_[i]->forward(h);
    }
    return h;
  };
  const int64_t n = x.size(0);
  const bool evaluating = std::none_of(layers_.begin(), layers_.end(), [](const auto& l) { return l->is_training(); });
  if (n <= kInferencePiece || grad_enabled() || !evaluating || !samples_independent()) return run(x);
  // Large no-grad batch in evaluation mode: piece by piece (see the header).
  Tensor out;
  int64_t row = 0;
  for (int64_t n0 = 0; n0 < n; n0 += kInferencePiece) {
    const int64_t n1 = std::min(n, n0 + kInferencePiece);
    const Tensor piece = run(x.slice_rows(n0, n1));
    if (!out.defined()) {
      Shape shape = piece.shape();
      shape[0] = n;
      out = Tensor::empty(shape);
      row = piece.numel() / (n1 - n0);
    }
    std::copy(piece.data(), piece.data() + piece.numel(), out.data() + n0 * row);
  }
  return out;
}

bool Sequential::relu_then_max_pool(size_t i) const {
  const auto* act = dynamic_cast<const ActivationLayer*>(layers_[i].get());
  return act && act->activation() == Activation::ReLU && dynamic_cast<const MaxPool2D*>(layers_[i + 1].get());
}

std::vector<Network::Call> Sequential::calls() const {
  std::vector<Call> out(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    out[i].layer = i;
    out[i].inputs = {i == 0 ? Source{true, 0} : Source{false, i - 1}};
  }
  return out;
}

std::vector<Network::Source> Sequential::outputs() const {
  return {layers_.empty() ? Source{true, 0} : Source{false, layers_.size() - 1}};
}

std::vector<Shape> Sequential::input_shapes() const {
  if (!known_) return {};
  return {input_shape_};
}

std::vector<Shape> Sequential::output_shapes() const {
  if (!built()) return {};
  return {output_shapes_.empty() ? input_shape_ : output_shapes_.back()};
}

bool Sequential::samples_independent() const {
  for (const auto& l : layers_)
    if (!l->samples_independent()) return false;
  return true;
}

std::string Sequential::summary() const {
  // Columns as Keras lays them out (30, 24, 12 characters), widened to fit
  // the longest entry plus one space, so no name runs into its shape.
  std::vector<std::string> names, shapes, counts;
  int64_t trainable = 0, fixed = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Module& l = *layers_[i];
    const int64_t n = l.num_parameters();
    int64_t nb = 0;
    for (const auto& [bn, b] : l.named_buffers()) nb += b.numel();
    trainable += n;
    fixed += nb;
    names.push_back(" " + l.name() + " (" + l.type_name() + ")");
    shapes.push_back(i < output_shapes_.size() ? channels_last_shape_string(output_shapes_[i]) : "(unbuilt)");
    counts.push_back(with_commas(n + nb));
  }
  size_t w1 = 30, w2 = 24;
  for (size_t i = 0; i < names.size(); ++i) {
    w1 = std::max(w1, names[i].size() + 1);
    w2 = std::max(w2, shapes[i].size() + 1);
  }
  const size_t w3 = 12;
  const std::string rule(w1 + w2 + w3, '_');
  const std::string thick(w1 + w2 + w3, '=');
  auto pad = [](std::string s, size_t w) { return s.size() < w ? s + std::string(w - s.size(), ' ') : s; };
  std::ostringstream os;
  os << "Model: \"" << (name().empty() ? "sequential" : name()) << "\"\n" << rule << "\n";
  os << pad(" Layer (type)", w1) << pad("Output Shape", w2) << "Param #\n" << thick << "\n";
  for (size_t i = 0; i < names.size(); ++i) {
    os << pad(names[i], w1) << pad(shapes[i], w2) << counts[i] << "\n";
    os << (i + 1 < names.size() ? "\n" : "");
  }
  os << thick << "\n";
  os << "Total params: " << with_commas(trainable + fixed) << "\n";
  os << "Trainable params: " << with_commas(trainable) << "\n";
  os << "Non-trainable params: " << with_commas(fixed) << "\n" << rule << "\n";
  return os.str();
}

}  // namespace maas::nn
