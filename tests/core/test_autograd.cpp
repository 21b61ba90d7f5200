#include <catch2/catch.hpp>

#include <memory>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::require_close;

TEST_CASE("a tensor used twice gets the sum of both gradients", "[autograd]") {
  // y = x*x + 3x, dy/dx = 2x + 3 = 7 at x = 2.
  Tensor x = Tensor::scalar(2.f).requires_grad_();
  Tensor y = x * x + x * 3.f;
  REQUIRE(y.item() == 10.f);
  y.backward();
  REQUIRE(x.grad().item() == 7.f);
}

TEST_CASE("shared subexpressions back-propagate once per use", "[autograd]") {
  // s = a*b; z = s + s*s => dz/da = b (1 + 2s); a=2, b=3: s=6, dz/da = 3*13 = 39, dz/db = 2*13 = 26.
  Tensor a = Tensor::scalar(2.f).requires_grad_();
  Tensor b = Tensor::scalar(3.f).requires_grad_();
  Tensor s = a * b;
  Tensor z = s + s * s;
  z.backward();
  REQUIRE(z.item() == 42.f);
  REQUIRE(a.grad().item() == 39.f);
  REQUIRE(b.grad().item() == 26.f);
}

TEST_CASE("backward twice accumulates, zero_grad resets", "[autograd]") {
  Tensor x = Tensor::from_vector({1, 2}, {2}).requires_grad_();
  sum(x * 2.f).backward();
  sum(x * 2.f).backward();
  require_close(x.grad(), {4, 4});
  x.zero_grad();
  require_close(x.grad(), {0, 0});
  x.zero_grad(/*set_to_none=*/true);
  REQUIRE_FALSE(x.grad().defined());
}

TEST_CASE("retain_graph allows a second pass through the same graph", "[autograd]") {
  Tensor x = Tensor::scalar(3.f).requires_grad_();
  Tensor y = x * x;
  y.backward(/*retain_graph=*/true);
  y.backward();
  REQUIRE(x.grad().item() == 12.f);
  MAAS_REQUIRE_THROWS_WITH(y.backward(), "was freed by an earlier backward()");
}

TEST_CASE("explicit upstream gradient", "[autograd]") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}).requires_grad_();
  Tensor y = x * x;
  y.backward(Tensor::from_vector({1, 0, 2}, {3}));
  require_close(x.grad(), {2, 0, 12});
  Tensor y2 = x * x;
  MAAS_REQUIRE_THROWS_WITH(y2.backward(Tensor::ones({2})), "gradient of shape [2] does not match");
  MAAS_REQUIRE_THROWS_WITH(y2.backward(), "only for a one-element output");
}

TEST_CASE("no-grad mode records nothing", "[autograd]") {
  Tensor x = Tensor::ones({2}).requires_grad_();
  Tensor y;
  {
    NoGradGuard guard;
    REQUIRE_FALSE(grad_enabled());
    y = x * 2.f;
  }
  REQUIRE(grad_enabled());
  REQUIRE_FALSE(y.requires_grad());
  REQUIRE(y.is_leaf());
  MAAS_REQUIRE_THROWS_WITH(sum(y).backward(), "does not require grad");
}

TEST_CASE("detach cuts the graph but shares data", "[autograd]") {
  Tensor x = Tensor::from_vector({1, 2}, {2}).requires_grad_();
  Tensor y = x * 2.f;
  Tensor d = y.detach();
  REQUIRE_FALSE(d.requires_grad());
  REQUIRE(d.shares_storage(y));
  // z depends on x only through the detached branch plus one live use.
  Tensor z = sum(d * x);  // dz/dx = d = 2x
  z.backward();
  require_close(x.grad(), {2, 4});
}

TEST_CASE("requires_grad propagates and grad_fn names the op", "[autograd]") {
  Tensor a = Tensor::ones({2});
  Tensor b = Tensor::ones({2}).requires_grad_();
  Tensor c = a + b;
  REQUIRE(c.requires_grad());
  REQUIRE_FALSE(c.is_leaf());
  REQUIRE(c.grad_fn_name() == "add");
  REQUIRE_FALSE((a + a).requires_grad());
  MAAS_REQUIRE_THROWS_WITH(c.requires_grad_(), "only leaf tensors");
  // A leaf that does not require grad receives none.
  sum(c).backward();
  REQUIRE_FALSE(a.grad().defined());
  require_close(b.grad(), {1, 1});
}

TEST_CASE("the graph is freed after backward, nothing keeps it alive", "[autograd]") {
  std::weak_ptr<detail::TensorImpl> hidden;
  Tensor x = Tensor::ones({4}).requires_grad_();
  {
    Tensor h = x * 2.f;
    hidden = h.impl();
    Tensor y = sum(relu(h));
    y.backward();
    h = Tensor();
    // The output still exists but its released node no longer holds h.
    REQUIRE(hidden.expired());
  }
  {
    Tensor h = exp(x);  // exp's backward keeps its own output: must not form a cycle
    hidden = h.impl();
    Tensor y = sum(h);
    h = Tensor();
    REQUIRE_FALSE(hidden.expired());  // the graph of y holds it
    y = Tensor();
    REQUIRE(hidden.expired());  // dropping the output frees the whole graph
  }
}

TEST_CASE("a deep chain back-propagates without recursion limits", "[autograd]") {
  Tensor x = Tensor::scalar(1.f).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y + 0.f;
  y.backward();
  REQUIRE(x.grad().item() == 1.f);
}

TEST_CASE("leaf root accumulates directly", "[autograd]") {
  Tensor x = Tensor::scalar(5.f).requires_grad_();
  x.backward();
  REQUIRE(x.grad().item() == 1.f);
}
