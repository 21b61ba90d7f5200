// tiny_mlp: a two-layer perceptron learns to classify points inside and outside
// a circle, written with maas' tensors and autograd only. It prints the loss
// as it trains and the final accuracy on held-out points.
// With --distributed under mpirun, each rank computes the gradient on its
// rows of the training set, and average_gradients makes it the whole set's.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common.hpp"

using namespace maas;

namespace {

// n points uniform in [-1,1]^2; label 1 inside the circle of radius 0.7.
void make_data(int64_t n, Generator& gen, Tensor& x, Tensor& y) {
  x = Tensor::rand({n, 2}, gen, -1.f, 1.f);
  y = Tensor::zeros({n, 1});
  for (int64_t i = 0; i < n; ++i) {
    const float a = x.at({i, 0}), b = x.at({i, 1});
    y.at({i, 0}) = a * a + b * b < 0.49f ? 1.f : 0.f;
  }
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("tiny_mlp", [&]() -> int {
    const bool distributed = examples::parse_distributed_only(argc, argv, 1, " [EPOCHS]");
    int64_t epochs = 300;
    for (int i = 1; i < argc; ++i) {
      if (std::string(argv[i]) == "--distributed") continue;
      if (!examples::parse_integer(argv[i], 1, examples::kMaxEpochs, epochs)) {
        std::fprintf(stderr, "usage: %s [EPOCHS] [--distributed]  (EPOCHS %s, default 300)\n", argv[0],
                     examples::integer_kind(1, examples::kMaxEpochs).c_str());
        return examples::kExitUsage;
      }
    }
    Generator gen(42);
    Tensor x_train, y_train, x_test, y_test;
    make_data(1024, gen, x_train, y_train);
    make_data(512, gen, x_test, y_test);
    // --distributed: this rank's rows r, r + size, ... (maas::shard_size of them).
    Communicator* comm = distributed ? default_communicator() : nullptr;
    float share = 1.f;
    if (comm != nullptr) {
      const int64_t n = x_train.size(0), rows = shard_size(n, comm->rank(), comm->size());
      Tensor xs = Tensor::empty({rows, 2}), ys = Tensor::empty({rows, 1});
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t row = i * comm->size() + comm->rank();
        xs.at({i, 0}) = x_train.at({row, 0});
        xs.at({i, 1}) = x_train.at({row, 1});
        ys.at({i, 0}) = y_train.at({row, 0});
      }
      x_train = xs;
      y_train = ys;
      share = static_cast<float>(rows) / static_cast<float>(n);
    }

    const int64_t hidden = 32;
    Tensor w1 = (Tensor::randn({2, hidden}, gen) * 0.7f).detach().requires_grad_();
    Tensor b1 = Tensor::zeros({hidden}).requires_grad_();
    Tensor w2 = (Tensor::randn({hidden, 1}, gen) * 0.25f).detach().requires_grad_();
    Tensor b2 = Tensor::zeros({1}).requires_grad_();
    std::vector<Tensor> params{w1, b1, w2, b2};
    auto forward = [&](const Tensor& x) { return sigmoid(matmul(relu(matmul(x, w1) + b1), w2) + b2); };

    const float lr = 0.5f;
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      Tensor p = forward(x_train);
      // Binary cross-entropy, clamped away from log(0).
      Tensor loss = -mean(y_train * log(p + 1e-6f) + (1.f - y_train) * log(1.f - p + 1e-6f));
      for (Tensor& t : params) t.zero_grad();
      loss.backward();
      if (comm != nullptr) average_gradients(*comm, params, share);  // the whole training set's mean gradient
      NoGradGuard no_grad;
      for (Tensor& t : params) {
        float* w = t.data();
        const float* g = t.grad().data();
        for (int64_t i = 0; i < t.numel(); ++i) w[i] -= lr * g[i];
      }
      if (epoch % 50 == 0 || epoch == 1)
        std::printf("epoch %4lld  loss %.4f\n", static_cast<long long>(epoch), loss.item());
    }

    NoGradGuard no_grad;
    Tensor p = forward(x_test);
    int64_t correct = 0;
    for (int64_t i = 0; i < p.size(0); ++i) correct += (p.at({i, 0}) > 0.5f) == (y_test.at({i, 0}) > 0.5f);
    std::printf("test accuracy: %.2f%% (%lld/%lld)\n", 100.0 * correct / p.size(0),
                static_cast<long long>(correct), static_cast<long long>(p.size(0)));
    return examples::kExitOk;
  });
}
