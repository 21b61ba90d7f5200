// Adam and AdamW with parameter groups: a weight decay per group (the 1-D
// parameter of decay_groups gets none), checked against PyTorch and by hand;
// decay_groups' split; state() across a resume; bad groups.
#include <catch2/catch.hpp>

#include "maas/optim/adam.hpp"
#include "optim/optim_test.hpp"

using namespace maas;
using namespace maas::optim;
using maas::test::check_trajectory;
using maas::test::error_of;
using maas::test::MakeOptimizer;
using maas::test::require_near;
using maas::test::set_grad;

namespace {

// The fixed problem of optim_test.hpp, p [2,2] and b [2], split by
// decay_groups: p decays, b does not.
template <class Opt, class Options>
MakeOptimizer make_grouped(const Options& options, float weight_decay) {
  return [options, weight_decay](std::vector<Tensor> params) -> std::unique_ptr<Optimizer> {
    return std::make_unique<Opt>(decay_groups(params, weight_decay), options);
  };
}

// Expected values: PyTorch 1.13 (CPU, float32), the script of optim_test.hpp
// with its optimizer built from two groups, run once and pasted here:
//   opt = cls([{'params': [p], 'weight_decay': f32(0.1)}, {'params': [b], 'weight_decay': 0.0}],
//             foreach=False, lr=f32(0.1))
// By hand, step 1 of AdamW: p = 0.5 * (1 - 0.1 * 0.1) - 0.1 * sign(0.1) = 0.395;
// b has no gradient on steps 1 and 4, and from step 2 on it moves exactly as
// with Adam(lr=0.1) and no decay (test_adam.cpp): 0.900000036, -1.89999998, ...
const maas::test::Trajectory kAdamWGroups = {
    {{0.395000011f, -0.889999986f, 1.38499999f, 2.07999992f}, {1.0f, -2.0f}},
    {{0.450885415f, -0.897373199f, 1.29281723f, 2.03442979f}, {0.900000036f, -1.89999998f}},
    {{0.466096044f, -0.932928145f, 1.2816844f, 2.00390029f}, {0.802964807f, -1.95595038f}},
    {{0.477588087f, -0.889737725f, 1.23020017f, 1.96395004f}, {0.802964807f, -1.95595038f}},
    {{0.458548933f, -0.848851264f, 1.20463109f, 1.89987361f}, {0.819121301f, -2.01304483f}}};
const maas::test::Trajectory kAdamGroups = {
    {{0.400000036f, -0.900000036f, 1.39999998f, 2.0999999f}, {1.0f, -2.0f}},
    {{0.449986964f, -0.875915647f, 1.30931842f, 2.04380846f}, {0.900000036f, -1.89999998f}},
    {{0.455584586f, -0.878309488f, 1.26399517f, 1.99277425f}, {0.802964807f, -1.95595038f}},
    {{0.455284566f, -0.826204121f, 1.19650936f, 1.93186188f}, {0.802964807f, -1.95595038f}},
    {{0.425803423f, -0.774403274f, 1.14571726f, 1.8578465f}, {0.819121301f, -2.01304483f}}};

}  // namespace

TEST_CASE("AdamW and Adam with groups match torch.optim's param_groups", "[optim]") {
  SECTION("AdamW(lr=0.1), p weight_decay 0.1, b 0") {
    AdamWOptions o;
    o.lr = 0.1f;
    o.weight_decay = 0.5f;  // replaced by the groups'
    check_trajectory(make_grouped<AdamW>(o, 0.1f), kAdamWGroups);
  }
  SECTION("Adam(lr=0.1), p weight_decay 0.1, b 0") {
    AdamOptions o;
    o.lr = 0.1f;
    check_trajectory(make_grouped<Adam>(o, 0.1f), kAdamGroups);
  }
}

TEST_CASE("AdamW groups by hand: the 1-D parameter is not decayed", "[optim]") {
  // Step 1 moves each element by lr * sign(g) (test_adam.cpp); decoupled
  // decay first scales w by 1 - lr * weight_decay = 1 - 0.1 * 0.5 = 0.95.
  Tensor w = Tensor::from_vector({2.f, -4.f}, {1, 2}).requires_grad_();
  Tensor b = Tensor::from_vector({2.f, -4.f}, {2}).requires_grad_();
  AdamWOptions o;
  o.lr = 0.1f;
  AdamW opt(decay_groups({w, b}, 0.5f), o);
  REQUIRE(opt.weight_decay(0) == 0.5f);
  REQUIRE(opt.weight_decay(1) == 0.f);
  set_grad(w, {1.f, -1.f});
  set_grad(b, {1.f, -1.f});
  opt.step();
  require_near(w, {1.8f, -3.7f});  // 2 * 0.95 - 0.1, -4 * 0.95 + 0.1
  require_near(b, {1.9f, -3.9f});  // 2 - 0.1, -4 + 0.1
}

TEST_CASE("decay_groups: >= 2-D tensors decay, the rest do not, each in order", "[optim]") {
  const Tensor kernel = Tensor::zeros({3, 3, 2, 2}), matrix = Tensor::zeros({4, 2}), bias = Tensor::zeros({2}),
               gain = Tensor::zeros({4}), scalar = Tensor::zeros({});
  const std::vector<ParamGroup> groups = decay_groups({bias, kernel, scalar, matrix, gain}, 0.1f);
  REQUIRE(groups.size() == 2);
  REQUIRE(groups[0].weight_decay == 0.1f);
  REQUIRE(groups[0].params.size() == 2);
  REQUIRE(groups[0].params[0].is_same(kernel));
  REQUIRE(groups[0].params[1].is_same(matrix));
  REQUIRE(groups[1].weight_decay == 0.f);
  REQUIRE(groups[1].params.size() == 3);
  REQUIRE(groups[1].params[0].is_same(bias));
  REQUIRE(groups[1].params[1].is_same(scalar));
  REQUIRE(groups[1].params[2].is_same(gain));
}

TEST_CASE("AdamW groups: state() and load_state() resume the trajectory", "[optim]") {
  AdamWOptions o;
  o.lr = 0.1f;
  Tensor p = Tensor::from_vector(maas::test::kP0, {2, 2}).requires_grad_();
  Tensor b = Tensor::from_vector(maas::test::kB0, {2}).requires_grad_();
  NamedTensors saved;
  {
    AdamW first(decay_groups({p, b}, 0.1f), o);
    for (size_t k = 0; k < 3; ++k) {
      set_grad(p, maas::test::kGradP[k]);
      set_grad(b, maas::test::kGradB[k]);
      first.step();
    }
    saved = first.state();
  }
  // The same names as without groups: parameters numbered group after group.
  std::vector<std::string> names;
  for (const auto& [name, value] : saved) names.push_back(name);
  REQUIRE(names == std::vector<std::string>{"0/exp_avg", "0/exp_avg_sq", "0/step", "1/exp_avg", "1/exp_avg_sq",
                                            "1/step"});
  AdamW resumed(decay_groups({p, b}, 0.1f), o);
  resumed.load_state(saved, 3);
  for (size_t k = 3; k < 5; ++k) {
    set_grad(p, maas::test::kGradP[k]);
    set_grad(b, maas::test::kGradB[k]);
    resumed.step();
    require_near(p, kAdamWGroups[k].p);
    require_near(b, kAdamWGroups[k].b);
  }
}

TEST_CASE("Adam and AdamW groups: bad weight decays and parameters are refused", "[optim]") {
  Tensor w = Tensor::zeros({2, 2}).requires_grad_();
  Tensor b = Tensor::zeros({2}).requires_grad_();
  CHECK(error_of([&] { AdamW({ParamGroup{{w}, 0.1f}, ParamGroup{{b}, -0.1f}}); }) ==
        "AdamW: parameter group 1: weight_decay must be >= 0, got -0.1");
  CHECK(error_of([&] { Adam(std::vector<ParamGroup>{{{w}, std::nanf("")}}); }) ==
        "Adam: parameter group 0: weight_decay must be >= 0, got nan");
  CHECK(error_of([&] { AdamW({ParamGroup{{w}, 0.1f}, ParamGroup{{w}, 0.f}}); }) ==
        "AdamW: parameter 1 is the same tensor as parameter 0; list each parameter once");
  CHECK_THAT(error_of([&] { AdamW(decay_groups({}, 0.1f)); }), Catch::StartsWith("AdamW: the parameter list is empty"));
}
