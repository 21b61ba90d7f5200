// cross_entropy (class labels) and cross_entropy_with_probs (probability
// targets): log-softmax and negative log-likelihood fused into one op.
//
// Both are the same computation. Row i of the logits x [N,C] has a target
// row t_i >= 0 (class weight times target probability, after smoothing):
//   log p_ic = (x_ic - m_i) - log sum_c exp(x_ic - m_i),   m_i = max_c x_ic
//   l_i      = -sum_c t_ic log p_ic
//   dx_ic   += g_i (p_ic sum_c' t_ic' - t_ic)
// Subtracting the row maximum keeps exp from overflowing, and log p is taken
// from the shifted logits, never as log(p): logits of +-1e4 give finite
// losses and gradients exactly p - t.
//
// Logits of any rank >= 2 hold their classes on the last axis (as Keras'
// sparse categorical cross-entropy over a sequence [B, T, V]); every other
// axis counts as rows. A label equal to ignore_index gives a row no target
// at all: no loss, no gradient, and no share of the Mean's denominator.
#include <cmath>
#include <iomanip>
#include <utility>

#include "loss/reduction.hpp"
#include "maas/autograd.hpp"
#include "maas/loss.hpp"

namespace maas {

namespace {

void check_options(const CrossEntropyOptions& options, int64_t classes, const char* op, const Tensor& logits) {
  MAAS_CHECK(options.label_smoothing >= 0.f && options.label_smoothing <= 1.f,
             op << ": label_smoothing " << options.label_smoothing << " is outside [0, 1]");
  MAAS_CHECK(options.class_weights.empty() || static_cast<int64_t>(options.class_weights.size()) == classes,
             op << ": class_weights has " << options.class_weights.size() << " entries but logits "
                << to_string(logits.shape()) << " have " << classes << " classes");
  detail::check_weights(options.class_weights, op, "class_weights");
}

void check_logits(const Tensor& logits, const char* op) {
  detail::check_defined(logits, op, "logits");
  MAAS_CHECK(logits.dim() >= 2 && logits.size(-1) > 0,
             op << ": logits " << to_string(logits.shape()) << " must be [N,C] with C >= 1 (or [N,...,C], the classes last)");
}

// Per-row log-softmax into logp, shaped like the logits; returns it.
Tensor log_softmax_rows(const Tensor& logits) {
  const int64_t classes = logits.size(-1), rows = logits.numel() / classes;
  Tensor logp = Tensor::empty(logits.shape());
  const float* px = logits.data();
  float* pl = logp.data();
#pragma omp parallel for if (rows * classes > detail::kParallelGrain) schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const float* x = px + i * classes;
    float* l = pl + i * classes;
    float m = x[0];
    for (int64_t c = 1; c < classes; ++c) m = std::fmax(m, x[c]);
    double s = 0.0;
    for (int64_t c = 0; c < classes; ++c) s += std::exp(static_cast<double>(x[c] - m));
    const float log_s = static_cast<float>(std::log(s));
    for (int64_t c = 0; c < classes; ++c) l[c] = (x[c] - m) - log_s;
  }
  return logp;
}

// The shared op over rows of the last axis; None returns `row_shape`.
// target(i, c) gives t_ic. If `probs` is defined (the
// probability form) it is the second input, and dprobs_ic += -g_i dt_ic/dq_ic
// log p_ic with dt_ic/dq_ic = (1 - s) w_c.
template <class Target>
Tensor softmax_cross_entropy(const char* name, const Tensor& logits, const Tensor& probs, Target target,
                             const CrossEntropyOptions& options, double denominator, const Shape& row_shape) {
  const int64_t classes = logits.size(-1), rows = logits.numel() / classes;
  const detail::Reducer reducer = detail::make_reducer(options.reduction, rows, denominator, name, logits.shape());
  Tensor logp = log_softmax_rows(logits);
  Tensor per = Tensor::empty(row_shape);
  {
    const float* pl = logp.data();
    float* pr = per.data();
#pragma omp parallel for if (rows * classes > detail::kParallelGrain) schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      double acc = 0.0;
      for (int64_t c = 0; c < classes; ++c) {
        const float t = target(i, c);
        if (t != 0.f) acc -= static_cast<double>(t) * pl[i * classes + c];
      }
      pr[i] = static_cast<float>(acc);
    }
  }
  Tensor out = reducer.output(per);
  std::vector<Tensor> inputs{logits};
  if (probs.defined()) inputs.push_back(probs);
  const float dq_scale = 1.f - options.label_smoothing;
  std::vector<float> weights = options.class_weights;
  autograd::record(
      name, out, std::move(inputs),
      [logp, target, reducer, dq_scale, weights = std::move(weights)](const Tensor& dout, std::vector<Tensor>& d) {
        const int64_t classes = logp.size(-1), rows = logp.numel() / classes;
        const float* pl = logp.data();
        const float* g = dout.data();
        if (d[0].defined()) {
          float* dx = d[0].data();
#pragma omp parallel for if (rows * classes > detail::kParallelGrain) schedule(static)
          for (int64_t i = 0; i < rows; ++i) {
            const float gi = reducer.grad(g, i);
            double total = 0.0;
            for (int64_t c = 0; c < classes; ++c) total += target(i, c);
            const float ti = static_cast<float>(total);
            for (int64_t c = 0; c < classes; ++c)
              dx[i * classes + c] += gi * (std::exp(pl[i * classes + c]) * ti - target(i, c));
          }
        }
        if (d.size() > 1 && d[1].defined()) {
          float* dq = d[1].data();
#pragma omp parallel for if (rows * classes > detail::kParallelGrain) schedule(static)
          for (int64_t i = 0; i < rows; ++i) {
            const float gi = reducer.grad(g, i);
            for (int64_t c = 0; c < classes; ++c) {
              const float w = weights.empty() ? 1.f : weights[static_cast<size_t>(c)];
              dq[i * classes + c] -= gi * dq_scale * w * pl[i * classes + c];
            }
          }
        }
      });
  return out;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const CrossEntropyOptions& options) {
  const char* name = "cross_entropy";
  check_logits(logits, name);
  detail::check_defined(labels, name, "labels");
  const int64_t classes = logits.size(-1), rows = logits.numel() / classes;
  const Shape row_shape(logits.shape().begin(), logits.shape().end() - 1);
  MAAS_CHECK(labels.shape() == row_shape, name << ": labels " << to_string(labels.shape())
                                               << " do not match logits " << to_string(logits.shape())
                                               << " (expected " << to_string(row_shape)
                                               << ", one class index per row)");
  check_options(options, classes, name, logits);

  // -1 marks an ignored row.
  std::vector<int64_t> y(static_cast<size_t>(rows));
  const float* pl = labels.data();
  const float ignore = static_cast<float>(options.ignore_index);
  for (int64_t i = 0; i < rows; ++i) {
    const float v = pl[i];
    MAAS_CHECK(std::floor(v) == v, name << ": label " << std::setprecision(9) << v << " at index " << i
                                        << " is not a whole number (labels are class indices stored as float)");
    if (v == ignore) {
      y[static_cast<size_t>(i)] = -1;
      continue;
    }
    MAAS_CHECK(v >= 0.f && v < static_cast<float>(classes),
               name << ": label " << v << " at index " << i << " is out of range for " << classes << " classes");
    y[static_cast<size_t>(i)] = static_cast<int64_t>(v);
  }

  // t_ic = (1 - s) w_y [c == y_i] + s w_c / C; Mean divides by sum_i w[y_i],
  // over the rows not ignored.
  const std::vector<float>& w = options.class_weights;
  double denominator = 0.0;
  for (int64_t yi : y)
    if (yi >= 0) denominator += w.empty() ? 1.0 : w[static_cast<size_t>(yi)];
  const float s = options.label_smoothing;
  auto target = [y = std::move(y), w, hit = 1.f - s, spread = s / static_cast<float>(classes)](int64_t i,
                                                                                             int64_t c) {
    const int64_t yi = y[static_cast<size_t>(i)];
    if (yi < 0) return 0.f;
    const float wc = w.empty() ? 1.f : w[static_cast<size_t>(c)];
    return wc * ((c == yi ? hit : 0.f) + spread);
  };
  return softmax_cross_entropy(name, logits, Tensor(), std::move(target), options, denominator, row_shape);
}

Tensor cross_entropy_with_probs(const Tensor& logits, const Tensor& target_probs,
                                const CrossEntropyOptions& options) {
  const char* name = "cross_entropy_with_probs";
  check_logits(logits, name);
  detail::check_defined(target_probs, name, "target_probs");
  MAAS_CHECK(target_probs.shape() == logits.shape(), name << ": target_probs " << to_string(target_probs.shape())
                                                          << " do not match logits " << to_string(logits.shape()));
  const int64_t classes = logits.size(-1);
  check_options(options, classes, name, logits);

  // t_ic = w_c ((1 - s) q_ic + s / C); Mean divides by N.
  const float s = options.label_smoothing;
  const Tensor q = target_probs.detach();
  auto target = [q, pq = q.data(), w = options.class_weights, classes, keep = 1.f - s,
                 spread = s / static_cast<float>(classes)](int64_t i, int64_t c) {
    const float wc = w.empty() ? 1.f : w[static_cast<size_t>(c)];
    return wc * (keep * pq[i * classes + c] + spread);
  };
  return softmax_cross_entropy(name, logits, target_probs, std::move(target), options,
                               static_cast<double>(logits.numel() / classes),
                               Shape(logits.shape().begin(), logits.shape().end() - 1));
}

}  // namespace maas
