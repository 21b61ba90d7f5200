// Accuracy, class extraction from scores and labels, and the confusion matrix.
#include "maas/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>
#include <sstream>

#include "maas/error.hpp"
#include "maas/loss.hpp"

namespace maas::metrics {

namespace {

bool single_output(const Tensor& scores) {
  return scores.dim() == 1 || (scores.dim() == 2 && scores.size(1) == 1);
}

void check_scores(const Tensor& scores, const char* who) {
  MAAS_CHECK(scores.defined(), who << ": scores are an undefined tensor");
  MAAS_CHECK(scores.dim() == 1 || scores.dim() == 2,
             who << ": scores of shape " << to_string(scores.shape())
                 << " are not [N, C] (class scores), [N] or [N, 1] (one output per sample)");
}

// Index of the largest of n values (the first on ties; NaN never wins).
int64_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; ++j)
    if (v[j] > v[best] || std::isnan(v[best])) best = j;
  return best;
}

}  // namespace

float decision_threshold(const Loss& loss) {
  if (dynamic_cast<const BinaryCrossEntropyWithLogitsLoss*>(&loss) != nullptr) return 0.f;
  if (dynamic_cast<const HingeLoss*>(&loss) != nullptr) return 0.f;
  return 0.5f;
}

std::vector<int64_t> predicted_classes(const Tensor& scores, float threshold) {
  check_scores(scores, "predicted_classes");
  const int64_t n = scores.size(0);
  std::vector<int64_t> out(static_cast<size_t>(n));
  const float* s = scores.data();
  if (single_output(scores)) {
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = s[i] > threshold ? 1 : 0;
  } else {
    const int64_t c = scores.size(1);
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = argmax(s + i * c, c);
  }
  return out;
}

std::vector<int64_t> target_classes(const Tensor& scores, const Tensor& labels) {
  check_scores(scores, "target_classes");
  MAAS_CHECK(labels.defined(), "target_classes: labels are an undefined tensor");
  const int64_t n = scores.size(0);
  MAAS_CHECK(labels.dim() >= 1 && labels.size(0) == n, "target_classes: labels of shape "
                                                           << to_string(labels.shape()) << " do not match scores "
                                                           << to_string(scores.shape()) << " (" << n
                                                           << " samples)");
  std::vector<int64_t> out(static_cast<size_t>(n));
  const float* y = labels.data();
  if (single_output(scores)) {
    MAAS_CHECK(labels.numel() == n, "target_classes: single-output scores " << to_string(scores.shape())
                                                                            << " need [N] or [N, 1] targets, got "
                                                                            << to_string(labels.shape()));
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = y[i] > 0.5f ? 1 : 0;
    return out;
  }
  const int64_t c = scores.size(1);
  if (labels.dim() == 2 && labels.size(1) == c && c > 1) {  // one-hot or probability rows
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = argmax(y + i * c, c);
    return out;
  }
  MAAS_CHECK(labels.numel() == n, "target_classes: labels of shape " << to_string(labels.shape())
                                                                     << " fit neither class indices [N] nor rows "
                                                                        "like the scores "
                                                                     << to_string(scores.shape()));
  for (int64_t i = 0; i < n; ++i) {
    const float v = y[i];
    MAAS_CHECK(v >= 0.f && v < static_cast<float>(c) && v == std::floor(v),
               "target_classes: label " << v << " of sample " << i << " is not a class index in [0, " << c
                                        << ") for scores " << to_string(scores.shape()));
    out[static_cast<size_t>(i)] = static_cast<int64_t>(v);
  }
  return out;
}

int64_t count_correct(const Tensor& scores, const Tensor& labels, float threshold) {
  const std::vector<int64_t> t = target_classes(scores, labels);
  const std::vector<int64_t> p = predicted_classes(scores, threshold);
  int64_t correct = 0;
  for (size_t i = 0; i < p.size(); ++i) correct += p[i] == t[i];
  return correct;
}

double accuracy(const Tensor& scores, const Tensor& labels, float threshold) {
  const int64_t n = scores.defined() && scores.dim() >= 1 ? scores.size(0) : 0;
  const int64_t correct = count_correct(scores, labels, threshold);
  return n == 0 ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(correct) / static_cast<double>(n);
}

int64_t count_binary_correct(const Tensor& scores, const Tensor& targets, float threshold) {
  MAAS_CHECK(scores.defined() && targets.defined(), "binary_accuracy: scores and targets must be defined tensors");
  MAAS_CHECK(scores.numel() == targets.numel(), "binary_accuracy: scores " << to_string(scores.shape()) << " and targets "
                                                                         << to_string(targets.shape())
                                                                         << " hold different numbers of elements");
  const float* s = scores.data();
  const float* t = targets.data();
  int64_t correct = 0;
  for (int64_t i = 0; i < scores.numel(); ++i) correct += (s[i] > threshold) == (t[i] > 0.5f);
  return correct;
}

double binary_accuracy(const Tensor& scores, const Tensor& targets, float threshold) {
  const int64_t correct = count_binary_correct(scores, targets, threshold);
  const int64_t n = scores.numel();
  return n == 0 ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(correct) / static_cast<double>(n);
}

// ---- ConfusionMatrix -------------------------------------------------------

ConfusionMatrix::ConfusionMatrix(int64_t num_classes) : n_(num_classes), fixed_(num_classes > 0) {
  MAAS_CHECK(num_classes >= 0, "ConfusionMatrix: num_classes " << num_classes
                                                               << " must be >= 0 (0 grows to fit the classes seen)");
  counts_.assign(static_cast<size_t>(n_ * n_), 0);
}

void ConfusionMatrix::grow(int64_t n) {
  if (n <= n_) return;
  std::vector<int64_t> bigger(static_cast<size_t>(n * n), 0);
  for (int64_t i = 0; i < n_; ++i)
    for (int64_t j = 0; j < n_; ++j) bigger[static_cast<size_t>(i * n + j)] = counts_[static_cast<size_t>(i * n_ + j)];
  counts_ = std::move(bigger);
  n_ = n;
}

void ConfusionMatrix::check_class(int64_t c, const char* who) const {
  MAAS_CHECK(c >= 0 && c < n_, "ConfusionMatrix::" << who << ": class " << c << " is out of range [0, " << n_ << ")");
}

void ConfusionMatrix::add(int64_t true_class, int64_t predicted_class, int64_t count) {
  MAAS_CHECK(true_class >= 0 && predicted_class >= 0,
             "ConfusionMatrix::add: classes must be >= 0, got true " << true_class << ", predicted " << predicted_class);
  MAAS_CHECK(count >= 0, "ConfusionMatrix::add: count " << count << " must be >= 0");
  if (fixed_) {
    MAAS_CHECK(true_class < n_ && predicted_class < n_,
               "ConfusionMatrix::add: class " << std::max(true_class, predicted_class)
                                              << " is out of range for a matrix of " << n_
                                              << " classes (construct it with more, or with 0 to grow)");
  } else {
    grow(std::max(true_class, predicted_class) + 1);
  }
  counts_[static_cast<size_t>(true_class * n_ + predicted_class)] += count;
}

void ConfusionMatrix::update(const Tensor& scores, const Tensor& labels, float threshold) {
  const std::vector<int64_t> t = target_classes(scores, labels);
  const std::vector<int64_t> p = predicted_classes(scores, threshold);
  const int64_t c = single_output(scores) ? 2 : scores.size(1);
  if (!fixed_) grow(c);
  MAAS_CHECK(c <= n_, "ConfusionMatrix::update: scores " << to_string(scores.shape()) << " describe " << c
                                                         << " classes but the matrix has " << n_);
  for (size_t i = 0; i < p.size(); ++i) add(t[i], p[i]);
}

void ConfusionMatrix::reset() { std::fill(counts_.begin(), counts_.end(), 0); }

int64_t ConfusionMatrix::count(int64_t true_class, int64_t predicted_class) const {
  check_class(true_class, "count");
  check_class(predicted_class, "count");
  return counts_[static_cast<size_t>(true_class * n_ + predicted_class)];
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t v : counts_) t += v;
  return t;
}

int64_t ConfusionMatrix::support(int64_t c) const {
  check_class(c, "support");
  int64_t s = 0;
  for (int64_t j = 0; j < n_; ++j) s += counts_[static_cast<size_t>(c * n_ + j)];
  return s;
}

int64_t ConfusionMatrix::predicted(int64_t c) const {
  check_class(c, "predicted");
  int64_t s = 0;
  for (int64_t i = 0; i < n_; ++i) s += counts_[static_cast<size_t>(i * n_ + c)];
  return s;
}

double ConfusionMatrix::accuracy() const {
  int64_t diag = 0;
  for (int64_t c = 0; c < n_; ++c) diag += counts_[static_cast<size_t>(c * n_ + c)];
  const int64_t t = total();
  return t == 0 ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(diag) / static_cast<double>(t);
}

namespace {
double ratio(int64_t a, int64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b); }
}  // namespace

double ConfusionMatrix::precision(int64_t c) const { return ratio(count(c, c), predicted(c)); }
double ConfusionMatrix::recall(int64_t c) const { return ratio(count(c, c), support(c)); }
double ConfusionMatrix::f1(int64_t c) const {
  const double p = precision(c), r = recall(c);
  return p + r == 0.0 ? 0.0 : 2.0 * p * r / (p + r);
}

namespace {
template <class F>
double macro(int64_t n, F f) {
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  double s = 0.0;
  for (int64_t c = 0; c < n; ++c) s += f(c);
  return s / static_cast<double>(n);
}
template <class F>
double weighted(const ConfusionMatrix& m, F f) {
  const int64_t t = m.total();
  if (t == 0) return std::numeric_limits<double>::quiet_NaN();
  double s = 0.0;
  for (int64_t c = 0; c < m.num_classes(); ++c) s += f(c) * static_cast<double>(m.support(c));
  return s / static_cast<double>(t);
}
}  // namespace

double ConfusionMatrix::macro_precision() const { return macro(n_, [&](int64_t c) { return precision(c); }); }
double ConfusionMatrix::macro_recall() const { return macro(n_, [&](int64_t c) { return recall(c); }); }
double ConfusionMatrix::macro_f1() const { return macro(n_, [&](int64_t c) { return f1(c); }); }
double ConfusionMatrix::weighted_precision() const { return weighted(*this, [&](int64_t c) { return precision(c); }); }
double ConfusionMatrix::weighted_recall() const { return weighted(*this, [&](int64_t c) { return recall(c); }); }
double ConfusionMatrix::weighted_f1() const { return weighted(*this, [&](int64_t c) { return f1(c); }); }

namespace {
std::string printf_string(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string printf_string(const char* fmt, ...) {
  char buf[256];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}
}  // namespace

std::string ConfusionMatrix::report(const std::vector<std::string>& class_names, int digits) const {
  MAAS_CHECK(class_names.empty() || static_cast<int64_t>(class_names.size()) == n_,
             "ConfusionMatrix::report: " << class_names.size() << " class names given for " << n_ << " classes");
  MAAS_CHECK(digits >= 0 && digits <= 10, "ConfusionMatrix::report: digits " << digits << " must be in [0, 10]");
  std::vector<std::string> names = class_names;
  if (names.empty())
    for (int64_t c = 0; c < n_; ++c) names.push_back(std::to_string(c));
  // sklearn: the name column is as wide as the longest name or "weighted avg".
  int width = std::max<int>(12, digits);
  for (const std::string& s : names) width = std::max<int>(width, static_cast<int>(s.size()));

  std::string out = printf_string("%*s  %9s %9s %9s %9s\n\n", width, "", "precision", "recall", "f1-score", "support");
  auto row = [&](const std::string& name, double p, double r, double f, int64_t s) {
    out += printf_string("%*s  %9.*f %9.*f %9.*f %9lld\n", width, name.c_str(), digits, p, digits, r, digits, f,
                         static_cast<long long>(s));
  };
  for (int64_t c = 0; c < n_; ++c) row(names[static_cast<size_t>(c)], precision(c), recall(c), f1(c), support(c));
  out += "\n";
  out += printf_string("%*s  %9s %9s %9.*f %9lld\n", width, "accuracy", "", "", digits, accuracy(),
                       static_cast<long long>(total()));
  row("macro avg", macro_precision(), macro_recall(), macro_f1(), total());
  row("weighted avg", weighted_precision(), weighted_recall(), weighted_f1(), total());
  return out;
}

std::string ConfusionMatrix::str() const {
  int64_t largest = 1;
  for (int64_t v : counts_) largest = std::max(largest, v);
  const int w = std::max<int>(static_cast<int>(std::to_string(largest).size()),
                              static_cast<int>(std::to_string(std::max<int64_t>(n_ - 1, 0)).size())) + 1;
  std::ostringstream os;
  os << "true\\pred";
  for (int64_t j = 0; j < n_; ++j) os << printf_string("%*lld", w, static_cast<long long>(j));
  os << "\n";
  for (int64_t i = 0; i < n_; ++i) {
    os << printf_string("%9lld", static_cast<long long>(i));
    for (int64_t j = 0; j < n_; ++j) os << printf_string("%*lld", w, static_cast<long long>(count(i, j)));
    os << "\n";
  }
  return os.str();
}

}  // namespace maas::metrics
