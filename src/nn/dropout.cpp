// Dropout layer.
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "nn/keras_codec.hpp"

namespace maas::nn {

Dropout::Dropout(float rate, int64_t seed)
    : rate_(rate), gen_(seed >= 0 ? static_cast<uint64_t>(seed) : default_generator().engine()()) {
  MAAS_CHECK(rate >= 0.f && rate < 1.f, "Dropout: rate must be in [0, 1), got " << rate);
}

Shape Dropout::compute_output_shape(const Shape& input_shape) const { return input_shape; }

Shape Dropout::build(const Shape& input_shape) {
  mark_built(input_shape);
  return input_shape;
}

Tensor Dropout::forward(const Tensor& x) {
  ensure_built(x);
  return dropout(x, rate_, is_training(), gen_);
}

}  // namespace maas::nn

// ---- Keras codec: Dropout -----------------------------------------------------------

namespace maas::detail::keras {

namespace {

class DropoutCodec : public Codec {
 public:
  DropoutCodec() : Codec({"Dropout"}, {"Dropout"}) {}
  void write_config(const nn::Module& m, const Shape&, const std::string&, ojson& c) const override {
    c["rate"] = short_decimal(as<const nn::Dropout>(m).rate());
    c["noise_shape"] = nullptr;
    c["seed"] = nullptr;
  }
  std::shared_ptr<nn::Module> read(const Reading& r, ReadContext&) const override {
    const double rate = r.number("rate", 0.0);
    if (!(rate >= 0.0 && rate < 1.0)) r.bad("rate must be in [0, 1)");
    return make<nn::Dropout>(r, static_cast<float>(rate), r.integer("seed", -1));
  }
};

}  // namespace

std::shared_ptr<const Codec> dropout_codec() { return std::make_shared<DropoutCodec>(); }

}  // namespace maas::detail::keras
