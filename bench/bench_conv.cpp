// conv2d forward, backward to the input (bwd_data) and backward to the
// weights and bias (bwd_weights), at batch 64, one pass per iteration.
// GFLOP/s counts 2*N*O*C*kh*kw*Ho*Wo per pass (what the GEMM formulation
// does; padding taps included); peak_frac is that over the FMA peak of the
// threads used (bench_peak.cpp).
//   maas_bench --benchmark_filter=conv2d
// The _bf16 benches run the same passes under Precision::BF16 (operands
// rounded to bf16 as they are packed, fp32 accumulation) at the reference
// CNN's shapes and the CIFAR one; bf16_peak_frac is over the vdpbf16ps peak.
// bench_onednn.cpp runs oneDNN's convolutions on the same shapes.
// The backward benches call backward(dout, retain_graph) on one recorded
// forward: each iteration also copies dout once (the engine clones the
// upstream gradient) and adds into the kept gradient buffers, which is a
// visible part of the time for the first-layer shapes (C = 1 or 3), where
// little arithmetic meets a large dout.
#include <vector>

#include "common.hpp"

namespace {

using namespace maas;

struct ConvShape {
  const char* name;
  int64_t C, H, W, O, k, pad;
};

// LeNet-5 (32x32 input), the reference Fashion-MNIST CNN, a CIFAR-10 stem.
const std::vector<ConvShape>& shapes() {
  static const std::vector<ConvShape> s = {
      {"lenet_c1", 1, 32, 32, 6, 5, 0},    {"lenet_c3", 6, 14, 14, 16, 5, 0},
      {"fashion_c1", 1, 28, 28, 32, 3, 0}, {"fashion_c2", 32, 13, 13, 64, 3, 0},
      {"cifar_c1", 3, 32, 32, 32, 3, 1},   {"cifar_c2", 32, 32, 32, 64, 3, 1},
  };
  return s;
}

constexpr int64_t kBatch = 64;

double pass_flops(const ConvShape& s) {
  const int64_t ho = s.H + 2 * s.pad - s.k + 1, wo = s.W + 2 * s.pad - s.k + 1;
  return 2.0 * kBatch * s.O * s.C * s.k * s.k * ho * wo;
}

Conv2dOptions options(const ConvShape& s) {
  Conv2dOptions o;
  o.padding = {s.pad, s.pad};
  return o;
}

enum class Pass { Forward, BackwardData, BackwardWeights };

void run(benchmark::State& state, Pass pass, Precision precision = Precision::FP32) {
  const ConvShape& s = shapes()[static_cast<size_t>(state.range(0))];
  const int threads = static_cast<int>(state.range(1));
  bench::use_threads(state, threads);
  state.SetLabel(s.name);
  Tensor x = bench::uniform({kBatch, s.C, s.H, s.W}, 1);
  Tensor w = bench::normal({s.O, s.C, s.k, s.k}, 2);
  Tensor b = bench::normal({s.O}, 3);
  if (pass == Pass::BackwardData) x.requires_grad_();
  if (pass == Pass::BackwardWeights) {
    w.requires_grad_();
    b.requires_grad_();
  }
  const Conv2dOptions o = options(s);
  set_matmul_precision(precision);
  if (pass == Pass::Forward) {
    for (auto _ : state) benchmark::DoNotOptimize(conv2d(x, w, b, o).data());
  } else {
    Tensor y = conv2d(x, w, b, o);
    const Tensor dout = bench::normal(y.shape(), 4);
    y.backward(dout, true);  // warm-up: gradient buffers exist from here on
    for (auto _ : state) y.backward(dout, true);
  }
  set_matmul_precision(Precision::FP32);
  state.SetItemsProcessed(state.iterations() * kBatch);
  bench::flops_counters(state, pass_flops(s), threads, precision == Precision::BF16);
}

void BM_conv2d_fwd(benchmark::State& state) { run(state, Pass::Forward); }
void BM_conv2d_bwd_data(benchmark::State& state) { run(state, Pass::BackwardData); }
void BM_conv2d_bwd_weights(benchmark::State& state) { run(state, Pass::BackwardWeights); }
void BM_conv2d_fwd_bf16(benchmark::State& state) { run(state, Pass::Forward, Precision::BF16); }
void BM_conv2d_bwd_data_bf16(benchmark::State& state) { run(state, Pass::BackwardData, Precision::BF16); }
void BM_conv2d_bwd_weights_bf16(benchmark::State& state) { run(state, Pass::BackwardWeights, Precision::BF16); }

#define MAAS_CONV_BENCH(fn)                 \
  BENCHMARK(fn)                             \
      ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {1, 2}}) \
      ->ArgNames({"shape", "threads"})      \
      ->Unit(benchmark::kMicrosecond)       \
      ->UseRealTime()
MAAS_CONV_BENCH(BM_conv2d_fwd);
MAAS_CONV_BENCH(BM_conv2d_bwd_data);
MAAS_CONV_BENCH(BM_conv2d_bwd_weights);
#undef MAAS_CONV_BENCH
#define MAAS_CONV_BENCH_BF16(fn)                     \
  BENCHMARK(fn)                                      \
      ->ArgsProduct({{2, 3, 5}, {1, 2}})             \
      ->ArgNames({"shape", "threads"})               \
      ->Unit(benchmark::kMicrosecond)                \
      ->UseRealTime()
MAAS_CONV_BENCH_BF16(BM_conv2d_fwd_bf16);
MAAS_CONV_BENCH_BF16(BM_conv2d_bwd_data_bf16);
MAAS_CONV_BENCH_BF16(BM_conv2d_bwd_weights_bf16);
#undef MAAS_CONV_BENCH_BF16

}  // namespace
