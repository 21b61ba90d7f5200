// IDX / MNIST loading: plain, gzipped and in-memory files the test writes
// itself, the values of a loaded batch, and every bad-input message.
#include <catch2/catch.hpp>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/gzip_bomb.hpp"
#include "data/temp_dir.hpp"
#include "gradcheck.hpp"
#include "maas/data/mnist.hpp"

using namespace maas;
using namespace maas::data;
namespace fs = std::filesystem;

using maas::test::TempDir;
using maas::test::write_file;
using maas::test::write_gzip_bomb;

namespace {

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols, const std::vector<uint8_t>& px) {
  std::vector<uint8_t> v{0, 0, 8, 3};
  put_be32(v, n);
  put_be32(v, rows);
  put_be32(v, cols);
  v.insert(v.end(), px.begin(), px.end());
  return v;
}

std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> v{0, 0, 8, 1};
  put_be32(v, static_cast<uint32_t>(labels.size()));
  v.insert(v.end(), labels.begin(), labels.end());
  return v;
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

// n images of rows x cols with pixel (i, r, c) = (i * 31 + r * 7 + c * 3) % 256.
std::vector<uint8_t> pattern(uint32_t n, uint32_t rows, uint32_t cols) {
  std::vector<uint8_t> px;
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c) px.push_back(static_cast<uint8_t>((i * 31 + r * 7 + c * 3) % 256));
  return px;
}

// Bytes that do not compress, so half a gzip stream is missing data.
std::vector<uint8_t> noise(size_t n) {
  std::vector<uint8_t> v(n);
  uint64_t s = 88172645463325252ULL;
  for (auto& b : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    b = static_cast<uint8_t>(s >> 32);
  }
  return v;
}

void check_batch(const ImageDataset& d, const std::vector<uint8_t>& px, const std::vector<uint8_t>& labels) {
  const int64_t row = numel(d.sample_shape());
  Tensor x, y;
  d.get_batch({2, 0, 2}, x, y);
  REQUIRE(x.shape() == Shape{3, d.sample_shape()[0], d.sample_shape()[1], d.sample_shape()[2]});
  REQUIRE(y.shape() == Shape{3});
  const int64_t order[3] = {2, 0, 2};
  for (int64_t b = 0; b < 3; ++b) {
    REQUIRE(y.data()[b] == static_cast<float>(labels[static_cast<size_t>(order[b])]));
    for (int64_t j = 0; j < row; ++j)
      REQUIRE(x.data()[b * row + j] == static_cast<float>(px[static_cast<size_t>(order[b] * row + j)]) / 255.f);
  }
}

}  // namespace

TEST_CASE("load_mnist reads plain IDX files into uint8 and converts per batch", "[data]") {
  TempDir dir("mnist");
  const std::vector<uint8_t> px = pattern(5, 3, 4);
  const std::vector<uint8_t> labels{3, 1, 4, 1, 5};
  write_file(dir / "train-images-idx3-ubyte", idx_images(5, 3, 4, px));
  write_file(dir / "train-labels-idx1-ubyte", idx_labels(labels));
  const ImageDataset d = load_mnist(dir.path.string(), Part::Train);
  REQUIRE(d.size() == 5);
  REQUIRE(d.sample_shape() == Shape{1, 3, 4});
  REQUIRE(d.num_classes() == 6);  // the largest label + 1
  REQUIRE(d.class_names().empty());
  REQUIRE(d.pixels() == px);
  check_batch(d, px, labels);
  Tensor x, y;
  d.get_batch({0}, x, y);
  REQUIRE(x.data()[0] == 0.f);
  REQUIRE(x.data()[11] == static_cast<float>((2 * 7 + 3 * 3) % 256) / 255.f);
}

TEST_CASE("load_mnist reads gzipped and dotted-name IDX files", "[data]") {
  TempDir dir("mnist");
  const std::vector<uint8_t> px = pattern(4, 28, 28);
  const std::vector<uint8_t> labels{9, 0, 7, 2};
  write_gz(dir / "t10k-images-idx3-ubyte.gz", idx_images(4, 28, 28, px));
  write_gz(dir / "t10k-labels-idx1-ubyte.gz", idx_labels(labels));
  write_file(dir / "train-images.idx3-ubyte", idx_images(4, 28, 28, px));
  write_gz(dir / "train-labels.idx1-ubyte.gz", idx_labels(labels));
  for (Part part : {Part::Test, Part::Train}) {
    const ImageDataset d = load_mnist(dir.path.string(), part);
    REQUIRE(d.size() == 4);
    REQUIRE(d.sample_shape() == Shape{1, 28, 28});
    REQUIRE(d.num_classes() == 10);
    REQUIRE(d.labels() == std::vector<int64_t>{9, 0, 7, 2});
    check_batch(d, px, labels);
  }
}

TEST_CASE("IDX files load singly and parse from memory", "[data]") {
  TempDir dir("mnist");
  const std::vector<uint8_t> px = pattern(3, 2, 5);
  const std::vector<uint8_t> img = idx_images(3, 2, 5, px);
  write_gz(dir / "img.gz", img);
  const IdxImages a = load_idx_images(dir / "img.gz");
  REQUIRE(a.count == 3);
  REQUIRE(a.rows == 2);
  REQUIRE(a.cols == 5);
  REQUIRE(a.pixels == px);
  const IdxImages b = parse_idx_images(img.data(), img.size());
  REQUIRE(b.pixels == px);
  const std::vector<uint8_t> lab = idx_labels({0, 200, 7});
  REQUIRE(parse_idx_labels(lab.data(), lab.size()) == std::vector<uint8_t>{0, 200, 7});
  write_file(dir / "lab", lab);
  REQUIRE(load_idx_labels(dir / "lab") == std::vector<uint8_t>{0, 200, 7});
  write_file(dir / "l2", idx_labels({0, 200, 7}));
  const ImageDataset d = load_mnist_files(dir / "img.gz", dir / "l2");
  REQUIRE(d.num_classes() == 201);  // labels are generic, not capped at 10
  REQUIRE(d.sample_shape() == Shape{1, 2, 5});
}

TEST_CASE("bad IDX input throws maas::Error naming the file and the problem", "[data]") {
  TempDir dir("mnist");
  const std::vector<uint8_t> px = pattern(5, 3, 4);
  const std::vector<uint8_t> good_images = idx_images(5, 3, 4, px);
  const std::vector<uint8_t> good_labels = idx_labels({1, 2, 3, 4, 5});

  SECTION("missing directory") {
    MAAS_REQUIRE_THROWS_WITH(load_mnist(dir / "nope", Part::Train), "nope: no such directory");
  }
  SECTION("missing file: the expected name is given") {
    write_file(dir / "train-images-idx3-ubyte", good_images);
    MAAS_REQUIRE_THROWS_WITH(load_mnist(dir.path.string(), Part::Train), "no train-labels-idx1-ubyte");
    MAAS_REQUIRE_THROWS_WITH(load_mnist(dir.path.string(), Part::Test), "no t10k-images-idx3-ubyte");
    MAAS_REQUIRE_THROWS_WITH(load_idx_images(dir / "missing"), "missing: no such file");
  }
  SECTION("a directory where a file should be") {
    fs::create_directories(dir.path / "sub");
    MAAS_REQUIRE_THROWS_WITH(load_idx_images(dir / "sub"), "sub: not a regular file");
  }
  SECTION("truncated image file") {
    std::vector<uint8_t> cut(good_images.begin(), good_images.end() - 7);
    write_file(dir / "cut", cut);
    REQUIRE_THROWS_AS(load_idx_images(dir / "cut"), Error);
    MAAS_REQUIRE_THROWS_WITH(load_idx_images(dir / "cut"),
                             "cut: truncated: the header says 5 x 3 x 4 images (60 bytes after the 16-byte header) "
                             "but the file has 69 bytes");
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(good_images.data(), 10, "head"), "head: truncated: 10 bytes");
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(good_images.data(), 3, "tiny"), "tiny: 3 bytes is too short");
  }
  SECTION("truncated label file") {
    std::vector<uint8_t> cut(good_labels.begin(), good_labels.end() - 1);
    MAAS_REQUIRE_THROWS_WITH(parse_idx_labels(cut.data(), cut.size(), "labs"), "labs: truncated");
  }
  SECTION("bytes after the array") {
    std::vector<uint8_t> longer = good_images;
    longer.push_back(0);
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(longer.data(), longer.size(), "long"),
                             "long: 1 bytes after the 5 x 3 x 4 images");
  }
  SECTION("wrong magic numbers") {
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(good_labels.data(), good_labels.size(), "lab"),
                             "lab: wrong magic number 2049 (0x00000801), expected 2051 (0x00000803) for IDX images; "
                             "this is a label file");
    MAAS_REQUIRE_THROWS_WITH(parse_idx_labels(good_images.data(), good_images.size(), "img"),
                             "img: wrong magic number 2051 (0x00000803), expected 2049 (0x00000801) for IDX labels; "
                             "this is an image file");
    std::vector<uint8_t> four = good_images;
    four[3] = 4;
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(four.data(), four.size(), "f"), "it has 4 dimensions, not 3");
    std::vector<uint8_t> floats = good_images;
    floats[2] = 0x0D;
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(floats.data(), floats.size(), "f"), "only unsigned-byte");
    const std::vector<uint8_t> png{0x89, 'P', 'N', 'G', 0, 0, 0, 0};
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(png.data(), png.size(), "p.png"), "p.png: wrong magic number");
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(png.data(), png.size(), "p.png"), "this is not an IDX file");
  }
  SECTION("image and label counts differ") {
    write_file(dir / "train-images-idx3-ubyte", good_images);
    write_file(dir / "train-labels-idx1-ubyte", idx_labels({1, 2, 3, 4}));
    MAAS_REQUIRE_THROWS_WITH(load_mnist(dir.path.string(), Part::Train), "holds 5 images but");
    MAAS_REQUIRE_THROWS_WITH(load_mnist(dir.path.string(), Part::Train), "train-labels-idx1-ubyte holds 4 labels");
  }
  SECTION("empty arrays") {
    const std::vector<uint8_t> none = idx_images(0, 28, 28, {});
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(none.data(), none.size(), "z"), "z: holds no images");
    const std::vector<uint8_t> flat = idx_images(2, 0, 28, {});
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(flat.data(), flat.size(), "z"), "images of 0 x 28 pixels are empty");
    const std::vector<uint8_t> nolab = idx_labels({});
    MAAS_REQUIRE_THROWS_WITH(parse_idx_labels(nolab.data(), nolab.size(), "z"), "z: holds no labels");
  }
  SECTION("a header that claims more than any file holds") {
    const std::vector<uint8_t> huge = idx_images(0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, {1, 2, 3});
    MAAS_REQUIRE_THROWS_WITH(parse_idx_images(huge.data(), huge.size(), "h"), "h: truncated");
  }
  SECTION("truncated gzip stream") {
    const std::vector<uint8_t> img = idx_images(40, 28, 28, noise(40 * 28 * 28));
    write_gz(dir / "full.gz", img);
    std::ifstream in(dir / "full.gz", std::ios::binary);
    std::vector<uint8_t> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    gz.resize(gz.size() / 2);
    write_file(dir / "half.gz", gz);
    MAAS_REQUIRE_THROWS_WITH(load_idx_images(dir / "half.gz"), "half.gz: corrupt or truncated gzip data");
  }
  SECTION("out-of-range batch index") {
    write_file(dir / "train-images-idx3-ubyte", good_images);
    write_file(dir / "train-labels-idx1-ubyte", good_labels);
    const ImageDataset d = load_mnist(dir.path.string(), Part::Train);
    Tensor x, y;
    MAAS_REQUIRE_THROWS_WITH(d.get_batch({0, 5}, x, y), "index 5 (batch position 1) is out of range for 5 samples");
  }
}

TEST_CASE("a gzip bomb posing as IDX stops at the size its header declares", "[data]") {
  TempDir dir("mnist");
  // 2 images of 28 x 28 announced, then 256 MiB of zeros from a 256 KB file.
  write_gzip_bomb(dir / "bomb.gz", idx_images(2, 28, 28, pattern(2, 28, 28)), 256);
  REQUIRE(fs::file_size(dir / "bomb.gz") < 512 * 1024);
  // The reader never holds more than it is allowed to.
  REQUIRE(read_file_bytes(dir / "bomb.gz", "t", 5000).size() == 5000);
  MAAS_REQUIRE_THROWS_WITH(load_idx_images(dir / "bomb.gz"),
                           "bomb.gz: more data after the 2 x 28 x 28 images the header announces (1584 bytes in all)");
  write_gzip_bomb(dir / "labels.gz", idx_labels({1, 2, 3}), 64);
  MAAS_REQUIRE_THROWS_WITH(load_idx_labels(dir / "labels.gz"),
                           "labels.gz: more data after the 3 labels the header announces (11 bytes in all)");
  // The same file without the bomb loads.
  write_gz(dir / "ok.gz", idx_images(2, 28, 28, pattern(2, 28, 28)));
  REQUIRE(load_idx_images(dir / "ok.gz").pixels == pattern(2, 28, 28));
}

TEST_CASE("an IDX header that declares more than the limit is refused before reading on", "[data]") {
  TempDir dir("mnist");
  // 2^32 - 1 images of 28 x 28 (3.4 TB) announced, 16 MiB of zeros given.
  write_gzip_bomb(dir / "huge.gz", idx_images(0xFFFFFFFFu, 28, 28, {}), 16);
  MAAS_REQUIRE_THROWS_WITH(load_idx_images(dir / "huge.gz"),
                           "huge.gz: the header says 4294967295 x 28 x 28 images (3367254359280 bytes), over the "
                           "limit of 4294967296 bytes (4 GiB) an IDX file may hold");
  std::vector<uint8_t> lab = idx_labels({});
  lab[4] = lab[5] = lab[6] = lab[7] = 0xFF;  // 2^32 - 1 labels: under the limit, but the file is truncated
  write_file(dir / "cut-labels", lab);
  MAAS_REQUIRE_THROWS_WITH(load_idx_labels(dir / "cut-labels"), "cut-labels: truncated");
  // A product over 2^64 is reported as such, not wrapped around.
  write_file(dir / "wrap", idx_images(0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, {}));
  MAAS_REQUIRE_THROWS_WITH(load_idx_images(dir / "wrap"), "(over 2^64 bytes), over the limit");
}
