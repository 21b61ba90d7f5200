#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

TEST_CASE("relu and leaky_relu by hand", "[op]") {
  Tensor x = Tensor::from_vector({-2, -0.5f, 0, 1.5f}, {4});
  require_close(relu(x), {0, 0, 0, 1.5f});
  require_close(leaky_relu(x, 0.1f), {-0.2f, -0.05f, 0, 1.5f});
  require_close(leaky_relu(x), {-0.02f, -0.005f, 0, 1.5f});
}

TEST_CASE("relu gradients away from the kink", "[op][grad]") {
  // Values at least 0.1 from zero, so the finite difference never crosses it.
  Tensor x = Tensor::from_vector({-1.5f, -0.3f, 0.2f, 0.7f, 2.f, -0.9f}, {2, 3});
  using V = std::vector<Tensor>;
  check_gradients([](const V& v) { return relu(v[0]); }, {x});
  check_gradients([](const V& v) { return leaky_relu(v[0], 0.2f); }, {x});
}

TEST_CASE("relu gradient at zero is zero (PyTorch's convention)", "[op]") {
  Tensor x = Tensor::from_vector({0.f}, {1}).requires_grad_();
  sum(relu(x)).backward();
  REQUIRE(x.grad().item() == 0.f);
}

TEST_CASE("relu and leaky_relu on a large tensor match the element-wise rule, NaN and signed zeros included",
          "[op]") {
  // Long enough to be split over threads, and not a multiple of the 64
  // elements the kernel handles at a time.
  const int64_t n = 100003;
  std::vector<float> v(static_cast<size_t>(n));
  Generator gen(6);
  for (int64_t i = 0; i < n; ++i) {
    const int r = static_cast<int>(i % 97);
    v[static_cast<size_t>(i)] = r == 0 ? std::numeric_limits<float>::quiet_NaN()
                                : r == 1 ? 0.f
                                : r == 2 ? -0.f
                                         : gen.normal();
  }
  for (float slope : {0.f, 0.1f}) {
    const bool leaky = slope != 0.f;
    INFO((leaky ? "leaky_relu" : "relu"));
    Tensor x = Tensor::from_vector(v, {n}).requires_grad_();
    Tensor y = leaky ? leaky_relu(x, slope) : relu(x);
    Tensor dout = Tensor::randn({n}, gen);
    y.backward(dout);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float e = v[static_cast<size_t>(i)];
      const float want = e > 0.f ? e : (leaky ? e * slope : 0.f);
      const float got = y.data()[i];
      bad += !((std::isnan(want) && std::isnan(got)) || std::memcmp(&want, &got, sizeof(float)) == 0);
      const float g = dout.data()[i];
      bad += x.grad().data()[i] != (e > 0.f ? g : (leaky ? g * slope : 0.f));
    }
    REQUIRE(bad == 0);
  }
}
