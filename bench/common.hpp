// Shared by the benchmarks: thread control, random inputs, the FMA peak and
// GFLOP/s counters.
#pragma once

#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>

#include "maas/maas.hpp"

namespace bench {

// Sets the OpenMP team size for a benchmark and reports it as a counter.
inline void use_threads(benchmark::State& state, int threads) {
  omp_set_num_threads(threads);
  state.counters["threads"] = threads;
}

// Uniform in [0, 1): like pixel data, never all zeros.
inline maas::Tensor uniform(const maas::Shape& shape, uint64_t seed = 1) {
  maas::Generator gen(seed);
  return maas::Tensor::rand(shape, gen);
}
inline maas::Tensor normal(const maas::Shape& shape, uint64_t seed = 1) {
  maas::Generator gen(seed);
  return maas::Tensor::randn(shape, gen);
}

// Single-core fp32 FMA peak in GFLOP/s, measured once (bench_peak.cpp) by a
// loop of independent vector FMAs.
double peak_gflops_per_core();
// The same for bf16 (a loop of vdpbf16ps); 0 without AVX512_BF16.
double bf16_peak_gflops_per_core();

// Adds GFLOP/s (flops per iteration over real time) and, when the peak is
// known, the fraction of `threads` cores' peak that is.
// bf16: the fraction is of the bf16 peak (bf16_peak_frac).
inline void flops_counters(benchmark::State& state, double flops_per_iter, int threads, bool bf16 = false) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iter, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  if (bf16) {
    const double peak = bf16_peak_gflops_per_core() * threads;
    if (peak > 0)
      state.counters["bf16_peak_frac"] = benchmark::Counter(flops_per_iter / (peak * 1e9),
                                                            benchmark::Counter::kIsIterationInvariantRate);
    return;
  }
  const double peak = peak_gflops_per_core() * threads;
  if (peak > 0) {
    state.counters["peak_frac"] = benchmark::Counter(flops_per_iter / (peak * 1e9),
                                                     benchmark::Counter::kIsIterationInvariantRate);
  }
}

}  // namespace bench
