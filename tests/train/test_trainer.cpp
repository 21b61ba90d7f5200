// Trainer: fit / evaluate / predict end to end on tiny problems, output
// modes, determinism, the NaN guard and option checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "maas/loss.hpp"
#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"
#include "maas/optim/sgd.hpp"
#include "maas/trainer.hpp"

using namespace maas;
using maas::test::error_of;
using maas::test::random_classes;
using maas::test::silent;

namespace {

std::shared_ptr<nn::Sequential> mlp(int64_t in, int64_t hidden, int64_t out, uint64_t seed) {
  manual_seed(seed);
  auto model = std::make_shared<nn::Sequential>(Shape{in});
  model->add(nn::Dense(hidden)).add(nn::ReLU()).add(nn::Dense(out));
  return model;
}


// A flat JSON object of numbers and nulls: {"a":1,"b":null}. Throws on anything else.
std::map<std::string, double> parse_flat_json(const std::string& s) {
  std::map<std::string, double> out;
  size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  auto expect = [&](char c) {
    skip();
    if (i >= s.size() || s[i] != c) throw std::runtime_error(std::string("expected '") + c + "' in " + s);
    ++i;
  };
  expect('{');
  skip();
  if (i < s.size() && s[i] == '}') return out;
  for (;;) {
    expect('"');
    const size_t close = s.find('"', i);
    if (close == std::string::npos) throw std::runtime_error("unterminated key in " + s);
    const std::string key = s.substr(i, close - i);
    i = close + 1;
    expect(':');
    skip();
    if (s.compare(i, 4, "null") == 0) {
      out[key] = std::nan("");
      i += 4;
    } else {
      size_t used = 0;
      out[key] = std::stod(s.substr(i), &used);
      if (used == 0) throw std::runtime_error("bad number in " + s);
      i += used;
    }
    skip();
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    expect('}');
    skip();
    if (i != s.size()) throw std::runtime_error("trailing text in " + s);
    return out;
  }
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("an MLP overfits 64 random samples of 4 classes", "[trainer]") {
  data::TensorDataset train = random_classes(64, 8, 4, 11);
  auto model = mlp(8, 64, 4, 1);
  CrossEntropyLoss loss;
  optim::AdamOptions ao;
  ao.lr = 0.01f;
  optim::Adam adam(model->parameters(), ao);
  Trainer trainer(*model, loss, adam);
  History h = trainer.fit(train, silent(60, 16));

  REQUIRE(h.size() == 60);
  CHECK(h["loss"].back() < h["loss"].front() / 10);
  CHECK(h["accuracy"].back() == 1.0);
  EvalResult r = trainer.evaluate(train);
  CHECK(r.accuracy == 1.0);
  CHECK(r.samples == 64);
  CHECK(r.confusion.num_classes() == 4);
  CHECK(r.confusion.accuracy() == 1.0);
  CHECK_THAT(r.report(), Catch::Contains("weighted avg       1.00      1.00      1.00        64"));
  CHECK_THAT(r.str(), Catch::StartsWith("loss: ") && Catch::Contains(" - accuracy: 1.0000"));
}

TEST_CASE("XOR is learnt with BCE-with-logits and with cross-entropy", "[trainer]") {
  Tensor x = Tensor::from_vector({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  optim::AdamOptions ao;
  ao.lr = 0.05f;

  SECTION("one logit, BCE with logits") {
    data::TensorDataset xor_data(x, Tensor::from_vector({0, 1, 1, 0}, {4, 1}));
    auto model = mlp(2, 16, 1, 3);
    BinaryCrossEntropyWithLogitsLoss loss;
    optim::Adam adam(model->parameters(), ao);
    Trainer trainer(*model, loss, adam);
    CHECK(trainer.decision_threshold() == 0.f);
    History h = trainer.fit(xor_data, silent(300, 4));
    CHECK(h["accuracy"].back() == 1.0);
    CHECK(trainer.evaluate(xor_data).accuracy == 1.0);
    Tensor p = trainer.predict(x);  // sigmoid probabilities
    REQUIRE(p.shape() == Shape{4, 1});
    CHECK(p.at({0, 0}) < 0.5f);
    CHECK(p.at({1, 0}) > 0.5f);
    CHECK(p.at({2, 0}) > 0.5f);
    CHECK(p.at({3, 0}) < 0.5f);
  }
  SECTION("two classes, cross-entropy") {
    data::TensorDataset xor_data(x, Tensor::from_vector({0, 1, 1, 0}, {4}));
    auto model = mlp(2, 16, 2, 3);
    CrossEntropyLoss loss;
    optim::Adam adam(model->parameters(), ao);
    Trainer trainer(*model, loss, adam);
    History h = trainer.fit(xor_data, silent(300, 4));
    CHECK(h["accuracy"].back() == 1.0);
    CHECK(trainer.evaluate(xor_data).accuracy == 1.0);
  }
}

TEST_CASE("predict returns softmax probabilities, batch by batch, in eval mode", "[trainer]") {
  data::TensorDataset ds = random_classes(10, 3, 5, 4);
  auto model = mlp(3, 8, 5, 2);
  CrossEntropyLoss loss;
  optim::SGD sgd(model->parameters());
  Trainer trainer(*model, loss, sgd);
  model->train();
  Tensor p = trainer.predict(ds.x(), 3);  // batches of 3, 3, 3, 1
  REQUIRE(p.shape() == Shape{10, 5});
  for (int64_t i = 0; i < 10; ++i) {
    double row = 0;
    for (int64_t c = 0; c < 5; ++c) {
      CHECK(p.at({i, c}) >= 0.f);
      row += p.at({i, c});
    }
    CHECK(row == Approx(1.0).margin(1e-5));
  }
  CHECK(model->is_training());  // the mode is restored
  CHECK(!p.requires_grad());
  // Same numbers in one batch, from a Dataset, and as softmax of the raw outputs.
  Tensor whole = trainer.predict(ds, 256);
  Tensor raw = trainer.predict_raw(ds.x());
  Tensor soft = softmax(raw, 1);
  for (int64_t i = 0; i < p.numel(); ++i) {
    CHECK(whole.data()[i] == Approx(p.data()[i]).margin(1e-6));
    CHECK(soft.data()[i] == Approx(p.data()[i]).margin(1e-6));
  }
  CHECK_THROWS_WITH(trainer.predict(Tensor::zeros({0, 3})), Catch::Contains("no samples"));
  CHECK_THROWS_WITH(trainer.predict(ds.x(), 0), Catch::Contains("batch_size 0"));
}

TEST_CASE("two fits with the same seed give bit-identical losses; another seed differs", "[trainer]") {
  data::TensorDataset train = random_classes(48, 6, 3, 5);
  auto run = [&](uint64_t seed) {
    auto model = mlp(6, 16, 3, 7);
    CrossEntropyLoss loss;
    optim::SGDOptions so;
    so.lr = 0.1f;
    so.momentum = 0.9f;
    optim::SGD sgd(model->parameters(), so);
    Trainer trainer(*model, loss, sgd);
    FitOptions o = silent(4, 8);
    o.seed = seed;
    o.validation_split = 0.25;
    History h = trainer.fit(train, o);
    std::vector<double> out = h["loss"];
    out.insert(out.end(), h["val_loss"].begin(), h["val_loss"].end());
    return out;
  };
  const std::vector<double> a = run(123), b = run(123), c = run(124);
  REQUIRE(a.size() == 8);
  CHECK(a == b);  // exact
  CHECK(a != c);
  // The epoch's shuffle seed depends on both seed and epoch.
  CHECK(Trainer::shuffle_seed(1, 0) != Trainer::shuffle_seed(1, 1));
  CHECK(Trainer::shuffle_seed(1, 0) != Trainer::shuffle_seed(2, 0));
}

TEST_CASE("the NaN guard stops a poisoned learning rate, naming epoch and step", "[trainer]") {
  data::TensorDataset train = random_classes(64, 4, 2, 6);
  auto model = mlp(4, 16, 2, 8);
  MSELoss mse;  // squares overflow quickly
  Tensor y_onehot = Tensor::zeros({64, 2});
  for (int64_t i = 0; i < 64; ++i) y_onehot.at({i, static_cast<int64_t>(train.y().at({i}))}) = 1.f;
  data::TensorDataset regression(train.x(), y_onehot);
  optim::SGDOptions so;
  so.lr = 1e10f;
  optim::SGD sgd(model->parameters(), so);
  Trainer trainer(*model, mse, sgd);
  const std::string msg = error_of([&] { trainer.fit(regression, silent(5, 8)); });
  INFO(msg);
  CHECK_THAT(msg, Catch::Contains("NaN guard") && Catch::Contains("at epoch 1/5, step ") &&
                      Catch::Contains("/8 (global step ") && Catch::Contains("learning rate"));
  // The guard throws before the poisoned step reaches the weights.
  const int64_t step = trainer.global_step();
  CHECK(step >= 2);
  CHECK(trainer.step() + 1 == step);
}

TEST_CASE("validation_split validates on the last fraction, never trains on it", "[trainer]") {
  // Records every batch requested: training batches come first in an epoch.
  struct Recording : data::Dataset {
    data::TensorDataset inner = random_classes(8, 2, 2, 9);
    mutable std::vector<std::vector<int64_t>> calls;
    int64_t size() const override { return inner.size(); }
    Shape sample_shape() const override { return inner.sample_shape(); }
    void get_batch(const std::vector<int64_t>& idx, Tensor& x, Tensor& y) const override {
      calls.push_back(idx);
      inner.get_batch(idx, x, y);
    }
  } ds;
  auto model = mlp(2, 4, 2, 1);
  CrossEntropyLoss loss;
  optim::SGD sgd(model->parameters());
  Trainer trainer(*model, loss, sgd);
  FitOptions o = silent(1, 2);
  o.validation_split = 0.25;  // samples 6 and 7
  History h = trainer.fit(ds, o);
  REQUIRE(ds.calls.size() == 4);  // 3 training batches of 2, then 1 validation batch
  std::vector<int64_t> trained;
  for (int k = 0; k < 3; ++k) trained.insert(trained.end(), ds.calls[k].begin(), ds.calls[k].end());
  std::sort(trained.begin(), trained.end());
  CHECK(trained == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(ds.calls[3] == std::vector<int64_t>{6, 7});
  CHECK(h.contains("val_loss"));
  CHECK(h.contains("val_accuracy"));
}

TEST_CASE("Json mode prints one parseable object per epoch", "[trainer]") {
  data::TensorDataset train = random_classes(20, 3, 2, 10);
  data::TensorDataset val = random_classes(6, 3, 2, 11);
  auto model = mlp(3, 4, 2, 1);
  CrossEntropyLoss loss;
  optim::SGD sgd(model->parameters());
  Trainer trainer(*model, loss, sgd);
  std::ostringstream os;
  FitOptions o = silent(3, 8);
  o.verbose = Verbose::Json;
  o.out = &os;
  o.validation_data = &val;
  History h = trainer.fit(train, o);
  const std::vector<std::string> lines = lines_of(os.str());
  REQUIRE(lines.size() == 3);
  for (size_t e = 0; e < lines.size(); ++e) {
    INFO(lines[e]);
    const std::map<std::string, double> j = parse_flat_json(lines[e]);
    for (const char* key : {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "train_s", "train_img_s"})
      CHECK(j.count(key) == 1);
    CHECK(j.size() == 8);
    CHECK(j.at("epoch") == static_cast<double>(e + 1));
    CHECK(j.at("train_loss") == Approx(h["loss"][e]).epsilon(1e-6));
    CHECK(j.at("val_acc") == Approx(h["val_accuracy"][e]).epsilon(1e-6));
    CHECK(j.at("lr") == Approx(0.01));
  }
}

TEST_CASE("Lines mode prints one line per epoch; the bar redraws with \\r", "[trainer]") {
  data::TensorDataset train = random_classes(20, 3, 2, 12);
  auto model = mlp(3, 4, 2, 1);
  CrossEntropyLoss loss;
  optim::SGD sgd(model->parameters());
  Trainer trainer(*model, loss, sgd);
  std::ostringstream os;
  FitOptions o = silent(2, 8);
  o.out = &os;

  SECTION("Auto on a string stream is Lines") {
    o.verbose = Verbose::Auto;
    trainer.fit(train, o);
    const std::vector<std::string> lines = lines_of(os.str());
    REQUIRE(lines.size() == 2);
    CHECK_THAT(lines[0], Catch::StartsWith("Epoch 1/2 - 3/3 - ") && Catch::Contains(" - loss: ") &&
                             Catch::Contains(" - accuracy: ") && Catch::Contains(" - lr: 0.01 - ") &&
                             Catch::EndsWith(" img/s"));
    CHECK(os.str().find('\r') == std::string::npos);
  }
  SECTION("ProgressBar") {
    o.verbose = Verbose::ProgressBar;
    trainer.fit(train, o);
    const std::string s = os.str();
    CHECK_THAT(s, Catch::StartsWith("Epoch 1/2\n\r1/3 [") && Catch::Contains("Epoch 2/2\n"));
    CHECK_THAT(s, Catch::Contains("\r3/3 [==============================] - ") && Catch::Contains("/step - loss: "));
    CHECK_THAT(s, Catch::Contains("ETA: "));
    CHECK(std::count(s.begin(), s.end(), '\n') == 4);
  }
}

TEST_CASE("stop_training from on_batch_end ends the fit after that batch", "[trainer]") {
  struct StopAtThird : Callback {
    int batches = 0;
    void on_batch_end(int64_t, const Logs&) override {
      if (++batches == 3) trainer().stop_training();
    }
  };
  data::TensorDataset train = random_classes(40, 3, 2, 13);
  auto model = mlp(3, 4, 2, 1);
  CrossEntropyLoss loss;
  optim::SGD sgd(model->parameters());
  Trainer trainer(*model, loss, sgd);
  auto stopper = std::make_shared<StopAtThird>();
  FitOptions o = silent(5, 4);
  o.callbacks = {stopper};
  History h = trainer.fit(train, o);
  CHECK(stopper->batches == 3);
  CHECK(h.size() == 1);  // the interrupted epoch is still logged
  CHECK(trainer.global_step() == 3);
  CHECK(sgd.step_count() == 3);
}

TEST_CASE("drop_last, initial_epoch, clipping and mode restore", "[trainer]") {
  data::TensorDataset train = random_classes(10, 3, 2, 14);
  auto model = mlp(3, 4, 2, 1);
  CrossEntropyLoss loss;
  optim::SGD sgd(model->parameters());
  Trainer trainer(*model, loss, sgd);
  model->eval();
  FitOptions o = silent(3, 4);
  o.drop_last = true;
  o.initial_epoch = 1;
  o.clip_grad_norm = 0.5f;
  History h = trainer.fit(train, o);
  CHECK(trainer.steps_per_epoch() == 2);     // 10 / 4, the last 2 samples dropped
  CHECK(trainer.global_step() == 4);          // epochs 1 and 2 only
  CHECK(h.epoch == std::vector<int64_t>{1, 2});
  CHECK(!model->is_training());               // back in eval mode
  CHECK_THAT(error_of([&] { h["val_loss"]; }), Catch::Contains("present: loss, accuracy, lr"));
}

TEST_CASE("fit rejects bad options with messages naming them", "[trainer]") {
  data::TensorDataset train = random_classes(10, 3, 2, 15);
  auto model = mlp(3, 4, 2, 1);
  CrossEntropyLoss loss;
  optim::SGD sgd(model->parameters());
  Trainer trainer(*model, loss, sgd);
  FitOptions o = silent(1, 4);

  o.batch_size = 0;
  CHECK_THAT(error_of([&] { trainer.fit(train, o); }), Catch::Contains("batch_size 0 must be >= 1"));
  o.batch_size = 4;
  o.validation_split = 1.5;
  CHECK_THAT(error_of([&] { trainer.fit(train, o); }), Catch::Contains("validation_split 1.5 must be in [0, 1)"));
  o.validation_split = 0.2;
  o.validation_data = &train;
  CHECK_THAT(error_of([&] { trainer.fit(train, o); }), Catch::Contains("not both"));
  o.validation_data = nullptr;
  o.validation_split = 0;
  o.epochs = 0;
  CHECK_THAT(error_of([&] { trainer.fit(train, o); }), Catch::Contains("epochs 0"));
  o.epochs = 1;
  o.drop_last = true;
  o.batch_size = 11;
  CHECK_THAT(error_of([&] { trainer.fit(train, o); }), Catch::Contains("drop_last"));
  o.drop_last = false;
  o.callbacks = {nullptr};
  CHECK_THAT(error_of([&] { trainer.fit(train, o); }), Catch::Contains("callback 0 is null"));
  o.callbacks.clear();
  CHECK_THAT(error_of([&] { trainer.evaluate(train, 0); }), Catch::Contains("batch_size 0"));

  // A per-element loss is refused with a hint.
  MSELoss per_element(Reduction::None);
  Trainer bad(*model, per_element, sgd);
  Tensor y = Tensor::zeros({10, 2});
  data::TensorDataset reg(train.x(), y);
  CHECK_THAT(error_of([&] { bad.fit(reg, o); }), Catch::Contains("Reduction::Mean"));
}

TEST_CASE("regression with MSE logs no accuracy unless asked", "[trainer]") {
  Generator gen(16);
  Tensor x = Tensor::randn({32, 2}, gen);
  Tensor y = Tensor::empty({32, 1});
  for (int64_t i = 0; i < 32; ++i) y.at({i, 0}) = x.at({i, 0}) - 2.f * x.at({i, 1});
  data::TensorDataset ds(x, y);
  manual_seed(3);
  nn::Sequential model({2});
  model.add(nn::Dense(1));
  MSELoss mse;
  optim::AdamOptions ao;
  ao.lr = 0.1f;
  optim::Adam adam(model.parameters(), ao);
  Trainer trainer(model, mse, adam);
  History h = trainer.fit(ds, silent(60, 8));
  CHECK(!h.contains("accuracy"));
  CHECK(h["loss"].back() < 0.01);
  EvalResult r = trainer.evaluate(ds);
  CHECK(!r.has_accuracy);
  CHECK(r.str().find("accuracy") == std::string::npos);
  Tensor p = trainer.predict(x);  // raw outputs for MSE
  CHECK(p.at({0, 0}) == Approx(y.at({0, 0})).margin(0.2));
}
