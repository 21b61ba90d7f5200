// libFuzzer target: arbitrary bytes as IDX image and label files.
//
// Build and run (clang only):
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAAS_FUZZ=ON \
//     -DMAAS_BUILD_TESTS=OFF -DMAAS_BUILD_EXAMPLES=OFF -DMAAS_BUILD_BENCH=OFF
//   cmake --build build-fuzz --target fuzz_idx fuzz_cifar fuzz_image
//   build-fuzz/fuzz_idx -max_total_time=60 -print_final_stats=1 CORPUS_DIR
// Every input must either parse or throw maas::Error: any other exception,
// crash, leak or ASan report is a bug.
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "maas/data/mnist.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    maas::data::IdxImages images = maas::data::parse_idx_images(data, size, "fuzz");
    if (images.count <= 64 && images.rows * images.cols <= 4096) {
      // Through the data set and its float conversion, first and last sample.
      const maas::data::ImageDataset d(std::move(images.pixels), std::vector<int64_t>(static_cast<size_t>(images.count), 0),
                                       {1, images.rows, images.cols});
      maas::Tensor x, y;
      d.get_batch({0, d.size() - 1}, x, y);
    }
  } catch (const maas::Error&) {
  }
  try {
    const std::vector<uint8_t> labels = maas::data::parse_idx_labels(data, size, "fuzz");
    (void)labels;
  } catch (const maas::Error&) {
  }
  return 0;
}
