// Merge layers: Add and Concatenate. The math is the ops' (add, concat);
// these check shapes and name the layer in errors.
#include <algorithm>
#include <string>

#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"
#include "nn/naming.hpp"

namespace maas::nn {

namespace {

using detail::shapes_text;

}  // namespace

Shape Merge::build_many(const std::vector<Shape>& input_shapes) {
  Shape out = compute_output_shape_many(input_shapes);
  if (!built()) mark_built(input_shapes[0]);
  return out;
}

Shape Merge::check_inputs(const std::vector<Tensor>& xs) const {
  MAAS_CHECK(!xs.empty(), type_name() << " '" << name() << "' needs at least one input, got an empty list");
  std::vector<Shape> shapes;
  for (size_t k = 0; k < xs.size(); ++k) {
    MAAS_CHECK(xs[k].defined() && xs[k].dim() >= 1,
               type_name() << " '" << name() << "': input " << k << " is "
                           << (xs[k].defined() ? "a tensor without a batch dimension" : "undefined"));
    MAAS_CHECK(xs[k].size(0) == xs[0].size(0), type_name() << " '" << name() << "': input " << k << " has a batch of "
                                                           << xs[k].size(0) << " samples but input 0 of "
                                                           << xs[0].size(0));
    shapes.emplace_back(xs[k].shape().begin() + 1, xs[k].shape().end());
  }
  return compute_output_shape_many(shapes);
}

Shape Add::compute_output_shape_many(const std::vector<Shape>& input_shapes) const {
  MAAS_CHECK(!input_shapes.empty(), "Add '" << name() << "' needs at least one input, got none");
  for (size_t k = 1; k < input_shapes.size(); ++k)
    MAAS_CHECK(input_shapes[k] == input_shapes[0], "Add '" << name() << "' needs inputs of one shape, got "
                                                           << shapes_text(input_shapes));
  return input_shapes[0];
}

Tensor Add::forward_many(const std::vector<Tensor>& xs) {
  check_inputs(xs);
  Tensor h = xs[0];
  for (size_t k = 1; k < xs.size(); ++k) h = h + xs[k];
  return h;
}

Shape Concatenate::compute_output_shape_many(const std::vector<Shape>& input_shapes) const {
  MAAS_CHECK(!input_shapes.empty(), "Concatenate '" << name() << "' needs at least one input, got none");
  const Shape& first = input_shapes[0];
  MAAS_CHECK(!first.empty(), "Concatenate '" << name() << "' needs inputs with a feature dimension, got "
                                             << shapes_text(input_shapes));
  // The channels: softmax_axis() of the batch's rank, less the batch dimension.
  const size_t axis = static_cast<size_t>(softmax_axis(static_cast<int64_t>(first.size()) + 1) - 1);
  Shape out = first;
  for (size_t k = 1; k < input_shapes.size(); ++k) {
    const Shape& s = input_shapes[k];
    bool fits = s.size() == first.size();
    for (size_t i = 0; fits && i < s.size(); ++i) fits = i == axis || s[i] == first[i];
    MAAS_CHECK(fits, "Concatenate '" << name() << "' joins along the channels (" << (first.size() == 3 ? "C of (C, H, W)" : "the last axis")
                                     << "); the other dimensions must agree, got " << shapes_text(input_shapes));
    out[axis] += s[axis];
  }
  numel(out);  // countable
  return out;
}

Tensor Concatenate::forward_many(const std::vector<Tensor>& xs) {
  check_inputs(xs);
  return concat(xs, softmax_axis(xs[0].dim()));
}

}  // namespace maas::nn

// ---- Keras codecs: Add, Concatenate -----------------------------------------------------
// Merge layers pass a flattened image's order on when every input has the
// same (Add); otherwise Keras' order of the joined features differs from
// maas' in a way no weight layout can follow.

namespace maas::detail::keras {

namespace {

class MergeCodec : public Codec {
 public:
  MergeCodec(const char* cls, bool keeps_order) : Codec({cls}, {cls}), keeps_order_(keeps_order) {}
  Shape flat_order(const nn::Module& m, const std::vector<Shape>&, const std::vector<Shape>& flat_ins, const Shape&,
                   const std::string& who) const override {
    const Shape& first = flat_ins[0];
    const bool any = std::any_of(flat_ins.begin(), flat_ins.end(), [](const Shape& f) { return !f.empty(); });
    const bool same = std::all_of(flat_ins.begin(), flat_ins.end(), [&](const Shape& f) { return f == first; });
    MAAS_CHECK(!any || (same && keeps_order_),
               who << ": layer '" << m.name() << "' (" << m.type_name()
                   << ") joins features of flattened images, which Keras orders (H, W, C) and maas (C, H, W); "
                      "join the images before the Flatten instead");
    return first;
  }

 private:
  bool keeps_order_;
};

class AddCodec : public MergeCodec {
 public:
  AddCodec() : MergeCodec("Add", true) {}
  void write_config(const nn::Module&, const Shape&, const std::string&, ojson&) const override {}
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override { return make<nn::Add>(r); }
};

class ConcatenateCodec : public MergeCodec {
 public:
  ConcatenateCodec() : MergeCodec("Concatenate", false) {}
  void write_config(const nn::Module&, const Shape&, const std::string&, ojson& c) const override {
    c["axis"] = -1;  // the channels, last in Keras
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext& ctx) const override {
    const int64_t a = r.integer("axis", -1);
    if (a != -1 && a != static_cast<int64_t>(ctx.input.size()))
      r.bad("axis " + std::to_string(a) + " is not supported (maas joins along the channels, Keras' last axis: -1)");
    return make<nn::Concatenate>(r);
  }
};

}  // namespace

std::shared_ptr<const Codec> add_codec() { return std::make_shared<AddCodec>(); }
std::shared_ptr<const Codec> concatenate_codec() { return std::make_shared<ConcatenateCodec>(); }

}  // namespace maas::detail::keras
