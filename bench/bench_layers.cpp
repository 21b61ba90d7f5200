// The memory-bound ops of the reference CNN: max-pool, ReLU and the fused
// softmax + cross-entropy loss, forward and backward, at the shapes one
// training step at batch 64 runs them; and ResNet-20's BatchNorm. Bytes/s counts each input read and
// output written once (the least traffic the op needs).
//   maas_bench --benchmark_filter='max_pool|relu|cross_entropy|batch_norm'
#include <vector>

#include "common.hpp"

namespace {

using namespace maas;

const std::vector<Shape>& pool_shapes() {
  static const std::vector<Shape> s = {{64, 32, 26, 26}, {64, 64, 11, 11}};
  return s;
}

// args: shape index, threads, backward (0/1)
void BM_max_pool2d(benchmark::State& state) {
  const Shape& shape = pool_shapes()[static_cast<size_t>(state.range(0))];
  const int threads = static_cast<int>(state.range(1));
  const bool backward = state.range(2) != 0;
  bench::use_threads(state, threads);
  state.SetLabel(to_string(shape) + (backward ? " backward" : " forward"));
  Tensor x = bench::normal(shape, 1).requires_grad_();
  const double in = static_cast<double>(x.numel()) * 4, out = in / 4;
  if (!backward) {
    for (auto _ : state) benchmark::DoNotOptimize(max_pool2d(x).data());
    // x read; y and the argmax index (int32) written.
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (in + 2 * out)));
  } else {
    Tensor y = max_pool2d(x);
    const Tensor dout = bench::normal(y.shape(), 2);
    y.backward(dout, true);
    for (auto _ : state) y.backward(dout, true);
    // dout and the index read, dx updated.
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (2 * out + 2 * in)));
  }
}
BENCHMARK(BM_max_pool2d)
    ->ArgsProduct({{0, 1}, {1, 2}, {0, 1}})
    ->ArgNames({"shape", "threads", "bwd"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_relu(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const bool backward = state.range(1) != 0;
  bench::use_threads(state, threads);
  Tensor x = bench::normal({64, 32, 26, 26}, 1).requires_grad_();
  const double bytes = static_cast<double>(x.numel()) * 4;
  if (!backward) {
    for (auto _ : state) benchmark::DoNotOptimize(relu(x).data());
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * bytes));
  } else {
    Tensor y = relu(x);
    const Tensor dout = bench::normal(y.shape(), 2);
    y.backward(dout, true);
    for (auto _ : state) y.backward(dout, true);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 4 * bytes));  // x, dout, dx read+write
  }
}
BENCHMARK(BM_relu)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->ArgNames({"threads", "bwd"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// BatchNorm in training mode at ResNet-20's first stage on Fashion-MNIST
// (batch 128, 16 channels of 28x28): forward (batch statistics, xhat and y
// written), or backward (dx, dgamma, dbeta).
void BM_batch_norm(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const bool backward = state.range(1) != 0;
  bench::use_threads(state, threads);
  Tensor x = bench::normal({128, 16, 28, 28}, 1).requires_grad_();
  Tensor gamma = Tensor::ones({16}).requires_grad_(), beta = Tensor::zeros({16}).requires_grad_();
  Tensor mean = Tensor::zeros({16}), var = Tensor::ones({16});
  const double bytes = static_cast<double>(x.numel()) * 4;
  if (!backward) {
    for (auto _ : state) benchmark::DoNotOptimize(batch_norm(x, gamma, beta, mean, var, true, 0.1f, 1e-3f).data());
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 4 * bytes));  // x twice, xhat, y
  } else {
    Tensor y = batch_norm(x, gamma, beta, mean, var, true, 0.1f, 1e-3f);
    const Tensor dout = bench::normal(y.shape(), 2);
    y.backward(dout, true);
    for (auto _ : state) y.backward(dout, true);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 5 * bytes));  // dout, xhat twice, dx
  }
}
BENCHMARK(BM_batch_norm)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->ArgNames({"threads", "bwd"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Softmax + cross-entropy over [N,10] logits: forward, then forward + backward.
void BM_cross_entropy(benchmark::State& state) {
  const int64_t n = state.range(0);
  const bool backward = state.range(1) != 0;
  bench::use_threads(state, 1);
  Tensor logits = bench::normal({n, 10}, 1).requires_grad_();
  Tensor labels = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) labels.data()[i] = static_cast<float>(i % 10);
  for (auto _ : state) {
    Tensor loss = cross_entropy(logits, labels);
    if (backward) loss.backward();
    benchmark::DoNotOptimize(loss.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_cross_entropy)
    ->ArgsProduct({{64, 1000}, {0, 1}})
    ->ArgNames({"batch", "bwd"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
