// Learning-rate schedules against torch.optim.lr_scheduler, ReduceLROnPlateau
// with patience and cooldown, option checks, and state round trips.
//
// Expected values were computed once with PyTorch 1.13 by this script:
//   # Reference values for tests/optim/test_scheduler.cpp (PyTorch 1.13).
//   import warnings, torch
//   warnings.simplefilter('ignore')
//   from torch.optim import lr_scheduler as S
//   def lrs(make, n, metrics=None, lr=0.1):
//       opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
//       s = make(opt)
//       out = []
//       for e in range(n):
//           opt.step()
//           s.step() if metrics is None else s.step(metrics[e])
//           out.append(opt.param_groups[0]['lr'])
//       return out
//   def show(title, v): print('  // ' + title + '\n  {' + ', '.join('%.12g' % x for x in v) + '}')
//   show('StepLR(step_size=3, gamma=0.5)', lrs(lambda o: S.StepLR(o, 3, 0.5), 10))
//   show('ExponentialLR(gamma=0.9)', lrs(lambda o: S.ExponentialLR(o, 0.9), 10))
//   show('CosineAnnealingLR(T_max=10, eta_min=0.001) over 25 epochs', lrs(lambda o: S.CosineAnnealingLR(o, 10, 0.001), 25))
//   m1 = [1.0, 0.9, 0.95, 0.91, 0.9, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 0.49995, 0.4999, 0.6, 0.7, 0.8]
//   show('ReduceLROnPlateau(min, patience=2, cooldown=1, factor=0.5), metrics ' + str(m1),
//        lrs(lambda o: S.ReduceLROnPlateau(o, 'min', factor=0.5, patience=2, cooldown=1), len(m1), m1))
//   m2 = [0.1, 0.2, 0.25, 0.2, 0.21, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
//   show('ReduceLROnPlateau(max, factor=0.1, patience=1, threshold=0.05, abs, min_lr=0.0005) ' + str(m2),
//        lrs(lambda o: S.ReduceLROnPlateau(o, 'max', factor=0.1, patience=1, threshold=0.05, threshold_mode='abs', min_lr=0.0005), len(m2), m2))
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>

#include "maas/optim/scheduler.hpp"
#include "maas/optim/sgd.hpp"
#include "optim/optim_test.hpp"

using namespace maas;
using namespace maas::optim;

namespace {

SGD make_sgd(Tensor& p, float lr = 0.1f) {
  SGDOptions o;
  o.lr = lr;
  return SGD({p}, o);
}

// Steps the scheduler once per expected value, checking the optimizer's lr.
void check_lrs(LRScheduler& sched, const std::vector<double>& want, const std::vector<double>& metrics = {}) {
  for (size_t e = 0; e < want.size(); ++e) {
    if (metrics.empty())
      sched.step();
    else
      static_cast<ReduceLROnPlateau&>(sched).step(metrics[e]);
    INFO("epoch " << e + 1);
    REQUIRE(sched.last_epoch() == static_cast<int64_t>(e + 1));
    REQUIRE(sched.optimizer().lr() == Approx(want[e]).epsilon(1e-6));
    REQUIRE(sched.last_lr() == sched.optimizer().lr());
  }
}

}  // namespace

TEST_CASE("StepLR, ExponentialLR and CosineAnnealingLR match PyTorch", "[optim]") {
  Tensor p = Tensor::zeros({1}).requires_grad_();
  SGD opt = make_sgd(p);
  SECTION("StepLR(step_size=3, gamma=0.5)") {
    StepLR sched(opt, 3, 0.5);
    REQUIRE(sched.last_epoch() == 0);
    REQUIRE(sched.last_lr() == 0.1f);
    REQUIRE(sched.name() == "StepLR");
    check_lrs(sched, {0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125});
  }
  SECTION("ExponentialLR(gamma=0.9)") {
    ExponentialLR sched(opt, 0.9);
    check_lrs(sched, {0.09, 0.081, 0.0729, 0.06561, 0.059049, 0.0531441, 0.04782969, 0.043046721, 0.0387420489,
                      0.03486784401});
  }
  SECTION("CosineAnnealingLR(T_max=10, eta_min=0.001), 25 epochs: periodic past T_max") {
    CosineAnnealingLR sched(opt, 10, 0.001);
    check_lrs(sched, {0.0975772975566,  0.0905463412216, 0.0795953699885, 0.0657963412216,  0.0505,
                      0.0352036587784,  0.0214046300115, 0.0104536587784, 0.00342270244339, 0.001,
                      0.00342270244339, 0.0104536587784, 0.0214046300115, 0.0352036587784,  0.0505,
                      0.0657963412216,  0.0795953699885, 0.0905463412216, 0.0975772975566,  0.1,
                      0.0975772975566,  0.0905463412216, 0.0795953699885, 0.0657963412216,  0.0505});
  }
}

TEST_CASE("ReduceLROnPlateau matches PyTorch: patience, cooldown, threshold", "[optim]") {
  Tensor p = Tensor::zeros({1}).requires_grad_();
  SGD opt = make_sgd(p);
  SECTION("min mode, relative threshold, patience 2, cooldown 1") {
    // By hand: 0.9 at epoch 2 is the best; epochs 3-5 are bad (3 > patience 2)
    // so the lr halves at epoch 5; epoch 6 falls in the cooldown and is not
    // counted; 0.5 is the new best at 7; 8-10 are bad: halve at 10; 11 is
    // cooldown; 0.49995 is not better than 0.5 * (1 - 1e-4); 0.4999 is (13);
    // 14-16 bad: halve at 16.
    ReduceLROnPlateauOptions o;
    o.factor = 0.5;
    o.patience = 2;
    o.cooldown = 1;
    ReduceLROnPlateau sched(opt, o);
    REQUIRE(sched.needs_metric());
    REQUIRE(sched.best() == std::numeric_limits<double>::infinity());
    check_lrs(sched,
              {0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.0125},
              {1.0, 0.9, 0.95, 0.91, 0.9, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 0.49995, 0.4999, 0.6, 0.7, 0.8});
    REQUIRE(sched.best() == 0.4999);
    REQUIRE(sched.num_bad_epochs() == 0);
    REQUIRE(sched.cooldown_counter() == 1);
  }
  SECTION("max mode, absolute threshold, min_lr") {
    ReduceLROnPlateauOptions o;
    o.mode = PlateauMode::max;
    o.factor = 0.1;
    o.patience = 1;
    o.threshold = 0.05;
    o.threshold_mode = ThresholdMode::abs;
    o.min_lr = 0.0005;
    ReduceLROnPlateau sched(opt, o);
    check_lrs(sched, {0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.001, 0.001, 0.0005, 0.0005, 0.0005},
              {0.1, 0.2, 0.25, 0.2, 0.21, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3});
    REQUIRE(sched.best() == 0.3);
  }
  SECTION("step() without the metric is an error") {
    ReduceLROnPlateau sched(opt);
    MAAS_REQUIRE_THROWS_WITH(sched.step(), "ReduceLROnPlateau: step() needs the monitored metric; call step(metric)");
  }
}

TEST_CASE("schedulers validate their arguments", "[optim]") {
  Tensor p = Tensor::zeros({1}).requires_grad_();
  SGD opt = make_sgd(p);
  MAAS_REQUIRE_THROWS_WITH(StepLR(opt, 0), "StepLR: step_size must be >= 1, got 0");
  MAAS_REQUIRE_THROWS_WITH(StepLR(opt, 2, -0.5), "StepLR: gamma must be >= 0, got -0.5");
  MAAS_REQUIRE_THROWS_WITH(ExponentialLR(opt, -1.0), "ExponentialLR: gamma must be >= 0, got -1");
  MAAS_REQUIRE_THROWS_WITH(CosineAnnealingLR(opt, 0), "CosineAnnealingLR: T_max must be >= 1, got 0");
  MAAS_REQUIRE_THROWS_WITH(CosineAnnealingLR(opt, 5, -0.1), "CosineAnnealingLR: eta_min must be >= 0, got -0.1");
  auto plateau = [&](std::function<void(ReduceLROnPlateauOptions&)> set) {
    ReduceLROnPlateauOptions o;
    set(o);
    ReduceLROnPlateau s(opt, o);
  };
  MAAS_REQUIRE_THROWS_WITH(plateau([](auto& o) { o.factor = 1.0; }),
                           "ReduceLROnPlateau: factor must be in [0, 1), got 1");
  MAAS_REQUIRE_THROWS_WITH(plateau([](auto& o) { o.patience = -1; }),
                           "ReduceLROnPlateau: patience must be >= 0, got -1");
  MAAS_REQUIRE_THROWS_WITH(plateau([](auto& o) { o.cooldown = -2; }),
                           "ReduceLROnPlateau: cooldown must be >= 0, got -2");
  MAAS_REQUIRE_THROWS_WITH(plateau([](auto& o) { o.threshold = -1e-4; }),
                           "ReduceLROnPlateau: threshold must be >= 0, got -0.0001");
  MAAS_REQUIRE_THROWS_WITH(plateau([](auto& o) { o.min_lr = -1.0; }), "ReduceLROnPlateau: min_lr must be >= 0, got -1");
}

TEST_CASE("scheduler state() and load_state() resume the schedule", "[optim]") {
  using Make = std::function<std::unique_ptr<LRScheduler>(Optimizer&)>;
  const std::vector<double> metrics = {1.0, 0.9, 0.95, 0.91, 0.9, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 0.4, 0.5, 0.6};
  ReduceLROnPlateauOptions po;
  po.factor = 0.5;
  po.patience = 2;
  po.cooldown = 1;
  const std::vector<std::pair<std::string, Make>> makers = {
      {"StepLR", [](Optimizer& o) { return std::make_unique<StepLR>(o, 3, 0.5); }},
      {"ExponentialLR", [](Optimizer& o) { return std::make_unique<ExponentialLR>(o, 0.9); }},
      {"CosineAnnealingLR", [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 6, 0.01); }},
      {"ReduceLROnPlateau", [po](Optimizer& o) { return std::make_unique<ReduceLROnPlateau>(o, po); }},
  };
  for (const auto& [label, make_sched] : makers) {
    INFO(label);
    auto step = [&metrics](LRScheduler& s, size_t e) {
      if (s.needs_metric())
        static_cast<ReduceLROnPlateau&>(s).step(metrics[e]);
      else
        s.step();
    };
    Tensor p = Tensor::zeros({1}).requires_grad_();
    SGD opt = make_sgd(p);
    auto sched = make_sched(opt);
    for (size_t e = 0; e < 7; ++e) step(*sched, e);
    const NamedNumbers saved = sched->state();

    // A fresh run: the optimizer starts at another lr, the scheduler takes the state.
    Tensor q = Tensor::zeros({1}).requires_grad_();
    SGD opt2 = make_sgd(q, 0.7f);
    auto resumed = make_sched(opt2);
    resumed->load_state(saved);
    REQUIRE(opt2.lr() == opt.lr());
    REQUIRE(resumed->last_epoch() == 7);
    REQUIRE(resumed->state() == saved);
    for (size_t e = 7; e < metrics.size(); ++e) {
      step(*sched, e);
      step(*resumed, e);
      REQUIRE(opt2.lr() == opt.lr());
    }
    REQUIRE(resumed->state() == sched->state());

    NamedNumbers extra = saved;
    extra.emplace_back("gamma", 0.5);
    MAAS_REQUIRE_THROWS_WITH(resumed->load_state(extra), label + ": load_state: unknown state 'gamma'");
    NamedNumbers missing(saved.begin() + 1, saved.end());
    MAAS_REQUIRE_THROWS_WITH(resumed->load_state(missing), label + ": load_state: state 'last_epoch' is missing");
    NamedNumbers fractional = saved;
    fractional[0].second = 2.5;
    MAAS_REQUIRE_THROWS_WITH(resumed->load_state(fractional),
                             label + ": load_state: state 'last_epoch' must be a whole number >= 0, got 2.5");
  }
}
