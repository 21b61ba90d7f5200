// Trainer: the fit / evaluate / predict loops and History; the fit prints
// through the callbacks of progress.cpp.
#include "maas/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>

#ifdef _WIN32
#include <io.h>
#define MAAS_ISATTY(fd) _isatty(fd)
#else
#include <unistd.h>
#define MAAS_ISATTY(fd) isatty(fd)
#endif

#include "maas/autograd.hpp"
#include "maas/data/loader.hpp"
#include "maas/error.hpp"
#include "maas/loss.hpp"
#include "maas/nn/module.hpp"
#include "maas/ops.hpp"
#include "maas/optim/clip.hpp"
#include "maas/optim/optimizer.hpp"
#include "maas/progress.hpp"
#include "train/output.hpp"

namespace maas {

using detail::json_number;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Fisher-Yates with the generator's raw 64-bit draws (the same on every
// standard library, unlike std::shuffle / uniform_int_distribution). The
// modulo's bias is below n / 2^64.
void fisher_yates(std::vector<int64_t>& v, Generator& gen) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(gen.engine()() % static_cast<uint64_t>(i));
    std::swap(v[i - 1], v[j]);
  }
}

Verbose resolve(Verbose v, std::ostream& os) {
  if (v != Verbose::Auto) return v;
  const bool tty = (&os == &std::cout && MAAS_ISATTY(1)) ||
                   ((&os == &std::cerr || &os == &std::clog) && MAAS_ISATTY(2));
  return tty ? Verbose::ProgressBar : Verbose::Lines;
}

// Puts the model back in the mode it had.
struct ModeRestore {
  nn::Module& model;
  bool training;
  ~ModeRestore() { model.train(training); }
};

// Sets the matmul precision for a scope (FitOptions::precision), restoring it after.
struct PrecisionScope {
  Precision saved = matmul_precision();
  explicit PrecisionScope(std::optional<Precision> p) {
    if (p) set_matmul_precision(*p);
  }
  ~PrecisionScope() { set_matmul_precision(saved); }
};

// The shortest decimal that reads back as `v`, as a double: an lr of 0.01f
// logs as 0.01, not 0.00999999977648.
double float_as_decimal(float v) {
  char buf[32];
  for (int digits = 6; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(v));
    const double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == v) return d;
  }
  return static_cast<double>(v);
}

// The message of the exception being handled.
std::string current_message() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an unknown exception";
  }
}

// Discards what is written to it: the output of ranks other than 0.
std::ostream& null_stream() {
  static std::ostream null(nullptr);
  return null;
}

void check_batch(const Tensor& x, const Tensor& y, int64_t b, const char* who) {
  MAAS_CHECK(x.defined() && y.defined() && x.dim() >= 1 && y.dim() >= 1 && x.size(0) == b && y.size(0) == b,
             who << ": the dataset's get_batch() returned x "
                 << (x.defined() ? to_string(x.shape()) : std::string("(undefined)")) << " and y "
                 << (y.defined() ? to_string(y.shape()) : std::string("(undefined)")) << " for a batch of " << b
                 << " samples; both need " << b << " rows");
}

}  // namespace

// ---- History ----------------------------------------------------------------

const std::vector<double>& History::operator[](const std::string& name) const {
  auto it = history.find(name);
  if (it == history.end()) {
    std::string present;
    for (const std::string& k : keys) present += (present.empty() ? "" : ", ") + k;
    MAAS_FAIL("History: no metric '" << name << "' (present: " << (present.empty() ? "none" : present) << ")");
  }
  return it->second;
}

void History::append(int64_t epoch_index, const Logs& logs) {
  const size_t before = epoch.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& [name, value] : logs) {
    auto it = history.find(name);
    if (it == history.end()) {
      keys.push_back(name);
      it = history.emplace(name, std::vector<double>(before, nan)).first;
    }
    it->second.push_back(value);
  }
  epoch.push_back(epoch_index);
  for (auto& [name, values] : history)
    if (values.size() < epoch.size()) values.push_back(nan);
}

std::string EvalResult::str() const {
  std::string s = "loss: " + format_metric(loss);
  if (has_accuracy) s += " - accuracy: " + format_metric(accuracy);
  return s;
}

// ---- Trainer ----------------------------------------------------------------

Trainer::Trainer(nn::Module& model, const Loss& loss, optim::Optimizer& optimizer)
    : model_(model), loss_(loss), optimizer_(optimizer) {
  if (dynamic_cast<const CrossEntropyLoss*>(&loss) != nullptr) {
    accuracy_ = true;
    output_ = Output::Softmax;
  } else if (dynamic_cast<const BinaryCrossEntropyWithLogitsLoss*>(&loss) != nullptr) {
    accuracy_ = binary_ = true;
    output_ = Output::Sigmoid;
  } else if (dynamic_cast<const HingeLoss*>(&loss) != nullptr) {
    accuracy_ = binary_ = true;
  }
  threshold_ = metrics::decision_threshold(loss);
}

uint64_t Trainer::shuffle_seed(uint64_t seed, int64_t epoch) { return data::shuffle_seed(seed, epoch); }

void Trainer::set_global_step(int64_t step) {
  MAAS_CHECK(step >= 0, "Trainer::set_global_step: step " << step << " must be >= 0");
  global_step_ = step;
}

void Trainer::check_scalar_loss(const Tensor& loss, const Tensor& out, const Tensor& y, const char* who) const {
  MAAS_CHECK(loss.numel() == 1, who << ": the loss " << loss_.name() << " returned shape " << to_string(loss.shape())
                                    << " for outputs " << to_string(out.shape()) << " and targets "
                                    << to_string(y.shape())
                                    << "; the trainer needs one number: construct the loss with Reduction::Mean "
                                       "(or Reduction::Sum)");
}

void Trainer::count_accuracy(const Tensor& out, const Tensor& y, int64_t& correct, int64_t& judged) const {
  if (binary_) {
    correct += metrics::count_binary_correct(out, y, threshold_);
    judged += out.numel();
  } else {
    correct += metrics::count_correct(out, y, threshold_);
    judged += out.size(0);
  }
}

History Trainer::fit(const data::Dataset& train, const FitOptions& o) {
  MAAS_CHECK(o.epochs >= 1, "fit: epochs " << o.epochs << " must be >= 1");
  MAAS_CHECK(o.batch_size >= 1, "fit: batch_size " << o.batch_size << " must be >= 1 (Keras' default is 32)");
  MAAS_CHECK(o.validation_split >= 0.0 && o.validation_split < 1.0,
             "fit: validation_split " << o.validation_split
                                      << " must be in [0, 1): the fraction of the training samples, taken from "
                                         "the end, that validates (e.g. 0.2), or 0 for none");
  MAAS_CHECK(!(o.validation_split > 0.0 && o.validation_data != nullptr),
             "fit: give validation_split (" << o.validation_split << ") or validation_data, not both");
  MAAS_CHECK(o.validation_batch_size >= 0,
             "fit: validation_batch_size " << o.validation_batch_size << " must be >= 0 (0: batch_size)");
  MAAS_CHECK(o.initial_epoch >= 0 && o.initial_epoch < o.epochs,
             "fit: initial_epoch " << o.initial_epoch << " must be in [0, epochs = " << o.epochs << ")");
  MAAS_CHECK(std::isfinite(o.clip_grad_norm) && o.clip_grad_norm >= 0.f,
             "fit: clip_grad_norm " << o.clip_grad_norm << " must be >= 0 (0: no clipping)");
  MAAS_CHECK(o.out != nullptr, "fit: the output stream FitOptions::out is null (use Verbose::Silent for no output)");
  for (size_t k = 0; k < o.callbacks.size(); ++k)
    MAAS_CHECK(o.callbacks[k] != nullptr, "fit: callback " << k << " is null");
  MAAS_CHECK(train.size() > 0, "fit: the training dataset is empty");

  std::optional<data::Split> split;
  const data::Dataset* train_set = &train;
  const data::Dataset* val_set = o.validation_data;
  if (o.validation_split > 0.0) {
    split.emplace(data::validation_split(train, o.validation_split));
    train_set = &split->train;
    val_set = &split->validation;
  }
  Communicator* comm = o.communicator != nullptr ? o.communicator : o.distributed ? default_communicator() : nullptr;
  MAAS_CHECK(comm != nullptr || !o.distributed,
             "fit: FitOptions::distributed is set but no communicator is installed: create a maas::dist::Session "
             "(include maas/dist.hpp, link maas::dist, built with MPI) and run under mpirun");
  const int ranks = comm != nullptr ? comm->size() : 1, rank = comm != nullptr ? comm->rank() : 0;
  const int64_t n = train_set->size();
  const int64_t bs = o.batch_size;
  // This rank's positions of the epoch's order (all of them without a communicator).
  const int64_t shard = shard_size(n, rank, ranks);
  const int64_t steps = o.drop_last ? shard_size(n, ranks - 1, ranks) / bs : (shard_size(n, 0, ranks) + bs - 1) / bs;
  MAAS_CHECK(steps > 0, "fit: drop_last with batch_size " << bs << " leaves no batch of the " << n
                                                          << " training samples" << (ranks > 1 ? " per rank" : "")
                                                          << "; lower batch_size or set drop_last = false");
  const int64_t val_bs = o.validation_batch_size > 0 ? o.validation_batch_size : bs;

  NanGuard guard;
  std::vector<Callback*> callbacks;
  if (o.nan_guard) callbacks.push_back(&guard);
  for (const auto& c : o.callbacks) callbacks.push_back(c.get());
  for (Callback* c : callbacks) c->set_trainer(this);

  std::ostream& out = comm != nullptr && !comm->is_root() ? null_stream() : *o.out;
  const Verbose verbose = comm != nullptr && !comm->is_root() ? Verbose::Silent : resolve(o.verbose, out);
  out_ = &out;
  epochs_ = o.epochs;
  steps_per_epoch_ = steps;
  stop_ = false;
  ModeRestore mode{model_, model_.is_training()};
  const PrecisionScope precision(o.precision);

  // The epoch output (progress.hpp), called apart from the other callbacks
  // so that its lines come first.
  std::unique_ptr<EpochLogger> printer;
  if (verbose == Verbose::ProgressBar) printer = std::make_unique<ProgressBarLogger>();
  else if (verbose == Verbose::Lines) printer = std::make_unique<LineLogger>();
  else if (verbose == Verbose::Json) printer = std::make_unique<JsonLogger>();
  if (printer) printer->set_trainer(this);

  History history;
  Logs last_logs;
  comm_ = comm;
  try {
    if (comm != nullptr) {  // every rank starts from rank 0's weights and optimizer state
      broadcast_module(*comm, model_, 0);
      broadcast_optimizer_state(*comm, optimizer_, 0);
    }
    for (Callback* c : callbacks) c->on_train_begin();
    std::vector<int64_t> order(static_cast<size_t>(n)), idx;
    for (int64_t epoch = o.initial_epoch; epoch < o.epochs && !stop_; ++epoch) {
      epoch_ = epoch;
      step_ = 0;
      for (Callback* c : callbacks) c->on_epoch_begin(epoch);
      const double lr = float_as_decimal(optimizer_.lr());
      std::iota(order.begin(), order.end(), int64_t{0});
      if (o.shuffle) {
        shuffle_gen_.seed(shuffle_seed(o.seed, epoch));
        fisher_yates(order, shuffle_gen_);
      }
      progress_ = EpochProgress{};
      if (printer) printer->on_epoch_begin(epoch);

      model_.train();
      const auto t0 = Clock::now();
      double loss_sum = 0.0;
      int64_t seen = 0, correct = 0, judged = 0, steps_run = 0;
      Tensor x, y;
      for (int64_t s = 0; s < steps; ++s) {
        step_ = s;
        for (Callback* c : callbacks) c->on_batch_begin(s);
        // Local positions [begin, end) of this rank's shard; local position
        // i is position i * ranks + rank of the order.
        const int64_t begin = s * bs, end = std::min(shard, begin + bs), b = std::max<int64_t>(0, end - begin);
        idx.resize(static_cast<size_t>(b));
        for (int64_t i = 0; i < b; ++i)
          idx[static_cast<size_t>(i)] = order[static_cast<size_t>((begin + i) * ranks + rank)];

        optimizer_.zero_grad();
        Tensor pred;
        double batch_loss = 0.0;
        bool backward = false;
        if (b > 0) {
          train_set->get_batch(idx, x, y);
          check_batch(x, y, b, "fit");
          pred = model_(x);
          const Tensor loss = loss_(pred, y);
          check_scalar_loss(loss, pred, y, "fit");
          batch_loss = loss.item();
          // With the guard on, a non-finite loss never reaches the weights.
          backward = std::isfinite(batch_loss) || !o.nan_guard;
          if (backward) loss.backward();
        }
        if (comm != nullptr) {
          // The global batch's mean gradient: each rank's weighted by its
          // share of the samples (the ranks' batch sizes are known to all).
          int64_t global_b = 0;
          for (int r = 0; r < ranks; ++r)
            global_b += std::clamp<int64_t>(shard_size(n, r, ranks) - begin, 0, bs);
          average_gradients(*comm, optimizer_.params(), static_cast<float>(b) / static_cast<float>(global_b));
          backward = true;  // every rank steps, to stay identical
        }
        if (backward) {
          if (o.clip_grad_norm > 0.f) optim::clip_grad_norm(optimizer_.params(), o.clip_grad_norm);
          optimizer_.step();
        }
        ++global_step_;
        ++steps_run;
        loss_sum += batch_loss * static_cast<double>(b);
        seen += b;
        if (accuracy_ && b > 0) count_accuracy(pred, y, correct, judged);

        Logs batch_logs;
        batch_logs.set("loss", seen > 0 ? loss_sum / static_cast<double>(seen) : 0.0);
        if (accuracy_)
          batch_logs.set("accuracy", judged > 0 ? static_cast<double>(correct) / static_cast<double>(judged) : 0.0);
        batch_logs.set("batch_loss", batch_loss);
        progress_ = EpochProgress{seen, steps_run, seconds_since(t0)};
        if (printer) printer->on_batch_end(s, batch_logs);
        for (Callback* c : callbacks) c->on_batch_end(s, batch_logs);
        if (stop_) break;
      }
      if (comm != nullptr) {  // the epoch's metrics over all ranks; BatchNorm's running statistics averaged
        double totals[4] = {loss_sum, static_cast<double>(seen), static_cast<double>(correct),
                            static_cast<double>(judged)};
        comm->allreduce_sum(totals, 4);
        loss_sum = totals[0];
        seen = static_cast<int64_t>(totals[1]);
        correct = static_cast<int64_t>(totals[2]);
        judged = static_cast<int64_t>(totals[3]);
        std::vector<Tensor> buffers;
        for (const auto& [name, t] : model_.named_buffers()) buffers.push_back(t);
        average_tensors(*comm, buffers);
      }
      const double train_s = seconds_since(t0);
      const double img_s = train_s > 0 ? static_cast<double>(seen) / train_s : 0.0;
      progress_ = EpochProgress{seen, steps_run, train_s};

      Logs logs;
      logs.set("loss", loss_sum / static_cast<double>(seen));
      if (accuracy_) logs.set("accuracy", static_cast<double>(correct) / static_cast<double>(judged));
      if (val_set != nullptr) {
        const EvalResult r = run_evaluation(*val_set, val_bs, Verbose::Silent, out, "fit (validation)");
        logs.set("val_loss", r.loss);
        if (r.has_accuracy) logs.set("val_accuracy", r.accuracy);
      }
      logs.set("lr", lr);
      logs.set("time_s", seconds_since(t0));
      logs.set("img_s", img_s);
      history.append(epoch, logs);

      if (printer) printer->on_epoch_end(epoch, logs);
      last_logs = logs;
      for (Callback* c : callbacks) c->on_epoch_end(epoch, logs);
    }
    for (Callback* c : callbacks) c->on_train_end(last_logs);
  } catch (...) {
    if (printer) printer->abandon();
    out_ = &std::cout;
    comm_ = nullptr;
    // The other ranks would wait for this one in their next collective.
    if (comm != nullptr) comm->abort_job(current_message());
    throw;
  }
  out_ = &std::cout;
  comm_ = nullptr;
  return history;
}

EvalResult Trainer::run_evaluation(const data::Dataset& data, int64_t batch_size, Verbose verbose,
                                   std::ostream& out, const char* who) {
  MAAS_CHECK(batch_size >= 1, who << ": batch_size " << batch_size << " must be >= 1");
  const int64_t n = data.size();
  MAAS_CHECK(n > 0, who << ": the dataset is empty");
  verbose = resolve(verbose, out);

  NoGradGuard no_grad;
  ModeRestore mode{model_, model_.is_training()};
  model_.eval();

  // In a distributed fit, this rank's contiguous part [lo, hi) of the rows.
  const int ranks = comm_ != nullptr ? comm_->size() : 1, rank = comm_ != nullptr ? comm_->rank() : 0;
  const int64_t lo = n * rank / ranks, hi = n * (rank + 1) / ranks;
  if (comm_ != nullptr && !comm_->is_root()) verbose = Verbose::Silent;
  const int64_t steps = (hi - lo + batch_size - 1) / batch_size;
  std::unique_ptr<ProgressBar> bar;
  if (verbose == Verbose::ProgressBar) bar = std::make_unique<ProgressBar>(steps, out);
  const auto t0 = Clock::now();
  EvalResult r;
  double loss_sum = 0.0;
  int64_t correct = 0, judged = 0;
  std::vector<int64_t> idx;
  Tensor x, y;
  try {
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t begin = lo + s * batch_size, end = std::min(hi, begin + batch_size), b = end - begin;
      idx.resize(static_cast<size_t>(b));
      std::iota(idx.begin(), idx.end(), begin);
      data.get_batch(idx, x, y);
      check_batch(x, y, b, who);
      const Tensor pred = model_(x);
      const Tensor loss = loss_(pred, y);
      check_scalar_loss(loss, pred, y, who);
      loss_sum += static_cast<double>(loss.item()) * static_cast<double>(b);
      if (accuracy_) {
        count_accuracy(pred, y, correct, judged);
        const bool classes = pred.dim() == 1 || (pred.dim() == 2 && (!binary_ || pred.size(1) == 1));
        if (classes) r.confusion.update(pred, y, threshold_);
      }
      if (bar) {
        Logs shown_logs{{"loss", loss_sum / static_cast<double>(end - lo)}};
        if (accuracy_) shown_logs.set("accuracy", static_cast<double>(correct) / static_cast<double>(judged));
        bar->update(s + 1, shown_logs);
      }
    }
  } catch (...) {
    if (bar) bar->abandon();
    throw;
  }
  if (comm_ != nullptr) reduce_evaluation(loss_sum, correct, judged, r.confusion);
  r.samples = n;
  r.loss = loss_sum / static_cast<double>(n);
  r.has_accuracy = accuracy_;
  r.accuracy = accuracy_ ? static_cast<double>(correct) / static_cast<double>(judged) : 0.0;
  r.seconds = seconds_since(t0);

  Logs logs{{"loss", r.loss}};
  if (accuracy_) logs.set("accuracy", r.accuracy);
  if (bar) {
    bar->finish(logs);
  } else if (verbose == Verbose::Lines) {
    out << "Evaluate: " << n << " samples - " << format_seconds(r.seconds) << " - " << r.str() << "\n" << std::flush;
  } else if (verbose == Verbose::Json) {
    out << "{\"eval_loss\":" << json_number(r.loss);
    if (accuracy_) out << ",\"eval_acc\":" << json_number(r.accuracy);
    out << ",\"samples\":" << n << ",\"eval_s\":" << json_number(r.seconds) << "}\n" << std::flush;
  }
  return r;
}

void Trainer::reduce_evaluation(double& loss_sum, int64_t& correct, int64_t& judged,
                                metrics::ConfusionMatrix& confusion) const {
  const int ranks = comm_->size();
  // The largest matrix of any rank, then the counts summed.
  std::vector<double> classes(static_cast<size_t>(ranks), 0.0);
  classes[static_cast<size_t>(comm_->rank())] = static_cast<double>(confusion.num_classes());
  comm_->allreduce_sum(classes.data(), ranks);
  const auto c = static_cast<int64_t>(*std::max_element(classes.begin(), classes.end()));
  std::vector<double> totals(static_cast<size_t>(3 + c * c), 0.0);
  totals[0] = loss_sum;
  totals[1] = static_cast<double>(correct);
  totals[2] = static_cast<double>(judged);
  for (int64_t t = 0; t < confusion.num_classes(); ++t)
    for (int64_t p = 0; p < confusion.num_classes(); ++p)
      totals[static_cast<size_t>(3 + t * c + p)] = static_cast<double>(confusion.count(t, p));
  comm_->allreduce_sum(totals.data(), static_cast<int64_t>(totals.size()));
  loss_sum = totals[0];
  correct = static_cast<int64_t>(totals[1]);
  judged = static_cast<int64_t>(totals[2]);
  metrics::ConfusionMatrix all;
  if (c > 0) all.add(c - 1, c - 1, 0);
  for (int64_t t = 0; t < c; ++t)
    for (int64_t p = 0; p < c; ++p)
      if (const auto k = static_cast<int64_t>(totals[static_cast<size_t>(3 + t * c + p)]); k > 0) all.add(t, p, k);
  confusion = all;
}

EvalResult Trainer::evaluate(const data::Dataset& data, int64_t batch_size, Verbose verbose, std::ostream& out) {
  return run_evaluation(data, batch_size, verbose, out, "evaluate");
}

Tensor Trainer::run_predict(const data::Dataset* data, const Tensor* x, int64_t batch_size, bool probabilities,
                            const char* who) {
  MAAS_CHECK(batch_size >= 1, who << ": batch_size " << batch_size << " must be >= 1");
  if (x != nullptr)
    MAAS_CHECK(x->defined() && x->dim() >= 1,
               who << ": x must be a defined tensor with a first (sample) dimension, got "
                   << (x->defined() ? to_string(x->shape()) : std::string("(undefined)")));
  const int64_t n = data != nullptr ? data->size() : x->size(0);
  MAAS_CHECK(n > 0, who << ": there are no samples to predict");

  NoGradGuard no_grad;
  ModeRestore mode{model_, model_.is_training()};
  model_.eval();

  Tensor result;
  int64_t row = 0;
  std::vector<int64_t> idx;
  Tensor xb, yb;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t end = std::min(n, begin + batch_size), b = end - begin;
    if (data != nullptr) {
      idx.resize(static_cast<size_t>(b));
      std::iota(idx.begin(), idx.end(), begin);
      data->get_batch(idx, xb, yb);
      check_batch(xb, yb, b, who);
    } else {
      xb = x->slice_rows(begin, end);
    }
    Tensor pred = model_(xb);
    MAAS_CHECK(pred.dim() >= 1 && pred.size(0) == b, who << ": the model returned " << to_string(pred.shape())
                                                         << " for a batch of " << b << " samples");
    if (probabilities && output_ == Output::Softmax) {
      MAAS_CHECK(pred.dim() >= 2, who << ": softmax over classes needs outputs [N, C], got "
                                      << to_string(pred.shape()));
      pred = softmax(pred, 1);
    } else if (probabilities && output_ == Output::Sigmoid) {
      pred = sigmoid(pred);
    }
    if (!result.defined()) {
      Shape shape = pred.shape();
      shape[0] = n;
      result = Tensor::empty(shape);
      row = pred.numel() / b;
    }
    MAAS_CHECK(pred.numel() == row * b, who << ": the model's output " << to_string(pred.shape())
                                            << " changed shape between batches (first batch: "
                                            << to_string(result.shape()) << " overall)");
    std::memcpy(result.data() + begin * row, pred.data(), sizeof(float) * static_cast<size_t>(row * b));
  }
  return result;
}

Tensor Trainer::predict(const Tensor& x, int64_t batch_size) {
  return run_predict(nullptr, &x, batch_size, true, "predict");
}

Tensor Trainer::predict(const data::Dataset& data, int64_t batch_size) {
  return run_predict(&data, nullptr, batch_size, true, "predict");
}

Tensor Trainer::predict_raw(const Tensor& x, int64_t batch_size) {
  return run_predict(nullptr, &x, batch_size, false, "predict_raw");
}

}  // namespace maas
