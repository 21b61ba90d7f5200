// The training report rendered by a real browser: trains a small classifier
// for 2 epochs with a ReportCallback, has headless Chromium take a
// screenshot of the page, and checks that the plot areas hold pixels of
// every series' colour (training, validation, test, learning rate, speed).
// Before the browser, when a python3 is on PATH, its xml.etree parses the
// page: a second, independent check that it is well-formed XML.
// Exit 0 on success, 1 on failure, 77 (skipped) when no chromium is
// installed (cmake/install-deps.sh --tests installs Debian's).
//
//   report_browser WORK_DIR
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "maas/data/image_folder.hpp"
#include "maas/maas.hpp"
#include "maas/report.hpp"

using namespace maas;

namespace {

// The first of `names` on PATH, or "".
std::string find_program(std::initializer_list<const char*> names) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t b = 0;
  while (b <= dirs.size()) {
    const size_t e = std::min(dirs.find(':', b), dirs.size());
    const std::string dir = dirs.substr(b, e - b);
    for (const char* name : names) {
      const std::string p = (dir.empty() ? "." : dir) + "/" + name;
      struct stat st {};
      if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXUSR)) return p;
    }
    b = e + 1;
  }
  return "";
}

// Width and height from a PNG's IHDR chunk (0, 0 when it is not a PNG).
std::pair<int64_t, int64_t> png_size(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char h[24] = {};
  f.read(reinterpret_cast<char*>(h), sizeof h);
  if (!f || h[1] != 'P' || h[2] != 'N' || h[3] != 'G') return {0, 0};
  auto be32 = [&](int o) { return (int64_t{h[o]} << 24) | (int64_t{h[o + 1]} << 16) | (h[o + 2] << 8) | h[o + 3]; };
  return {be32(16), be32(20)};
}

struct Rgb {
  int r, g, b;
};
Rgb hex(const char* s) {
  unsigned v = 0;
  std::sscanf(s + 1, "%x", &v);
  return {static_cast<int>(v >> 16), static_cast<int>((v >> 8) & 255), static_cast<int>(v & 255)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path work = std::filesystem::absolute(argv[1]);
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  const std::string page = (work / "report.html").string(), shot = (work / "shot.png").string();

  try {
    // Three blobs in 4-D, 2 epochs, validation split and a test set.
    Generator gen(7);
    const int64_t n = 240;
    Tensor x = Tensor::randn({n, 4}, gen), y = Tensor::empty({n});
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = i % 3;
      y.at({i}) = static_cast<float>(c);
      x.at({i, c}) += 2.0f;
    }
    const data::TensorDataset all(x, y);
    manual_seed(1);
    nn::Sequential model({4});
    model.add(nn::Dense(16)).add(nn::ReLU()).add(nn::Dense(3));
    CrossEntropyLoss loss;
    optim::SGDOptions so;
    so.lr = 0.05f;
    optim::SGD sgd(model.parameters(), so);
    Trainer trainer(model, loss, sgd);
    ReportOptions ro;
    ro.test_data = &all;
    ro.class_names = {"first", "second", "third"};
    FitOptions o;
    o.epochs = 2;
    o.batch_size = 16;
    o.validation_split = 0.25;
    o.verbose = Verbose::Silent;
    o.callbacks = {std::make_shared<ReportCallback>(page, ro)};
    trainer.fit(all, o);
  } catch (const Error& e) {
    std::fprintf(stderr, "report_browser: training failed: %s\n", e.what());
    return 1;
  }

  const std::string python = find_program({"python3"});
  if (!python.empty()) {
    const std::string parse = "'" + python + "' -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' '" +
                              page + "'";
    if (std::system(parse.c_str()) != 0) {
      std::fprintf(stderr, "report_browser: python3's xml.etree cannot parse %s\n", page.c_str());
      return 1;
    }
    std::printf("report_browser: python3's xml.etree parses the page\n");
  }

  // Debian's "chromium", or "chromium-browser" elsewhere.
  const std::string chromium = find_program({"chromium", "chromium-browser"});
  if (chromium.empty()) {
    std::printf("report_browser: no chromium on PATH (apt-get install chromium): skipped\n");
    return 77;
  }
  // Bounded: a hung browser is killed after 60 s (and 5 s later for good).
  const int width = 1200, height = 1000;
  const std::string cmd = "HOME='" + work.string() + "' timeout -k 5 60 '" + chromium +
                          "' --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars "
                          "--no-first-run --force-device-scale-factor=1 --user-data-dir='" +
                          (work / "profile").string() + "' --window-size=" + std::to_string(width) + "," +
                          std::to_string(height) + " --screenshot='" + shot + "' 'file://" + page + "' > '" +
                          (work / "chromium.log").string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  const auto [w, h] = png_size(shot);
  if (w == 0) {
    std::fprintf(stderr, "report_browser: chromium (exit status %d) wrote no PNG; its output is in %s\n", rc,
                 (work / "chromium.log").string().c_str());
    return 1;
  }
  data::ImageFolderOptions io;
  io.height = h;
  io.width = w;
  io.channels = 3;
  const std::vector<uint8_t> img = data::load_image(shot, io);  // CHW, at its own size
  auto px = [&](int64_t yy, int64_t xx) {
    const size_t plane = static_cast<size_t>(w * h), at = static_cast<size_t>(yy * w + xx);
    return Rgb{img[at], img[plane + at], img[2 * plane + at]};
  };
  auto near = [](Rgb a, Rgb b, int tol) {
    return std::abs(a.r - b.r) <= tol && std::abs(a.g - b.g) <= tol && std::abs(a.b - b.b) <= tol;
  };

  // Not blank: a good share of the page is not white.
  int64_t ink = 0;
  for (int64_t yy = 0; yy < h; ++yy)
    for (int64_t xx = 0; xx < w; ++xx) ink += !near(px(yy, xx), {255, 255, 255}, 8);
  std::printf("report_browser: %lldx%lld screenshot, %.1f%% not white\n", static_cast<long long>(w),
              static_cast<long long>(h), 100.0 * static_cast<double>(ink) / static_cast<double>(w * h));
  bool ok = ink > w * h / 20;

  // Each series' colour, in a plot area: a pixel of that colour with the
  // plot background (#f4f6fa) within 4 pixels. The legends' swatches sit on
  // the white page, so they do not count.
  const Rgb background = hex("#f4f6fa");
  const std::vector<std::pair<const char*, const char*>> colours = {{"training", "#1f77b4"},
                                                                    {"validation", "#ff7f0e"},
                                                                    {"test", "#2ca02c"},
                                                                    {"learning rate", "#9467bd"},
                                                                    {"speed", "#8c564b"}};
  for (const auto& [name, colour] : colours) {
    const Rgb c = hex(colour);
    int64_t in_plot = 0;
    for (int64_t yy = 4; yy < h - 4; ++yy)
      for (int64_t xx = 4; xx < w - 4; ++xx) {
        if (!near(px(yy, xx), c, 10)) continue;
        bool on_plot = false;
        for (int64_t dy = -4; dy <= 4 && !on_plot; ++dy)
          for (int64_t dx = -4; dx <= 4 && !on_plot; ++dx) on_plot = near(px(yy + dy, xx + dx), background, 1);
        in_plot += on_plot;
      }
    std::printf("  %-14s %s: %lld pixels in a plot area\n", name, colour, static_cast<long long>(in_plot));
    if (in_plot < 20) {
      std::fprintf(stderr, "report_browser: the %s series (%s) is not drawn in any plot area of %s\n", name, colour,
                   shot.c_str());
      ok = false;
    }
  }
  return ok ? 0 : 1;
}
