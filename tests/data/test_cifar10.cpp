// CIFAR-10 binary loading: records the test writes, CHW values of a batch,
// the directory layouts, and every bad-input message.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/gzip_bomb.hpp"
#include "data/temp_dir.hpp"
#include "gradcheck.hpp"
#include "maas/data/cifar10.hpp"

using namespace maas;
using namespace maas::data;
namespace fs = std::filesystem;

using maas::test::TempDir;
using maas::test::write_file;

namespace {

// Record `id`: label id % 10; channel c, row r, column x holds (id + 3c + 5r + 7x) % 256.
uint8_t value(int id, int c, int r, int x) { return static_cast<uint8_t>((id + 3 * c + 5 * r + 7 * x) % 256); }

std::vector<uint8_t> records(int first, int n) {
  std::vector<uint8_t> v;
  for (int id = first; id < first + n; ++id) {
    v.push_back(static_cast<uint8_t>(id % 10));
    for (int c = 0; c < 3; ++c)
      for (int r = 0; r < 32; ++r)
        for (int x = 0; x < 32; ++x) v.push_back(value(id, c, r, x));
  }
  return v;
}

// data_batch_k.bin holds k records (ids continue across files); test_batch.bin 4.
void write_cifar(const fs::path& dir) {
  fs::create_directories(dir);
  int id = 0;
  for (int k = 1; k <= 5; ++k) {
    write_file((dir / ("data_batch_" + std::to_string(k) + ".bin")).string(), records(id, k));
    id += k;
  }
  write_file((dir / "test_batch.bin").string(), records(100, 4));
}

}  // namespace

TEST_CASE("load_cifar10 reads the train and test records, CHW, with class names", "[data]") {
  TempDir dir("cifar");
  write_cifar(dir.path);
  const ImageDataset train = load_cifar10(dir.path.string(), Part::Train);
  REQUIRE(train.size() == 15);
  REQUIRE(train.sample_shape() == Shape{3, 32, 32});
  REQUIRE(train.num_classes() == 10);
  REQUIRE(train.class_names().size() == 10);
  REQUIRE(train.class_names()[0] == "airplane");
  REQUIRE(train.class_names()[3] == "cat");
  REQUIRE(train.class_names()[9] == "truck");
  for (int64_t i = 0; i < 15; ++i) REQUIRE(train.labels()[static_cast<size_t>(i)] == i % 10);

  Tensor x, y;
  train.get_batch({14, 3}, x, y);
  REQUIRE(x.shape() == Shape{2, 3, 32, 32});
  REQUIRE(y.to_vector() == std::vector<float>{4.f, 3.f});
  for (int c = 0; c < 3; ++c)
    for (int r = 0; r < 32; r += 7)
      for (int xx = 0; xx < 32; xx += 5) {
        REQUIRE(x.at({0, c, r, xx}) == static_cast<float>(value(14, c, r, xx)) / 255.f);
        REQUIRE(x.at({1, c, r, xx}) == static_cast<float>(value(3, c, r, xx)) / 255.f);
      }

  const ImageDataset test = load_cifar10(dir.path.string(), Part::Test);
  REQUIRE(test.size() == 4);
  REQUIRE(test.labels() == std::vector<int64_t>{0, 1, 2, 3});
  REQUIRE(test.num_classes() == 10);  // the names fix it, whatever labels occur
}

TEST_CASE("load_cifar10 finds the cifar-10-batches-bin folder and parses from memory", "[data]") {
  TempDir dir("cifar");
  write_cifar(dir.path / "cifar-10-batches-bin");
  REQUIRE(load_cifar10(dir.path.string(), Part::Train).size() == 15);
  const std::vector<uint8_t> bytes = records(7, 2);
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  parse_cifar10(bytes.data(), bytes.size(), "mem", pixels, labels);
  REQUIRE(labels == std::vector<int64_t>{7, 8});
  REQUIRE(pixels.size() == 2 * 3072u);
  REQUIRE(pixels[3072 + 1024 + 32 + 1] == value(8, 1, 1, 1));
}

TEST_CASE("bad CIFAR-10 input throws maas::Error naming the file and the problem", "[data]") {
  TempDir dir("cifar");
  write_cifar(dir.path);
  SECTION("missing directory") {
    MAAS_REQUIRE_THROWS_WITH(load_cifar10(dir / "nope", Part::Test), "nope: no such directory");
  }
  SECTION("missing batch file") {
    fs::remove(dir.path / "data_batch_3.bin");
    MAAS_REQUIRE_THROWS_WITH(load_cifar10(dir.path.string(), Part::Train), "data_batch_3.bin: no such file");
    fs::remove(dir.path / "test_batch.bin");
    MAAS_REQUIRE_THROWS_WITH(load_cifar10(dir.path.string(), Part::Test), "test_batch.bin: no such file");
  }
  SECTION("a size that is not whole records") {
    std::vector<uint8_t> cut = records(0, 3);
    cut.resize(cut.size() - 100);
    write_file(dir / "data_batch_2.bin", cut);
    MAAS_REQUIRE_THROWS_WITH(load_cifar10(dir.path.string(), Part::Train),
                             "data_batch_2.bin: 9119 bytes is not a whole number of 3073-byte records (2 records "
                             "and 2973 bytes over)");
  }
  SECTION("empty file") {
    write_file(dir / "test_batch.bin", {});
    MAAS_REQUIRE_THROWS_WITH(load_cifar10(dir.path.string(), Part::Test), "test_batch.bin: the file is empty");
  }
  SECTION("label out of range") {
    std::vector<uint8_t> bad = records(0, 3);
    bad[2 * 3073] = 10;
    write_file(dir / "data_batch_4.bin", bad);
    MAAS_REQUIRE_THROWS_WITH(load_cifar10(dir.path.string(), Part::Train),
                             "data_batch_4.bin: record 2 has label 10, CIFAR-10 labels are 0..9");
    std::vector<uint8_t> pixels;
    std::vector<int64_t> labels;
    REQUIRE_THROWS_AS(parse_cifar10(bad.data(), bad.size(), "m", pixels, labels), Error);
    REQUIRE(pixels.empty());  // nothing appended on an error
    REQUIRE(labels.empty());
  }
  SECTION("no files") { MAAS_REQUIRE_THROWS_WITH(load_cifar10_files({}), "no files given"); }
  SECTION("a gzip bomb: reading stops past the whole data set's size") {
    // 190 MiB of zeros (labels 0, black pixels) from a 190 KB file.
    maas::test::write_gzip_bomb(dir / "bomb.bin", records(0, 1), 190);
    MAAS_REQUIRE_THROWS_WITH(load_cifar10_files({dir / "bomb.bin"}),
                             "bomb.bin: more than 60000 records (184380000 bytes), the whole of CIFAR-10");
  }
}
