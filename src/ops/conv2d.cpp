// conv2d: 2-D convolution (cross-correlation, as in PyTorch) of NCHW batches.
//
// Shape letters, used throughout: x [N,C,H,W], weight [O,C,kh,kw], output
// [N,O,Ho,Wo]; K = C*kh*kw is the length of one receptive field and
// P = Ho*Wo the number of output positions.
//
// Forward lowers each image to a column matrix and runs one GEMM:
//   col [K,P] = im2col(x[n])
//   out[n] [O,P] = weight [O,K] * col + bias
// Backward is the product rule on that GEMM:
//   dcol = weight^T * dout[n], scattered back into dx[n] by col2im
//   dweight += dout[n] * col^T
//   dbias += dout summed over N, Ho, Wo
// Images are split over OpenMP threads in fixed contiguous blocks; Eigen runs
// single-threaded inside. Each thread has its own workspaces and its own
// partial dweight, summed in thread order afterwards, so gradients are
// bit-identical run to run for a fixed thread count. A 1x1 kernel with stride
// 1 and no padding needs no im2col: the image itself is the column matrix.
//
// What this file is not: no groups, no asymmetric padding, no Winograd or FFT.
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "eigen.hpp"
#include "internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {

using detail::ConstMapRM;
using detail::ConstMapVec;
using detail::MapRM;

// Everything about one convolution's sizes, checked once in the forward.
struct Geometry {
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t O = 0, kh = 0, kw = 0;
  int64_t Ho = 0, Wo = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;

  int64_t K() const { return C * kh * kw; }
  int64_t P() const { return Ho * Wo; }
  // 1x1 kernel, stride 1, no padding: col is x[n] itself ([C, H*W]).
  bool direct() const { return kh == 1 && kw == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0; }
};

std::string pair_str(const Pair& p) { return "(" + std::to_string(p[0]) + "," + std::to_string(p[1]) + ")"; }

Geometry geometry(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt) {
  detail::check_defined(x, "conv2d", "input");
  detail::check_defined(weight, "conv2d", "weight");
  const std::string xs = to_string(x.shape()), ws = to_string(weight.shape());
  MAAS_CHECK(x.dim() == 4, "conv2d: input " << xs << " must be 4-D [N,C,H,W]");
  MAAS_CHECK(weight.dim() == 4, "conv2d: weight " << ws << " must be 4-D [O,C,kh,kw]");
  Geometry g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.O = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3);
  MAAS_CHECK(weight.size(1) == g.C, "conv2d: input " << xs << " has " << g.C << " channels but weight " << ws
                                                     << " expects " << weight.size(1));
  MAAS_CHECK(g.kh >= 1 && g.kw >= 1, "conv2d: weight " << ws << " has an empty kernel");
  if (bias.defined())
    MAAS_CHECK(bias.shape() == Shape{g.O}, "conv2d: bias " << to_string(bias.shape()) << " must be [" << g.O
                                                           << "], one value per output channel of weight " << ws);
  MAAS_CHECK(opt.stride[0] >= 1 && opt.stride[1] >= 1,
             "conv2d: stride " << pair_str(opt.stride) << " must be at least 1 (input " << xs << ")");
  MAAS_CHECK(opt.dilation[0] >= 1 && opt.dilation[1] >= 1,
             "conv2d: dilation " << pair_str(opt.dilation) << " must be at least 1 (input " << xs << ")");
  MAAS_CHECK(opt.padding[0] >= 0 && opt.padding[1] >= 0,
             "conv2d: padding " << pair_str(opt.padding) << " must not be negative (input " << xs << ")");
  g.stride_h = opt.stride[0], g.stride_w = opt.stride[1];
  g.pad_h = opt.padding[0], g.pad_w = opt.padding[1];
  g.dil_h = opt.dilation[0], g.dil_w = opt.dilation[1];
  // The span of the dilated kernel must fit in the padded input.
  const int64_t span_h = g.dil_h * (g.kh - 1) + 1, span_w = g.dil_w * (g.kw - 1) + 1;
  const int64_t padded_h = g.H + 2 * g.pad_h, padded_w = g.W + 2 * g.pad_w;
  MAAS_CHECK(span_h <= padded_h && span_w <= padded_w,
             "conv2d: weight " << ws << " with dilation " << pair_str(opt.dilation) << " spans " << span_h << "x"
                               << span_w << ", larger than input " << xs << " with padding "
                               << pair_str(opt.padding) << " (" << padded_h << "x" << padded_w
                               << "): the output would be empty");
  g.Ho = (padded_h - span_h) / g.stride_h + 1;
  g.Wo = (padded_w - span_w) / g.stride_w + 1;
  return g;
}

// The output positions o in [lo, hi) of [0, n_out) whose input index
// o*stride + offset falls inside [0, n_in); the others read padding.
void valid_range(int64_t offset, int64_t stride, int64_t n_in, int64_t n_out, int64_t& lo, int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = n_in - offset <= 0 ? 0 : (n_in - offset + stride - 1) / stride;
  hi = std::min(hi, n_out);
  lo = std::min(lo, hi);
}

// col [K,P]: row (c,i,j) holds x[c, oh*stride_h + i*dil_h - pad_h, ow*stride_w + j*dil_w - pad_w]
// for every output position (oh,ow), zero where that lands in the padding.
void im2col(const float* x, const Geometry& g, float* col) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        float* row = col + ((c * g.kh + i) * g.kw + j) * g.P();
        const int64_t off_h = i * g.dil_h - g.pad_h, off_w = j * g.dil_w - g.pad_w;
        int64_t w_lo, w_hi;
        valid_range(off_w, g.stride_w, g.W, g.Wo, w_lo, w_hi);
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          float* dst = row + oh * g.Wo;
          const int64_t ih = oh * g.stride_h + off_h;
          if (ih < 0 || ih >= g.H) {
            std::fill(dst, dst + g.Wo, 0.f);
            continue;
          }
          const float* src = x + (c * g.H + ih) * g.W;
          std::fill(dst, dst + w_lo, 0.f);
          for (int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow] = src[ow * g.stride_w + off_w];
          std::fill(dst + w_hi, dst + g.Wo, 0.f);
        }
      }
}

// The adjoint of im2col: dx[c,ih,iw] += every dcol entry that im2col read from it.
void col2im(const float* dcol, const Geometry& g, float* dx) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const float* row = dcol + ((c * g.kh + i) * g.kw + j) * g.P();
        const int64_t off_h = i * g.dil_h - g.pad_h, off_w = j * g.dil_w - g.pad_w;
        int64_t w_lo, w_hi;
        valid_range(off_w, g.stride_w, g.W, g.Wo, w_lo, w_hi);
        int64_t h_lo, h_hi;
        valid_range(off_h, g.stride_h, g.H, g.Ho, h_lo, h_hi);
        for (int64_t oh = h_lo; oh < h_hi; ++oh) {
          const float* src = row + oh * g.Wo;
          float* dst = dx + (c * g.H + oh * g.stride_h + off_h) * g.W;
          for (int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow * g.stride_w + off_w] += src[ow];
        }
      }
}

// Threads for a loop over n images costing `flops` in all: one when small.
int batch_threads(int64_t n, int64_t flops) {
  if (n < 2 || flops < (int64_t{1} << 18)) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), n)));
}

// Runs fn(thread, n0, n1) on each thread of a team, thread t taking the fixed
// block of images [n0, n1): which thread sees which image does not depend on
// scheduling.
template <class Fn>
void for_image_blocks(int threads, int64_t n, Fn fn) {
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    fn(t, n * t / nt, n * (t + 1) / nt);
  }
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  const Geometry g = geometry(x, weight, bias, options);
  const int64_t K = g.K(), P = g.P();
  Tensor out = Tensor::empty({g.N, g.O, g.Ho, g.Wo});
  const float* px = x.data();
  const float* pb = bias.defined() ? bias.data() : nullptr;
  float* py = out.data();
  const ConstMapRM wmat(weight.data(), g.O, K);
  for_image_blocks(batch_threads(g.N, 2 * g.N * g.O * K * P), g.N, [&](int, int64_t n0, int64_t n1) {
    std::vector<float> col(g.direct() ? 0 : K * P);
    for (int64_t n = n0; n < n1; ++n) {
      const float* xn = px + n * g.C * g.H * g.W;
      if (!g.direct()) im2col(xn, g, col.data());
      const ConstMapRM cmat(g.direct() ? xn : col.data(), K, P);
      MapRM y(py + n * g.O * P, g.O, P);
      y.noalias() = wmat * cmat;
      if (pb) y.colwise() += ConstMapVec(pb, g.O);
    }
  });

  autograd::record("conv2d", out, {x, weight, bias},
                   [xs = x.detach(), ws = weight.detach(), g](const Tensor& dout, std::vector<Tensor>& d) {
                     const int64_t K = g.K(), P = g.P();
                     const float* px = xs.data();
                     const float* pg = dout.data();
                     float* dx = d[0].defined() ? d[0].data() : nullptr;
                     float* dweight = d[1].defined() ? d[1].data() : nullptr;
                     float* dbias = d[2].defined() ? d[2].data() : nullptr;
                     const ConstMapRM wmat(ws.data(), g.O, K);

                     if (dx || dweight) {
                       const int64_t gemms = (dx ? 1 : 0) + (dweight ? 1 : 0);
                       const int threads = batch_threads(g.N, 2 * gemms * g.N * g.O * K * P);
                       // One [O,K] partial dweight per thread, summed in thread order below.
                       std::vector<float> partials(dweight ? threads * g.O * K : 0, 0.f);
                       for_image_blocks(threads, g.N, [&](int t, int64_t n0, int64_t n1) {
                         std::vector<float> col(dweight && !g.direct() ? K * P : 0);
                         std::vector<float> dcol(dx && !g.direct() ? K * P : 0);
                         for (int64_t n = n0; n < n1; ++n) {
                           const float* xn = px + n * g.C * g.H * g.W;
                           const ConstMapRM gn(pg + n * g.O * P, g.O, P);
                           if (dweight) {
                             if (!g.direct()) im2col(xn, g, col.data());
                             const ConstMapRM cmat(g.direct() ? xn : col.data(), K, P);
                             MapRM partial(partials.data() + t * g.O * K, g.O, K);
                             partial.noalias() += gn * cmat.transpose();
                           }
                           if (dx) {
                             float* dxn = dx + n * g.C * g.H * g.W;
                             if (g.direct()) {
                               MapRM dcmat(dxn, K, P);
                               dcmat.noalias() += wmat.transpose() * gn;
                             } else {
                               MapRM dcmat(dcol.data(), K, P);
                               dcmat.noalias() = wmat.transpose() * gn;
                               col2im(dcol.data(), g, dxn);
                             }
                           }
                         }
                       });
                       if (dweight) {
                         MapRM dwmat(dweight, g.O, K);
                         for (int t = 0; t < threads; ++t) dwmat += ConstMapRM(partials.data() + t * g.O * K, g.O, K);
                       }
                     }

                     if (dbias) {
#pragma omp parallel for if (g.N * g.O * P > detail::kParallelGrain) schedule(static)
                       for (int64_t o = 0; o < g.O; ++o) {
                         double acc = 0.0;
                         for (int64_t n = 0; n < g.N; ++n) {
                           const float* row = pg + (n * g.O + o) * P;
                           for (int64_t p = 0; p < P; ++p) acc += row[p];
                         }
                         dbias[o] += static_cast<float>(acc);
                       }
                     }
                   });
  return out;
}

}  // namespace maas
