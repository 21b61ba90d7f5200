// scaled_dot_product_attention: softmax(Q K^T * scale + mask) V, fused.
//
// Flash-attention's idea on a CPU: no [T, S] matrix of scores is ever
// stored. Each query row walks the keys in blocks of kKeyBlock with an
// online softmax (a running maximum m, a running sum l, the output
// accumulated and rescaled when m grows), and keeps only its log-sum-exp
// lse = m + log(l) for the backward. The backward recomputes each score
// from Q and K and lse:
//   p = exp(s - lse),  D_i = dO_i . O_i
//   dV_j += p_ij dO_i,  dp_ij = dO_i . V_j,  ds_ij = p_ij (dp_ij - D_i)
//   dQ_i += scale ds_ij K_j,  dK_j += scale ds_ij Q_i
// so memory is O(B*H*T*D) and the extra state is one float per query row.
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
#include "maas/autograd.hpp"
#include "maas/ops.hpp"
#include "ops/vmath.hpp"

namespace maas {

namespace {

constexpr int64_t kKeyBlock = 128;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline float dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

inline uint64_t mix(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
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
    const float u = static_cast<float>(mix(seed + mix(idx)) >> 40) * 0x1.0p-24f;
    return u < dropout ? 0.f : 1.f / (1.f - dropout);
  }
};

void forward(const Geometry& g, const float* q, const float* k, const float* v, float* o, float* lse) {
#pragma omp parallel
  {
    std::vector<float> sc(kKeyBlock);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < g.batch * g.heads; ++bh) {
      const int64_t b = bh / g.heads, h = bh % g.heads;
      for (int64_t i = 0; i < g.t; ++i) {
        const float* qi = q + g.at(b, h, i, g.t, g.d);
        float* oi = o + g.at(b, h, i, g.t, g.dv);
        std::fill(oi, oi + g.dv, 0.f);
        float m = kNegInf, l = 0.f;
        const int64_t end = g.key_end(i);
        for (int64_t j0 = 0; j0 < end; j0 += kKeyBlock) {
          const int64_t j1 = std::min(end, j0 + kKeyBlock);
          float bm = kNegInf;
          for (int64_t j = j0; j < j1; ++j) {
            const float s = g.masked(b, h, i, j) ? kNegInf : g.scale * dot(qi, k + g.at(b, h, j, g.s, g.d), g.d);
            sc[j - j0] = s;
            bm = std::max(bm, s);
          }
          if (bm == kNegInf) continue;
          if (bm > m) {
            const float correction = m == kNegInf ? 0.f : detail::vexp(m - bm);  // 0 while m is -inf
            l *= correction;
            for (int64_t c = 0; c < g.dv; ++c) oi[c] *= correction;
            m = bm;
          }
          for (int64_t j = j0; j < j1; ++j) {
            if (sc[j - j0] == kNegInf) continue;
            const float p = detail::vexp(sc[j - j0] - m);
            l += p;
            const float w = p * g.keep(b, h, i, j);
            if (w != 0.f) axpy(w, v + g.at(b, h, j, g.s, g.dv), oi, g.dv);
          }
        }
        // A row that sees no key (every key masked) outputs zeros.
        const float inv = l > 0.f ? 1.f / l : 0.f;
        for (int64_t c = 0; c < g.dv; ++c) oi[c] *= inv;
        lse[bh * g.t + i] = l > 0.f ? m + std::log(l) : kNegInf;
      }
    }
  }
}

// dq, dk, dv may be null (no gradient wanted); the others accumulate.
void backward(const Geometry& g, const float* q, const float* k, const float* v, const float* o, const float* lse,
              const float* dout, float* dq, float* dk, float* dv) {
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < g.batch * g.heads; ++bh) {
    const int64_t b = bh / g.heads, h = bh % g.heads;
    for (int64_t i = 0; i < g.t; ++i) {
      const float li = lse[bh * g.t + i];
      if (li == kNegInf) continue;
      const float* qi = q + g.at(b, h, i, g.t, g.d);
      const float* doi = dout + g.at(b, h, i, g.t, g.dv);
      const float di = dot(doi, o + g.at(b, h, i, g.t, g.dv), g.dv);
      float* dqi = dq ? dq + g.at(b, h, i, g.t, g.d) : nullptr;
      const int64_t end = g.key_end(i);
      for (int64_t j = 0; j < end; ++j) {
        if (g.masked(b, h, i, j)) continue;
        const float* kj = k + g.at(b, h, j, g.s, g.d);
        const float* vj = v + g.at(b, h, j, g.s, g.dv);
        const float p = detail::vexp(g.scale * dot(qi, kj, g.d) - li);
        const float z = g.keep(b, h, i, j);
        if (dv && z != 0.f) axpy(p * z, doi, dv + g.at(b, h, j, g.s, g.dv), g.dv);
        const float ds = p * (z * dot(doi, vj, g.dv) - di) * g.scale;
        if (dqi) axpy(ds, kj, dqi, g.d);
        if (dk) axpy(ds, qi, dk + g.at(b, h, j, g.s, g.d), g.d);
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
  forward(g, q.data(), k.data(), v.data(), out.data(), lse.data());
  autograd::record("scaled_dot_product_attention", out, {q, k, v},
                   [g, qs = q.detach(), ks = k.detach(), vs = v.detach(), os = out.detach(), lse, mask](
                       const Tensor& dout, std::vector<Tensor>& d) {
                     Geometry gm = g;
                     gm.mask = mask.defined() ? mask.data() : nullptr;
                     backward(gm, qs.data(), ks.data(), vs.data(), os.data(), lse.data(), dout.data(),
                              d[0].defined() ? d[0].data() : nullptr, d[1].defined() ? d[1].data() : nullptr,
                              d[2].defined() ? d[2].data() : nullptr);
                   });
  return out;
}

}  // namespace maas
