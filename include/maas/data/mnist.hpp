// maas/data/mnist.hpp: MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST).
//
// Example:
//   maas::data::ImageDataset train = maas::data::load_mnist("data/fashion-mnist", maas::data::Part::Train);
//   train.size();          // 60000
//   train.sample_shape();  // {1, 28, 28}
//   train.num_classes();   // 10
//
// The IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian header,
// magic 0x00000803 (2051) then the image count, rows and columns for images,
// magic 0x00000801 (2049) then the count for labels; then one byte per pixel
// or label. Files may be gzip-compressed (.gz). Every mismatch (magic,
// dimension count, a file shorter or longer than its header says, images and
// labels that do not pair up) throws maas::Error naming the file.
//
// What this file is not: other IDX element types (int, float) and more than
// 3 dimensions are rejected, not converted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "maas/data/loader.hpp"

namespace maas::data {

// The content of an IDX image file: count images of rows x cols bytes.
struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
};

// Parse IDX bytes already in memory; `name` (a file name) starts the errors.
IdxImages parse_idx_images(const uint8_t* data, size_t size, const std::string& name = "<memory>");
std::vector<uint8_t> parse_idx_labels(const uint8_t* data, size_t size, const std::string& name = "<memory>");

// The largest array an IDX file may announce: 4 GiB, eight times EMNIST's
// largest file (697,932 images of 28 x 28, 547 MB).
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 32;

// Read one IDX file, plain or gzipped. The header is read first and bounds
// the rest: an array over kMaxIdxBytes is refused before anything is
// allocated, and reading stops one byte past the array the header announces
// (more data is an error), so memory stays within the header's promise
// whatever a gzip stream would expand to.
IdxImages load_idx_images(const std::string& path);
std::vector<uint8_t> load_idx_labels(const std::string& path);

// Pairs an image file with a label file: samples [1, rows, cols], labels as
// classes (num_classes() = the largest label + 1).
ImageDataset load_mnist_files(const std::string& images_path, const std::string& labels_path);

// The train (train-images-idx3-ubyte, train-labels-idx1-ubyte) or test
// (t10k-...) half of an MNIST-style directory; each file is looked for as
// NAME, NAME.gz, and with '.' for the last '-' (train-images.idx3-ubyte).
ImageDataset load_mnist(const std::string& dir, Part part);

}  // namespace maas::data
