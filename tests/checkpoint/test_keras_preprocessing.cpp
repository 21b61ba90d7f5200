// Rescaling and Normalization in Keras' .h5 layout: the weights and
// model_config fields Keras 2 writes, a save -> load round trip, and
// configs written by hand as Keras writes them.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "checkpoint/h5.hpp"
#include "checkpoint/keras.hpp"
#include "data/temp_dir.hpp"
#include "gradcheck.hpp"
#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"

using namespace maas;
using namespace maas::nn;
using maas::test::TempDir;

namespace {

Tensor eval(nn::Module& m, const Tensor& x) {
  m.eval();
  NoGradGuard ng;
  return m(x);
}

std::vector<float> values(const Tensor& t) { return t.to_vector(); }

// A Keras 2.13 Sequential config around one layer entry, for input (None, H, W, C) or (None, F).
std::string keras_config(const std::string& batch_shape, const std::string& layers) {
  return R"({"class_name": "Sequential", "config": {"name": "sequential", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": )" + batch_shape +
         R"(, "dtype": "float32", "sparse": false, "ragged": false, "name": "input_1"}}, )" + layers + "]}}";
}

// The model model_from_config rebuilt, built for its input shape (it gives
// either the model or a struct of the unbuilt model and its input shape).
template <class Config>
nn::Network& built(Config& c) {
  if (!c.model->built()) c.model->build_many(c.input_shapes);
  return *c.model;
}

}  // namespace

TEST_CASE("Rescaling and Normalization save and load in Keras' layout with the same outputs", "[io]") {
  TempDir dir("preprocessing");
  manual_seed(11);
  Sequential m({2, 4, 4});
  m.add(Rescaling(1.f / 255.f, 0.f));
  m.add(Normalization({0.25f, 0.5f}, {0.04f, 0.09f}));
  m.add(Conv2D(3, 3)).add(ReLU()).add(Flatten()).add(Dense(4));
  Generator gen(2);
  const Tensor x = Tensor::rand({3, 2, 4, 4}, gen, 0.f, 255.f);
  const Tensor want = eval(m, x);
  save_model(m, dir / "m.h5");

  auto loaded = load_model(dir / "m.h5");
  REQUIRE(loaded->size() == m.size());
  CHECK((*loaded)[0].type_name() == "Rescaling");
  CHECK((*loaded)[1].type_name() == "Normalization");
  const auto& rs = dynamic_cast<const Rescaling&>((*loaded)[0]);
  CHECK(rs.scale() == 1.f / 255.f);
  CHECK(rs.offset() == 0.f);
  const auto& norm = dynamic_cast<const Normalization&>((*loaded)[1]);
  CHECK(values(norm.mean()) == std::vector<float>{0.25f, 0.5f});
  CHECK(values(norm.variance()) == std::vector<float>{0.04f, 0.09f});
  CHECK(values(eval(*loaded, x)) == values(want));

  // What Keras 2.13 writes for an adapted Normalization: null statistics in
  // the config, and mean:0 (C,), variance:0 (C,), count:0 () as weights.
  detail::h5::File f = detail::h5::File::open(dir / "m.h5", {"test", dir / "m.h5"});
  const auto config = nlohmann::json::parse(f.root().read_string("model_config"));
  const auto& layers = config["config"]["layers"];
  CHECK(layers[1]["class_name"] == "Rescaling");
  CHECK(layers[1]["config"]["scale"].get<double>() == Approx(1.0 / 255.0).epsilon(1e-7));
  CHECK(layers[1]["config"]["offset"] == 0.0);
  CHECK(layers[2]["class_name"] == "Normalization");
  CHECK(layers[2]["config"]["axis"] == nlohmann::json::array({-1}));
  CHECK(layers[2]["config"]["mean"].is_null());
  CHECK(layers[2]["config"]["variance"].is_null());
  CHECK(layers[2]["config"]["invert"] == false);
  const detail::h5::Group g = f.root().group("model_weights/normalization");
  CHECK(g.read_string_list("weight_names") ==
        std::vector<std::string>{"normalization/mean:0", "normalization/variance:0", "normalization/count:0"});
  CHECK(g.dataset_shape("normalization/mean:0") == Shape{2});
  CHECK(g.dataset_shape("normalization/count:0") == Shape{});
  CHECK(f.root().group("model_weights/rescaling").read_string_list("weight_names").empty());
}

TEST_CASE("Keras configs of Rescaling and Normalization load", "[io]") {
  using detail::keras::model_from_config;
  SECTION("statistics in the config: per channel and as one number, no weights in the file") {
    auto config = model_from_config(
        keras_config("[null, 1, 2, 2]",
                     R"({"class_name": "Rescaling", "config": {"name": "rescaling", "trainable": true,
                         "dtype": "float32", "scale": 0.5, "offset": -1.0}},
                       {"class_name": "Normalization", "config": {"name": "normalization", "trainable": true,
                         "dtype": "float32", "axis": [-1], "invert": false, "mean": [1.0, 2.0],
                         "variance": [4.0, 0.25]}},
                       {"class_name": "Normalization", "config": {"name": "normalization_1",
                         "mean": 0.5, "variance": 1}})"),
        "test");
    auto& m = dynamic_cast<Sequential&>(built(config));
    REQUIRE(m.size() == 3);
    CHECK(m.input_shape() == Shape{2, 1, 2});
    // (H, W, C) = (1, 2, 2): maas' [N, C, H, W] holds channel 0 = {4, 6}, channel 1 = {6, 8}.
    // x * 0.5 - 1 = {1, 2}, {2, 3}; normalised {0, 0.5}, {0, 2}; then minus 0.5
    // (the second layer has no axis: Keras' default, -1).
    maas::test::require_close(eval(m, Tensor::from_vector({4, 6, 6, 8}, {1, 2, 1, 2})), {-0.5f, 0.f, -0.5f, 1.5f});
    const auto& n = dynamic_cast<const Normalization&>(m[1]);
    CHECK(n.stats_in_config());
    CHECK(detail::keras::layers_of(m, "test")[1].weights.empty());
  }
  SECTION("axis 3 of an image batch is the channel axis too; null statistics are weights") {
    auto config = model_from_config(keras_config("[null, 2, 2, 3]", R"({"class_name": "Normalization", "config":
        {"name": "n", "axis": [3], "mean": null, "variance": null, "invert": false}})"),
                                    "test");
    auto& m = dynamic_cast<Sequential&>(built(config));
    const auto& n = dynamic_cast<const Normalization&>(m[0]);
    CHECK_FALSE(n.stats_in_config());
    CHECK(n.mean().shape() == Shape{3});
    CHECK(detail::keras::layers_of(m, "test")[0].weights.size() == 3);
  }
  SECTION("what maas does not support is named") {
    auto error_of = [](const std::string& layer, const std::string& shape = "[null, 3]") {
      try {
        model_from_config(keras_config(shape, layer), "load_model: k.h5");
      } catch (const Error& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    CHECK_THAT(error_of(R"({"class_name": "Normalization", "config": {"name": "n", "axis": [-1], "invert": true}})"),
               Catch::Contains("load_model: k.h5: layer 'n' (Normalization): invert true (de-normalisation) is not supported"));
    CHECK_THAT(error_of(R"({"class_name": "Normalization", "config": {"name": "n", "axis": null}})"),
               Catch::Contains("axis null"));
    CHECK_THAT(error_of(R"({"class_name": "Normalization", "config": {"name": "n", "axis": [1]}})", "[null, 2, 2, 3]"),
               Catch::Contains("axis [1] is not supported"));
    CHECK_THAT(error_of(R"({"class_name": "Normalization", "config": {"name": "n", "axis": -1, "mean": [1, 2],
                            "variance": [1, 1]}})"),
               Catch::Contains("'mean' must be a number or a list of 3 (one per channel), got 2 values"));
    CHECK_THAT(error_of(R"({"class_name": "Normalization", "config": {"name": "n", "axis": -1, "mean": [1, 2, 3],
                            "variance": null}})"),
               Catch::Contains("mean and variance must be both given or both null"));
    CHECK_THAT(error_of(R"({"class_name": "Normalization", "config": {"name": "n", "axis": -1, "mean": 0,
                            "variance": -1}})"),
               Catch::Contains("variance -1"));
    CHECK_THAT(error_of(R"({"class_name": "Flatten", "config": {"name": "f"}},
                           {"class_name": "Normalization", "config": {"name": "n", "axis": -1, "mean": [0, 0, 0, 0],
                            "variance": [1, 1, 1, 1]}})",
                        "[null, 2, 2, 1]"),
               Catch::Contains("layer 'n' (Normalization): follows a Flatten of images"));
    CHECK_THAT(error_of(R"({"class_name": "Rescaling", "config": {"name": "r", "scale": "x"}})"),
               Catch::Contains("'scale' must be a number"));
  }
}

TEST_CASE("A Normalization with its statistics in model_config round-trips through a file", "[io]") {
  TempDir dir("preprocessing");
  Sequential m({3});
  auto n = std::make_shared<Normalization>(std::vector<float>{1.f, 2.f, 3.f}, std::vector<float>{0.1f, 4.f, 9.f});
  n->set_stats_in_config(true);
  m.add(n);
  m.add(Dense(2));
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  save_model(m, dir / "c.h5");
  auto loaded = load_model(dir / "c.h5");
  CHECK(dynamic_cast<const Normalization&>((*loaded)[0]).stats_in_config());
  CHECK(values(eval(*loaded, x)) == values(eval(m, x)));
}
