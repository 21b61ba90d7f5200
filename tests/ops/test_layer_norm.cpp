#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"
#include "ops/transformer_reference.hpp"

using namespace maas;
using maas::test::fill;
using maas::test::require_close;

TEST_CASE("layer_norm matches PyTorch in value and gradient", "[layer_norm]") {
  Tensor x = fill({2, 3, 5}, 0.37, 0.1).requires_grad_();
  Tensor g = fill({5}, 0.9, 0.3).requires_grad_();
  Tensor b = fill({5}, 0.5, 1.1).requires_grad_();
  Tensor y = layer_norm(x, g, b, 1e-5f);
  require_close(y, test::kLnOut, 1e-5f);
  sum(y * fill({2, 3, 5}, 0.23, 0.7)).backward();
  require_close(x.grad(), test::kLnDx, 1e-4f);
  require_close(g.grad(), test::kLnDg, 1e-5f);
  require_close(b.grad(), test::kLnDb, 1e-5f);
}

TEST_CASE("layer_norm passes the finite-difference check, with and without gamma and beta", "[layer_norm]") {
  Generator gen(3);
  test::check_gradients([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2], 1e-3f); },
                        {Tensor::randn({3, 2, 7}, gen), Tensor::randn({7}, gen), Tensor::randn({7}, gen)});
  test::check_gradients([](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-3f); },
                        {Tensor::randn({4, 6}, gen)});
}

TEST_CASE("layer_norm gives the same bits for any thread count", "[layer_norm]") {
  Generator gen(5);
  const Tensor x0 = Tensor::randn({300, 64}, gen), g0 = Tensor::randn({64}, gen), r = Tensor::randn({300, 64}, gen);
  test::require_thread_invariant([&] {
    Tensor x = x0.clone().requires_grad_(), g = g0.clone().requires_grad_();
    Tensor y = layer_norm(x, g, Tensor());
    sum(y * r).backward();
    std::vector<float> all = y.to_vector();
    for (const Tensor& t : {x.grad(), g.grad()})
      for (float v : t.to_vector()) all.push_back(v);
    return all;
  });
}

TEST_CASE("layer_norm names bad shapes", "[layer_norm]") {
  const Tensor x = Tensor::zeros({2, 4});
  REQUIRE_THROWS_WITH(layer_norm(x, Tensor::ones({3}), Tensor()), Catch::Contains("gamma [3]") &&
                                                                        Catch::Contains("[2,4]"));
  REQUIRE_THROWS_WITH(layer_norm(Tensor::zeros({2, 0}), Tensor(), Tensor()), Catch::Contains("empty last axis"));
}
