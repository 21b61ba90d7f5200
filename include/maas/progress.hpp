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
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
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

// Keras' number format in logs: "%.4f", or "%.4e" when |v| <= 1e-3.
std::string format_metric(double value);
// "4s", "1:05", "1:02:03" (Keras' ETA format).
std::string format_eta(double seconds);
// "40us", "850ms", "3.2s", "1:05" for lines and messages.
std::string format_seconds(double seconds);

}  // namespace maas
