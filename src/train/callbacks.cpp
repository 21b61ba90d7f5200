// Logs, Callback and the stock callbacks: EarlyStopping, ModelCheckpoint,
// LRSchedulerCallback, CSVLogger, NanGuard.
#include "maas/callbacks.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>

#include "maas/error.hpp"
#include "maas/nn/module.hpp"
#include "maas/optim/optimizer.hpp"
#include "maas/optim/scheduler.hpp"
#include "maas/progress.hpp"
#include "maas/trainer.hpp"

namespace maas {

// ---- Logs -----------------------------------------------------------------

Logs::Logs(std::initializer_list<Item> items) {
  for (const Item& it : items) set(it.first, it.second);
}

void Logs::set(const std::string& name, double value) {
  for (Item& it : items_)
    if (it.first == name) {
      it.second = value;
      return;
    }
  items_.emplace_back(name, value);
}

bool Logs::contains(const std::string& name) const { return get(name).has_value(); }

std::optional<double> Logs::get(const std::string& name) const {
  for (const Item& it : items_)
    if (it.first == name) return it.second;
  return std::nullopt;
}

double Logs::at(const std::string& name) const {
  const std::optional<double> v = get(name);
  MAAS_CHECK(v.has_value(), "Logs: no metric '" << name << "' (present: " << names() << ")");
  return *v;
}

std::string Logs::names() const {
  std::string s;
  for (const Item& it : items_) s += (s.empty() ? "" : ", ") + it.first;
  return s.empty() ? "none" : s;
}

// ---- Callback -------------------------------------------------------------

Callback::~Callback() = default;

bool Callback::is_root() const { return trainer_ == nullptr || trainer_->is_root(); }

Trainer& Callback::trainer() const {
  MAAS_CHECK(trainer_ != nullptr, "Callback: no trainer is set; callbacks run inside Trainer::fit "
                                  "(or call set_trainer() first)");
  return *trainer_;
}

namespace {

bool maximizes(const std::string& monitor, MonitorMode mode) {
  if (mode != MonitorMode::Auto) return mode == MonitorMode::Max;
  for (const char* up : {"acc", "f1", "precision", "recall", "auc"})
    if (monitor.find(up) != std::string::npos) return true;
  return false;
}

double monitored(const Logs& logs, const std::string& monitor, const char* who) {
  const std::optional<double> v = logs.get(monitor);
  MAAS_CHECK(v.has_value(), who << ": the monitored metric '" << monitor << "' is not in the epoch's logs (present: "
                                << logs.names() << ")"
                                << (monitor.rfind("val_", 0) == 0
                                        ? "; give fit() validation data (FitOptions::validation_split or "
                                          "validation_data), or monitor a training metric such as 'loss'"
                                        : ""));
  return *v;
}

// Copies of every parameter and buffer of `m`, in order.
std::vector<std::vector<float>> snapshot(const nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (const auto& [name, t] : m.named_parameters()) out.push_back(t.to_vector());
  for (const auto& [name, t] : m.named_buffers()) out.push_back(t.to_vector());
  return out;
}

void restore(nn::Module& m, const std::vector<std::vector<float>>& values) {
  size_t k = 0;
  auto put = [&](const std::string& name, Tensor t) {
    MAAS_CHECK(k < values.size() && static_cast<int64_t>(values[k].size()) == t.numel(),
               "EarlyStopping: cannot restore '" << name << "': the model's tensors changed since the best epoch");
    std::copy(values[k].begin(), values[k].end(), t.data());
    ++k;
  };
  for (const auto& [name, t] : m.named_parameters()) put(name, t);
  for (const auto& [name, t] : m.named_buffers()) put(name, t);
}

}  // namespace

// ---- EarlyStopping --------------------------------------------------------

EarlyStopping::EarlyStopping(std::string monitor, double min_delta, int64_t patience, MonitorMode mode,
                             bool restore_best_weights)
    : EarlyStopping([&] {
        EarlyStoppingOptions o;
        o.monitor = std::move(monitor);
        o.min_delta = min_delta;
        o.patience = patience;
        o.mode = mode;
        o.restore_best_weights = restore_best_weights;
        return o;
      }()) {}

EarlyStopping::EarlyStopping(EarlyStoppingOptions options) : options_(std::move(options)) {
  MAAS_CHECK(!options_.monitor.empty(), "EarlyStopping: monitor is empty; name a metric such as 'val_loss'");
  MAAS_CHECK(options_.patience >= 0, "EarlyStopping: patience " << options_.patience << " must be >= 0");
  MAAS_CHECK(std::isfinite(options_.min_delta), "EarlyStopping: min_delta " << options_.min_delta << " must be finite");
  MAAS_CHECK(options_.start_from_epoch >= 0,
             "EarlyStopping: start_from_epoch " << options_.start_from_epoch << " must be >= 0");
  options_.min_delta = std::fabs(options_.min_delta);
  maximize_ = maximizes(options_.monitor, options_.mode);
}

bool EarlyStopping::improves(double value, double reference) const {
  // Keras: monitor_op(value - min_delta, reference), min_delta signed by mode.
  return maximize_ ? value - options_.min_delta > reference : value + options_.min_delta < reference;
}

void EarlyStopping::on_train_begin() {
  wait_ = 0;
  stopped_epoch_ = -1;
  best_epoch_ = -1;
  restored_ = false;
  best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(int64_t epoch, const Logs& logs) {
  const double current = monitored(logs, options_.monitor, "EarlyStopping");
  if (epoch < options_.start_from_epoch) return;
  // As Keras: keep the first epoch's weights in case nothing ever improves.
  if (options_.restore_best_weights && best_weights_.empty()) best_weights_ = snapshot(trainer().model());
  ++wait_;
  if (improves(current, best_)) {
    best_ = current;
    best_epoch_ = epoch;
    if (options_.restore_best_weights) best_weights_ = snapshot(trainer().model());
    // Only restart the wait when both the baseline and the previous best are beaten.
    if (!options_.baseline || improves(current, *options_.baseline)) wait_ = 0;
    return;
  }
  if (wait_ >= options_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    trainer().stop_training();
    if (options_.verbose) trainer().out() << "Epoch " << epoch + 1 << ": early stopping\n";
    if (options_.restore_best_weights && !best_weights_.empty()) {
      if (options_.verbose)
        trainer().out() << "Restoring model weights from the end of the best epoch: " << best_epoch_ + 1 << ".\n";
      restore(trainer().model(), best_weights_);
      restored_ = true;
    }
  }
}

// ---- ModelCheckpoint ------------------------------------------------------

ModelCheckpoint::ModelCheckpoint(std::string path, std::string monitor, bool save_best_only, MonitorMode mode,
                                 CheckpointWriter writer)
    : path_(std::move(path)),
      monitor_(std::move(monitor)),
      save_best_only_(save_best_only),
      maximize_(maximizes(monitor_, mode)),
      writer_(std::move(writer)) {
  MAAS_CHECK(!path_.empty(), "ModelCheckpoint: the path is empty");
  MAAS_CHECK(!save_best_only_ || !monitor_.empty(),
             "ModelCheckpoint: save_best_only needs a metric to monitor, such as 'val_loss'");
}

void ModelCheckpoint::on_train_begin() {
  MAAS_CHECK(static_cast<bool>(writer_),
             "ModelCheckpoint: no checkpoint writer set; pass one to the constructor or to set_writer(), "
             "e.g. [&](const std::string& path) { save_model(model, path); }");
  best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  saved_.clear();
}

std::string ModelCheckpoint::format_path(int64_t epoch, const Logs& logs) const {
  std::string out;
  for (size_t i = 0; i < path_.size(); ++i) {
    if (path_[i] != '{') {
      out += path_[i];
      continue;
    }
    const size_t close = path_.find('}', i);
    MAAS_CHECK(close != std::string::npos, "ModelCheckpoint: unclosed '{' in path '" << path_ << "'");
    const std::string field = path_.substr(i + 1, close - i - 1);
    const size_t colon = field.find(':');
    const std::string key = field.substr(0, colon);
    std::string spec = colon == std::string::npos ? "" : field.substr(colon + 1);
    // spec: flags/width/precision then one conversion of d, f, e, g.
    const bool spec_ok = spec.empty() || (spec.find_first_not_of("0123456789.+- ") == spec.size() - 1 &&
                                          std::string("dfeg").find(spec.back()) != std::string::npos);
    MAAS_CHECK(spec_ok, "ModelCheckpoint: format '" << spec << "' of '{" << field << "}' in path '" << path_
                                                    << "' is not a printf spec ending in d, f, e or g (e.g. 02d, .4f)");
    double value = 0.0;
    if (key == "epoch") {
      value = static_cast<double>(epoch + 1);
    } else {
      const std::optional<double> v = logs.get(key);
      MAAS_CHECK(v.has_value(), "ModelCheckpoint: path '" << path_ << "' names '" << key
                                                          << "', which is not in the epoch's logs (present: epoch, "
                                                          << logs.names() << ")");
      value = *v;
    }
    if (spec.empty()) spec = key == "epoch" ? "d" : "g";
    char buf[128];
    const std::string fmt = "%" + (spec.back() == 'd' ? spec.substr(0, spec.size() - 1) + "lld" : spec);
    if (spec.back() == 'd')
      std::snprintf(buf, sizeof buf, fmt.c_str(), static_cast<long long>(std::llround(value)));
    else
      std::snprintf(buf, sizeof buf, fmt.c_str(), value);
    out += buf;
    i = close;
  }
  return out;
}

void ModelCheckpoint::on_epoch_end(int64_t epoch, const Logs& logs) {
  if (save_best_only_) {
    const double current = monitored(logs, monitor_, "ModelCheckpoint");
    const bool better = maximize_ ? current > best_ : current < best_;
    if (!better) return;
    const std::string path = format_path(epoch, logs);
    if (verbose_)
      trainer().out() << "Epoch " << epoch + 1 << ": " << monitor_ << " improved from " << format_metric(best_)
                      << " to " << format_metric(current) << ", saving model to " << path << "\n";
    best_ = current;
    if (is_root()) writer_(path);
    saved_.push_back(path);
  } else {
    const std::string path = format_path(epoch, logs);
    if (verbose_) trainer().out() << "Epoch " << epoch + 1 << ": saving model to " << path << "\n";
    if (is_root()) writer_(path);
    saved_.push_back(path);
  }
}

// ---- LRSchedulerCallback --------------------------------------------------

LRSchedulerCallback::LRSchedulerCallback(optim::LRScheduler& scheduler, std::string monitor)
    : scheduler_(scheduler), monitor_(std::move(monitor)) {}

void LRSchedulerCallback::on_train_begin() {
  MAAS_CHECK(&scheduler_.optimizer() == &trainer().optimizer(),
             "LRSchedulerCallback: the " << scheduler_.name()
                                         << " scheduler drives a different optimizer than the trainer's; "
                                            "construct it on the optimizer given to the Trainer");
}

void LRSchedulerCallback::on_epoch_end(int64_t, const Logs& logs) {
  if (!scheduler_.needs_metric()) {
    scheduler_.step();
    return;
  }
  auto* plateau = dynamic_cast<optim::ReduceLROnPlateau*>(&scheduler_);
  MAAS_CHECK(plateau != nullptr, "LRSchedulerCallback: scheduler " << scheduler_.name()
                                                                   << " needs a metric, but only ReduceLROnPlateau "
                                                                      "is known to take one");
  plateau->step(monitored(logs, monitor_, "LRSchedulerCallback"));
}

// ---- CSVLogger ------------------------------------------------------------

CSVLogger::CSVLogger(std::string path, bool append, char separator)
    : path_(std::move(path)), append_(append), separator_(separator) {
  MAAS_CHECK(!path_.empty(), "CSVLogger: the path is empty");
  MAAS_CHECK(separator_ != '\n' && separator_ != '"', "CSVLogger: separator must not be a newline or a quote");
}

void CSVLogger::on_train_begin() {
  if (!is_root()) return;
  bool has_content = false;
  if (append_) {
    std::ifstream existing(path_);
    has_content = existing.good() && existing.peek() != std::ifstream::traits_type::eof();
  }
  file_.close();
  file_.clear();
  file_.open(path_, append_ ? std::ios::app : std::ios::trunc);
  MAAS_CHECK(file_.is_open(), "CSVLogger: cannot open '" << path_ << "' for writing: " << std::strerror(errno));
  header_written_ = has_content;
  keys_.clear();
}

void CSVLogger::on_epoch_end(int64_t epoch, const Logs& logs) {
  if (!is_root()) return;
  if (keys_.empty())
    for (const auto& [name, value] : logs) keys_.push_back(name);
  if (!header_written_) {
    file_ << "epoch";
    for (const std::string& k : keys_) file_ << separator_ << k;
    file_ << '\n';
    header_written_ = true;
  }
  file_ << epoch + 1;
  for (const std::string& k : keys_) {
    file_ << separator_;
    if (const std::optional<double> v = logs.get(k)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9g", *v);
      file_ << buf;
    }
  }
  file_ << '\n' << std::flush;
  MAAS_CHECK(file_.good(), "CSVLogger: writing to '" << path_ << "' failed");
}

void CSVLogger::on_train_end(const Logs&) { file_.close(); }

// ---- NanGuard -------------------------------------------------------------

std::string NanGuard::message(const Trainer& trainer, int64_t step, double loss) {
  std::ostringstream os;
  os << "NaN guard: the loss became " << (std::isnan(loss) ? "NaN" : "Inf") << " at epoch " << trainer.epoch() + 1
     << "/" << trainer.epochs() << ", step " << step + 1 << "/" << trainer.steps_per_epoch() << " (global step "
     << trainer.global_step() << "). The learning rate (" << trainer.optimizer().lr()
     << ") is probably too high: lower it, or clip gradients (FitOptions::clip_grad_norm); also check the "
        "inputs and targets for NaN/Inf. (FitOptions::nan_guard = false turns this check off.)";
  return os.str();
}

void NanGuard::on_batch_end(int64_t step, const Logs& logs) {
  const std::optional<double> loss = logs.contains("batch_loss") ? logs.get("batch_loss") : logs.get("loss");
  if (loss && !std::isfinite(*loss)) throw Error(message(trainer(), step, *loss));
}

}  // namespace maas
