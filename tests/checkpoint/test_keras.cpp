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
