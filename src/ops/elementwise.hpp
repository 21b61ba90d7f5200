// Internal: templates for element-wise ops. An op passes its forward formula
// and its derivative side by side; these templates build the output, run the
// loops (in parallel when large) and record the backward pass.
#pragma once

#include <utility>
#include <vector>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/tensor.hpp"

namespace maas::detail {

// Unary: y = f(x); dx += df(x, y, dy).
template <class F, class DF>
Tensor unary_op(const char* name, const Tensor& x, F f, DF df) {
  check_defined(x, name, "input");
  Tensor out = Tensor::empty(x.shape());
  const float* px = x.data();
  float* py = out.data();
  const int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) py[i] = f(px[i]);
  autograd::record(name, out, {x}, [xs = x.detach(), ys = out.detach(), df](const Tensor& dout,
                                                                           std::vector<Tensor>& dx) {
    const float* px = xs.data();
    const float* py = ys.data();
    const float* g = dout.data();
    float* d = dx[0].data();
    const int64_t n = xs.numel();
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i) d[i] += df(px[i], py[i], g[i]);
  });
  return out;
}

// How two shapes broadcast: the output shape, and each input's strides laid
// over the output's dimensions (0 where that input is stretched).
struct Broadcast {
  Shape out;
  Shape stride_a;
  Shape stride_b;
};

Broadcast broadcast(const Shape& a, const Shape& b, const char* op);

// Calls fn(out_index, a_index, b_index) for every output element, in order.
template <class Fn>
void broadcast_loop(const Broadcast& bc, Fn fn) {
  const size_t nd = bc.out.size();
  if (nd == 0) {
    fn(0, 0, 0);
    return;
  }
  const int64_t inner = bc.out[nd - 1];
  const int64_t sa = bc.stride_a[nd - 1];
  const int64_t sb = bc.stride_b[nd - 1];
  const int64_t total = numel(bc.out);
  if (inner == 0 || total == 0) return;
  const int64_t outer = total / inner;
  std::vector<int64_t> idx(nd - 1, 0);
  int64_t ia = 0, ib = 0;
  for (int64_t r = 0; r < outer; ++r) {
    for (int64_t j = 0; j < inner; ++j) fn(r * inner + j, ia + j * sa, ib + j * sb);
    for (size_t d = nd - 1; d-- > 0;) {
      ++idx[d];
      ia += bc.stride_a[d];
      ib += bc.stride_b[d];
      if (idx[d] < bc.out[d]) break;
      ia -= bc.stride_a[d] * bc.out[d];
      ib -= bc.stride_b[d] * bc.out[d];
      idx[d] = 0;
    }
  }
}

// Binary with broadcasting: z = f(a, b); da += dfa(a, b, dz); db += dfb(a, b, dz).
// Gradients of a stretched input are summed over the stretched dimensions.
template <class F, class DA, class DB>
Tensor binary_op(const char* name, const Tensor& a, const Tensor& b, F f, DA dfa, DB dfb) {
  check_defined(a, name, "first input");
  check_defined(b, name, "second input");
  const bool same = a.shape() == b.shape();
  Broadcast bc = same ? Broadcast{a.shape(), {}, {}} : broadcast(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(bc.out);
  const float* pa = a.data();
  const float* pb = b.data();
  float* pz = out.data();
  const int64_t n = out.numel();
  if (same) {
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i) pz[i] = f(pa[i], pb[i]);
  } else {
    broadcast_loop(bc, [&](int64_t o, int64_t i, int64_t j) { pz[o] = f(pa[i], pb[j]); });
  }
  autograd::record(name, out, {a, b},
                   [as = a.detach(), bs = b.detach(), bc = std::move(bc), same, dfa, dfb](
                       const Tensor& dout, std::vector<Tensor>& d) {
                     const float* pa = as.data();
                     const float* pb = bs.data();
                     const float* g = dout.data();
                     float* da = d[0].defined() ? d[0].data() : nullptr;
                     float* db = d[1].defined() ? d[1].data() : nullptr;
                     const int64_t n = dout.numel();
                     if (same) {
                       // da and db may alias (x * x): update them one after the other.
                       if (da) {
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
                         for (int64_t i = 0; i < n; ++i) da[i] += dfa(pa[i], pb[i], g[i]);
                       }
                       if (db) {
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
                         for (int64_t i = 0; i < n; ++i) db[i] += dfb(pa[i], pb[i], g[i]);
                       }
                       return;
                     }
                     if (da) broadcast_loop(bc, [&](int64_t o, int64_t i, int64_t j) { da[i] += dfa(pa[i], pb[j], g[o]); });
                     if (db) broadcast_loop(bc, [&](int64_t o, int64_t i, int64_t j) { db[j] += dfb(pa[i], pb[j], g[o]); });
                   });
  return out;
}

}  // namespace maas::detail
