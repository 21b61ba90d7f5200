// load_image_folder: walks class folders and decodes their images (in parallel).
#include "maas/data/image_folder.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <new>

#include "maas/error.hpp"

namespace maas::data {

namespace {

bool is_image_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

bool is_hidden(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// The entries of `dir`, as maas::Error rather than filesystem_error on failure.
std::vector<std::filesystem::directory_entry> list_dir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::directory_entry> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(*it);
  MAAS_CHECK(!ec, "load_image_folder: " << dir.string() << ": cannot list: " << ec.message());
  return out;
}

}  // namespace

ImageDataset load_image_folder(const std::string& dir, const ImageFolderOptions& options) {
  namespace fs = std::filesystem;
  check_image_options(options, "load_image_folder");
  std::error_code ec;
  MAAS_CHECK(fs::is_directory(dir, ec), "load_image_folder: " << dir << ": no such directory");

  std::vector<fs::path> classes;
  for (const fs::directory_entry& e : list_dir(dir))
    if (e.is_directory(ec) && !is_hidden(e.path())) classes.push_back(e.path());
  std::sort(classes.begin(), classes.end());
  MAAS_CHECK(!classes.empty(), "load_image_folder: " << dir
                                                     << ": no class folders (expected one sub-folder of images per "
                                                        "class, e.g. "
                                                     << dir << "/cat/001.png)");

  std::vector<std::string> names;
  std::vector<std::string> files;
  std::vector<int64_t> labels;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> found;
    for (const fs::directory_entry& e : list_dir(classes[c]))
      if (e.is_regular_file(ec) && !is_hidden(e.path()) && is_image_file(e.path())) found.push_back(e.path().string());
    MAAS_CHECK(!found.empty(), "load_image_folder: class folder " << classes[c].string()
                                                                  << " holds no images (.png, .jpg, .jpeg, .bmp)");
    std::sort(found.begin(), found.end());
    names.push_back(classes[c].filename().string());
    for (std::string& f : found) {
      files.push_back(std::move(f));
      labels.push_back(static_cast<int64_t>(c));
    }
  }

  const auto n = static_cast<int64_t>(files.size());
  const int64_t row = options.channels * options.height * options.width;  // <= 3 * 2^26: no overflow
  MAAS_CHECK(n <= static_cast<int64_t>(PTRDIFF_MAX) / row,
             "load_image_folder: " << dir << ": " << n << " images of " << options.channels << " x " << options.height
                                   << " x " << options.width << " bytes do not fit in memory");
  std::vector<uint8_t> pixels;
  try {
    pixels.resize(static_cast<size_t>(n * row));
  } catch (const std::bad_alloc&) {
    MAAS_FAIL("load_image_folder: " << dir << ": not enough memory for " << n << " images of " << options.channels
                                    << " x " << options.height << " x " << options.width << " ("
                                    << n * row << " bytes); ask for a smaller image size");
  }
  // Exceptions cannot leave an OpenMP region: keep each file's error and
  // report the first in file order, so the message does not depend on timing.
  std::vector<std::string> errors(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < n; ++i) {
    try {
      const std::vector<uint8_t> img = load_image(files[static_cast<size_t>(i)], options);
      std::copy(img.begin(), img.end(), pixels.begin() + i * row);
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(i)] = e.what();
    }
  }
  for (const std::string& e : errors) MAAS_CHECK(e.empty(), "load_image_folder: " << e);
  return ImageDataset(std::move(pixels), std::move(labels), {options.channels, options.height, options.width},
                      std::move(names));
}

}  // namespace maas::data
