// maas/progress.hpp: Keras' progress bar, for the trainer and for hand-written loops.
//
//   maas::ProgressBar bar(steps, std::cout);
//   for (int64_t s = 1; s <= steps; ++s) {
//     ...
//     bar.update(s, {{"loss", running_loss}}, samples_per_second);
//   }
//   bar.finish({{"loss", epoch_loss}, {"val_loss", val_loss}}, samples_per_second);
//
// draws, redrawing one line with '\r' (at most every 50 ms, always the last step):
//    512/938 [=========>....................] - ETA: 4s - loss: 0.3121 - 2150 img/s
//   938/938 [==============================] - 5s 5ms/step - loss: 0.2987 - val_loss: 0.3012 - 2150 img/s
// Values print as Keras does: %.4f, or %.4e when |v| <= 1e-3.
//
// Trainer::fit prints each epoch through one of the callbacks below (Keras'
// ProgbarLogger), the one FitOptions::verbose names, on Trainer::out(). With
// Verbose::Silent, any of them may be passed in FitOptions::callbacks instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include "maas/callbacks.hpp"

namespace maas {

class ProgressBar {
 public:
  // target: the number of steps (>= 1); width: characters inside the brackets.
  ProgressBar(int64_t target, std::ostream& out, int width = 30);

  // Shows `current` of target steps done, with `values` and, when > 0, the
  // throughput in samples per second.
  void update(int64_t current, const Logs& values, double samples_per_s = 0.0);
  // Redraws the full bar with the total time and `values`, and ends the line.
  void finish(const Logs& values, double samples_per_s = 0.0);
  // Ends the line if one is open (e.g. before an error message).
  void abandon();

  // The line's text without '\r' (for tests): ETA while current < target or
  // !finished, else total time and time per step.
  static std::string line(int64_t current, int64_t target, double elapsed_s, const Logs& values,
                          double samples_per_s, bool finished, int width = 30);

 private:
  void draw(const std::string& text);

  int64_t target_;
  int width_;
  std::ostream& out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int64_t current_ = 0;
  size_t last_width_ = 0;
  bool drawn_ = false;
  bool open_ = false;
};

// A callback that prints a fit's epochs. Trainer::fit calls the one it makes
// for FitOptions::verbose after the other callbacks at an epoch's start, and
// before them at a batch's and an epoch's end, so its lines come first.
class EpochLogger : public Callback {
 public:
  // Ends an open line when the fit stops on an error (before its message).
  virtual void abandon() {}
};

// Verbose::ProgressBar: "Epoch 3/10", then a ProgressBar for the epoch,
// finished with the epoch's time and validation metrics.
class ProgressBarLogger : public EpochLogger {
 public:
  ~ProgressBarLogger() override { abandon(); }  // a fit that threw leaves no line open
  void on_epoch_begin(int64_t epoch) override;
  void on_batch_end(int64_t step, const Logs& logs) override;
  void on_epoch_end(int64_t epoch, const Logs& logs) override;
  void abandon() override;

 private:
  std::unique_ptr<ProgressBar> bar_;
};

// Verbose::Lines: one line per epoch:
//   Epoch 3/10 - 938/938 - 5.1s - loss: 0.2987 - val_loss: 0.3012 - lr: 0.001 - 11645 img/s
class LineLogger : public EpochLogger {
 public:
  void on_epoch_end(int64_t epoch, const Logs& logs) override;
};

// Verbose::Json: one JSON object per epoch (see trainer.hpp).
class JsonLogger : public EpochLogger {
 public:
  void on_epoch_end(int64_t epoch, const Logs& logs) override;
};

// Keras' number format in logs: "%.4f", or "%.4e" when |v| <= 1e-3.
std::string format_metric(double value);
// "4s", "1:05", "1:02:03" (Keras' ETA format).
std::string format_eta(double seconds);
// "40us", "850ms", "3.2s", "1:05" for lines and messages.
std::string format_seconds(double seconds);

}  // namespace maas
