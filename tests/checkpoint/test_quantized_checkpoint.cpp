// Quantized models in .h5: save -> load gives the same outputs bit for bit,
// the file is about a quarter of the fp32 one, a second save is the same
// bytes, and files holding what the int8 kernels cannot take are refused
// with a message naming the file and layer.
#include <catch2/catch.hpp>

#include <hdf5.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint/keras_file.hpp"
#include "data/temp_dir.hpp"
#include "maas/maas.hpp"

using namespace maas;
using namespace maas::nn;
using maas::test::TempDir;

namespace {

// The reference CNN's shape at a smaller size: its Dense dominates the
// weights, as in mnist_cnn.
std::unique_ptr<Sequential> small_cnn() {
  manual_seed(11);
  auto m = std::make_unique<Sequential>(Shape{1, 16, 16});
  m->add(Normalization({0.3f}, {0.1f}));
  m->add(Conv2D(8, 3, [] {
    Conv2DOptions o;
    o.padding = Padding::Same;
    return o;
  }()));
  m->add(ReLU()).add(MaxPool2D(2));
  m->add(Conv2D(16, 3)).add(ReLU()).add(MaxPool2D(2));
  m->add(Flatten()).add(Dense(64)).add(ReLU()).add(Dense(10));
  return m;
}

std::unique_ptr<Sequential> quantized(Sequential& m) {
  Generator gen(12);
  QuantizeOptions o;
  o.quiet = true;
  return quantize(m, Tensor::rand({64, 1, 16, 16}, gen), o);
}

// Overwrites dataset `path` of `file` with `values` (converted to its type).
void write_dataset(const std::string& file, const std::string& path, const std::vector<float>& values) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
  REQUIRE(d >= 0);
  REQUIRE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0);
  H5Dclose(d);
  H5Fclose(f);
}

}  // namespace

TEST_CASE("quantized model: save, load, same outputs; a quarter of the size", "[io][quantize]") {
  TempDir dir("int8_ckpt");
  auto fp32 = small_cnn();
  auto q = quantized(*fp32);
  save_model(*fp32, dir / "fp32.h5");
  save_model(*q, dir / "int8.h5");
  auto back = load_model(dir / "int8.h5");
  REQUIRE(back->size() == q->size());
  for (size_t i = 0; i < q->size(); ++i) CHECK((*back)[i].type_name() == (*q)[i].type_name());
  const auto& conv = dynamic_cast<const QuantizedConv2D&>((*back)[1]);
  CHECK(conv.options().padding == Padding::Same);
  CHECK(conv.options().activation == Activation::ReLU);  // the ReLU fused at quantize time
  CHECK(conv.input_quant().zero_point == dynamic_cast<const QuantizedConv2D&>((*q)[1]).input_quant().zero_point);

  Generator gen(13);
  const Tensor x = Tensor::rand({9, 1, 16, 16}, gen);
  const Tensor a = (*q)(x), b = (*back)(x);
  REQUIRE(a.shape() == b.shape());
  CHECK(a.to_vector() == b.to_vector());

  // Written again: the same bytes.
  save_model(*back, dir / "again.h5");
  CHECK(test::read_bytes(dir / "int8.h5") == test::read_bytes(dir / "again.h5"));

  // Each kernel element takes 1 byte instead of 4; the int8 file has 3 more
  // datasets per quantized layer (kernel_scale, input_scale,
  // input_zero_point: 12 here), each under 1.5 KB of HDF5 metadata and
  // values. (On mnist_cnn, whose weights dwarf the metadata, the int8 file
  // is 0.26 of the fp32 one: bench/RESULTS.md.)
  const double fp32_bytes = static_cast<double>(std::filesystem::file_size(dir / "fp32.h5"));
  const double int8_bytes = static_cast<double>(std::filesystem::file_size(dir / "int8.h5"));
  double kernel_elems = 0;
  for (const auto& l : q->layers())
    if (auto* ql = dynamic_cast<const QuantizedLayer*>(l.get())) kernel_elems += static_cast<double>(ql->kernel().numel());
  INFO("fp32 " << fp32_bytes << " bytes, int8 " << int8_bytes << " bytes, " << kernel_elems << " kernel elements");
  CHECK(int8_bytes <= fp32_bytes - 3 * kernel_elems + 12 * 1536);
  CHECK(int8_bytes >= fp32_bytes - 3 * kernel_elems);

  // The datasets' types, as h5py sees them.
  const hid_t f = H5Fopen((dir / "int8.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  auto type_of = [&](const char* path) {
    const hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    REQUIRE(d >= 0);
    const hid_t t = H5Dget_type(d);
    const bool i8 = H5Tequal(t, H5T_STD_I8LE) > 0, i32 = H5Tequal(t, H5T_STD_I32LE) > 0,
               f32 = H5Tequal(t, H5T_IEEE_F32LE) > 0;
    H5Tclose(t);
    H5Dclose(d);
    return i8 ? "int8" : i32 ? "int32" : f32 ? "float32" : "other";
  };
  CHECK(std::string(type_of("/model_weights/conv2d/conv2d/kernel:0")) == "int8");
  CHECK(std::string(type_of("/model_weights/conv2d/conv2d/kernel_scale:0")) == "float32");
  CHECK(std::string(type_of("/model_weights/dense/dense/input_zero_point:0")) == "int32");
  CHECK(std::string(type_of("/model_weights/dense/dense/bias:0")) == "float32");
  H5Fclose(f);

  // load_weights into the quantized model repacks its kernels.
  auto other = quantized(*small_cnn());
  load_weights(*other, dir / "int8.h5");
  CHECK((*other)(x).to_vector() == a.to_vector());
}

TEST_CASE("quantized functional model: save, load, same outputs", "[io][quantize]") {
  // A residual block: conv + BatchNorm + ReLU, conv + BatchNorm, added.
  TempDir dir("int8_functional");
  manual_seed(12);
  Conv2DOptions same;
  same.padding = Padding::Same;
  Node in = Input({1, 8, 8});
  Node h = layer(ReLU())(layer(BatchNorm())(layer(Conv2D(4, 3, same))(in)));
  Node r = layer(BatchNorm())(layer(Conv2D(4, 3, same))(h));
  h = layer(GlobalAveragePooling2D())(layer(ReLU())(layer(Add())({h, r})));
  Model model(in, layer(Dense(3))(h));
  Generator gen(14);
  QuantizeOptions o;
  o.quiet = true;
  std::unique_ptr<Model> q = quantize(model, Tensor::rand({32, 1, 8, 8}, gen), o);
  save_model(*q, dir / "int8.h5");
  auto back = load_model(dir / "int8.h5");
  REQUIRE(dynamic_cast<Model*>(back.get()) != nullptr);
  REQUIRE(back->size() == q->size());
  for (size_t i = 0; i < q->size(); ++i) CHECK((*back)[i].type_name() == (*q)[i].type_name());
  CHECK((*back)[0].type_name() == "QuantizedConv2D");
  const Tensor x = Tensor::rand({5, 1, 8, 8}, gen);
  CHECK((*back)(x).to_vector() == (*q)(x).to_vector());
}

TEST_CASE("quantized model: hostile files are refused, naming the layer", "[io][quantize]") {
  TempDir dir("int8_hostile");
  auto fp32 = small_cnn();
  auto q = quantized(*fp32);
  save_model(*q, dir / "int8.h5");
  const std::string plain = dir / "plain.h5";  // without maas' header, so it can be edited
  test::copy_file(dir / "int8.h5", plain);
  REQUIRE_NOTHROW(load_model(plain));

  struct Edit {
    const char* what;
    std::function<void(const std::string&)> apply;
    const char* message;
  };
  const std::string dense = "/model_weights/dense/dense/";
  const std::vector<Edit> edits = {
      {"a kernel code outside int8",
       [&](const std::string& p) {
         test::redeclare_dataset(p, dense + "kernel:0", {144, 64});
         std::vector<float> v(144 * 64, 1.f);
         v[5] = 200.f;
         write_dataset(p, dense + "kernel:0", v);
       },
       "is not an integer in [-127, 127]"},
      {"a fractional kernel code",
       [&](const std::string& p) {
         test::redeclare_dataset(p, dense + "kernel:0", {144, 64});
         write_dataset(p, dense + "kernel:0", std::vector<float>(144 * 64, 0.5f));
       },
       "is not an integer in [-127, 127]"},
      {"a negative kernel scale",
       [&](const std::string& p) { write_dataset(p, dense + "kernel_scale:0", std::vector<float>(64, -1.f)); },
       "kernel_scale[0] = -1 must be finite and positive"},
      {"a zero point past 255", [&](const std::string& p) { write_dataset(p, dense + "input_zero_point:0", {300.f}); },
       "outside [0, 255]"},
      {"a NaN input scale",
       [&](const std::string& p) {
         test::redeclare_dataset(p, dense + "input_scale:0", {});
         write_dataset(p, dense + "input_scale:0", {NAN});
       },
       "must be finite and positive"},
      {"a kernel declared huge",
       [&](const std::string& p) { test::redeclare_dataset(p, dense + "kernel:0", {144, 100000000}); },
       "declares (144, 100000000) numbers"},
      {"a missing zero point",
       [&](const std::string& p) {
         test::redeclare_dataset(p, dense + "input_zero_point:0", {3});
       },
       "input_zero_point expected ()"},
  };
  for (const Edit& e : edits) {
    INFO(e.what);
    const std::string p = dir / "edited.h5";
    std::filesystem::copy_file(plain, p, std::filesystem::copy_options::overwrite_existing);
    e.apply(p);
    try {
      load_model(p);
      FAIL("loaded a file with " << e.what);
    } catch (const Error& err) {
      const std::string m = err.what();
      CHECK_THAT(m, Catch::Contains(e.message));
      CHECK_THAT(m, Catch::Contains("edited.h5"));
      CHECK_THAT(m, Catch::Contains("dense"));
    }
  }
}

// Not a test: writes a quantized model for tests/h5py_int8_check.py (ctest
// h5py_int8_check) into $MAAS_H5PY_INT8_DIR: int8.h5, and int8.h5.expect
// with an input batch (flattened images) and maas' outputs, as JSON.
TEST_CASE("write a quantized model for h5py_int8_check.py", "[.h5py-int8-sample]") {
  const char* dir = std::getenv("MAAS_H5PY_INT8_DIR");
  REQUIRE(dir != nullptr);
  manual_seed(21);
  Sequential m({2, 3, 3});
  m.add(Flatten()).add(Dense(7)).add(ReLU()).add(Dense(3));
  Generator gen(22);
  QuantizeOptions o;
  o.quiet = true;
  auto q = quantize(m, Tensor::randn({64, 2, 3, 3}, gen), o);
  const std::string path = std::string(dir) + "/int8.h5";
  save_model(*q, path);
  const Tensor x = Tensor::randn({5, 2, 3, 3}, gen);
  const Tensor y = (*q)(x);
  std::ostringstream js;
  js.precision(9);
  auto rows = [&js](const Tensor& t, int64_t cols) {
    js << "[";
    for (int64_t n = 0; n < t.size(0); ++n) {
      js << (n ? ", [" : "[");
      for (int64_t c = 0; c < cols; ++c) js << (c ? ", " : "") << t.data()[n * cols + c];
      js << "]";
    }
    js << "]";
  };
  js << "{\"chw\": [2, 3, 3], \"input\": ";
  rows(x, 18);
  js << ", \"output\": ";
  rows(y, 3);
  js << "}";
  std::ofstream(path + ".expect") << js.str();
}
