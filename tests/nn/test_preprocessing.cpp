// Rescaling and Normalization: forward values by hand, gradients, errors.
#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using namespace maas::nn;
using maas::test::check_module_gradients;
using maas::test::require_close;

TEST_CASE("Rescaling computes x * scale + offset and passes gradients", "[layer]") {
  Rescaling r(2.f, -1.f);
  REQUIRE(r.build({3}) == Shape{3});
  require_close(r(Tensor::from_vector({0.f, 0.5f, 1.f, 0.25f, 2.f, -1.f}, {2, 3})), {-1, 0, 1, -0.5f, 3, -3});
  Rescaling bytes(1.f / 255.f);
  require_close(bytes(Tensor::from_vector({0.f, 51.f, 255.f}, {1, 3})), {0.f, 0.2f, 1.f});
  CHECK(r.num_parameters() == 0);
  CHECK(r.named_buffers().empty());
  Generator gen(3);
  Rescaling g(-0.5f, 0.25f);
  check_module_gradients(g, Tensor::randn({2, 3, 2, 2}, gen));
  MAAS_REQUIRE_THROWS_WITH(Rescaling(std::nanf(""), 0.f), "Rescaling: scale nan");
}

TEST_CASE("Normalization standardises each channel as Keras does", "[layer]") {
  SECTION("images: channel 1 of [N, C, H, W]") {
    Normalization n({1.f, -2.f}, {4.f, 0.25f});
    REQUIRE(n.build({2, 1, 2}) == Shape{2, 1, 2});
    // channel 0: (x - 1) / 2; channel 1: (x + 2) / 0.5
    require_close(n(Tensor::from_vector({1, 3, -2, -1}, {1, 2, 1, 2})), {0, 1, 0, 2});
  }
  SECTION("features: [N, F]") {
    Normalization n({10.f, 0.f, -1.f}, {100.f, 1.f, 9.f});
    require_close(n(Tensor::from_vector({20, 0.5f, 5, 0, -2, -1}, {2, 3})), {1, 0.5f, 2, -1, -2, 0});
  }
  SECTION("a variance of 0 divides by Keras' epsilon 1e-7") {
    Normalization n({0.f}, {0.f});
    const Tensor y = n(Tensor::from_vector({3e-7f, 0.f}, {2, 1}));
    CHECK(y.data()[0] == Approx(3.f).epsilon(1e-5));
    CHECK(y.data()[1] == 0.f);
  }
  SECTION("without statistics: Keras' initial mean 0, variance 1, until loaded") {
    Normalization n;
    const Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
    require_close(n(x), {1, 2, 3, 4});
    REQUIRE(n.mean().shape() == Shape{2});
  }
}

TEST_CASE("Normalization holds buffers, no parameters, and passes gradients to its input", "[layer][grad]") {
  Normalization n({0.5f, -1.f, 2.f}, {0.25f, 4.f, 1.f});
  n.build({3, 2, 2});
  CHECK(n.num_parameters() == 0);
  const NamedTensors b = n.named_buffers();
  REQUIRE(b.size() == 3);
  CHECK(b[0].first == "mean");
  CHECK(b[1].first == "variance");
  CHECK(b[2].first == "count");
  CHECK(n.count().dim() == 0);
  Generator gen(5);
  check_module_gradients(n, Tensor::randn({2, 3, 2, 2}, gen));
  // In a model: the gradient reaches the Dense after it.
  Sequential m({3});
  m.add(Normalization({1.f, 2.f, 3.f}, {1.f, 4.f, 9.f})).add(Dense(2));
  CHECK(m.parameters().size() == 2);
  check_module_gradients(m, Tensor::randn({4, 3}, gen));
}

TEST_CASE("Normalization rejects statistics that do not fit", "[layer]") {
  MAAS_REQUIRE_THROWS_WITH(Normalization({1.f, 2.f}, {1.f}), "must be non-empty and of one size");
  MAAS_REQUIRE_THROWS_WITH(Normalization({}, {}), "must be non-empty");
  MAAS_REQUIRE_THROWS_WITH(Normalization({0.f}, {-1.f}), "channel 0 has mean 0 and variance -1");
  Normalization three({1, 2, 3}, {1, 1, 1});
  three.set_name("norm");
  MAAS_REQUIRE_THROWS_WITH(three.build({1, 28, 28}), "Normalization 'norm' has 3 means and variances but input (None, 1, 28, 28) has 1 channels");
  Normalization n;
  MAAS_REQUIRE_THROWS_WITH(n.build({4, 5}), "must be (None, features) or (None, channels, height, width)");
  Normalization built({0.f, 0.f}, {1.f, 1.f});
  built.set_name("n2");
  built.build({2});
  MAAS_REQUIRE_THROWS_WITH(built(Tensor::zeros({1, 3})), "Normalization 'n2' has 2 channels but got input (None, 3)");
}
