// maas/data/cifar10.hpp: the CIFAR-10 binary version.
//
// Example:
//   maas::data::ImageDataset train = maas::data::load_cifar10("data/cifar-10-batches-bin", maas::data::Part::Train);
//   train.size();            // 50000
//   train.sample_shape();    // {3, 32, 32}
//   train.class_names()[3];  // "cat"
//
// Format (https://www.cs.toronto.edu/~kriz/cifar.html): data_batch_1.bin ..
// data_batch_5.bin (train) and test_batch.bin (test), each a run of 3073-byte
// records: one label byte (0..9), then 1024 red, 1024 green and 1024 blue
// bytes, rows of 32 (CHW already). A file whose length is not a multiple of
// 3073, a label >= 10 and a missing file throw maas::Error naming the file.
//
// What this file is not: CIFAR-100 (two label bytes) and the Python pickles
// are not read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "maas/data/loader.hpp"

namespace maas::data {

constexpr int64_t kCifar10RecordBytes = 1 + 3 * 32 * 32;
// The most records one file may hold: the whole data set (60,000 images;
// each of its files holds 10,000). Reading stops past it, so a gzipped file
// that expands without end costs no more memory than that (184 MB).
constexpr int64_t kCifar10MaxRecords = 60000;

// "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck".
const std::vector<std::string>& cifar10_class_names();

// Appends the records in `data` to pixels (3072 bytes each) and labels;
// `name` (a file name) starts the errors. Nothing is appended on an error.
void parse_cifar10(const uint8_t* data, size_t size, const std::string& name, std::vector<uint8_t>& pixels,
                   std::vector<int64_t>& labels);

// The records of the given files, in order (plain or gzipped; a file of
// more than kCifar10MaxRecords records is refused).
ImageDataset load_cifar10_files(const std::vector<std::string>& paths);

// data_batch_1..5.bin (Train) or test_batch.bin (Test) from `dir`, or from
// dir/cifar-10-batches-bin when that is where the files are.
ImageDataset load_cifar10(const std::string& dir, Part part);

}  // namespace maas::data
