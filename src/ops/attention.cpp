// scaled_dot_product_attention: softmax(Q K^T * scale + mask) V, fused.
//
// Flash-attention's idea on a CPU: no [T, S] matrix of scores is ever
// stored. Each tile of kQueryBlock query rows walks the keys in tiles of
// kKeyBlock: the tile's scores come from one small GEMM into a per-thread
// buffer, an online softmax (a running maximum m, a running sum l, the
// output accumulated and rescaled when m grows) turns them into weights,
// and a second GEMM adds weights x V to the output. Each row keeps only its
// log-sum-exp lse = m + log(l) for the backward, which recomputes each
// tile of scores from Q, K and lse (four GEMMs a tile):
//   p = exp(s - lse),  D_i = dO_i . O_i
//   dV_j += p_ij dO_i,  dp_ij = dO_i . V_j,  ds_ij = p_ij (dp_ij - D_i)
//   dQ_i += scale ds_ij K_j,  dK_j += scale ds_ij Q_i
// so memory is O(B*H*T*D), the extra state one float per query row, and
// the transient tiles a few kQueryBlock x kKeyBlock buffers per thread. The
// products run in product_precision() (bf16 under --precision bf16).
//
// Dropout on the attention weights draws from a counter-based hash of one
// seed (taken from the caller's Generator) and the element's coordinates,
// so the backward regenerates the forward's mask without storing it, and
// every thread count draws the same mask.
//
// Work is split over OpenMP threads by (batch, head): each pair is computed
// by one thread in a fixed order, so results do not depend on the number of
// threads.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/internal.hpp"
#include "core/splitmix.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"
#include "ops/product.hpp"
#include "ops/scratch.hpp"
#include "ops/vmath.hpp"

namespace maas {

namespace {

constexpr int64_t kQueryBlock = 64, kKeyBlock = 128;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline float dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Where each (batch, head, row) of Q, K, V, O and the mask lives.
struct Geometry {
  int64_t batch, heads, t, s, d, dv;
  bool bthd;        // [B, T, H, D] rather than [B, H, T, D]
  float scale;
  bool causal;      // key j is visible to query i when j <= i + (s - t)
  const float* mask = nullptr;
  int64_t mask_b = 0, mask_h = 0, mask_t = 0;  // strides; 0 broadcasts
  float dropout = 0.f;
  uint64_t seed = 0;

  // Offset of row `row` of head (b, h) in a tensor of `rows` rows of `width`.
  int64_t at(int64_t b, int64_t h, int64_t row, int64_t rows, int64_t width) const {
    return bthd ? ((b * rows + row) * heads + h) * width : ((b * heads + h) * rows + row) * width;
  }
  int64_t key_end(int64_t i) const { return causal ? std::min(s, i + (s - t) + 1) : s; }
  bool masked(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return mask && mask[b * mask_b + h * mask_h + i * mask_t + j] == 0.f;
  }
  // The dropout factor of weight (b, h, i, j): 0 or 1 / (1 - dropout).
  float keep(int64_t b, int64_t h, int64_t i, int64_t j) const {
    if (dropout <= 0.f) return 1.f;
    const uint64_t idx = static_cast<uint64_t>(((b * heads + h) * t + i) * s + j);
    const float u = static_cast<float>(detail::mix64(seed + detail::mix64(idx)) >> 40) * 0x1.0p-24f;
    return u < dropout ? 0.f : 1.f / (1.f - dropout);
  }
};

// Rows of a head in a tensor of `width` features: the row stride.
inline int64_t row_stride(const Geometry& g, int64_t width) { return g.bthd ? g.heads * width : width; }

// One thread's product on a tile: C [m x n] (+)= op(A) op(B).
inline void tile_gemm(Precision p, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                      const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  detail::product_gemm(p, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate, 1);
}

// The scores of query rows [i0, i0 + br) against keys [j0, j0 + bc) into
// s (ld kKeyBlock): scale * Q K^T, with -inf where a key is hidden.
void scores(const Geometry& g, Precision p, int64_t b, int64_t h, int64_t i0, int64_t br, int64_t j0, int64_t bc,
            const float* q, const float* k, float* s) {
  tile_gemm(p, false, true, br, bc, g.d, q + g.at(b, h, i0, g.t, g.d), row_stride(g, g.d), k + g.at(b, h, j0, g.s, g.d),
            row_stride(g, g.d), s, kKeyBlock, false);
  for (int64_t r = 0; r < br; ++r) {
    float* sr = s + r * kKeyBlock;
    const int64_t end = g.key_end(i0 + r) - j0;  // keys at or past it are hidden
    for (int64_t c = 0; c < bc; ++c)
      sr[c] = c >= end || g.masked(b, h, i0 + r, j0 + c) ? kNegInf : sr[c] * g.scale;
  }
}

void forward(const Geometry& g, Precision p, const float* q, const float* k, const float* v, float* o, float* lse) {
  const int64_t ldo = row_stride(g, g.dv), ldv = ldo;
#pragma omp parallel
  {
    float* s = detail::scratch(detail::kScratchTmp, kQueryBlock * kKeyBlock);
    float* m = detail::scratch(detail::kScratchTmp2, 2 * kQueryBlock);
    float* l = m + kQueryBlock;
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < g.batch * g.heads; ++bh) {
      const int64_t b = bh / g.heads, h = bh % g.heads;
      for (int64_t i0 = 0; i0 < g.t; i0 += kQueryBlock) {
        const int64_t br = std::min(kQueryBlock, g.t - i0);
        float* ot = o + g.at(b, h, i0, g.t, g.dv);
        for (int64_t r = 0; r < br; ++r) {
          std::fill(ot + r * ldo, ot + r * ldo + g.dv, 0.f);
          m[r] = kNegInf;
          l[r] = 0.f;
        }
        const int64_t end = g.key_end(i0 + br - 1);
        for (int64_t j0 = 0; j0 < end; j0 += kKeyBlock) {
          const int64_t bc = std::min(kKeyBlock, end - j0);
          scores(g, p, b, h, i0, br, j0, bc, q, k, s);
          // Online softmax: rescale what the row has so far when its maximum grows.
          for (int64_t r = 0; r < br; ++r) {
            float* sr = s + r * kKeyBlock;
            float bm = kNegInf;
            for (int64_t c = 0; c < bc; ++c) bm = std::max(bm, sr[c]);
            if (bm > m[r]) {
              const float correction = m[r] == kNegInf ? 0.f : detail::vexp(m[r] - bm);
              l[r] *= correction;
              float* orow = ot + r * ldo;
              for (int64_t c = 0; c < g.dv; ++c) orow[c] *= correction;
              m[r] = bm;
            }
            const float mr = m[r];
            if (mr == kNegInf) {  // every key so far hidden
              std::fill(sr, sr + bc, 0.f);
              continue;
            }
            float sum = 0.f;
            for (int64_t c = 0; c < bc; ++c) {
              const float e = sr[c] == kNegInf ? 0.f : detail::vexp(sr[c] - mr);
              sr[c] = e;
              sum += e;
            }
            l[r] += sum;
            if (g.dropout > 0.f)
              for (int64_t c = 0; c < bc; ++c) sr[c] *= g.keep(b, h, i0 + r, j0 + c);
          }
          tile_gemm(p, false, false, br, g.dv, bc, s, kKeyBlock, v + g.at(b, h, j0, g.s, g.dv), ldv, ot, ldo, true);
        }
        // A row that sees no key (every key masked) outputs zeros.
        for (int64_t r = 0; r < br; ++r) {
          const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
          float* orow = ot + r * ldo;
          for (int64_t c = 0; c < g.dv; ++c) orow[c] *= inv;
          lse[bh * g.t + i0 + r] = l[r] > 0.f ? m[r] + std::log(l[r]) : kNegInf;
        }
      }
    }
  }
}

// dq, dk, dv may be null (no gradient wanted); the others accumulate.
void backward(const Geometry& g, Precision p, const float* q, const float* k, const float* v, const float* o,
              const float* lse, const float* dout, float* dq, float* dk, float* dv) {
  const int64_t ldq = row_stride(g, g.d), ldv = row_stride(g, g.dv);
#pragma omp parallel
  {
    float* pt = detail::scratch(detail::kScratchTmp, kQueryBlock * kKeyBlock);   // P, then P with dropout
    float* dp = detail::scratch(detail::kScratchTmp2, kQueryBlock * kKeyBlock);  // dP, then dS
    float* di = detail::scratch(detail::kScratchTmp3, kQueryBlock);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < g.batch * g.heads; ++bh) {
      const int64_t b = bh / g.heads, h = bh % g.heads;
      for (int64_t i0 = 0; i0 < g.t; i0 += kQueryBlock) {
        const int64_t br = std::min(kQueryBlock, g.t - i0);
        const float* dot_i = dout + g.at(b, h, i0, g.t, g.dv);
        for (int64_t r = 0; r < br; ++r) di[r] = dot(dot_i + r * ldv, o + g.at(b, h, i0 + r, g.t, g.dv), g.dv);
        const int64_t end = g.key_end(i0 + br - 1);
        for (int64_t j0 = 0; j0 < end; j0 += kKeyBlock) {
          const int64_t bc = std::min(kKeyBlock, end - j0);
          scores(g, p, b, h, i0, br, j0, bc, q, k, pt);
          for (int64_t r = 0; r < br; ++r) {
            const float li = lse[bh * g.t + i0 + r];
            float* prow = pt + r * kKeyBlock;
            for (int64_t c = 0; c < bc; ++c)
              prow[c] = prow[c] == kNegInf || li == kNegInf ? 0.f : detail::vexp(prow[c] - li);
          }
          // dP = dO V^T; dS = P (dP z - D) scale; P becomes P z for dV.
          tile_gemm(p, false, true, br, bc, g.dv, dot_i, ldv, v + g.at(b, h, j0, g.s, g.dv), ldv, dp, kKeyBlock,
                    false);
          for (int64_t r = 0; r < br; ++r) {
            float* prow = pt + r * kKeyBlock;
            float* drow = dp + r * kKeyBlock;
            for (int64_t c = 0; c < bc; ++c) {
              const float z = g.keep(b, h, i0 + r, j0 + c);
              drow[c] = prow[c] * (drow[c] * z - di[r]) * g.scale;
              prow[c] *= z;
            }
          }
          if (dv)
            tile_gemm(p, true, false, bc, g.dv, br, pt, kKeyBlock, dot_i, ldv, dv + g.at(b, h, j0, g.s, g.dv), ldv,
                      true);
          if (dq)
            tile_gemm(p, false, false, br, g.d, bc, dp, kKeyBlock, k + g.at(b, h, j0, g.s, g.d), ldq,
                      dq + g.at(b, h, i0, g.t, g.d), ldq, true);
          if (dk)
            tile_gemm(p, true, false, bc, g.d, br, dp, kKeyBlock, q + g.at(b, h, i0, g.t, g.d), ldq,
                      dk + g.at(b, h, j0, g.s, g.d), ldq, true);
        }
      }
    }
  }
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& options) {
  detail::check_defined(q, "scaled_dot_product_attention", "query");
  detail::check_defined(k, "scaled_dot_product_attention", "key");
  detail::check_defined(v, "scaled_dot_product_attention", "value");
  const bool bthd = options.layout == AttentionLayout::bthd;
  const char* layout = bthd ? "[B,T,H,D]" : "[B,H,T,D]";
  const auto shapes = [&] {
    return "query " + to_string(q.shape()) + ", key " + to_string(k.shape()) + ", value " + to_string(v.shape());
  };
  MAAS_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
             "scaled_dot_product_attention: " << shapes() << ": each must be 4-D, " << layout);
  const int64_t ti = bthd ? 1 : 2, hi = bthd ? 2 : 1;
  Geometry g;
  g.batch = q.size(0);
  g.heads = q.size(hi);
  g.t = q.size(ti);
  g.s = k.size(ti);
  g.d = q.size(3);
  g.dv = v.size(3);
  g.bthd = bthd;
  MAAS_CHECK(k.size(0) == g.batch && v.size(0) == g.batch && k.size(hi) == g.heads && v.size(hi) == g.heads &&
                 v.size(ti) == g.s && k.size(3) == g.d,
             "scaled_dot_product_attention: " << shapes() << " do not fit together: in " << layout
                                              << ", key and value need the query's B and H, key the query's D, "
                                                 "and value the key's length");
  MAAS_CHECK(std::isfinite(options.scale) && options.scale >= 0.f,
             "scaled_dot_product_attention: scale must be finite and >= 0 (0 for 1/sqrt(D)), got " << options.scale);
  g.scale = options.scale > 0.f ? options.scale : 1.f / std::sqrt(static_cast<float>(std::max<int64_t>(g.d, 1)));
  g.causal = options.causal;
  if (options.mask.defined()) {
    const Tensor& mk = options.mask;
    const int64_t md = mk.dim();
    bool ok = md >= 2 && md <= 4 && mk.size(-1) == g.s && (mk.size(-2) == g.t || mk.size(-2) == 1);
    if (ok && md >= 3) ok = mk.size(0) == g.batch || mk.size(0) == 1;
    if (ok && md == 4) ok = mk.size(1) == g.heads || mk.size(1) == 1;
    MAAS_CHECK(ok, "scaled_dot_product_attention: mask " << to_string(mk.shape()) << " does not fit " << shapes()
                                                         << ": expected [T,S], [B,T,S] or [B,H,T,S] = "
                                                         << to_string(Shape{g.batch, g.heads, g.t, g.s})
                                                         << ", where B, H and T may be 1");
    g.mask = mk.data();
    g.mask_t = mk.size(-2) == 1 ? 0 : g.s;
    if (md >= 3) g.mask_b = mk.size(0) == 1 ? 0 : mk.size(-2) * g.s * (md == 4 ? mk.size(1) : 1);
    if (md == 4) g.mask_h = mk.size(1) == 1 ? 0 : mk.size(-2) * g.s;
  }
  MAAS_CHECK(options.dropout >= 0.f && options.dropout < 1.f,
             "scaled_dot_product_attention: dropout must be in [0, 1), got " << options.dropout);
  if (options.dropout > 0.f) {
    MAAS_CHECK(options.generator, "scaled_dot_product_attention: dropout " << options.dropout
                                                                           << " needs a generator to draw from");
    g.dropout = options.dropout;
    g.seed = options.generator->engine()();
  }
  Shape out_shape = q.shape();
  out_shape[3] = g.dv;
  Tensor out = Tensor::empty(out_shape);
  Tensor lse = Tensor::empty({g.batch * g.heads * g.t});
  Tensor mask = options.mask.defined() ? options.mask.detach() : Tensor();
  forward(g, detail::product_precision(), q.data(), k.data(), v.data(), out.data(), lse.data());
  autograd::record("scaled_dot_product_attention", out, {q, k, v},
                   [g, qs = q.detach(), ks = k.detach(), vs = v.detach(), os = out.detach(), lse, mask](
                       const Tensor& dout, std::vector<Tensor>& d) {
                     Geometry gm = g;
                     gm.mask = mask.defined() ? mask.data() : nullptr;
                     backward(gm, detail::product_precision(), qs.data(), ks.data(), vs.data(), os.data(),
                              lse.data(), dout.data(),
                              d[0].defined() ? d[0].data() : nullptr, d[1].defined() ? d[1].data() : nullptr,
                              d[2].defined() ? d[2].data() : nullptr);
                   });
  return out;
}

}  // namespace maas
