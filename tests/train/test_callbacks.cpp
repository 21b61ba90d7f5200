// Callbacks: Logs, the hooks' order, EarlyStopping (Keras semantics),
// ModelCheckpoint, LRSchedulerCallback, CSVLogger and NanGuard.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "gradcheck.hpp"
#include "maas/callbacks.hpp"
#include "maas/loss.hpp"
#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"
#include "maas/optim/scheduler.hpp"
#include "maas/optim/sgd.hpp"
#include "maas/trainer.hpp"

using namespace maas;
using maas::test::random_classes;
using maas::test::silent;

namespace {

// A model, loss, optimizer and trainer for driving callbacks by hand.
struct Rig {
  nn::Sequential model{Shape{3}};
  CrossEntropyLoss loss;
  std::unique_ptr<optim::SGD> sgd;
  std::unique_ptr<Trainer> trainer;
  explicit Rig(float lr = 0.01f, int64_t hidden = 4) {
    manual_seed(5);
    model.add(nn::Dense(hidden)).add(nn::ReLU()).add(nn::Dense(2));
    optim::SGDOptions o;
    o.lr = lr;
    sgd = std::make_unique<optim::SGD>(model.parameters(), o);
    trainer = std::make_unique<Trainer>(model, loss, *sgd);
  }
};

// Feeds `values` of `monitor` to `cb` as epochs 0, 1, ...; returns the epochs run.
int feed(Callback& cb, Trainer& t, const std::string& monitor, const std::vector<double>& values) {
  cb.set_trainer(&t);
  cb.on_train_begin();
  int run = 0;
  for (size_t e = 0; e < values.size(); ++e) {
    ++run;
    cb.on_epoch_end(static_cast<int64_t>(e), Logs{{"loss", 1.0}, {monitor, values[e]}});
    if (t.stop_requested()) break;
  }
  return run;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("maas_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("Logs keep insertion order and name what is missing", "[callbacks]") {
  Logs logs{{"loss", 0.5}, {"accuracy", 0.75}};
  logs.set("lr", 0.1);
  logs.set("loss", 0.25);  // replaced in place
  std::vector<std::string> names;
  for (const auto& [k, v] : logs) names.push_back(k);
  CHECK(names == std::vector<std::string>{"loss", "accuracy", "lr"});
  CHECK(logs.at("loss") == 0.25);
  CHECK(!logs.get("val_loss").has_value());
  CHECK_THROWS_WITH(logs.at("val_loss"), Catch::Contains("'val_loss'") && Catch::Contains("loss, accuracy, lr"));
  CHECK_THROWS_WITH(NanGuard().trainer(), Catch::Contains("no trainer"));
}

TEST_CASE("callbacks see train, epoch and batch hooks in order", "[callbacks]") {
  struct Recorder : Callback {
    std::vector<std::string> events;
    void on_train_begin() override { events.push_back("train_begin"); }
    void on_train_end(const Logs& logs) override { events.push_back("train_end " + std::to_string(logs.size())); }
    void on_epoch_begin(int64_t e) override { events.push_back("epoch_begin " + std::to_string(e)); }
    void on_epoch_end(int64_t e, const Logs& logs) override {
      events.push_back("epoch_end " + std::to_string(e) + " " + logs.names());
    }
    void on_batch_begin(int64_t s) override { events.push_back("batch_begin " + std::to_string(s)); }
    void on_batch_end(int64_t s, const Logs& logs) override {
      events.push_back("batch_end " + std::to_string(s) + " " + logs.names());
    }
  };
  Rig rig;
  auto rec = std::make_shared<Recorder>();
  FitOptions o = silent(2, 4);
  o.callbacks = {rec};
  rig.trainer->fit(random_classes(6, 3, 2, 1), o);
  const std::vector<std::string> expected = {
      "train_begin",
      "epoch_begin 0",
      "batch_begin 0",
      "batch_end 0 loss, accuracy, batch_loss",
      "batch_begin 1",
      "batch_end 1 loss, accuracy, batch_loss",
      "epoch_end 0 loss, accuracy, lr, time_s, img_s",
      "epoch_begin 1",
      "batch_begin 0",
      "batch_end 0 loss, accuracy, batch_loss",
      "batch_begin 1",
      "batch_end 1 loss, accuracy, batch_loss",
      "epoch_end 1 loss, accuracy, lr, time_s, img_s",
      "train_end 5",
  };
  CHECK(rec->events == expected);
}

TEST_CASE("EarlyStopping follows Keras: patience, min_delta, mode", "[callbacks]") {
  Rig rig;
  SECTION("patience 2: stops on the second epoch without improvement") {
    EarlyStopping es("val_loss", 0.0, 2);
    // best 0.8 at epoch 1; epochs 2 and 3 do not improve -> stop at 3.
    CHECK(feed(es, *rig.trainer, "val_loss", {1.0, 0.8, 0.9, 0.85, 0.1}) == 4);
    CHECK(es.stopped_epoch() == 3);
    CHECK(es.best_epoch() == 1);
    CHECK(es.best() == 0.8);
  }
  SECTION("patience 0 stops at the first epoch without improvement") {
    EarlyStopping es("val_loss");
    CHECK(feed(es, *rig.trainer, "val_loss", {1.0, 0.9, 0.95, 0.5}) == 3);
  }
  SECTION("min_delta: an improvement of less than min_delta does not count") {
    EarlyStopping es("val_loss", 0.1, 1);
    CHECK(feed(es, *rig.trainer, "val_loss", {1.0, 0.95, 0.5}) == 2);
  }
  SECTION("accuracy is maximised in auto mode") {
    EarlyStopping es("val_accuracy", 0.0, 1);
    CHECK(feed(es, *rig.trainer, "val_accuracy", {0.5, 0.6, 0.7, 0.65, 0.9}) == 4);
    CHECK(es.best() == 0.7);
    Rig fresh;  // rig's trainer still holds the stop request
    EarlyStopping forced("val_accuracy", 0.0, 1, MonitorMode::Min);
    CHECK(feed(forced, *fresh.trainer, "val_accuracy", {0.5, 0.6, 0.7}) == 2);
  }
  SECTION("a missing metric is an error that suggests validation data") {
    EarlyStopping es;
    es.set_trainer(rig.trainer.get());
    es.on_train_begin();
    CHECK_THROWS_WITH(es.on_epoch_end(0, Logs{{"loss", 1.0}}),
                      Catch::Contains("'val_loss'") && Catch::Contains("validation_split"));
  }
}

TEST_CASE("EarlyStopping in fit stops early and restores the best weights", "[callbacks]") {
  // Random labels: the model memorises the training set while the validation
  // loss soon starts to rise.
  data::TensorDataset train = random_classes(48, 3, 2, 21);
  data::TensorDataset val = random_classes(48, 3, 2, 22);
  Rig rig(0.5f, 64);
  EarlyStoppingOptions eo;
  eo.patience = 2;
  eo.restore_best_weights = true;
  auto es = std::make_shared<EarlyStopping>(eo);
  FitOptions o = silent(200, 8);
  o.validation_data = &val;
  o.callbacks = {es};
  History h = rig.trainer->fit(train, o);

  const std::vector<double>& val_loss = h["val_loss"];
  REQUIRE(h.size() < 200);
  CHECK(es->stopped_epoch() == static_cast<int64_t>(h.size()) - 1);
  const auto best = std::min_element(val_loss.begin(), val_loss.end());
  CHECK(es->best_epoch() == best - val_loss.begin());
  CHECK(es->restored());
  // The restored model scores the best epoch's validation loss again.
  CHECK(rig.trainer->evaluate(val, 8).loss == Approx(*best).epsilon(1e-6));
  CHECK(val_loss.back() > *best);
}

TEST_CASE("ModelCheckpoint writes on improvement through the writer", "[callbacks]") {
  Rig rig;
  std::vector<std::string> written;
  ModelCheckpoint cp("model-{epoch:02d}-{val_loss:.2f}.h5", "val_loss", true, MonitorMode::Auto,
                     [&](const std::string& p) { written.push_back(p); });
  feed(cp, *rig.trainer, "val_loss", {0.5, 0.4, 0.45, 0.3});
  CHECK(written == std::vector<std::string>{"model-01-0.50.h5", "model-02-0.40.h5", "model-04-0.30.h5"});
  CHECK(cp.saved_paths() == written);
  CHECK(cp.best() == 0.3);

  ModelCheckpoint every("ckpt-{epoch}.h5", "", false, MonitorMode::Auto, [&](const std::string&) {});
  feed(every, *rig.trainer, "val_loss", {0.5, 0.6});
  CHECK(every.saved_paths() == std::vector<std::string>{"ckpt-1.h5", "ckpt-2.h5"});

  CHECK_THROWS_WITH(ModelCheckpoint("m-{val_acc:.2f}.h5", "val_loss", false, MonitorMode::Auto,
                                    [](const std::string&) {})
                        .format_path(0, Logs{{"val_loss", 1.0}}),
                    Catch::Contains("'val_acc'"));
  CHECK_THROWS_WITH(ModelCheckpoint("m-{epoch:%s}.h5").format_path(0, Logs{}), Catch::Contains("printf spec"));

  // Without a writer, fit fails at once with a clear message.
  ModelCheckpoint none("model.h5");
  none.set_trainer(rig.trainer.get());
  CHECK_THROWS_WITH(none.on_train_begin(), Catch::Contains("no checkpoint writer set"));
}

TEST_CASE("LRSchedulerCallback steps once per epoch; ReduceLROnPlateau gets the metric", "[callbacks]") {
  data::TensorDataset train = random_classes(8, 3, 2, 23);
  SECTION("StepLR in fit: lr in the logs is the epoch's rate") {
    Rig rig(0.1f);
    optim::StepLR sched(*rig.sgd, 2, 0.1);
    FitOptions o = silent(5, 4);
    o.callbacks = {std::make_shared<LRSchedulerCallback>(sched)};
    History h = rig.trainer->fit(train, o);
    const std::vector<double>& lr = h["lr"];
    REQUIRE(lr.size() == 5);
    CHECK(lr[0] == Approx(0.1));
    CHECK(lr[1] == Approx(0.1));
    CHECK(lr[2] == Approx(0.01));
    CHECK(lr[3] == Approx(0.01));
    CHECK(lr[4] == Approx(0.001));
  }
  SECTION("ReduceLROnPlateau is fed the monitored value") {
    Rig rig(0.1f);
    optim::ReduceLROnPlateauOptions po;
    po.patience = 1;
    po.factor = 0.5;
    optim::ReduceLROnPlateau plateau(*rig.sgd, po);
    LRSchedulerCallback cb(plateau, "val_loss");
    feed(cb, *rig.trainer, "val_loss", {1.0, 1.0, 1.0});
    CHECK(rig.sgd->lr() == Approx(0.05));
    CHECK_THROWS_WITH(cb.on_epoch_end(3, Logs{{"loss", 1.0}}), Catch::Contains("'val_loss'"));
  }
  SECTION("a scheduler on another optimizer is refused") {
    Rig rig, other;
    optim::StepLR sched(*other.sgd, 1);
    FitOptions o = silent(1, 4);
    o.callbacks = {std::make_shared<LRSchedulerCallback>(sched)};
    CHECK_THROWS_WITH(rig.trainer->fit(train, o), Catch::Contains("different optimizer"));
  }
}

TEST_CASE("CSVLogger writes a header and one row per epoch", "[callbacks]") {
  const std::string path = temp_path("csv_logger.csv");
  data::TensorDataset train = random_classes(12, 3, 2, 24);
  data::TensorDataset val = random_classes(4, 3, 2, 25);
  Rig rig;
  FitOptions o = silent(3, 4);
  o.validation_data = &val;
  o.callbacks = {std::make_shared<CSVLogger>(path)};
  History h = rig.trainer->fit(train, o);

  std::istringstream csv(read_file(path));
  std::vector<std::string> rows;
  for (std::string line; std::getline(csv, line);) rows.push_back(line);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == "epoch,loss,accuracy,val_loss,val_accuracy,lr,time_s,img_s");
  for (int e = 0; e < 3; ++e) {
    std::istringstream row(rows[static_cast<size_t>(e + 1)]);
    std::string cell;
    std::getline(row, cell, ',');
    CHECK(cell == std::to_string(e + 1));
    std::getline(row, cell, ',');
    CHECK(std::stod(cell) == Approx(h["loss"][static_cast<size_t>(e)]).epsilon(1e-8));
  }

  // append: a second fit adds rows without a second header.
  o.callbacks = {std::make_shared<CSVLogger>(path, true)};
  o.epochs = 1;
  rig.trainer->fit(train, o);
  const std::string text = read_file(path);
  CHECK(std::count(text.begin(), text.end(), '\n') == 5);
  std::remove(path.c_str());

  CSVLogger bad("/nonexistent-dir/x.csv");
  bad.set_trainer(rig.trainer.get());
  CHECK_THROWS_WITH(bad.on_train_begin(), Catch::Contains("cannot open '/nonexistent-dir/x.csv'"));
}

TEST_CASE("NanGuard names epoch, step and global step, 1-based", "[callbacks]") {
  Rig rig;
  NanGuard guard;
  guard.set_trainer(rig.trainer.get());
  CHECK_NOTHROW(guard.on_batch_end(0, Logs{{"loss", 1.0}, {"batch_loss", 1.0}}));
  rig.trainer->set_global_step(41);
  const std::string msg = NanGuard::message(*rig.trainer, 6, std::nan(""));
  CHECK_THAT(msg, Catch::Contains("became NaN at epoch 1/0, step 7/0 (global step 41)") &&
                      Catch::Contains("learning rate (0.01)"));
  CHECK_THROWS_WITH(guard.on_batch_end(2, Logs{{"loss", 1.0}, {"batch_loss", INFINITY}}),
                    Catch::Contains("became Inf") && Catch::Contains("step 3/"));
}
