// load_model's cost against the number of layers: it must grow linearly
// (the time per layer stays flat as the model grows), not quadratically.
//   build/bench/maas_bench --benchmark_filter=load_model --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include <unistd.h>

#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"

namespace {

// A file of `layers` layers: Dense(4) and ReLU in turn, on 4 features.
std::string model_file(int64_t layers) {
  const std::string path = "/tmp/maas_bench_load_" + std::to_string(::getpid()) + "_" + std::to_string(layers) + ".h5";
  maas::nn::Sequential model({4});
  for (int64_t i = 0; i < layers; ++i) {
    if (i % 2 == 0) model.add(maas::nn::Dense(4));
    else model.add(maas::nn::ReLU());
  }
  maas::save_model(model, path);
  return path;
}

void BM_load_model(benchmark::State& state) {
  const int64_t layers = state.range(0);
  const std::string path = model_file(layers);
  for (auto _ : state) benchmark::DoNotOptimize(maas::load_model(path));
  std::remove(path.c_str());
  state.counters["layers_per_s"] =
      benchmark::Counter(static_cast<double>(layers), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_load_model)->Arg(2500)->Arg(5000)->Arg(10000)->Arg(20000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Building the same model in memory (Sequential::add, names, shapes).
void BM_build_sequential(benchmark::State& state) {
  const int64_t layers = state.range(0);
  for (auto _ : state) {
    maas::nn::Sequential model({4});
    for (int64_t i = 0; i < layers; ++i) model.add(maas::nn::ReLU());
    benchmark::DoNotOptimize(model.size());
  }
  state.counters["layers_per_s"] =
      benchmark::Counter(static_cast<double>(layers), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_build_sequential)->Arg(5000)->Arg(10000)->Arg(20000)->Arg(40000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
