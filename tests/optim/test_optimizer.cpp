// Behaviour shared by every optimizer: parameter checks, zero_grad, skipping
// parameters without gradients, state()/load_state() round trips and their
// errors, the parallel path for large parameters, and convergence on a
// quadratic.
#include <catch2/catch.hpp>
#include <cmath>

#include "maas/optim/adam.hpp"
#include "maas/optim/rmsprop.hpp"
#include "maas/optim/sgd.hpp"
#include "optim/optim_test.hpp"

using namespace maas;
using namespace maas::optim;
using maas::test::kGradB;
using maas::test::kGradP;
using maas::test::make;
using maas::test::MakeOptimizer;
using maas::test::set_grad;

namespace {

// One optimizer of each kind, with most of its options on.
std::vector<std::pair<std::string, MakeOptimizer>> every_optimizer() {
  SGDOptions sgd;
  sgd.lr = 0.1f;
  sgd.momentum = 0.9f;
  sgd.weight_decay = 0.01f;
  sgd.nesterov = true;
  AdamOptions adam;
  adam.lr = 0.1f;
  adam.weight_decay = 0.01f;
  adam.amsgrad = true;
  AdamWOptions adamw;
  adamw.lr = 0.1f;
  RMSpropOptions rms;
  rms.lr = 0.01f;
  rms.momentum = 0.5f;
  rms.centered = true;
  rms.weight_decay = 0.01f;
  return {{"SGD", make<SGD>(sgd)},
          {"Adam", make<Adam>(adam)},
          {"AdamW", make<AdamW>(adamw)},
          {"RMSprop", make<RMSprop>(rms)}};
}

std::vector<Tensor> fresh_params() {
  return {Tensor::from_vector(maas::test::kP0, {2, 2}).requires_grad_(),
          Tensor::from_vector(maas::test::kB0, {2}).requires_grad_()};
}

// Step k (0-based) of the fixed problem in optim_test.hpp.
void fixed_step(Optimizer& opt, std::vector<Tensor>& ps, size_t k) {
  set_grad(ps[0], kGradP[k]);
  set_grad(ps[1], kGradB[k]);
  opt.step();
}

std::vector<std::string> names(const NamedTensors& state) {
  std::vector<std::string> out;
  for (const auto& kv : state) out.push_back(kv.first);
  return out;
}

}  // namespace

TEST_CASE("optimizers check their parameters", "[optim]") {
  Tensor ok = Tensor::zeros({2}).requires_grad_();
  MAAS_REQUIRE_THROWS_WITH(SGD({}), "SGD: the parameter list is empty");
  MAAS_REQUIRE_THROWS_WITH(Adam({ok, Tensor()}), "Adam: parameter 1 is an undefined tensor");
  MAAS_REQUIRE_THROWS_WITH(
      RMSprop({ok, Tensor::zeros({3})}),
      "RMSprop: parameter 1 [3] does not require grad; call requires_grad_() on it or leave it out");
  Tensor derived = ok * 2.f;
  MAAS_REQUIRE_THROWS_WITH(AdamW({derived}), "AdamW: parameter 0 [2] is not a leaf tensor");
  MAAS_REQUIRE_THROWS_WITH(SGD({ok, Tensor::ones({1}).requires_grad_(), ok}),
                           "SGD: parameter 2 is the same tensor as parameter 0; list each parameter once");
  SGD opt({ok});
  MAAS_REQUIRE_THROWS_WITH(opt.set_lr(-1.f), "SGD: lr must be >= 0 and finite, got -1");
  MAAS_REQUIRE_THROWS_WITH(opt.set_lr(INFINITY), "SGD: lr must be >= 0 and finite, got inf");
  REQUIRE(opt.lr() == 0.01f);
  REQUIRE(opt.params().size() == 1);
  REQUIRE(opt.params()[0].is_same(ok));
}

TEST_CASE("zero_grad zeroes or drops every gradient", "[optim]") {
  std::vector<Tensor> ps = fresh_params();
  SGD opt(ps);
  set_grad(ps[0], kGradP[0]);
  set_grad(ps[1], kGradB[1]);
  opt.zero_grad();
  REQUIRE(ps[0].grad().defined());
  maas::test::require_near(ps[0].grad(), {0.f, 0.f, 0.f, 0.f});
  maas::test::require_near(ps[1].grad(), {0.f, 0.f});
  opt.zero_grad(/*set_to_none=*/true);
  REQUIRE(!ps[0].grad().defined());
  REQUIRE(!ps[1].grad().defined());
}

TEST_CASE("parameters without a gradient are skipped and keep no state", "[optim]") {
  for (const auto& [label, make_opt] : every_optimizer()) {
    INFO(label);
    std::vector<Tensor> ps = fresh_params();
    auto opt = make_opt(ps);
    REQUIRE(opt->state().empty());
    for (size_t k = 0; k < 3; ++k) {
      set_grad(ps[0], kGradP[k]);
      opt->step();
    }
    REQUIRE(opt->step_count() == 3);
    maas::test::require_near(ps[1], maas::test::kB0, 0, 0);
    for (const std::string& n : names(opt->state())) REQUIRE(n.rfind("0/", 0) == 0);
    REQUIRE(!opt->state().empty());
  }
}

TEST_CASE("state() names each optimizer's buffers per parameter", "[optim]") {
  auto run = [](const MakeOptimizer& make_opt) {
    std::vector<Tensor> ps = fresh_params();
    auto opt = make_opt(ps);
    for (size_t k = 0; k < 5; ++k) fixed_step(*opt, ps, k);
    return opt->state();
  };
  SGDOptions plain;
  REQUIRE(run(make<SGD>(plain)).empty());
  SGDOptions mom;
  mom.momentum = 0.9f;
  REQUIRE(names(run(make<SGD>(mom))) == std::vector<std::string>{"0/momentum_buffer", "1/momentum_buffer"});
  AdamOptions ams;
  ams.amsgrad = true;
  const NamedTensors adam = run(make<Adam>(ams));
  REQUIRE(names(adam) == std::vector<std::string>{"0/exp_avg", "0/exp_avg_sq", "0/max_exp_avg_sq", "0/step",
                                                  "1/exp_avg", "1/exp_avg_sq", "1/max_exp_avg_sq", "1/step"});
  REQUIRE(adam[0].second.shape() == Shape{2, 2});
  REQUIRE(adam[3].second.shape() == Shape{});
  REQUIRE(adam[3].second.item() == 5.f);  // p was updated 5 times,
  REQUIRE(adam[7].second.item() == 3.f);  // b only 3 (no gradient on steps 1 and 4)
  REQUIRE(names(run(make<AdamW>(AdamWOptions{}))) ==
          std::vector<std::string>{"0/exp_avg", "0/exp_avg_sq", "0/step", "1/exp_avg", "1/exp_avg_sq", "1/step"});
  RMSpropOptions rms;
  rms.momentum = 0.9f;
  rms.centered = true;
  REQUIRE(names(run(make<RMSprop>(rms))) == std::vector<std::string>{"0/square_avg", "0/momentum_buffer", "0/grad_avg",
                                                                     "1/square_avg", "1/momentum_buffer",
                                                                     "1/grad_avg"});
}

TEST_CASE("state() and load_state() round trip gives identical later steps", "[optim]") {
  for (const auto& [label, make_opt] : every_optimizer()) {
    for (size_t saved_after : {1, 3}) {
      INFO(label << ", state saved after step " << saved_after);
      std::vector<Tensor> ps = fresh_params();
      auto opt = make_opt(ps);
      for (size_t k = 0; k < saved_after; ++k) fixed_step(*opt, ps, k);
      const NamedTensors saved = opt->state();
      const int64_t count = opt->step_count();
      // After step 1, b has had no gradient yet and so has no state.
      if (saved_after == 1)
        for (const std::string& n : names(saved)) REQUIRE(n.rfind("0/", 0) == 0);

      // A second model with the same values, and a fresh optimizer given the state.
      std::vector<Tensor> qs = {ps[0].detach().clone().requires_grad_(), ps[1].detach().clone().requires_grad_()};
      auto restored = make_opt(qs);
      restored->load_state(saved, count);
      REQUIRE(restored->step_count() == count);
      REQUIRE(names(restored->state()) == names(saved));

      const std::vector<float> first_saved = saved.at(0).second.to_vector();
      for (size_t k = saved_after; k < 5; ++k) {
        fixed_step(*opt, ps, k);
        fixed_step(*restored, qs, k);
        REQUIRE(ps[0].to_vector() == qs[0].to_vector());
        REQUIRE(ps[1].to_vector() == qs[1].to_vector());
      }
      REQUIRE(restored->step_count() == opt->step_count());
      // state() returned copies: stepping on did not change them.
      REQUIRE(saved.at(0).second.to_vector() == first_saved);
    }
  }
}

TEST_CASE("load_state rejects bad state and leaves the optimizer unchanged", "[optim]") {
  std::vector<Tensor> ps = fresh_params();
  Adam opt(ps);
  for (size_t k = 0; k < 3; ++k) fixed_step(opt, ps, k);
  const NamedTensors good = opt.state();
  const std::vector<std::string> before = names(good);

  auto with = [&](auto edit) {
    NamedTensors s = good;
    edit(s);
    return s;
  };
  MAAS_REQUIRE_THROWS_WITH(opt.load_state(with([](NamedTensors& s) { s[0].first = "0/momentum_buffer"; }), 3),
                           "Adam: load_state: unknown state '0/momentum_buffer'; with these options Adam keeps: "
                           "exp_avg, exp_avg_sq, step");
  MAAS_REQUIRE_THROWS_WITH(opt.load_state(with([](NamedTensors& s) { s[0].first = "exp_avg"; }), 3),
                           "Adam: load_state: state name 'exp_avg' is not of the form '<parameter index>/<buffer>'");
  MAAS_REQUIRE_THROWS_WITH(opt.load_state(with([](NamedTensors& s) { s[0].first = "5/exp_avg"; }), 3),
                           "Adam: load_state: state '5/exp_avg' names parameter 5 but this Adam has 2 parameters");
  MAAS_REQUIRE_THROWS_WITH(
      opt.load_state(with([](NamedTensors& s) { s[0].second = Tensor::zeros({4}); }), 3),
      "Adam: load_state: state '0/exp_avg' has shape [4] but parameter 0's shape [2,2] is expected");
  MAAS_REQUIRE_THROWS_WITH(opt.load_state(with([](NamedTensors& s) { s[2].second = Tensor::zeros({1}); }), 3),
                           "Adam: load_state: state '0/step' has shape [1] but a 0-d tensor [] is expected");
  MAAS_REQUIRE_THROWS_WITH(opt.load_state(with([](NamedTensors& s) { s[0].second = Tensor(); }), 3),
                           "Adam: load_state: state '0/exp_avg' is an undefined tensor");
  MAAS_REQUIRE_THROWS_WITH(opt.load_state(with([](NamedTensors& s) { s.erase(s.begin() + 1); }), 3),
                           "Adam: load_state: parameter 0 has state but lacks '0/exp_avg_sq' (expected all of: "
                           "exp_avg, exp_avg_sq, step)");
  MAAS_REQUIRE_THROWS_WITH(opt.load_state(with([](NamedTensors& s) { s.push_back(s[0]); }), 3),
                           "Adam: load_state: state '0/exp_avg' appears twice");
  MAAS_REQUIRE_THROWS_WITH(opt.load_state(good, -1), "Adam: load_state: step_count must be >= 0, got -1");
  REQUIRE(opt.step_count() == 3);
  const NamedTensors after = opt.state();
  REQUIRE(names(after) == before);
  for (size_t i = 0; i < after.size(); ++i) REQUIRE(after[i].second.to_vector() == good[i].second.to_vector());

  // An empty state resets the optimizer.
  opt.load_state({}, 0);
  REQUIRE(opt.state().empty());
  REQUIRE(opt.step_count() == 0);
}

TEST_CASE("large parameters (the parallel loops) update like small ones", "[optim]") {
  const int64_t reps = 25000;  // 100000 elements, above the OpenMP threshold
  for (const auto& [label, make_opt] : every_optimizer()) {
    INFO(label);
    std::vector<Tensor> small = fresh_params();
    auto opt_small = make_opt(small);
    std::vector<float> big0, bigb0;
    for (int64_t r = 0; r < reps; ++r) {
      big0.insert(big0.end(), maas::test::kP0.begin(), maas::test::kP0.end());
      bigb0.insert(bigb0.end(), maas::test::kB0.begin(), maas::test::kB0.end());
    }
    std::vector<Tensor> big = {Tensor::from_vector(big0, {reps * 2, 2}).requires_grad_(),
                               Tensor::from_vector(bigb0, {reps * 2}).requires_grad_()};
    auto opt_big = make_opt(big);
    for (size_t k = 0; k < 5; ++k) {
      fixed_step(*opt_small, small, k);
      std::vector<float> gp, gb;
      for (int64_t r = 0; r < reps; ++r) {
        gp.insert(gp.end(), kGradP[k].begin(), kGradP[k].end());
        gb.insert(gb.end(), kGradB[k].begin(), kGradB[k].end());
      }
      set_grad(big[0], gp);
      set_grad(big[1], kGradB[k].empty() ? std::vector<float>{} : gb);
      opt_big->step();
    }
    for (int64_t j = 0; j < big[0].numel(); j += 997)
      REQUIRE(big[0].data()[j] == Approx(small[0].data()[j % 4]).epsilon(1e-6));
    for (int64_t j = 0; j < big[1].numel(); j += 991)
      REQUIRE(big[1].data()[j] == Approx(small[1].data()[j % 2]).epsilon(1e-6));
  }
}

TEST_CASE("every optimizer minimises a quadratic", "[optim]") {
  for (const auto& [label, make_opt] : every_optimizer()) {
    INFO(label);
    Tensor p = Tensor::from_vector({3.f, -2.f, 0.5f}, {3}).requires_grad_();
    const Tensor target = Tensor::from_vector({1.f, 1.f, -1.f}, {3});
    auto opt = make_opt({p});
    float first = 0.f, last = 0.f;
    for (int it = 0; it < 300; ++it) {
      opt->zero_grad();
      Tensor d = p - target;
      Tensor loss = sum(d * d);
      if (it == 0) first = loss.item();
      last = loss.item();
      loss.backward();
      opt->step();
    }
    REQUIRE(first > 10.f);
    REQUIRE(last < 0.05f);
  }
}
