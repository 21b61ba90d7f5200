// mnist_pipeline: examples/mnist_mlp or examples/mnist_cnn end to end, on
// IDX files it writes (ctests "mnist_mlp_pipeline", "mnist_cnn_pipeline").
//
//   mnist_pipeline EXAMPLE WORKDIR [EXTRA_FLAGS]
//
// EXTRA_FLAGS go to every training run (mnist_cnn's test passes --bn, so
// that BatchNorm's statistics and Dropout's generators go through the
// checkpoint too).
//
// The data: 28x28 images, 300 train and 100 test, with random labels; an
// image of class c is noise in [0, 100] with a brighter bar (rows 2c + 4 and
// 2c + 5, values 120..230) across it. The model must tell nearly all of them
// apart after two short epochs; a pipeline that mixes up images and labels
// stays near chance (10%).
//
// What it checks:
//   1. --epochs 2 --json --save WORK/ck-{epoch}.h5: exit 0, one JSON object
//      per epoch with every key, test accuracy >= 0.9 after epoch 2, a
//      checkpoint per epoch;
//   2. --resume WORK/ck-1.h5: epoch 2 only, with the same losses and
//      accuracies as run 1 (so the Dropout generators were restored too);
//   3. --epoch 5: exit 2, "unknown option '--epoch' (did you mean --epochs?)";
//      numbers out of a flag's range exit 2;
//   4. no data: exit 1, naming the directory;
//   5. --epochs 1 then --resume --epochs 2: epoch 2 trains at the 2-epoch
//      schedule's lr (not 0) and equals run 1's epoch 2; resuming the final
//      epoch's checkpoint is an error;
//   6. --report WORK/report.html (with run 1): the page says the 2 epochs
//      finished and holds a 10 x 10 confusion matrix;
//   7. mnist_cnn only (also on 2 ranks): --quantize WORK/int8.h5 writes the
//      int8 model and reports its accuracy next to fp32's; an unknown
//      --calibration-method exits 1.
// Runs take --threads 1, so that both runs add up in the same order.
#include <cstdio>

#include <cstdlib>

#include "run_example.hpp"

using namespace example_test;

namespace {

constexpr int kSide = 28;

void put_be32(std::string& s, uint32_t x) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((x >> shift) & 0xFF));
}

// PREFIX-images-idx3-ubyte and PREFIX-labels-idx1-ubyte of n samples.
void write_idx(const fs::path& dir, const std::string& prefix, int n, Rng& rng) {
  std::string images, labels;
  images += std::string("\0\0\x08\x03", 4);
  put_be32(images, static_cast<uint32_t>(n));
  put_be32(images, kSide);
  put_be32(images, kSide);
  labels += std::string("\0\0\x08\x01", 4);
  put_be32(labels, static_cast<uint32_t>(n));
  for (int i = 0; i < n; ++i) {
    const int c = rng.uniform(0, 9);
    labels.push_back(static_cast<char>(c));
    for (int y = 0; y < kSide; ++y)
      for (int x = 0; x < kSide; ++x) {
        const bool bar = y == 2 * c + 4 || y == 2 * c + 5;
        images.push_back(static_cast<char>(bar ? rng.uniform(120, 230) : rng.uniform(0, 100)));
      }
  }
  write_bytes(dir / (prefix + "-images-idx3-ubyte"), images);
  write_bytes(dir / (prefix + "-labels-idx1-ubyte"), labels);
}

int pipeline(const std::string& example, const fs::path& work, const std::string& extra) {
  const fs::path data = work / "mnist";
  fs::create_directories(data);
  for (const char* stale : {"ck-1.h5", "ck-2.h5", "short-1.h5"}) fs::remove(work / stale);
  Rng rng{20240608};
  write_idx(data, "train", 300, rng);
  write_idx(data, "t10k", 100, rng);
  const std::string args =
      "--data " + quoted(data.string()) + " --epochs 2 --batch 16 --threads 1 --seed 7 --json" + extra;

  // 1-3. From scratch with checkpoints; resumed after epoch 1; a typo.
  const fs::path report = work / "report.html";
  fs::remove(report);
  const Run full = run(example,
                       args + " --save " + quoted((work / "ck-{epoch}.h5").string()) + " --report " +
                           quoted(report.string()),
                       work, "full");
  if (full.epochs.size() == 2) {
    const double acc = full.epochs.back().value("test_acc", 0.0);
    check(acc >= 0.9, "test accuracy after 2 epochs " + std::to_string(acc) + " >= 0.9");
  }
  check_common(example, args, work, full, 2, 1);

  // 5. --epochs is the final epoch (Keras): a 1-epoch run resumed with
  // --epochs 2 trains epoch 2 with the lr of the 2-epoch schedule (mnist_cnn's
  // cosine had ended at lr 0 and was restored so), and then repeats the
  // uninterrupted run's epoch 2 exactly (epoch 1's lr is the same in both).
  const Run short_run = run(example, args + " --epochs 1 --save " + quoted((work / "short-{epoch}.h5").string()),
                            work, "short");
  check(short_run.status == 0 && short_run.epochs.size() == 1, "a 1-epoch run with --save exits 0");
  const Run longer = run(example, args + " --resume " + quoted((work / "short-1.h5").string()), work, "longer");
  check(longer.status == 0 && longer.epochs.size() == 1 && longer.epochs[0].value("epoch", 0) == 2,
        "resumed with --epochs 2, it trains epoch 2 only");
  if (longer.epochs.size() == 1 && full.epochs.size() == 2) {
    const double lr = longer.epochs[0].value("lr", -1.0), want = full.epochs[1].value("lr", -2.0);
    check(lr > 0 && lr == want, "epoch 2 trains at lr " + std::to_string(lr) + ", the 2-epoch run's " +
                                    std::to_string(want) + ", not 0");
    for (const char* key : {"train_loss", "test_loss", "test_acc"})
      check(longer.epochs[0].value(key, -1.0) == full.epochs[1].value(key, -2.0),
            std::string("and its ") + key + " equals the uninterrupted run's");
  }
  const Run done = run(example, args + " --resume " + quoted((work / "ck-2.h5").string()), work, "done");
  check(done.status == 1 && contains(done.err, "holds epoch 2 and --epochs 2 is the final epoch") &&
            contains(done.err, "pass --epochs 3 or more"),
        "resuming a checkpoint of the final epoch exits 1: nothing to train");

  // 4. No data.
  const Run missing = run(example, "--data " + quoted((work / "nowhere").string()), work, "missing");
  check(missing.status == 1 && contains(missing.err, "nowhere: no such directory"),
        "with no data it exits 1, naming the directory");

  // 5. The report of run 1.
  const std::string page = fs::exists(report) ? read_text(report) : std::string();
  size_t cells = 0;
  for (size_t at = page.find("class=\"cell\""); at != std::string::npos; at = page.find("class=\"cell\"", at + 1))
    ++cells;
  check(contains(page, "Epoch 2 of 2: finished") && cells == 100,
        "--report writes a finished page with a 10 x 10 confusion matrix (" + std::to_string(cells) + " cells)");

  const std::string name = fs::path(example).filename().string();
  // Under tests/dist/on_2_ranks.sh, the example it runs on 2 ranks.
  const char* dist_example = std::getenv("MAAS_DIST_EXAMPLE");
  const std::string runs = dist_example != nullptr ? fs::path(dist_example).filename().string() : name;
  // 7. mnist_cnn --quantize: the int8 model written, loadable, compared
  // (on 2 ranks: by rank 0 alone).
  if (runs == "mnist_cnn") {
    const fs::path q = work / "int8.h5";
    fs::remove(q);
    const Run quant = run(example, args + " --epochs 1 --calibration 50 --quantize " + quoted(q.string()), work, "quant");
    check(quant.status == 0 && fs::exists(q) && contains(quant.out, "int8: test accuracy") &&
              contains(quant.out, "int8 - fp32:") && contains(quant.err, "calibrating on 50 samples") &&
              contains(quant.err, "runs in fp32"),
          "--quantize writes the int8 model and reports its accuracy next to fp32's");
    // quantize()'s own comparison on the calibration images (BatchNorm
    // folded, Dropout left out): a few percent at most; a layer left in
    // training mode or a wrong scale gives tens of percent.
    const size_t at = quant.err.find("relative error ");
    const double rel = at == std::string::npos ? 100.0 : std::atof(quant.err.c_str() + at + 15);
    check(rel < 5.0, "int8 outputs within 5% of fp32's (relative error " + std::to_string(rel) + "%)");
    const Run bad = run(example, args + " --epochs 1 --quantize " + quoted(q.string()) + " --calibration-method mse",
                        work, "quant-bad");
    check(bad.status == 1 && contains(bad.err, "not one of minmax, percentile"),
          "an unknown calibration method exits 1, naming the accepted ones");
  }
  std::cout << name << (failures == 0 ? " pipeline: all checks passed" : " pipeline: some checks FAILED")
            << std::endl;
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s EXAMPLE WORKDIR [EXTRA_FLAGS]\n", argv[0]);
    return 2;
  }
  try {
    return pipeline(argv[1], argv[2], argc == 4 ? std::string(" ") + argv[3] : std::string());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_pipeline: %s\n", e.what());
    return 1;
  }
}
