// maas/ops.hpp: differentiable operations on tensors.
//
// Every op is a free function that computes its output and, when an input
// requires a gradient, records how to back-propagate through it. The forward
// and backward of one op live together in src/ops/<op>.cpp. Bad shapes or
// arguments throw maas::Error naming the op and the shapes.
//
// Writing an op: check the inputs, compute the output, then record the
// backward beside it (maas/autograd.hpp). The backward ADDS into the gradient
// buffers it is given (d[i] is undefined where input i needs no gradient)
// and captures what it reads detached, never the output itself:
//
//   Tensor square(const Tensor& x) {
//     detail::check_defined(x, "square", "input");
//     Tensor y = Tensor::empty(x.shape());
//     const float* px = x.data();
//     for (int64_t i = 0; i < x.numel(); ++i) y.data()[i] = px[i] * px[i];
//     autograd::record("square", y, {x}, [xs = x.detach()](const Tensor& dy, std::vector<Tensor>& d) {
//       if (!d[0].defined()) return;
//       for (int64_t i = 0; i < xs.numel(); ++i) d[0].data()[i] += 2.f * xs.data()[i] * dy.data()[i];
//     });
//     return y;
//   }
//
// An op that multiplies matrices reads detail::product_precision() once per
// pass and runs its products with detail::product_gemm (src/ops/product.hpp),
// so that it follows set_matmul_precision() as matmul and conv2d do.
//
// Broadcasting (add, sub, mul, div) follows NumPy: shapes are aligned at the
// right; a dimension of 1 (or a missing one) stretches to match. A bias [C]
// broadcasts over a batch [N, C]; a bias [C, 1, 1] over images [N, C, H, W].
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "maas/tensor.hpp"

namespace maas {

// ---- Element-wise arithmetic (broadcasting) -------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);
// Scalar forms.
Tensor add(const Tensor& a, float s);
Tensor mul(const Tensor& a, float s);
// s - a and s / a.
Tensor rsub(const Tensor& a, float s);
Tensor rdiv(const Tensor& a, float s);
// a ** exponent, element-wise.
Tensor pow(const Tensor& a, float exponent);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, float s);
Tensor operator+(float s, const Tensor& a);
Tensor operator-(const Tensor& a, float s);
Tensor operator-(float s, const Tensor& a);
Tensor operator*(const Tensor& a, float s);
Tensor operator*(float s, const Tensor& a);
Tensor operator/(const Tensor& a, float s);
Tensor operator/(float s, const Tensor& a);

// ---- Linear algebra -------------------------------------------------------
// [m,k] x [k,n] -> [m,n]; [B,m,k] x [B,k,n] -> [B,m,n]; [B,m,k] x [k,n] -> [B,m,n].
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- Reductions -----------------------------------------------------------
// Sum / mean of all elements: a 0-d tensor.
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
// Along one dimension (negative counts from the end).
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false);

// ---- Shape ----------------------------------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape);
// Collapses dimensions start_dim..end_dim into one: [N,C,H,W] -> [N,C*H*W].
Tensor flatten(const Tensor& x, int64_t start_dim = 1, int64_t end_dim = -1);
// Swaps two dimensions (copies: maas tensors are contiguous).
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
// Joins tensors along `dim`; all other dimensions must agree.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);

// ---- Activations and element-wise math ------------------------------------
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor exp(const Tensor& x);
// Natural log; inputs must be positive (log(0) gives -inf as in IEEE).
Tensor log(const Tensor& x);
// Numerically stable (the maximum is subtracted) along `dim`.
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- Convolution and pooling (NCHW) ---------------------------------------
using Pair = std::array<int64_t, 2>;  // {height, width}

struct Conv2dOptions {
  Pair stride{1, 1};
  Pair padding{0, 0};  // zeros added on each side
  Pair dilation{1, 1};
};
// x [N,C,H,W], weight [O,C,kh,kw], bias [O] or undefined -> [N,O,Ho,Wo] with
// Ho = (H + 2*pad - dil*(kh-1) - 1) / stride + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dOptions& options = {});

struct Pool2dOptions {
  Pair kernel{2, 2};
  Pair stride{0, 0};  // {0,0} means equal to kernel
  Pair padding{0, 0};
  // avg_pool2d only: count padded zeros in the divisor (PyTorch's default).
  bool count_include_pad = true;
};
// Max over each window; padding never wins. Gradient goes to the (first) argmax.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& options = {});
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& options = {});

// The mean of each channel's plane: x [N,C,H,W] -> [N,C].
Tensor global_avg_pool2d(const Tensor& x);

// Pads the last two dimensions of [N,C,H,W] with `value` (any amounts,
// e.g. Keras' asymmetric "same" padding; -infinity before a max pool).
Tensor pad2d(const Tensor& x, int64_t top, int64_t bottom, int64_t left, int64_t right, float value = 0.f);

// ---- Lookup ---------------------------------------------------------------
// The most rows an embedding table may have: a float holds every whole
// number up to 2^24 exactly, and indices are floats.
constexpr int64_t kMaxEmbeddingRows = int64_t{1} << 24;
// Rows of `weight` [V, D] picked by `indices` (any shape S, whole numbers in
// [0, V) held as floats): out [S..., D], out[i] = weight[indices[i]]. Throws
// maas::Error naming the first index that is not a whole number in range.
// Differentiable in `weight` (a scatter-add into the rows used); the
// indices get no gradient.
Tensor embedding(const Tensor& indices, const Tensor& weight);

// ---- Normalisation --------------------------------------------------------
// Batch normalisation over channel dimension 1 of x [N,C] or [N,C,H,W]:
// y = (x - mean) / sqrt(var + eps) * gamma + beta. In training, mean and var
// are the batch's (biased var) and the running statistics are updated in
// place: running = (1 - momentum) * running + momentum * batch, with the
// unbiased variance (PyTorch's convention). In evaluation, the running
// statistics are used. gamma/beta may be undefined (scale 1, shift 0).
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean,
                  Tensor running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

// ---- Regularisation -------------------------------------------------------
// In training, zeroes each element with probability p and scales the rest by
// 1/(1-p) (inverted dropout); in evaluation, returns x unchanged.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);

}  // namespace maas
