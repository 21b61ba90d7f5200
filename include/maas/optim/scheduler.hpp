// maas/optim/scheduler.hpp: learning-rate schedules, as torch.optim.lr_scheduler.
//
// A scheduler sets its optimizer's lr once per epoch: call step() after the
// epoch's optimizer steps. Construction counts as epoch 0 (the optimizer's lr
// then is the base lr); the k-th step() sets the rate for epoch k from a
// closed form, computed in double:
//   StepLR             base * gamma^floor(k / step_size)
//   ExponentialLR      base * gamma^k
//   CosineAnnealingLR  eta_min + (base - eta_min) * (1 + cos(pi * k / T_max)) / 2
//                      (periodic past T_max, as PyTorch's)
// ReduceLROnPlateau instead watches a metric: step(metric) multiplies the lr
// by factor once the metric has not improved for more than `patience` epochs.
// WarmupCosineLR counts optimizer steps, not epochs (nanoGPT's get_lr(it),
// W warm-up steps, D decay steps): call step() after each optimizer step;
// construction already sets the rate of step 0:
//   it < W             base * (it + 1) / (W + 1)
//   W <= it <= D       min_lr + (base - min_lr) * (1 + cos(pi * (it - W) / (D - W))) / 2
//   it > D             min_lr (and at it == W == D)
//
// Example:
//   maas::optim::SGD opt(params, o);
//   maas::optim::CosineAnnealingLR sched(opt, /*T_max=*/epochs);
//   for (int e = 0; e < epochs; ++e) { train_one_epoch(opt); sched.step(); }
//
// Example (nanoGPT's shakespeare_char: lr 1e-3, 100 warm-up steps, cosine to
// 1e-4 at step 2000):
//   maas::optim::AdamW opt(maas::optim::decay_groups(model.parameters(), 0.1f), o);  // o.lr = 1e-3f
//   maas::optim::WarmupCosineLR sched(opt, /*warmup_steps=*/100, /*decay_steps=*/2000, /*min_lr=*/1e-4);
//   for (int it = 0; it < 2000; ++it) { train_step(opt); sched.step(); }
//
// A scheduler keeps a reference to its optimizer, which must outlive it.
// state() gives its position as plain numbers for checkpoints; load_state()
// restores it and sets the optimizer's lr to last_lr().
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "maas/optim/optimizer.hpp"

namespace maas::optim {

using NamedNumbers = std::vector<std::pair<std::string, double>>;

class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& opt);
  virtual ~LRScheduler();
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch and sets the optimizer's lr to lr_at(last_epoch()).
  virtual void step();
  // True for schedules driven by a metric (ReduceLROnPlateau::step(metric)).
  virtual bool needs_metric() const { return false; }
  virtual std::string name() const = 0;

  // The lr this scheduler last set (the optimizer's lr at construction).
  float last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  // The optimizer's lr at construction.
  double base_lr() const { return base_lr_; }
  Optimizer& optimizer() const { return opt_; }

  // {"last_epoch", ...}, {"base_lr", ...}, {"last_lr", ...} and, for
  // ReduceLROnPlateau, {"best", ...}, {"num_bad_epochs", ...}, {"cooldown_counter", ...}.
  virtual NamedNumbers state() const;
  // Restores state() of a scheduler of the same kind (every name, no other),
  // and sets the optimizer's lr to the restored last_lr().
  virtual void load_state(const NamedNumbers& state);

 protected:
  // The closed-form lr at `epoch`; the base class's is constant.
  virtual double lr_at(int64_t epoch) const;
  // Sets the optimizer's lr and last_lr().
  void apply_lr(double lr);
  void set_last_lr(float lr) { last_lr_ = lr; }
  void set_last_epoch(int64_t epoch) { last_epoch_ = epoch; }
  // For load_state(): throws unless `state` holds exactly the names `keys`,
  // each once.
  void check_names(const NamedNumbers& state, const std::vector<std::string>& keys) const;
  // The value named `key` in `state` (throws when missing).
  double lookup(const NamedNumbers& state, const std::string& key) const;
  // The value named `key`, which must be a whole number >= 0.
  int64_t lookup_count(const NamedNumbers& state, const std::string& key) const;
  // Restores last_epoch, base_lr and last_lr, and sets the optimizer's lr.
  void load_common(const NamedNumbers& state);

 private:
  Optimizer& opt_;
  double base_lr_;
  float last_lr_;
  int64_t last_epoch_ = 0;
};

class StepLR : public LRScheduler {
 public:
  // requires: step_size >= 1, gamma >= 0.
  StepLR(Optimizer& opt, int64_t step_size, double gamma = 0.1);
  std::string name() const override { return "StepLR"; }

 protected:
  double lr_at(int64_t epoch) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

class ExponentialLR : public LRScheduler {
 public:
  // requires: gamma >= 0.
  ExponentialLR(Optimizer& opt, double gamma);
  std::string name() const override { return "ExponentialLR"; }

 protected:
  double lr_at(int64_t epoch) const override;

 private:
  double gamma_;
};

class CosineAnnealingLR : public LRScheduler {
 public:
  // requires: T_max >= 1, eta_min >= 0.
  CosineAnnealingLR(Optimizer& opt, int64_t T_max, double eta_min = 0.0);
  std::string name() const override { return "CosineAnnealingLR"; }

 protected:
  double lr_at(int64_t epoch) const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

// Linear warm-up, then a half cosine down to min_lr, then min_lr (nanoGPT's
// get_lr); stepped once per optimizer step.
class WarmupCosineLR : public LRScheduler {
 public:
  // requires: 0 <= warmup_steps <= decay_steps, 0 <= min_lr <= the
  // optimizer's lr (the base). Sets the optimizer's lr to lr(0).
  WarmupCosineLR(Optimizer& opt, int64_t warmup_steps, int64_t decay_steps, double min_lr);
  std::string name() const override { return "WarmupCosineLR"; }

  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t decay_steps() const { return decay_steps_; }
  double min_lr() const { return min_lr_; }

 protected:
  double lr_at(int64_t it) const override;

 private:
  int64_t warmup_steps_;
  int64_t decay_steps_;
  double min_lr_;
};

enum class PlateauMode { min, max };    // whether lower or higher metrics are better
enum class ThresholdMode { rel, abs };  // improvement measured relative to best, or absolute

struct ReduceLROnPlateauOptions {
  PlateauMode mode = PlateauMode::min;
  double factor = 0.1;      // new lr = max(lr * factor, min_lr); in [0, 1)
  int64_t patience = 10;    // bad epochs tolerated before a reduction
  double threshold = 1e-4;  // min mode, rel: better means metric < best * (1 - threshold)
  ThresholdMode threshold_mode = ThresholdMode::rel;
  int64_t cooldown = 0;  // epochs after a reduction during which bad epochs are not counted
  double min_lr = 0.0;
  double eps = 1e-8;  // reductions smaller than eps are skipped
};

// torch.optim.lr_scheduler.ReduceLROnPlateau.
class ReduceLROnPlateau : public LRScheduler {
 public:
  explicit ReduceLROnPlateau(Optimizer& opt, const ReduceLROnPlateauOptions& options = {});
  // Records one epoch's metric (e.g. the validation loss) and reduces the lr
  // when it has not improved for more than `patience` epochs.
  void step(double metric);
  // Throws: this schedule needs the metric.
  void step() override;
  bool needs_metric() const override { return true; }
  std::string name() const override { return "ReduceLROnPlateau"; }

  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  int64_t cooldown_counter() const { return cooldown_counter_; }
  const ReduceLROnPlateauOptions& options() const { return options_; }

  NamedNumbers state() const override;
  void load_state(const NamedNumbers& state) override;

 private:
  bool is_better(double metric) const;

  ReduceLROnPlateauOptions options_;
  double best_;
  int64_t num_bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
};

}  // namespace maas::optim
