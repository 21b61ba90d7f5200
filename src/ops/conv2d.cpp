// conv2d: 2-D convolution (cross-correlation, as in PyTorch) of NCHW batches.
//
// Shape letters, used throughout: x [N,C,H,W], weight [O,C,kh,kw], output
// [N,O,Ho,Wo]; K = C*kh*kw is the length of one receptive field and
// P = Ho*Wo the number of output positions.
//
// Forward lowers each image to a column matrix and runs one GEMM on maas'
// kernel (ops/gemm.hpp), the bias added as the tile is stored:
//   col [K,P] = im2col(x[n])
//   out[n] [O,P] = weight [O,K] * col + bias
// Backward is the product rule on that GEMM:
//   dcol = weight^T * dout[n], scattered back into dx[n] by col2im
//   dweight^T [K,O] += col * dout[n]^T   (added to dweight at the end)
//   dbias += dout summed over N, Ho, Wo
// The weight is packed for the kernel once per call and shared by all
// threads. col is built a block of channels at a time (channel_block) and
// consumed by the GEMM while it is in cache; for dweight the block is
// transposed one kernel sliver (8 rows) at a time straight into the layout
// the kernel reads. With AVX-512 and stride 1 along W, im2col and col2im
// move whole vectors with masked loads from a per-call plan (no partial or
// overlapping stores).
//
// The batch is cut into at most 16 chunks of whole images that depend on N
// only, handed to OpenMP threads as they come free; each thread works in its
// own scratch buffers (kept between calls: a training step allocates
// nothing here). dweight and dbias are summed per chunk and the chunks'
// sums added in chunk order, so every result is bit-identical run to run and
// for any thread count. A 1x1 kernel with stride 1 and no padding needs no
// im2col when H*W is a multiple of 16: the image itself is the column matrix.
//
// Under Precision::BF16 (product_precision(), ops/product.hpp, read once
// per pass) the three products run on the bf16 kernel
// (ops/lowp/bf16_gemm.hpp) instead: the weight is packed to bf16 pairs once
// per call, dout once per image, with fp32 accumulation in a fixed order.
// The column rows of the forward and of dweight are not built in fp32 at
// all where a gather plan fits (stride 1 along W, and most small images):
// the kernel gathers them from the image straight into its packed panel
// (gather_b, gather_t), all K rows in one block up to 1024. dweight is
// computed as [O,K] = dout * col^T there, so O fills the kernel's slivers
// and K its panels. Elsewhere col is built by im2col and then packed. The
// exception is dweight of a first layer with few column rows (K <= 32, the
// dot-product path below), which stays fp32: it is memory-bound, not a
// matrix-unit product.
//
// What this file is not: no groups, no asymmetric padding, no Winograd or FFT.
#include <omp.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"
#include "ops/gemm.hpp"
#include "ops/lowp/bf16_gemm.hpp"
#include "ops/product.hpp"
#include "ops/scratch.hpp"

namespace maas {

namespace {

using detail::gemm_round_up;
using detail::kGemmPad;
using detail::scratch;
using detail::bf16_pack;
using detail::bf16_pairs;
using detail::bf16_packed_size;
using detail::scratch_as;
using detail::kBf16MR;
using detail::kBf16NR;

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
  using detail::checked_add;
  using detail::checked_mul;
  const int64_t span_h = checked_add(checked_mul(g.dil_h, g.kh - 1, "conv2d: kernel span"), 1, "conv2d: kernel span");
  const int64_t span_w = checked_add(checked_mul(g.dil_w, g.kw - 1, "conv2d: kernel span"), 1, "conv2d: kernel span");
  const int64_t padded_h = checked_add(g.H, checked_mul(2, g.pad_h, "conv2d: padding"), "conv2d: padded height");
  const int64_t padded_w = checked_add(g.W, checked_mul(2, g.pad_w, "conv2d: padding"), "conv2d: padded width");
  MAAS_CHECK(span_h <= padded_h && span_w <= padded_w,
             "conv2d: weight " << ws << " with dilation " << pair_str(opt.dilation) << " spans " << span_h << "x"
                               << span_w << ", larger than input " << xs << " with padding "
                               << pair_str(opt.padding) << " (" << padded_h << "x" << padded_w
                               << "): the output would be empty");
  g.Ho = (padded_h - span_h) / g.stride_h + 1;
  g.Wo = (padded_w - span_w) / g.stride_w + 1;
  // The column matrix holds K x P floats per sample (and the output N*O*P).
  checked_mul(g.K(), g.P(), "conv2d: column matrix");
  checked_mul(checked_mul(g.N, g.O, "conv2d: output"), g.P(), "conv2d: output");
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

// dst[0, n) = src[0, n) for the short runs of im2col, but may write up to
// 15 floats past dst + n (garbage): for buffers with slack, where
// whole-vector stores are faster than masked ones.
inline void copy_floats_overrun(float* dst, const float* src, int64_t n) {
#if defined(__AVX512F__)
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_storeu_ps(dst + i, _mm512_maskz_loadu_ps(mask, src + i));
  }
#else
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
#endif
}

// Like copy_floats_overrun, and also reads whole vectors: up to 15 floats
// past src + n must be readable.
inline void copy_floats_wide(float* dst, const float* src, int64_t n) {
#if defined(__AVX512F__)
  for (int64_t i = 0; i < n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
#else
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
#endif
}

// Row stride of a column matrix of P positions: a multiple of the kernel's
// padding with at least 16 floats of slack, so im2col may store whole vectors
// past a run's end (the next run, or the zeroed tail, overwrites them).
int64_t col_stride(int64_t P) { return gemm_round_up(P + 16, kGemmPad); }

// Channels per block of im2col / col2im: their column rows (about 96 of
// them) stay in L1/L2 between being written and being read by the GEMM, and
// a block's first row is a whole number of kernel slivers into the packed
// weight, for both kernels (kGemmMR rows for fp32, kBf16MR for bf16).
int64_t channel_block(const Geometry& g) {
  const int64_t taps = g.kh * g.kw;
  constexpr int64_t sliver = std::lcm(int64_t{detail::kGemmMR}, int64_t{detail::kBf16MR});
  int64_t unit = sliver;  // channels per unit: unit * taps % sliver == 0
  for (int64_t u = 1; u <= sliver; ++u)
    if (u * taps % sliver == 0) {
      unit = u;
      break;
    }
  return std::min(g.C, std::max<int64_t>(unit, 96 / taps / unit * unit));
}

// The rows of col [K,P] for channels [c0, c1) (row stride ldc =
// col_stride(P), first row (c0,0,0)): row (c,i,j) holds
// x[c, oh*stride_h + i*dil_h - pad_h, ow*stride_w + j*dil_w - pad_w] for
// every output position (oh,ow), zero where that lands in the padding.
// Columns [P, ldc) are zeroed: the GEMM kernel reads whole vectors.
void im2col(const float* x, const Geometry& g, int64_t c0, int64_t c1, float* col, int64_t ldc) {
  const float* x_end = x + g.C * g.H * g.W;
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        float* row = col + (((c - c0) * g.kh + i) * g.kw + j) * ldc;
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
          for (int64_t ow = 0; ow < w_lo; ++ow) dst[ow] = 0.f;
          if (g.stride_w == 1) {
            // Whole-vector stores: the slack after this run is rewritten next.
            // Whole-vector loads too while they stay inside the image
            // (masked loads are slower).
            const float* from = src + w_lo + off_w;
            if (from + gemm_round_up(w_hi - w_lo, 16) <= x_end)
              copy_floats_wide(dst + w_lo, from, w_hi - w_lo);
            else
              copy_floats_overrun(dst + w_lo, from, w_hi - w_lo);
          } else {
            for (int64_t ow = w_lo; ow < w_hi; ++ow) dst[ow] = src[ow * g.stride_w + off_w];
          }
          for (int64_t ow = w_hi; ow < g.Wo; ++ow) dst[ow] = 0.f;
        }
        std::fill(row + g.P(), row + ldc, 0.f);
      }
}

#if defined(__AVX512F__)
// im2col for stride_w == 1 as whole 16-float vectors of each column row,
// each gathered from the (at most a few) input rows its output positions
// fall in by masked loads, and stored aligned: no partial or overlapping
// stores. Which lanes come from where depends only on the tap (i,j) and the
// vector, not on the channel or image, so it is tabulated once per call:
// segment s of (tap, vector v) loads the lanes in mask[s] from
// plane + offset[s] (lane l from plane[offset + l]); lanes in no segment
// (padding, or positions >= P) are zero.
struct Im2colPlan {
  int64_t vectors = 0;                   // ceil(P / 16) per row
  std::vector<int32_t> first;            // [tap * vectors + v] -> first segment; one more at the end
  std::vector<int64_t> offset;           // per segment
  std::vector<__mmask16> mask;           // per segment
};

Im2colPlan plan_im2col(const Geometry& g) {
  Im2colPlan plan;
  const int64_t P = g.P();
  plan.vectors = (P + 15) / 16;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j)
      for (int64_t v = 0; v < plan.vectors; ++v) {
        plan.first.push_back(static_cast<int32_t>(plan.offset.size()));
        int64_t last_oh = -1;
        for (int64_t l = 0; l < 16; ++l) {
          const int64_t p = 16 * v + l;
          if (p >= P) break;
          const int64_t oh = p / g.Wo, ow = p % g.Wo;
          const int64_t ih = oh * g.stride_h + i * g.dil_h - g.pad_h, iw = ow + j * g.dil_w - g.pad_w;
          if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
          if (oh != last_oh) {  // a new input row: lane l reads plane[ih*W + iw]
            plan.offset.push_back(ih * g.W + iw - l);
            plan.mask.push_back(0);
            last_oh = oh;
          }
          plan.mask.back() = static_cast<__mmask16>(plan.mask.back() | (1u << l));
        }
      }
  plan.first.push_back(static_cast<int32_t>(plan.offset.size()));
  return plan;
}

void im2col_planned(const float* x, const Geometry& g, const Im2colPlan& plan, int64_t c0, int64_t c1, float* col,
                    int64_t ldc) {
  const int64_t taps = g.kh * g.kw;
  for (int64_t c = c0; c < c1; ++c) {
    const float* plane = x + c * g.H * g.W;
    for (int64_t tap = 0; tap < taps; ++tap) {
      float* row = col + ((c - c0) * taps + tap) * ldc;
      const int32_t* first = plan.first.data() + tap * plan.vectors;
      for (int64_t v = 0; v < plan.vectors; ++v) {
        __m512 acc = _mm512_setzero_ps();
        for (int32_t s = first[v]; s < first[v + 1]; ++s)
          acc = _mm512_mask_loadu_ps(acc, plan.mask[s], plane + plan.offset[s]);
        _mm512_store_ps(row + 16 * v, acc);
      }
    }
  }
}
#endif

// im2col by the plan when there is one (AVX-512 and stride 1 along W).
struct Columns {
#if defined(__AVX512F__)
  bool planned = false;
  Im2colPlan plan;
#endif
  explicit Columns(const Geometry& g) {
#if defined(__AVX512F__)
    planned = g.stride_w == 1;
    if (planned) plan = plan_im2col(g);
#else
    (void)g;
#endif
  }
  void operator()(const float* x, const Geometry& g, int64_t c0, int64_t c1, float* col, int64_t ldc) const {
#if defined(__AVX512F__)
    if (planned) return im2col_planned(x, g, plan, c0, c1, col, ldc);
#endif
    im2col(x, g, c0, c1, col, ldc);
  }
};

#if defined(__AVX512F__)
// col2im for stride_w == 1, gathered per row of dx: the kh*kw contributions
// to 16 elements of row ih are summed in a register (masked loads of the
// dcol rows, shifted by each tap's offset), then added to dx once. Each dx
// element is written once per call: no store is reloaded (scattering each
// dcol row in turn would stall on store forwarding). Which dcol elements
// feed which 16 elements depends only on (ih, block of 16, tap), not on the
// channel or image, so it is tabulated once per call: term s of (ih, block
// b) adds the lanes in mask[s] of the dcol rows of one channel at
// offset[s]; a block with no terms is left alone.
struct Col2imPlan {
  int64_t blocks = 0;           // ceil(W / 16) per row of dx
  std::vector<int32_t> first;   // [ih * blocks + b] -> first term; one more at the end
  std::vector<int64_t> offset;  // per term
  std::vector<__mmask16> mask;  // per term
};

Col2imPlan plan_col2im(const Geometry& g, int64_t ldc) {
  Col2imPlan plan;
  plan.blocks = (g.W + 15) / 16;
  for (int64_t ih = 0; ih < g.H; ++ih)
    for (int64_t w0 = 0; w0 < g.W; w0 += 16) {
      plan.first.push_back(static_cast<int32_t>(plan.offset.size()));
      const int64_t wn = std::min<int64_t>(16, g.W - w0);
      for (int64_t i = 0; i < g.kh; ++i) {
        // oh*stride_h + i*dil_h - pad_h == ih
        const int64_t t = ih - i * g.dil_h + g.pad_h;
        if (t < 0 || t % g.stride_h != 0 || t / g.stride_h >= g.Ho) continue;
        const int64_t oh = t / g.stride_h;
        for (int64_t j = 0; j < g.kw; ++j) {
          // ow = iw - off_w for iw in [w0, w0 + wn), kept where 0 <= ow < Wo.
          const int64_t off_w = j * g.dil_w - g.pad_w;
          const int64_t lo = std::max<int64_t>(0, off_w - w0), hi = std::min<int64_t>(wn, g.Wo + off_w - w0);
          if (hi <= lo) continue;
          plan.mask.push_back(static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1)));
          plan.offset.push_back((i * g.kw + j) * ldc + oh * g.Wo + (w0 - off_w));
        }
      }
    }
  plan.first.push_back(static_cast<int32_t>(plan.offset.size()));
  return plan;
}

void col2im_planned(const float* dcol, int64_t ldc, const Geometry& g, const Col2imPlan& plan, int64_t c0,
                    int64_t c1, float* dx) {
  const int64_t taps = g.kh * g.kw;
  for (int64_t c = c0; c < c1; ++c) {
    const float* rows = dcol + (c - c0) * taps * ldc;
    const int32_t* first = plan.first.data();
    for (int64_t ih = 0; ih < g.H; ++ih) {
      float* dst = dx + (c * g.H + ih) * g.W;
      for (int64_t b = 0; b < plan.blocks; ++b, ++first) {
        if (first[0] == first[1]) continue;
        __m512 acc = _mm512_setzero_ps();
        // Lanes outside a mask are neither read nor faulted on.
        for (int32_t s = first[0]; s < first[1]; ++s)
          acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(plan.mask[s], rows + plan.offset[s]));
        const int64_t w0 = 16 * b, wn = std::min<int64_t>(16, g.W - w0);
        const __mmask16 mw = static_cast<__mmask16>((1u << wn) - 1);
        _mm512_mask_storeu_ps(dst + w0, mw, _mm512_add_ps(_mm512_maskz_loadu_ps(mw, dst + w0), acc));
      }
    }
  }
}
#endif

// The adjoint of im2col without a plan, for channels [c0, c1): each dcol
// row (first row (c0,0,0)) added in turn to the dx elements im2col read it from.
void col2im(const float* dcol, int64_t ldc, const Geometry& g, int64_t c0, int64_t c1, float* dx) {
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const float* row = dcol + (((c - c0) * g.kh + i) * g.kw + j) * ldc;
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

// The adjoint of im2col, for channels [c0, c1): dx[c,ih,iw] += every entry
// of the dcol rows (first row (c0,0,0)) that im2col read from it. Planned
// (above) with AVX-512 and stride 1 along W.
struct Col2im {
#if defined(__AVX512F__)
  bool planned = false;
  Col2imPlan plan;
#endif
  Col2im(const Geometry& g, int64_t ldc) {
#if defined(__AVX512F__)
    planned = g.stride_w == 1 && g.H > 0;
    if (planned) plan = plan_col2im(g, ldc);
#else
    (void)g;
    (void)ldc;
#endif
  }
  void operator()(const float* dcol, int64_t ldc, const Geometry& g, int64_t c0, int64_t c1, float* dx) const {
#if defined(__AVX512F__)
    if (planned) return col2im_planned(dcol, ldc, g, plan, c0, c1, dx);
#endif
    col2im(dcol, ldc, g, c0, c1, dx);
  }
};

// Copies src [rows x cols] into dst with row stride ld >= cols + 16, zeroing
// columns [cols, ld): a B operand the GEMM kernel may read whole vectors of.
void copy_padded(const float* src, int64_t rows, int64_t cols, float* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    copy_floats_overrun(dst + r * ld, src + r * cols, cols);
    std::fill(dst + r * ld + cols, dst + (r + 1) * ld, 0.f);
  }
}

// sum of n floats, in a fixed order.
float sum_floats(const float* p, int64_t n) {
  constexpr int kLanes = 16;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += p[i + l];
  float s = 0.f;
  for (; i < n; ++i) s += p[i];
  for (int l = 0; l < kLanes; ++l) s += lanes[l];
  return s;
}

// dweight for a few column rows (small K = C*kh*kw, e.g. a first layer on 1
// or 3 channels), as dot products along the positions:
//   out[r*ldo + o] (+)= sum_p g[o*P + p] * col[r*ldc + p],  r < rows, o < O.
// The GEMM kernel would pad K to 8-row slivers and O to 16-float vectors
// (9 x 32 fills 56% of a 16 x 32 tile) and needs dout and col transposed;
// here every lane of every FMA is used. Rows go kDotRows at a time, positions
// kDotSpan at a time (that block of col stays in L1 while every o passes
// over it); the per-lane partial sums wait in acc (O * kDotRows vectors) and
// are added across lanes at the end. col must be readable for a multiple of
// kDotRows rows (the caller zeroes the extra ones).
constexpr int64_t kDotRows = 12, kDotSpan = 256;
void dot_dweight(const float* g, int64_t O, int64_t P, const float* col, int64_t ldc, int64_t rows, float* acc,
                 float* out, int64_t ldo, bool accumulate) {
  for (int64_t r0 = 0; r0 < rows; r0 += kDotRows) {
    const int64_t nr = std::min(kDotRows, rows - r0);
    std::fill(acc, acc + O * kDotRows * 16, 0.f);
    for (int64_t p0 = 0; p0 < P; p0 += kDotSpan) {
      const int64_t p1 = std::min(P, p0 + kDotSpan);
      for (int64_t o = 0; o < O; ++o) {
        float* ao = acc + o * kDotRows * 16;
        const float* go = g + o * P;
#if defined(__AVX512F__)
        __m512 a[kDotRows];
        for (int r = 0; r < kDotRows; ++r) a[r] = _mm512_loadu_ps(ao + 16 * r);
        for (int64_t p = p0; p < p1; p += 16) {
          const __mmask16 mask = p1 - p >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (p1 - p)) - 1);
          const __m512 gv = _mm512_maskz_loadu_ps(mask, go + p);
          for (int r = 0; r < kDotRows; ++r)
            a[r] = _mm512_fmadd_ps(gv, _mm512_maskz_loadu_ps(mask, col + (r0 + r) * ldc + p), a[r]);
        }
        for (int r = 0; r < kDotRows; ++r) _mm512_storeu_ps(ao + 16 * r, a[r]);
#else
        for (int r = 0; r < kDotRows; ++r)
          for (int64_t p = p0; p < p1; ++p) ao[16 * r + (p - p0) % 16] += go[p] * col[(r0 + r) * ldc + p];
#endif
      }
    }
    for (int64_t o = 0; o < O; ++o)
      for (int64_t r = 0; r < nr; ++r) {
        const float* lanes = acc + (o * kDotRows + r) * 16;
        float sum = 0.f;
        for (int l = 0; l < 16; ++l) sum += lanes[l];
        float& dst = out[(r0 + r) * ldo + o];
        dst = accumulate ? dst + sum : sum;
      }
  }
}

// Threads for a loop over n images costing `flops` in all: one when small.
int batch_threads(int64_t n, int64_t flops) {
  if (n < 2 || flops < (int64_t{1} << 18)) return 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), n)));
}

// Channels per block when the column rows are gathered straight into the
// packed panel: there are no fp32 rows to keep in cache, so the whole
// reduction goes in one block (the kernel's accumulators are stored once,
// with the bias, not reloaded per block) up to 1024 rows, as the GEMM's
// k blocks; measured on the reference CNN's conv2 and a CIFAR conv, one
// block of 288 rows runs 15-20% faster than blocks of ~96.
int64_t gather_block(const Geometry& g, int64_t cb) {
  constexpr int64_t kMaxRows = 1024;
  return std::min(g.C, std::max<int64_t>(1, kMaxRows / (g.kh * g.kw) / cb) * cb);
}

// The bf16 gather plan of a convolution (empty where none fits).
std::vector<detail::Bf16Gather> gather_plan(const Geometry& g) {
  return detail::bf16_gather_plan(
      {g.H, g.W, g.kh, g.kw, g.Ho, g.Wo, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dil_h, g.dil_w});
}

// The batch is cut into chunks that depend only on n (at most 16, of whole
// images); the chunks are handed to the threads as they come free. Which
// thread runs a chunk therefore varies, but every sum over images is formed
// per chunk and the chunks' sums are added in chunk order: results are
// bit-identical run to run and for any number of threads. Handing chunks out
// dynamically keeps both cores busy when one of them is taken by another
// process for a while (a static split would wait for it).
constexpr int64_t kMaxChunks = 16;
int64_t chunk_count(int64_t n) { return std::min(n, kMaxChunks); }
int64_t chunk_begin(int64_t n, int64_t chunk) { return n * chunk / chunk_count(n); }

// Runs fn(chunk, n0, n1) for every chunk [n0, n1) of n images on `threads` threads.
template <class Fn>
void for_image_chunks(int threads, int64_t n, Fn fn) {
  const int64_t chunks = chunk_count(n);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(dynamic, 1)
  for (int64_t ch = 0; ch < chunks; ++ch) fn(ch, chunk_begin(n, ch), chunk_begin(n, ch + 1));
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  const Geometry g = geometry(x, weight, bias, options);
  const int64_t K = g.K(), P = g.P(), O = g.O, taps = g.kh * g.kw;
  // A 1x1 convolution reads the image as its column matrix when its rows are
  // already padded for the kernel; otherwise columns are built in blocks of
  // channels.
  const bool direct = g.direct() && P % kGemmPad == 0;
  const int64_t ldp = direct ? P : col_stride(P), cb = direct ? g.C : channel_block(g);
  Tensor out = Tensor::empty({g.N, O, g.Ho, g.Wo});
  const float* px = x.data();
  const float* pb = bias.defined() ? bias.data() : nullptr;
  float* py = out.data();
  const bool bf16 = detail::product_precision() == Precision::BF16;
  // bf16 packs its column rows straight from the image where a plan fits.
  const std::vector<detail::Bf16Gather> plan = bf16 && !direct ? gather_plan(g) : std::vector<detail::Bf16Gather>{};
  const Columns columns(direct || !plan.empty() ? Geometry{} : g);
  if (bf16) {
    // The same loop on the bf16 kernel: weight [O,K] packed once as A, each
    // block of column rows packed as B (gathered from the image, or built
    // by im2col then packed). Blocks start at an even row (a multiple of
    // kGemmMR), i.e. on a pair of the packed weight.
    const detail::Bf16Kernel& kern = detail::bf16_kernel();
    const int64_t kpK = bf16_pairs(K);
    uint32_t* wq = scratch_as<uint32_t>(detail::kScratchShared, bf16_packed_size(K, O, kBf16MR));
    bf16_pack(weight.data(), K, true, K, O, kBf16MR, wq);
    const int64_t bcb = plan.empty() ? cb : gather_block(g, cb);  // channels per block of this product
    for_image_chunks(batch_threads(g.N, 2 * g.N * O * K * P), g.N, [&](int64_t, int64_t n0, int64_t n1) {
      float* col = direct || !plan.empty() ? nullptr : scratch(detail::kScratchCol, bcb * taps * ldp);
      uint32_t* bq = scratch_as<uint32_t>(detail::kScratchPackB, bf16_packed_size(bcb * taps, P, kBf16NR));
      for (int64_t n = n0; n < n1; ++n) {
        const float* xn = px + n * g.C * g.H * g.W;
        float* yn = py + n * O * P;
        for (int64_t c0 = 0; c0 < g.C; c0 += bcb) {
          const int64_t c1 = std::min(g.C, c0 + bcb), r0 = c0 * taps, rows = (c1 - c0) * taps;
          if (!plan.empty())
            kern.gather_b({xn, g.H * g.W, taps, P, plan.data()}, r0, rows, bq);
          else if (direct)
            bf16_pack(xn + r0 * P, ldp, false, rows, P, kBf16NR, bq);
          else {
            columns(xn, g, c0, c1, col, ldp);
            bf16_pack(col, ldp, false, rows, P, kBf16NR, bq);
          }
          const int64_t kp = bf16_pairs(rows);
          kern.macro(O, P, kp, wq + r0 / 2 * kBf16MR, kpK * kBf16MR, bq, kp * kBf16NR, yn, P, c0 > 0, pb);
        }
      }
    });
  } else {
  float* wp = scratch(detail::kScratchShared, detail::gemm_packed_a_size(O, K));
  detail::gemm_pack_a(weight.data(), K, false, O, K, wp);
  for_image_chunks(batch_threads(g.N, 2 * g.N * O * K * P), g.N, [&](int64_t, int64_t n0, int64_t n1) {
    float* col = direct ? nullptr : scratch(detail::kScratchCol, cb * taps * ldp);
    for (int64_t n = n0; n < n1; ++n) {
      const float* xn = px + n * g.C * g.H * g.W;
      float* yn = py + n * O * P;
      // out[n] = bias + sum over channel blocks of weight[:, block] * col[block]
      for (int64_t c0 = 0; c0 < g.C; c0 += cb) {
        const int64_t c1 = std::min(g.C, c0 + cb), r0 = c0 * taps, rows = (c1 - c0) * taps;
        const float* b = direct ? xn : col;
        if (!direct) columns(xn, g, c0, c1, col, ldp);
        detail::gemm_block(O, P, rows, wp + r0 * detail::kGemmMR, K * detail::kGemmMR, b, ldp, yn, P, c0 > 0,
                           pb);
      }
    }
  });
  }

  autograd::record("conv2d", out, {x, weight, bias}, [xs = x.detach(), ws = weight.detach(), g, direct, ldp, cb](
                                                         const Tensor& dout, std::vector<Tensor>& d) {
    const int64_t K = g.K(), P = g.P(), O = g.O, taps = g.kh * g.kw;
    constexpr int64_t MR = detail::kGemmMR;
    const int64_t ldo = gemm_round_up(O, kGemmPad);
    const float* px = xs.data();
    const float* pg = dout.data();
    float* dx = d[0].defined() ? d[0].data() : nullptr;
    float* dweight = d[1].defined() ? d[1].data() : nullptr;
    float* dbias = d[2].defined() ? d[2].data() : nullptr;
    const int64_t gemms = (dx ? 1 : 0) + (dweight ? 1 : 0);
    const int threads = batch_threads(g.N, 2 * std::max<int64_t>(gemms, 1) * g.N * O * K * P);

    // weight^T packed once, for dcol = weight^T dout[n].
    // Under BF16, weight^T [K,O] packed to bf16 pairs instead (pairs run
    // down weight's rows, over O).
    const bool bf16 = detail::product_precision() == Precision::BF16;
    const detail::Bf16Kernel* kern = bf16 ? &detail::bf16_kernel() : nullptr;
    const int64_t kpO = bf16_pairs(O), kpP = bf16_pairs(P);
    float* wtp = nullptr;
    uint32_t* wtq = nullptr;
    if (dx && bf16) {
      wtq = scratch_as<uint32_t>(detail::kScratchShared, bf16_packed_size(O, K, kBf16MR));
      bf16_pack(ws.data(), K, false, O, K, kBf16MR, wtq);
    } else if (dx) {
      wtp = scratch(detail::kScratchShared, detail::gemm_packed_a_size(K, O));
      detail::gemm_pack_a(ws.data(), K, true, K, O, wtp);
    }
    // Each chunk of images sums dweight^T [K,O] in its own buffer (its first
    // image overwrites it; under BF16 dweight [O,K] itself, see below) and
    // dbias in doubles; the chunks' sums are added to the gradients in chunk
    // order below.
    const int64_t chunks = chunk_count(g.N);
    float* dwt = dweight ? scratch(detail::kScratchShared2, chunks * K * ldo) : nullptr;
    std::vector<double> bias_sums(dbias ? static_cast<size_t>(chunks * O) : 0, 0.0);
    // bf16 packs dweight's column rows straight from the image where a plan fits.
    const std::vector<detail::Bf16Gather> plan =
        dweight && bf16 && !direct && K > 32 ? gather_plan(g) : std::vector<detail::Bf16Gather>{};
    const Columns columns(dweight && !direct && plan.empty() ? g : Geometry{});
    const int64_t wcb = plan.empty() ? cb : gather_block(g, cb);  // channels per block of the bf16 dweight product
    const Col2im col2im(dx && !direct ? g : Geometry{}, ldp);

    // A first layer's few column rows (K <= 32) take the dot-product path,
    // with the whole of col built at once.
    const bool dot = dweight && !direct && K <= 32;
    const bool dw_by_o = dweight && bf16 && !dot;  // the chunks' sums are [O,K]
    const int64_t col_rows = dot ? std::max(cb * taps, gemm_round_up(K, kDotRows)) : cb * taps;
    for_image_chunks(threads, g.N, [&](int64_t ch, int64_t n0, int64_t n1) {
      const bool cols = (dx || (dweight && plan.empty())) && !direct;
      float* col = cols ? scratch(detail::kScratchCol, col_rows * ldp) : nullptr;
      float* gpad = dx && !direct && !bf16 ? scratch(detail::kScratchTmp, O * ldp) : nullptr;
      float* gt = dweight && !dot && !bf16 ? scratch(detail::kScratchTmp2, P * ldo) : nullptr;
      float* dacc = dot ? scratch(detail::kScratchTmp2, O * kDotRows * 16) : nullptr;
      float* sliver = dweight && !dot && !bf16 ? scratch(detail::kScratchTmp3, P * MR) : nullptr;
      // bf16: dout[n] packed as B of the dx product (pairs over O) and as A
      // of the dweight product (pairs over P); col blocks as B (col^T).
      // (Packed words take the fp32 slots the bf16 path leaves free.)
      uint32_t* gq =
          dx && bf16 ? scratch_as<uint32_t>(detail::kScratchPackB, bf16_packed_size(O, P, kBf16NR)) : nullptr;
      uint32_t* gaq =
          dw_by_o ? scratch_as<uint32_t>(detail::kScratchPackA, bf16_packed_size(P, O, kBf16MR)) : nullptr;
      uint32_t* cq =
          dw_by_o ? scratch_as<uint32_t>(detail::kScratchTmp, bf16_packed_size(P, wcb * taps, kBf16NR)) : nullptr;
      float* dwt_ch = dweight ? dwt + ch * K * ldo : nullptr;
      if (gt && ldo != O)
        for (int64_t p = 0; p < P; ++p) std::fill(gt + p * ldo + O, gt + (p + 1) * ldo, 0.f);
      if (dot) std::fill(col + K * ldp, col + col_rows * ldp, 0.f);  // rows the dot kernel reads past K
      for (int64_t n = n0; n < n1; ++n) {
        const float* xn = px + n * g.C * g.H * g.W;
        const float* gn = pg + n * O * P;
        if (dbias)
          for (int64_t o = 0; o < O; ++o) bias_sums[ch * O + o] += sum_floats(gn + o * P, P);
        if (dweight && dot) {
          // Few rows: dot products straight from dout[n] and col.
          columns(xn, g, 0, g.C, col, ldp);
          dot_dweight(gn, O, P, col, ldp, K, dacc, dwt_ch, ldo, n > n0);
        } else if (dweight && bf16) {
          // dweight [O,K] += dout[n] [O,P] * col^T [P,K] on the bf16 kernel,
          // a block of channels (columns of dweight) at a time. This way
          // round O fills kBf16MR-row slivers and K = C*kh*kw 48-wide panels
          // (the other way, O = 16 or 64 leaves a third of a panel's
          // columns idle), and dout[n] is packed once, along its rows.
          bf16_pack(gn, P, true, P, O, kBf16MR, gaq);
          for (int64_t c0 = 0; c0 < g.C; c0 += wcb) {
            const int64_t c1 = std::min(g.C, c0 + wcb), r0 = c0 * taps, rows = (c1 - c0) * taps;
            if (!plan.empty()) {
              kern->gather_t({xn, g.H * g.W, taps, P, plan.data()}, r0, rows, cq, kBf16NR);
            } else {
              if (!direct) columns(xn, g, c0, c1, col, ldp);
              bf16_pack(direct ? xn + r0 * P : col, direct ? P : ldp, true, P, rows, kBf16NR, cq);
            }
            kern->macro(O, rows, kpP, gaq, kpP * kBf16MR, cq, kpP * kBf16NR, dwt_ch + r0, K, n > n0, nullptr);
          }
        } else if (dweight) {
          // dweight^T [K,O] += col [K,P] * dout[n]^T [P,O], one sliver of
          // kGemmMR column rows at a time: the rows are built, transposed
          // into the kernel's layout and used while they are in L1.
          detail::transpose(gn, P, O, P, gt, ldo);
          for (int64_t c0 = 0; c0 < g.C; c0 += cb) {
            const int64_t c1 = std::min(g.C, c0 + cb), r0 = c0 * taps, rows = (c1 - c0) * taps;
            const float* cn = direct ? xn + r0 * P : col;
            if (!direct) columns(xn, g, c0, c1, col, ldp);
            for (int64_t s = 0; s < rows; s += MR) {
              const int64_t m = std::min(MR, rows - s);
              if (m < MR) std::fill(sliver, sliver + P * MR, 0.f);
              detail::transpose(cn + s * ldp, ldp, m, P, sliver, MR);
              detail::gemm_block(m, O, P, sliver, 0, gt, ldo, dwt_ch + (r0 + s) * ldo, ldo, n > n0);
            }
          }
        }
        if (dx) {
          // dcol [K,P] = weight^T [K,O] * dout[n] [O,P], a block of channels
          // at a time, each scattered into dx by col2im while in cache.
          float* dxn = dx + n * g.C * g.H * g.W;
          if (bf16) {
            bf16_pack(gn, P, false, O, P, kBf16NR, gq);
            if (direct) {
              kern->macro(K, P, kpO, wtq, kpO * kBf16MR, gq, kpO * kBf16NR, dxn, P, true, nullptr);
            } else {
              for (int64_t c0 = 0; c0 < g.C; c0 += cb) {
                const int64_t c1 = std::min(g.C, c0 + cb), r0 = c0 * taps, rows = (c1 - c0) * taps;
                kern->macro(rows, P, kpO, wtq + r0 / kBf16MR * kpO * kBf16MR, kpO * kBf16MR, gq, kpO * kBf16NR, col,
                            ldp, false, nullptr);
                col2im(col, ldp, g, c0, c1, dxn);
              }
            }
          } else if (direct) {
            detail::gemm_block(K, P, O, wtp, O * MR, gn, P, dxn, P, true);
          } else {
            copy_padded(gn, O, P, gpad, ldp);
            for (int64_t c0 = 0; c0 < g.C; c0 += cb) {
              const int64_t c1 = std::min(g.C, c0 + cb), r0 = c0 * taps, rows = (c1 - c0) * taps;
              detail::gemm_block(rows, P, O, wtp + r0 * O, O * MR, gpad, ldp, col, ldp, false);
              col2im(col, ldp, g, c0, c1, dxn);
            }
          }
        }
      }
    });
    if (dw_by_o) {
      // dweight += the chunks' dweight [O,K], in chunk order.
#pragma omp parallel for num_threads(threads) if (threads > 1 && chunks * K * O > (1 << 16)) schedule(static)
      for (int64_t i0 = 0; i0 < O * K; i0 += 256) {
        const int64_t len = std::min<int64_t>(256, O * K - i0);
        float sums[256];
        std::copy(dweight + i0, dweight + i0 + len, sums);
        for (int64_t ch = 0; ch < chunks; ++ch) {
          const float* part = dwt + ch * K * ldo + i0;
          for (int64_t i = 0; i < len; ++i) sums[i] += part[i];
        }
        std::copy(sums, sums + len, dweight + i0);
      }
    } else if (dweight) {
      // dweight[o,r] += the chunks' dweight^T[r,o], in chunk order, rows r
      // split over the threads.
#pragma omp parallel for num_threads(threads) if (threads > 1 && chunks * K * O > (1 << 16)) schedule(static)
      for (int64_t r = 0; r < K; ++r) {
        float sums[256];
        for (int64_t o0 = 0; o0 < O; o0 += 256) {
          const int64_t on = std::min<int64_t>(256, O - o0);
          for (int64_t o = 0; o < on; ++o) sums[o] = dweight[(o0 + o) * K + r];
          for (int64_t ch = 0; ch < chunks; ++ch) {
            const float* part = dwt + ch * K * ldo + r * ldo + o0;
            for (int64_t o = 0; o < on; ++o) sums[o] += part[o];
          }
          for (int64_t o = 0; o < on; ++o) dweight[(o0 + o) * K + r] = sums[o];
        }
      }
    }
    if (dbias)
      for (int64_t o = 0; o < O; ++o) {
        double acc = 0.0;
        for (int64_t ch = 0; ch < chunks; ++ch) acc += bias_sums[ch * O + o];
        dbias[o] += static_cast<float>(acc);
      }
  });
  return out;
}

}  // namespace maas
