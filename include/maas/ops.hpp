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
// op(a) x op(b) over the last two dimensions: [m,k] x [k,n] -> [m,n];
// [...,m,k] x [...,k,n] -> [...,m,n] (the same leading dimensions, any
// number of them: a batch of matrices, or batch and heads); [...,m,k] x
// [k,n] -> [...,m,n] (one right-hand matrix for all). trans_a / trans_b read
// that operand's last two dimensions swapped ([...,k,m] or [...,n,k]) in
// place, without copying a transpose: matmul(q, k, false, true) is Q K^T.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

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
// Reorders dimensions: out.size(i) = x.size(dims[i]) (copies), e.g.
// permute(x, {0, 2, 1, 3}) turns [B,T,H,D] into [B,H,T,D].
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
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
// x * Phi(x): the exact form 0.5 x (1 + erf(x / sqrt 2)), or the tanh
// approximation of GPT-2, as torch.nn.functional.gelu(x, approximate=...).
enum class GeluApproximation { none, tanh };
Tensor gelu(const Tensor& x, GeluApproximation approximate = GeluApproximation::none);
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

// Layer normalisation over the last axis of x [..., C]:
// y = (x - mean) / sqrt(var + eps) * gamma + beta with the row's mean and
// biased variance; gamma and beta are [C], or undefined (1 and 0). Fused;
// the backward reuses each row's mean and 1/std.
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps = 1e-5f);

// ---- Attention ------------------------------------------------------------
// How q, k, v and the output lay out batch B, heads H, length T and depth D.
// bthd is what a projection [B, T, H*D] reshapes to, so a MultiHeadAttention
// never copies its heads into place.
enum class AttentionLayout { bhtd, bthd };

struct AttentionOptions {
  AttentionLayout layout = AttentionLayout::bhtd;
  // Query i sees key j only when j <= i + (S - T): the last query row sees
  // every key, which is what a query appended to a cache of keys needs (and
  // with T == S, the usual lower triangle).
  bool causal = false;
  // Undefined, or nonzero where query i may see key j: [T,S], [B,T,S] or
  // [B,H,T,S], where B, H and T may be 1 to broadcast (a padding mask of
  // keys is [B,1,S]). A query that sees no key at all outputs zeros.
  Tensor mask;
  // Dropout on the attention weights, drawn from *generator (required
  // when dropout > 0); pass 0 in evaluation.
  float dropout = 0.f;
  Generator* generator = nullptr;
  // Multiplies Q K^T; 0 means 1 / sqrt(D).
  float scale = 0.f;
};

// softmax(Q K^T * scale + mask) V, fused with an online softmax (flash
// attention): q [B,H,T,D], k [B,H,S,D], v [B,H,S,Dv] -> [B,H,T,Dv] (or all
// [B,T,H,.] with layout bthd). No [T,S] matrix is kept: memory is that of
// the inputs and outputs plus one float per query row. Differentiable in
// q, k and v.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options = {});

// ---- Regularisation -------------------------------------------------------
// In training, zeroes each element with probability p and scales the rest by
// 1/(1-p) (inverted dropout); in evaluation, returns x unchanged.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);

}  // namespace maas
