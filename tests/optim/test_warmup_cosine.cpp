// WarmupCosineLR: nanoGPT's get_lr(it) at hand-worked steps (the first,
// the warm-up's last, the peak, mid-decay, the end, past the end), the
// shakespeare_char recipe's values, argument checks, and a resume.
#include <catch2/catch.hpp>

#include <cmath>

#include "maas/optim/scheduler.hpp"
#include "maas/optim/sgd.hpp"
#include "optim/optim_test.hpp"

using namespace maas;
using namespace maas::optim;
using maas::test::error_of;

namespace {

SGD make_sgd(Tensor& p, float lr) {
  SGDOptions o;
  o.lr = lr;
  return SGD({p}, o);
}

// The optimizer's lr at steps 0 .. want.size() - 1: construction sets step
// 0's, each step() the next.
void check_lrs(WarmupCosineLR& sched, const std::vector<double>& want) {
  for (size_t it = 0; it < want.size(); ++it) {
    if (it > 0) sched.step();
    INFO("step " << it);
    REQUIRE(sched.last_epoch() == static_cast<int64_t>(it));
    REQUIRE(sched.optimizer().lr() == Approx(want[it]).epsilon(1e-6));
    REQUIRE(sched.last_lr() == sched.optimizer().lr());
  }
}

}  // namespace

TEST_CASE("WarmupCosineLR follows nanoGPT's get_lr", "[optim]") {
  // base 1, warm-up 4, decay to step 10, floor 0.1, by hand:
  //   it < 4:        (it + 1) / 5                       0.2 0.4 0.6 0.8
  //   4 <= it <= 10: 0.1 + 0.9 * (1 + cos(pi * (it - 4) / 6)) / 2
  //     it 4: 1; it 5: 0.1 + 0.45 * (1 + sqrt(3)/2) = 0.939711432; it 6: 0.1 + 0.45 * 1.5 = 0.775;
  //     it 7 (the middle): 0.55; it 8: 0.325; it 9: 0.160288568; it 10: 0.1
  //   it > 10:       0.1
  Tensor p = Tensor::zeros({1}).requires_grad_();
  SGD opt = make_sgd(p, 1.f);
  WarmupCosineLR sched(opt, 4, 10, 0.1);
  REQUIRE(sched.base_lr() == 1.0);
  check_lrs(sched, {0.2, 0.4, 0.6, 0.8, 1.0, 0.939711432, 0.775, 0.55, 0.325, 0.160288568, 0.1, 0.1, 0.1});
  REQUIRE(sched.name() == "WarmupCosineLR");
  REQUIRE(sched.warmup_steps() == 4);
  REQUIRE(sched.decay_steps() == 10);
  REQUIRE(sched.min_lr() == 0.1);
}

TEST_CASE("WarmupCosineLR: the shakespeare_char recipe, no warm-up, no decay", "[optim]") {
  Tensor p = Tensor::zeros({1}).requires_grad_();
  SECTION("lr 1e-3, 100 warm-up steps, cosine to 1e-4 at 2000") {
    SGD opt = make_sgd(p, 1e-3f);
    WarmupCosineLR sched(opt, 100, 2000, 1e-4);
    const double base = static_cast<double>(1e-3f);
    REQUIRE(opt.lr() == Approx(base / 101).epsilon(1e-6));  // it 0
    for (int it = 1; it <= 1050; ++it) sched.step();
    // it 1050, the middle of [100, 2000]: the mean of base and floor.
    REQUIRE(opt.lr() == Approx((base + 1e-4) / 2).epsilon(1e-6));
    for (int it = 1051; it <= 2001; ++it) sched.step();
    REQUIRE(opt.lr() == Approx(1e-4).epsilon(1e-6));
  }
  SECTION("warmup 0: the cosine starts at the base") {
    SGD opt = make_sgd(p, 0.5f);
    WarmupCosineLR sched(opt, 0, 2, 0.0);
    check_lrs(sched, {0.5, 0.25, 0.0, 0.0});
  }
  SECTION("warmup == decay_steps: the warm-up, then the floor") {
    SGD opt = make_sgd(p, 1.f);
    WarmupCosineLR sched(opt, 3, 3, 0.25);
    check_lrs(sched, {0.25, 0.5, 0.75, 0.25, 0.25});
  }
}

TEST_CASE("WarmupCosineLR validates its arguments", "[optim]") {
  Tensor p = Tensor::zeros({1}).requires_grad_();
  SGD opt = make_sgd(p, 1e-3f);
  CHECK(error_of([&] { WarmupCosineLR(opt, -1, 10, 0.0); }) == "WarmupCosineLR: warmup_steps must be >= 0, got -1");
  CHECK(error_of([&] { WarmupCosineLR(opt, 100, 50, 0.0); }) ==
        "WarmupCosineLR: decay_steps (50) must be >= warmup_steps (100): the decay ends at step decay_steps");
  CHECK(error_of([&] { WarmupCosineLR(opt, 0, -5, 0.0); }) ==
        "WarmupCosineLR: decay_steps (-5) must be >= warmup_steps (0): the decay ends at step decay_steps");
  CHECK(error_of([&] { WarmupCosineLR(opt, 10, 100, -1e-4); }) ==
        "WarmupCosineLR: min_lr must be >= 0, got -0.0001");
  CHECK(error_of([&] { WarmupCosineLR(opt, 10, 100, std::nan("")); }) ==
        "WarmupCosineLR: min_lr must be >= 0, got nan");
  CHECK_THAT(error_of([&] { WarmupCosineLR(opt, 10, 100, 1e-2); }),
             Catch::StartsWith("WarmupCosineLR: min_lr 0.01 is above the optimizer's lr 0.001"));
  REQUIRE(opt.lr() == 1e-3f);  // a refused scheduler leaves the lr alone
}

TEST_CASE("WarmupCosineLR: state() and load_state() resume the schedule", "[optim]") {
  Tensor p = Tensor::zeros({1}).requires_grad_();
  SGD opt = make_sgd(p, 1.f);
  WarmupCosineLR sched(opt, 4, 10, 0.1);
  for (int it = 1; it <= 6; ++it) sched.step();
  const NamedNumbers saved = sched.state();
  REQUIRE(saved == NamedNumbers{{"last_epoch", 6}, {"base_lr", 1.0}, {"last_lr", static_cast<double>(opt.lr())}});

  // A fresh run: the optimizer starts at another lr, the scheduler takes the state.
  Tensor q = Tensor::zeros({1}).requires_grad_();
  SGD opt2 = make_sgd(q, 0.7f);
  WarmupCosineLR resumed(opt2, 4, 10, 0.1);
  resumed.load_state(saved);
  REQUIRE(opt2.lr() == opt.lr());
  REQUIRE(resumed.state() == saved);
  for (int it = 7; it <= 12; ++it) {
    sched.step();
    resumed.step();
    REQUIRE(opt2.lr() == opt.lr());
  }
  REQUIRE(resumed.state() == sched.state());
}
