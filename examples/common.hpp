// Shared by the examples: command-line flags, the per-epoch report, and
// run_main(), which every example's main runs its body in.
//
// Exit codes, the same for every example:
//   0  done;
//   1  a maas::Error: missing or bad data, a bad checkpoint, options that do
//      not fit (the message says which);
//   2  a bad command line: an unknown flag, a missing or malformed value;
//   3  anything else: out of memory (std::bad_alloc) or another exception
//      that is not maas' own; the message names it.
//
// Flags (all optional): --data DIR --epochs N --batch B --lr X --threads T
// --seed S --save PATH --resume PATH --json --report PATH.html --distributed
// --precision fp32|bf16 (bf16: mixed precision, maas/precision.hpp),
// plus the example's own, which it declares in the usage text it passes to
// parse_args: " [--bn]" a switch, " [--train-limit N]" an option with a
// value (read with flag(), value(), number(), integer() and
// unsigned_integer()). Any other flag is an error: a misspelled --epoch 5
// stops the program with exit code 2 instead of training with the default.
// So does a value out of its flag's range: integers are read as integers (no
// "1e3"), never converted from a wider or floating type: --epochs in
// [1, 1000000], --batch in [1, 2^31 - 1], --threads in [0, 1024] (0: all
// cores), --seed any uint64, --lr a number in [0, FLT_MAX].
#pragma once

#include <maas/maas.hpp>
#include <omp.h>
#ifdef MAAS_HAVE_MPI
#include <maas/dist.hpp>
#endif

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace examples {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;       // a maas::Error
constexpr int kExitUsage = 2;       // a bad command line
constexpr int kExitUnexpected = 3;  // out of memory, or an exception that is not maas' own

// Runs `body` (an example's main: int()), catching every exception so that
// none ends the program with std::terminate: prints "PROGRAM: message" to
// `err` and returns the exit code above (body's own return value otherwise).
template <class Body>
int run_main(const char* program, Body&& body, std::FILE* err = stderr) {
  try {
    return body();
  } catch (const maas::Error& e) {
    std::fprintf(err, "%s: %s\n", program, e.what());
    return kExitError;
  } catch (const std::bad_alloc&) {
    std::fprintf(err, "%s: out of memory (std::bad_alloc); try a smaller --batch or less data\n", program);
    return kExitUnexpected;
  } catch (const std::exception& e) {
    std::fprintf(err, "%s: unexpected error: %s\n", program, e.what());
    return kExitUnexpected;
  } catch (...) {
    std::fprintf(err, "%s: unexpected error: an exception of unknown type\n", program);
    return kExitUnexpected;
  }
}

// Reads `text` as a finite decimal number in [lo, hi].
inline bool parse_real(const std::string& text, double lo, double hi, double& out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !*end && std::isfinite(out) && lo <= out && out <= hi;
}
// Reads `text` as a decimal integer in [lo, hi] with integer arithmetic:
// digits, with a leading '-' for a negative one; no '+', spaces, fraction or
// exponent ("1e3" is refused), nothing beyond int64.
inline bool parse_integer(const std::string& text, int64_t lo, int64_t hi, int64_t& out) {
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, out);
  return !text.empty() && r.ec == std::errc() && r.ptr == end && lo <= out && out <= hi;
}
// The same for a whole uint64 (seeds): digits only.
inline bool parse_unsigned(const std::string& text, uint64_t& out) {
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, out);
  return !text.empty() && r.ec == std::errc() && r.ptr == end;
}
// "a whole number in [lo, hi]", "a number in [lo, hi]", for messages.
inline std::string integer_kind(int64_t lo, int64_t hi) {
  return "a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}
inline std::string real_kind(double lo, double hi) {
  std::ostringstream os;
  os << "a number in [" << lo << ", " << hi << "]";
  return os.str();
}
inline std::string unsigned_kind() { return "a whole number in [0, 18446744073709551615]"; }

// The ranges of the common flags, checked by parse_args.
constexpr int64_t kMaxEpochs = 1000000;
constexpr int64_t kMaxBatch = INT32_MAX;
constexpr int64_t kMaxThreads = 1024;
constexpr double kMaxLr = FLT_MAX;  // it is converted to float

struct Args {
  std::string data;
  int64_t epochs = 0;
  int64_t batch = 0;
  double lr = 0;
  int threads = 0;  // 0: OpenMP's default (all cores)
  uint64_t seed = 0;
  std::string save, resume;
  std::string report;  // --report: the HTML training report (maas/report.hpp)
  bool json = false;
  bool distributed = false;  // data-parallel over the ranks of mpirun (see start_distributed)
  maas::Precision precision = maas::Precision::FP32;  // --precision: of every matrix product, set by parse_args
  std::map<std::string, std::string> extra;  // the example's flags given: name -> value ("1" for a switch)
  std::map<std::string, bool> declared;      // the example's flags: name -> takes a value

  // Whether --name was given; `name` must be declared in the usage text.
  bool flag(const std::string& name) const { return extra.count(check(name)) != 0; }
  // The value of --name VALUE, or `fallback` when it was not given.
  std::string value(const std::string& name, const std::string& fallback = "") const {
    const auto it = extra.find(check(name));
    return it == extra.end() ? fallback : it->second;
  }
  // The value of --name VALUE as a number in [lo, hi], a whole number in
  // [lo, hi], or a uint64; `fallback` when it was not given. A malformed or
  // out-of-range value ends the program with exit code 2, as parse_args does
  // for the common flags.
  double number(const std::string& name, double fallback, double lo = -DBL_MAX, double hi = DBL_MAX) const {
    double d = fallback;
    if (flag(name) && !parse_real(value(name), lo, hi, d)) bad_value(name, real_kind(lo, hi));
    return d;
  }
  int64_t integer(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
    int64_t n = fallback;
    if (flag(name) && !parse_integer(value(name), lo, hi, n)) bad_value(name, integer_kind(lo, hi));
    return n;
  }
  uint64_t unsigned_integer(const std::string& name, uint64_t fallback) const {
    uint64_t n = fallback;
    if (flag(name) && !parse_unsigned(value(name), n)) bad_value(name, unsigned_kind());
    return n;
  }

  std::string program;  // argv[0], for messages

 private:
  [[noreturn]] void bad_value(const std::string& name, const std::string& kind) const {
    std::fprintf(stderr, "%s: --%s expects %s, got '%s'\n", program.c_str(), name.c_str(), kind.c_str(),
                 value(name).c_str());
    std::exit(kExitUsage);
  }
  const std::string& check(const std::string& name) const {
    if (declared.count(name) == 0) {  // a bug in the example, not a user error
      std::fprintf(stderr, "examples::Args: --%s is not declared in the usage text given to parse_args\n",
                   name.c_str());
      std::abort();
    }
    return name;
  }
};

// The flags declared by a usage text of groups " [--name]" (a switch) and
// " [--name VALUE]" (an option with a value): name -> takes a value. Any
// other text is a bug in the example: it aborts, naming the text.
inline std::map<std::string, bool> declared_flags(const std::string& usage_extra) {
  std::map<std::string, bool> out;
  std::istringstream in(usage_extra);
  std::string word;
  while (in >> word) {
    bool ok = word.size() > 3 && word.compare(0, 3, "[--") == 0;
    std::string name = ok ? word.substr(3) : std::string();
    bool takes_value = false;
    if (ok && name.back() == ']') {
      name.pop_back();
    } else if (ok) {
      std::string metavar;
      ok = static_cast<bool>(in >> metavar) && metavar.size() > 1 && metavar.back() == ']';
      takes_value = true;
    }
    if (!ok || name.empty() || name.find_first_of("[]") != std::string::npos) {
      std::fprintf(stderr, "examples::parse_args: cannot read the flags in \"%s\"\n"
                   "  (declare them as \" [--switch] [--name VALUE]\")\n", usage_extra.c_str());
      std::abort();
    }
    out[name] = takes_value;
  }
  return out;
}

// Edit distance, to suggest the flag meant by a misspelled one.
inline size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// --distributed: MPI for the rest of the program (finalised at exit), the
// fit data-parallel over mpirun's ranks, and the output of ranks other than
// 0 discarded (stdout to /dev/null; errors still reach stderr). Without
// --threads, each rank takes its share of the cores (OpenMP's count divided
// by the ranks on this machine).
inline void start_distributed(Args& a) {
#ifdef MAAS_HAVE_MPI
  static std::unique_ptr<maas::dist::Session> session;
  try {
    session = std::make_unique<maas::dist::Session>();
  } catch (const maas::Error& e) {
    std::fprintf(stderr, "%s: --distributed: %s\n", a.program.c_str(), e.what());
    std::exit(1);
  }
  if (a.threads == 0) {
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const int ranks_here = local != nullptr ? std::max(1, std::atoi(local)) : 1;
    a.threads = std::max(1, omp_get_num_procs() / ranks_here);
  }
  if (maas::dist::rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr) std::exit(1);
#else
  std::fprintf(stderr, "%s: --distributed needs maas built with MPI (apt-get install libopenmpi-dev, then "
               "reconfigure: MAAS_MPI)\n", a.program.c_str());
  std::exit(2);
#endif
}

// For the examples without the common flags (fit_mlp, tiny_mlp): accepts
// --distributed alone (and --help), starting MPI as parse_args does; returns
// whether it was given. `args` names the example's own positional arguments
// for the usage text; any other flag ends the program with exit code 2.
inline bool parse_distributed_only(int argc, char** argv, int positional = 0, const char* args = "") {
  Args a;
  a.program = argv[0];
  int seen = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--distributed") {
      a.distributed = true;
    } else if (f == "--precision" && i + 1 < argc) {
      const std::string v = argv[++i];
      if (v != "fp32" && v != "bf16") {
        std::fprintf(stderr, "%s: --precision expects fp32 or bf16, got '%s'\n", argv[0], v.c_str());
        std::exit(2);
      }
      a.precision = maas::precision_from_string(v);
    } else if (f == "--help" || f == "-h" || f.rfind("--", 0) == 0 || ++seen > positional) {
      const bool help = f == "--help" || f == "-h";
      if (!help) std::fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], f.c_str());
      std::fprintf(help ? stdout : stderr, "usage: %s%s [--distributed] [--precision fp32|bf16]\n", argv[0], args);
      std::exit(help ? 0 : 2);
    }
  }
  if (a.distributed) start_distributed(a);
  if (a.threads > 0) omp_set_num_threads(a.threads);
  maas::set_matmul_precision(a.precision);
  return a.distributed;
}

// Parses argv over the defaults in `a`: the common flags and those that
// `usage_extra` declares (see the top). Prints usage and exits 0 on --help;
// prints the problem and usage to stderr and exits 2 on an unknown flag
// (suggesting the nearest known one), a missing or malformed value, or a
// stray argument.
inline Args parse_args(int argc, char** argv, Args a, const char* usage_extra = "") {
  static const std::vector<std::string> common = {"data", "epochs", "batch",  "lr",   "threads",
                                                  "seed", "save",   "resume", "json", "help", "report",
                                                  "distributed", "precision"};
  a.declared = declared_flags(usage_extra);
  a.program = argv[0];
  auto usage = [&](int code) {
    std::fprintf(code ? stderr : stdout,
                 "usage: %s [--data DIR] [--epochs N] [--batch B] [--lr X] [--threads T] [--seed S]\n"
                 "       [--save PATH] [--resume PATH] [--json] [--report PATH.html] [--distributed]\n"
                 "       [--precision fp32|bf16]%s\n"
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
        usage(kExitUsage);
      }
      return argv[++i];
    };
    auto bad = [&](const std::string& v, const std::string& kind) {
      std::fprintf(stderr, "%s: %s expects %s, got '%s'\n", argv[0], f.c_str(), kind.c_str(), v.c_str());
      usage(kExitUsage);
    };
    auto integer = [&](int64_t lo, int64_t hi) {
      const std::string v = value();
      int64_t n = 0;
      if (!parse_integer(v, lo, hi, n)) bad(v, integer_kind(lo, hi));
      return n;
    };
    const auto own = f.rfind("--", 0) == 0 ? a.declared.find(f.substr(2)) : a.declared.end();
    if (f == "--help" || f == "-h") usage(0);
    else if (f == "--data") a.data = value();
    else if (f == "--epochs") a.epochs = integer(1, kMaxEpochs);
    else if (f == "--batch") a.batch = integer(1, kMaxBatch);
    else if (f == "--threads") a.threads = static_cast<int>(integer(0, kMaxThreads));
    else if (f == "--lr") {
      const std::string v = value();
      if (!parse_real(v, 0, kMaxLr, a.lr)) bad(v, real_kind(0, kMaxLr));
    } else if (f == "--seed") {
      const std::string v = value();
      if (!parse_unsigned(v, a.seed)) bad(v, unsigned_kind());
    }
    else if (f == "--save") a.save = value();
    else if (f == "--resume") a.resume = value();
    else if (f == "--json") a.json = true;
    else if (f == "--report") a.report = value();
    else if (f == "--distributed") a.distributed = true;
    else if (f == "--precision") {
      const std::string v = value();
      if (v != "fp32" && v != "bf16") bad(v, "fp32 or bf16");
      a.precision = maas::precision_from_string(v);
    }
    else if (own != a.declared.end()) a.extra[own->first] = own->second ? value() : "1";
    else {
      const bool is_flag = f.size() > 1 && f[0] == '-';
      std::fprintf(stderr, "%s: %s '%s'", argv[0], is_flag ? "unknown option" : "unexpected argument", f.c_str());
      if (is_flag) {  // suggest the nearest known flag: within 1 edit of a short name, 2 of a longer one
        const size_t dashes = std::min(f.find_first_not_of('-'), f.size());
        const std::string name = f.substr(dashes);
        std::string best;
        size_t best_d = name.empty() ? 0 : name.size() <= 3 ? 2 : 3;
        auto consider = [&](const std::string& known) {
          const size_t d = edit_distance(name, known);
          if (d < best_d) {
            best_d = d;
            best = known;
          }
        };
        for (const std::string& c : common) consider(c);
        for (const auto& d : a.declared) consider(d.first);
        if (!best.empty()) std::fprintf(stderr, " (did you mean --%s?)", best.c_str());
      }
      std::fprintf(stderr, "\n");
      usage(kExitUsage);
    }
  }
  if (a.distributed) start_distributed(a);
  if (a.threads > 0) omp_set_num_threads(a.threads);
  maas::set_matmul_precision(a.precision);
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
                    "\"lr\":%.9g,\"train_s\":%.3f,\"train_img_s\":%.1f,\"infer_img_s\":%.1f,\"threads\":%d}",
                    static_cast<long long>(epoch + 1), logs.at("loss"), logs.get("accuracy").value_or(0.0), r.loss,
                    r.accuracy, logs.get("lr").value_or(0.0), train_s, img_s, infer_img_s, omp_get_max_threads());
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

// After load_checkpoint restored the schedule's state: sets the lr of the epochs to
// come from this run's schedule, which may differ from the checkpoint's (a
// cosine over --epochs 1 has ended at lr 0 where one over --epochs 2 is
// half-way). A closed-form schedule is set to its own lr at the restored
// epoch, so a run resumed with a larger --epochs trains on with the rates a
// run started with that --epochs would have used (and, when the earlier
// epochs' rates agree, gives its very numbers); a note on stderr says when
// that changes the checkpoint's lr. A metric-driven schedule
// (ReduceLROnPlateau) keeps the checkpoint's lr, which is its state. Returns
// the lr for the next epoch. `unit` and `final_flag` name the schedule's
// steps in the note: a schedule stepped per iteration says "iteration" and
// "--iters".
inline double continue_schedule(maas::optim::LRScheduler& schedule, const std::string& program,
                                const char* unit = "epoch", const char* final_flag = "--epochs") {
  const float restored = schedule.last_lr();
  if (schedule.needs_metric()) return restored;
  maas::optim::NamedNumbers state = schedule.state();
  const int64_t epoch = schedule.last_epoch();
  for (auto& kv : state) {
    if (epoch > 0 && kv.first == "last_epoch") kv.second = static_cast<double>(epoch - 1);
    if (epoch == 0 && kv.first == "last_lr") kv.second = schedule.base_lr();  // every closed form starts at base
  }
  schedule.load_state(state);
  if (epoch > 0) schedule.step();  // back at `epoch`, with this run's lr for it
  if (schedule.last_lr() != restored)
    std::fprintf(stderr, "%s: note: the checkpoint's %s had set lr %g for %s %lld; this run's, to the final "
                 "%s %s, sets %g\n", program.c_str(), schedule.name().c_str(), static_cast<double>(restored), unit,
                 static_cast<long long>(epoch + 1), unit, final_flag, static_cast<double>(schedule.last_lr()));
  return schedule.last_lr();
}

inline std::vector<std::string> mnist_class_names(const std::string& dir, const maas::data::ImageDataset& data);

// The fit every example runs: --epochs, --batch and --seed; `schedule` (may
// be null) stepped after each epoch; an EpochReport on `test`; with --save, a
// checkpoint after every epoch (model, optimizer, schedule, generators, step
// counts); with --report, the HTML training report (maas/report.hpp); with
// --resume, all of that restored from the file, and the position of
// `augmented`'s random draws (may be null: the trainer fetches one batch per
// step), so training goes on exactly as if it had never stopped.
// --epochs is the final epoch, as Keras' `epochs` with `initial_epoch`: a
// checkpoint of epoch 1 resumed with --epochs 2 trains one more epoch (and
// one resumed with --epochs 1 is an error: nothing would be trained). The
// schedule follows this run's --epochs (see continue_schedule), and a
// schedule that would train at lr 0 is an error, never silent.
// Keeps references: trainer, model, optimizer, schedule and test must outlive
// the fit.
inline maas::FitOptions fit_options(const Args& args, maas::Trainer& trainer, maas::nn::Network& model,
                                    maas::optim::Optimizer& optimizer, maas::optim::LRScheduler* schedule,
                                    const maas::data::Dataset& test, int64_t train_size,
                                    maas::data::TransformedDataset* augmented = nullptr) {
  maas::FitOptions fit;
  if (!args.resume.empty()) {
    // Also refuses a checkpoint of another schedule (or of none), and loads
    // the schedule's state.
    const maas::TrainingState state = maas::load_checkpoint(args.resume, model, optimizer, schedule);
    MAAS_CHECK(state.epoch < args.epochs,
               args.resume << " holds epoch " << state.epoch << " and --epochs " << args.epochs
                           << " is the final epoch (as Keras' epochs): nothing to train; pass --epochs "
                           << state.epoch + 1 << " or more");
    if (schedule) {
      const double lr = continue_schedule(*schedule, args.program);
      MAAS_CHECK(lr > 0, args.resume << ": the " << schedule->name() << " restored gives lr 0 for epoch "
                                     << state.epoch + 1 << ": the run would not learn");
    }
    trainer.set_global_step(state.global_step);
    if (augmented) augmented->set_calls(state.global_step);
    fit.initial_epoch = state.epoch;
    if (!args.json)
      std::printf("resumed from %s after epoch %lld\n", args.resume.c_str(), static_cast<long long>(state.epoch));
  }
  fit.epochs = args.epochs;
  fit.precision = args.precision;
  fit.batch_size = args.batch;
  fit.seed = args.seed;
  fit.distributed = args.distributed;
  if (schedule) fit.callbacks.push_back(std::make_shared<maas::LRSchedulerCallback>(*schedule));
  fit.callbacks.push_back(std::make_shared<EpochReport>(test, train_size, args.json));
  if (!args.save.empty())  // a Keras-layout HDF5 checkpoint after every epoch
    fit.callbacks.push_back(std::make_shared<maas::ModelCheckpoint>(
        args.save, "loss", false, maas::MonitorMode::Min, maas::checkpoint_writer(trainer, schedule)));
  if (!args.report.empty()) {  // the HTML report, rewritten after every epoch (evaluates `test` once more)
    maas::ReportOptions ro;
    ro.title = args.program.substr(args.program.find_last_of('/') + 1) + " training report";
    ro.test_data = &test;
    ro.batch_size = 1000;
    const auto* transformed = dynamic_cast<const maas::data::TransformedDataset*>(&test);
    if (const auto* images = dynamic_cast<const maas::data::ImageDataset*>(transformed ? &transformed->base() : &test))
      ro.class_names = mnist_class_names(args.data, *images);
    char lr[32];
    std::snprintf(lr, sizeof lr, "%g", args.lr);
    ro.run_options = {{"data", args.data}, {"epochs", std::to_string(args.epochs)},
                      {"batch", std::to_string(args.batch)}, {"lr", lr},
                      {"seed", std::to_string(args.seed)}, {"train samples", std::to_string(train_size)}};
    fit.callbacks.push_back(std::make_shared<maas::ReportCallback>(args.report, ro));
  }
  fit.verbose = args.json ? maas::Verbose::Silent : maas::Verbose::Auto;
  return fit;
}

// The class names of an MNIST-format data set in `dir`: Fashion-MNIST's
// when the path says "fashion", else the loader's (digits: none).
inline std::vector<std::string> mnist_class_names(const std::string& dir, const maas::data::ImageDataset& data) {
  if (dir.find("fashion") == std::string::npos) return data.class_names();
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
}

// After training: the per-class report on `test` and the test accuracy.
inline void print_test_report(maas::Trainer& trainer, const maas::data::Dataset& test,
                              const std::vector<std::string>& class_names) {
  const maas::EvalResult r = trainer.evaluate(test, 1000);
  std::cout << "\n" << r.report(class_names) << "\n";
  std::printf("test accuracy: %.2f%%\n", 100.0 * r.accuracy);
}

// Test accuracy of `model` (batches of 1000) and its inference rate.
inline std::pair<double, double> accuracy_and_rate(maas::nn::Module& model, const maas::data::Dataset& test) {
  const maas::NoGradGuard no_grad;
  model.eval();
  int64_t correct = 0;
  double seconds = 0;
  maas::Tensor x, y;
  for (int64_t begin = 0; begin < test.size(); begin += 1000) {
    std::vector<int64_t> idx;
    for (int64_t i = begin; i < std::min(test.size(), begin + 1000); ++i) idx.push_back(i);
    test.get_batch(idx, x, y);
    const auto t0 = std::chrono::steady_clock::now();
    const maas::Tensor out = model(x);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t classes = out.size(1);
    for (int64_t n = 0; n < out.size(0); ++n) {
      const float* row = out.data() + n * classes;
      correct += std::max_element(row, row + classes) - row == static_cast<int64_t>(y.data()[n]);
    }
  }
  return {static_cast<double>(correct) / static_cast<double>(test.size()), static_cast<double>(test.size()) / seconds};
}

// --quantize PATH: the int8 model of the trained one (maas::quantize),
// calibrated on the first --calibration training images (default 500) with
// --calibration-method (default percentile), written to PATH, and compared
// with fp32 on `test`: accuracy, images/s at batch 1000, file size. Net is
// nn::Sequential or nn::Model.
template <class Net>
int quantize_and_compare(const Args& args, Net& model, const maas::data::Dataset& train,
                         const maas::data::Dataset& test) {
  // Under --distributed every rank holds the same trained model: rank 0
  // alone quantizes and writes, as only it writes checkpoints.
#ifdef MAAS_HAVE_MPI
  if (args.distributed && maas::dist::rank() != 0) return kExitOk;
#endif
  const std::string path = args.value("quantize");
  const int64_t n = std::min<int64_t>(args.integer("calibration", 500, 1, 1000000), train.size());
  maas::QuantizeOptions qo;
  qo.method = maas::calibration_from_string(args.value("calibration-method", "percentile"));
  qo.max_samples = n;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  maas::Tensor calib, labels;
  train.get_batch(idx, calib, labels);
  auto q = maas::quantize(model, calib, qo);
  maas::save_model(*q, path);
  const std::string fp32_path = path + ".fp32.tmp";
  maas::save_model(model, fp32_path);
  const auto fp32_bytes = std::filesystem::file_size(fp32_path);
  std::filesystem::remove(fp32_path);
  const auto int8_bytes = std::filesystem::file_size(path);
  const auto [fp32_acc, fp32_rate] = accuracy_and_rate(model, test);
  const auto [int8_acc, int8_rate] = accuracy_and_rate(*q, test);
  std::printf("fp32: test accuracy %.2f%%, %.0f images/s (batch 1000), file %.1f KB\n", 100 * fp32_acc, fp32_rate,
              static_cast<double>(fp32_bytes) / 1024);
  std::printf("int8: test accuracy %.2f%%, %.0f images/s (batch 1000), file %.1f KB (%.2f of fp32): %s\n",
              100 * int8_acc, int8_rate, static_cast<double>(int8_bytes) / 1024,
              static_cast<double>(int8_bytes) / static_cast<double>(fp32_bytes), path.c_str());
  std::printf("int8 - fp32: %+.2f points of test accuracy\n", 100 * (int8_acc - fp32_acc));
  return kExitOk;
}

}  // namespace examples
