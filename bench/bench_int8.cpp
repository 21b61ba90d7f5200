// int8 inference: the VNNI peak, maas' int8 GEMM (GOP/s, fraction of that
// peak) at 1024^3 and at the reference CNN's convolutions as GEMMs, the
// quantized layers against fp32 ones, and the reference CNN int8 vs fp32
// (batch 1000 and one image). oneDNN's int8 side is bench_onednn_int8.cpp.
//   maas_bench --benchmark_filter='int8|infer_cnn'
#include <immintrin.h>

#include <time.h>

#include <chrono>
#include <memory>
#include <vector>

#include "common.hpp"
#include "maas/quantize.hpp"
#include "ops/cpu.hpp"
#include "ops/lowp/int8_gemm.hpp"

namespace {

using namespace maas;

// 2 * 64 * accumulators * iters ops (one vpdpbusd: 16 lanes x 4 multiply-adds).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t vnni_loop(int64_t iters) {
  constexpr int kAcc = 12;
  __m512i acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-1);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  __m512i s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_epi32(s, acc[i]);
  alignas(64) int32_t t[16];
  _mm512_store_si512(t, s);
  return t[0];
}

// Single-core VNNI peak in GOP/s (multiply and add counted apart), measured
// once. vnni_frac divides by it; with wall-time rates on a loaded machine it
// understates the kernels' share, so RESULTS.md works from CPU times.
double vnni_peak_gops() {
  static const double peak = [] {
    if (!detail::cpu_features().avx512_vnni) return 0.0;
    // Thread CPU time, not wall time: on a shared machine the loop is
    // descheduled for whole time slices, which would understate the peak.
    auto cpu_seconds = [] {
      timespec ts;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    };
    const int64_t iters = 20'000'000;
    double best = 1e30;
    for (int r = 0; r < 3; ++r) {
      const double t0 = cpu_seconds();
      benchmark::DoNotOptimize(vnni_loop(iters));
      best = std::min(best, cpu_seconds() - t0);
    }
    return 2.0 * 64 * 12 * static_cast<double>(iters) / best / 1e9;
  }();
  return peak;
}

void int8_counters(benchmark::State& state, double ops_per_iter, int threads) {
  state.counters["GOP/s"] =
      benchmark::Counter(ops_per_iter, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  const double peak = vnni_peak_gops() * threads;
  if (peak > 0)
    state.counters["vnni_frac"] =
        benchmark::Counter(ops_per_iter / (peak * 1e9), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_int8_vnni_peak(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(vnni_peak_gops());
  state.counters["GOP/s_per_core"] = vnni_peak_gops();
  state.SetLabel(detail::int8_kernel_description());
}
BENCHMARK(BM_int8_vnni_peak)->Iterations(1);

// args: m, n, k, threads. C [m x n] (int32) = A (u8) B (s8), B packed once.
void BM_int8_gemm(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  bench::use_threads(state, threads);
  const int64_t lda = detail::int8_round_up(k, 4);
  std::vector<uint8_t> a(static_cast<size_t>(m * lda));
  std::vector<int8_t> b(static_cast<size_t>(k * n));
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i * 7 % 251);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int8_t>(static_cast<int>(i * 13 % 255) - 127);
  const detail::Int8PackedB packed = detail::int8_pack_b(b.data(), k, n, n, 1);
  std::vector<int32_t> c(static_cast<size_t>(m * n));
  for (auto _ : state) {
    detail::int8_gemm(m, a.data(), lda, packed, c.data(), n, threads);
    benchmark::ClobberMemory();
  }
  int8_counters(state, 2.0 * static_cast<double>(m * n * k), threads);
  state.SetLabel(detail::int8_kernel_description());
}
// 1024^3; the reference CNN's conv1 and conv2 at batch 64 as GEMMs
// (positions x filters x C*kh*kw): 64*26*26 x 32 x 9 and 64*11*11 x 64 x 288.
BENCHMARK(BM_int8_gemm)
    ->ArgsProduct({{1024}, {1024}, {1024}, {1, 2}})
    ->ArgsProduct({{43264}, {32}, {9}, {1, 2}})
    ->ArgsProduct({{7744}, {64}, {288}, {1, 2}})
    ->ArgNames({"m", "n", "k", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The reference CNN (bench_model.cpp's), trained weights stood in for by
// its initial ones, quantized on 256 random images.
std::unique_ptr<nn::Sequential> reference_cnn() {
  manual_seed(0);
  auto model = std::make_unique<nn::Sequential>(Shape{1, 28, 28});
  model->add(nn::Conv2D(32, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2));
  model->add(nn::Conv2D(64, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2));
  model->add(nn::Flatten()).add(nn::Dense(128)).add(nn::ReLU()).add(nn::Dense(10));
  model->eval();
  return model;
}

std::unique_ptr<nn::Sequential> quantized_cnn(nn::Sequential& fp32) {
  QuantizeOptions o;
  o.quiet = true;
  return quantize(fp32, bench::uniform({256, 1, 28, 28}, 3), o);
}

// args: batch, int8 (0 fp32, 1 int8), threads. Inference (no grad, eval) in img/s.
void BM_infer_cnn_int8(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const bool int8 = state.range(1) != 0;
  const int threads = static_cast<int>(state.range(2));
  bench::use_threads(state, threads);
  auto fp32 = reference_cnn();
  std::unique_ptr<nn::Sequential> q = int8 ? quantized_cnn(*fp32) : nullptr;
  nn::Sequential& model = int8 ? *q : *fp32;
  const Tensor x = bench::uniform({batch, 1, 28, 28});
  const NoGradGuard no_grad;
  for (int i = 0; i < 2; ++i) benchmark::DoNotOptimize(model(x));
  for (auto _ : state) benchmark::DoNotOptimize(model(x));
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(int8 ? "int8" : "fp32");
}
BENCHMARK(BM_infer_cnn_int8)
    ->ArgsProduct({{1000}, {0, 1}, {1, 2}})
    ->ArgsProduct({{1}, {0, 1}, {1, 2}})
    ->ArgNames({"batch", "int8", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// args: layer (1 conv1, 2 conv2), int8, threads; batch 64. One layer's forward.
void BM_conv_layer_int8(benchmark::State& state) {
  const int layer = static_cast<int>(state.range(0));
  const bool int8 = state.range(1) != 0;
  const int threads = static_cast<int>(state.range(2));
  bench::use_threads(state, threads);
  auto fp32 = reference_cnn();
  std::unique_ptr<nn::Sequential> q = int8 ? quantized_cnn(*fp32) : nullptr;
  // conv1 is layer 0 in both; conv2 is layer 3 in fp32, 2 in int8 (the ReLU fused).
  nn::Module& m = int8 ? (*q)[layer == 1 ? 0 : 2] : (*fp32)[layer == 1 ? 0 : 3];
  const Tensor x = layer == 1 ? bench::uniform({64, 1, 28, 28}) : bench::uniform({64, 32, 13, 13});
  const NoGradGuard no_grad;
  for (int i = 0; i < 2; ++i) benchmark::DoNotOptimize(m(x));
  for (auto _ : state) benchmark::DoNotOptimize(m(x));
  const double ops = layer == 1 ? 2.0 * 64 * 32 * 9 * 676 : 2.0 * 64 * 64 * 288 * 121;
  if (int8)
    int8_counters(state, ops, threads);
  else
    bench::flops_counters(state, ops, threads);
  state.SetLabel(int8 ? "int8" : "fp32");
}
BENCHMARK(BM_conv_layer_int8)
    ->ArgsProduct({{1, 2}, {0, 1}, {1, 2}})
    ->ArgNames({"layer", "int8", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
