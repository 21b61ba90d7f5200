// batch_norm: normalisation over channel dimension 1 with running statistics.
//
// The per-channel sums (mean and variance forward; sum(dy) and
// sum(dy * xhat) backward) are in double, over 8 lanes: element j of each
// plane goes to lane j % 8, and the lanes are added in order at the end. The
// order is fixed by the shape alone (results do not depend on the thread
// count), and the 8 independent chains vectorise; a single chain of
// dependent double additions ran at one element per addition latency and
// made BatchNorm a fifth of a ResNet's training step.
#include <cmath>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {

constexpr int kLanes = 8;

struct LaneSums {
  double v[kLanes] = {};
  double total() const {
    double s = 0.0;
    for (double x : v) s += x;
    return s;
  }
};

// acc.v[j % 8] += f(j) for j < len (f's value converted to double).
template <class F>
inline void add_lanes(LaneSums& acc, int64_t len, F f) {
  int64_t j = 0;
  for (; j + kLanes <= len; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc.v[l] += static_cast<double>(f(j + l));
  for (int l = 0; j < len; ++j, ++l) acc.v[l] += static_cast<double>(f(j));
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean, Tensor running_var,
                  bool training, float momentum, float eps) {
  detail::check_defined(x, "batch_norm", "input");
  MAAS_CHECK(x.dim() == 2 || x.dim() == 4, "batch_norm: input " << to_string(x.shape())
                                                                << " must be [N,C] or [N,C,H,W]");
  const int64_t n = x.size(0), c = x.size(1);
  const int64_t hw = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  const int64_t m = n * hw;  // elements per channel
  auto check_vec = [&](const Tensor& t, const char* what) {
    if (t.defined())
      MAAS_CHECK(t.shape() == Shape{c}, "batch_norm: " << what << " " << to_string(t.shape()) << " does not match "
                                                       << c << " channels of input " << to_string(x.shape()));
  };
  check_vec(gamma, "gamma");
  check_vec(beta, "beta");
  MAAS_CHECK(running_mean.defined() && running_var.defined(), "batch_norm: running statistics are undefined");
  check_vec(running_mean, "running_mean");
  check_vec(running_var, "running_var");
  MAAS_CHECK(!training || m > 1, "batch_norm: training needs more than one value per channel, got input "
                                     << to_string(x.shape()));

  Tensor out = Tensor::empty(x.shape());
  Tensor xhat = Tensor::empty(x.shape());
  Tensor invstd = Tensor::empty({c});
  const float* px = x.data();
  float* py = out.data();
  float* ph = xhat.data();
  float* pis = invstd.data();
  const float* pg = gamma.defined() ? gamma.data() : nullptr;
  const float* pb = beta.defined() ? beta.data() : nullptr;
  float* rm = running_mean.data();
  float* rv = running_var.data();

#pragma omp parallel for if (x.numel() > detail::kParallelGrain) schedule(static)
  for (int64_t ch = 0; ch < c; ++ch) {
    float mean, var;
    if (training) {
      LaneSums sum, squares;
      for (int64_t i = 0; i < n; ++i) {
        const float* p = px + (i * c + ch) * hw;
        add_lanes(sum, hw, [p](int64_t j) { return p[j]; });
      }
      const double mu = sum.total() / static_cast<double>(m);
      for (int64_t i = 0; i < n; ++i) {
        const float* p = px + (i * c + ch) * hw;
        add_lanes(squares, hw, [p, mu](int64_t j) {
          const double e = p[j] - mu;
          return e * e;
        });
      }
      const double ss = squares.total();
      mean = static_cast<float>(mu);
      var = static_cast<float>(ss / static_cast<double>(m));
      rm[ch] = (1.f - momentum) * rm[ch] + momentum * mean;
      rv[ch] = (1.f - momentum) * rv[ch] + momentum * static_cast<float>(ss / static_cast<double>(m - 1));
    } else {
      mean = rm[ch];
      var = rv[ch];
    }
    const float is = 1.f / std::sqrt(var + eps);
    pis[ch] = is;
    const float g = pg ? pg[ch] : 1.f, b = pb ? pb[ch] : 0.f;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c + ch) * hw;
      for (int64_t j = 0; j < hw; ++j) {
        const float h = (px[off + j] - mean) * is;
        ph[off + j] = h;
        py[off + j] = h * g + b;
      }
    }
  }

  autograd::record("batch_norm", out, {x, gamma, beta},
                   [xhat, invstd, gs = gamma.defined() ? gamma.detach() : Tensor(), n, c, hw, m, training](
                       const Tensor& dout, std::vector<Tensor>& d) {
                     const float* g = dout.data();
                     const float* h = xhat.data();
                     const float* is = invstd.data();
                     const float* gam = gs.defined() ? gs.data() : nullptr;
                     float* dx = d[0].defined() ? d[0].data() : nullptr;
                     float* dgamma = d[1].defined() ? d[1].data() : nullptr;
                     float* dbeta = d[2].defined() ? d[2].data() : nullptr;
#pragma omp parallel for if (n * c * hw > detail::kParallelGrain) schedule(static)
                     for (int64_t ch = 0; ch < c; ++ch) {
                       LaneSums sum_g, sum_gh;  // sum(dy), sum(dy * xhat)
                       for (int64_t i = 0; i < n; ++i) {
                         const float* gi = g + (i * c + ch) * hw;
                         const float* hi = h + (i * c + ch) * hw;
                         add_lanes(sum_g, hw, [gi](int64_t j) { return gi[j]; });
                         add_lanes(sum_gh, hw,
                                   [gi, hi](int64_t j) { return static_cast<double>(gi[j]) * hi[j]; });
                       }
                       const double sg = sum_g.total(), sgh = sum_gh.total();
                       if (dgamma) dgamma[ch] += static_cast<float>(sgh);
                       if (dbeta) dbeta[ch] += static_cast<float>(sg);
                       if (!dx) continue;
                       const float k = (gam ? gam[ch] : 1.f) * is[ch];
                       const float mean_g = static_cast<float>(sg / static_cast<double>(m));
                       const float mean_gh = static_cast<float>(sgh / static_cast<double>(m));
                       for (int64_t i = 0; i < n; ++i) {
                         const int64_t off = (i * c + ch) * hw;
                         for (int64_t j = 0; j < hw; ++j) {
                           // Training: the batch statistics depend on x too.
                           dx[off + j] += training ? k * (g[off + j] - mean_g - h[off + j] * mean_gh) : k * g[off + j];
                         }
                       }
                     }
                   });
  return out;
}

}  // namespace maas
