// clip_grad_norm against torch.nn.utils.clip_grad_norm_.
//
// Expected values were computed once with PyTorch 1.13 by this script:
//   # Reference values for tests/optim/test_clip.cpp (PyTorch 1.13).
//   import torch
//   def lit(v):
//       s = '%.9g' % v
//       return s + ('' if ('.' in s or 'e' in s) else '.0') + 'f'
//   from torch.nn.utils import clip_grad_norm_
//   def case(max_norm, norm_type):
//       a = torch.zeros(2, 2, requires_grad=True); b = torch.zeros(3, requires_grad=True); c = torch.zeros(2, requires_grad=True)
//       a.grad = torch.tensor([[0.5, -1.5], [2.0, 0.25]]); b.grad = torch.tensor([-3.0, 1.0, 0.75])
//       n = clip_grad_norm_([a, b, c], max_norm, norm_type)
//       print('  // clip_grad_norm_(max_norm=%r, norm_type=%r) -> norm %.9g' % (max_norm, norm_type, n.item()))
//       print('  {%s, {%s}, {%s}},' % (lit(n.item()), ', '.join(lit(v) for v in a.grad.flatten().tolist()),
//                                   ', '.join(lit(v) for v in b.grad.tolist())))
//   for mn, nt in [(1.0, 2.0), (10.0, 2.0), (1.0, float('inf')), (0.5, 1.0), (2.0, 3.0)]:
//       case(mn, nt)
#include <catch2/catch.hpp>
#include <cmath>

#include "maas/optim/clip.hpp"
#include "optim/optim_test.hpp"

using namespace maas;
using namespace maas::optim;
using maas::test::require_near;
using maas::test::set_grad;

TEST_CASE("clip_grad_norm matches torch.nn.utils.clip_grad_norm_", "[optim]") {
  struct Case {
    float max_norm, norm_type;
    float norm;
    std::vector<float> ga, gb;
  };
  const std::vector<Case> cases = {
      {1.0f,
       2.0f,
       4.13823652f,
       {0.120824389f, -0.36247316f, 0.483297557f, 0.0604121946f},
       {-0.72494632f, 0.241648778f, 0.18123658f}},
      {10.0f, 2.0f, 4.13823652f, {0.5f, -1.5f, 2.0f, 0.25f}, {-3.0f, 1.0f, 0.75f}},
      {1.0f,
       INFINITY,
       3.0f,
       {0.166666612f, -0.499999821f, 0.666666448f, 0.083333306f},
       {-0.999999642f, 0.333333224f, 0.249999911f}},
      {0.5f,
       1.0f,
       9.0f,
       {0.0277777743f, -0.0833333209f, 0.111111097f, 0.0138888871f},
       {-0.166666642f, 0.0555555485f, 0.0416666605f}},
      {2.0f,
       3.0f,
       3.41816998f,
       {0.29255411f, -0.877662301f, 1.17021644f, 0.146277055f},
       {-1.7553246f, 0.585108221f, 0.438831151f}},
  };
  for (const Case& c : cases) {
    INFO("max_norm " << c.max_norm << ", norm_type " << c.norm_type);
    Tensor a = Tensor::zeros({2, 2}).requires_grad_();
    Tensor b = Tensor::zeros({3}).requires_grad_();
    Tensor none = Tensor::zeros({2}).requires_grad_();  // no gradient: ignored
    set_grad(a, {0.5f, -1.5f, 2.0f, 0.25f});
    set_grad(b, {-3.0f, 1.0f, 0.75f});
    const float norm = clip_grad_norm({a, b, none}, c.max_norm, c.norm_type);
    REQUIRE(norm == Approx(c.norm).epsilon(1e-6));
    require_near(a.grad(), c.ga);
    require_near(b.grad(), c.gb);
    REQUIRE(!none.grad().defined());
  }
}

TEST_CASE("clip_grad_norm by hand, edge cases and argument checks", "[optim]") {
  Tensor a = Tensor::zeros({2}).requires_grad_();
  // No gradients at all: the norm is 0.
  REQUIRE(clip_grad_norm({a}, 1.f) == 0.f);
  // |(3, 4)| = 5, clipped to 1: (0.6, 0.8) up to the 1e-6 PyTorch adds.
  set_grad(a, {3.f, 4.f});
  REQUIRE(clip_grad_norm({a}, 1.f) == 5.f);
  require_near(a.grad(), {0.6f, 0.8f});
  // Already within the bound: untouched.
  set_grad(a, {0.3f, -0.4f});
  REQUIRE(clip_grad_norm({a}, 1.f) == Approx(0.5f));
  REQUIRE(a.grad().to_vector() == std::vector<float>{0.3f, -0.4f});
  // A NaN gradient: the norm is NaN and, as in PyTorch, the gradients become NaN.
  set_grad(a, {NAN, 1.f});
  REQUIRE(std::isnan(clip_grad_norm({a}, 1.f, INFINITY)));
  REQUIRE(std::isnan(a.grad().data()[1]));
  MAAS_REQUIRE_THROWS_WITH(clip_grad_norm({a}, -1.f), "clip_grad_norm: max_norm must be >= 0, got -1");
  MAAS_REQUIRE_THROWS_WITH(clip_grad_norm({a}, 1.f, 0.f), "clip_grad_norm: norm_type must be > 0");
  MAAS_REQUIRE_THROWS_WITH(clip_grad_norm({a, Tensor()}, 1.f), "clip_grad_norm: parameter 1 is an undefined tensor");
}
