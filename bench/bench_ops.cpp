// Micro-benchmarks of maas ops, with GFLOP/s counters.
// Run: build/bench/maas_bench --benchmark_filter=matmul
#include <benchmark/benchmark.h>

#include "maas/maas.hpp"

namespace {

void BM_matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  maas::Generator gen(0);
  maas::Tensor a = maas::Tensor::randn({n, n}, gen);
  maas::Tensor b = maas::Tensor::randn({n, n}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(maas::matmul(a, b).data());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_matmul)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
