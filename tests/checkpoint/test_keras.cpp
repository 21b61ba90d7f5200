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
  CHECK_THAT(load_error(path), Catch::StartsWith("load_model: " + path + ": ") && Catch::Contains("conv2d") &&
                                   Catch::Contains("64-bit"));
  // units = 2^63 - 1 after a Flatten of 64 features.
  write_model_file(path,
                   sequential_config("[null, 8, 8, 1]", std::string(kFlatten) + ", " +
                                                            dense("dense", R"("units": 9223372036854775807)")),
                   {{"flatten", {}}, {"dense", {{"kernel", {64, 2}}, {"bias", {2}}}}});
  CHECK_THAT(load_error(path), Catch::StartsWith("load_model: " + path + ": ") && Catch::Contains("dense") &&
                                   Catch::Contains("64-bit"));
  // A dilated kernel whose span overflows.
  write_model_file(path,
                   sequential_config("[null, 8, 8, 1]", conv("conv2d", R"("filters": 2, "dilation_rate": [4611686018427387904, 1])")),
                   {{"conv2d", {{"kernel", {3, 3, 1, 2}}, {"bias", {2}}}}});
  CHECK_THAT(load_error(path), Catch::StartsWith("load_model: " + path + ": ") && Catch::Contains("conv2d") &&
                                   Catch::Contains("64-bit"));
  // An input whose flattening overflows.
  write_model_file(path, sequential_config("[null, 4294967296, 4294967296, 4]", kFlatten), {{"flatten", {}}});
  CHECK_THAT(load_error(path), Catch::StartsWith("load_model: " + path + ": ") && Catch::Contains("flatten") &&
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
  CHECK(msg.size() < 600);
}
