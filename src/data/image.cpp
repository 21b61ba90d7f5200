// Image decoding (stb_image) and resizing for the image-folder loader.
//
// The only file that defines STB_IMAGE_IMPLEMENTATION. stb is compiled in
// here with internal linkage (STB_IMAGE_STATIC), only for the formats maas
// reads (PNG, JPEG, BMP) and only from memory, so nothing clashes with a
// user's own copy of stb and the fuzzer sees every byte go through
// decode_image(). Not PNM: stb 2.27 (Debian 12) overflows its heap buffer
// converting the channels of 16-bit PNM files (found by tests/fuzz/fuzz_image).
#include <algorithm>
#include <climits>
#include <cmath>
#include <memory>

#include "maas/data/image_folder.hpp"
#include "maas/error.hpp"

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS (1 << 16)  // = kMaxImageSide
#include <stb/stb_image.h>

namespace maas::data {

namespace {


// The taps of a 1-D resampling from `in` to `out` samples: output i is
// sum_k weight[i * stride + k] * input[first[i] + k]. A triangle (bilinear)
// filter, widened by the scale factor when shrinking so every input pixel
// contributes (antialiasing), as PIL's BILINEAR.
struct Taps {
  std::vector<int64_t> first;
  std::vector<float> weight;
  int64_t stride = 0;
};

Taps make_taps(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double radius = std::max(scale, 1.0);
  Taps t;
  t.stride = static_cast<int64_t>(std::ceil(radius)) * 2 + 1;
  t.first.resize(static_cast<size_t>(out));
  t.weight.assign(static_cast<size_t>(out * t.stride), 0.f);
  std::vector<double> w(static_cast<size_t>(t.stride));
  for (int64_t i = 0; i < out; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(center - radius)));
    const int64_t hi = std::min<int64_t>({in, static_cast<int64_t>(std::ceil(center + radius)), lo + t.stride});
    double sum = 0.0;
    for (int64_t x = lo; x < hi; ++x) {
      const double d = std::fabs((static_cast<double>(x) + 0.5 - center) / radius);
      w[static_cast<size_t>(x - lo)] = d < 1.0 ? 1.0 - d : 0.0;
      sum += w[static_cast<size_t>(x - lo)];
    }
    t.first[static_cast<size_t>(i)] = lo;
    float* dst = &t.weight[static_cast<size_t>(i * t.stride)];
    if (sum > 0.0) {
      for (int64_t x = lo; x < hi; ++x) dst[x - lo] = static_cast<float>(w[static_cast<size_t>(x - lo)] / sum);
    } else {  // cannot happen for in, out > 0; nearest as a safe fallback
      t.first[static_cast<size_t>(i)] = std::min<int64_t>(in - 1, static_cast<int64_t>(center));
      dst[0] = 1.f;
    }
  }
  return t;
}

std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r ? std::string(r) : std::string("unknown reason");
}

}  // namespace

void check_image_options(const ImageFolderOptions& o, const std::string& who) {
  // Each side is bounded before the product is formed: it cannot overflow.
  MAAS_CHECK(o.height > 0 && o.width > 0 && o.height <= kMaxImageSide && o.width <= kMaxImageSide &&
                 o.height * o.width <= kMaxImagePixels,
             who << ": image size " << o.height << " x " << o.width << " must be positive, at most " << kMaxImageSide
                 << " per side and " << kMaxImagePixels << " pixels in all");
  MAAS_CHECK(o.channels == 1 || o.channels == 3,
             who << ": channels " << o.channels << " must be 1 (grey) or 3 (RGB)");
}

std::vector<uint8_t> resize_image(const uint8_t* hwc, int64_t height, int64_t width, int64_t channels,
                                  int64_t out_height, int64_t out_width) {
  MAAS_CHECK(height > 0 && width > 0 && channels > 0 && out_height > 0 && out_width > 0,
             "resize_image: sizes " << height << " x " << width << " x " << channels << " -> " << out_height << " x "
                                    << out_width << " must be positive");
  const int64_t c = channels;
  std::vector<uint8_t> out(static_cast<size_t>(c * out_height * out_width));
  if (height == out_height && width == out_width) {
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x)
        for (int64_t ch = 0; ch < c; ++ch) out[static_cast<size_t>((ch * height + y) * width + x)] = hwc[(y * width + x) * c + ch];
    return out;
  }
  const Taps tx = make_taps(width, out_width);
  const Taps ty = make_taps(height, out_height);
  // Horizontal pass: [height][out_width][c] floats.
  std::vector<float> tmp(static_cast<size_t>(height * out_width * c), 0.f);
  for (int64_t y = 0; y < height; ++y)
    for (int64_t ox = 0; ox < out_width; ++ox) {
      const int64_t first = tx.first[static_cast<size_t>(ox)];
      const float* w = &tx.weight[static_cast<size_t>(ox * tx.stride)];
      float* dst = &tmp[static_cast<size_t>((y * out_width + ox) * c)];
      for (int64_t k = 0; k < tx.stride && first + k < width; ++k) {
        if (w[k] == 0.f) continue;
        const uint8_t* src = hwc + (y * width + first + k) * c;
        for (int64_t ch = 0; ch < c; ++ch) dst[ch] += w[k] * static_cast<float>(src[ch]);
      }
    }
  // Vertical pass, writing CHW bytes.
  std::vector<float> acc(static_cast<size_t>(out_width * c));
  for (int64_t oy = 0; oy < out_height; ++oy) {
    std::fill(acc.begin(), acc.end(), 0.f);
    const int64_t first = ty.first[static_cast<size_t>(oy)];
    const float* w = &ty.weight[static_cast<size_t>(oy * ty.stride)];
    for (int64_t k = 0; k < ty.stride && first + k < height; ++k) {
      if (w[k] == 0.f) continue;
      const float* src = &tmp[static_cast<size_t>((first + k) * out_width * c)];
      for (int64_t i = 0; i < out_width * c; ++i) acc[static_cast<size_t>(i)] += w[k] * src[i];
    }
    for (int64_t ox = 0; ox < out_width; ++ox)
      for (int64_t ch = 0; ch < c; ++ch) {
        const float v = std::round(acc[static_cast<size_t>(ox * c + ch)]);
        out[static_cast<size_t>((ch * out_height + oy) * out_width + ox)] =
            static_cast<uint8_t>(v < 0.f ? 0.f : (v > 255.f ? 255.f : v));
      }
  }
  return out;
}

std::vector<uint8_t> decode_image(const uint8_t* data, size_t size, const ImageFolderOptions& options,
                                  const std::string& name) {
  check_image_options(options, "decode_image");
  MAAS_CHECK(size > 0, "decode_image: " << name << ": the file is empty");
  MAAS_CHECK(size <= static_cast<size_t>(INT_MAX), "decode_image: " << name << ": " << size
                                                                    << " bytes is too large for stb_image");
  const int len = static_cast<int>(size);
  int w = 0, h = 0, comp = 0;
  MAAS_CHECK(stbi_info_from_memory(data, len, &w, &h, &comp),
             "decode_image: " << name << ": cannot decode image: " << stb_reason());
  MAAS_CHECK(w > 0 && h > 0 && static_cast<int64_t>(w) * h <= kMaxImagePixels,
             "decode_image: " << name << ": image of " << w << " x " << h << " pixels is over the limit of "
                              << kMaxImagePixels << " pixels");
  const int req = static_cast<int>(options.channels);
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(data, len, &w, &h, &comp, req),
                                               stbi_image_free);
  MAAS_CHECK(px != nullptr, "decode_image: " << name << ": cannot decode image: " << stb_reason());
  return resize_image(px.get(), h, w, options.channels, options.height, options.width);
}

std::vector<uint8_t> load_image(const std::string& path, const ImageFolderOptions& options) {
  check_image_options(options, "load_image");
  // stb_image reads at most INT_MAX bytes: reading stops past that.
  const auto limit = static_cast<size_t>(INT_MAX);
  const std::vector<uint8_t> bytes = read_file_bytes(path, "load_image", limit + 1);
  MAAS_CHECK(bytes.size() <= limit, "load_image: " << path << ": more than " << limit
                                                   << " bytes, too large for stb_image");
  return decode_image(bytes.data(), bytes.size(), options, path);
}

}  // namespace maas::data
