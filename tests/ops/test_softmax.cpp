#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

namespace {

// Reference softmax / log_softmax in double, by index arithmetic over [outer, len, inner].
std::vector<float> reference(const Tensor& x, int64_t dim, bool log_space) {
  int64_t outer = 1, len = x.shape()[static_cast<size_t>(dim)], inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= x.shape()[static_cast<size_t>(i)];
  for (int64_t i = dim + 1; i < x.dim(); ++i) inner *= x.shape()[static_cast<size_t>(i)];
  std::vector<float> out(static_cast<size_t>(x.numel()));
  const float* p = x.data();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double m = -INFINITY, s = 0.0;
      for (int64_t l = 0; l < len; ++l) m = std::max(m, double(p[(o * len + l) * inner + i]));
      for (int64_t l = 0; l < len; ++l) s += std::exp(p[(o * len + l) * inner + i] - m);
      for (int64_t l = 0; l < len; ++l) {
        const int64_t k = (o * len + l) * inner + i;
        out[static_cast<size_t>(k)] =
            static_cast<float>(log_space ? p[k] - m - std::log(s) : std::exp(p[k] - m) / s);
      }
    }
  return out;
}

// Largest |got - want|; one REQUIRE per tensor keeps large comparisons fast.
double max_abs_diff(const Tensor& got, const std::vector<float>& want) {
  REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
  double worst = 0.0;
  for (size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::fabs(double(got.data()[i]) - want[i]));
  return worst;
}

}  // namespace

TEST_CASE("softmax and log_softmax by hand", "[op]") {
  // exp(1), exp(2), exp(3) = 2.7182818, 7.3890561, 20.0855369; their sum is
  // 30.1928748, so softmax = [0.0900306, 0.2447285, 0.6652410] and
  // log_softmax = x - log(30.1928748) = x - 3.4076060.
  Tensor x = Tensor::from_vector({1, 2, 3}, {3});
  require_close(softmax(x, 0), {0.0900306f, 0.2447285f, 0.6652410f});
  require_close(softmax(x, -1), {0.0900306f, 0.2447285f, 0.6652410f});
  require_close(log_softmax(x, 0), {-2.4076060f, -1.4076060f, -0.4076060f});

  // Along dim 0 of [[1,2,3],[4,5,6]] every column is [v, v+3]:
  // softmax([0,3]) = [1/(1+e^3), e^3/(1+e^3)] = [0.0474259, 0.9525741].
  Tensor m = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  const float a = 0.0474259f, b = 0.9525741f;
  require_close(softmax(m, 0), {a, a, a, b, b, b});
  require_close(log_softmax(m, 0), {std::log(a), std::log(a), std::log(a), std::log(b), std::log(b), std::log(b)});
  // Along dim 1 each row is [v, v+1, v+2]: the same numbers as [1,2,3].
  require_close(softmax(m, 1), {0.0900306f, 0.2447285f, 0.6652410f, 0.0900306f, 0.2447285f, 0.6652410f});
  REQUIRE(softmax(m, 1).shape() == Shape{2, 3});
}

TEST_CASE("softmax lanes sum to one along every dimension", "[op]") {
  Generator gen(21);
  // inner = 70 > one block of lanes; the larger shapes take the parallel path.
  for (const Shape& shape : {Shape{2, 3, 4}, Shape{3, 5, 70}, Shape{64, 1000}, Shape{1000, 70}, Shape{4, 90, 100}}) {
    Tensor x = Tensor::randn(shape, gen, 0.f, 3.f);
    const int64_t nd = static_cast<int64_t>(shape.size());
    for (int64_t d = 0; d < nd; ++d) {
      INFO("shape " << to_string(shape) << " dim " << d);
      Tensor y = softmax(x, d);
      Tensor s = sum(y, d);
      REQUIRE(max_abs_diff(s, std::vector<float>(static_cast<size_t>(s.numel()), 1.f)) < 1e-5);
      REQUIRE(max_abs_diff(y, reference(x, d, false)) < 1e-6);
      REQUIRE(max_abs_diff(log_softmax(x, d - nd), reference(x, d, true)) < 1e-5);
    }
  }
}

TEST_CASE("softmax of extreme logits is finite", "[op]") {
  // max = 1e4: exp(0) = 1 and exp(-1e4), exp(-2e4) underflow to 0 -> one-hot;
  // log-sum-exp = 1e4 exactly, so log_softmax = x - 1e4.
  Tensor x = Tensor::from_vector({1e4f, -1e4f, 0.f, -1e4f, -1e4f, -1e4f}, {2, 3});
  Tensor y = softmax(x, 1);
  Tensor ly = log_softmax(x, 1);
  for (float v : y.to_vector()) REQUIRE(std::isfinite(v));
  for (float v : ly.to_vector()) REQUIRE(std::isfinite(v));
  // Second row: three equal logits, 1/3 each, log(1/3) = -1.0986123.
  require_close(y, {1, 0, 0, 1.f / 3, 1.f / 3, 1.f / 3});
  require_close(ly, {0, -2e4f, -1e4f, -1.0986123f, -1.0986123f, -1.0986123f});

  // Gradients stay finite too.
  Tensor xg = x.clone().requires_grad_();
  sum(log_softmax(xg, 1) * Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3})).backward();
  for (float v : xg.grad().to_vector()) REQUIRE(std::isfinite(v));
}

TEST_CASE("softmax and log_softmax gradients", "[op][grad]") {
  Generator gen(22);
  using V = std::vector<Tensor>;
  Tensor x = Tensor::randn({2, 3, 4}, gen);
  for (int64_t d : {0, 1, 2, -1, -2}) {
    INFO("dim " << d);
    check_gradients([d](const V& v) { return softmax(v[0], d); }, {x});
    check_gradients([d](const V& v) { return log_softmax(v[0], d); }, {x});
  }
  // A tensor used by both: accumulation across the two nodes.
  check_gradients([](const V& v) { return softmax(v[0], 1) + log_softmax(v[0], 0); }, {x});
}

TEST_CASE("softmax errors", "[op]") {
  MAAS_REQUIRE_THROWS_WITH(softmax(Tensor::zeros({2, 3}), 2), "softmax: dimension 2 is out of range for shape [2,3]");
  MAAS_REQUIRE_THROWS_WITH(log_softmax(Tensor::zeros({2, 3}), -3),
                           "log_softmax: dimension -3 is out of range for shape [2,3]");
  MAAS_REQUIRE_THROWS_WITH(softmax(Tensor::scalar(1.f), 0), "softmax: dimension 0 is out of range for shape []");
  MAAS_REQUIRE_THROWS_WITH(softmax(Tensor(), 0), "softmax: input is an undefined tensor");
}
