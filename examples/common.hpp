// Shared by the examples: command-line flags and the per-epoch report.
//
// Flags (all optional): --data DIR --epochs N --batch B --lr X --threads T
// --seed S --save PATH --resume PATH --json, plus example-specific switches
// read with flag().
#pragma once

#include <maas/maas.hpp>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

namespace examples {

struct Args {
  std::string data;
  int64_t epochs = 0;
  int64_t batch = 0;
  double lr = 0;
  int threads = 0;  // 0: OpenMP's default (all cores)
  uint64_t seed = 0;
  std::string save, resume;
  bool json = false;
  std::map<std::string, std::string> extra;  // --name value / --switch

  bool flag(const std::string& name) const { return extra.count(name) != 0; }
};

// Parses argv over the defaults in `a`; prints usage and exits on --help or a bad flag.
inline Args parse_args(int argc, char** argv, Args a, const char* usage_extra = "") {
  auto usage = [&](int code) {
    std::fprintf(code ? stderr : stdout,
                 "usage: %s [--data DIR] [--epochs N] [--batch B] [--lr X] [--threads T] [--seed S]\n"
                 "       [--save PATH] [--resume PATH] [--json]%s\n"
                 "defaults: --data %s --epochs %lld --batch %lld --lr %g\n",
                 argv[0], usage_extra, a.data.c_str(), static_cast<long long>(a.epochs),
                 static_cast<long long>(a.batch), a.lr);
    std::exit(code);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: %s needs a value\n", argv[0], f.c_str());
        usage(2);
      }
      return argv[++i];
    };
    auto number = [&](const std::string& v) {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end) {
        std::fprintf(stderr, "%s: %s expects a number, got '%s'\n", argv[0], f.c_str(), v.c_str());
        usage(2);
      }
      return d;
    };
    if (f == "--help" || f == "-h") usage(0);
    else if (f == "--data") a.data = value();
    else if (f == "--epochs") a.epochs = static_cast<int64_t>(number(value()));
    else if (f == "--batch") a.batch = static_cast<int64_t>(number(value()));
    else if (f == "--lr") a.lr = number(value());
    else if (f == "--threads") a.threads = static_cast<int>(number(value()));
    else if (f == "--seed") a.seed = static_cast<uint64_t>(number(value()));
    else if (f == "--save") a.save = value();
    else if (f == "--resume") a.resume = value();
    else if (f == "--json") a.json = true;
    else if (f.rfind("--", 0) == 0 && i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
      a.extra[f.substr(2)] = value();
    else if (f.rfind("--", 0) == 0) a.extra[f.substr(2)] = "1";
    else {
      std::fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], f.c_str());
      usage(2);
    }
  }
  if (a.threads > 0) omp_set_num_threads(a.threads);
  return a;
}

// After each epoch: evaluates the test set (timing inference) and prints one
// JSON object with the keys when --json, else a summary line.
class EpochReport : public maas::Callback {
 public:
  EpochReport(const maas::data::Dataset& test, int64_t train_size, bool json, int64_t batch = 1000)
      : test_(test), train_size_(train_size), json_(json), batch_(batch) {}

  void on_epoch_end(int64_t epoch, const maas::Logs& logs) override {
    const maas::EvalResult r = trainer().evaluate(test_, batch_);
    const double img_s = logs.at("img_s");
    const double train_s = img_s > 0 ? static_cast<double>(train_size_) / img_s : 0.0;
    const double infer_img_s = r.seconds > 0 ? static_cast<double>(r.samples) / r.seconds : 0.0;
    last_test_acc = r.accuracy;
    char buf[512];
    if (json_) {
      std::snprintf(buf, sizeof buf,
                    "{\"epoch\":%lld,\"train_loss\":%.6f,\"train_acc\":%.6f,\"test_loss\":%.6f,\"test_acc\":%.6f,"
                    "\"train_s\":%.3f,\"train_img_s\":%.1f,\"infer_img_s\":%.1f,\"threads\":%d}",
                    static_cast<long long>(epoch + 1), logs.at("loss"), logs.get("accuracy").value_or(0.0), r.loss,
                    r.accuracy, train_s, img_s, infer_img_s, omp_get_max_threads());
    } else {
      std::snprintf(buf, sizeof buf, "  test loss %.4f - test accuracy %.2f%% - inference %.0f img/s", r.loss,
                    100.0 * r.accuracy, infer_img_s);
    }
    std::cout << buf << std::endl;
  }

  double last_test_acc = 0.0;

 private:
  const maas::data::Dataset& test_;
  int64_t train_size_;
  bool json_;
  int64_t batch_;
};

}  // namespace examples
