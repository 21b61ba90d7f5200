// libFuzzer target: arbitrary bytes as an image file (PNG, JPEG, BMP),
// decoded by stb_image, converted and resized by decode_image(). The first
// byte picks the output: 1 or 3 channels and a size from 1x1 to 40x40, so
// both shrinking and enlarging are exercised; the rest is the file.
// Build and run as fuzz_idx.cpp describes (target fuzz_image); seed the
// corpus with a few small images.
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "maas/data/image_folder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  maas::data::ImageFolderOptions options;
  options.channels = (data[0] & 1) ? 3 : 1;
  options.height = 1 + (data[0] >> 1) % 40;
  options.width = 1 + (data[0] >> 3) % 40;
  try {
    const std::vector<uint8_t> img = maas::data::decode_image(data + 1, size - 1, options, "fuzz");
    if (img.size() != static_cast<size_t>(options.channels * options.height * options.width)) __builtin_trap();
  } catch (const maas::Error&) {
  }
  return 0;
}
