// Quantized convolution and dense products on the int8 GEMM (see int8_ops.hpp).
#include "ops/lowp/int8_ops.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "internal.hpp"
#include "maas/error.hpp"

namespace maas::detail {

namespace {

int8_t weight_code(float v, const char* who) {
  MAAS_CHECK(v >= -127.f && v <= 127.f && v == std::nearbyint(v),
             who << ": a quantized kernel value " << v << " is not an integer in [-127, 127]");
  return static_cast<int8_t>(v);
}

Int8Layer finish(Int8PackedB b, int64_t O, const float* kernel_scale, const float* bias, float input_scale,
                 int32_t zero_point, bool relu, const char* who) {
  MAAS_CHECK(std::isfinite(input_scale) && input_scale > 0.f,
             who << ": the input scale " << input_scale << " must be finite and positive");
  MAAS_CHECK(zero_point >= 0 && zero_point <= 255, who << ": the input zero point " << zero_point
                                                       << " is outside [0, 255]");
  Int8Layer L;
  L.b = std::move(b);
  L.inv_input_scale = 1.f / input_scale;
  L.zero_point = zero_point;
  L.relu = relu;
  L.scale.resize(static_cast<size_t>(O));
  L.offset.resize(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o) {
    const float ks = kernel_scale[o];
    MAAS_CHECK(std::isfinite(ks) && ks > 0.f, who << ": kernel_scale[" << o << "] = " << ks
                                                  << " must be finite and positive");
    const float s = input_scale * ks;
    L.scale[static_cast<size_t>(o)] = s;
    L.offset[static_cast<size_t>(o)] =
        (bias != nullptr ? bias[o] : 0.f) -
        s * static_cast<float>(static_cast<int64_t>(zero_point) * L.b.col_sums[static_cast<size_t>(o)]);
  }
  return L;
}

// A per-thread buffer of at least n bytes, kept between calls.
template <class T>
T* buffer(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// y[o] = scale[o] acc + offset[o], ReLU when fused.
inline float dequantize(int32_t acc, const Int8Layer& L, int64_t o) {
  const float y = L.scale[static_cast<size_t>(o)] * static_cast<float>(acc) + L.offset[static_cast<size_t>(o)];
  return L.relu ? std::max(y, 0.f) : y;
}

}  // namespace

Int8Layer int8_conv_layer(const float* kernel_q, int64_t O, int64_t C, int64_t kh, int64_t kw,
                          const float* kernel_scale, const float* bias, float input_scale, int32_t zero_point,
                          bool relu) {
  const int64_t K = checked_mul(checked_mul(C, kh, "quantized conv2d"), kw, "quantized conv2d");
  // B [K x O] with K in (i, j, c) order: the im2col rows' order.
  std::vector<int8_t> b(static_cast<size_t>(checked_mul(K, O, "quantized conv2d")));
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          b[static_cast<size_t>(((i * kw + j) * C + c) * O + o)] =
              weight_code(kernel_q[((o * C + c) * kh + i) * kw + j], "QuantizedConv2D");
  return finish(int8_pack_b(b.data(), K, O, O, 1), O, kernel_scale, bias, input_scale, zero_point, relu,
                "QuantizedConv2D");
}

Int8Layer int8_dense_layer(const float* kernel_q, int64_t K, int64_t O, const float* kernel_scale, const float* bias,
                           float input_scale, int32_t zero_point, bool relu) {
  std::vector<int8_t> b(static_cast<size_t>(checked_mul(K, O, "quantized dense")));
  for (size_t i = 0; i < b.size(); ++i) b[i] = weight_code(kernel_q[i], "QuantizedDense");
  return finish(int8_pack_b(b.data(), K, O, O, 1), O, kernel_scale, bias, input_scale, zero_point, relu,
                "QuantizedDense");
}

Tensor int8_conv2d(const Tensor& x, const Int8Layer& L, const Int8ConvGeometry& g) {
  MAAS_CHECK(x.dim() == 4 && x.size(1) == g.C, "quantized conv2d: input " << to_string(x.shape()) << " must be [N, "
                                                                          << g.C << ", H, W]");
  const int64_t N = x.size(0), C = g.C, H = x.size(2), W = x.size(3), O = L.b.n;
  const int64_t Hp = H + g.pad_top + g.pad_bottom, Wp = W + g.pad_left + g.pad_right;
  const int64_t span_h = g.dil_h * (g.kh - 1) + 1, span_w = g.dil_w * (g.kw - 1) + 1;
  MAAS_CHECK(Hp >= span_h && Wp >= span_w, "quantized conv2d: input " << to_string(x.shape())
                                                                      << " is smaller than the kernel");
  const int64_t Ho = (Hp - span_h) / g.stride_h + 1, Wo = (Wp - span_w) / g.stride_w + 1, P = Ho * Wo;
  const int64_t K = C * g.kh * g.kw, Kp = int8_round_up(K, 4);
  Tensor y = Tensor::empty({N, O, Ho, Wo});
  const float* xd = x.data();
  float* yd = y.data();
  const uint8_t zp = static_cast<uint8_t>(L.zero_point);

  auto image = [&](int64_t n, int gemm_threads) {
    thread_local std::vector<uint8_t> xq_buf, col_buf;
    thread_local std::vector<int32_t> acc_buf;
    uint8_t* xq = buffer(xq_buf, Hp * Wp * C);
    uint8_t* col = buffer(col_buf, P * Kp);
    int32_t* acc = buffer(acc_buf, P * O);
    // Quantize into NHWC with the padding (the zero point) around.
    std::memset(xq, zp, static_cast<size_t>(Hp * Wp * C));
    const float* src = xd + n * C * H * W;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h) {
        const float* row = src + (c * H + h) * W;
        uint8_t* dst = xq + ((h + g.pad_top) * Wp + g.pad_left) * C + c;
        for (int64_t w = 0; w < W; ++w) dst[w * C] = quantize_u8(row[w], L.inv_input_scale, L.zero_point);
      }
    // im2col: row p = (oh, ow) holds the kh*kw runs of C bytes it sees.
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        uint8_t* r = col + (oh * Wo + ow) * Kp;
        for (int64_t i = 0; i < g.kh; ++i) {
          const uint8_t* s = xq + ((oh * g.stride_h + i * g.dil_h) * Wp + ow * g.stride_w) * C;
          for (int64_t j = 0; j < g.kw; ++j, r += C) std::memcpy(r, s + j * g.dil_w * C, static_cast<size_t>(C));
        }
        std::memset(r, 0, static_cast<size_t>(Kp - K));
      }
    int8_gemm(P, col, Kp, L.b, acc, O, gemm_threads);
    float* out = yd + n * O * P;
    for (int64_t o = 0; o < O; ++o) {
      float* dst = out + o * P;
      const float s = L.scale[static_cast<size_t>(o)], off = L.offset[static_cast<size_t>(o)];
      if (L.relu)
        for (int64_t p = 0; p < P; ++p) dst[p] = std::max(s * static_cast<float>(acc[p * O + o]) + off, 0.f);
      else
        for (int64_t p = 0; p < P; ++p) dst[p] = s * static_cast<float>(acc[p * O + o]) + off;
    }
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
  const int64_t K = L.b.k, O = L.b.n;
  MAAS_CHECK(x.dim() == 2 && x.size(1) == K, "quantized dense: input " << to_string(x.shape()) << " must be [N, " << K
                                                                       << "]");
  const int64_t N = x.size(0), Kp = int8_round_up(K, 4);
  thread_local std::vector<uint8_t> xq_buf;
  thread_local std::vector<int32_t> acc_buf;
  uint8_t* xq = buffer(xq_buf, N * Kp);
  int32_t* acc = buffer(acc_buf, N * O);
  const float* xd = x.data();
  for (int64_t n = 0; n < N; ++n) {
    uint8_t* dst = xq + n * Kp;
    const float* src = xd + n * K;
    for (int64_t k = 0; k < K; ++k) dst[k] = quantize_u8(src[k], L.inv_input_scale, L.zero_point);
    std::memset(dst + K, 0, static_cast<size_t>(Kp - K));
  }
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  int8_gemm(N, xq, Kp, L.b, acc, O, threads);
  Tensor y = Tensor::empty({N, O});
  float* yd = y.data();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) yd[n * O + o] = dequantize(acc[n * O + o], L, o);
  return y;
}

}  // namespace maas::detail
