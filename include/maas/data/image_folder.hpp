// maas/data/image_folder.hpp: a directory of images, one sub-directory per class.
//
// Example:
//   pets/cat/001.jpg  pets/cat/002.png  pets/dog/a.bmp ...
//   maas::data::ImageDataset pets = maas::data::load_image_folder("pets", {64, 64, 3});
//   pets.class_names();   // {"cat", "dog"}: sorted folder names, label = position
//   pets.sample_shape();  // {3, 64, 64}
//
// Each image (PNG, JPEG, BMP; decoded by stb_image) is converted to
// the requested channels (colour to grey by luminance, 0.299 R + 0.587 G +
// 0.114 B in stb's integer form; grey to colour by repeating; alpha dropped),
// resized to height x width with an antialiased bilinear filter (a triangle
// widened by the scale factor when shrinking, as PIL's BILINEAR), and stored
// as uint8 CHW. Images are decoded in parallel (OpenMP); labels follow the
// sorted folder names, samples the sorted file names within each folder.
// Other files, hidden ones and files directly in `dir` are ignored.
//
// Errors (maas::Error naming the file or folder): a missing directory, no
// class folders, a class folder without images, an image stb cannot decode
// (with stb's reason), an image over 2^26 pixels, a requested size beyond the
// limits below, a data set too large for memory.
//
// What this file is not: no aspect-preserving crop, no lazy loading (every
// image is decoded once, up front).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "maas/data/loader.hpp"

namespace maas::data {

// The decoder's limits, for the images read and the size asked for alike.
constexpr int64_t kMaxImageSide = int64_t{1} << 16;    // pixels per side
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;  // height x width

struct ImageFolderOptions {
  int64_t height = 0;    // in [1, kMaxImageSide]
  int64_t width = 0;     // in [1, kMaxImageSide], height * width <= kMaxImagePixels
  int64_t channels = 3;  // 1 (grey) or 3 (RGB)
};

// Throws maas::Error, starting with `who`, unless `options` keep to the
// limits above (checked before anything of that size is allocated).
void check_image_options(const ImageFolderOptions& options, const std::string& who);

// Decodes one image held in memory to options.channels x height x width
// uint8 CHW; `name` (a file name) starts the errors.
std::vector<uint8_t> decode_image(const uint8_t* data, size_t size, const ImageFolderOptions& options,
                                  const std::string& name = "<memory>");
// The same from a file.
std::vector<uint8_t> load_image(const std::string& path, const ImageFolderOptions& options);

// Resizes an HWC uint8 image (channels interleaved) to out_h x out_w, CHW.
std::vector<uint8_t> resize_image(const uint8_t* hwc, int64_t height, int64_t width, int64_t channels,
                                  int64_t out_height, int64_t out_width);

ImageDataset load_image_folder(const std::string& dir, const ImageFolderOptions& options);

}  // namespace maas::data
