// Embedding and GlobalAveragePooling2D in Keras' layout: saved, loaded and
// saved again; files written as Keras 2 and Keras 3 write them, with known
// weights, predict values worked out by hand; options maas cannot honour
// are refused naming file and layer.
#include <catch2/catch.hpp>

#include <hdf5.h>

#include <string>
#include <vector>

#include "checkpoint/keras_file.hpp"
#include "data/temp_dir.hpp"
#include "gradcheck.hpp"
#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"

using namespace maas;
using namespace maas::nn;
using maas::test::error_of;
using maas::test::read_bytes;
using maas::test::require_close;
using maas::test::sequential_config;
using maas::test::TempDir;
using maas::test::write_model_file;

namespace {

Tensor eval(Module& m, const Tensor& x) {
  NoGradGuard ng;
  m.eval();
  return m(x);
}

// The values of float dataset `path` in `file`, and its shape.
std::vector<float> read_dataset(const std::string& file, const std::string& path, std::vector<hsize_t>& shape) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
  REQUIRE(d >= 0);
  const hid_t s = H5Dget_space(d);
  shape.assign(static_cast<size_t>(H5Sget_simple_extent_ndims(s)), 0);
  H5Sget_simple_extent_dims(s, shape.data(), nullptr);
  std::vector<float> v(static_cast<size_t>(H5Sget_simple_extent_npoints(s)));
  REQUIRE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return v;
}

// Fills dataset `path` of `file` (declared by write_model_file) with `values`.
void fill_dataset(const std::string& file, const std::string& path, const std::vector<float>& values) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
  REQUIRE(d >= 0);
  const hid_t s = H5Dget_space(d);
  REQUIRE(H5Sget_simple_extent_npoints(s) == static_cast<hssize_t>(values.size()));
  REQUIRE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
}

// Saves m, loads it, saves the loaded model: the files are byte-for-byte
// the same and the loaded model predicts exactly what m does for x.
std::unique_ptr<Sequential> round_trip(Sequential& m, const Tensor& x, const TempDir& dir) {
  save_model(m, dir / "a.h5");
  std::unique_ptr<nn::Network> net = load_model(dir / "a.h5");
  REQUIRE(dynamic_cast<Sequential*>(net.get()) != nullptr);
  std::unique_ptr<Sequential> loaded(static_cast<Sequential*>(net.release()));
  save_model(*loaded, dir / "b.h5");
  CHECK(read_bytes(dir / "a.h5") == read_bytes(dir / "b.h5"));
  REQUIRE(loaded->size() == m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    CHECK((*loaded)[i].name() == m[i].name());
    CHECK((*loaded)[i].type_name() == m[i].type_name());
    CHECK(loaded->output_shape(i) == m.output_shape(i));
  }
  const Tensor want = eval(m, x), got = eval(*loaded, x);
  REQUIRE(got.shape() == want.shape());
  CHECK(got.to_vector() == want.to_vector());
  return loaded;
}

std::string model_config_of(const std::string& file) {
  return maas::test::read_string_attr(file, "/", "model_config");
}

}  // namespace

TEST_CASE("Embedding saves as Keras' embeddings:0 and loads back", "[io]") {
  TempDir dir("keras_embedding");
  manual_seed(11);
  Sequential m({5});
  m.add(Embedding(10, 4)).add(Flatten()).add(Dense(2));
  const Tensor x = Tensor::from_vector({0, 9, 3, 3, 7, 1, 2, 8, 4, 6}, {2, 5});
  auto loaded = round_trip(m, x, dir);

  // The table as Keras holds it: (input_dim, output_dim), the same order.
  std::vector<hsize_t> shape;
  const std::vector<float> table = read_dataset(dir / "a.h5", "model_weights/embedding/embedding/embeddings:0", shape);
  CHECK(shape == std::vector<hsize_t>{10, 4});
  CHECK(table == dynamic_cast<Embedding&>(m[0]).embeddings().to_vector());
  CHECK(dynamic_cast<Embedding&>((*loaded)[0]).input_dim() == 10);
  CHECK(dynamic_cast<Embedding&>((*loaded)[0]).output_dim() == 4);
  // Keras 2's fields, in its order.
  const std::string config = model_config_of(dir / "a.h5");
  CHECK_THAT(config, Catch::Contains(
                         R"({"class_name":"Embedding","config":{"name":"embedding","trainable":true,"dtype":"float32",)"
                         R"("input_dim":10,"output_dim":4,"embeddings_initializer":{"class_name":"RandomUniform",)"
                         R"("config":{"minval":-0.05,"maxval":0.05,"seed":null}},"embeddings_regularizer":null,)"
                         R"("activity_regularizer":null,"embeddings_constraint":null,"mask_zero":false,)"
                         R"("input_length":null}})"));
  CHECK_THAT(config, Catch::Contains(R"("batch_input_shape":[null,5])"));

  // One index per sample: (None,) -> (None, output_dim).
  manual_seed(12);
  Sequential one(Shape{});
  one.add(Embedding(6, 3)).add(Dense(1));
  round_trip(one, Tensor::from_vector({5, 0, 2}, {3}), dir);
  CHECK_THAT(model_config_of(dir / "a.h5"), Catch::Contains(R"("batch_input_shape":[null])"));
}

TEST_CASE("GlobalAveragePooling2D saves with Keras' config and loads back", "[io]") {
  TempDir dir("keras_gap");
  manual_seed(13);
  Sequential m({3, 6, 5});
  m.add(Conv2D(4, 3)).add(GlobalAveragePooling2D()).add(Dense(2));
  Generator g(1);
  round_trip(m, Tensor::randn({3, 3, 6, 5}, g), dir);
  CHECK_THAT(model_config_of(dir / "a.h5"),
             Catch::Contains(R"({"class_name":"GlobalAveragePooling2D","config":{"name":"global_average_pooling2d",)"
                             R"("trainable":true,"dtype":"float32","data_format":"channels_last","keepdims":false}})"));
}

TEST_CASE("Keras files with an Embedding or a GlobalAveragePooling2D predict values worked out by hand", "[io]") {
  TempDir dir("keras_embedding_file");
  const std::string path = dir / "k.h5";
  SECTION("Embedding -> Flatten -> Dense, as Keras 2 and Keras 3 write it") {
    // embeddings row r = (r, -r) for r < 4; indices (1, 3) -> features (1, -1, 3, -3);
    // kernel (1, 2, 3, 4), bias 0.5: 1 - 2 + 9 - 12 + 0.5 = -3.5.
    // indices (0, 2) -> (0, 0, 2, -2): 6 - 8 + 0.5 = -1.5.
    for (const char* dtype : {R"("float32")", R"({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null})"}) {
      INFO(dtype);
      const std::string emb = std::string(R"({"class_name": "Embedding", "config": {"name": "emb", "trainable": true, "dtype": )") + dtype +
                              R"(, "input_dim": 4, "output_dim": 2, "embeddings_initializer": {"class_name": "RandomUniform", "config": )"
                              R"({"minval": -0.05, "maxval": 0.05, "seed": null}}, "embeddings_regularizer": null, "activity_regularizer": null, )"
                              R"("embeddings_constraint": null, "mask_zero": false, "input_length": 2}})";
      const std::string layers = emb + R"(, {"class_name": "Flatten", "config": {"name": "flatten", "data_format": "channels_last"}}, )"
                                       R"({"class_name": "Dense", "config": {"name": "dense", "units": 1, "activation": "linear", "use_bias": true}})";
      write_model_file(path, sequential_config("[null, 2]", layers),
                       {{"emb", {{"embeddings", {4, 2}}}}, {"flatten", {}}, {"dense", {{"kernel", {4, 1}}, {"bias", {1}}}}});
      fill_dataset(path, "model_weights/emb/emb/embeddings:0", {0, 0, 1, -1, 2, -2, 3, -3});
      fill_dataset(path, "model_weights/dense/dense/kernel:0", {1, 2, 3, 4});
      fill_dataset(path, "model_weights/dense/dense/bias:0", {0.5f});
      auto m = load_model(path);
      CHECK(m->input_shapes() == std::vector<Shape>{Shape{2}});
      require_close(eval(*m, Tensor::from_vector({1, 3, 0, 2}, {2, 2})), {-3.5f, -1.5f});
      // An index past input_dim is named with the layer.
      CHECK_THAT(error_of([&] { eval(*m, Tensor::from_vector({1, 4}, {1, 2})); }),
                 Catch::Contains("Embedding 'emb': index 4 (element 1 of indices [1,2]) is out of range for input_dim 4"));
    }
  }
  SECTION("GlobalAveragePooling2D over channels_last images") {
    // Keras input (2, 2, 3): H=2, W=2, C=3. maas feeds NCHW [1, 3, 2, 2]:
    // channel c holds 4 pixels with mean c + 1. Kernel (3, 1) = (1, 10, 100):
    // 1 + 20 + 300 = 321.
    const std::string layers = R"({"class_name": "GlobalAveragePooling2D", "config": {"name": "gap", "data_format": "channels_last", "keepdims": false}}, )"
                               R"({"class_name": "Dense", "config": {"name": "dense", "units": 1, "use_bias": false}})";
    write_model_file(path, sequential_config("[null, 2, 2, 3]", layers), {{"gap", {}}, {"dense", {{"kernel", {3, 1}}}}});
    fill_dataset(path, "model_weights/dense/dense/kernel:0", {1, 10, 100});
    auto m = load_model(path);
    CHECK(m->input_shapes() == std::vector<Shape>{Shape{3, 2, 2}});
    require_close(eval(*m, Tensor::from_vector({0, 1, 1, 2, 1, 3, 2, 2, 3, 3, 3, 3}, {1, 3, 2, 2})), {321.f});
  }
}

TEST_CASE("Embedding and GlobalAveragePooling2D options maas cannot honour are named with file and layer", "[io]") {
  TempDir dir("keras_embedding_bad");
  const std::string path = dir / "m.h5";
  struct Case {
    std::string input, layer, expected;
  };
  const std::string emb = R"({"class_name": "Embedding", "config": {"name": "emb", )";
  const Case cases[] = {
      {"[null, 3]", emb + R"("input_dim": 4, "output_dim": 2, "mask_zero": true}})",
       "layer 'emb' (Embedding): mask_zero true is not supported (maas has no masking)"},
      {"[null, 3]", emb + R"("input_dim": 0, "output_dim": 2}})", "layer 'emb' (Embedding): input_dim must be positive"},
      {"[null, 3]", emb + R"("input_dim": 4}})", "layer 'emb' (Embedding): output_dim must be positive"},
      {"[null, 3]", emb + R"("input_dim": 16777217, "output_dim": 2}})",
       "layer 'emb' (Embedding): input_dim 16777217 is above 2^24"},
      {"[null, 3]", emb + R"("input_dim": 4, "output_dim": 4611686018427387904}})", "64-bit"},
      {"[null, 3, 2]", emb + R"("input_dim": 4, "output_dim": 2}})",
       "layer 'emb' (Embedding): takes input (None, 3, 2); maas reads an Embedding of (None,) or (None, T) indices"},
      {"[null, 4, 4, 2]", R"({"class_name": "GlobalAveragePooling2D", "config": {"name": "gap", "keepdims": true}})",
       "layer 'gap' (GlobalAveragePooling2D): keepdims true is not supported"},
      {"[null, 4, 4, 2]", R"({"class_name": "GlobalAveragePooling2D", "config": {"name": "gap", "data_format": "channels_first"}})",
       "layer 'gap' (GlobalAveragePooling2D): data_format 'channels_first' is not supported"},
      {"[null, 4]", R"({"class_name": "GlobalAveragePooling2D", "config": {"name": "gap"}})",
       "layer 'gap' (GlobalAveragePooling2D): input (None, 4) must be images"},
      // Only an Embedding takes one number per sample.
      {"[null]", R"({"class_name": "Dense", "config": {"name": "dense", "units": 2}})", "has no per-sample dimensions"},
  };
  for (const Case& c : cases) {
    write_model_file(path, sequential_config(c.input, c.layer), {});
    INFO(c.layer);
    CHECK_THAT(error_of([&] { load_model(path); }), Catch::StartsWith("load_model: " + path + ": ") &&
                                                          Catch::Contains(c.expected));
  }
  // Writing: maas' 3-D per-sample shapes are images, which Keras' Embedding does not take.
  Sequential m({2, 3});
  m.add(Embedding(4, 2));
  CHECK_THAT(error_of([&] { save_model(m, dir / "e.h5"); }),
             Catch::Contains("layer 'embedding' (Embedding) takes indices (None, 2, 3); Keras files hold an Embedding "
                             "of (None,) or (None, T) indices only"));
}
