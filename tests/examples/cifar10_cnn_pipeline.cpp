// cifar10_cnn_pipeline: examples/cifar10_cnn end to end, on files in
// CIFAR-10's binary format that it writes (ctest "cifar10_cnn_pipeline");
// examples/resnet too, with its EXTRA flags (ctest "resnet_pipeline").
//
//   cifar10_cnn_pipeline EXAMPLE WORKDIR [EXTRA...]   the test: writes the files under WORKDIR and runs
//                                                     EXAMPLE, each run with the EXTRA flags
//   cifar10_cnn_pipeline --write DIR N     only writes data_batch_1..5.bin and test_batch.bin, N images each
//
// The data: 3073-byte records (label byte, then 1024 red, 1024 green and 1024
// blue bytes) with random labels. Class c is one of five colours (c / 2)
// with stripes 2 pixels wide, +-70 about the colour, that run across (c
// even) or down (c odd), plus uniform noise of +-30 per pixel and channel.
// Telling the classes apart needs both the colour and the orientation, and
// random crops and flips keep both, so the example's network, trained
// through its augmentation and normalisation, must get nearly all of them;
// a pipeline that mixes labels up, misreads the records or breaks the
// gradients stays near chance (10%).
//
// What it checks, with 100 images per file (500 train, 100 test):
//   1. --epochs 2 --json --save WORK/ck-{epoch}.h5: exit 0, one JSON object
//      per epoch with every key, test accuracy >= 0.9 after epoch 2, a
//      checkpoint per epoch;
//   2. --resume WORK/ck-1.h5: epoch 2 only, with the same losses and
//      accuracies as run 1 (the schedule, the Dropout generators and the
//      augmentation's position were restored);
//   3. --epoch 5: exit 2, "unknown option '--epoch' (did you mean --epochs?)";
//   4. no data: exit 1, saying where to get CIFAR-10;
//   5. resnet only: --quantize WORK/int8.h5 writes the int8 model and reports
//      its accuracy next to fp32's, within a few percent of fp32's outputs.
// Runs take --threads 1: both runs use the same thread count, and a test
// that shares the machine with others (ctest -j) runs fastest on one thread.
//
// What this is not: a test of the CIFAR-10 reader's corner cases (see
// tests/data/test_cifar10.cpp) or of the accuracy on real CIFAR-10.
#include <cstdio>
#include <cstdlib>

#include "run_example.hpp"

using namespace example_test;

namespace {

constexpr int kSide = 32;

// One record of class `label` (see the top).
void put_record(std::string& out, int label, Rng& rng) {
  static const int colours[5][3] = {{200, 40, 40}, {40, 200, 40}, {40, 40, 200}, {200, 200, 40}, {40, 200, 200}};
  const int* rgb = colours[label / 2];
  const bool across = label % 2 == 0;
  const int phase = rng.uniform(0, 3);  // where the stripes start
  out.push_back(static_cast<char>(label));
  for (int ch = 0; ch < 3; ++ch)
    for (int y = 0; y < kSide; ++y)
      for (int x = 0; x < kSide; ++x) {
        const int t = ((across ? y : x) + phase) % 4;
        const int v = rgb[ch] + (t < 2 ? 70 : -70) + rng.uniform(-30, 30);
        out.push_back(static_cast<char>(v < 0 ? 0 : v > 255 ? 255 : v));
      }
}

// data_batch_1..5.bin and test_batch.bin in `dir`, `per_file` records each.
void write_cifar10(const fs::path& dir, int per_file) {
  fs::create_directories(dir);
  Rng rng{20240601};
  for (int k = 1; k <= 6; ++k) {
    std::string bytes;
    bytes.reserve(static_cast<size_t>(per_file) * (1 + 3 * kSide * kSide));
    for (int i = 0; i < per_file; ++i) put_record(bytes, rng.uniform(0, 9), rng);
    write_bytes(dir / (k <= 5 ? "data_batch_" + std::to_string(k) + ".bin" : "test_batch.bin"), bytes);
  }
}

int pipeline(const std::string& example, const fs::path& work, const std::string& extra) {
  const fs::path data = work / "cifar";
  for (const char* stale : {"ck-1.h5", "ck-2.h5"}) fs::remove(work / stale);
  write_cifar10(data, 100);
  const std::string args = "--data " + quoted(data.string()) + " --epochs 2 --threads 1 --seed 7 --json" + extra;

  const Run full = run(example, args + " --save " + quoted((work / "ck-{epoch}.h5").string()), work, "full");
  if (full.epochs.size() == 2) {
    const double acc = full.epochs[1].value("test_acc", 0.0);
    check(acc >= 0.9, "test accuracy after 2 epochs " + std::to_string(acc) + " >= 0.9");
  }
  check_common(example, args, work, full, 2, 1);

  const Run missing = run(example, "--data " + quoted((work / "nowhere").string()) + " --epochs 1", work, "missing");
  check(missing.status == 1, "with no data it exits 1");
  check(contains(missing.err, "nowhere") && contains(missing.err, "cifar-10-binary.tar.gz"),
        "and names the directory and says where to get CIFAR-10");

  // 5. resnet only: --quantize WORK/int8.h5 quantizes the functional model
  // (BatchNorms folded, the Add and the pooling in fp32), writes it and
  // reports its accuracy next to fp32's.
  if (fs::path(example).filename() == "resnet") {
    const fs::path q = work / "int8.h5";
    fs::remove(q);
    const Run quant = run(example, args + " --epochs 1 --calibration 50 --quantize " + quoted(q.string()), work, "quant");
    check(quant.status == 0 && fs::exists(q) && contains(quant.out, "int8: test accuracy") &&
              contains(quant.out, "int8 - fp32:") && contains(quant.err, "calibrating on 50 samples") &&
              contains(quant.err, "(Add) runs in fp32") && contains(quant.err, "merged into it: batch_normalization"),
          "--quantize writes the int8 ResNet and reports its accuracy next to fp32's");
    // quantize()'s own comparison on the calibration images: a few percent
    // at most; a BatchNorm folded wrongly or a wrong scale gives tens of percent.
    const size_t at = quant.err.find("relative error ");
    const double rel = at == std::string::npos ? 100.0 : std::atof(quant.err.c_str() + at + 15);
    check(rel < 5.0, "int8 outputs within 5% of fp32's (relative error " + std::to_string(rel) + "%)");
  }

  std::printf("%s pipeline: %s\n", fs::path(example).filename().c_str(),
              failures == 0 ? "all checks passed" : "some checks FAILED");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 4 && std::string(argv[1]) == "--write") {
      const int n = std::atoi(argv[3]);
      if (n <= 0) throw std::runtime_error(std::string("--write: N must be > 0, got ") + argv[3]);
      write_cifar10(argv[2], n);
      std::printf("wrote 6 files of %d images to %s\n", n, argv[2]);
      return 0;
    }
    if (argc < 3) {
      std::fprintf(stderr,
                   "usage: %s EXAMPLE WORKDIR [EXTRA...]   (runs the test)\n"
                   "       %s --write DIR N      (writes CIFAR-format files of N images each)\n",
                   argv[0], argv[0]);
      return 2;
    }
    fs::create_directories(argv[2]);
    std::string extra;
    for (int i = 3; i < argc; ++i) extra += " " + quoted(argv[i]);
    return pipeline(argv[1], argv[2], extra);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cifar10_cnn_pipeline: %s\n", e.what());
    return 1;
  }
}
