// binary_cross_entropy_with_logits: sigmoid and binary cross-entropy fused,
// forward and backward (PyTorch's BCEWithLogitsLoss).
//
// With x the logit, y the target and p the positive weight (1 when none):
//   l      = (1 - y) x + (1 + (p - 1) y) softplus(-x)
//   dl/dx  = (1 + (p - 1) y) sigmoid(x) - p y           (= sigmoid(x) - y for p = 1)
//   dl/dy  = (p - 1) softplus(-x) - x
// softplus(-x) = log(1 + exp(-x)) is split by the sign of x so exp never
// overflows, and for x < 0 the loss is rearranged to -p y x + (1 + (p - 1) y) log1p(exp(x))
// so that large |x| loses nothing to cancellation: logits of +-1e4 give the
// exact limits (loss 0 or |x|, gradient 0 or +-1).
#include <cmath>

#include "loss/reduction.hpp"
#include "maas/autograd.hpp"
#include "maas/loss.hpp"

namespace maas {

namespace {

struct Bce {
  float loss, dx, dy;
};

inline Bce bce(float x, float y, float p) {
  const float lw = 1.f + (p - 1.f) * y;
  const float tail = std::log1p(std::exp(-std::fabs(x)));  // log(1 + exp(-|x|))
  const float softplus_neg = (x >= 0.f ? 0.f : -x) + tail;  // log(1 + exp(-x))
  const float loss = x >= 0.f ? (1.f - y) * x + lw * tail : -p * y * x + lw * tail;
  const float e = std::exp(-std::fabs(x));
  const float sig = x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
  return {loss, lw * sig - p * y, (p - 1.f) * softplus_neg - x};
}

}  // namespace

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, const BCEOptions& options) {
  const char* name = "binary_cross_entropy_with_logits";
  detail::check_same_shape(logits, targets, name, "logits", "targets");
  const std::vector<float>& pw = options.pos_weight;
  const int64_t last = logits.dim() > 0 ? logits.size(-1) : 1;
  MAAS_CHECK(pw.empty() || pw.size() == 1 || static_cast<int64_t>(pw.size()) == last,
             name << ": pos_weight has " << pw.size() << " entries but logits " << to_string(logits.shape())
                  << " have " << last << " in the last dimension (or give 1 for all)");
  detail::check_weights(pw, name, "pos_weight");
  const int64_t n = logits.numel();
  const detail::Reducer reducer = detail::make_reducer(options.reduction, n, static_cast<double>(n), name,
                                                       logits.shape());
  // The positive weight of element i.
  auto weight_of = [pw, last](int64_t i) {
    if (pw.empty()) return 1.f;
    if (pw.size() == 1) return pw[0];
    return pw[static_cast<size_t>(i % last)];
  };

  Tensor per = Tensor::empty(logits.shape());
  const float* px = logits.data();
  const float* py = targets.data();
  float* pl = per.data();
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) pl[i] = bce(px[i], py[i], weight_of(i)).loss;
  Tensor out = reducer.output(per);
  autograd::record(name, out, {logits, targets},
                   [xs = logits.detach(), ys = targets.detach(), reducer, weight_of](const Tensor& dout,
                                                                                    std::vector<Tensor>& d) {
                     const float* px = xs.data();
                     const float* py = ys.data();
                     const float* g = dout.data();
                     const int64_t n = xs.numel();
                     // dlogits and dtargets may alias: one after the other.
                     if (d[0].defined()) {
                       float* dx = d[0].data();
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(static)
                       for (int64_t i = 0; i < n; ++i)
                         dx[i] += reducer.grad(g, i) * bce(px[i], py[i], weight_of(i)).dx;
                     }
                     if (d[1].defined()) {
                       float* dy = d[1].data();
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(static)
                       for (int64_t i = 0; i < n; ++i)
                         dy[i] += reducer.grad(g, i) * bce(px[i], py[i], weight_of(i)).dy;
                     }
                   });
  return out;
}

}  // namespace maas
