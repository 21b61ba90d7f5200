// maas/callbacks.hpp: hooks into Trainer::fit, as keras.callbacks.
//
// A Callback sees the training as it runs: the start and end of the fit, of
// each epoch and of each batch, with the metrics so far in Logs. Through
// trainer() it reads the model and optimizer and may call stop_training().
// Epoch and step numbers passed to the hooks are 0-based, as Keras'; every
// message and file shows them 1-based, as the progress bar does.
//
// Logs at the end of an epoch hold, in this order (those that apply):
//   loss, accuracy          training means over the epoch's batches
//   val_loss, val_accuracy  on the validation data
//   lr                      the optimizer's learning rate during the epoch
//   time_s                  the epoch's wall time (training + validation)
//   img_s                   training samples per second
// Logs at the end of a batch hold loss and accuracy (the epoch's running
// means, as Keras' progress bar shows) and batch_loss (this batch alone).
//
// Example:
//   auto stop = std::make_shared<maas::EarlyStopping>("val_loss", 0.0, /*patience=*/3,
//                                                     maas::MonitorMode::Auto, /*restore_best_weights=*/true);
//   options.callbacks = {stop, std::make_shared<maas::CSVLogger>("train.csv")};
//
// What this file is not: no TensorBoard, no remote monitors, no per-batch
// learning-rate schedules (step the optimizer's lr in on_batch_end for that).
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "maas/tensor.hpp"

namespace maas {

namespace optim {
class LRScheduler;
}

class Trainer;

// Metric values by name, kept in the order first set (an ordered map).
class Logs {
 public:
  using Item = std::pair<std::string, double>;
  Logs() = default;
  Logs(std::initializer_list<Item> items);

  // Replaces the value of `name`, or appends it.
  void set(const std::string& name, double value);
  bool contains(const std::string& name) const;
  // Throws maas::Error naming the metrics present when `name` is missing.
  double at(const std::string& name) const;
  std::optional<double> get(const std::string& name) const;

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::vector<Item>::const_iterator begin() const { return items_.begin(); }
  std::vector<Item>::const_iterator end() const { return items_.end(); }
  // "loss, accuracy, lr", for messages.
  std::string names() const;

 private:
  std::vector<Item> items_;
};

class Callback {
 public:
  virtual ~Callback();
  virtual void on_train_begin() {}
  // `logs`: the last epoch's (empty when no epoch completed).
  virtual void on_train_end(const Logs& logs) { (void)logs; }
  virtual void on_epoch_begin(int64_t epoch) { (void)epoch; }
  virtual void on_epoch_end(int64_t epoch, const Logs& logs) {
    (void)epoch;
    (void)logs;
  }
  virtual void on_batch_begin(int64_t step) { (void)step; }
  virtual void on_batch_end(int64_t step, const Logs& logs) {
    (void)step;
    (void)logs;
  }

  // The trainer running this callback; Trainer::fit sets it before
  // on_train_begin. Throws maas::Error when none is set.
  Trainer& trainer() const;
  void set_trainer(Trainer* trainer) { trainer_ = trainer; }
  // False on the ranks other than 0 of a distributed fit, which write no
  // files (ModelCheckpoint, CSVLogger); true otherwise.
  bool is_root() const;

 private:
  Trainer* trainer_ = nullptr;
};

// Whether a monitored metric improves downwards or upwards. Auto: upwards for
// names holding "acc", "f1", "precision", "recall" or "auc", else downwards.
enum class MonitorMode { Auto, Min, Max };

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0.0;      // a change smaller than this is no improvement
  int64_t patience = 0;        // epochs without improvement before stopping
  MonitorMode mode = MonitorMode::Auto;
  std::optional<double> baseline;  // the value to beat; unset: the first epoch's
  bool restore_best_weights = false;
  int64_t start_from_epoch = 0;    // epochs of warm-up that are not judged
  bool verbose = false;            // print "Epoch 7: early stopping" to the trainer's stream
};

// Keras' EarlyStopping: stops the fit once `monitor` has not improved by
// more than min_delta for `patience` epochs (patience 0: the first epoch
// without improvement stops). With restore_best_weights, stopping restores
// the parameters and buffers of the best epoch (as Keras, only when it stops
// early: a fit that runs all its epochs keeps the last weights). Throws
// maas::Error when `monitor` is not in the epoch's logs.
class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(std::string monitor = "val_loss", double min_delta = 0.0, int64_t patience = 0,
                         MonitorMode mode = MonitorMode::Auto, bool restore_best_weights = false);
  explicit EarlyStopping(EarlyStoppingOptions options);

  void on_train_begin() override;
  void on_epoch_end(int64_t epoch, const Logs& logs) override;

  const EarlyStoppingOptions& options() const { return options_; }
  double best() const { return best_; }
  // 0-based; -1 before any improvement / when it did not stop.
  int64_t best_epoch() const { return best_epoch_; }
  int64_t stopped_epoch() const { return stopped_epoch_; }
  int64_t wait() const { return wait_; }
  bool restored() const { return restored_; }

 private:
  bool improves(double value, double reference) const;

  EarlyStoppingOptions options_;
  bool maximize_ = false;
  double best_ = 0.0;
  int64_t best_epoch_ = -1;
  int64_t stopped_epoch_ = -1;
  int64_t wait_ = 0;
  bool restored_ = false;
  std::vector<std::vector<float>> best_weights_;  // parameters, then buffers
};

// Writes a checkpoint to `path`. The HDF5 model writer plugs in here.
using CheckpointWriter = std::function<void(const std::string& path)>;

// Keras' ModelCheckpoint: after each epoch calls `writer` with the path (in a
// distributed fit on rank 0 only),
// where "{name}" or "{name:spec}" placeholders are filled from the epoch's
// logs and "{epoch}" is the 1-based epoch, with printf specs:
// "model-{epoch:02d}-{val_loss:.4f}.h5" -> "model-03-0.2871.h5".
// With save_best_only it writes only when `monitor` improves on the best so
// far (strictly), else every epoch. Throws maas::Error at the start of fit
// when no writer is set, and at an epoch end when `monitor` is missing.
class ModelCheckpoint : public Callback {
 public:
  explicit ModelCheckpoint(std::string path, std::string monitor = "val_loss", bool save_best_only = true,
                           MonitorMode mode = MonitorMode::Auto, CheckpointWriter writer = {});
  void set_writer(CheckpointWriter writer) { writer_ = std::move(writer); }
  void set_verbose(bool on) { verbose_ = on; }

  void on_train_begin() override;
  void on_epoch_end(int64_t epoch, const Logs& logs) override;

  // Paths written so far, in order.
  const std::vector<std::string>& saved_paths() const { return saved_; }
  double best() const { return best_; }

  // The path for `epoch` (0-based) and `logs`; public for testing.
  std::string format_path(int64_t epoch, const Logs& logs) const;

 private:
  std::string path_, monitor_;
  bool save_best_only_;
  bool maximize_;
  bool verbose_ = false;
  CheckpointWriter writer_;
  double best_ = 0.0;
  std::vector<std::string> saved_;
};

// Steps an LRScheduler once at the end of each epoch. A metric-driven
// schedule (optim::ReduceLROnPlateau) is fed the epoch's `monitor` value.
// The scheduler must drive the trainer's optimizer (checked at the start of
// fit). "lr" in an epoch's logs is the rate used during that epoch.
class LRSchedulerCallback : public Callback {
 public:
  explicit LRSchedulerCallback(optim::LRScheduler& scheduler, std::string monitor = "val_loss");
  void on_train_begin() override;
  void on_epoch_end(int64_t epoch, const Logs& logs) override;
  optim::LRScheduler& scheduler() const { return scheduler_; }

 private:
  optim::LRScheduler& scheduler_;
  std::string monitor_;
};

// Keras' CSVLogger: a header "epoch,<log names>" at the first epoch, then
// one row per epoch (1-based epoch; numbers with 9 significant digits, empty
// for a value missing in that epoch); in a distributed fit, rank 0 writes. Each row is flushed as written. With
// append, an existing non-empty file gets rows but no second header.
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string path, bool append = false, char separator = ',');
  void on_train_begin() override;
  void on_epoch_end(int64_t epoch, const Logs& logs) override;
  void on_train_end(const Logs& logs) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool append_;
  char separator_;
  bool header_written_ = false;
  std::vector<std::string> keys_;
  std::ofstream file_;
};

// Throws maas::Error as soon as a batch's loss is NaN or infinite, naming
// the epoch, the step within it and the global step (all 1-based) and
// suggesting a lower learning rate. Trainer::fit runs one first when
// FitOptions::nan_guard is on (the default); it checks "batch_loss".
class NanGuard : public Callback {
 public:
  void on_batch_end(int64_t step, const Logs& logs) override;
  // The message for a non-finite `loss` at the trainer's current position.
  static std::string message(const Trainer& trainer, int64_t step, double loss);
};

}  // namespace maas
