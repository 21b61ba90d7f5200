// SGD: five steps of each option combination against torch.optim.SGD, and
// option validation.
#include <catch2/catch.hpp>

#include "maas/optim/sgd.hpp"
#include "optim/optim_test.hpp"

using namespace maas;
using namespace maas::optim;
using maas::test::check_trajectory;
using maas::test::make;

// Expected values: `python3 ref.py sgd`, the script in optim_test.hpp.
TEST_CASE("SGD matches torch.optim.SGD step by step", "[optim]") {
  SECTION("SGD(lr=0.1)") {
    SGDOptions o;
    o.lr = 0.1f;
    check_trajectory(make<SGD>(o),
                     {{{0.49000001f, -0.980000019f, 1.47000003f, 2.03999996f}, {1.0f, -2.0f}},
                      {{0.540000021f, -1.005f, 1.46500003f, 1.9799999f}, {0.969999969f, -1.99000001f}},
                      {{0.520000041f, -1.02499998f, 1.495f, 1.98999989f}, {0.949999988f, -2.02999997f}},
                      {{0.520000041f, -0.954999983f, 1.45500004f, 1.9749999f}, {0.949999988f, -2.02999997f}},
                      {{0.490000039f, -0.949999988f, 1.47500002f, 1.92499995f}, {1.00999999f, -2.03999996f}}});
  }
  SECTION("SGD(lr=0.1, momentum=0.9)") {
    SGDOptions o;
    o.lr = 0.1f;
    o.momentum = 0.9f;
    check_trajectory(make<SGD>(o),
                     {{{0.49000001f, -0.980000019f, 1.47000003f, 2.03999996f}, {1.0f, -2.0f}},
                      {{0.531000018f, -0.987000048f, 1.43800008f, 2.01600003f}, {0.969999969f, -1.99000001f}},
                      {{0.547900021f, -1.01330006f, 1.43920004f, 2.00440001f}, {0.922999978f, -2.02099991f}},
                      {{0.563109994f, -0.966970086f, 1.40028f, 1.97896004f}, {0.922999978f, -2.02099991f}},
                      {{0.546799004f, -0.920273066f, 1.385252f, 1.90606403f}, {0.940699995f, -2.05889988f}}});
  }
  SECTION("SGD(lr=0.1, momentum=0.9, dampening=0.5)") {
    SGDOptions o;
    o.lr = 0.1f;
    o.momentum = 0.9f;
    o.dampening = 0.5f;
    check_trajectory(make<SGD>(o),
                     {{{0.49000001f, -0.980000019f, 1.47000003f, 2.03999996f}, {1.0f, -2.0f}},
                      {{0.505999982f, -0.9745f, 1.44050002f, 2.046f}, {0.969999969f, -1.99000001f}},
                      {{0.510399997f, -0.979550004f, 1.42895007f, 2.05640006f}, {0.932999969f, -2.00099993f}},
                      {{0.514360011f, -0.949095011f, 1.39855504f, 2.05825996f}, {0.932999969f, -2.00099993f}},
                      {{0.502924025f, -0.919185519f, 1.38119948f, 2.03493404f}, {0.929699957f, -2.0158999f}}});
  }
  SECTION("SGD(lr=0.1, momentum=0.9, nesterov=True)") {
    SGDOptions o;
    o.lr = 0.1f;
    o.momentum = 0.9f;
    o.nesterov = true;
    check_trajectory(make<SGD>(o),
                     {{{0.481000006f, -0.962000012f, 1.44299996f, 2.07599998f}, {1.0f, -2.0f}},
                      {{0.567900002f, -0.993300021f, 1.40919995f, 1.99440002f}, {0.943000019f, -1.98099995f}},
                      {{0.563109994f, -1.03697002f, 1.44027996f, 1.99396002f}, {0.880699992f, -2.04889989f}},
                      {{0.576798975f, -0.925273001f, 1.3652519f, 1.95606399f}, {0.880699992f, -2.04889989f}},
                      {{0.532119095f, -0.878245711f, 1.37172675f, 1.84045756f}, {0.956629992f, -2.09300995f}}});
  }
  SECTION("SGD(lr=0.1, weight_decay=0.1)") {
    SGDOptions o;
    o.lr = 0.1f;
    o.weight_decay = 0.1f;
    check_trajectory(make<SGD>(o),
                     {{{0.484999985f, -0.969999969f, 1.45500004f, 2.01999998f}, {1.0f, -2.0f}},
                      {{0.530149996f, -0.985299945f, 1.43545008f, 1.93980002f}, {0.959999979f, -1.97000003f}},
                      {{0.50484848f, -0.99544692f, 1.45109558f, 1.93040204f}, {0.930399954f, -1.99030006f}},
                      {{0.499799997f, -0.915492475f, 1.39658463f, 1.89609802f}, {0.930399954f, -1.99030006f}},
                      {{0.464801997f, -0.901337564f, 1.40261877f, 1.82713699f}, {0.98109597f, -1.98039711f}}});
  }
  SECTION("SGD(lr=0.05, momentum=0.8, weight_decay=0.2, nesterov=True)") {
    SGDOptions o;
    o.lr = 0.05f;
    o.momentum = 0.8f;
    o.weight_decay = 0.2f;
    o.nesterov = true;
    check_trajectory(make<SGD>(o),
                     {{{0.481999993f, -0.963999987f, 1.44599998f, 2.0f}, {1.0f, -2.0f}},
                      {{0.511923969f, -0.956348002f, 1.39627194f, 1.90999997f}, {0.954999983f, -1.95500004f}},
                      {{0.492504537f, -0.948724151f, 1.37192464f, 1.85262001f}, {0.903809965f, -1.93981004f}},
                      {{0.480199307f, -0.86219883f, 1.29092228f, 1.7711488f}, {0.903809965f, -1.93981004f}},
                      {{0.438651562f, -0.808548748f, 1.24785924f, 1.64991212f}, {0.916229367f, -1.90138149f}}});
  }
  SECTION("SGD(lr=0.05, momentum=0.5, dampening=0.1, weight_decay=0.01)") {
    SGDOptions o;
    o.lr = 0.05f;
    o.momentum = 0.5f;
    o.dampening = 0.1f;
    o.weight_decay = 0.01f;
    check_trajectory(make<SGD>(o),
                     {{{0.494749993f, -0.989499986f, 1.48424995f, 2.01900005f}, {1.0f, -2.0f}},
                      {{0.51440233f, -0.995054722f, 1.47345698f, 2.00059152f}, {0.984499991f, -1.99399996f}},
                      {{0.514997005f, -1.00638425f, 1.48089743f, 1.99498701f}, {0.967306972f, -2.00810266f}},
                      {{0.51506263f, -0.980096161f, 1.46595132f, 1.98453701f}, {0.967306972f, -2.00810266f}},
                      {{0.501363635f, -0.964261055f, 1.46681857f, 1.95591891f}, {0.985275149f, -2.01875043f}}});
  }
}

TEST_CASE("SGD by hand: momentum buffer starts at the first gradient", "[optim]") {
  // p = 1, g = 2 then 4, lr 0.5, momentum 0.5, dampening 0.5:
  // step 1: b = 2, p = 1 - 0.5 * 2 = 0; step 2: b = 0.5 * 2 + 0.5 * 4 = 3, p = 0 - 1.5 = -1.5.
  Tensor p = Tensor::from_vector({1.f}, {1}).requires_grad_();
  SGDOptions o;
  o.lr = 0.5f;
  o.momentum = 0.5f;
  o.dampening = 0.5f;
  SGD opt({p}, o);
  maas::test::set_grad(p, {2.f});
  opt.step();
  REQUIRE(p.item() == 0.f);
  maas::test::set_grad(p, {4.f});
  opt.step();
  REQUIRE(p.item() == -1.5f);
  REQUIRE(opt.state().at(0).first == "0/momentum_buffer");
  REQUIRE(opt.state().at(0).second.item() == 3.f);
}

TEST_CASE("SGD validates its options", "[optim]") {
  Tensor p = Tensor::zeros({2}).requires_grad_();
  auto with = [](auto set) {
    SGDOptions o;
    set(o);
    return o;
  };
  MAAS_REQUIRE_THROWS_WITH(SGD({p}, with([](SGDOptions& o) { o.lr = -0.1f; })),
                           "SGD: lr must be >= 0 and finite, got -0.1");
  MAAS_REQUIRE_THROWS_WITH(SGD({p}, with([](SGDOptions& o) { o.momentum = -0.5f; })),
                           "SGD: momentum must be >= 0, got -0.5");
  MAAS_REQUIRE_THROWS_WITH(SGD({p}, with([](SGDOptions& o) { o.weight_decay = -1.f; })),
                           "SGD: weight_decay must be >= 0, got -1");
  MAAS_REQUIRE_THROWS_WITH(SGD({p}, with([](SGDOptions& o) { o.nesterov = true; })),
                           "SGD: nesterov requires momentum > 0 and dampening == 0, got momentum 0 and dampening 0");
  MAAS_REQUIRE_THROWS_WITH(SGD({p}, with([](SGDOptions& o) {
                                 o.nesterov = true;
                                 o.momentum = 0.9f;
                                 o.dampening = 0.1f;
                               })),
                           "SGD: nesterov requires momentum > 0 and dampening == 0");
  SGDOptions ok;
  ok.lr = 0.3f;
  ok.momentum = 0.9f;
  ok.nesterov = true;
  SGD opt({p}, ok);
  REQUIRE(opt.name() == "SGD");
  REQUIRE(opt.options().momentum == 0.9f);
  opt.set_lr(0.05f);
  REQUIRE(opt.options().lr == 0.05f);
  REQUIRE(SGDOptions{}.lr == 0.01f);
}
