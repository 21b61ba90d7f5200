// CIFAR-10 binary records: parsing from memory (the fuzzer's way in) and the loaders.
#include "maas/data/cifar10.hpp"

#include <filesystem>

#include "maas/error.hpp"

namespace maas::data {

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names{"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

void parse_cifar10(const uint8_t* data, size_t size, const std::string& name, std::vector<uint8_t>& pixels,
                   std::vector<int64_t>& labels) {
  const auto record = static_cast<size_t>(kCifar10RecordBytes);
  MAAS_CHECK(size > 0, "load_cifar10: " << name << ": the file is empty");
  MAAS_CHECK(size % record == 0, "load_cifar10: " << name << ": " << size << " bytes is not a whole number of "
                                                  << record << "-byte records (" << size / record
                                                  << " records and " << size % record
                                                  << " bytes over): truncated or not CIFAR-10");
  const size_t n = size / record;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t label = data[i * record];
    MAAS_CHECK(label < 10, "load_cifar10: " << name << ": record " << i << " has label " << int{label}
                                            << ", CIFAR-10 labels are 0..9 (is this CIFAR-100?)");
  }
  pixels.reserve(pixels.size() + n * (record - 1));
  labels.reserve(labels.size() + n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* r = data + i * record;
    labels.push_back(r[0]);
    pixels.insert(pixels.end(), r + 1, r + record);
  }
}

ImageDataset load_cifar10_files(const std::vector<std::string>& paths) {
  MAAS_CHECK(!paths.empty(), "load_cifar10: no files given");
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (const std::string& path : paths) {
    const auto limit = static_cast<size_t>(kCifar10MaxRecords * kCifar10RecordBytes);
    const std::vector<uint8_t> bytes = read_file_bytes(path, "load_cifar10", limit + 1);
    MAAS_CHECK(bytes.size() <= limit, "load_cifar10: " << path << ": more than " << kCifar10MaxRecords
                                                       << " records (" << limit
                                                       << " bytes), the whole of CIFAR-10: not a CIFAR-10 file");
    parse_cifar10(bytes.data(), bytes.size(), path, pixels, labels);
  }
  return ImageDataset(std::move(pixels), std::move(labels), {3, 32, 32}, cifar10_class_names());
}

ImageDataset load_cifar10(const std::string& dir, Part part) {
  namespace fs = std::filesystem;
  std::error_code ec;
  MAAS_CHECK(fs::is_directory(dir, ec), "load_cifar10: " << dir << ": no such directory");
  std::vector<std::string> names;
  if (part == Part::Train) {
    for (int k = 1; k <= 5; ++k) names.push_back("data_batch_" + std::to_string(k) + ".bin");
  } else {
    names.push_back("test_batch.bin");
  }
  fs::path root(dir);
  // The archive unpacks into cifar-10-batches-bin/; accept its parent too.
  if (!fs::exists(root / names[0], ec) && fs::is_directory(root / "cifar-10-batches-bin", ec))
    root /= "cifar-10-batches-bin";
  std::vector<std::string> paths;
  for (const std::string& name : names) {
    const fs::path p = root / name;
    MAAS_CHECK(fs::exists(p, ec), "load_cifar10: " << p.string() << ": no such file (the "
                                                   << (part == Part::Train ? "train" : "test") << " part needs "
                                                   << (part == Part::Train ? "data_batch_1.bin .. data_batch_5.bin"
                                                                           : "test_batch.bin")
                                                   << ")");
    paths.push_back(p.string());
  }
  return load_cifar10_files(paths);
}

}  // namespace maas::data
