// RMSprop: five steps of each option combination against torch.optim.RMSprop,
// and option validation.
#include <catch2/catch.hpp>

#include "maas/optim/rmsprop.hpp"
#include "optim/optim_test.hpp"

using namespace maas;
using namespace maas::optim;
using maas::test::check_trajectory;
using maas::test::make;

// Expected values: `python3 ref.py rmsprop`, the script in optim_test.hpp.
TEST_CASE("RMSprop matches torch.optim.RMSprop step by step", "[optim]") {
  SECTION("RMSprop(lr=0.01)") {
    RMSpropOptions o;
    o.lr = 0.01f;
    check_trajectory(make<RMSprop>(o),
                     {{{0.400000095f, -0.900000036f, 1.4000001f, 2.0999999f}, {1.0f, -2.0f}},
                      {{0.498077005f, -0.978239715f, 1.3834796f, 2.01666665f}, {0.900000036f, -1.9000001f}},
                      {{0.461396813f, -1.03148711f, 1.45405626f, 2.03049135f}, {0.844336987f, -1.99704289f}},
                      {{0.461396813f, -0.943272173f, 1.38534331f, 2.01008797f}, {0.844336987f, -1.99704289f}},
                      {{0.412818819f, -0.936951995f, 1.41798186f, 1.95365751f}, {0.930243552f, -2.02073169f}}});
  }
  SECTION("RMSprop(lr=0.01, centered=True)") {
    RMSpropOptions o;
    o.lr = 0.01f;
    o.centered = true;
    check_trajectory(make<RMSprop>(o),
                     {{{0.399496317f, -0.899496257f, 1.3994962f, 2.10050368f}, {1.0f, -2.0f}},
                      {{0.497878045f, -0.977746308f, 1.38286602f, 2.01713681f}, {0.899496257f, -1.89949632f}},
                      {{0.461173892f, -1.03111351f, 1.45344639f, 2.03096294f}, {0.843292952f, -1.99679887f}},
                      {{0.461173892f, -0.942755699f, 1.38453352f, 2.01054788f}, {0.843292952f, -1.99679887f}},
                      {{0.412588626f, -0.936423063f, 1.41719687f, 1.95391512f}, {0.929209769f, -2.02059364f}}});
  }
  SECTION("RMSprop(lr=0.01, momentum=0.9)") {
    RMSpropOptions o;
    o.lr = 0.01f;
    o.momentum = 0.9f;
    check_trajectory(make<RMSprop>(o),
                     {{{0.400000095f, -0.900000036f, 1.39999998f, 2.0999999f}, {1.0f, -2.0f}},
                      {{0.408077091f, -0.888239741f, 1.29347956f, 2.10666656f}, {0.900000036f, -1.9000001f}},
                      {{0.378666192f, -0.930902898f, 1.26818788f, 2.12649131f}, {0.754337072f, -1.90704298f}},
                      {{0.352196366f, -0.8810848f, 1.17671239f, 2.12393045f}, {0.754337072f, -1.90704298f}},
                      {{0.279795527f, -0.829928398f, 1.1270231f, 2.06519508f}, {0.709146917f, -1.93707049f}}});
  }
  SECTION("RMSprop(lr=0.01, alpha=0.9, eps=0.0001, weight_decay=0.1)") {
    RMSpropOptions o;
    o.lr = 0.01f;
    o.alpha = 0.9f;
    o.eps = 0.0001f;
    o.weight_decay = 0.1f;
    check_trajectory(make<RMSprop>(o),
                     {{{0.468443751f, -0.968410552f, 1.46839941f, 2.03157282f}, {1.0f, -2.0f}},
                      {{0.498593837f, -0.98338145f, 1.45516729f, 2.00080895f}, {0.968402207f, -1.96841049f}},
                      {{0.483268082f, -0.993323863f, 1.46551085f, 1.99680078f}, {0.948931277f, -1.98676646f}},
                      {{0.480158746f, -0.963807642f, 1.44105983f, 1.98342526f}, {0.948931277f, -1.98676646f}},
                      {{0.461246401f, -0.958200395f, 1.44368649f, 1.96239817f}, {0.972368479f, -1.97775865f}}});
  }
  SECTION("RMSprop(lr=0.02, alpha=0.95, momentum=0.5, centered=True, weight_decay=0.05)") {
    RMSpropOptions o;
    o.lr = 0.02f;
    o.alpha = 0.95f;
    o.momentum = 0.5f;
    o.centered = true;
    o.weight_decay = 0.05f;
    check_trajectory(make<RMSprop>(o),
                     {{{0.408233762f, -0.908233702f, 1.40823376f, 2.09176636f}, {1.0f, -2.0f}},
                      {{0.450215727f, -0.919879258f, 1.33322477f, 2.05440617f}, {0.908233702f, -1.90823376f}},
                      {{0.43368879f, -0.965610385f, 1.34326053f, 2.03539634f}, {0.807458162f, -1.93787551f}},
                      {{0.421679199f, -0.905707479f, 1.28056586f, 1.99602675f}, {0.807458162f, -1.93787551f}},
                      {{0.367503643f, -0.864975989f, 1.26871455f, 1.91804254f}, {0.82924664f, -1.95348656f}}});
  }
}

TEST_CASE("RMSprop by hand: the first step divides by sqrt(1 - alpha) |g|", "[optim]") {
  // s = (1 - alpha) g^2 = 0.25 * 4 = 1, p = 1 - lr * g / (sqrt(s) + 0) = 1 - 0.5 * 2 = 0.
  Tensor p = Tensor::from_vector({1.f}, {1}).requires_grad_();
  RMSpropOptions o;
  o.lr = 0.5f;
  o.alpha = 0.75f;
  o.eps = 0.f;
  RMSprop opt({p}, o);
  maas::test::set_grad(p, {2.f});
  opt.step();
  REQUIRE(p.item() == 0.f);
}

TEST_CASE("RMSprop validates its options", "[optim]") {
  Tensor p = Tensor::zeros({2}).requires_grad_();
  RMSpropOptions o;
  o.alpha = 1.5f;
  MAAS_REQUIRE_THROWS_WITH(RMSprop({p}, o), "RMSprop: alpha must be in [0, 1], got 1.5");
  o = {};
  o.eps = -1.f;
  MAAS_REQUIRE_THROWS_WITH(RMSprop({p}, o), "RMSprop: eps must be >= 0, got -1");
  o = {};
  o.momentum = -0.9f;
  MAAS_REQUIRE_THROWS_WITH(RMSprop({p}, o), "RMSprop: momentum must be >= 0, got -0.9");
  o = {};
  o.weight_decay = -0.1f;
  MAAS_REQUIRE_THROWS_WITH(RMSprop({p}, o), "RMSprop: weight_decay must be >= 0, got -0.1");
  RMSpropOptions d;
  REQUIRE(d.lr == 1e-2f);
  REQUIRE(d.alpha == 0.99f);
  REQUIRE(d.eps == 1e-8f);
  REQUIRE(RMSprop({p}).name() == "RMSprop");
}
