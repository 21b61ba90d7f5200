// Learning-rate schedules: closed forms of torch.optim.lr_scheduler, and
// ReduceLROnPlateau's bookkeeping, all in double.
#include "maas/optim/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "maas/error.hpp"

namespace maas::optim {

// ---- LRScheduler -----------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& opt) : opt_(opt), base_lr_(opt.lr()), last_lr_(opt.lr()) {}

LRScheduler::~LRScheduler() = default;

void LRScheduler::step() {
  ++last_epoch_;
  apply_lr(lr_at(last_epoch_));
}

double LRScheduler::lr_at(int64_t) const { return base_lr_; }

void LRScheduler::apply_lr(double lr) {
  opt_.set_lr(static_cast<float>(lr));
  last_lr_ = opt_.lr();
}

NamedNumbers LRScheduler::state() const {
  return {{"last_epoch", static_cast<double>(last_epoch_)}, {"base_lr", base_lr_}, {"last_lr", last_lr_}};
}

void LRScheduler::check_names(const NamedNumbers& state, const std::vector<std::string>& keys) const {
  std::string expected;
  for (const std::string& k : keys) expected += (expected.empty() ? "" : ", ") + k;
  for (size_t i = 0; i < state.size(); ++i) {
    const std::string& name_i = state[i].first;
    MAAS_CHECK(std::find(keys.begin(), keys.end(), name_i) != keys.end(),
               name() << ": load_state: unknown state '" << name_i << "' (expected " << expected << ")");
    for (size_t j = 0; j < i; ++j)
      MAAS_CHECK(state[j].first != name_i, name() << ": load_state: state '" << name_i << "' appears twice");
  }
  for (const std::string& k : keys) lookup(state, k);
}

double LRScheduler::lookup(const NamedNumbers& state, const std::string& key) const {
  const auto it = std::find_if(state.begin(), state.end(), [&](const auto& kv) { return kv.first == key; });
  MAAS_CHECK(it != state.end(), name() << ": load_state: state '" << key << "' is missing");
  return it->second;
}

int64_t LRScheduler::lookup_count(const NamedNumbers& state, const std::string& key) const {
  const double v = lookup(state, key);
  MAAS_CHECK(v >= 0 && v < 9.0e15 && v == std::floor(v),
             name() << ": load_state: state '" << key << "' must be a whole number >= 0, got " << v);
  return static_cast<int64_t>(v);
}

void LRScheduler::load_common(const NamedNumbers& state) {
  const int64_t epoch = lookup_count(state, "last_epoch");
  const double base = lookup(state, "base_lr");
  const double last = lookup(state, "last_lr");
  MAAS_CHECK(std::isfinite(base) && base >= 0, name() << ": load_state: base_lr must be >= 0, got " << base);
  MAAS_CHECK(std::isfinite(last) && last >= 0, name() << ": load_state: last_lr must be >= 0, got " << last);
  last_epoch_ = epoch;
  base_lr_ = base;
  apply_lr(last);
}

void LRScheduler::load_state(const NamedNumbers& state) {
  check_names(state, {"last_epoch", "base_lr", "last_lr"});
  load_common(state);
}

// ---- closed-form schedules -------------------------------------------------

StepLR::StepLR(Optimizer& opt, int64_t step_size, double gamma)
    : LRScheduler(opt), step_size_(step_size), gamma_(gamma) {
  MAAS_CHECK(step_size >= 1, "StepLR: step_size must be >= 1, got " << step_size);
  MAAS_CHECK(std::isfinite(gamma) && gamma >= 0, "StepLR: gamma must be >= 0, got " << gamma);
}

double StepLR::lr_at(int64_t epoch) const {
  return base_lr() * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

ExponentialLR::ExponentialLR(Optimizer& opt, double gamma) : LRScheduler(opt), gamma_(gamma) {
  MAAS_CHECK(std::isfinite(gamma) && gamma >= 0, "ExponentialLR: gamma must be >= 0, got " << gamma);
}

double ExponentialLR::lr_at(int64_t epoch) const { return base_lr() * std::pow(gamma_, static_cast<double>(epoch)); }

CosineAnnealingLR::CosineAnnealingLR(Optimizer& opt, int64_t T_max, double eta_min)
    : LRScheduler(opt), t_max_(T_max), eta_min_(eta_min) {
  MAAS_CHECK(T_max >= 1, "CosineAnnealingLR: T_max must be >= 1, got " << T_max);
  MAAS_CHECK(std::isfinite(eta_min) && eta_min >= 0, "CosineAnnealingLR: eta_min must be >= 0, got " << eta_min);
}

double CosineAnnealingLR::lr_at(int64_t epoch) const {
  const double pi = 3.141592653589793;
  return eta_min_ +
         (base_lr() - eta_min_) * (1 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(t_max_))) / 2;
}

WarmupCosineLR::WarmupCosineLR(Optimizer& opt, int64_t warmup_steps, int64_t decay_steps, double min_lr)
    : LRScheduler(opt), warmup_steps_(warmup_steps), decay_steps_(decay_steps), min_lr_(min_lr) {
  MAAS_CHECK(warmup_steps >= 0, "WarmupCosineLR: warmup_steps must be >= 0, got " << warmup_steps);
  MAAS_CHECK(decay_steps >= warmup_steps, "WarmupCosineLR: decay_steps (" << decay_steps
                                              << ") must be >= warmup_steps (" << warmup_steps
                                              << "): the decay ends at step decay_steps");
  MAAS_CHECK(std::isfinite(min_lr) && min_lr >= 0, "WarmupCosineLR: min_lr must be >= 0, got " << min_lr);
  MAAS_CHECK(min_lr <= base_lr(), "WarmupCosineLR: min_lr " << min_lr << " is above the optimizer's lr "
                                                            << base_lr() << ", which the warm-up reaches");
  apply_lr(lr_at(0));
}

double WarmupCosineLR::lr_at(int64_t it) const {
  const double pi = 3.141592653589793;
  const double base = base_lr();
  if (it < warmup_steps_) return base * static_cast<double>(it + 1) / static_cast<double>(warmup_steps_ + 1);
  if (it >= decay_steps_) return min_lr_;
  const double decay_ratio =
      static_cast<double>(it - warmup_steps_) / static_cast<double>(decay_steps_ - warmup_steps_);
  const double coeff = 0.5 * (1.0 + std::cos(pi * decay_ratio));
  return min_lr_ + coeff * (base - min_lr_);
}

// ---- ReduceLROnPlateau -----------------------------------------------------

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& opt, const ReduceLROnPlateauOptions& options)
    : LRScheduler(opt), options_(options) {
  const ReduceLROnPlateauOptions& o = options;
  MAAS_CHECK(o.factor >= 0 && o.factor < 1, "ReduceLROnPlateau: factor must be in [0, 1), got " << o.factor);
  MAAS_CHECK(o.patience >= 0, "ReduceLROnPlateau: patience must be >= 0, got " << o.patience);
  MAAS_CHECK(std::isfinite(o.threshold) && o.threshold >= 0,
             "ReduceLROnPlateau: threshold must be >= 0, got " << o.threshold);
  MAAS_CHECK(o.cooldown >= 0, "ReduceLROnPlateau: cooldown must be >= 0, got " << o.cooldown);
  MAAS_CHECK(std::isfinite(o.min_lr) && o.min_lr >= 0, "ReduceLROnPlateau: min_lr must be >= 0, got " << o.min_lr);
  MAAS_CHECK(std::isfinite(o.eps) && o.eps >= 0, "ReduceLROnPlateau: eps must be >= 0, got " << o.eps);
  best_ =
      o.mode == PlateauMode::min ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
}

bool ReduceLROnPlateau::is_better(double metric) const {
  const ReduceLROnPlateauOptions& o = options_;
  if (o.mode == PlateauMode::min)
    return o.threshold_mode == ThresholdMode::rel ? metric < best_ * (1. - o.threshold) : metric < best_ - o.threshold;
  return o.threshold_mode == ThresholdMode::rel ? metric > best_ * (o.threshold + 1.) : metric > best_ + o.threshold;
}

void ReduceLROnPlateau::step(double metric) {
  set_last_epoch(last_epoch() + 1);
  if (is_better(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs in cooldown are not counted
  }
  if (num_bad_epochs_ > options_.patience) {
    const double old_lr = optimizer().lr();
    const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
    if (old_lr - new_lr > options_.eps) apply_lr(new_lr);
    cooldown_counter_ = options_.cooldown;
    num_bad_epochs_ = 0;
  }
  set_last_lr(optimizer().lr());
}

void ReduceLROnPlateau::step() {
  MAAS_FAIL("ReduceLROnPlateau: step() needs the monitored metric; call step(metric), e.g. step(validation_loss)");
}

NamedNumbers ReduceLROnPlateau::state() const {
  NamedNumbers s = LRScheduler::state();
  s.emplace_back("best", best_);
  s.emplace_back("num_bad_epochs", static_cast<double>(num_bad_epochs_));
  s.emplace_back("cooldown_counter", static_cast<double>(cooldown_counter_));
  return s;
}

void ReduceLROnPlateau::load_state(const NamedNumbers& state) {
  check_names(state, {"last_epoch", "base_lr", "last_lr", "best", "num_bad_epochs", "cooldown_counter"});
  const double best = lookup(state, "best");
  const int64_t bad = lookup_count(state, "num_bad_epochs");
  const int64_t cooldown = lookup_count(state, "cooldown_counter");
  MAAS_CHECK(!std::isnan(best), "ReduceLROnPlateau: load_state: best is NaN");
  load_common(state);
  best_ = best;
  num_bad_epochs_ = bad;
  cooldown_counter_ = cooldown;
}

}  // namespace maas::optim
