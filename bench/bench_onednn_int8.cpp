// The int8 anchor: oneDNN's (Debian's libdnnl 2.6) u8 x s8 -> s32 matmul at
// the shapes of BM_int8_gemm, and its int8 convolution at the reference
// CNN's two convolutions (batch 64), on the same OpenMP thread count. The
// weights are reordered to oneDNN's preferred layout once, outside the
// timing, as maas packs its own once. Compiled only when libdnnl and
// dnnl.hpp are found (bench/CMakeLists.txt); linked into maas_bench only.
//   maas_bench --benchmark_filter=onednn_int8
#if defined(MAAS_BENCH_ONEDNN)

#include <dnnl.hpp>

#include <vector>

#include "common.hpp"

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// args: m, n, k, threads.
void BM_onednn_int8_matmul(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  bench::use_threads(state, threads);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  const dnnl::memory::desc a_md({m, k}, dt::u8, tag::ab), b_any({k, n}, dt::s8, tag::any),
      b_md({k, n}, dt::s8, tag::ab), c_md({m, n}, dt::s32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_any, c_md), eng);
  dnnl::memory a(a_md, eng), b_plain(b_md, eng), b(pd.weights_desc(), eng), c(c_md, eng);
  auto* ap = static_cast<uint8_t*>(a.get_data_handle());
  auto* bp = static_cast<int8_t*>(b_plain.get_data_handle());
  for (int64_t i = 0; i < m * k; ++i) ap[i] = static_cast<uint8_t>(i * 7 % 251);
  for (int64_t i = 0; i < k * n; ++i) bp[i] = static_cast<int8_t>(static_cast<int>(i * 13 % 255) - 127);
  dnnl::reorder(b_plain, b).execute(s, b_plain, b);
  const dnnl::matmul mm(pd);
  for (auto _ : state) {
    mm.execute(s, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    s.wait();
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * static_cast<double>(m * n * k),
                                               benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
  state.SetLabel(pd.impl_info_str());
}
BENCHMARK(BM_onednn_int8_matmul)
    ->ArgsProduct({{1024}, {1024}, {1024}, {1, 2}})
    ->ArgsProduct({{43264}, {32}, {9}, {1, 2}})
    ->ArgsProduct({{7744}, {64}, {288}, {1, 2}})
    ->ArgNames({"m", "n", "k", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// args: layer (1: 1->32 on 28x28, 2: 32->64 on 13x13; 3x3, valid), threads;
// batch 64, u8 source, s8 weights, s32 destination, layouts of oneDNN's choice.
void BM_onednn_int8_conv(benchmark::State& state) {
  const int layer = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  bench::use_threads(state, threads);
  const int64_t N = 64, C = layer == 1 ? 1 : 32, O = layer == 1 ? 32 : 64, H = layer == 1 ? 28 : 13, Ho = H - 2;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  const dnnl::memory::desc src_any({N, C, H, H}, dt::u8, tag::any), w_any({O, C, 3, 3}, dt::s8, tag::any),
      dst_any({N, O, Ho, Ho}, dt::s32, tag::any);
  const dnnl::convolution_forward::primitive_desc pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      src_any, w_any, dst_any, {1, 1}, {0, 0}, {0, 0}),
      eng);
  dnnl::memory src(pd.src_desc(), eng), w(pd.weights_desc(), eng), dst(pd.dst_desc(), eng);
  auto* sp = static_cast<uint8_t*>(src.get_data_handle());
  for (size_t i = 0; i < pd.src_desc().get_size(); ++i) sp[i] = static_cast<uint8_t>(i * 7 % 251);
  auto* wp = static_cast<int8_t*>(w.get_data_handle());
  for (size_t i = 0; i < pd.weights_desc().get_size(); ++i) wp[i] = static_cast<int8_t>(static_cast<int>(i * 13 % 255) - 127);
  const dnnl::convolution_forward conv(pd);
  for (auto _ : state) {
    conv.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}});
    s.wait();
  }
  const double ops = 2.0 * N * O * C * 9 * Ho * Ho;
  state.counters["GOP/s"] =
      benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(pd.impl_info_str());
}
BENCHMARK(BM_onednn_int8_conv)
    ->ArgsProduct({{1, 2}, {1, 2}})
    ->ArgNames({"layer", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

#endif  // MAAS_BENCH_ONEDNN
