// load_model on hand-made and hostile model_configs: sizes that overflow,
// deep nesting, absurd declared shapes, options the layers refuse. Each must
// end in a maas::Error naming the file and the layer, never in a crash, a
// huge allocation or a message that copies the whole input.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "checkpoint/keras_file.hpp"
#include "data/temp_dir.hpp"
#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::FileLayer;
using maas::test::sequential_config;
using maas::test::TempDir;
using maas::test::write_model_file;

namespace {

std::string load_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string conv(const std::string& name, const std::string& fields) {
  return R"({"class_name": "Conv2D", "config": {"name": ")" + name + R"(", "kernel_size": [3, 3], )" + fields + "}}";
}

std::string dense(const std::string& name, const std::string& fields) {
  return R"({"class_name": "Dense", "config": {"name": ")" + name + R"(", )" + fields + "}}";
}

const char* kFlatten = R"({"class_name": "Flatten", "config": {"name": "flatten"}})";

}  // namespace

TEST_CASE("load_model: sizes whose products overflow are errors, not wrapped buffers", "[io]") {
  TempDir dir("keras_config");
  const std::string path = dir / "m.h5";
  // filters = 2^62: the kernel [2^62, 1, 3, 3] has more than 2^63 elements.
  write_model_file(path, sequential_config("[null, 8, 8, 1]", conv("conv2d", R"("filters": 4611686018427387904)")),
                   {{"conv2d", {{"kernel", {3, 3, 1, 4}}, {"bias", {4}}}}});
  CHECK_THAT(load_error(path), Catch::StartsWith("load_model: " + path + ": layer 'conv2d' (Conv2D): ") &&
                                   Catch::Contains("64-bit"));
  // units = 2^63 - 1 after a Flatten of 64 features.
  write_model_file(path,
                   sequential_config("[null, 8, 8, 1]", std::string(kFlatten) + ", " +
                                                            dense("dense", R"("units": 9223372036854775807)")),
                   {{"flatten", {}}, {"dense", {{"kernel", {64, 2}}, {"bias", {2}}}}});
  CHECK_THAT(load_error(path), Catch::StartsWith("load_model: " + path + ": layer 'dense' (Dense): ") &&
                                   Catch::Contains("64-bit"));
  // A dilated kernel whose span overflows.
  write_model_file(path,
                   sequential_config("[null, 8, 8, 1]", conv("conv2d", R"("filters": 2, "dilation_rate": [4611686018427387904, 1])")),
                   {{"conv2d", {{"kernel", {3, 3, 1, 2}}, {"bias", {2}}}}});
  CHECK_THAT(load_error(path), Catch::StartsWith("load_model: " + path + ": layer 'conv2d' (Conv2D): ") &&
                                   Catch::Contains("64-bit"));
  // An input whose flattening overflows.
  write_model_file(path, sequential_config("[null, 4294967296, 4294967296, 4]", kFlatten), {{"flatten", {}}});
  CHECK_THAT(load_error(path), Catch::StartsWith("load_model: " + path + ": layer 'flatten' (Flatten): ") &&
                                   Catch::Contains("64-bit"));
}

TEST_CASE("load_model: deep nesting and huge values give short messages, not stack overflows", "[io]") {
  TempDir dir("keras_config");
  const std::string path = dir / "m.h5";
  // 100,000 levels of [[[...]]] inside a layer option.
  const std::string deep = std::string(100000, '[') + "1" + std::string(100000, ']');
  write_model_file(path, sequential_config("[null, 4]", dense("dense", R"("units": 2, "activation": )" + deep)), {});
  std::string msg = load_error(path);
  CHECK_THAT(msg, Catch::StartsWith("load_model: " + path + ": model_config nests arrays and objects more than 64"));
  CHECK(msg.size() < 300);
  // Brackets inside strings do not count; 50 levels are fine for the parser
  // (the option is then refused, quoting only the start of it).
  const std::string in_string = "\"" + std::string(1000, '[') + "\"";
  const std::string nested = std::string(50, '[') + std::string(50, ']');
  write_model_file(path, sequential_config("[null, 4]", dense("dense", R"("units": 2, "activation": )" + in_string)),
                   {});
  msg = load_error(path);
  CHECK_THAT(msg, Catch::StartsWith("load_model: " + path + ": layer 'dense' (Dense): activation '[[[["));
  CHECK(msg.size() < 400);
  write_model_file(path, sequential_config("[null, 4]", dense("dense", R"("units": )" + nested)), {});
  msg = load_error(path);
  CHECK_THAT(msg, Catch::StartsWith("load_model: " + path + ": layer 'dense' (Dense): 'units' must be an integer, got "
                                    "[[[[") &&
                      Catch::Contains("... (100 characters)"));
  // A megabyte-long layer name and class name are cut short in messages.
  const std::string long_name(1 << 20, 'n');
  write_model_file(path, sequential_config("[null, 4]", dense(long_name, R"("units": 0)")), {});
  msg = load_error(path);
  CHECK_THAT(msg, Catch::Contains("units must be positive") && Catch::Contains("(1048576 characters)"));
  CHECK(msg.size() < 400);
  write_model_file(path, sequential_config("[null, 4]", R"({"class_name": ")" + long_name + R"(", "config": {}})"), {});
  msg = load_error(path);
  CHECK_THAT(msg, Catch::Contains("is not supported") && Catch::Contains("(1048576 characters)"));
  CHECK(msg.size() < 1000);  // the name cut short, then the list of the layers maas reads
}

TEST_CASE("load_model: options a layer refuses are named with the file and the layer", "[io]") {
  TempDir dir("keras_config");
  const std::string path = dir / "m.h5";
  const std::string in = "[null, 8, 8, 1]";
  struct Case {
    std::string layer, expected;
  };
  const std::string pool = R"({"class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", )";
  const std::string avg = R"({"class_name": "AveragePooling2D", "config": {"name": "average_pooling2d", )";
  const std::string bn = R"({"class_name": "BatchNormalization", "config": {"name": "batch_normalization", "axis": -1, )";
  const Case cases[] = {
      {conv("conv2d", R"("filters": 2, "strides": [0, 1])"), "layer 'conv2d' (Conv2D): strides must be positive, got 0"},
      {conv("conv2d", R"("filters": 2, "dilation_rate": 0)"),
       "layer 'conv2d' (Conv2D): dilation_rate must be positive, got 0"},
      {R"({"class_name": "Conv2D", "config": {"name": "conv2d", "filters": 2, "kernel_size": [0, 3]}})",
       "layer 'conv2d' (Conv2D): kernel_size must be positive, got 0x3"},
      {R"({"class_name": "Conv2D", "config": {"name": "conv2d", "filters": 2, "kernel_size": 9}})",
       "layer 'conv2d' (Conv2D): kernel 9x9 does not fit input"},
      {pool + R"("pool_size": [0, 2]}})", "layer 'max_pooling2d' (MaxPooling2D): pool_size must be positive, got 0x2"},
      {pool + R"("pool_size": 2, "strides": -1}})",
       "layer 'max_pooling2d' (MaxPooling2D): strides must be positive (or 0 for pool_size), got -1"},
      {avg + R"("pool_size": 9}})", "layer 'average_pooling2d' (AveragePooling2D): pool 9x9 does not fit input"},
      {bn + R"("momentum": 2.0}})", "layer 'batch_normalization' (BatchNormalization): momentum must be in [0, 1], got -1"},
      {bn + R"("epsilon": 0}})", "layer 'batch_normalization' (BatchNormalization): eps must be positive, got 0"},
      {R"({"class_name": "Dropout", "config": {"name": "dropout", "rate": 1.5}})",
       "layer 'dropout' (Dropout): rate must be in [0, 1)"},
      {conv("conv2d", R"("filters": 2)") + ", " + conv("conv2d", R"("filters": 2)"),
       "layer 'conv2d' (Conv2D): a layer named 'conv2d' already exists"},
  };
  for (const Case& c : cases) {
    write_model_file(path, sequential_config(in, c.layer), {});
    INFO(c.layer);
    CHECK_THAT(load_error(path), Catch::StartsWith("load_model: " + path + ": " + c.expected));
  }
}

TEST_CASE("load_model compares declared with stored shapes before it allocates a weight", "[io]") {
  TempDir dir("keras_config");
  const std::string path = dir / "m.h5";
  // Dense units = 2^40 over 64 features: a 256 TB kernel (the old path
  // allocated it, or died trying); the file stores (64, 2).
  write_model_file(path,
                   sequential_config("[null, 8, 8, 1]",
                                     std::string(kFlatten) + ", " + dense("dense", R"("units": 1099511627776)")),
                   {{"flatten", {}}, {"dense", {{"kernel", {64, 2}}, {"bias", {2}}}}});
  CHECK(load_error(path) == "load_model: " + path + ": the weights do not fit the model:\n"
                            "  layer 'dense' (Dense): kernel expected (64, 1099511627776), found (64, 2) in "
                            "'dense/kernel:0'\n"
                            "  layer 'dense' (Dense): bias expected (1099511627776,), found (2,) in 'dense/bias:0'");
  // A file that fits loads; building draws no initial weights from
  // default_generator() (they are overwritten by the file's).
  write_model_file(path, sequential_config("[null, 8, 8, 1]", std::string(kFlatten) + ", " + dense("dense", R"("units": 2)")),
                   {{"flatten", {}}, {"dense", {{"kernel", {64, 2}}, {"bias", {2}}}}});
  manual_seed(11);
  const auto model = load_model(path);
  CHECK(model->parameters().size() == 2);
  for (const Tensor& p : model->parameters())
    for (float v : p.to_vector()) CHECK(v == 0.f);  // unwritten datasets read as zeros
  CHECK(default_generator().engine() == Generator(11).engine());
}
