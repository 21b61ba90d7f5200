// Quantized convolution and dense products on the int8 GEMM (see int8_ops.hpp).
#include "ops/lowp/int8_ops.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/internal.hpp"
#include "maas/error.hpp"

namespace maas::detail {

namespace {

int8_t weight_code(float v, const char* who) {
  MAAS_CHECK(v >= -127.f && v <= 127.f && v == std::nearbyint(v),
             who << ": a quantized kernel value " << v << " is not an integer in [-127, 127]");
  return static_cast<int8_t>(v);
}

// The scales, offsets and input quantization of a layer whose weights (and
// their per-output sums) are set.
void finish(Int8Layer& L, const std::vector<int32_t>& sums, const float* kernel_scale, const float* bias,
            float input_scale, int32_t zero_point, bool relu, const char* who) {
  MAAS_CHECK(std::isfinite(input_scale) && input_scale > 0.f,
             who << ": the input scale " << input_scale << " must be finite and positive");
  MAAS_CHECK(zero_point >= 0 && zero_point <= 255, who << ": the input zero point " << zero_point
                                                       << " is outside [0, 255]");
  L.inv_input_scale = 1.f / input_scale;
  L.zero_point = zero_point;
  L.relu = relu;
  L.scale.resize(static_cast<size_t>(L.out));
  L.offset.resize(static_cast<size_t>(L.out));
  for (int64_t o = 0; o < L.out; ++o) {
    const float ks = kernel_scale[o];
    MAAS_CHECK(std::isfinite(ks) && ks > 0.f, who << ": kernel_scale[" << o << "] = " << ks
                                                  << " must be finite and positive");
    const float s = input_scale * ks;
    L.scale[static_cast<size_t>(o)] = s;
    L.offset[static_cast<size_t>(o)] =
        (bias != nullptr ? bias[o] : 0.f) -
        s * static_cast<float>(static_cast<int64_t>(zero_point) * sums[static_cast<size_t>(o)]);
  }
}

// quantize_u8 over a contiguous run: a plain loop, so that the compiler
// vectorizes it (the same operations per lane: bit-identical results).
// Not inlined: inlined into a caller with short runs, the compiler ran
// only the loop's scalar tail.
__attribute__((noinline)) void quantize_row(const float* __restrict src, int64_t n, float inv_scale, int32_t zero_point,
                  uint8_t* __restrict dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = quantize_u8(src[i], inv_scale, zero_point);
}

// A per-thread buffer of at least n bytes, kept between calls.
template <class T>
T* buffer(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

Int8Layer int8_conv_layer(const float* kernel_q, int64_t O, int64_t C, int64_t kh, int64_t kw,
                          const float* kernel_scale, const float* bias, float input_scale, int32_t zero_point,
                          bool relu) {
  Int8Layer L;
  L.k = checked_mul(checked_mul(C, kh, "quantized conv2d"), kw, "quantized conv2d");
  L.out = O;
  MAAS_CHECK(L.k <= kInt8MaxK, "QuantizedConv2D: the reduction length " << L.k << " exceeds " << kInt8MaxK);
  const int64_t Kp = int8_round_up(L.k, 4);
  L.w.assign(static_cast<size_t>(checked_mul(O, Kp, "quantized conv2d")), 0);
  std::vector<int32_t> sums(static_cast<size_t>(O), 0);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          const int8_t v = weight_code(kernel_q[((o * C + c) * kh + i) * kw + j], "QuantizedConv2D");
          L.w[static_cast<size_t>(o * Kp + (i * kw + j) * C + c)] = v;
          sums[static_cast<size_t>(o)] += v;
        }
  finish(L, sums, kernel_scale, bias, input_scale, zero_point, relu, "QuantizedConv2D");
  return L;
}

Int8Layer int8_dense_layer(const float* kernel_q, int64_t K, int64_t O, const float* kernel_scale, const float* bias,
                           float input_scale, int32_t zero_point, bool relu) {
  std::vector<int8_t> b(static_cast<size_t>(checked_mul(K, O, "quantized dense")));
  for (size_t i = 0; i < b.size(); ++i) b[i] = weight_code(kernel_q[i], "QuantizedDense");
  Int8Layer L;
  L.k = K, L.out = O;
  L.b = int8_pack_b(b.data(), K, O, O, 1);
  finish(L, L.b.col_sums, kernel_scale, bias, input_scale, zero_point, relu, "QuantizedDense");
  return L;
}

Tensor int8_conv2d(const Tensor& x, const Int8Layer& L, const Int8ConvGeometry& g) {
  MAAS_CHECK(x.dim() == 4 && x.size(1) == g.C, "quantized conv2d: input " << to_string(x.shape()) << " must be [N, "
                                                                          << g.C << ", H, W]");
  const int64_t N = x.size(0), C = g.C, H = x.size(2), W = x.size(3), O = L.out;
  const int64_t Hp = H + g.pad_top + g.pad_bottom, Wp = W + g.pad_left + g.pad_right;
  const int64_t span_h = g.dil_h * (g.kh - 1) + 1, span_w = g.dil_w * (g.kw - 1) + 1;
  MAAS_CHECK(Hp >= span_h && Wp >= span_w, "quantized conv2d: input " << to_string(x.shape())
                                                                      << " is smaller than the kernel");
  const int64_t Ho = (Hp - span_h) / g.stride_h + 1, Wo = (Wp - span_w) / g.stride_w + 1, P = Ho * Wo;
  const int64_t K = L.k, Kp = int8_round_up(K, 4), k4 = Kp / 4;
  checked_mul(checked_mul(N, O, "quantized conv2d: output"), P, "quantized conv2d: output");
  Tensor y = Tensor::empty({N, O, Ho, Wo});
  const float* xd = x.data();
  float* yd = y.data();
  const uint8_t zp = static_cast<uint8_t>(L.zero_point);
  // The image is quantized into padded CHW planes of bytes (the padding
  // holds the zero point). Byte offsets in it: of each output position's
  // window corner, and of each k = (i, j, c) from a corner (k >= K: 0, any
  // byte will do, its weight is zero).
  const int64_t plane = Hp * Wp;
  // And, per position, how many positions are left in its output row.
  std::vector<int64_t> pos(static_cast<size_t>(P)), row_left(static_cast<size_t>(P)), koff(static_cast<size_t>(Kp), 0);
  for (int64_t oh = 0; oh < Ho; ++oh)
    for (int64_t ow = 0; ow < Wo; ++ow) {
      pos[static_cast<size_t>(oh * Wo + ow)] = oh * g.stride_h * Wp + ow * g.stride_w;
      row_left[static_cast<size_t>(oh * Wo + ow)] = Wo - ow;
    }
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j)
      for (int64_t c = 0; c < C; ++c)
        koff[static_cast<size_t>((i * g.kw + j) * C + c)] = c * plane + i * g.dil_h * Wp + j * g.dil_w;
  const int64_t panels = (P + kInt8NR - 1) / kInt8NR;
  // Vector loads read up to 15 bytes past a run of the image, and the
  // column stores write up to 63 past a panel's group: slack for both.
  const int64_t image_bytes = C * plane + 16, col_bytes = int8_packed_bytes(K, P) + 64;

  auto image = [&](int64_t n, int gemm_threads) {
    thread_local std::vector<uint8_t> xq_buf, col_buf;
    uint8_t* xq = buffer(xq_buf, image_bytes);
    uint8_t* col = buffer(col_buf, col_bytes);
    std::memset(xq, zp, static_cast<size_t>(image_bytes));
    // One vectorized pass over the whole image, then rows copied into the
    // padded planes. (A per-byte loop into NHWC cost as much as the int8
    // product; a pass per row of 13 bytes ran the loop's scalar tail.)
    thread_local std::vector<uint8_t> q_buf;
    uint8_t* q = buffer(q_buf, C * H * W);
    quantize_row(xd + n * C * H * W, C * H * W, L.inv_input_scale, L.zero_point, q);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        std::memcpy(xq + c * plane + (h + g.pad_top) * Wp + g.pad_left, q + (c * H + h) * W, static_cast<size_t>(W));
    // The columns, packed: panel of 64 positions, group of 4 k, position,
    // k % 4. Columns past P hold whatever is written there: their outputs
    // are not stored.
    for (int64_t panel = 0; panel < panels; ++panel) {
      const int64_t p0 = panel * kInt8NR, np = std::min(kInt8NR, P - p0);
      for (int64_t grp = 0; grp < k4; ++grp) {
        uint8_t* dst = col + (panel * k4 + grp) * kInt8NR * 4;
        const int64_t* ko = koff.data() + grp * 4;
#if defined(__SSE2__)
        if (g.stride_w == 1) {
          // Positions along an output row read consecutive bytes of each
          // of the group's 4 taps: 16 of them at a time, interleaved. A
          // run shorter than 16 writes past its end; the next run (or the
          // next group, or the slack) overwrites that.
          for (int64_t j = 0; j < np;) {
            const int64_t p = p0 + j, run = std::min({int64_t{16}, np - j, row_left[static_cast<size_t>(p)]});
            const uint8_t* base = xq + pos[static_cast<size_t>(p)];
            const __m128i t0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + ko[0]));
            const __m128i t1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + ko[1]));
            const __m128i t2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + ko[2]));
            const __m128i t3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + ko[3]));
            const __m128i lo01 = _mm_unpacklo_epi8(t0, t1), hi01 = _mm_unpackhi_epi8(t0, t1);
            const __m128i lo23 = _mm_unpacklo_epi8(t2, t3), hi23 = _mm_unpackhi_epi8(t2, t3);
            auto* out = reinterpret_cast<__m128i*>(dst + 4 * j);
            _mm_storeu_si128(out, _mm_unpacklo_epi16(lo01, lo23));
            _mm_storeu_si128(out + 1, _mm_unpackhi_epi16(lo01, lo23));
            _mm_storeu_si128(out + 2, _mm_unpacklo_epi16(hi01, hi23));
            _mm_storeu_si128(out + 3, _mm_unpackhi_epi16(hi01, hi23));
            j += run;
          }
          continue;
        }
#endif
        for (int64_t j = 0; j < np; ++j) {
          const uint8_t* base = xq + pos[static_cast<size_t>(p0 + j)];
          dst[4 * j] = base[ko[0]], dst[4 * j + 1] = base[ko[1]], dst[4 * j + 2] = base[ko[2]],
                  dst[4 * j + 3] = base[ko[3]];
        }
      }
    }
    Int8Epilogue e{yd + n * O * P, P, L.scale.data(), L.offset.data(), true, L.relu};
    int8_gemm(O, P, K, L.w.data(), Kp, true, col, nullptr, 0, &e, gemm_threads);
  };

  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (N == 1 || threads == 1) {
    for (int64_t n = 0; n < N; ++n) image(n, threads);
  } else {
#pragma omp parallel for num_threads(static_cast<int>(std::min<int64_t>(threads, N))) schedule(static)
    for (int64_t n = 0; n < N; ++n) image(n, 1);
  }
  return y;
}

Tensor int8_dense(const Tensor& x, const Int8Layer& L) {
  const int64_t K = L.k, O = L.out;
  MAAS_CHECK(x.dim() == 2 && x.size(1) == K, "quantized dense: input " << to_string(x.shape()) << " must be [N, " << K
                                                                       << "]");
  const int64_t N = x.size(0), Kp = int8_round_up(K, 4);
  thread_local std::vector<uint8_t> xq_buf;
  uint8_t* xq = buffer(xq_buf, checked_mul(N, Kp, "quantized dense"));
  const float* xd = x.data();
  for (int64_t n = 0; n < N; ++n) {
    quantize_row(xd + n * K, K, L.inv_input_scale, L.zero_point, xq + n * Kp);
    std::memset(xq + n * Kp + K, 0, static_cast<size_t>(Kp - K));
  }
  Tensor y = Tensor::empty({N, O});
  Int8Epilogue e{y.data(), O, L.scale.data(), L.offset.data(), false, L.relu};
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  int8_gemm(N, O, K, xq, Kp, false, L.b.data.data(), nullptr, 0, &e, threads);
  return y;
}

}  // namespace maas::detail
