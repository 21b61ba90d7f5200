// Checkpoints: Keras-layout HDF5 files written, read and written again; files
// written as Keras writes them (with the HDF5 C API here); damaged files; a
// crash mid-write; resumed training equal bit for bit to an uninterrupted one.
#include <catch2/catch.hpp>

#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "checkpoint/keras_file.hpp"
#include "data/temp_dir.hpp"
#include "maas/callbacks.hpp"
#include "maas/checkpoint.hpp"
#include "maas/loss.hpp"
#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"
#include "maas/optim/scheduler.hpp"
#include "maas/optim/sgd.hpp"
#include "maas/trainer.hpp"

using namespace maas;
using namespace maas::nn;
using maas::test::FileLayer;
using maas::test::FileWeight;
using maas::test::h5_attr_string;
using maas::test::h5_layers;
using maas::test::read_bytes;
using maas::test::StringForms;
using maas::test::TempDir;
using maas::test::write_bytes;
namespace fs = std::filesystem;

namespace {

// Runs f with stderr redirected; returns what was written to it.
std::string stderr_of(const std::function<void()>& f) {
  std::fflush(stderr);
  char tmpl[] = "/tmp/maas_stderr_XXXXXX";
  const int fd = ::mkstemp(tmpl);
  REQUIRE(fd >= 0);
  const int saved = ::dup(2);
  ::dup2(fd, 2);
  try {
    f();
  } catch (...) {
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    ::close(fd);
    std::remove(tmpl);
    throw;
  }
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  std::ifstream in(tmpl);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(tmpl);
  return ss.str();
}

// The message of the maas::Error f throws, checking that stderr stays silent.
std::string error_of(const std::function<void()>& f) {
  std::string msg = "(no error)";
  const std::string err = stderr_of([&] {
    try {
      f();
    } catch (const Error& e) {
      msg = e.what();
    }
  });
  CHECK(err.empty());
  return msg;
}


// Every layer kind maas can save, with explicit padding and a Flatten
// before a Dropout, a BatchNorm and a Dense (the NCHW -> HWC permutation).
std::shared_ptr<Sequential> zoo(uint64_t seed) {
  manual_seed(seed);
  auto m = std::make_shared<Sequential>(Shape{2, 7, 6});
  Conv2DOptions same;
  same.padding = Padding::Same;
  same.activation = Activation::ReLU;
  same.kernel_initializer = Init::HeNormal;
  m->add(Conv2D(3, 3, same));
  m->add(BatchNorm());
  Conv2DOptions expl;
  expl.padding = Padding::Explicit;
  expl.explicit_padding = {1, 2};
  expl.strides = {1, 2};
  expl.use_bias = false;
  m->add(Conv2D(4, Pair{3, 2}, expl)).add(LeakyReLU(0.2f));
  Pool2DOptions ap;
  ap.padding = Padding::Explicit;
  ap.explicit_padding = {1, 0};
  m->add(AvgPool2D(2, ap)).add(Tanh());
  Pool2DOptions mp;
  mp.padding = Padding::Same;
  m->add(MaxPool2D(2, mp));
  m->add(Flatten()).add(Dropout(0.25f)).add(BatchNorm(BatchNormOptions{0.2f, 1e-3f, true}));
  DenseOptions tanh;
  tanh.activation = Activation::Tanh;
  m->add(Dense(5)).add(Sigmoid()).add(Dense(4, tanh)).add(ReLU());
  m->add(Dense(3)).add(Softmax());
  // Non-trivial running statistics.
  Generator g(seed + 1);
  for (auto& [name, t] : m->named_buffers()) {
    Tensor b = t;
    for (int64_t i = 0; i < b.numel(); ++i) b.data()[i] = 0.5f + g.uniform();
  }
  return m;
}

// The reference network's convolution: 2 filters of 2x2, valid, relu.
Conv2D reference_conv() {
  Conv2DOptions o;
  o.activation = Activation::ReLU;
  return Conv2D(2, 2, o);
}

Tensor predict(nn::Module& m, const Tensor& x) {
  NoGradGuard g;
  m.eval();
  return m(x);
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.numel())) == 0;
}

// ---- A canonical listing of an HDF5 file: every object, attribute and dataset.

std::string attribute_text(hid_t attr) {
  const hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  std::ostringstream os;
  os << "n=" << n << " ";
  if (H5Tget_class(type) == H5T_STRING) {
    if (H5Tis_variable_str(type) > 0) {
      const hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, H5T_VARIABLE);
      H5Tset_cset(mt, H5Tget_cset(type));
      std::vector<char*> p(static_cast<size_t>(n));
      H5Aread(attr, mt, p.data());
      os << "vlen[";
      for (char* s : p) {
        os << (s ? s : "") << "|";
        H5free_memory(s);
      }
      os << "]";
      H5Tclose(mt);
    } else {
      const size_t w = H5Tget_size(type);
      std::string buf(w * static_cast<size_t>(n), '\0');
      H5Aread(attr, type, buf.data());
      os << "fixed" << w << "[" << buf << "]";
    }
  } else {
    std::vector<double> v(static_cast<size_t>(n));
    if (n > 0) H5Aread(attr, H5T_NATIVE_DOUBLE, v.data());
    os << "class" << H5Tget_class(type) << "size" << H5Tget_size(type) << "[";
    for (double d : v) os << d << ",";
    os << "]";
  }
  H5Tclose(type);
  H5Sclose(space);
  return os.str();
}

herr_t list_attribute(hid_t loc, const char* name, const H5A_info_t*, void* out) {
  const hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  (*static_cast<std::string*>(out)) += std::string(" @") + name + "=" + attribute_text(a) + "\n";
  H5Aclose(a);
  return 0;
}

std::string object_text(hid_t obj) {
  std::string s;
  H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, list_attribute, &s);
  if (H5Iget_type(obj) == H5I_DATASET) {
    const hid_t space = H5Dget_space(obj);
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    std::vector<float> v(static_cast<size_t>(n));
    H5Dread(obj, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    std::ostringstream os;
    os << " shape=";
    for (hsize_t d : dims) os << d << ",";
    os << " data=";
    for (float f : v) os << std::hexfloat << f << ",";
    s += os.str() + "\n";
    H5Sclose(space);
  }
  return s;
}

herr_t list_link(hid_t group, const char* name, const H5L_info_t*, void* out) {
  const hid_t o = H5Oopen(group, name, H5P_DEFAULT);
  (*static_cast<std::map<std::string, std::string>*>(out))[name] = object_text(o);
  H5Oclose(o);
  return 0;
}

std::map<std::string, std::string> listing(const std::string& path) {
  std::map<std::string, std::string> out;
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
  out["/"] = object_text(root);
  H5Lvisit(root, H5_INDEX_NAME, H5_ITER_INC, list_link, &out);
  H5Gclose(root);
  H5Fclose(f);
  return out;
}

// ---- A file as Keras 2 / h5py write it, built with the HDF5 C API ----------

// The network of the reference below, with Keras' config and weights.
// Conv2D(2, 2x2, relu) -> Flatten -> Dropout(0.5) -> Dense(3) on (3, 3, 2).
const char* kKerasConfig = R"({"class_name": "Sequential", "config": {"name": "sequential", "layers": [
 {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 3, 3, 2], "dtype": "float32", "sparse": false, "ragged": false, "name": "conv2d_input"}},
 {"class_name": "Conv2D", "config": {"name": "conv2d", "trainable": true, "dtype": "float32", "filters": 2, "kernel_size": [2, 2], "strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}}, "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null}},
 {"class_name": "Flatten", "config": {"name": "flatten", "trainable": true, "dtype": "float32", "data_format": "channels_last"}},
 {"class_name": "Dropout", "config": {"name": "dropout", "trainable": true, "dtype": "float32", "rate": 0.5, "noise_shape": null, "seed": null}},
 {"class_name": "Dense", "config": {"name": "dense", "trainable": true, "dtype": "float32", "units": 3, "activation": "linear", "use_bias": true, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}}, "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null}}]}})";

std::vector<FileLayer> keras_reference_layers() {
  FileWeight k{"kernel", {2, 2, 2, 2}, std::vector<float>(16)};  // (kh, kw, in, out)
  for (int i = 0; i < 16; ++i) k.values[static_cast<size_t>(i)] = 0.1f * static_cast<float>(i + 1) * (i % 3 ? 1.f : -1.f);
  FileWeight cb{"bias", {2}, {0.05f, -0.3f}};
  FileWeight d{"kernel", {8, 3}, std::vector<float>(24)};  // rows in H, W, C order
  for (int i = 0; i < 8; ++i)
    for (int u = 0; u < 3; ++u)
      d.values[static_cast<size_t>(i * 3 + u)] =
          0.01f * static_cast<float>(i * 3 + u) * ((i + u) % 2 == 0 ? 1.f : -1.f) + 0.02f;
  FileWeight db{"bias", {3}, {0.1f, 0.2f, -0.1f}};
  return {{"conv2d", {k, cb}}, {"flatten", {}}, {"dropout", {}}, {"dense", {d, db}}};
}

// The input of the reference, NHWC as Keras takes it, returned NCHW for maas.
Tensor keras_reference_input() {
  Tensor x = Tensor::empty({2, 2, 3, 3});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t w = 0; w < 3; ++w)
        for (int64_t c = 0; c < 2; ++c) {
          const double hw = static_cast<double>(h * 3 + w), cc = static_cast<double>(c);
          x.at({n, c, h, w}) = static_cast<float>(n == 0 ? hw * 0.1 - cc * 0.25 + 0.05 : (8 - hw) * 0.1 + cc * 0.2 - 0.3);
        }
  return x;
}

// Keras' outputs for that input, computed once with numpy in channels_last:
//   conv = relu(sum over 2x2x2 windows of x[n, i:i+2, j:j+2, :] * k + cb)
//   y = conv.reshape(2, -1) @ d + db          (flattened in H, W, C order)
const float kKerasExpected[2][3] = {{0.405199975f, 0.00999999f, 0.25000003f},
                                    {0.217200011f, 0.153599992f, 0.051600017f}};

// The reference as a Keras file. `swap` stores each kind of string in the
// form h5py does not use (a fixed-length model_config, variable-length lists).
void write_keras_file(const std::string& path, bool swap, const std::string& config = kKerasConfig,
                      bool weights_only = false) {
  const StringForms forms{swap, !swap};
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(f >= 0);
  if (weights_only) {
    h5_layers(f, keras_reference_layers(), forms);
  } else {
    h5_attr_string(f, "keras_version", "2.13.1", forms.fixed_scalar);
    h5_attr_string(f, "backend", "tensorflow", forms.fixed_scalar);
    h5_attr_string(f, "model_config", config, forms.fixed_scalar);
    const hid_t g = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    h5_layers(g, keras_reference_layers(), forms);
    H5Gclose(g);
  }
  H5Fclose(f);
}

std::shared_ptr<Sequential> small_cnn(uint64_t seed) {
  manual_seed(seed);
  auto m = std::make_shared<Sequential>(Shape{1, 6, 6});
  m->add(Conv2D(4, 3)).add(BatchNorm()).add(ReLU()).add(MaxPool2D(2));
  m->add(Flatten()).add(Dropout(0.3f)).add(Dense(3));
  return m;
}

data::TensorDataset small_data(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor x = Tensor::randn({n, 1, 6, 6}, g);
  Tensor y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) y.at({i}) = static_cast<float>(i % 3);
  return data::TensorDataset(x, y);
}

}  // namespace

TEST_CASE("save_model, load_model and save_model again give the same file", "[io]") {
  TempDir dir("ckpt");
  auto m = zoo(3);
  save_model(*m, dir / "a.h5");
  auto loaded = load_model(dir / "a.h5");
  save_model(*loaded, dir / "b.h5");

  const auto a = listing(dir / "a.h5"), b = listing(dir / "b.h5");
  REQUIRE(a.size() == b.size());
  for (const auto& [name, text] : a) {
    INFO("object " << name);
    REQUIRE(b.count(name) == 1);
    CHECK(text == b.at(name));
  }
  // No timestamps: the bytes are the same too.
  CHECK(read_bytes(dir / "a.h5") == read_bytes(dir / "b.h5"));

  // The architecture came back: names, classes, options.
  REQUIRE(loaded->size() == m->size());
  for (size_t i = 0; i < m->size(); ++i) {
    CHECK((*loaded)[i].name() == (*m)[i].name());
    CHECK(dynamic_cast<Sequential&>(*loaded).output_shape(i) == m->output_shape(i));
  }
  auto* conv = dynamic_cast<Conv2D*>(&(*loaded)[2]);
  REQUIRE(conv != nullptr);
  CHECK(conv->options().padding == Padding::Explicit);
  CHECK(conv->options().explicit_padding == Pair{1, 2});
  CHECK(conv->options().strides == Pair{1, 2});
  CHECK_FALSE(conv->options().use_bias);
  auto* bn = dynamic_cast<BatchNorm*>(&(*loaded)[9]);
  REQUIRE(bn != nullptr);
  CHECK(bn->options().momentum == 0.2f);
  CHECK(bn->options().eps == 1e-3f);
  CHECK(dynamic_cast<LeakyReLU&>((*loaded)[3]).negative_slope() == 0.2f);
  CHECK(dynamic_cast<Dropout&>((*loaded)[8]).rate() == 0.25f);
}

TEST_CASE("load_model predicts what the saved model predicts", "[io]") {
  TempDir dir("ckpt");
  auto m = zoo(5);
  Generator g(9);
  const Tensor x = Tensor::randn({4, 2, 7, 6}, g);
  save_model(*m, dir / "m.h5");
  auto loaded = load_model(dir / "m.h5");
  CHECK(same_values(predict(*m, x), predict(*loaded, x)));
}

TEST_CASE("Files follow Keras' layout: channels_last config, (kh, kw, in, out) kernels, HWC rows", "[io]") {
  TempDir dir("ckpt");
  manual_seed(1);
  Sequential m({2, 3, 3});
  m.add(reference_conv());
  m.add(Flatten()).add(Dropout(0.5f)).add(Dense(3));
  // The reference weights, put into maas' layout by hand.
  const auto ref = keras_reference_layers();
  Conv2D& conv = dynamic_cast<Conv2D&>(m[0]);
  Dense& dense = dynamic_cast<Dense&>(m[3]);
  Tensor k = conv.kernel(), cb = conv.bias(), d = dense.kernel(), db = dense.bias();
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t y = 0; y < 2; ++y)
        for (int64_t x = 0; x < 2; ++x) k.at({o, c, y, x}) = ref[0].weights[0].values[static_cast<size_t>(((y * 2 + x) * 2 + c) * 2 + o)];
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t w = 0; w < 2; ++w)
        for (int64_t u = 0; u < 3; ++u)
          d.at({(c * 2 + h) * 2 + w, u}) = ref[3].weights[0].values[static_cast<size_t>(((h * 2 + w) * 2 + c) * 3 + u)];
  for (int64_t i = 0; i < 2; ++i) cb.data()[i] = ref[0].weights[1].values[static_cast<size_t>(i)];
  for (int64_t i = 0; i < 3; ++i) db.data()[i] = ref[3].weights[1].values[static_cast<size_t>(i)];
  const Tensor y = predict(m, keras_reference_input());
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t u = 0; u < 3; ++u) CHECK(y.at({n, u}) == Approx(kKerasExpected[n][u]).margin(1e-6));

  save_model(m, dir / "m.h5");
  const auto mine = listing(dir / "m.h5");
  // Keras' file of the same network holds the same datasets, value for value.
  write_keras_file(dir / "keras.h5", false);
  const auto keras = listing(dir / "keras.h5");
  for (const char* ds : {"model_weights/conv2d/conv2d/kernel:0", "model_weights/conv2d/conv2d/bias:0",
                         "model_weights/dense/dense/kernel:0", "model_weights/dense/dense/bias:0"}) {
    INFO(ds);
    REQUIRE(mine.count(ds) == 1);
    CHECK(mine.at(ds) == keras.at(ds));
  }
  for (const char* group : {"model_weights/conv2d", "model_weights/flatten", "model_weights/dense"}) {
    INFO(group);
    CHECK(mine.at(group) == keras.at(group));  // weight_names, fixed-length; [] as float64 (0,)
  }
  CHECK(mine.at("/").find("@model_config=n=1 vlen[{\"class_name\":\"Sequential\"") != std::string::npos);
  CHECK(mine.at("/").find("\"batch_input_shape\":[null,3,3,2]") != std::string::npos);
  CHECK(mine.at("/").find("\"data_format\":\"channels_last\"") != std::string::npos);
  CHECK(mine.at("/").find("@keras_version=n=1 vlen[2.13.1|]") != std::string::npos);
  CHECK(mine.at("model_weights") == keras.at("model_weights"));
}

TEST_CASE("A file written as Keras writes it loads and predicts Keras' values", "[io]") {
  TempDir dir("ckpt");
  for (bool swap : {false, true}) {
    INFO((swap ? "fixed-length model_config, variable-length lists" : "as h5py writes"));
    write_keras_file(dir / "k.h5", swap);
    auto m = load_model(dir / "k.h5");
    REQUIRE(m->size() == 4);
    CHECK(m->input_shapes() == std::vector<Shape>{{2, 3, 3}});
    CHECK(m->name() == "sequential");
    CHECK((*m)[0].name() == "conv2d");
    CHECK((*m)[3].type_name() == "Dense");
    const Tensor y = predict(*m, keras_reference_input());
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t u = 0; u < 3; ++u) CHECK(y.at({n, u}) == Approx(kKerasExpected[n][u]).margin(1e-6));
  }
  SECTION("Keras 3's config: batch_shape, dtype policies, module keys") {
    std::string config = kKerasConfig;
    auto replace_all = [&config](const std::string& from, const std::string& to) {
      for (size_t at = config.find(from); at != std::string::npos; at = config.find(from, at + to.size()))
        config.replace(at, from.size(), to);
    };
    replace_all("\"batch_input_shape\"", "\"batch_shape\"");
    replace_all("\"dtype\": \"float32\"",
                "\"dtype\": {\"module\": \"keras\", \"class_name\": \"DTypePolicy\", \"config\": {\"name\": "
                "\"float32\"}, \"registered_name\": null}");
    replace_all("{\"class_name\": \"GlorotUniform\"", "{\"module\": \"keras.initializers\", \"class_name\": \"GlorotUniform\"");
    write_keras_file(dir / "k3.h5", false, config);
    auto m = load_model(dir / "k3.h5");
    const Tensor y = predict(*m, keras_reference_input());
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t u = 0; u < 3; ++u) CHECK(y.at({n, u}) == Approx(kKerasExpected[n][u]).margin(1e-6));
  }
  SECTION("weights only (Keras' model.save_weights), into a model built in maas") {
    write_keras_file(dir / "w.h5", false, "", true);
    Sequential m({2, 3, 3});
    m.add(reference_conv());
    m.add(Flatten()).add(Dense(3));
    load_weights(m, dir / "w.h5");
    const Tensor y = predict(m, keras_reference_input());
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t u = 0; u < 3; ++u) CHECK(y.at({n, u}) == Approx(kKerasExpected[n][u]).margin(1e-6));
    CHECK_THAT(error_of([&] { load_model(dir / "w.h5"); }), Catch::Contains("has no model_config"));
  }
}

TEST_CASE("load_model names the layers maas does not support", "[io]") {
  TempDir dir("ckpt");
  std::string config = kKerasConfig;
  const std::string dropout = R"({"class_name": "Dropout", "config": {"name": "dropout")";
  config.replace(config.find(dropout), dropout.size(), R"({"class_name": "LSTM", "config": {"name": "lstm")");
  write_keras_file(dir / "lstm.h5", false, config);
  const std::string msg = error_of([&] { load_model(dir / "lstm.h5"); });
  CHECK_THAT(msg, Catch::StartsWith("load_model: " + (dir / "lstm.h5") + ": layer 'lstm' of class LSTM is not supported (maas has Conv2D, Dense"));

  std::string subclassed = kKerasConfig;
  subclassed.replace(subclassed.find("Sequential"), 10, "MyModel");
  write_keras_file(dir / "f.h5", false, subclassed);
  CHECK_THAT(error_of([&] { load_model(dir / "f.h5"); }), Catch::Contains("the model is a Keras MyModel model"));
  // A functional config whose layers have no inbound_nodes describes no graph.
  std::string functional = kKerasConfig;
  functional.replace(functional.find("Sequential"), 10, "Functional");
  write_keras_file(dir / "f.h5", false, functional);
  CHECK_THAT(error_of([&] { load_model(dir / "f.h5"); }), Catch::Contains("inbound_nodes is empty"));

  std::string elu = kKerasConfig;
  elu.replace(elu.find("\"relu\""), 6, "\"elu\"");
  write_keras_file(dir / "elu.h5", false, elu);
  CHECK_THAT(error_of([&] { load_model(dir / "elu.h5"); }),
             Catch::Contains("layer 'conv2d' (Conv2D): activation 'elu' is not supported"));
}

TEST_CASE("save_weights and load_weights, by order and by name, list what does not fit", "[io]") {
  TempDir dir("ckpt");
  auto a = zoo(11);
  auto b = zoo(12);
  save_weights(*a, dir / "w.h5");
  Generator g(2);
  const Tensor x = Tensor::randn({2, 2, 7, 6}, g);
  CHECK_FALSE(same_values(predict(*a, x), predict(*b, x)));
  load_weights(*b, dir / "w.h5");
  CHECK(same_values(predict(*a, x), predict(*b, x)));

  SECTION("by name: layers of other names keep their weights") {
    manual_seed(4);
    Sequential c({1, 6, 6});
    c.add(Conv2D(4, 3)).add(Flatten()).add(Dense(2));
    save_weights(c, dir / "c.h5");
    manual_seed(5);
    Sequential d({1, 6, 6});
    Conv2D conv(4, 3);
    conv.set_name("conv2d");
    Dense head_layer(7);
    head_layer.set_name("head");
    d.add(std::move(conv)).add(Flatten()).add(std::move(head_layer));
    const Tensor head = dynamic_cast<Dense&>(d[2]).kernel().clone();
    load_weights(d, dir / "c.h5", {true});
    CHECK(same_values(dynamic_cast<Conv2D&>(d[0]).kernel(), dynamic_cast<Conv2D&>(c[0]).kernel()));
    CHECK(same_values(dynamic_cast<Dense&>(d[2]).kernel(), head));
    // By order, the head does not fit: the message names layer and shapes.
    const std::string msg = error_of([&] { load_weights(d, dir / "c.h5"); });
    CHECK_THAT(msg, Catch::Contains("the weights do not fit the model"));
    CHECK_THAT(msg, Catch::Contains("layer 'head' (Dense): kernel expected (64, 7), found (64, 2) in 'dense/kernel:0' (the file's 'dense')"));
    CHECK_THAT(msg, Catch::Contains("bias expected (7,), found (2,)"));
    CHECK(same_values(dynamic_cast<Dense&>(d[2]).kernel(), head));  // unchanged
  }
  SECTION("another architecture") {
    manual_seed(4);
    Sequential c({1, 6, 6});
    c.add(Conv2D(4, 3)).add(Flatten()).add(Dense(2));
    const std::string msg = error_of([&] { load_weights(c, dir / "w.h5"); });
    CHECK_THAT(msg, Catch::Contains("load_weights: " + (dir / "w.h5") + ": the file has 7 layers with weights"));
    CHECK_THAT(msg, Catch::Contains("but the model has 2 (conv2d (Conv2D), dense (Dense))"));
  }
}

TEST_CASE("Damaged, foreign and missing files throw maas::Error naming file and problem, silently", "[io]") {
  TempDir dir("ckpt");
  auto m = small_cnn(1);
  const std::string good = (dir / "good.h5");
  save_model(*m, good);
  const std::string bytes = read_bytes(good);

  SECTION("missing") {
    CHECK(error_of([&] { load_model(dir / "nope.h5"); }) == "load_model: " + (dir / "nope.h5") + ": no such file");
  }
  SECTION("a text file") {
    write_bytes(dir / "t.h5", "this is not HDF5\n");
    CHECK_THAT(error_of([&] { load_model(dir / "t.h5"); }),
               Catch::StartsWith("load_model: " + (dir / "t.h5") + ": not an HDF5 file"));
  }
  SECTION("truncated") {
    for (size_t keep : {bytes.size() / 2, bytes.size() - 100, size_t{600}}) {
      write_bytes(dir / "cut.h5", bytes.substr(0, keep));
      const std::string msg = error_of([&] { load_model(dir / "cut.h5"); });
      INFO(msg);
      CHECK_THAT(msg, Catch::StartsWith("load_model: " + (dir / "cut.h5") + ": "));
      CHECK_THAT(msg, Catch::Contains("truncated"));
    }
  }
  SECTION("corrupted weights: maas' checksum catches it, and HDF5's Fletcher32 in files of other programs") {
    // Flip bytes in the middle of the dense kernel's stored data.
    const hid_t f = H5Fopen(good.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t d = H5Dopen2(f, "model_weights/dense/dense/kernel:0", H5P_DEFAULT);
    haddr_t addr = 0;
    hsize_t size = 0;
    const hsize_t origin[2] = {0, 0};
    REQUIRE(H5Dget_chunk_info_by_coord(d, origin, nullptr, &addr, &size) >= 0);
    const hid_t fcpl = H5Fget_create_plist(f);
    hsize_t userblock = 0;
    H5Pget_userblock(fcpl, &userblock);
    H5Pclose(fcpl);
    addr += userblock;  // HDF5's addresses start after the user block
    H5Dclose(d);
    H5Fclose(f);
    std::string bad = bytes;
    for (size_t i = 0; i < 8; ++i) bad[static_cast<size_t>(addr + size / 2) + i] ^= 0x5a;
    write_bytes(dir / "bad.h5", bad);
    CHECK_THAT(error_of([&] { load_model(dir / "bad.h5"); }),
               Catch::StartsWith("load_model: " + (dir / "bad.h5") + ": the file is corrupted: checksum mismatch"));
    // Without maas' header (its signature zeroed), as a file of Keras.
    for (size_t i = 0; i < 8; ++i) bad[i] = 0;
    write_bytes(dir / "bad.h5", bad);
    const std::string msg = error_of([&] { load_model(dir / "bad.h5"); });
    CHECK_THAT(msg, Catch::StartsWith("load_model: " + (dir / "bad.h5") + ": cannot read dataset /model_weights/dense/dense/kernel:0"));
    CHECK_THAT(msg, Catch::Contains("the file is corrupted"));
  }
  SECTION("corrupted metadata: the superblock checksum catches it") {
    std::string bad = bytes;
    for (size_t i = 20; i < 28; ++i) bad[i] ^= 0x33;
    write_bytes(dir / "bad.h5", bad);
    const std::string msg = error_of([&] { load_model(dir / "bad.h5"); });
    CHECK_THAT(msg, Catch::StartsWith("load_model: " + (dir / "bad.h5") + ": "));
    CHECK_THAT(msg, Catch::Contains("corrupted"));
  }
  SECTION("another architecture") {
    manual_seed(2);
    Sequential other({1, 6, 6});
    other.add(Conv2D(8, 3)).add(BatchNorm()).add(ReLU()).add(MaxPool2D(2));
    other.add(Flatten()).add(Dropout(0.3f)).add(Dense(3));
    const std::string msg = error_of([&] { load_weights(other, good); });
    CHECK_THAT(msg, Catch::Contains("layer 'conv2d' (Conv2D): kernel expected (3, 3, 1, 8), found (3, 3, 1, 4)"));
    CHECK_THAT(msg, Catch::Contains("layer 'batch_normalization' (BatchNormalization): gamma expected (8,), found (4,)"));
    CHECK_THAT(msg, Catch::Contains("layer 'dense' (Dense): kernel expected (32, 3), found (16, 3)"));
    optim::SGD sgd(other.parameters());
    CHECK_THAT(error_of([&] { load_checkpoint(good, other, sgd); }), Catch::Contains("not a training checkpoint"));
  }
}

TEST_CASE("A crash while writing leaves the previous file and no temporary file", "[io]") {
  TempDir dir("ckpt");
  const std::string path = (dir / "m.h5");
  auto a = small_cnn(1);
  save_model(*a, path);
  const std::string before = read_bytes(path);
  auto b = small_cnn(2);
  for (const char* stage : {"created", "written"}) {
    INFO(stage);
    detail::set_checkpoint_write_hook([stage](const std::string& s) {
      if (s == stage) throw std::runtime_error("simulated crash");
    });
    CHECK_THROWS_WITH(save_model(*b, path), "simulated crash");
    detail::set_checkpoint_write_hook({});
    CHECK(read_bytes(path) == before);
    CHECK(dir.entries() == std::vector<std::string>{"m.h5"});
    load_model(path);  // still readable
  }
  // A folder that does not exist: a clear error, nothing left behind.
  CHECK_THAT(error_of([&] { save_model(*b, dir / "no/such/m.h5"); }),
             Catch::StartsWith("save_model: " + (dir / "no/such/m.h5") + ": cannot create"));
  save_model(*b, path);
  CHECK(read_bytes(path) != before);
  CHECK(dir.entries() == std::vector<std::string>{"m.h5"});
}

TEST_CASE("Training resumed from a checkpoint equals training straight through, bit for bit", "[io]") {
  TempDir dir("ckpt");
  const data::TensorDataset train = small_data(40, 3);
  CrossEntropyLoss loss;
  FitOptions o;
  o.epochs = 3;
  o.batch_size = 8;
  o.seed = 7;
  o.verbose = Verbose::Silent;

  // Straight through: 3 epochs.
  auto a = small_cnn(1);
  optim::Adam adam_a(a->parameters());
  optim::StepLR sched_a(adam_a, 1, 0.5);
  Trainer ta(*a, loss, adam_a);
  o.callbacks = {std::make_shared<LRSchedulerCallback>(sched_a, "loss")};
  ta.fit(train, o);

  // 1 epoch, a checkpoint by ModelCheckpoint at its end...
  auto b = small_cnn(1);
  optim::Adam adam_b(b->parameters());
  optim::StepLR sched_b(adam_b, 1, 0.5);
  Trainer tb(*b, loss, adam_b);
  const std::string path = (dir / "ckpt.h5");
  FitOptions ob = o;
  ob.epochs = 1;
  ob.callbacks = {std::make_shared<LRSchedulerCallback>(sched_b, "loss"),
                  std::make_shared<ModelCheckpoint>(path, "loss", false, MonitorMode::Auto, checkpoint_writer(tb, &sched_b))};
  tb.fit(train, ob);
  const std::mt19937_64 engine_at_save = default_generator().engine();

  // ...then a fresh model, optimizer and scheduler (other seeds) resume from it.
  default_generator().engine().discard(1000);
  auto c = small_cnn(99);
  optim::Adam adam_c(c->parameters());
  optim::StepLR sched_c(adam_c, 1, 0.5);
  Trainer tc(*c, loss, adam_c);
  const TrainingState s = load_checkpoint(path, *c, adam_c);
  CHECK(s.epoch == 1);
  CHECK(s.global_step == 5);
  CHECK(s.scheduler_name == "StepLR");
  CHECK(default_generator().engine() == engine_at_save);
  sched_c.load_state(s.scheduler);
  tc.set_global_step(s.global_step);
  FitOptions oc = o;
  oc.initial_epoch = s.epoch;
  oc.callbacks = {std::make_shared<LRSchedulerCallback>(sched_c, "loss")};
  tc.fit(train, oc);

  const auto pa = a->named_parameters(), pc = c->named_parameters();
  REQUIRE(pa.size() == pc.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    CHECK(same_values(pa[i].second, pc[i].second));
  }
  const auto ba = a->named_buffers(), bc = c->named_buffers();
  for (size_t i = 0; i < ba.size(); ++i) {
    INFO(ba[i].first);
    CHECK(same_values(ba[i].second, bc[i].second));
  }
  const auto sa = adam_a.state(), sc = adam_c.state();
  REQUIRE(sa.size() == sc.size());
  for (size_t i = 0; i < sa.size(); ++i) CHECK(same_values(sa[i].second, sc[i].second));
  CHECK(adam_c.step_count() == adam_a.step_count());
  CHECK(adam_c.lr() == adam_a.lr());
  CHECK(tc.global_step() == ta.global_step());
  CHECK(dynamic_cast<Dropout&>((*c)[5]).generator().engine() == dynamic_cast<Dropout&>((*a)[5]).generator().engine());
}

TEST_CASE("load_checkpoint refuses another architecture or optimizer, changing nothing", "[io]") {
  TempDir dir("ckpt");
  auto m = small_cnn(1);
  optim::Adam adam(m->parameters());
  save_checkpoint(dir / "c.h5", *m, adam, TrainingState{2, 10, "", {}});

  auto n = small_cnn(2);
  const Tensor k = dynamic_cast<Dense&>((*n)[6]).kernel().clone();
  optim::SGD sgd(n->parameters());
  CHECK_THAT(error_of([&] { load_checkpoint(dir / "c.h5", *n, sgd); }),
             Catch::Contains("holds the state of a Adam optimizer, not of SGD"));
  CHECK(same_values(dynamic_cast<Dense&>((*n)[6]).kernel(), k));

  manual_seed(3);
  Sequential other({1, 6, 6});
  other.add(Conv2D(4, 3)).add(ReLU()).add(MaxPool2D(2)).add(Flatten()).add(Dense(3));
  optim::Adam adam_o(other.parameters());
  const std::string msg = error_of([&] { load_checkpoint(dir / "c.h5", other, adam_o); });
  CHECK_THAT(msg, Catch::Contains("the checkpoint holds a different architecture"));
  CHECK_THAT(msg, Catch::Contains("layer 1 is 'batch_normalization' (BatchNormalization) in the checkpoint but 're_lu' (ReLU) in the model"));

  optim::Adam adam_n(n->parameters());
  const TrainingState s = load_checkpoint(dir / "c.h5", *n, adam_n);
  CHECK(s.epoch == 2);
  CHECK(s.global_step == 10);
  CHECK(s.scheduler.empty());
  CHECK(same_values(dynamic_cast<Dense&>((*n)[6]).kernel(), dynamic_cast<Dense&>((*m)[6]).kernel()));
}

// Not a test: writes a checkpoint for tests/h5py_check.py (ctest h5py_check)
// to $MAAS_H5PY_OUT, and what h5py must find in it to $MAAS_H5PY_OUT.expect:
// the layers, each weight's Keras shape and sum, an input and maas' outputs.
TEST_CASE("write a checkpoint for h5py_check.py", "[.h5py-sample]") {
  TempDir dir("ckpt");  // where it writes when run without $MAAS_H5PY_OUT (e.g. by a "~[slow]" filter)
  const char* env = std::getenv("MAAS_H5PY_OUT");
  const std::string out = env != nullptr ? env : (dir / "checkpoint.h5");
  auto m = small_cnn(1);
  optim::Adam adam(m->parameters());
  CrossEntropyLoss loss;
  Trainer t(*m, loss, adam);
  FitOptions o;
  o.epochs = 1;
  o.verbose = Verbose::Silent;
  t.fit(small_data(16, 1), o);
  save_checkpoint(out, *m, adam, training_state(t));
  // One line per weight: "<layer> <class> <dataset> <shape...> ; <sum>" in Keras' layout.
  std::ofstream expect(out + ".expect");
  auto model = load_model(out);
  for (size_t i = 0; i < model->size(); ++i) {
    const Module& l = (*model)[i];
    expect << "layer " << l.name() << " " << l.type_name() << "\n";
  }
  expect.precision(9);
  // An input (NCHW) and maas' outputs, for a channels_last forward pass in numpy.
  Generator g(5);
  const Tensor x = Tensor::randn({3, 1, 6, 6}, g);
  const Tensor y = predict(*m, x);
  expect << "input";
  for (int64_t d : x.shape()) expect << " " << d;
  for (float v : x.to_vector()) expect << " " << v;
  expect << "\noutput";
  for (int64_t d : y.shape()) expect << " " << d;
  for (float v : y.to_vector()) expect << " " << v;
  expect << "\n";
  for (size_t i : {size_t{0}, size_t{6}}) {
    const Module& l = (*model)[i];
    for (const auto& [name, p] : l.named_parameters()) {
      double sum = 0;
      for (int64_t j = 0; j < p.numel(); ++j) sum += p.data()[j];
      Shape s = p.shape();
      if (s.size() == 4) s = {s[2], s[3], s[1], s[0]};
      expect << "weight " << l.name() << "/" << l.name() << "/" << name << ":0";
      for (int64_t d : s) expect << " " << d;
      expect << " sum " << sum << "\n";
    }
  }
}
