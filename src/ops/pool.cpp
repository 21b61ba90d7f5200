// max_pool2d and avg_pool2d: 2-D pooling over NCHW images, forward and backward.
//
// Shape letters: N batch, C channels, H x W input plane, Ho x Wo output plane,
// kh x kw window, sh x sw stride, ph x pw padding. As PyTorch with
// ceil_mode=False: Ho = (H + 2*ph - kh) / sh + 1, and padding is at most half
// the kernel, so every window holds at least one real input element.
//
// Each of the N*C planes is independent: forward and backward split the planes
// across OpenMP threads (max-pool in chunks handed out as threads come free),
// and a thread writes only inside its own planes, so the backward scatter
// (several windows may share an input element when the stride is smaller than
// the kernel) has no races. The common 2x2 window with
// stride 2 and no padding has a vectorised forward (AVX-512) that makes the
// same choices as the plain loop, NaN and ties included.
//
// What this file is not: no ceil_mode, no dilation, no return_indices API; the
// argmax indices are kept privately for the backward pass.
#include <omp.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {

std::string pair_str(const Pair& p) {
  std::ostringstream os;
  os << "[" << p[0] << "," << p[1] << "]";
  return os.str();
}

// The validated geometry of one pooling call.
struct PoolGeom {
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t Ho = 0, Wo = 0;
  int64_t kh = 0, kw = 0, sh = 0, sw = 0, ph = 0, pw = 0;
  int64_t planes() const { return N * C; }
  // Multiply-adds of one pass, to decide whether threads pay off.
  // (In double: a window of 2^40 x 2^40 must not wrap the count.)
  double work() const {
    return static_cast<double>(N) * static_cast<double>(C) * static_cast<double>(Ho) * static_cast<double>(Wo) *
           static_cast<double>(kh) * static_cast<double>(kw);
  }
};

PoolGeom pool_geometry(const Tensor& x, const Pool2dOptions& o, const char* op) {
  detail::check_defined(x, op, "input");
  MAAS_CHECK(x.dim() == 4, op << ": input " << to_string(x.shape()) << " must be 4-D [N,C,H,W]");
  PoolGeom g;
  g.N = x.size(0);
  g.C = x.size(1);
  g.H = x.size(2);
  g.W = x.size(3);
  MAAS_CHECK(g.H > 0 && g.W > 0, op << ": input " << to_string(x.shape()) << " has an empty H x W plane");
  const Pair& k = o.kernel;
  const Pair s = (o.stride[0] == 0 && o.stride[1] == 0) ? o.kernel : o.stride;
  const Pair& p = o.padding;
  MAAS_CHECK(k[0] >= 1 && k[1] >= 1, op << ": kernel " << pair_str(k) << " must be at least 1 in each dimension");
  MAAS_CHECK(s[0] >= 1 && s[1] >= 1, op << ": stride " << pair_str(s)
                                        << " must be at least 1 in each dimension ({0,0} means the kernel size)");
  MAAS_CHECK(p[0] >= 0 && p[1] >= 0 && p[0] <= k[0] / 2 && p[1] <= k[1] / 2,
             op << ": padding " << pair_str(p) << " must be between 0 and half the kernel " << pair_str(k));
  MAAS_CHECK(g.H * g.W <= std::numeric_limits<int32_t>::max(),
             op << ": input plane of " << to_string(x.shape()) << " is too large for int32 argmax indices");
  // p <= k / 2 and H, W < 2^31: the padded sizes fit, but k may come from a file.
  const int64_t padded_h = detail::checked_add(g.H, detail::checked_mul(2, p[0], op), op);
  const int64_t padded_w = detail::checked_add(g.W, detail::checked_mul(2, p[1], op), op);
  MAAS_CHECK(padded_h >= k[0] && padded_w >= k[1],
             op << ": kernel " << pair_str(k) << " is larger than the padded input [" << padded_h << "," << padded_w
                << "] (input " << to_string(x.shape()) << ", padding " << pair_str(p) << ")");
  g.kh = k[0];
  g.kw = k[1];
  g.sh = s[0];
  g.sw = s[1];
  g.ph = p[0];
  g.pw = p[1];
  g.Ho = (padded_h - g.kh) / g.sh + 1;
  g.Wo = (padded_w - g.kw) / g.sw + 1;
  return g;
}

// The in-bounds part [h0, h1) x [w0, w1) of the window of output (oh, ow).
struct Window {
  int64_t h0, h1, w0, w1;
};

inline Window window(const PoolGeom& g, int64_t oh, int64_t ow) {
  const int64_t hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
  return {std::max<int64_t>(hs, 0), std::min(hs + g.kh, g.H), std::max<int64_t>(ws, 0), std::min(ws + g.kw, g.W)};
}

// The plain loop over the output planes [pl0, pl1): the maximum of each
// window and, when am is not null, its index h*W + w within the plane.
void max_pool_planes(const PoolGeom& g, const float* px, float* py, int32_t* pa, int64_t pl0, int64_t pl1) {
  for (int64_t pl = pl0; pl < pl1; ++pl) {
    const float* xin = px + pl * g.H * g.W;
    float* y = py + pl * g.Ho * g.Wo;
    int32_t* am = pa ? pa + pl * g.Ho * g.Wo : nullptr;
    for (int64_t oh = 0; oh < g.Ho; ++oh)
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        const Window wd = window(g, oh, ow);
        // Padding never wins: only real elements are visited. Strict '>' keeps
        // the first maximum in row-major order; a NaN wins (and propagates) as
        // in PyTorch.
        int64_t best_i = -1;
        float best = 0.f;
        for (int64_t h = wd.h0; h < wd.h1; ++h)
          for (int64_t w = wd.w0; w < wd.w1; ++w) {
            const float v = xin[h * g.W + w];
            if (best_i < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
              best = v;
              best_i = h * g.W + w;
            }
          }
        y[oh * g.Wo + ow] = best;
        if (am) am[oh * g.Wo + ow] = static_cast<int32_t>(best_i);
      }
  }
}

#if defined(__AVX512F__)
// 2x2 windows, stride 2, no padding: 16 outputs of a row at a time. The four
// candidates a b / c d of each window are visited in the plain loop's order
// with its rule (strictly greater, or a NaN over a number).
void max_pool_2x2_planes(const PoolGeom& g, const float* px, float* py, int32_t* pa, int64_t pl0, int64_t pl1) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i lane2 = _mm512_slli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 1);
  const int32_t W = static_cast<int32_t>(g.W);
  for (int64_t pl = pl0; pl < pl1; ++pl) {
    const float* xin = px + pl * g.H * g.W;
    float* y = py + pl * g.Ho * g.Wo;
    int32_t* am = pa ? pa + pl * g.Ho * g.Wo : nullptr;
    for (int64_t oh = 0; oh < g.Ho; ++oh)
      for (int64_t ow0 = 0; ow0 < g.Wo; ow0 += 16) {
        const int64_t nout = std::min<int64_t>(16, g.Wo - ow0), nin = 2 * nout;
        const __mmask16 mout = static_cast<__mmask16>((1u << nout) - 1);
        const __mmask16 mlo = static_cast<__mmask16>((1u << std::min<int64_t>(16, nin)) - 1);
        const __mmask16 mhi = static_cast<__mmask16>((1u << std::max<int64_t>(0, nin - 16)) - 1);
        const float* r0 = xin + 2 * oh * g.W + 2 * ow0;
        const float* r1 = r0 + g.W;
        const __m512 lo0 = _mm512_maskz_loadu_ps(mlo, r0), hi0 = _mm512_maskz_loadu_ps(mhi, r0 + 16);
        const __m512 lo1 = _mm512_maskz_loadu_ps(mlo, r1), hi1 = _mm512_maskz_loadu_ps(mhi, r1 + 16);
        const __m512 cand[4] = {_mm512_permutex2var_ps(lo0, even, hi0), _mm512_permutex2var_ps(lo0, odd, hi0),
                                _mm512_permutex2var_ps(lo1, even, hi1), _mm512_permutex2var_ps(lo1, odd, hi1)};
        __m512 best = cand[0];
        __mmask16 take[4] = {0, 0, 0, 0};
        for (int q = 1; q < 4; ++q) {
          const __m512 v = cand[q];
          const __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
          const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
          take[q] = gt | nan;
          best = _mm512_mask_blend_ps(take[q], best, v);
        }
        _mm512_mask_storeu_ps(y + oh * g.Wo + ow0, mout, best);
        if (am) {
          const __m512i base = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(2 * oh * g.W + 2 * ow0)), lane2);
          __m512i idx = base;
          const int32_t off[4] = {0, 1, W, W + 1};
          for (int q = 1; q < 4; ++q)
            idx = _mm512_mask_blend_epi32(take[q], idx, _mm512_add_epi32(base, _mm512_set1_epi32(off[q])));
          _mm512_mask_storeu_epi32(am + oh * g.Wo + ow0, mout, idx);
        }
      }
  }
}
#endif

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options) {
  const PoolGeom g = pool_geometry(x, options, "max_pool2d");
  Tensor out = Tensor::empty({g.N, g.C, g.Ho, g.Wo});
  // argmax[plane*Ho*Wo + oh*Wo + ow] = h*W + w, the winner's index within its
  // plane, saved for backward; not kept when no gradient is wanted.
  const bool keep = autograd::needs_grad({x});
  auto argmax = std::make_shared<std::vector<int32_t>>(keep ? static_cast<size_t>(out.numel()) : 0);
  const float* px = x.data();
  float* py = out.data();
  int32_t* pa = keep ? argmax->data() : nullptr;
#if defined(__AVX512F__)
  const bool two_by_two = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0;
  auto run = two_by_two ? max_pool_2x2_planes : max_pool_planes;
#else
  auto run = max_pool_planes;
#endif
  // Up to 16 chunks of planes, handed to the threads as they come free.
  const int64_t planes = g.planes(), chunks = std::min<int64_t>(planes, 16);
#pragma omp parallel for if (g.work() > detail::kParallelGrain) schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) run(g, px, py, pa, planes * c / chunks, planes * (c + 1) / chunks);
  autograd::record("max_pool2d", out, {x}, [g, argmax](const Tensor& dout, std::vector<Tensor>& dinp) {
    if (!dinp[0].defined()) return;
    const float* gy = dout.data();
    float* dx = dinp[0].data();
    const int32_t* am = argmax->data();
    const int64_t chunk = std::max<int64_t>(1, g.planes() / 16);
#pragma omp parallel for if (g.planes() * g.Ho * g.Wo > detail::kParallelGrain) schedule(dynamic, chunk)
    for (int64_t pl = 0; pl < g.planes(); ++pl) {
      float* dplane = dx + pl * g.H * g.W;
      const int64_t base = pl * g.Ho * g.Wo;
      for (int64_t o = 0; o < g.Ho * g.Wo; ++o) dplane[am[base + o]] += gy[base + o];
    }
  });
  return out;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options) {
  const PoolGeom g = pool_geometry(x, options, "avg_pool2d");
  const bool include_pad = options.count_include_pad;
  // The divisor of one window: kh*kw (ceil_mode=False windows never pass the
  // padding), or the number of real elements.
  auto divisor = [g, include_pad](const Window& wd) {
    return include_pad ? static_cast<float>(g.kh * g.kw) : static_cast<float>((wd.h1 - wd.h0) * (wd.w1 - wd.w0));
  };
  Tensor out = Tensor::empty({g.N, g.C, g.Ho, g.Wo});
  const float* px = x.data();
  float* py = out.data();
#pragma omp parallel for if (g.work() > detail::kParallelGrain) schedule(static)
  for (int64_t pl = 0; pl < g.planes(); ++pl) {
    const float* xin = px + pl * g.H * g.W;
    float* y = py + pl * g.Ho * g.Wo;
    for (int64_t oh = 0; oh < g.Ho; ++oh)
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        const Window wd = window(g, oh, ow);
        float acc = 0.f;
        for (int64_t h = wd.h0; h < wd.h1; ++h)
          for (int64_t w = wd.w0; w < wd.w1; ++w) acc += xin[h * g.W + w];
        y[oh * g.Wo + ow] = acc / divisor(wd);
      }
  }
  autograd::record("avg_pool2d", out, {x}, [g, divisor](const Tensor& dout, std::vector<Tensor>& dinp) {
    if (!dinp[0].defined()) return;
    const float* gy = dout.data();
    float* dx = dinp[0].data();
#pragma omp parallel for if (g.work() > detail::kParallelGrain) schedule(static)
    for (int64_t pl = 0; pl < g.planes(); ++pl) {
      float* dplane = dx + pl * g.H * g.W;
      const float* gplane = gy + pl * g.Ho * g.Wo;
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const Window wd = window(g, oh, ow);
          const float share = gplane[oh * g.Wo + ow] / divisor(wd);
          for (int64_t h = wd.h0; h < wd.h1; ++h)
            for (int64_t w = wd.w0; w < wd.w1; ++w) dplane[h * g.W + w] += share;
        }
    }
  });
  return out;
}

}  // namespace maas
