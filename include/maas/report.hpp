// maas/report.hpp: a training report, one self-contained HTML page per fit.
//
// ReportCallback writes a page that needs nothing but a browser: inline SVG
// charts, a little CSS, no JavaScript and no network access. It holds
//   - the loss and accuracy per epoch, for training, validation and test
//     (as available), the loss on a log scale when it spans a decade;
//   - the learning rate and the training speed per epoch;
//   - the test set's confusion matrix as a heat map with counts, and its
//     per-class precision / recall / F1 table;
//   - the model summary, the run's options, and the epochs' times and img/s.
// The page is rewritten after every epoch (to a temporary file, then renamed
// over the old one), so a running fit can be watched by reloading it. NaN
// and infinite values show as gaps in the curves. In a distributed fit
// (FitOptions::distributed) every rank evaluates the test set, its share of
// it, and rank 0 alone writes the page.
//
// Example:
//   maas::ReportOptions ro;
//   ro.test_data = &test;                      // evaluated after every epoch
//   ro.class_names = {"cat", "dog", "bird"};
//   ro.run_options = {{"batch", "64"}, {"lr", "0.002"}};
//   options.callbacks.push_back(std::make_shared<maas::ReportCallback>("report.html", ro));
//   trainer.fit(train, options);               // then open report.html
//
// The page is XHTML: well-formed XML (an XML parser reads it) that browsers
// read as HTML.
//
// What this file is not: no live server, no per-batch curves, no
// comparison of several runs on one page.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "maas/callbacks.hpp"
#include "maas/data/dataset.hpp"
#include "maas/trainer.hpp"

namespace maas {

struct ReportOptions {
  std::string title = "Training report";
  // Evaluated after every epoch (one extra pass over it): its loss and
  // accuracy join the curves as "test", and its confusion matrix and
  // per-class table fill the page. Must outlive the fit. Without it the page
  // has no confusion matrix.
  const data::Dataset* test_data = nullptr;
  int64_t batch_size = 256;  // for evaluating test_data
  // One name per class for the matrix and the table, or empty (0, 1, ...).
  std::vector<std::string> class_names;
  // Shown in the "Run" table in this order, after what the trainer knows
  // (loss, optimizer, parameters, epochs, threads): e.g. {"data", "data/fashion-mnist"}.
  std::vector<std::pair<std::string, std::string>> run_options;
};

// Writes the report to `path` at the start of the fit (an empty page), after
// every epoch and at its end. Throws maas::Error naming the path when the
// page cannot be written, and at construction for an empty path or a
// batch_size < 1.
class ReportCallback : public Callback {
 public:
  explicit ReportCallback(std::string path, ReportOptions options = {});

  void on_train_begin() override;
  void on_epoch_end(int64_t epoch, const Logs& logs) override;
  void on_train_end(const Logs& logs) override;

  // The page as it stands (what the file holds after the last write).
  std::string html() const;
  const std::string& path() const { return path_; }
  // The epochs seen, with the epoch logs plus test_loss and test_accuracy
  // when test_data is given.
  const History& history() const { return history_; }
  // The last evaluation of test_data (none before the first epoch ends).
  const std::optional<EvalResult>& last_evaluation() const { return evaluation_; }

 private:
  void write() const;

  std::string path_;
  ReportOptions options_;
  History history_;
  std::optional<EvalResult> evaluation_;
  std::string model_summary_;
  std::vector<std::pair<std::string, std::string>> facts_;  // from the trainer, at the start
  int64_t epochs_ = 0;  // the fit's, for "epoch 3 of 10"
  bool finished_ = false;
  bool stopped_early_ = false;
};

}  // namespace maas
