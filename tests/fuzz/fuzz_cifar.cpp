// libFuzzer target: arbitrary bytes as a CIFAR-10 binary batch file.
// Build and run as fuzz_idx.cpp describes (target fuzz_cifar).
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "maas/data/cifar10.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  try {
    maas::data::parse_cifar10(data, size, "fuzz", pixels, labels);
    const maas::data::ImageDataset d(std::move(pixels), std::move(labels), {3, 32, 32},
                                     maas::data::cifar10_class_names());
    maas::Tensor x, y;
    d.get_batch({d.size() - 1, 0}, x, y);
  } catch (const maas::Error&) {
  }
  return 0;
}
