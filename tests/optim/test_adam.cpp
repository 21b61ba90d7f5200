// Adam and AdamW: five steps of each option combination against
// torch.optim.Adam / AdamW (including a parameter that misses gradients, whose
// own step count lags), defaults, and option validation.
#include <catch2/catch.hpp>

#include "maas/optim/adam.hpp"
#include "optim/optim_test.hpp"

using namespace maas;
using namespace maas::optim;
using maas::test::check_trajectory;
using maas::test::make;

// Expected values: `python3 ref.py adam`, the script in optim_test.hpp.
TEST_CASE("Adam matches torch.optim.Adam step by step", "[optim]") {
  SECTION("Adam(lr=0.1)") {
    AdamOptions o;
    o.lr = 0.1f;
    check_trajectory(make<Adam>(o),
                     {{{0.400000006f, -0.899999976f, 1.39999998f, 2.0999999f}, {1.0f, -2.0f}},
                      {{0.45983541f, -0.916273177f, 1.32166719f, 2.07522964f}, {0.900000036f, -1.89999998f}},
                      {{0.479554892f, -0.96080184f, 1.32346249f, 2.0650444f}, {0.802964807f, -1.95595038f}},
                      {{0.495707899f, -0.92694068f, 1.28479505f, 2.04513311f}, {0.802964807f, -1.95595038f}},
                      {{0.481444627f, -0.894951582f, 1.27152801f, 2.00069618f}, {0.819121301f, -2.01304483f}}});
  }
  SECTION("Adam(lr=0.1, weight_decay=0.1)") {
    AdamOptions o;
    o.lr = 0.1f;
    o.weight_decay = 0.1f;
    check_trajectory(make<Adam>(o),
                     {{{0.400000036f, -0.900000036f, 1.39999998f, 2.0999999f}, {1.0f, -2.0f}},
                      {{0.449986964f, -0.875915647f, 1.30931842f, 2.04380846f}, {0.899999976f, -1.89999998f}},
                      {{0.455584586f, -0.878309488f, 1.26399517f, 1.99277425f}, {0.802067995f, -1.88780344f}},
                      {{0.455284566f, -0.826204121f, 1.19650936f, 1.93186188f}, {0.802067995f, -1.88780344f}},
                      {{0.425803423f, -0.774403274f, 1.14571726f, 1.8578465f}, {0.796257198f, -1.8635782f}}});
  }
  SECTION("Adam(lr=0.1, amsgrad=True)") {
    AdamOptions o;
    o.lr = 0.1f;
    o.amsgrad = true;
    check_trajectory(make<Adam>(o),
                     {{{0.400000006f, -0.899999976f, 1.39999998f, 2.0999999f}, {1.0f, -2.0f}},
                      {{0.45983541f, -0.916273177f, 1.32166719f, 2.07522964f}, {0.900000036f, -1.89999998f}},
                      {{0.479554892f, -0.96080184f, 1.32346249f, 2.0650444f}, {0.802964807f, -1.95595038f}},
                      {{0.495699823f, -0.92694068f, 1.28479505f, 2.04513311f}, {0.802964807f, -1.95595038f}},
                      {{0.481436551f, -0.894951582f, 1.27152801f, 2.00069618f}, {0.819121301f, -2.01304483f}}});
  }
  SECTION("Adam(lr=0.05, betas=(0.8, 0.99), eps=0.001, weight_decay=0.05, amsgrad=True)") {
    AdamOptions o;
    o.lr = 0.05f;
    o.beta1 = 0.8f;
    o.beta2 = 0.99f;
    o.eps = 0.001f;
    o.weight_decay = 0.05f;
    o.amsgrad = true;
    check_trajectory(make<Adam>(o),
                     {{{0.450396836f, -0.950199187f, 1.45013297f, 2.04983377f}, {1.0f, -2.0f}},
                      {{0.480289727f, -0.950502038f, 1.40812612f, 2.02613401f}, {0.950142443f, -1.95024872f}},
                      {{0.48537609f, -0.965850592f, 1.3997103f, 2.00899339f}, {0.90192014f, -1.96560943f}},
                      {{0.487741649f, -0.940510631f, 1.37105966f, 1.9859277f}, {0.90192014f, -1.96560943f}},
                      {{0.472323805f, -0.916853666f, 1.35547972f, 1.95161617f}, {0.908617854f, -1.97684181f}}});
  }
}

// Expected values: `python3 ref.py adamw`, the script in optim_test.hpp.
TEST_CASE("AdamW matches torch.optim.AdamW step by step", "[optim]") {
  SECTION("AdamW(lr=0.1)") {
    AdamWOptions o;
    o.lr = 0.1f;
    check_trajectory(make<AdamW>(o),
                     {{{0.399500012f, -0.899000049f, 1.39849997f, 2.09800005f}, {1.0f, -2.0f}},
                      {{0.458935916f, -0.914374232f, 1.31876874f, 2.07113171f}, {0.899000049f, -1.898f}},
                      {{0.478196472f, -0.95798856f, 1.31924534f, 2.05887532f}, {0.801065803f, -1.95205247f}},
                      {{0.493871301f, -0.923169434f, 1.27925873f, 2.03690529f}, {0.801065803f, -1.95205247f}},
                      {{0.479114175f, -0.89025718f, 1.26471245f, 1.99043155f}, {0.81642127f, -2.007195f}}});
  }
  SECTION("AdamW(lr=0.1, weight_decay=0.1, amsgrad=True)") {
    AdamWOptions o;
    o.lr = 0.1f;
    o.weight_decay = 0.1f;
    o.amsgrad = true;
    check_trajectory(make<AdamW>(o),
                     {{{0.395000011f, -0.889999986f, 1.38499999f, 2.07999992f}, {1.0f, -2.0f}},
                      {{0.450885415f, -0.897373199f, 1.29281723f, 2.03442979f}, {0.890000045f, -1.88f}},
                      {{0.466096044f, -0.932928145f, 1.2816844f, 2.00390029f}, {0.784064829f, -1.91715038f}},
                      {{0.477580011f, -0.889737725f, 1.23020017f, 1.96395004f}, {0.784064829f, -1.91715038f}},
                      {{0.458540946f, -0.848851264f, 1.20463109f, 1.89987361f}, {0.792380691f, -1.95507336f}}});
  }
  SECTION("AdamW(lr=0.05, betas=(0.8, 0.99), eps=0.001, weight_decay=0.0)") {
    AdamWOptions o;
    o.lr = 0.05f;
    o.beta1 = 0.8f;
    o.beta2 = 0.99f;
    o.eps = 0.001f;
    o.weight_decay = 0.0f;
    check_trajectory(make<AdamW>(o),
                     {{{0.450495064f, -0.950248778f, 1.45016611f, 2.04987526f}, {1.0f, -2.0f}},
                      {{0.482688695f, -0.961237311f, 1.4127934f, 2.0346663f}, {0.950166106f, -1.950495f}},
                      {{0.491469532f, -0.986694813f, 1.4184202f, 2.02862668f}, {0.90236789f, -1.98081255f}},
                      {{0.498187691f, -0.96630609f, 1.39852726f, 2.01726055f}, {0.90236789f, -1.98081255f}},
                      {{0.486873358f, -0.948212862f, 1.39443231f, 1.99133503f}, {0.914876878f, -2.01047397f}}});
  }
}

TEST_CASE("Adam by hand: the first step moves each element by lr", "[optim]") {
  // Step 1: m = 0.1 g, v = 0.001 g^2, step_size = lr / 0.1, denom = |g| + eps:
  // p -= lr * g / (|g| + eps), i.e. lr * sign(g) for |g| >> eps.
  Tensor p = Tensor::from_vector({1.f, 1.f, 1.f}, {3}).requires_grad_();
  AdamOptions o;
  o.lr = 0.25f;
  Adam opt({p}, o);
  maas::test::set_grad(p, {3.f, -0.5f, 0.f});
  opt.step();
  maas::test::require_near(p, {0.75f, 1.25f, 1.f});
}

TEST_CASE("Adam and AdamW defaults follow PyTorch", "[optim]") {
  AdamOptions a;
  AdamWOptions w;
  REQUIRE(a.lr == 1e-3f);
  REQUIRE(a.beta1 == 0.9f);
  REQUIRE(a.beta2 == 0.999f);
  REQUIRE(a.eps == 1e-8f);
  REQUIRE(a.weight_decay == 0.f);
  REQUIRE(!a.amsgrad);
  REQUIRE(w.lr == 1e-3f);
  REQUIRE(w.weight_decay == 1e-2f);
  Tensor p = Tensor::zeros({2}).requires_grad_();
  AdamW adamw({p});
  REQUIRE(adamw.name() == "AdamW");
  REQUIRE(adamw.options().weight_decay == 1e-2f);
  Adam adam({p});
  REQUIRE(adam.name() == "Adam");
  REQUIRE(adam.options().weight_decay == 0.f);
}

TEST_CASE("Adam and AdamW validate their options", "[optim]") {
  Tensor p = Tensor::zeros({2}).requires_grad_();
  AdamOptions o;
  o.beta2 = 1.5f;
  MAAS_REQUIRE_THROWS_WITH(Adam({p}, o), "Adam: beta2 must be in [0, 1), got 1.5");
  o = {};
  o.beta1 = 1.f;
  MAAS_REQUIRE_THROWS_WITH(Adam({p}, o), "Adam: beta1 must be in [0, 1), got 1");
  o = {};
  o.beta1 = -0.1f;
  MAAS_REQUIRE_THROWS_WITH(Adam({p}, o), "Adam: beta1 must be in [0, 1), got -0.1");
  o = {};
  o.eps = -1e-8f;
  MAAS_REQUIRE_THROWS_WITH(Adam({p}, o), "Adam: eps must be >= 0, got -1e-08");
  o = {};
  o.weight_decay = -0.01f;
  MAAS_REQUIRE_THROWS_WITH(Adam({p}, o), "Adam: weight_decay must be >= 0, got -0.01");
  o = {};
  o.lr = std::nanf("");
  MAAS_REQUIRE_THROWS_WITH(Adam({p}, o), "Adam: lr must be >= 0 and finite, got nan");
  AdamWOptions w;
  w.beta2 = 1.f;
  MAAS_REQUIRE_THROWS_WITH(AdamW({p}, w), "AdamW: beta2 must be in [0, 1), got 1");
  w = {};
  w.lr = -1.f;
  MAAS_REQUIRE_THROWS_WITH(AdamW({p}, w), "AdamW: lr must be >= 0 and finite, got -1");
}
