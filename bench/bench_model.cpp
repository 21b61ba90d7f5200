// Whole-model benchmarks: one training step and inference of the reference
// CNN of shared/ref/torch_cnn.py (Conv 1->32 3x3, ReLU, MaxPool 2, Conv
// 32->64 3x3, ReLU, MaxPool 2, Flatten, Dense 128, ReLU, Dense 10; Adam;
// cross-entropy), on random images in [0,1). items_per_second is img/s.
//   maas_bench --benchmark_filter='train_step|infer'
// The _bf16 variants run the same under Precision::BF16 (GEMMs and
// convolutions on bf16 operands, fp32 accumulation; weights, gradients and
// Adam's state fp32).
#include <chrono>
#include <memory>

#include "common.hpp"

namespace {

using namespace maas;

std::unique_ptr<nn::Sequential> reference_cnn() {
  manual_seed(0);
  auto model = std::make_unique<nn::Sequential>(Shape{1, 28, 28});
  model->add(nn::Conv2D(32, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2));
  model->add(nn::Conv2D(64, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2));
  model->add(nn::Flatten()).add(nn::Dense(128)).add(nn::ReLU()).add(nn::Dense(10));
  return model;
}

Tensor random_labels(int64_t n) {
  Generator gen(2);
  Tensor y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) y.data()[i] = static_cast<float>(gen.engine()() % 10);
  return y;
}

// Forward flops of one image (multiply-add = 2), for the GFLOP/s counters:
// conv1 2*32*9*26*26, conv2 2*64*288*11*11, dense 2*1600*128 + 2*128*10.
constexpr double kForwardFlops = 2.0 * 32 * 9 * 676 + 2.0 * 64 * 288 * 121 + 2.0 * 1600 * 128 + 2.0 * 128 * 10;
// Training: forward, backward to weights (same again), backward to data
// (same again, except conv1 whose input needs no gradient).
constexpr double kTrainFlops = 3 * kForwardFlops - 2.0 * 32 * 9 * 676;

// args: batch, threads
void BM_train_step(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  bench::use_threads(state, threads);
  auto model = reference_cnn();
  optim::Adam adam(model->parameters());
  CrossEntropyLoss loss_fn;
  const Tensor x = bench::uniform({batch, 1, 28, 28});
  const Tensor y = random_labels(batch);
  auto step = [&] {
    adam.zero_grad();
    Tensor loss = loss_fn((*model)(x), y);
    loss.backward();
    adam.step();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: optimizer state, allocator
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
  bench::flops_counters(state, kTrainFlops * static_cast<double>(batch), threads);
}
BENCHMARK(BM_train_step)
    ->ArgsProduct({{64, 256}, {1, 2}})
    ->ArgNames({"batch", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The phases of one step at batch 64, in ms per step (counters), to see where
// the time goes: forward, loss, backward, optimizer (zero_grad + step).
void BM_train_phases(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  bench::use_threads(state, threads);
  const int64_t batch = 64;
  auto model = reference_cnn();
  optim::Adam adam(model->parameters());
  CrossEntropyLoss loss_fn;
  const Tensor x = bench::uniform({batch, 1, 28, 28});
  const Tensor y = random_labels(batch);
  using Clock = std::chrono::steady_clock;
  double t_fwd = 0, t_loss = 0, t_bwd = 0, t_opt = 0;
  auto ms = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  for (auto _ : state) {
    const auto t0 = Clock::now();
    adam.zero_grad();
    const auto t1 = Clock::now();
    Tensor out = (*model)(x);
    const auto t2 = Clock::now();
    Tensor loss = loss_fn(out, y);
    const auto t3 = Clock::now();
    loss.backward();
    const auto t4 = Clock::now();
    adam.step();
    const auto t5 = Clock::now();
    t_opt += ms(t0, t1) + ms(t4, t5);
    t_fwd += ms(t1, t2);
    t_loss += ms(t2, t3);
    t_bwd += ms(t3, t4);
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["fwd_ms"] = t_fwd / n;
  state.counters["loss_ms"] = t_loss / n;
  state.counters["bwd_ms"] = t_bwd / n;
  state.counters["opt_ms"] = t_opt / n;
}
BENCHMARK(BM_train_phases)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();

// Forward time of each layer of the model at batch 64, training mode (graph
// recorded), in ms (counters named by layer index and type).
void BM_train_layers(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  bench::use_threads(state, threads);
  auto model = reference_cnn();
  const Tensor x = bench::uniform({64, 1, 28, 28});
  using Clock = std::chrono::steady_clock;
  std::vector<double> t(model->size(), 0.0);
  for (auto _ : state) {
    Tensor h = x;
    for (size_t i = 0; i < model->size(); ++i) {
      const auto t0 = Clock::now();
      h = (*model)[i](h);
      t[i] += std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    }
    benchmark::DoNotOptimize(h.data());
  }
  for (size_t i = 0; i < model->size(); ++i)
    state.counters[std::to_string(i) + "_" + (*model)[i].type_name()] = t[i] / static_cast<double>(state.iterations());
}
BENCHMARK(BM_train_layers)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();

// Inference (no graph, eval mode). args: batch, threads. Batch 1000 is what
// the issue compares (PyTorch evaluates in batches of 1000), batch 64 the
// same images in cache-sized pieces, batch 1 the latency of one image.
void BM_infer(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  bench::use_threads(state, threads);
  auto model = reference_cnn();
  model->eval();
  NoGradGuard no_grad;
  const Tensor x = bench::uniform({batch, 1, 28, 28});
  for (int i = 0; i < 2; ++i) benchmark::DoNotOptimize((*model)(x).data());
  for (auto _ : state) benchmark::DoNotOptimize((*model)(x).data());
  state.SetItemsProcessed(state.iterations() * batch);
  bench::flops_counters(state, kForwardFlops * static_cast<double>(batch), threads);
}
BENCHMARK(BM_infer)
    ->ArgsProduct({{1000, 64, 1}, {1, 2}})
    ->ArgNames({"batch", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The same benchmarks under Precision::BF16.
template <void (*Fn)(benchmark::State&)>
void under_bf16(benchmark::State& state) {
  set_matmul_precision(Precision::BF16);
  Fn(state);
  set_matmul_precision(Precision::FP32);
}
void BM_train_step_bf16(benchmark::State& state) { under_bf16<BM_train_step>(state); }
void BM_train_phases_bf16(benchmark::State& state) { under_bf16<BM_train_phases>(state); }
void BM_infer_bf16(benchmark::State& state) { under_bf16<BM_infer>(state); }
BENCHMARK(BM_train_step_bf16)
    ->ArgsProduct({{64}, {1, 2}})
    ->ArgNames({"batch", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_train_phases_bf16)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_infer_bf16)
    ->ArgsProduct({{1000, 1}, {1, 2}})
    ->ArgNames({"batch", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
