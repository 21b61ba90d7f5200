// GEMM: maas' kernel (src/ops/gemm.hpp, what matmul and conv2d run on) and,
// when found at configure time, OpenBLAS' cblas_sgemm on the same sizes and
// thread counts. Square sizes 256..2048 and the shapes the reference CNN
// multiplies at batch 64 (conv2 as one batched GEMM; dense layers).
//   maas_bench --benchmark_filter=sgemm
// bf16_gemm: maas' bf16 kernel (src/ops/lowp/bf16_gemm.hpp) on the same fp32
// operands, rounded to bf16 as they are packed (that is part of the time);
// bf16_peak_frac is over the vdpbf16ps peak (bench_peak.cpp). oneDNN's
// matmul is the anchor (bench_onednn.cpp).
// OpenBLAS picks its kernel from the CPU; OPENBLAS_CORETYPE=SkylakeX forces
// its AVX-512 kernel where its CPU table does not know the processor.
// Eigen's matrix product (when Eigen is found) is compared at 1024^3 and the
// conv shapes, on 1 thread: built with -DMAAS_NATIVE=OFF, this weighs
// maas' portable micro-kernel against Eigen's at the same SSE2 flags (see
// RESULTS.md, "The portable GEMM path and Eigen").
#include <string>
#include <vector>

#include "common.hpp"
#include "ops/gemm.hpp"
#include "ops/lowp/bf16_gemm.hpp"

#ifdef MAAS_BENCH_EIGEN
#include <Eigen/Core>
#endif
#ifdef MAAS_BENCH_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif

namespace {

struct Shape3 {
  const char* name;
  bool ta, tb;
  int64_t m, n, k;
};

// The products of one training step of the reference CNN at batch 64, in the
// orientation maas computes them (conv2 as one GEMM over the whole batch).
const std::vector<Shape3>& cnn_shapes() {
  static const std::vector<Shape3> shapes = {
      {"conv2_fwd", false, false, 64, 64 * 121, 288},         // W [O,K] x col [K, N*P]
      {"conv2_bwd_data", true, false, 288, 64 * 121, 64},     // W^T x dout
      {"conv2_bwd_weights", false, true, 64, 288, 64 * 121},  // dout x col^T
      {"conv1_fwd", false, false, 32, 64 * 676, 9},
      {"dense1_fwd", false, false, 64, 128, 1600},
      {"dense1_bwd_data", false, true, 64, 1600, 128},
      {"dense1_bwd_weights", true, false, 1600, 128, 64},
  };
  return shapes;
}

struct Operands {
  std::vector<float> a, b, c;
  Operands(int64_t m, int64_t n, int64_t k) {
    maas::Generator gen(7);
    a.resize(static_cast<size_t>(m * k));
    b.resize(static_cast<size_t>(k * n));
    c.resize(static_cast<size_t>(m * n));
    for (float& v : a) v = gen.normal();
    for (float& v : b) v = gen.normal();
  }
};

void run_bf16(benchmark::State& state, const Shape3& s) {
  const int threads = static_cast<int>(state.range(1));
  bench::use_threads(state, threads);
  Operands o(s.m, s.n, s.k);
  const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  for (auto _ : state) {
    maas::detail::bf16_gemm(s.ta, s.tb, s.m, s.n, s.k, o.a.data(), lda, o.b.data(), ldb, o.c.data(), s.n, false,
                            threads);
    benchmark::ClobberMemory();
  }
  bench::flops_counters(state, 2.0 * s.m * s.n * s.k, threads, true);
}

void BM_bf16_gemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  state.SetLabel(std::to_string(n) + "^3");
  run_bf16(state, Shape3{"square", false, false, n, n, n});
}
BENCHMARK(BM_bf16_gemm)
    ->ArgsProduct({{256, 1024}, {1, 2}})
    ->ArgNames({"n", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_bf16_gemm_cnn(benchmark::State& state) {
  const Shape3& s = cnn_shapes()[static_cast<size_t>(state.range(0))];
  state.SetLabel(s.name);
  run_bf16(state, s);
}
BENCHMARK(BM_bf16_gemm_cnn)
    ->ArgsProduct({{0, 1, 2}, {1, 2}})
    ->ArgNames({"shape", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// blocked: maas' own micro-kernel path even where sgemm is Eigen's (the
// portable target).
void run_maas(benchmark::State& state, const Shape3& s, bool blocked = false) {
  const int threads = static_cast<int>(state.range(1));
  bench::use_threads(state, threads);
  Operands o(s.m, s.n, s.k);
  const int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  const auto gemm = blocked ? &maas::detail::sgemm_blocked : &maas::detail::sgemm;
  for (auto _ : state) {
    gemm(s.ta, s.tb, s.m, s.n, s.k, o.a.data(), lda, o.b.data(), ldb, o.c.data(), s.n, false, threads);
    benchmark::ClobberMemory();
  }
  bench::flops_counters(state, 2.0 * s.m * s.n * s.k, threads);
}

void BM_sgemm_maas(benchmark::State& state) {
  const int64_t n = state.range(0);
  run_maas(state, {"square", false, false, n, n, n});
}
BENCHMARK(BM_sgemm_maas)
    ->ArgsProduct({{256, 512, 1024, 2048}, {1, 2}})
    ->ArgNames({"n", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_sgemm_maas_cnn(benchmark::State& state) {
  const Shape3& s = cnn_shapes()[static_cast<size_t>(state.range(0))];
  state.SetLabel(s.name);
  run_maas(state, s);
}
BENCHMARK(BM_sgemm_maas_cnn)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {1, 2}})
    ->ArgNames({"shape", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The public op (allocates its output each call): [n,n] x [n,n].
void BM_matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  bench::use_threads(state, threads);
  const maas::Tensor a = bench::normal({n, n}, 1), b = bench::normal({n, n}, 2);
  for (auto _ : state) benchmark::DoNotOptimize(maas::matmul(a, b).data());
  bench::flops_counters(state, 2.0 * n * n * n, threads);
}
BENCHMARK(BM_matmul)
    ->ArgsProduct({{256, 1024}, {1, 2}})
    ->ArgNames({"n", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

#ifdef MAAS_BENCH_EIGEN
// The same product with Eigen: row-major maps of the operands, op() as
// Eigen's transpose(), C = op(A) op(B) without a temporary.
void run_eigen(benchmark::State& state, const Shape3& s) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int threads = static_cast<int>(state.range(1));
  bench::use_threads(state, threads);
  Eigen::setNbThreads(threads);
  Operands o(s.m, s.n, s.k);
  const Eigen::Map<const Matrix> a(o.a.data(), s.ta ? s.k : s.m, s.ta ? s.m : s.k);
  const Eigen::Map<const Matrix> b(o.b.data(), s.tb ? s.n : s.k, s.tb ? s.k : s.n);
  Eigen::Map<Matrix> c(o.c.data(), s.m, s.n);
  for (auto _ : state) {
    if (!s.ta && !s.tb) c.noalias() = a * b;
    else if (s.ta && !s.tb) c.noalias() = a.transpose() * b;
    else if (!s.ta && s.tb) c.noalias() = a * b.transpose();
    else c.noalias() = a.transpose() * b.transpose();
    benchmark::ClobberMemory();
  }
  bench::flops_counters(state, 2.0 * s.m * s.n * s.k, threads);
}

void BM_sgemm_blocked(benchmark::State& state) {
  const int64_t n = state.range(0);
  run_maas(state, {"square", false, false, n, n, n}, true);
}
BENCHMARK(BM_sgemm_blocked)
    ->ArgsProduct({{1024}, {1}})
    ->ArgNames({"n", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_sgemm_blocked_cnn(benchmark::State& state) {
  const Shape3& s = cnn_shapes()[static_cast<size_t>(state.range(0))];
  state.SetLabel(s.name);
  run_maas(state, s, true);
}
BENCHMARK(BM_sgemm_blocked_cnn)
    ->ArgsProduct({{0, 1, 2, 3}, {1}})
    ->ArgNames({"shape", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_sgemm_eigen(benchmark::State& state) {
  const int64_t n = state.range(0);
  run_eigen(state, {"square", false, false, n, n, n});
}
BENCHMARK(BM_sgemm_eigen)
    ->ArgsProduct({{1024}, {1}})
    ->ArgNames({"n", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_sgemm_eigen_cnn(benchmark::State& state) {
  const Shape3& s = cnn_shapes()[static_cast<size_t>(state.range(0))];
  state.SetLabel(s.name);
  run_eigen(state, s);
}
BENCHMARK(BM_sgemm_eigen_cnn)
    ->ArgsProduct({{0, 1, 2, 3}, {1}})
    ->ArgNames({"shape", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
#endif

#ifdef MAAS_BENCH_OPENBLAS
void run_openblas(benchmark::State& state, const Shape3& s) {
  const int threads = static_cast<int>(state.range(1));
  bench::use_threads(state, threads);
  openblas_set_num_threads(threads);
  Operands o(s.m, s.n, s.k);
  const int lda = static_cast<int>(s.ta ? s.m : s.k), ldb = static_cast<int>(s.tb ? s.k : s.n);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k), 1.f, o.a.data(), lda,
                o.b.data(), ldb, 0.f, o.c.data(), static_cast<int>(s.n));
    benchmark::ClobberMemory();
  }
  bench::flops_counters(state, 2.0 * s.m * s.n * s.k, threads);
}

void BM_sgemm_openblas(benchmark::State& state) {
  const int64_t n = state.range(0);
  run_openblas(state, {"square", false, false, n, n, n});
}
BENCHMARK(BM_sgemm_openblas)
    ->ArgsProduct({{256, 512, 1024, 2048}, {1, 2}})
    ->ArgNames({"n", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_sgemm_openblas_cnn(benchmark::State& state) {
  const Shape3& s = cnn_shapes()[static_cast<size_t>(state.range(0))];
  state.SetLabel(s.name);
  run_openblas(state, s);
}
BENCHMARK(BM_sgemm_openblas_cnn)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {1, 2}})
    ->ArgNames({"shape", "threads"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
#endif

}  // namespace
