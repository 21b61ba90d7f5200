// matmul: 2-D and batched matrix products on maas' GEMM kernels, in the
// precision product_precision() (ops/product.hpp) gives each pass, forward
// and backward alike, split over OpenMP threads.
#include <omp.h>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"
#include "ops/product.hpp"

namespace maas {

namespace {

// C[m,n] (+)= op(A) * op(B) in precision p for contiguous row-major buffers
// (A [m,k] or, with trans_a, [k,m]; B [k,n] or, with trans_b, [n,k]), C
// split over the OpenMP threads in fixed blocks: results do not depend on
// scheduling.
void gemm(Precision p, const float* a, bool trans_a, const float* b, bool trans_b, float* c, int64_t m, int64_t n,
          int64_t k, bool accumulate) {
  detail::product_gemm(p, trans_a, trans_b, m, n, k, a, trans_a ? m : k, b, trans_b ? k : n, c, n, accumulate,
                       omp_get_max_threads());
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "matmul", "first input");
  detail::check_defined(b, "matmul", "second input");
  const int64_t ad = a.dim(), bd = b.dim();
  MAAS_CHECK((ad == 2 && bd == 2) || (ad == 3 && (bd == 2 || bd == 3)),
             "matmul: " << to_string(a.shape()) << " x " << to_string(b.shape())
                        << ": expected [m,k] x [k,n], [B,m,k] x [B,k,n] or [B,m,k] x [k,n]");
  const int64_t m = a.size(-2), k = a.size(-1);
  const int64_t kb = b.size(-2), n = b.size(-1);
  MAAS_CHECK(k == kb, "matmul: " << to_string(a.shape()) << " x " << to_string(b.shape())
                                 << ": inner dimensions differ (" << k << " vs " << kb << ")");
  const int64_t batch = ad == 3 ? a.size(0) : 1;
  if (bd == 3)
    MAAS_CHECK(b.size(0) == batch, "matmul: " << to_string(a.shape()) << " x " << to_string(b.shape())
                                              << ": batch sizes differ (" << batch << " vs " << b.size(0) << ")");
  const bool shared_b = ad == 3 && bd == 2;  // one right-hand matrix for every batch entry
  Shape out_shape = ad == 3 ? Shape{batch, m, n} : Shape{m, n};
  Tensor out = Tensor::empty(out_shape);
  const Precision p = detail::product_precision();
  if (shared_b || batch == 1) {
    gemm(p, a.data(), false, b.data(), false, out.data(), batch * m, n, k, false);
  } else {
    for (int64_t i = 0; i < batch; ++i)
      gemm(p, a.data() + i * m * k, false, b.data() + i * k * n, false, out.data() + i * m * n, m, n, k, false);
  }
  autograd::record("matmul", out, {a, b},
                   [as = a.detach(), bs = b.detach(), batch, m, n, k, shared_b](const Tensor& dout,
                                                                              std::vector<Tensor>& d) {
                     const float* g = dout.data();
                     const Precision p = detail::product_precision();
                     if (shared_b || batch == 1) {
                       // dA = dC B^T ; dB = A^T dC, with the batch folded into the rows.
                       if (d[0].defined()) gemm(p, g, false, bs.data(), true, d[0].data(), batch * m, k, n, true);
                       if (d[1].defined()) gemm(p, as.data(), true, g, false, d[1].data(), k, n, batch * m, true);
                       return;
                     }
                     for (int64_t i = 0; i < batch; ++i) {
                       const float* gi = g + i * m * n;
                       if (d[0].defined())
                         gemm(p, gi, false, bs.data() + i * k * n, true, d[0].data() + i * m * k, m, k, n, true);
                       if (d[1].defined())
                         gemm(p, as.data() + i * m * k, true, gi, false, d[1].data() + i * k * n, k, n, m, true);
                     }
                   });
  return out;
}

}  // namespace maas
