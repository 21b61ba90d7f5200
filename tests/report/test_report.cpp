// ReportCallback: the page is well-formed XHTML, holds one point per epoch
// per curve, the confusion matrix of evaluate(), gaps for NaN/Inf, and is
// rewritten (atomically) after every epoch.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "data/temp_dir.hpp"
#include "gradcheck.hpp"
#include "maas/maas.hpp"
#include "maas/report.hpp"
#include "report/xml.hpp"

using namespace maas;
using maas::test::parse_xml;
using maas::test::random_classes;
using maas::test::silent;
using maas::test::TempDir;
using maas::test::XmlElement;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The points of series `name` in the chart titled `title`: the number of
// path commands (M or L) and the number of subpaths (M).
struct Curve {
  bool found = false;
  int points = 0, pieces = 0;
};
Curve curve(const XmlElement& root, const std::string& title, const std::string& name) {
  Curve c;
  for (const XmlElement* svg : root.all("svg")) {
    const auto texts = svg->all("text");
    if (texts.empty() || texts[0]->text != title) continue;
    for (const XmlElement* g : svg->all("g"))
      if (g->attr("class") == "series" && g->attr("data-name") == name) {
        c.found = true;
        for (const XmlElement* p : g->all("path"))
          for (char ch : p->attr("d")) {
            c.points += ch == 'M' || ch == 'L';
            c.pieces += ch == 'M';
          }
      }
  }
  return c;
}

struct Rig {
  nn::Sequential model{Shape{4}};
  CrossEntropyLoss loss;
  std::unique_ptr<optim::Adam> adam;
  std::unique_ptr<Trainer> trainer;
  Rig() {
    manual_seed(3);
    model.add(nn::Dense(8)).add(nn::ReLU()).add(nn::Dense(3));
    adam = std::make_unique<optim::Adam>(model.parameters());
    trainer = std::make_unique<Trainer>(model, loss, *adam);
  }
};

// Reads the page after every epoch (it runs after the report).
struct Watcher : Callback {
  std::string path;
  std::vector<int> points;
  std::vector<bool> tmp_left;
  explicit Watcher(std::string p) : path(std::move(p)) {}
  void on_epoch_end(int64_t, const Logs&) override {
    points.push_back(curve(*parse_xml(slurp(path)), "Loss", "training").points);
    // A temporary file of the page's writes ("r.html.tmp.<pid>") left beside it.
    bool left = false;
    const std::filesystem::path page(path);
    for (const auto& e : std::filesystem::directory_iterator(page.parent_path()))
      left = left || e.path().filename().string().rfind(page.filename().string() + ".tmp", 0) == 0;
    tmp_left.push_back(left);
  }
};

}  // namespace

TEST_CASE("ReportCallback writes well-formed XHTML with every curve and the confusion matrix", "[report]") {
  TempDir dir("report");
  Rig rig;
  const data::TensorDataset train = random_classes(96, 4, 3, 11);
  const data::TensorDataset test = random_classes(40, 4, 3, 12);
  ReportOptions ro;
  ro.test_data = &test;
  ro.class_names = {"cat", "dog", "<bird & co>"};
  ro.run_options = {{"data", "synthetic \"blobs\""}, {"batch", "16"}};
  const std::string path = dir / "r.html";
  auto report = std::make_shared<ReportCallback>(path, ro);
  auto watcher = std::make_shared<Watcher>(path);
  FitOptions o = silent(3, 16);
  o.validation_split = 0.25;
  o.callbacks = {report, watcher};
  const History h = rig.trainer->fit(train, o);
  REQUIRE(h.size() == 3);

  const std::string page = slurp(path);
  std::unique_ptr<XmlElement> doc;
  REQUIRE_NOTHROW(doc = parse_xml(page));
  CHECK(doc->name == "html");
  CHECK(doc->attr("xmlns") == "http://www.w3.org/1999/xhtml");
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("http://") == page.find("http://www.w3.org"));  // no links out but the namespaces
  CHECK(page.find("https://") == std::string::npos);

  // One point per epoch, for each split, in the loss and accuracy charts.
  for (const char* chart : {"Loss", "Accuracy"})
    for (const char* split : {"training", "validation", "test"}) {
      INFO(chart << " / " << split);
      const Curve c = curve(*doc, chart, split);
      CHECK(c.found);
      CHECK(c.points == 3);
      CHECK(c.pieces == 1);
    }
  CHECK(curve(*doc, "Learning rate", "learning rate").points == 3);
  CHECK(curve(*doc, "Training speed", "training img/s").points == 3);

  // The history carries the test metrics, equal to an evaluation at the end.
  const EvalResult r = rig.trainer->evaluate(test);
  REQUIRE(report->history().contains("test_loss"));
  CHECK(report->history()["test_loss"].back() == Approx(r.loss));
  CHECK(report->history()["test_accuracy"].back() == Approx(r.accuracy));

  // The heat map's cells are evaluate()'s confusion matrix.
  int cells = 0;
  for (const XmlElement* rect : doc->all("rect")) {
    if (rect->attr("class") != "cell") continue;
    ++cells;
    const int i = std::stoi(rect->attr("data-true")), j = std::stoi(rect->attr("data-pred"));
    INFO("cell " << i << ", " << j);
    CHECK(std::stoll(rect->attr("data-count")) == r.confusion.count(i, j));
  }
  CHECK(cells == 9);
  CHECK(r.confusion.total() == 40);

  // The per-class table: one row per class with the matrix's scores.
  const std::string text = doc->all_text();
  CHECK(text.find("<bird & co>") != std::string::npos);
  CHECK(text.find("synthetic \"blobs\"") != std::string::npos);
  CHECK(text.find("cross_entropy") != std::string::npos);
  CHECK(text.find("(Dense)") != std::string::npos);  // the model summary
  CHECK(text.find("Epoch 3 of 3: finished") != std::string::npos);
  for (const XmlElement* table : doc->all("table")) {
    if (table->attr("class") != "per-class") continue;
    const auto rows = table->all("tr");
    REQUIRE(rows.size() == 1 + 3 + 3);  // header, classes, accuracy / macro / weighted
    for (int c = 0; c < 3; ++c) {
      const auto td = rows[1 + c]->all("td");
      CHECK(td[0]->text == ro.class_names[c]);
      CHECK(std::stod(td[1]->text) == Approx(r.confusion.precision(c)).margin(5e-5));
      CHECK(std::stod(td[2]->text) == Approx(r.confusion.recall(c)).margin(5e-5));
      CHECK(std::stod(td[3]->text) == Approx(r.confusion.f1(c)).margin(5e-5));
      CHECK(std::stoll(td[4]->text) == r.confusion.support(c));
    }
  }

  // Rewritten after every epoch, through a temporary file that is gone.
  CHECK(watcher->points == std::vector<int>{1, 2, 3});
  CHECK(watcher->tmp_left == std::vector<bool>{false, false, false});
  CHECK(dir.entries() == std::vector<std::string>{"r.html"});
}

TEST_CASE("ReportCallback shows NaN and Inf as gaps and stays well-formed", "[report]") {
  TempDir dir("report_nan");
  Rig rig;
  ReportCallback report(dir / "r.html");
  report.set_trainer(rig.trainer.get());
  report.on_train_begin();
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<double> losses = {2.0, nan, 1.0, 0.5, inf, 0.25};
  for (size_t e = 0; e < losses.size(); ++e)
    report.on_epoch_end(static_cast<int64_t>(e), Logs{{"loss", losses[e]}, {"accuracy", e == 2 ? -inf : 0.5},
                                                       {"lr", 0.01}, {"time_s", 1.0}, {"img_s", 100.0}});
  const std::unique_ptr<XmlElement> doc = parse_xml(slurp(dir / "r.html"));
  const Curve loss = curve(*doc, "Loss", "training");
  CHECK(loss.points == 4);  // the finite ones
  CHECK(loss.pieces == 3);  // [2] [1, 0.5] [0.25]
  const Curve acc = curve(*doc, "Accuracy", "training");
  CHECK(acc.points == 5);
  CHECK(acc.pieces == 2);
  // In the epochs table they read as text.
  const std::string text = doc->all_text();
  CHECK(text.find("nan") != std::string::npos);
  CHECK(text.find("inf") != std::string::npos);
  CHECK(text.find("No test data given") != std::string::npos);
}

TEST_CASE("ReportCallback: one epoch, a page before the first epoch, and bad paths", "[report]") {
  TempDir dir("report_one");
  Rig rig;
  const data::TensorDataset train = random_classes(32, 4, 3, 5);
  auto report = std::make_shared<ReportCallback>(dir / "one.html");
  FitOptions o = silent(1, 8);
  o.callbacks = {report};
  rig.trainer->fit(train, o);
  const auto doc = parse_xml(slurp(dir / "one.html"));
  CHECK(curve(*doc, "Loss", "training").points == 1);
  CHECK_FALSE(curve(*doc, "Loss", "validation").found);

  // Before any epoch: a page that says it waits.
  ReportCallback early(dir / "early.html");
  early.set_trainer(rig.trainer.get());
  early.on_train_begin();
  const auto waiting = parse_xml(slurp(dir / "early.html"));
  CHECK(waiting->all_text().find("Waiting for the first epoch") != std::string::npos);

  CHECK_THROWS_AS(ReportCallback(""), Error);
  ReportOptions bad;
  bad.batch_size = 0;
  CHECK_THROWS_AS(ReportCallback("x.html", bad), Error);
  ReportCallback nowhere(dir / "missing-dir/r.html");
  nowhere.set_trainer(rig.trainer.get());
  CHECK_THROWS_WITH(nowhere.on_train_begin(), Catch::Contains("missing-dir/r.html.tmp"));
}

TEST_CASE("ReportCallback for a regression: curves, no confusion matrix", "[report]") {
  TempDir dir("report_mse");
  manual_seed(2);
  nn::Sequential model(Shape{3});
  model.add(nn::Dense(1));
  MSELoss loss;
  optim::SGD sgd(model.parameters());
  Trainer trainer(model, loss, sgd);
  Generator gen(4);
  const data::TensorDataset data(Tensor::randn({24, 3}, gen), Tensor::randn({24, 1}, gen));
  ReportOptions ro;
  ro.test_data = &data;
  FitOptions o = silent(2, 8);
  o.callbacks = {std::make_shared<ReportCallback>(dir / "r.html", ro)};
  trainer.fit(data, o);
  const auto doc = parse_xml(slurp(dir / "r.html"));
  CHECK(curve(*doc, "Loss", "training").points == 2);
  CHECK(curve(*doc, "Loss", "test").points == 2);
  CHECK_FALSE(curve(*doc, "Accuracy", "training").found);
  CHECK(doc->all("rect").size() == 3);  // the plot areas of loss, lr and speed; no cells
  CHECK(doc->all_text().find("computes no classes") != std::string::npos);
}
