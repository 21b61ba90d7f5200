// tabular_binary_pipeline: examples/tabular_binary end to end, on a CSV file
// it writes (ctest "tabular_binary_pipeline").
//
//   tabular_binary_pipeline EXAMPLE WORKDIR
//
// The data: 200 rows of f0, f1, target, f2, f3 (the label in the middle, so
// --label is needed), f0, f2, f3 uniform in [-1, 1], f1 = 500 + 100 u with u
// uniform in [-1, 1] (a scale the example must standardise away), and target
// = 1 when 2 f0 - u + 0.5 f2 > 0, else 0 (f3 is noise). A linear boundary:
// the example's network must classify nearly all of the test rows; one that
// mixes up rows and labels or skips the standardisation stays far lower.
//
// What it checks:
//   1. --label target --epochs 20 --json --save WORK/ck-{epoch}.h5: exit 0,
//      one JSON object per epoch with every key, test accuracy >= 0.9 after
//      epoch 20, a checkpoint per epoch;
//   2. --resume WORK/ck-10.h5: epochs 11..20 with the same losses and
//      accuracies as run 1;
//   3. --epoch 5: exit 2, "unknown option '--epoch' (did you mean --epochs?)";
//   4. without --json, --data the file itself: the table's summary line and
//      "test accuracy: ";
//   5. errors, exit 1: no data (and how to provision it), a label column
//      that is not there, labels other than 0 and 1.
// Runs take --threads 1, so that both runs add up in the same order.
#include <cstdio>

#include "run_example.hpp"

using namespace example_test;

namespace {

void write_table(const fs::path& path, int rows) {
  Rng rng{20240607};
  std::string text = "f0,f1,target,f2,f3\n";
  char line[160];
  for (int i = 0; i < rows; ++i) {
    const double f0 = 2 * rng.uniform01() - 1, u = 2 * rng.uniform01() - 1, f2 = 2 * rng.uniform01() - 1,
                 f3 = 2 * rng.uniform01() - 1;
    const int target = 2 * f0 - u + 0.5 * f2 > 0 ? 1 : 0;
    std::snprintf(line, sizeof line, "%.6f,%.4f,%d,%.6f,%.6f\n", f0, 500 + 100 * u, target, f2, f3);
    text += line;
  }
  write_bytes(path, text);
}

int pipeline(const std::string& example, const fs::path& work) {
  fs::create_directories(work / "table");
  fs::create_directories(work / "bad");
  for (int k = 1; k <= 20; ++k) fs::remove(work / ("ck-" + std::to_string(k) + ".h5"));
  write_table(work / "table" / "rows.csv", 200);
  write_bytes(work / "bad" / "labels.csv", "a,b\n1,0\n2,1\n3,2\n4,0\n5,1\n");
  const std::string args = "--data " + quoted((work / "table").string()) +
                           " --label target --epochs 20 --batch 16 --lr 0.01 --threads 1 --seed 3 --json";

  // 1-3. From scratch with checkpoints; resumed after epoch 10; a typo.
  const Run full = run(example, args + " --save " + quoted((work / "ck-{epoch}.h5").string()), work, "full");
  if (full.epochs.size() == 20) {
    const double acc = full.epochs.back().value("test_acc", 0.0);
    check(acc >= 0.9, "test accuracy after 20 epochs " + std::to_string(acc) + " >= 0.9");
  }
  check_common(example, args, work, full, 20, 10);

  // 4. The report a person reads.
  const Run plain =
      run(example, "--data " + quoted((work / "table" / "rows.csv").string()) + " --label 2 --epochs 2", work, "plain");
  check(plain.status == 0, "without --json it exits 0");
  check(contains(plain.out, "200 samples, 4 features, label 'target'"), "it describes the table");
  check(contains(plain.out, "test accuracy: "), "it prints the test accuracy");

  // 5. Errors.
  const Run missing = run(example, "--data " + quoted((work / "nowhere").string()), work, "missing");
  check(missing.status == 1 && contains(missing.err, "data/provision.sh breast-cancer"),
        "with no data it exits 1 and says how to provision the default data set");
  const Run no_label = run(example, "--data " + quoted((work / "table").string()) + " --label nope", work, "no_label");
  check(no_label.status == 1 && contains(no_label.err, "no label column 'nope' in the header"),
        "a missing label column exits 1, naming it");
  const Run three = run(example, "--data " + quoted((work / "bad").string()), work, "three");
  check(three.status == 1 && contains(three.err, "the label column 'b' holds 2 in data row 3"),
        "a label other than 0 and 1 exits 1, naming the row");

  return verdict("tabular_binary");
}

}  // namespace

int main(int argc, char** argv) {
  return pipeline_main(argc, argv, "tabular_binary", pipeline);
}
