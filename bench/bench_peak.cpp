// The machine's fp32 FMA peak: a loop of independent vector FMAs with enough
// accumulators to cover the FMA latency. The other benchmarks report their
// GFLOP/s as a fraction of this (peak_frac). The bf16 peak likewise, a loop
// of independent vdpbf16ps (64 flops each: 16 lanes x 2 products x 2), where
// the CPU has AVX512_BF16; the bf16 benchmarks report bf16_peak_frac.
#include <immintrin.h>

#include <algorithm>
#include <chrono>

#include "common.hpp"
#include "ops/cpu.hpp"

namespace {

// 2 * lanes * accumulators * iters flops; returns a value so nothing is dropped.
float fma_loop(int64_t iters) {
#if defined(__AVX512F__)
  using V = __m512;
  constexpr int kLanes = 16;
  auto set1 = [](float v) { return _mm512_set1_ps(v); };
  auto fma = [](V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); };
  auto add = [](V a, V b) { return _mm512_add_ps(a, b); };
  auto reduce = [](V a) {  // not _mm512_reduce_add_ps: GCC 12 warns inside it
    alignas(64) float t[16];
    _mm512_store_ps(t, a);
    float s = 0;
    for (float v : t) s += v;
    return s;
  };
#elif defined(__AVX2__) && defined(__FMA__)
  using V = __m256;
  constexpr int kLanes = 8;
  auto set1 = [](float v) { return _mm256_set1_ps(v); };
  auto fma = [](V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); };
  auto add = [](V a, V b) { return _mm256_add_ps(a, b); };
  auto reduce = [](V a) {
    alignas(32) float t[8];
    _mm256_store_ps(t, a);
    float s = 0;
    for (float v : t) s += v;
    return s;
  };
#else
#define MAAS_BENCH_SCALAR_PEAK 1
#endif
#ifndef MAAS_BENCH_SCALAR_PEAK
  (void)kLanes;
  constexpr int kAcc = 12;  // > latency x pipes (4 x 2 on current x86 cores)
  V acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = set1(0.001f * static_cast<float>(i));
  const V a = set1(0.999999f), b = set1(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = fma(acc[i], a, b);
  V s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = add(s, acc[i]);
  return reduce(s);
#else
  float acc[8] = {};
  for (int64_t it = 0; it < iters; ++it)
    for (float& v : acc) v = v * 0.999999f + 1e-7f;
  float s = 0;
  for (float v : acc) s += v;
  return s;
#endif
}

constexpr double flops_per_iter() {
#if defined(__AVX512F__)
  return 2.0 * 16 * 12;
#elif defined(__AVX2__) && defined(__FMA__)
  return 2.0 * 8 * 12;
#else
  return 2.0 * 8;
#endif
}

#if defined(__x86_64__)
// 64 * accumulators * iters flops.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) float dpbf16_loop(int64_t iters) {
  constexpr int kAcc = 12;
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3F7F3F7F), b = (__m512bh)_mm512_set1_epi32(0x33D633D6);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float t[16];
  _mm512_store_ps(t, s);
  float r = 0;
  for (float v : t) r += v;
  return r;
}
constexpr double kBf16FlopsPerIter = 64.0 * 12;
#endif

bool have_bf16() {
#if defined(__x86_64__)
  return maas::detail::cpu_features().avx512_bf16;
#else
  return false;
#endif
}

void BM_bf16_peak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  bench::use_threads(state, threads);
  if (!have_bf16()) {
    state.SkipWithError("no AVX512_BF16 on this CPU (or MAAS_ISA caps it)");
    return;
  }
#if defined(__x86_64__)
  constexpr int64_t kIters = 1 << 20;
  for (auto _ : state) {
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += dpbf16_loop(kIters);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(kBf16FlopsPerIter * kIters * threads,
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
#endif
}
BENCHMARK(BM_bf16_peak)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_fma_peak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  bench::use_threads(state, threads);
  constexpr int64_t kIters = 1 << 20;
  for (auto _ : state) {
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += fma_loop(kIters);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iter() * kIters * threads,
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_fma_peak)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

namespace bench {

double peak_gflops_per_core() {
  static const double peak = [] {
    // Best of several 20 ms runs: the machine may be busy; the best is the
    // closest to the core's own rate.
    constexpr int64_t kIters = 1 << 18;
    double best = 0;
    for (int r = 0; r < 15; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(fma_loop(kIters));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, flops_per_iter() * kIters / s / 1e9);
    }
    return best;
  }();
  return peak;
}

double bf16_peak_gflops_per_core() {
  static const double peak = [] {
    double best = 0;
#if defined(__x86_64__)
    if (!have_bf16()) return 0.0;
    constexpr int64_t kIters = 1 << 18;
    for (int r = 0; r < 15; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(dpbf16_loop(kIters));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, kBf16FlopsPerIter * kIters / s / 1e9);
    }
#endif
    return best;
  }();
  return peak;
}

}  // namespace bench
