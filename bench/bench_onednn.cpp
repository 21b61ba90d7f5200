// oneDNN (Debian's libdnnl 2.6), the anchor of maas' bf16 kernels: its
// matmul at n^3 and its convolutions (forward, backward data, backward
// weights) at the reference CNN's shapes, batch 64, in bf16 with f32
// accumulation and f32 results (as maas: f32 dst, diff_src, diff_weights),
// and in f32 for reference. Compiled in only when oneDNN is found (see
// bench/CMakeLists.txt; cmake/install-deps.sh --bench); the library never
// links it.
//   maas_bench --benchmark_filter=onednn
//
// Favourable to oneDNN: its operands are already bf16 and already in the
// blocked layouts its primitives choose (format any), converted once before
// the loop; maas' time includes rounding its fp32 operands to bf16 and
// laying them out. oneDNN runs on libgomp as maas does; its thread count is
// OpenMP's (set per benchmark).
#ifdef MAAS_BENCH_ONEDNN
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include <dnnl.hpp>

#include "common.hpp"

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// A memory of desc md filled with a small normal number (0x3C3C... : about
// 0.0115 in both bf16 and f32), so no subnormal or NaN slows anything.
memory filled(const memory::desc& md) {
  memory m(md, engine());
  std::memset(m.get_data_handle(), 0x3C, md.get_size());
  return m;
}

void BM_onednn_matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  const bool bf16 = state.range(1) != 0;
  const int threads = static_cast<int>(state.range(2));
  bench::use_threads(state, threads);
  const dt in = bf16 ? dt::bf16 : dt::f32;
  const memory::desc a_md({n, n}, in, tag::ab), b_md({n, n}, in, tag::ab), c_md({n, n}, dt::f32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), engine());
  dnnl::matmul prim(pd);
  memory a = filled(a_md), b = filled(b_md), c = filled(c_md);
  dnnl::stream s(engine());
  const std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
  for (auto _ : state) {
    prim.execute(s, args);
    s.wait();
  }
  state.SetLabel(std::string(bf16 ? "bf16 " : "f32 ") + std::to_string(n) + "^3 " + pd.impl_info_str());
  bench::flops_counters(state, 2.0 * n * n * n, threads, bf16);
}
BENCHMARK(BM_onednn_matmul)
    ->ArgsProduct({{1024}, {0, 1}, {1, 2}})
    ->ArgNames({"n", "bf16", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

struct ConvShape {
  const char* name;
  int64_t C, H, W, O, k, pad;
};
// The shapes of bench_conv.cpp's _bf16 benches (same order as its indices 2, 3, 5).
const ConvShape kShapes[] = {
    {"fashion_c1", 1, 28, 28, 32, 3, 0}, {"fashion_c2", 32, 13, 13, 64, 3, 0}, {"cifar_c2", 32, 32, 32, 64, 3, 1}};
constexpr int64_t kBatch = 64;

enum Pass { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

void BM_onednn_conv(benchmark::State& state) {
  const ConvShape& sh = kShapes[state.range(0)];
  const int pass = static_cast<int>(state.range(1));
  const bool bf16 = state.range(2) != 0;
  const int threads = static_cast<int>(state.range(3));
  bench::use_threads(state, threads);
  const int64_t Ho = sh.H + 2 * sh.pad - sh.k + 1, Wo = sh.W + 2 * sh.pad - sh.k + 1;
  const dt in = bf16 ? dt::bf16 : dt::f32;
  const memory::dims strides = {1, 1}, pad = {sh.pad, sh.pad};
  const memory::desc src_md({kBatch, sh.C, sh.H, sh.W}, in, tag::any), wei_md({sh.O, sh.C, sh.k, sh.k}, in, tag::any);
  const memory::desc bias_md({sh.O}, dt::f32, tag::x), dst_md({kBatch, sh.O, Ho, Wo}, dt::f32, tag::any);
  const memory::desc ddst_md({kBatch, sh.O, Ho, Wo}, in, tag::any);
  const memory::desc dsrc_md({kBatch, sh.C, sh.H, sh.W}, dt::f32, tag::any);
  const memory::desc dwei_md({sh.O, sh.C, sh.k, sh.k}, dt::f32, tag::any);
  using namespace dnnl;
  const convolution_forward::primitive_desc fwd_pd(
      convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src_md, wei_md, bias_md,
                                dst_md, strides, pad, pad),
      engine());
  // The backward passes take bf16 diff_dst; the hint is a bf16-output forward.
  const convolution_forward::primitive_desc hint_pd(
      convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src_md, wei_md, bias_md,
                                ddst_md, strides, pad, pad),
      engine());
  stream s(engine());
  primitive prim;
  std::unordered_map<int, memory> args;
  std::string impl;
  if (pass == kForward) {
    prim = convolution_forward(fwd_pd);
    args = {{DNNL_ARG_SRC, filled(fwd_pd.src_desc())},
            {DNNL_ARG_WEIGHTS, filled(fwd_pd.weights_desc())},
            {DNNL_ARG_BIAS, filled(fwd_pd.bias_desc())},
            {DNNL_ARG_DST, filled(fwd_pd.dst_desc())}};
    impl = fwd_pd.impl_info_str();
  } else if (pass == kBackwardData) {
    const convolution_backward_data::primitive_desc pd(
        convolution_backward_data::desc(algorithm::convolution_direct, dsrc_md, wei_md, ddst_md, strides, pad, pad),
        engine(), hint_pd);
    prim = convolution_backward_data(pd);
    args = {{DNNL_ARG_DIFF_DST, filled(pd.diff_dst_desc())},
            {DNNL_ARG_WEIGHTS, filled(pd.weights_desc())},
            {DNNL_ARG_DIFF_SRC, filled(pd.diff_src_desc())}};
    impl = pd.impl_info_str();
  } else {
    const convolution_backward_weights::primitive_desc pd(
        convolution_backward_weights::desc(algorithm::convolution_direct, src_md, dwei_md, bias_md, ddst_md, strides,
                                           pad, pad),
        engine(), hint_pd);
    prim = convolution_backward_weights(pd);
    args = {{DNNL_ARG_SRC, filled(pd.src_desc())},
            {DNNL_ARG_DIFF_DST, filled(pd.diff_dst_desc())},
            {DNNL_ARG_DIFF_WEIGHTS, filled(pd.diff_weights_desc())},
            {DNNL_ARG_DIFF_BIAS, filled(pd.diff_bias_desc())}};
    impl = pd.impl_info_str();
  }
  for (auto _ : state) {
    prim.execute(s, args);
    s.wait();
  }
  state.SetLabel(std::string(sh.name) + (bf16 ? " bf16 " : " f32 ") + impl);
  state.SetItemsProcessed(state.iterations() * kBatch);
  bench::flops_counters(state, 2.0 * kBatch * sh.O * sh.C * sh.k * sh.k * Ho * Wo, threads, bf16);
}
BENCHMARK(BM_onednn_conv)
    ->ArgsProduct({{0, 1, 2}, {kForward, kBackwardData, kBackwardWeights}, {0, 1}, {1, 2}})
    ->ArgNames({"shape", "pass", "bf16", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
#endif
