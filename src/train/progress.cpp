// ProgressBar: Keras' Progbar (verbose=1) for one epoch; the callbacks that
// print a fit's epochs with it, in lines or in JSON.
#include "maas/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>

#include "maas/error.hpp"
#include "maas/trainer.hpp"
#include "train/output.hpp"

namespace maas {

namespace {
using Clock = std::chrono::steady_clock;
constexpr double kRedrawInterval = 0.05;  // seconds, as Keras'

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

std::string format_metric(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  if (std::fabs(value) > 1e-3)
    std::snprintf(buf, sizeof buf, "%.4f", value);
  else
    std::snprintf(buf, sizeof buf, "%.4e", value);
  return buf;
}

std::string format_eta(double seconds) {
  const long long s = std::isfinite(seconds) && seconds > 0 ? static_cast<long long>(seconds) : 0;
  char buf[64];
  if (s > 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s % 3600) / 60, s % 60);
  else if (s > 60)
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%llds", s);
  return buf;
}

std::string format_seconds(double seconds) {
  char buf[64];
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  if (seconds < 1e-3)
    std::snprintf(buf, sizeof buf, "%.0fus", seconds * 1e6);
  else if (seconds < 0.01)
    std::snprintf(buf, sizeof buf, "%.1fms", seconds * 1e3);
  else if (seconds < 1.0)
    std::snprintf(buf, sizeof buf, "%.0fms", seconds * 1e3);
  else if (seconds < 60.0)
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  else
    return format_eta(seconds);
  return buf;
}

ProgressBar::ProgressBar(int64_t target, std::ostream& out, int width)
    : target_(target), width_(width), out_(out), start_(Clock::now()), last_draw_(start_) {
  MAAS_CHECK(target >= 1, "ProgressBar: target " << target << " must be >= 1 step");
  MAAS_CHECK(width >= 1, "ProgressBar: width " << width << " must be >= 1");
}

std::string ProgressBar::line(int64_t current, int64_t target, double elapsed_s, const Logs& values,
                              double samples_per_s, bool finished, int width) {
  const int digits = static_cast<int>(std::to_string(target).size());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%*lld/%lld [", digits, static_cast<long long>(current),
                static_cast<long long>(target));
  std::string s = buf;
  const double progress = static_cast<double>(current) / static_cast<double>(target);
  const int filled = static_cast<int>(width * progress);
  if (filled > 0) {
    s.append(static_cast<size_t>(filled - 1), '=');
    s += current < target ? '>' : '=';
  }
  s.append(static_cast<size_t>(std::max(width - filled, 0)), '.');
  s += ']';
  const double per_step = current > 0 ? elapsed_s / static_cast<double>(current) : 0.0;
  if (!finished) {
    s += " - ETA: " + format_eta(per_step * static_cast<double>(target - current));
  } else {
    std::snprintf(buf, sizeof buf, " - %.0fs", elapsed_s);
    s += buf;
    if (per_step >= 1.0)
      std::snprintf(buf, sizeof buf, " %.0fs/step", per_step);
    else if (per_step >= 1e-3)
      std::snprintf(buf, sizeof buf, " %.0fms/step", per_step * 1e3);
    else
      std::snprintf(buf, sizeof buf, " %.0fus/step", per_step * 1e6);
    s += buf;
  }
  for (const auto& [name, value] : values) s += " - " + name + ": " + format_metric(value);
  if (samples_per_s > 0) {
    std::snprintf(buf, sizeof buf, " - %.0f img/s", samples_per_s);
    s += buf;
  }
  return s;
}

void ProgressBar::draw(const std::string& text) {
  std::string padded = text;
  // Blank out the tail of a longer previous line.
  if (padded.size() < last_width_) padded.append(last_width_ - padded.size(), ' ');
  out_ << '\r' << padded << std::flush;
  last_width_ = text.size();
  drawn_ = true;
  open_ = true;
}

void ProgressBar::update(int64_t current, const Logs& values, double samples_per_s) {
  const auto now = Clock::now();
  current_ = current;
  if (drawn_ && current < target_ && seconds_between(last_draw_, now) < kRedrawInterval) return;
  last_draw_ = now;
  draw(line(current, target_, seconds_between(start_, now), values, samples_per_s, false, width_));
}

void ProgressBar::finish(const Logs& values, double samples_per_s) {
  const double elapsed = seconds_between(start_, Clock::now());
  draw(line(current_ > 0 ? current_ : target_, target_, elapsed, values, samples_per_s, true, width_));
  out_ << '\n' << std::flush;
  open_ = false;
}

void ProgressBar::abandon() {
  if (open_) out_ << '\n' << std::flush;
  open_ = false;
}

namespace detail {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

Logs shown(const Logs& logs) {
  Logs out;
  for (const char* k : {"loss", "accuracy", "val_loss", "val_accuracy"})
    if (const std::optional<double> v = logs.get(k)) out.set(k, *v);
  return out;
}

}  // namespace detail

// ---- The fit's epoch output ----------------------------------------------------

namespace {

double samples_per_second(const Trainer::EpochProgress& p) {
  return p.train_seconds > 0 ? static_cast<double>(p.samples) / p.train_seconds : 0.0;
}

}  // namespace

void ProgressBarLogger::on_epoch_begin(int64_t epoch) {
  Trainer& t = trainer();
  t.out() << "Epoch " << epoch + 1 << "/" << t.epochs() << "\n";
  bar_ = std::make_unique<ProgressBar>(t.steps_per_epoch(), t.out());
}

void ProgressBarLogger::on_batch_end(int64_t step, const Logs& logs) {
  if (bar_) bar_->update(step + 1, detail::shown(logs), samples_per_second(trainer().epoch_progress()));
}

void ProgressBarLogger::on_epoch_end(int64_t, const Logs& logs) {
  if (!bar_) return;
  bar_->finish(detail::shown(logs), logs.at("img_s"));
  bar_.reset();
}

void ProgressBarLogger::abandon() {
  if (bar_) bar_->abandon();
  bar_.reset();
}

void LineLogger::on_epoch_end(int64_t epoch, const Logs& logs) {
  Trainer& t = trainer();
  std::ostream& out = t.out();
  char buf[64];
  out << "Epoch " << epoch + 1 << "/" << t.epochs() << " - " << t.epoch_progress().steps << "/"
      << t.steps_per_epoch() << " - " << format_seconds(logs.at("time_s"));
  for (const auto& [name, value] : detail::shown(logs)) out << " - " << name << ": " << format_metric(value);
  std::snprintf(buf, sizeof buf, " - lr: %.4g - %.0f img/s", logs.at("lr"), logs.at("img_s"));
  out << buf << "\n" << std::flush;
}

void JsonLogger::on_epoch_end(int64_t epoch, const Logs& logs) {
  using detail::json_number;
  std::ostream& out = trainer().out();
  out << "{\"epoch\":" << epoch + 1 << ",\"train_loss\":" << json_number(logs.at("loss"));
  if (logs.contains("accuracy")) out << ",\"train_acc\":" << json_number(logs.at("accuracy"));
  if (logs.contains("val_loss")) out << ",\"val_loss\":" << json_number(logs.at("val_loss"));
  if (logs.contains("val_accuracy")) out << ",\"val_acc\":" << json_number(logs.at("val_accuracy"));
  out << ",\"lr\":" << json_number(logs.at("lr")) << ",\"train_s\":" << json_number(trainer().epoch_progress().train_seconds)
      << ",\"train_img_s\":" << json_number(logs.at("img_s")) << "}\n"
      << std::flush;
}

}  // namespace maas
