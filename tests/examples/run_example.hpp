// What the example drivers under tests/examples/ share: running an example
// binary with its output captured, the JSON objects it prints, a counted
// check, and a seeded generator that gives the same data everywhere.
#pragma once

#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace example_test {

namespace fs = std::filesystem;

// SplitMix64: the same numbers on every platform.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int uniform(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1)); }
  double uniform01() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
};

inline std::string quoted(const std::string& s) {
  if (s.find('\'') != std::string::npos) throw std::runtime_error("a path with a quote: " + s);
  return "'" + s + "'";
}

inline std::string read_text(const fs::path& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

struct Run {
  int status = -1;  // the exit code, or -1 when it did not exit normally
  std::string out, err;
  std::vector<nlohmann::json> epochs;  // the stdout lines that start with '{'
};

// Runs `example args`, its stdout and stderr in WORKDIR/<tag>.out and .err.
inline Run run(const std::string& example, const std::string& args, const fs::path& work, const std::string& tag) {
  const fs::path out = work / (tag + ".out"), err = work / (tag + ".err");
  const std::string cmd = quoted(example) + " " + args + " > " + quoted(out.string()) + " 2> " + quoted(err.string());
  std::cout << "$ " << cmd << std::endl;
  const int raw = std::system(cmd.c_str());
  Run r;
  r.status = raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  r.out = read_text(out);
  r.err = read_text(err);
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') r.epochs.push_back(nlohmann::json::parse(line));
  std::cout << r.out << r.err;
  return r;
}

inline int failures = 0;

inline void check(bool ok, const std::string& what) {
  std::cout << (ok ? "ok: " : "FAILED: ") << what << std::endl;
  if (!ok) ++failures;
}

// The driver's verdict line, and its exit status (0 when every check passed).
inline int verdict(const std::string& driver) {
  std::cout << driver << (failures == 0 ? " pipeline: all checks passed" : " pipeline: some checks FAILED") << std::endl;
  return failures == 0 ? 0 : 1;
}

// main() of a driver taking EXAMPLE WORKDIR: runs `pipeline`, exit 2 on a
// bad command line, 1 on an exception or a failed check.
template <class Pipeline>
int pipeline_main(int argc, char** argv, const std::string& driver, Pipeline pipeline) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s EXAMPLE WORKDIR\n", argv[0]);
    return 2;
  }
  try {
    return pipeline(argv[1], argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s_pipeline: %s\n", driver.c_str(), e.what());
    return 1;
  }
}

inline bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// The checks every example shares, after a run from scratch with --json and
// --save WORK/ck-{epoch}.h5 over `epochs` epochs (`full`): one JSON object per
// epoch with the keys, and the checkpoints. Then it resumes from the
// checkpoint of epoch `resume_after` with `args` and checks that the epochs
// after it repeat `full`'s exactly, and that a misspelled flag stops the
// example with exit code 2 and a suggestion, as do numbers out of a flag's
// range.
inline void check_common(const std::string& example, const std::string& args, const fs::path& work, const Run& full,
                         int epochs, int resume_after) {
  check(full.status == 0, "the run from scratch exits 0");
  check(static_cast<int>(full.epochs.size()) == epochs,
        "it prints one JSON object per epoch (" + std::to_string(epochs) + ")");
  const char* keys[] = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "train_s", "train_img_s",
                        "infer_img_s"};
  if (!full.epochs.empty()) {
    const nlohmann::json& last = full.epochs.back();
    for (const char* key : keys) check(last.contains(key) && last[key].is_number(), std::string("its JSON has ") + key);
  }
  const fs::path ck = work / ("ck-" + std::to_string(resume_after) + ".h5");
  check(fs::exists(ck) && fs::exists(work / ("ck-" + std::to_string(epochs) + ".h5")),
        "--save wrote a checkpoint per epoch");

  const Run resumed = run(example, args + " --resume " + quoted(ck.string()), work, "resumed");
  check(resumed.status == 0, "the resumed run exits 0");
  const size_t rest = static_cast<size_t>(epochs - resume_after);
  check(resumed.epochs.size() == rest && resumed.epochs[0].value("epoch", 0) == resume_after + 1,
        "the resumed run trains epochs " + std::to_string(resume_after + 1) + ".." + std::to_string(epochs) + " only");
  if (resumed.epochs.size() == rest && full.epochs.size() == static_cast<size_t>(epochs))
    for (size_t k = 0; k < rest; ++k)
      for (const char* key : {"train_loss", "train_acc", "test_loss", "test_acc"}) {
        const double a = full.epochs[resume_after + k].value(key, -1.0), b = resumed.epochs[k].value(key, -2.0);
        check(a == b, "resumed epoch " + std::to_string(resume_after + 1 + k) + " " + key + " " + std::to_string(b) +
                          " equals the uninterrupted " + std::to_string(a));
      }

  const Run typo = run(example, "--epoch 5", work, "typo");
  check(typo.status == 2, "a misspelled flag (--epoch 5) exits 2");
  check(contains(typo.err, "unknown option '--epoch' (did you mean --epochs?)") && contains(typo.err, "usage:"),
        "and names the flag, suggests --epochs and prints the usage");

  // Numbers beyond a flag's range (these were converted with undefined
  // behaviour: the first ignored, the second read as -2^63).
  const std::string nowhere = "--data " + quoted((work / "nowhere").string());
  const Run threads = run(example, nowhere + " --threads 4294967297", work, "threads");
  check(threads.status == 2 &&
            contains(threads.err, "--threads expects a whole number in [0, 1024], got '4294967297'"),
        "--threads 4294967297 exits 2, naming the flag's range");
  const Run batch = run(example, nowhere + " --batch 1e19", work, "batch");
  check(batch.status == 2 && contains(batch.err, "--batch expects a whole number in [1, 2147483647], got '1e19'"),
        "--batch 1e19 exits 2: integers are read as integers");
}

}  // namespace example_test
