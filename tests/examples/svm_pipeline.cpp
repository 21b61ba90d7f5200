// svm_pipeline: examples/svm end to end, on a CSV file it writes (ctest
// "svm_pipeline").
//
//   svm_pipeline EXAMPLE WORKDIR
//
// The data: 200 rows of f0, f1, target, f2, f3 (the label in the middle, so
// --label is needed), f0, f2, f3 uniform in [-1, 1], f1 = 500 + 100 u with u
// uniform in [-1, 1] (a scale the example must standardise away), and target
// = 1 when 2 f0 - u + 0.5 f2 > 0.1, else 0 (f3 is noise): linearly
// separable with a margin, which a linear SVM must find on nearly all test
// rows; one that mixes up rows and labels, trains on 0/1 targets as if they
// were -1/+1 the wrong way round, or skips the standardisation stays lower.
//
// What it checks:
//   1. --label target --epochs 20 --json --save WORK/ck-{epoch}.h5: exit 0,
//      one JSON object per epoch with every key, test accuracy >= 0.95 after
//      epoch 20, a checkpoint per epoch; resumed from epoch 10 it repeats
//      epochs 11..20 exactly; a misspelled flag exits 2;
//   2. without --json: the report's summary lines, with precision, recall
//      and F1 of each class consistent with the accuracy printed;
//   3. errors, exit 1: labels other than 0 and 1; exit 2: --l2 -1.
// Runs take --threads 1, so that both runs add up in the same order.
#include <cstdio>
#include <regex>

#include "run_example.hpp"

using namespace example_test;

namespace {

void write_table(const fs::path& path, int rows) {
  Rng rng{20241129};
  std::string text = "f0,f1,target,f2,f3\n";
  char line[160];
  for (int i = 0; i < rows;) {
    const double f0 = 2 * rng.uniform01() - 1, u = 2 * rng.uniform01() - 1, f2 = 2 * rng.uniform01() - 1,
                 f3 = 2 * rng.uniform01() - 1;
    const double s = 2 * f0 - u + 0.5 * f2;
    if (s > -0.1 && s < 0.3) continue;  // a margin around the boundary 0.1
    const int target = s > 0.1 ? 1 : 0;
    std::snprintf(line, sizeof line, "%.6f,%.4f,%d,%.6f,%.6f\n", f0, 500 + 100 * u, target, f2, f3);
    text += line;
    ++i;
  }
  write_bytes(path, text);
}

int pipeline(const std::string& example, const fs::path& work) {
  fs::create_directories(work / "table");
  fs::create_directories(work / "bad");
  for (int k = 1; k <= 20; ++k) fs::remove(work / ("ck-" + std::to_string(k) + ".h5"));
  write_table(work / "table" / "rows.csv", 200);
  write_bytes(work / "bad" / "labels.csv", "a,b\n1,0\n2,1\n3,-1\n4,0\n5,1\n");
  const std::string args = "--data " + quoted((work / "table").string()) +
                           " --label target --epochs 20 --batch 16 --lr 0.01 --threads 1 --seed 3 --json";

  // 1. From scratch with checkpoints; resumed after epoch 10; a typo.
  const Run full = run(example, args + " --save " + quoted((work / "ck-{epoch}.h5").string()), work, "full");
  if (full.epochs.size() == 20) {
    const double acc = full.epochs.back().value("test_acc", 0.0);
    check(acc >= 0.95, "test accuracy after 20 epochs " + std::to_string(acc) + " >= 0.95");
  }
  check_common(example, args, work, full, 20, 10);

  // 2. The report a person reads: accuracy, and per class precision, recall, F1.
  const Run plain = run(example, "--data " + quoted((work / "table" / "rows.csv").string()) +
                                     " --label 2 --epochs 20 --threads 1 --l2 0.001",
                        work, "plain");
  check(plain.status == 0, "without --json it exits 0");
  check(contains(plain.out, "200 samples, 4 features, label 'target'; 160 train, 40 test; l2 0.001 (C = 6.25)"),
        "it describes the table, the split and C = 1 / (l2 n)");
  std::smatch m;
  const bool has_acc = std::regex_search(plain.out, m, std::regex(R"(test accuracy: ([0-9.]+)% \((\d+) of 40\))"));
  check(has_acc, "it prints the test accuracy with the count of 40");
  const std::regex cls(R"(class (\d): precision ([0-9.]+), recall ([0-9.]+), F1 ([0-9.]+))");
  int classes = 0;
  for (auto it = std::sregex_iterator(plain.out.begin(), plain.out.end(), cls); it != std::sregex_iterator(); ++it) {
    const double p = std::stod((*it)[2]), r = std::stod((*it)[3]), f1 = std::stod((*it)[4]);
    check(p >= 0.9 && r >= 0.9, "class " + (*it)[1].str() + ": precision and recall >= 0.9");
    check(std::abs(f1 - 2 * p * r / (p + r)) < 1e-3, "class " + (*it)[1].str() + ": F1 is their harmonic mean");
    ++classes;
  }
  check(classes == 2, "it prints precision, recall and F1 for both classes");

  // 3. Errors.
  const Run labels = run(example, "--data " + quoted((work / "bad").string()), work, "labels");
  check(labels.status == 1 && contains(labels.err, "the label column 'b' holds -1 in data row 3"),
        "a label other than 0 and 1 exits 1, naming the row (labels are 0/1 in the file, -1/+1 inside)");
  const Run l2 = run(example, "--data " + quoted((work / "table").string()) + " --l2 -1", work, "l2");
  check(l2.status == 2 && contains(l2.err, "--l2 expects a number in [0, 1000], got '-1'"), "--l2 -1 exits 2");

  return verdict("svm");
}

}  // namespace

int main(int argc, char** argv) {
  return pipeline_main(argc, argv, "svm", pipeline);
}
