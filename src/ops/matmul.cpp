// matmul: 2-D and batched matrix products on maas' GEMM kernels, in the
// precision product_precision() (ops/product.hpp) gives each pass, forward
// and backward alike.
//
// The transpose flags read an operand's last two dimensions the other way
// round in place (the kernels pack either layout), so attention's Q K^T
// and the backward's A^T dC never copy a transpose.
//
// A batch of many small products (attention heads) runs one product per
// OpenMP thread; a few large ones split each product over the threads.
// Either way each element of C is summed over k in the kernel's fixed
// order, so results do not depend on the thread count.
#include <omp.h>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"
#include "ops/product.hpp"

namespace maas {

namespace {

// Below this many multiply-adds per product, a batch of products runs one
// product per thread instead of one product over all threads.
constexpr int64_t kSmallProduct = int64_t{1} << 21;

// One operand: `count` matrices of rows x cols as op() reads them, stored
// [cols x rows] when trans; `stride` floats apart (0: one shared matrix).
struct Operand {
  const float* data;
  bool trans;
  int64_t rows, cols, stride;
  int64_t ld() const { return trans ? rows : cols; }
};

// C_i [m x n] (+)= op(A_i) op(B_i) for i in [0, count), C_i m*n floats apart.
void batched_gemm(Precision p, const Operand& a, const Operand& b, float* c, int64_t count, bool accumulate) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  const int threads = omp_get_max_threads();
  const bool per_thread = count > 1 && threads > 1 && m * n * k < kSmallProduct;
#pragma omp parallel for if (per_thread) schedule(static)
  for (int64_t i = 0; i < count; ++i)
    detail::product_gemm(p, a.trans, b.trans, m, n, k, a.data + i * a.stride, a.ld(), b.data + i * b.stride, b.ld(),
                         c + i * m * n, n, accumulate, per_thread ? 1 : threads);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  detail::check_defined(a, "matmul", "first input");
  detail::check_defined(b, "matmul", "second input");
  const int64_t ad = a.dim(), bd = b.dim();
  const auto shapes = [&] {
    return to_string(a.shape()) + (trans_a ? "^T" : "") + " x " + to_string(b.shape()) + (trans_b ? "^T" : "");
  };
  MAAS_CHECK(ad >= 2 && (bd == 2 || bd == ad), "matmul: " << shapes()
                                                           << ": expected [m,k] x [k,n], [...,m,k] x [...,k,n] "
                                                              "(the same leading dimensions) or [...,m,k] x [k,n]");
  const int64_t m = a.size(trans_a ? -1 : -2), k = a.size(trans_a ? -2 : -1);
  const int64_t kb = b.size(trans_b ? -1 : -2), n = b.size(trans_b ? -2 : -1);
  MAAS_CHECK(k == kb, "matmul: " << shapes() << ": inner dimensions differ (" << k << " vs " << kb << ")");
  Shape out_shape(a.shape().begin(), a.shape().end() - 2);
  for (int64_t i = 0; bd == ad && i < ad - 2; ++i)
    MAAS_CHECK(a.size(i) == b.size(i), "matmul: " << shapes() << ": batch sizes differ (dimension " << i << ": "
                                                  << a.size(i) << " vs " << b.size(i) << ")");
  const int64_t batch = numel(out_shape);
  out_shape.push_back(m);
  out_shape.push_back(n);
  const bool shared_b = ad > 2 && bd == 2;  // one right-hand matrix for every batch entry
  // With B shared and A read as stored, the batch folds into A's rows.
  const bool fold = batch == 1 || (shared_b && !trans_a);
  Tensor out = Tensor::empty(out_shape);
  const Precision p = detail::product_precision();
  if (fold)  // (A read transposed folds only when batch is 1)
    batched_gemm(p, {a.data(), trans_a, batch * m, k, 0}, {b.data(), trans_b, k, n, 0}, out.data(), 1, false);
  else
    batched_gemm(p, {a.data(), trans_a, m, k, m * k}, {b.data(), trans_b, k, n, shared_b ? 0 : k * n}, out.data(),
                 batch, false);
  autograd::record(
      "matmul", out, {a, b},
      [as = a.detach(), bs = b.detach(), batch, m, n, k, shared_b, fold, trans_a, trans_b](const Tensor& dout,
                                                                                        std::vector<Tensor>& d) {
        const float* g = dout.data();
        const Precision p = detail::product_precision();
        const int64_t rows = fold ? batch * m : m, count = fold ? 1 : batch;
        const Operand dc{g, false, rows, n, m * n}, dct{g, true, n, rows, m * n};
        // op(A) = dC op(B)^T, or A = op(B) dC^T when A is read transposed.
        if (d[0].defined()) {
          const Operand bt{bs.data(), !trans_b, n, k, shared_b ? 0 : k * n};
          const Operand bb{bs.data(), trans_b, k, n, shared_b ? 0 : k * n};
          if (trans_a) batched_gemm(p, bb, dct, d[0].data(), count, true);
          else batched_gemm(p, dc, bt, d[0].data(), count, true);
        }
        if (!d[1].defined()) return;
        // op(B) = op(A)^T dC, or B = dC^T op(A) when B is read transposed; a
        // shared B sums over the batch, folded into k (or one product after
        // another when A is read transposed).
        const int64_t a_rows = fold ? batch * m : m;
        const Operand at{as.data(), !trans_a, k, a_rows, m * k}, aa{as.data(), trans_a, a_rows, k, m * k};
        if (fold || !shared_b) {
          if (trans_b) batched_gemm(p, dct, aa, d[1].data(), count, true);
          else batched_gemm(p, at, dc, d[1].data(), count, true);
          return;
        }
        for (int64_t i = 0; i < batch; ++i) {
          const Operand ai_t{as.data() + i * m * k, !trans_a, k, m, 0}, ai{as.data() + i * m * k, trans_a, m, k, 0};
          const Operand gi{g + i * m * n, false, m, n, 0}, gi_t{g + i * m * n, true, n, m, 0};
          if (trans_b) batched_gemm(p, gi_t, ai, d[1].data(), 1, true);
          else batched_gemm(p, ai_t, gi, d[1].data(), 1, true);
        }
      });
  return out;
}

}  // namespace maas
