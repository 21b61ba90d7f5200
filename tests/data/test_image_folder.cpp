// Image folders: PNG and BMP files written with stb_image_write and an
// embedded JPEG; class order, channel conversion, resizing, and every
// bad-input message.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "data/temp_dir.hpp"
#include "gradcheck.hpp"
#include "maas/data/image_folder.hpp"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

using namespace maas;
using namespace maas::data;
namespace fs = std::filesystem;

using maas::test::TempDir;
using maas::test::write_file;

namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// An h x w image with `comp` interleaved channels; pixel (y, x, c) = seed + 40y + 9x + 70c.
std::vector<uint8_t> image(int h, int w, int comp, int seed) {
  std::vector<uint8_t> v;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < comp; ++c) v.push_back(static_cast<uint8_t>((seed + 40 * y + 9 * x + 70 * c) % 256));
  return v;
}

void png(const std::string& path, int h, int w, int comp, const std::vector<uint8_t>& px) {
  REQUIRE(stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp) != 0);
}

void bmp(const std::string& path, int h, int w, int comp, const std::vector<uint8_t>& px) {
  REQUIRE(stbi_write_bmp(path.c_str(), w, h, comp, px.data()) != 0);
}

// Sample s of the data set as HWC bytes, back from get_batch's [0, 1] floats.
std::vector<uint8_t> hwc_of(const ImageDataset& d, int64_t s) {
  Tensor x, y;
  d.get_batch({s}, x, y);
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3);
  std::vector<uint8_t> out;
  for (int64_t yy = 0; yy < h; ++yy)
    for (int64_t xx = 0; xx < w; ++xx)
      for (int64_t ch = 0; ch < c; ++ch)
        out.push_back(static_cast<uint8_t>(std::lround(x.at({0, ch, yy, xx}) * 255.f)));
  return out;
}

}  // namespace

TEST_CASE("load_image_folder: sorted classes, sorted files, exact PNG and BMP pixels in CHW", "[data]") {
  TempDir dir("images");
  fs::create_directories(dir.path / "zebra");
  fs::create_directories(dir.path / "ant");
  fs::create_directories(dir.path / ".git");  // hidden: not a class
  png(dir / "zebra/c.png", 3, 4, 3, image(3, 4, 3, 1));
  png(dir / "ant/b.PNG", 3, 4, 3, image(3, 4, 3, 2));
  bmp(dir / "ant/a.bmp", 3, 4, 3, image(3, 4, 3, 3));
  write_file(dir / "ant/README.txt", {'h', 'i'});  // not an image: ignored
  write_file(dir / "ant/.hidden.png", {1, 2, 3});  // hidden: ignored
  write_file(dir / "loose.png", {1, 2, 3});        // not in a class folder: ignored

  const ImageDataset d = load_image_folder(dir.path.string(), {3, 4, 3});
  REQUIRE(d.size() == 3);
  REQUIRE(d.sample_shape() == Shape{3, 3, 4});
  REQUIRE(d.class_names() == std::vector<std::string>{"ant", "zebra"});
  REQUIRE(d.num_classes() == 2);
  REQUIRE(d.labels() == std::vector<int64_t>{0, 0, 1});
  REQUIRE(hwc_of(d, 0) == image(3, 4, 3, 3));  // ant/a.bmp
  REQUIRE(hwc_of(d, 1) == image(3, 4, 3, 2));  // ant/b.PNG
  REQUIRE(hwc_of(d, 2) == image(3, 4, 3, 1));  // zebra/c.png
  // Stored CHW: the first 12 bytes are the red plane.
  REQUIRE(d.sample(2)[0] == 1);
  REQUIRE(d.sample(2)[1] == 10);
  REQUIRE(d.sample(2)[12] == 71);
  Tensor x, y;
  d.get_batch({2, 0}, x, y);
  REQUIRE(y.to_vector() == std::vector<float>{1.f, 0.f});
}

TEST_CASE("images are converted to the requested channels", "[data]") {
  TempDir dir("images");
  fs::create_directories(dir.path / "k");
  SECTION("colour to grey by luminance") {
    const std::vector<uint8_t> red{255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};  // 1 x 4: R, G, B, white
    png(dir / "k/rgb.png", 1, 4, 3, red);
    const ImageDataset d = load_image_folder(dir.path.string(), {1, 4, 1});
    REQUIRE(d.sample_shape() == Shape{1, 1, 4});
    // stb: (77 R + 150 G + 29 B) >> 8
    REQUIRE(std::vector<uint8_t>(d.sample(0), d.sample(0) + 4) == std::vector<uint8_t>{76, 149, 28, 255});
  }
  SECTION("grey to colour by repeating") {
    png(dir / "k/g.png", 2, 2, 1, {10, 20, 30, 40});
    const ImageDataset d = load_image_folder(dir.path.string(), {2, 2, 3});
    REQUIRE(std::vector<uint8_t>(d.sample(0), d.sample(0) + 12) ==
            std::vector<uint8_t>{10, 20, 30, 40, 10, 20, 30, 40, 10, 20, 30, 40});
  }
  SECTION("alpha dropped") {
    png(dir / "k/rgba.png", 1, 2, 4, {1, 2, 3, 0, 4, 5, 6, 255});
    png(dir / "k/ga.png", 1, 2, 2, {7, 0, 8, 128});
    const ImageDataset rgb = load_image_folder(dir.path.string(), {1, 2, 3});
    REQUIRE(std::vector<uint8_t>(rgb.sample(1), rgb.sample(1) + 6) == std::vector<uint8_t>{1, 4, 2, 5, 3, 6});
    REQUIRE(std::vector<uint8_t>(rgb.sample(0), rgb.sample(0) + 6) == std::vector<uint8_t>{7, 8, 7, 8, 7, 8});
    const ImageDataset grey = load_image_folder(dir.path.string(), {1, 2, 1});
    REQUIRE(std::vector<uint8_t>(grey.sample(0), grey.sample(0) + 2) == std::vector<uint8_t>{7, 8});
  }
}

TEST_CASE("resize_image: identity, hand-computed bilinear values, constants kept", "[data]") {
  const std::vector<uint8_t> px = image(3, 5, 2, 4);
  const std::vector<uint8_t> same = resize_image(px.data(), 3, 5, 2, 3, 5);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 2; ++c) REQUIRE(same[static_cast<size_t>((c * 3 + y) * 5 + x)] == px[static_cast<size_t>((y * 5 + x) * 2 + c)]);

  const std::vector<uint8_t> two{0, 255};
  REQUIRE(resize_image(two.data(), 1, 2, 1, 1, 4) == std::vector<uint8_t>{0, 64, 191, 255});
  const std::vector<uint8_t> step{0, 0, 255, 255};
  // Shrinking 2x: triangle of radius 2; output 0 weighs inputs 0..2 by .75 .75 .25.
  REQUIRE(resize_image(step.data(), 1, 4, 1, 1, 2) == std::vector<uint8_t>{36, 219});
  REQUIRE(resize_image(step.data(), 4, 1, 1, 2, 1) == std::vector<uint8_t>{36, 219});

  const std::vector<uint8_t> flat(7 * 5 * 3, 123);
  for (auto [oh, ow] : {std::pair<int, int>{3, 11}, {14, 2}, {1, 1}, {20, 20}}) {
    const std::vector<uint8_t> out = resize_image(flat.data(), 7, 5, 3, oh, ow);
    REQUIRE(out.size() == static_cast<size_t>(3 * oh * ow));
    for (uint8_t v : out) REQUIRE(v == 123);
  }
  MAAS_REQUIRE_THROWS_WITH(resize_image(flat.data(), 7, 5, 3, 0, 4), "must be positive");
}

// An 8 x 8 baseline JPEG (written once by stbi_write_jpg at quality 95, no
// chroma subsampling) of the gradient pixel (y, x, c) = 32x + 8c. Embedded
// because stb's JPEG writer shifts negative ints, which UBSan rejects.
const uint8_t kGradientJpeg[] = {
  0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
  0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x84, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02,
  0x01, 0x01, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x04, 0x03, 0x02, 0x02, 0x02, 0x02, 0x05, 0x04,
  0x04, 0x03, 0x04, 0x06, 0x05, 0x06, 0x06, 0x06, 0x05, 0x06, 0x06, 0x06, 0x07, 0x09, 0x08, 0x06,
  0x07, 0x09, 0x07, 0x06, 0x06, 0x08, 0x0b, 0x08, 0x09, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x06, 0x08,
  0x0b, 0x0c, 0x0b, 0x0a, 0x0c, 0x09, 0x0a, 0x0a, 0x0a, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
  0x05, 0x03, 0x03, 0x05, 0x0a, 0x07, 0x06, 0x07, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
  0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
  0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
  0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00,
  0x08, 0x00, 0x08, 0x03, 0x01, 0x11, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xc4, 0x01,
  0xa2, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x00,
  0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01,
  0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22,
  0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24,
  0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29,
  0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a,
  0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
  0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
  0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
  0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6,
  0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3,
  0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
  0xfa, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x11, 0x00,
  0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00,
  0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
  0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15,
  0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27,
  0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
  0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
  0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
  0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6,
  0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4,
  0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2,
  0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
  0xfa, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0xe6,
  0x7f, 0xe0, 0xdb, 0x8f, 0xf9, 0x80, 0xff, 0x00, 0xdb, 0x2f, 0xe9, 0x5e, 0xa9, 0xe6, 0x1f, 0xff,
  0xd9
};

TEST_CASE("load_image_folder resizes and reads JPEG", "[data]") {
  TempDir dir("images");
  fs::create_directories(dir.path / "a");
  write_file(dir / "a/g.jpg", std::vector<uint8_t>(std::begin(kGradientJpeg), std::end(kGradientJpeg)));
  png(dir / "a/flat.png", 6, 10, 3, std::vector<uint8_t>(6 * 10 * 3, 200));
  const ImageDataset d = load_image_folder(dir.path.string(), {4, 4, 3});
  REQUIRE(d.sample_shape() == Shape{3, 4, 4});
  for (int i = 0; i < 3 * 16; ++i) REQUIRE(d.sample(0)[i] == 200);  // flat.png sorts first
  // g.jpg at full size is the gradient, within JPEG's error.
  const ImageDataset full = load_image_folder(dir.path.string(), {8, 8, 3});
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        INFO("c " << c << " y " << y << " x " << x);
        REQUIRE(std::abs(int{full.sample(1)[(c * 8 + y) * 8 + x]} - (32 * x + 8 * c)) <= 6);
      }
  // Shrunk 2x: column x weighs source columns 2x-1 .. 2x+2 by .25 .75 .75 .25, 64x + 16 inside.
  const uint8_t* g = d.sample(1);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 1; x < 3; ++x) {
        INFO("c " << c << " y " << y << " x " << x);
        REQUIRE(std::abs(int{g[(c * 4 + y) * 4 + x]} - (64 * x + 16 + 8 * c)) <= 6);
      }
  // decode_image from memory gives the same bytes as the folder.
  const std::vector<uint8_t> mem = decode_image(kGradientJpeg, sizeof(kGradientJpeg), {4, 4, 3}, "g.jpg");
  REQUIRE(std::vector<uint8_t>(g, g + 48) == mem);
  REQUIRE(load_image(dir / "a/g.jpg", {4, 4, 3}) == mem);
}

TEST_CASE("bad image-folder input throws maas::Error naming the file and the problem", "[data]") {
  TempDir dir("images");
  SECTION("missing directory") {
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir / "nope", {8, 8, 3}), "nope: no such directory");
  }
  SECTION("no class folders") {
    png(dir / "x.png", 2, 2, 1, {1, 2, 3, 4});
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {8, 8, 3}), "no class folders");
  }
  SECTION("empty class folder") {
    fs::create_directories(dir.path / "cat");
    fs::create_directories(dir.path / "dog");
    png(dir / "cat/x.png", 2, 2, 1, {1, 2, 3, 4});
    write_file(dir / "dog/notes.txt", {'x'});
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {8, 8, 3}),
                             "class folder " + dir / "dog" + " holds no images");
  }
  SECTION("unreadable images name the file and stb's reason") {
    fs::create_directories(dir.path / "cat");
    png(dir / "cat/a.png", 2, 2, 1, {1, 2, 3, 4});
    write_file(dir / "cat/b.png", {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {8, 8, 3}),
                             dir / "cat/b.png" + ": cannot decode image: unknown image type");
    std::vector<uint8_t> cut = read_all(dir / "cat/a.png");
    cut.resize(cut.size() - 20);
    write_file(dir / "cat/b.png", cut);
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {8, 8, 3}),
                             dir / "cat/b.png" + ": cannot decode image: ");
    write_file(dir / "cat/b.png", {});
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {8, 8, 3}), "b.png: the file is empty");
  }
  SECTION("bad options") {
    fs::create_directories(dir.path / "cat");
    png(dir / "cat/a.png", 2, 2, 1, {1, 2, 3, 4});
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {8, 8, 2}), "channels 2 must be 1 (grey) or 3");
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {0, 8, 3}), "image size 0 x 8 must be positive");
    MAAS_REQUIRE_THROWS_WITH(load_image(dir / "cat/a.png", {8, -1, 1}), "image size 8 x -1 must be positive");
  }
  SECTION("image sizes beyond the decoder's limits are refused before anything is allocated") {
    fs::create_directories(dir.path / "cat");
    png(dir / "cat/a.png", 2, 2, 1, {1, 2, 3, 4});
    // 2^20 x 2^20 x 3 bytes per image (3 TiB) was std::bad_alloc.
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {int64_t{1} << 20, int64_t{1} << 20, 3}),
                             "load_image_folder: image size 1048576 x 1048576 must be positive, at most 65536 per "
                             "side and 67108864 pixels in all");
    // A product that would overflow int64.
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {INT64_MAX, 4, 3}),
                             "image size 9223372036854775807 x 4 must be positive, at most 65536 per side");
    // Each side within the limit, the product (4 GiB per image) not.
    MAAS_REQUIRE_THROWS_WITH(load_image_folder(dir.path.string(), {65536, 65536, 1}),
                             "image size 65536 x 65536 must be positive, at most 65536 per side and 67108864 "
                             "pixels in all");
    MAAS_REQUIRE_THROWS_WITH(load_image(dir / "cat/a.png", {65536, 65536, 1}), "load_image: image size 65536 x 65536");
    const std::vector<uint8_t> bytes = read_all(dir / "cat/a.png");
    MAAS_REQUIRE_THROWS_WITH(decode_image(bytes.data(), bytes.size(), {65536, 1025, 3}, "a.png"),
                             "decode_image: image size 65536 x 1025");
    // A side at the limit loads.
    const ImageDataset wide = load_image_folder(dir.path.string(), {1, 65536, 1});
    REQUIRE(wide.sample_shape() == Shape{1, 1, 65536});
  }
  SECTION("a 16-bit PNM (fuzzer find: stb 2.27 overflows converting it) is not decoded") {
    const std::string pnm = "P6  13 1 256  13 1 2555\n\x06";
    const std::vector<uint8_t> bytes(pnm.begin(), pnm.end());
    MAAS_REQUIRE_THROWS_WITH(decode_image(bytes.data(), bytes.size(), {32, 12, 1}, "x.ppm"),
                             "x.ppm: cannot decode image: unknown image type");
  }
  SECTION("huge declared size") {
    // A 30000 x 30000 BMP header: over the pixel limit, rejected before decoding.
    std::vector<uint8_t> b(54, 0);
    b[0] = 'B';
    b[1] = 'M';
    b[10] = 54;
    b[14] = 40;
    const uint32_t side = 30000;
    for (int k = 0; k < 4; ++k) {
      b[18 + k] = static_cast<uint8_t>(side >> (8 * k));
      b[22 + k] = static_cast<uint8_t>(side >> (8 * k));
    }
    b[26] = 1;
    b[28] = 24;
    MAAS_REQUIRE_THROWS_WITH(decode_image(b.data(), b.size(), {8, 8, 3}, "big.bmp"),
                             "big.bmp: image of 30000 x 30000 pixels is over the limit");
  }
}
