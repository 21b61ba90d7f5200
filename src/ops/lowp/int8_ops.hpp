// Internal: quantized inference ops, the math behind nn::QuantizedConv2D and
// nn::QuantizedDense. Not installed.
//
// A quantized layer's input x (fp32) becomes uint8 with its calibrated
// per-tensor scale s_x and zero point z:
//   q = clamp(round_half_even(x / s_x) + z, 0, 255)
// (x * (1 / s_x) in fact; NaN becomes 0). Weights are int8 symmetric per
// output channel o: w = s_w[o] * wq, wq in [-127, 127]. The int8 GEMM sums
// acc[o] = sum_k q[k] wq[k, o] in int32, and the output is
//   y[o] = s_x s_w[o] (acc[o] - z sum_k wq[k, o]) + bias[o]
//        = scale[o] acc[o] + offset[o]
// with ReLU applied on the way out when fused. A convolution's padding
// holds z (the code of 0.0), so padded taps contribute exactly zero.
//
// Convolution layout: each image is quantized into CHW planes of uint8
// with their padding around them; im2col gathers the columns [K x P] (K in
// tap-major, channel-fastest order: Keras' kernel order) straight into the
// GEMM's packed layout: with a column stride of 1, 16 positions of a row
// at a time from each of a group's 4 taps, interleaved by SSE2 unpacks;
// otherwise a byte at a time. The GEMM runs weights [O x K] (int8,
// broadcast) times columns (uint8), so its output is [O x P], NCHW,
// dequantized in the kernel's store.
//
// What this is not: no gradients (inference only), no groups, no int8
// output (every layer hands fp32 to the next).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "maas/tensor.hpp"
#include "ops/lowp/int8_gemm.hpp"

namespace maas::detail {

// A quantized layer's weights, ready for int8_gemm.
struct Int8Layer {
  int64_t k = 0, out = 0;       // reduction length K, output channels O
  Int8PackedB b;                // dense: the kernel [K x O], packed
  std::vector<int8_t> w;        // conv: the kernel [O x round_up(K, 4)], rows in (i, j, c) order
  std::vector<float> scale;     // per output channel: s_x * s_w[o]
  std::vector<float> offset;    // per output channel: bias[o] - scale[o] * z * sum_k wq[k, o]
  float inv_input_scale = 1.f;
  int32_t zero_point = 0;
  bool relu = false;
};

struct Int8ConvGeometry {
  int64_t C = 0, kh = 1, kw = 1;
  int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};

// From a convolution's int8 kernel kernel_q [O, C, kh, kw] (integers held
// as floats, checked to lie in [-127, 127]), kernel_scale [O], bias [O] (or
// null), and the input's quantization.
Int8Layer int8_conv_layer(const float* kernel_q, int64_t O, int64_t C, int64_t kh, int64_t kw,
                          const float* kernel_scale, const float* bias, float input_scale, int32_t zero_point,
                          bool relu);
// From a dense kernel_q [K, O] (Keras' layout), likewise.
Int8Layer int8_dense_layer(const float* kernel_q, int64_t K, int64_t O, const float* kernel_scale, const float* bias,
                           float input_scale, int32_t zero_point, bool relu);

// x [N, C, H, W] -> [N, O, Ho, Wo].
Tensor int8_conv2d(const Tensor& x, const Int8Layer& layer, const Int8ConvGeometry& g);
// x [N, K] -> [N, O].
Tensor int8_dense(const Tensor& x, const Int8Layer& layer);

// One value quantized as the ops do. Rounding half to even by the 1.5 * 2^23
// trick (exact for |v| < 2^22, in the default rounding mode): libm's
// nearbyintf saves and restores the floating-point environment, which made
// quantizing cost more than the int8 product.
inline uint8_t quantize_u8(float x, float inv_scale, int32_t zero_point) {
  // std::max(-512, v) is (-512 < v ? v : -512): NaN -> -512 -> 0. min/max
  // compile to minss/maxss, without branches.
  float v = std::min(512.f, std::max(-512.f, x * inv_scale));
  v = (v + 12582912.f) - 12582912.f + static_cast<float>(zero_point);
  return static_cast<uint8_t>(std::min(255.f, std::max(0.f, v)));
}

}  // namespace maas::detail
