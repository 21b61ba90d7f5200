#include <catch2/catch.hpp>

#include <cmath>

#include "gradcheck.hpp"
#include "maas/loss.hpp"
#include "ops/transformer_reference.hpp"

using namespace maas;
using maas::test::check_gradients;
using maas::test::require_close;

// Reference values marked "PyTorch" were computed once with PyTorch 1.13
// (torch.nn.functional.cross_entropy, float64) and pasted here.

namespace {
using V = std::vector<Tensor>;

// x3 = [[1, 2, 0.5], [-1, 0, 3], [0.3, -0.2, 0.1]], labels {1, 0, 2}.
Tensor logits3() { return Tensor::from_vector({1, 2, 0.5f, -1, 0, 3, 0.3f, -0.2f, 0.1f}, {3, 3}); }
Tensor labels3() { return Tensor::from_vector({1, 0, 2}, {3}); }
const std::vector<float> kWeights{0.2f, 1.f, 3.f};
// Probability targets for logits3.
Tensor probs3() { return Tensor::from_vector({0.1f, 0.6f, 0.3f, 0.5f, 0.5f, 0, 0, 0, 1}, {3, 3}); }

CrossEntropyOptions ce(Reduction r, std::vector<float> w = {}, float smoothing = 0.f) {
  CrossEntropyOptions o;
  o.reduction = r;
  o.class_weights = std::move(w);
  o.label_smoothing = smoothing;
  return o;
}
}  // namespace

TEST_CASE("cross_entropy by hand: equal logits", "[loss]") {
  // All logits 0 over C = 4: softmax 1/4, loss log 4 per row; dlogits = (p - onehot) / N.
  Tensor x = Tensor::zeros({2, 4}).requires_grad_();
  Tensor y = Tensor::from_vector({3, 0}, {2});
  Tensor loss = cross_entropy(x, y);
  REQUIRE(loss.dim() == 0);
  REQUIRE(loss.item() == Approx(std::log(4.f)));
  loss.backward();
  require_close(x.grad(), {0.125f, 0.125f, 0.125f, -0.375f, -0.375f, 0.125f, 0.125f, 0.125f});
  REQUIRE(cross_entropy(x, y, ce(Reduction::Sum)).item() == Approx(2 * std::log(4.f)));
  // Row [1, 2, 0.5] with label 1: log(e + e^2 + e^0.5) - 2 = log(11.756060) - 2 = 0.46436878.
  Tensor row = Tensor::from_vector({1, 2, 0.5f}, {1, 3});
  REQUIRE(cross_entropy(row, Tensor::from_vector({1}, {1})).item() == Approx(0.46436878f));
}

TEST_CASE("cross_entropy forward and gradient against PyTorch", "[loss]") {
  // PyTorch: x = [[1, 2, 0.5], [-1, 0, 3]], y = {1, 0}.
  Tensor x = Tensor::from_vector({1, 2, 0.5f, -1, 0, 3}, {2, 3}).requires_grad_();
  Tensor y = Tensor::from_vector({1, 0}, {2});
  require_close(cross_entropy(x, y), {2.2651263f});
  require_close(cross_entropy(x, y, ce(Reduction::Sum)), {4.5302527f});
  Tensor none = cross_entropy(x, y, ce(Reduction::None));
  REQUIRE(none.shape() == Shape{2});
  require_close(none, {0.46436878f, 4.0658839f});
  cross_entropy(x, y).backward();
  require_close(x.grad(), {0.11561195f, -0.18573414f, 0.070122192f, -0.49142609f, 0.023306311f, 0.46811978f});
  // None with upstream {1, 1} is the Sum gradient: twice the Mean one here.
  x.zero_grad();
  cross_entropy(x, y, ce(Reduction::None)).backward(Tensor::ones({2}));
  require_close(x.grad(), {0.2312239f, -0.37146828f, 0.14024438f, -0.98285218f, 0.046612622f, 0.93623956f});
}

TEST_CASE("cross_entropy with class weights against PyTorch", "[loss]") {
  Tensor x = logits3().requires_grad_();
  // Mean is sum(w[y_i] l_i) / sum(w[y_i]): PyTorch.
  require_close(cross_entropy(x, labels3(), ce(Reduction::Mean, kWeights)), {1.0798485f});
  require_close(cross_entropy(x, labels3(), ce(Reduction::Sum, kWeights)), {4.5353635f});
  require_close(cross_entropy(x, labels3(), ce(Reduction::None, kWeights)), {0.46436878f, 0.81317678f, 3.257818f});
  // By hand from the Sum: the weights of the labels are 1, 0.2, 3, so Mean = Sum / 4.2.
  REQUIRE(cross_entropy(x, labels3(), ce(Reduction::Mean, kWeights)).item() == Approx(4.5353635f / 4.2f));
  cross_entropy(x, labels3(), ce(Reduction::Mean, kWeights)).backward();
  require_close(x.grad(), {0.055053309f, -0.088444829f, 0.03339152f, -0.046802484f, 0.0022196487f, 0.044582836f,
                           0.29451906f, 0.17863484f, -0.4731539f});
}

TEST_CASE("cross_entropy with label smoothing against PyTorch", "[loss]") {
  Tensor x = logits3().requires_grad_();
  require_close(cross_entropy(x, labels3(), ce(Reduction::Mean, {}, 0.1f)), {1.8453973f});
  require_close(cross_entropy(x, labels3(), ce(Reduction::Sum, {}, 0.1f)), {5.536192f});
  require_close(cross_entropy(x, labels3(), ce(Reduction::None, {}, 0.1f)), {0.54770212f, 3.8992172f, 1.0892727f});
  cross_entropy(x, labels3(), ce(Reduction::Mean, {}, 0.1f)).backward();
  require_close(x.grad(), {0.065963521f, -0.10160054f, 0.035637017f, -0.30539517f, 0.0044264297f, 0.30096874f,
                           0.12633112f, 0.072251814f, -0.19858293f});
  // Smoothing 0.2 together with class weights.
  x.zero_grad();
  require_close(cross_entropy(x, labels3(), ce(Reduction::Mean, kWeights, 0.2f)), {1.1106725f});
  require_close(cross_entropy(x, labels3(), ce(Reduction::Sum, kWeights, 0.2f)), {4.6648246f});
  require_close(cross_entropy(x, labels3(), ce(Reduction::None, kWeights, 0.2f)),
                {0.81485162f, 0.92232225f, 2.9276507f});
  cross_entropy(x, labels3(), ce(Reduction::Mean, kWeights, 0.2f)).backward();
  require_close(x.grad(), {0.05628297f, -0.044726764f, -0.011556206f, -0.039473402f, -0.010989789f, 0.050463191f,
                           0.25992909f, 0.14370744f, -0.40363653f});
  // By hand: smoothing 1 makes the target uniform, so equal logits over C = 4 give log 4 and zero gradient.
  Tensor z = Tensor::zeros({1, 4}).requires_grad_();
  Tensor loss = cross_entropy(z, Tensor::from_vector({2}, {1}), ce(Reduction::Mean, {}, 1.f));
  REQUIRE(loss.item() == Approx(std::log(4.f)));
  loss.backward();
  require_close(z.grad(), {0, 0, 0, 0});
}

TEST_CASE("cross_entropy_with_probs against PyTorch", "[loss]") {
  Tensor x = logits3().requires_grad_();
  Tensor q = probs3().requires_grad_();
  require_close(cross_entropy_with_probs(x, q), {1.8887307f});
  require_close(cross_entropy_with_probs(x, q, ce(Reduction::Sum)), {5.666192f});
  Tensor none = cross_entropy_with_probs(x, q, ce(Reduction::None));
  REQUIRE(none.shape() == Shape{3});
  require_close(none, {1.0143688f, 3.5658839f, 1.0859393f});
  cross_entropy_with_probs(x, q).backward();
  require_close(x.grad(), {0.043741299f, 0.0095105731f, -0.053251872f, -0.16095072f, -0.15112913f, 0.31207985f,
                           0.13744223f, 0.083362926f, -0.22080515f});
  require_close(q.grad(), {0.48812293f, 0.15478959f, 0.65478959f, 1.3552946f, 1.0219613f, 0.021961301f, 0.29531311f,
                           0.46197977f, 0.36197977f});
  // Class weights (mean divides by N, not by the weights) and smoothing 0.1.
  x.zero_grad();
  q.zero_grad();
  require_close(cross_entropy_with_probs(x, q, ce(Reduction::Mean, kWeights, 0.1f)), {2.3547123f});
  require_close(cross_entropy_with_probs(x, q, ce(Reduction::Sum, kWeights, 0.1f)), {7.0641368f});
  require_close(cross_entropy_with_probs(x, q, ce(Reduction::None, kWeights, 0.1f)),
                {2.0899348f, 1.8814677f, 3.0927343f});
  cross_entropy_with_probs(x, q, ce(Reduction::Mean, kWeights, 0.1f)).backward();
  require_close(x.grad(), {0.10800632f, 0.12483083f, -0.23283716f, -0.028335382f, -0.15054558f, 0.17888097f,
                           0.38811371f, 0.2256396f, -0.6137533f});
  require_close(q.grad(), {0.087862127f, 0.13931064f, 1.7679319f, 0.24395303f, 0.91976517f, 0.059295513f,
                           0.053156359f, 0.4157818f, 0.97734539f});
}

TEST_CASE("cross_entropy_with_probs with one-hot rows equals cross_entropy", "[loss]") {
  Tensor onehot = Tensor::from_vector({0, 1, 0, 1, 0, 0, 0, 0, 1}, {3, 3});  // labels {1, 0, 2}
  for (float s : {0.f, 0.3f})
    for (Reduction r : {Reduction::Sum, Reduction::None}) {
      // With weights only Sum and None agree: the two forms' Means divide by different things.
      Tensor a = logits3().requires_grad_();
      Tensor b = logits3().requires_grad_();
      Tensor la = cross_entropy(a, labels3(), ce(r, kWeights, s));
      Tensor lb = cross_entropy_with_probs(b, onehot, ce(r, kWeights, s));
      require_close(la, lb.to_vector());
      sum(la).backward();
      sum(lb).backward();
      require_close(a.grad(), b.grad().to_vector());
    }
  require_close(cross_entropy(logits3(), labels3()), cross_entropy_with_probs(logits3(), onehot).to_vector());
}

TEST_CASE("cross_entropy with extreme logits is finite and exact", "[loss]") {
  // Logits +-1e4: softmax is exactly {1, 0, 0}. Row 0 (label 0) has loss 0 and
  // gradient 0; row 1 (label 1) has loss 1e4 - (-1e4) = 2e4 and gradient p - onehot = {1, -1, 0}.
  Tensor x = Tensor::from_vector({1e4f, -1e4f, 0, 1e4f, -1e4f, 0}, {2, 3}).requires_grad_();
  Tensor y = Tensor::from_vector({0, 1}, {2});
  Tensor none = cross_entropy(x, y, ce(Reduction::None));
  require_close(none, {0, 2e4f});
  Tensor loss = cross_entropy(x, y, ce(Reduction::Sum));
  REQUIRE(std::isfinite(loss.item()));
  REQUIRE(loss.item() == 2e4f);
  loss.backward();
  require_close(x.grad(), {0, 0, 0, 1, -1, 0});
  for (float g : x.grad().to_vector()) REQUIRE(std::isfinite(g));
  // Also with weights, smoothing and probability targets: finite everywhere.
  // Smoothing 0.3 over 3 classes, label 1: target {0.1, 0.8, 0.1}; log p = {0, -2e4, -1e4}
  // so loss = 0.8 * 2e4 + 0.1 * 1e4 = 17000 and gradient p - t = {0.9, -0.8, -0.1}.
  Tensor x1 = Tensor::from_vector({1e4f, -1e4f, 0}, {1, 3}).requires_grad_();
  Tensor ls = cross_entropy(x1, Tensor::from_vector({1}, {1}), ce(Reduction::Mean, {}, 0.3f));
  REQUIRE(ls.item() == Approx(17000.f));
  ls.backward();
  require_close(x1.grad(), {0.9f, -0.8f, -0.1f});
  Tensor q = Tensor::from_vector({0, 0, 1}, {1, 3}).requires_grad_();
  x1.zero_grad();
  Tensor lp = cross_entropy_with_probs(x1, q);
  REQUIRE(lp.item() == 1e4f);  // -log p_2 = 1e4
  lp.backward();
  require_close(x1.grad(), {1, 0, -1});
  require_close(q.grad(), {0, 2e4f, 1e4f});  // -log p
}

TEST_CASE("cross_entropy gradient check", "[loss][grad]") {
  Generator gen(5);
  Tensor x = Tensor::randn({4, 5}, gen);
  Tensor y = Tensor::from_vector({4, 0, 2, 2}, {4});
  const std::vector<float> w{0.5f, 1.f, 2.f, 0.1f, 1.5f};
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    for (const auto& weights : {std::vector<float>{}, w})
      for (float s : {0.f, 0.15f}) {
        const CrossEntropyOptions o = ce(r, weights, s);
        check_gradients([y, o](const V& v) { return cross_entropy(v[0], y, o); }, {x});
      }
  // Probability targets: gradients for both the logits and the targets.
  Tensor q = Tensor::rand({4, 5}, gen, 0.f, 1.f);
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None})
    for (float s : {0.f, 0.2f}) {
      const CrossEntropyOptions o = ce(r, w, s);
      check_gradients([o](const V& v) { return cross_entropy_with_probs(v[0], v[1], o); }, {x, q});
    }
  // A single class: the loss is identically 0.
  Tensor one = Tensor::randn({3, 1}, gen);
  check_gradients([](const V& v) { return cross_entropy(v[0], Tensor::zeros({3})); }, {one});
}

TEST_CASE("cross_entropy on a large batch takes the parallel path", "[loss]") {
  // 20000 copies of the row [1, 2, 0.5] with label 1: the mean is the row's loss 0.46436878.
  const int64_t n = 20000;
  Tensor x = Tensor::empty({n, 3});
  for (int64_t i = 0; i < n; ++i) {
    x.data()[i * 3] = 1.f;
    x.data()[i * 3 + 1] = 2.f;
    x.data()[i * 3 + 2] = 0.5f;
  }
  x.requires_grad_();
  Tensor loss = cross_entropy(x, Tensor::ones({n}));
  REQUIRE(loss.item() == Approx(0.46436878f).epsilon(1e-5));
  loss.backward();
  // Each row's gradient is (softmax - onehot) / n; softmax = exp(x - 2.46436878).
  const float p0 = std::exp(1.f - 2.46436878f), p2 = std::exp(0.5f - 2.46436878f);
  for (int64_t i : {int64_t{0}, n / 2, n - 1}) {
    REQUIRE(x.grad().data()[i * 3] == Approx(p0 / n));
    REQUIRE(x.grad().data()[i * 3 + 1] == Approx(-(p0 + p2) / n));
    REQUIRE(x.grad().data()[i * 3 + 2] == Approx(p2 / n));
  }
}

TEST_CASE("cross_entropy with zero total weight is NaN, as PyTorch", "[loss]") {
  Tensor loss = cross_entropy(logits3(), Tensor::from_vector({0, 0, 0}, {3}), ce(Reduction::Mean, {0, 1, 1}));
  REQUIRE(std::isnan(loss.item()));
  REQUIRE(cross_entropy(logits3(), Tensor::from_vector({0, 0, 0}, {3}), ce(Reduction::Sum, {0, 1, 1})).item() == 0.f);
}

TEST_CASE("cross_entropy errors name the loss, shapes and labels", "[loss]") {
  Tensor x = Tensor::zeros({4, 10});
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({3})), "cross_entropy: labels [3] do not match logits [4,10]");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4, 1})),
                           "cross_entropy: labels [4,1] do not match logits [4,10]");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector({0, 12, 3, 1}, {4})),
                           "cross_entropy: label 12 at index 1 is out of range for 10 classes");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector({0, 1, 2, -1}, {4})),
                           "cross_entropy: label -1 at index 3 is out of range for 10 classes");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector({0, 1, 2.5f, 1}, {4})),
                           "cross_entropy: label 2.5 at index 2 is not a whole number");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector({0, 1, NAN, 1}, {4})),
                           "at index 2 is not a whole number");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::from_vector({0, 1, 2, INFINITY}, {4})),
                           "at index 3 is out of range for 10 classes");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({4}), Tensor::zeros({4})),
                           "cross_entropy: logits [4] must be [N,C] with C >= 1");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({4, 0}), Tensor::zeros({4})),
                           "cross_entropy: logits [4,0] must be [N,C] with C >= 1");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4}), ce(Reduction::Mean, {1, 2, 3})),
                           "cross_entropy: class_weights has 3 entries but logits [4,10] have 10 classes");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({1, 2}), Tensor::zeros({1}), ce(Reduction::Mean, {1, -2})),
                           "cross_entropy: class_weights[1] = -2 must be finite and >= 0");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor::zeros({4}), ce(Reduction::Mean, {}, 1.5f)),
                           "cross_entropy: label_smoothing 1.5 is outside [0, 1]");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(Tensor::zeros({0, 10}), Tensor::zeros({0})),
                           "cross_entropy: mean over an empty input [0,10]");
  REQUIRE(cross_entropy(Tensor::zeros({0, 10}), Tensor::zeros({0}), ce(Reduction::Sum)).item() == 0.f);
  MAAS_REQUIRE_THROWS_WITH(cross_entropy(x, Tensor()), "cross_entropy: labels is an undefined tensor");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy_with_probs(x, Tensor::zeros({4, 9})),
                           "cross_entropy_with_probs: target_probs [4,9] do not match logits [4,10]");
  MAAS_REQUIRE_THROWS_WITH(cross_entropy_with_probs(x, Tensor::zeros({4, 10}), ce(Reduction::Mean, {1})),
                           "cross_entropy_with_probs: class_weights has 1 entries but logits [4,10] have 10 classes");
}

TEST_CASE("cross_entropy over a sequence [B,T,V] with ignored positions against PyTorch", "[loss]") {
  // Values: tests/ops/transformer_ops_reference.py.
  Tensor z = test::fill({2, 3, 4}, 0.53, 0.6).requires_grad_();
  const Tensor labels = Tensor::from_vector({3, -100, 0, 1, 2, -100}, {2, 3});
  Tensor loss = cross_entropy(z, labels);
  require_close(loss, test::kCeLoss, 1e-6f);
  loss.backward();
  require_close(z.grad(), test::kCeGrad, 1e-6f);
  CrossEntropyOptions none;
  none.reduction = Reduction::None;
  const Tensor per = cross_entropy(z, labels, none);
  REQUIRE(per.shape() == Shape{2, 3});
  REQUIRE(per.data()[1] == 0.f);
  REQUIRE(per.data()[5] == 0.f);
  check_gradients([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], labels, none); },
                  {test::fill({2, 3, 4}, 0.53, 0.6)});
  REQUIRE_THROWS_WITH(cross_entropy(z, Tensor::zeros({2, 4})), Catch::Contains("expected [2,3]"));
  CrossEntropyOptions other;
  other.ignore_index = 7;
  REQUIRE_THROWS_WITH(cross_entropy(z, labels, other), Catch::Contains("label -100 at index 1"));
}
