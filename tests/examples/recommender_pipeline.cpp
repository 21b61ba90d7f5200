// recommender_pipeline: examples/recommender end to end, on a ratings file
// it writes (ctest "recommender_pipeline").
//
//   recommender_pipeline EXAMPLE WORKDIR
//
// The data: 300 users and 200 items with planted rank-3 factors p_u, q_i
// (entries N(0, 0.6^2)), biases b_u, b_i (N(0, 0.3^2)) and noise e
// (N(0, 0.2^2)); each user rates each item with probability 1/4, rating =
// 3 + b_u + b_i + p_u . q_i + e (about 15,000 ratings, written to 3
// decimals in u.data's format, shuffled, with ids that are neither
// consecutive nor starting at 0). The best any model can do on held-out
// ratings is the noise, RMSE 0.2; the biases alone leave the factors'
// part, about 0.65, unexplained.
//
// Its --l2 is 0.01, not MovieLens' 0.1: with 40 ratings a user and noise
// of 0.2, the stronger prior shrinks the factors (test RMSE 0.30).
//
// What it checks:
//   1. --json --factors 3 --l2 0.01: one JSON object per epoch, then the results: the
//      factorisation's test RMSE within 25% of the planted noise (< 0.25),
//      and below the global mean's, the biases' and PureSVD's, which are in
//      their expected order (global mean > biases; PureSVD below the biases
//      on such a low-rank matrix);
//   2. the same run again gives the same numbers (seeded split and fit);
//   3. the report a person reads, without --json;
//   4. errors, each naming the file and line: a rating out of range, a
//      malformed id, a missing field, a duplicate pair, an empty line; a
//      missing file points to the README; --save is refused (exit 2).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "run_example.hpp"

using namespace example_test;

namespace {

double normal(Rng& rng) {  // Box-Muller
  const double u1 = std::max(rng.uniform01(), 1e-12), u2 = rng.uniform01();
  return std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

void write_ratings(const fs::path& path) {
  constexpr int kUsers = 300, kItems = 200, kRank = 3;
  Rng rng{424242};
  std::vector<double> p(kUsers * kRank), q(kItems * kRank), bu(kUsers), bi(kItems);
  for (double& v : p) v = 0.6 * normal(rng);
  for (double& v : q) v = 0.6 * normal(rng);
  for (double& v : bu) v = 0.3 * normal(rng);
  for (double& v : bi) v = 0.3 * normal(rng);
  std::vector<std::string> lines;
  char line[128];
  for (int u = 0; u < kUsers; ++u)
    for (int i = 0; i < kItems; ++i) {
      if (rng.uniform01() >= 0.25) continue;
      double r = 3 + bu[u] + bi[i] + 0.2 * normal(rng);
      for (int k = 0; k < kRank; ++k) r += p[u * kRank + k] * q[i * kRank + k];
      r = std::min(5.0, std::max(1.0, r));  // [1, 5]: practically never reached
      std::snprintf(line, sizeof line, "%d\t%d\t%.3f\t%d\n", 7 * u + 3, 1000 + 13 * i, r, 881250949 + u * kItems + i);
      lines.push_back(line);
    }
  for (size_t k = lines.size() - 1; k > 0; --k) std::swap(lines[k], lines[rng.next() % (k + 1)]);
  std::string text;
  for (const std::string& l : lines) text += l;
  write_bytes(path, text);
}

int pipeline(const std::string& example, const fs::path& work) {
  fs::create_directories(work / "ml");
  write_ratings(work / "ml" / "u.data");
  const std::string args = "--data " + quoted((work / "ml").string()) + " --factors 3 --l2 0.01 --threads 1 --seed 5";

  // 1. Recovery, and the baselines.
  const Run full = run(example, args + " --json", work, "full");
  check(full.status == 0, "the run exits 0");
  check(full.epochs.size() == 31, "it prints one JSON object per epoch (30) and the results");
  if (full.epochs.size() == 31) {
    const nlohmann::json& last = full.epochs[29];
    for (const char* key : {"epoch", "train_loss", "train_rmse", "test_loss", "test_rmse", "lr", "time_s"})
      check(last.contains(key) && last[key].is_number(), std::string("an epoch's JSON has ") + key);
    const nlohmann::json& res = full.epochs.back();
    const double mf = res.value("test_rmse", 9.0), mean = res.value("global_mean_rmse", 0.0),
                 bias = res.value("bias_rmse", 0.0), svd = res.value("pure_svd_rmse", 0.0);
    check(mf == last.value("test_rmse", -1.0), "the result is the last epoch's test RMSE");
    check(mf < 0.25, "the factorisation recovers the planted noise: test RMSE " + std::to_string(mf) + " < 0.25");
    check(mean > 0.7 && bias < mean && bias > 0.5, "global mean " + std::to_string(mean) + " > biases " +
                                                       std::to_string(bias) + " > 0.5 (the factors' part)");
    check(svd > 0 && svd < bias, "PureSVD " + std::to_string(svd) + " beats the biases on a low-rank matrix");
    check(mf < svd, "the factorisation beats PureSVD");
  }

  // 2. Seeded: the same numbers again.
  const Run again = run(example, args + " --json --epochs 3", work, "again");
  const Run again2 = run(example, args + " --json --epochs 3", work, "again2");
  auto without_time = [](std::vector<nlohmann::json> lines) {
    for (nlohmann::json& l : lines) l.erase("time_s");
    return lines;
  };
  check(again.status == 0 && again.epochs.size() == 4 && without_time(again.epochs) == without_time(again2.epochs),
        "two runs with the same seeds print the same numbers");
  if (full.epochs.size() == 31 && again.epochs.size() == 4)
    check(again.epochs[2].value("test_rmse", -1.0) == full.epochs[2].value("test_rmse", -2.0),
          "and the same epochs as a longer run");

  // 3. The report a person reads.
  const Run plain = run(example, args + " --epochs 2", work, "plain");
  check(plain.status == 0, "without --json it exits 0");
  check(contains(plain.out, "ratings of 200 items by 300 users") && contains(plain.out, "global mean") &&
            contains(plain.out, "user/item biases") && contains(plain.out, "PureSVD, rank 3") &&
            contains(plain.out, "matrix factorisation, k 3"),
        "it describes the data and prints the four RMSEs");

  // 4. Errors name the file and the line.
  struct Bad {
    std::string text, expected;
  };
  const Bad bad[] = {
      {"1\t2\t4\t100\n1\t3\t7\t100\n", "bad.data:2: rating '7' is not a number in [0.5, 5]"},
      {"1\t2\t4\t100\nx\t3\t4\t100\n", "bad.data:2: user id 'x' is not a whole number"},
      {"1\t2\t4\t100\n1\t-3\t4\t100\n", "bad.data:2: item id '-3' is not a whole number"},
      {"1\t2\t4\t100\n1\t3\t4\n", "bad.data:2: 3 tab-separated fields"},
      {"1\t2\t4\t100\n1\t3\t4\t100\t9\n", "bad.data:2: more than 4 tab-separated fields"},
      {"1\t2\t4\t100\n1\t3\t4\t100\n1\t2\t5\t101\n", "bad.data:3: the user rates the same item again (first at line 1)"},
      {"1\t2\t4\t100\n\n1\t3\t4\t100\n", "bad.data:2: an empty line"},
      {"1\t2\tnan\t100\n", "bad.data:1: rating 'nan' is not a number"},
      {"1\t2\t4\t-5\n", "bad.data:1: timestamp '-5' is not a whole number"},
  };
  int k = 0;
  for (const Bad& b : bad) {
    write_bytes(work / "bad.data", b.text);
    const Run r = run(example, "--data " + quoted((work / "bad.data").string()), work, "bad" + std::to_string(k++));
    check(r.status == 1 && contains(r.err, b.expected), "exit 1 with: " + b.expected);
  }
  const Run missing = run(example, "--data " + quoted((work / "nowhere").string()), work, "missing");
  check(missing.status == 1 && contains(missing.err, "nowhere/u.data: no such file") == false &&
            contains(missing.err, "no such file (MovieLens 100k's u.data: see the README"),
        "a missing file exits 1 and points to the README");
  const Run save = run(example, args + " --save " + quoted((work / "m.h5").string()), work, "save");
  check(save.status == 2 && contains(save.err, "cannot hold"), "--save is refused with exit 2");

  return verdict("recommender");
}

}  // namespace

int main(int argc, char** argv) {
  return pipeline_main(argc, argv, "recommender", pipeline);
}
