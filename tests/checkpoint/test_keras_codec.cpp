// The Keras codec extension point: a layer defined here, with its codec
// registered here, saves and loads through save_model / load_model with no
// change to src/checkpoint/. The toy layer scales each feature by a weight;
// after a Flatten of images its weight follows Keras' (H, W, C) order, as
// BatchNorm's vectors do, through the codec's hooks.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "checkpoint/keras.hpp"
#include "data/temp_dir.hpp"
#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"
#include "nn/keras_codec.hpp"

using namespace maas;
using maas::test::read_bytes;
using maas::test::TempDir;

namespace {

namespace keras = maas::detail::keras;

// y = x * scale, one scale per feature; scale starts at `init`.
class FeatureScale : public nn::Module {
 public:
  explicit FeatureScale(float init = 1.f) : init_(init) {}
  Tensor forward(const Tensor& x) override {
    ensure_built(x);
    return x * scale_;
  }
  Shape build(const Shape& input_shape) override {
    Shape out = compute_output_shape(input_shape);
    if (!built()) {
      scale_ = register_parameter("scale", Tensor::full({input_shape.back()}, init_));
      mark_built(input_shape);
    }
    return out;
  }
  Shape compute_output_shape(const Shape& input_shape) const override {
    MAAS_CHECK(input_shape.size() == 1, "FeatureScale: input " << nn::batch_shape_string(input_shape)
                                                               << " must be (None, features)");
    return input_shape;
  }
  std::string type_name() const override { return "FeatureScale"; }
  bool samples_independent() const override { return true; }
  float init() const { return init_; }
  const Tensor& scale() const { return scale_; }

 private:
  float init_;
  Tensor scale_;
};

// Keras class "FeatureScale" (Keras 3 writes a registered custom class
// with its package, "custom>FeatureScale"); config {"init": ...}; one weight
// "scale" (F,).
class FeatureScaleCodec : public keras::Codec {
 public:
  FeatureScaleCodec() : Codec({"FeatureScale", "custom>FeatureScale"}, {"FeatureScale"}) {}
  std::vector<keras::Weight> weights(const nn::Module& m, keras::LayerContext& ctx) const override {
    const auto& s = keras::as<const FeatureScale>(m);
    return {ctx.weight("scale", {ctx.input.at(0)}, s.scale(), keras::Layout::FlatVector)};
  }
  void write_config(const nn::Module& m, const Shape&, const std::string&, keras::ojson& c) const override {
    c["init"] = keras::short_decimal(keras::as<const FeatureScale>(m).init());
  }
  std::shared_ptr<nn::Module> read(const keras::Reading& r, keras::ReadContext&) const override {
    return keras::make<FeatureScale>(r, static_cast<float>(r.number("init", 1.0)));
  }
  Shape flat_order(const nn::Module&, const std::vector<Shape>& ins, const std::vector<Shape>& flat_ins, const Shape&,
                   const std::string&) const override {
    return ins[0].size() == 1 ? flat_ins[0] : Shape{};  // per-feature weights keep a flattened image's order
  }
};

Tensor predict(nn::Module& m, const Tensor& x) {
  m.eval();
  NoGradGuard ng;
  return m(x);
}

}  // namespace

TEST_CASE("A layer defined outside maas saves and loads through its registered Keras codec", "[io]") {
  keras::register_codec(std::make_shared<FeatureScaleCodec>());
  TempDir dir("keras_codec");
  manual_seed(7);
  nn::Sequential model({2, 3, 3});
  model.add(nn::Flatten());
  model.add(FeatureScale(0.5f));
  model.add(nn::Dense(4));
  {
    NoGradGuard ng;  // distinct scales, so that the (H, W, C) order shows
    float* s = model.parameters()[0].data();
    for (int i = 0; i < 18; ++i) s[i] = 0.1f * static_cast<float>(i + 1);
  }
  const std::vector<keras::Layer> layers = keras::layers_of(model, "test");
  REQUIRE(layers[1].class_name == "FeatureScale");
  REQUIRE(layers[1].weights.size() == 1);
  CHECK(layers[1].weights[0].layout == keras::Layout::FlatVector);
  CHECK(layers[2].weights[0].layout == keras::Layout::FlatRows);  // the order passed on to the Dense
  // Keras' (H, W, C) flattening: feature (h, w, c) is maas' c*9 + h*3 + w.
  const std::vector<float> file = keras::to_keras(layers[1].weights[0]);
  CHECK(file[1] == Approx(0.1f * 10));  // (0, 0, 1): maas' feature 9
  CHECK(file[2] == Approx(0.1f * 2));   // (0, 1, 0): maas' feature 1

  const std::string path = dir.path / "scale.h5";
  save_model(model, path);
  std::unique_ptr<nn::Network> loaded = load_model(path);
  REQUIRE((*loaded)[1].type_name() == "FeatureScale");
  CHECK(dynamic_cast<FeatureScale&>((*loaded)[1]).init() == 0.5f);
  Generator gen(3);
  const Tensor x = Tensor::randn({5, 2, 3, 3}, gen);
  CHECK(predict(*loaded, x).to_vector() == predict(model, x).to_vector());

  const std::string again = dir.path / "again.h5";
  save_model(*loaded, again);
  CHECK(read_bytes(again) == read_bytes(path));

  // The listing of supported layers names it too.
  CHECK(keras::supported_text().find("FeatureScale") != std::string::npos);
}
