// ReportCallback: the training report page (see maas/report.hpp).
#include "maas/report.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "core/atomic_file.hpp"
#include "maas/error.hpp"
#include "maas/loss.hpp"
#include "maas/nn/module.hpp"
#include "maas/nn/sequential.hpp"
#include "maas/optim/optimizer.hpp"
#include "report/svg.hpp"

namespace maas {

namespace {

// One colour per split, the same in every chart.
constexpr const char* kTrain = "#1f77b4";
constexpr const char* kValidation = "#ff7f0e";
constexpr const char* kTest = "#2ca02c";
constexpr const char* kRate = "#9467bd";
constexpr const char* kSpeed = "#8c564b";

// Page style: no '<' or '&', so the page stays well-formed XML.
constexpr const char* kStyle = R"(
body { font-family: sans-serif; margin: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 22px 0 8px 0; border-bottom: 1px solid #dde; padding-bottom: 3px; }
p.status { color: #555; margin: 0 0 10px 0; }
div.row { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 2px 10px; text-align: right; border-bottom: 1px solid #eef; }
th { background: #f4f6fa; }
td.name, th.name { text-align: left; }
pre { font-size: 12px; background: #f7f7f9; padding: 8px; overflow-x: auto; }
span.big { font-size: 18px; font-weight: bold; }
)";

std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string general(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const std::vector<double>* column(const History& h, const std::string& name) {
  return h.contains(name) ? &h[name] : nullptr;
}

svg::Series series(const History& h, const std::string& key, const std::string& name, const char* color) {
  svg::Series s;
  s.name = name;
  s.color = color;
  for (size_t i = 0; i < h.size(); ++i) s.x.push_back(static_cast<double>(h.epoch[i] + 1));
  s.y = h[key];
  return s;
}

// The series of `metric` for the splits that have it: metric, val_metric, test_metric.
std::vector<svg::Series> splits(const History& h, const std::string& metric) {
  std::vector<svg::Series> out;
  if (h.contains(metric)) out.push_back(series(h, metric, "training", kTrain));
  if (h.contains("val_" + metric)) out.push_back(series(h, "val_" + metric, "validation", kValidation));
  if (h.contains("test_" + metric)) out.push_back(series(h, "test_" + metric, "test", kTest));
  return out;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

ReportCallback::ReportCallback(std::string path, ReportOptions options)
    : path_(std::move(path)), options_(std::move(options)) {
  MAAS_CHECK(!path_.empty(), "ReportCallback: the path is empty; give the .html file to write");
  MAAS_CHECK(options_.batch_size >= 1,
             "ReportCallback: batch_size " << options_.batch_size << " must be >= 1 (for evaluating test_data)");
}

void ReportCallback::on_train_begin() {
  history_ = History();
  evaluation_.reset();
  finished_ = stopped_early_ = false;
  Trainer& t = trainer();
  epochs_ = t.epochs();
  const nn::Module& model = t.model();
  const auto* seq = dynamic_cast<const nn::Network*>(&model);
  model_summary_ = seq ? seq->summary() : model.type_name() + "\n";
  facts_ = {{"loss", t.loss().name()},
            {"optimizer", t.optimizer().name()},
            {"learning rate (start)", general(t.optimizer().lr())},
            {"trainable parameters", std::to_string(model.num_parameters())},
            {"threads", std::to_string(omp_get_max_threads())}};
  write();
}

void ReportCallback::on_epoch_end(int64_t epoch, const Logs& logs) {
  Logs all = logs;
  if (options_.test_data) {
    evaluation_ = trainer().evaluate(*options_.test_data, options_.batch_size);
    all.set("test_loss", evaluation_->loss);
    if (evaluation_->has_accuracy) all.set("test_accuracy", evaluation_->accuracy);
  }
  history_.append(epoch, all);
  write();
}

void ReportCallback::on_train_end(const Logs&) {
  finished_ = true;
  stopped_early_ = trainer().stop_requested() && !history_.epoch.empty() &&
                   history_.epoch.back() + 1 < trainer().epochs();
  write();
}

std::string ReportCallback::html() const {
  const History& h = history_;
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
     << "<meta charset=\"utf-8\"/>\n<title>" << svg::escape(options_.title) << "</title>\n<style>" << kStyle
     << "</style>\n</head>\n<body>\n<h1>" << svg::escape(options_.title) << "</h1>\n";

  // Status line.
  const int64_t total = epochs_;
  os << "<p class=\"status\">";
  if (h.size() == 0) {
    os << "Waiting for the first epoch to end";
  } else {
    os << "Epoch " << h.epoch.back() + 1;
    if (total > 0) os << " of " << total;
    os << (finished_ ? (stopped_early_ ? ": stopped early" : ": finished") : ": running");
  }
  os << " &#8212; written " << utc_now() << "</p>\n";

  // Headline numbers of the last epoch.
  if (h.size() > 0) {
    os << "<div class=\"row\">";
    auto headline = [&](const std::string& key, const std::string& label, bool percent) {
      const std::vector<double>* v = column(h, key);
      if (!v) return;
      const double x = v->back();
      os << "<div>" << svg::escape(label) << "<br/><span class=\"big\">"
         << (percent ? fixed(100 * x, 2) + "%" : fixed(x, 4)) << "</span></div>";
    };
    headline("loss", "training loss", false);
    headline("accuracy", "training accuracy", true);
    headline("val_loss", "validation loss", false);
    headline("val_accuracy", "validation accuracy", true);
    headline("test_loss", "test loss", false);
    headline("test_accuracy", "test accuracy", true);
    if (const auto* img = column(h, "img_s"))
      os << "<div>training speed (median)<br/><span class=\"big\">" << fixed(median(*img), 0)
         << " img/s</span></div>";
    if (const auto* sec = column(h, "time_s")) {
      double sum = 0;
      for (double s : *sec)
        if (std::isfinite(s)) sum += s;
      os << "<div>time, all epochs<br/><span class=\"big\">" << fixed(sum, 1) << " s</span></div>";
    }
    os << "</div>\n";
  }

  // Curves.
  os << "<h2>Curves</h2>\n<div class=\"row\">\n";
  svg::ChartOptions co;
  co.title = "Loss";
  co.y_label = "loss";
  os << svg::line_chart(splits(h, "loss"), co);
  const std::vector<svg::Series> acc = splits(h, "accuracy");
  if (!acc.empty()) {
    co.title = "Accuracy";
    co.y_label = "accuracy";
    co.y_scale = svg::Scale::Linear;
    os << svg::line_chart(acc, co);
  }
  if (h.contains("lr")) {
    co.title = "Learning rate";
    co.y_label = "learning rate";
    co.y_scale = svg::Scale::Auto;
    os << svg::line_chart({series(h, "lr", "learning rate", kRate)}, co);
  }
  if (h.contains("img_s")) {
    co.title = "Training speed";
    co.y_label = "images / s";
    co.y_scale = svg::Scale::Linear;
    os << svg::line_chart({series(h, "img_s", "training img/s", kSpeed)}, co);
  }
  os << "</div>\n";

  // Confusion matrix and per-class table.
  os << "<h2>Test set: confusion matrix and per-class scores</h2>\n";
  if (!evaluation_ || evaluation_->confusion.num_classes() == 0) {
    os << "<p>"
       << (!options_.test_data ? "No test data given (ReportOptions::test_data)."
           : !evaluation_      ? "After the first epoch."
                               : "None: the trainer computes no classes for this loss (a regression?).")
       << "</p>\n";
  } else {
    const metrics::ConfusionMatrix& cm = evaluation_->confusion;
    const int64_t n = cm.num_classes();
    std::vector<std::string> names;
    for (int64_t c = 0; c < n; ++c)
      names.push_back(static_cast<int64_t>(options_.class_names.size()) == n ? options_.class_names[c]
                                                                              : std::to_string(c));
    os << "<div class=\"row\">\n";
    if (n <= 100) {
      std::vector<int64_t> counts;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) counts.push_back(cm.count(i, j));
      os << svg::heat_map(counts, n, names,
                          "Confusion matrix (" + std::to_string(cm.total()) + " samples, epoch " +
                              std::to_string(h.epoch.back() + 1) + ")");
    } else {
      os << "<p>" << n << " classes: too many for a heat map.</p>\n";
    }
    os << "<table class=\"per-class\">\n<tr><th class=\"name\">class</th><th>precision</th><th>recall</th>"
       << "<th>F1</th><th>support</th></tr>\n";
    for (int64_t c = 0; c < n; ++c)
      os << "<tr><td class=\"name\">" << svg::escape(names[c]) << "</td><td>" << fixed(cm.precision(c), 4)
         << "</td><td>" << fixed(cm.recall(c), 4) << "</td><td>" << fixed(cm.f1(c), 4) << "</td><td>"
         << cm.support(c) << "</td></tr>\n";
    os << "<tr><th class=\"name\">accuracy</th><td></td><td></td><td>" << fixed(cm.accuracy(), 4) << "</td><td>"
       << cm.total() << "</td></tr>\n";
    os << "<tr><th class=\"name\">macro avg</th><td>" << fixed(cm.macro_precision(), 4) << "</td><td>"
       << fixed(cm.macro_recall(), 4) << "</td><td>" << fixed(cm.macro_f1(), 4) << "</td><td>" << cm.total()
       << "</td></tr>\n";
    os << "<tr><th class=\"name\">weighted avg</th><td>" << fixed(cm.weighted_precision(), 4) << "</td><td>"
       << fixed(cm.weighted_recall(), 4) << "</td><td>" << fixed(cm.weighted_f1(), 4) << "</td><td>"
       << cm.total() << "</td></tr>\n</table>\n</div>\n";
  }

  // Model and run.
  os << "<h2>Model and run</h2>\n<div class=\"row\">\n<pre>" << svg::escape(model_summary_) << "</pre>\n";
  os << "<table class=\"run\">\n";
  for (const auto* list : {&facts_, &options_.run_options})
    for (const auto& [k, v] : *list)
      os << "<tr><td class=\"name\">" << svg::escape(k) << "</td><td class=\"name\">" << svg::escape(v)
         << "</td></tr>\n";
  os << "</table>\n</div>\n";

  // Every epoch's numbers.
  if (h.size() > 0) {
    os << "<h2>Epochs</h2>\n<details" << (h.size() <= 30 ? " open=\"open\"" : "")
       << "><summary>" << h.size() << " epoch" << (h.size() == 1 ? "" : "s")
       << "</summary>\n<table class=\"epochs\">\n<tr><th>epoch</th>";
    for (const std::string& k : h.keys) os << "<th>" << svg::escape(k) << "</th>";
    os << "</tr>\n";
    for (size_t i = 0; i < h.size(); ++i) {
      os << "<tr><td>" << h.epoch[i] + 1 << "</td>";
      for (const std::string& k : h.keys) {
        const double v = h[k][i];
        os << "<td>"
           << (k == "img_s" ? fixed(v, 0) : k == "time_s" ? fixed(v, 2) : k == "lr" ? general(v) : fixed(v, 4))
           << "</td>";
      }
      os << "</tr>\n";
    }
    os << "</table>\n</details>\n";
  }
  os << "</body>\n</html>\n";
  return os.str();
}

void ReportCallback::write() const {
  if (!is_root()) return;  // a distributed fit: every rank evaluates, rank 0 writes
  const std::string page = html();
  detail::write_file_atomically(path_, page, "ReportCallback");
}

}  // namespace maas
