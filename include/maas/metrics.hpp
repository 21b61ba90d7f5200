// maas/metrics.hpp: accuracy and the confusion matrix, with sklearn's report.
//
// Predicted classes come from a model's output ("scores"):
//   [N, C] with C > 1   the argmax of each row (logits or probabilities);
//   [N] or [N, 1]       a single output per sample: class 1 when it is
//                       > threshold, else 0. Use threshold 0 for logits
//                       (BinaryCrossEntropyWithLogitsLoss, HingeLoss) and 0.5
//                       for probabilities (decision_threshold() picks).
// True classes come from the targets:
//   [N] whole numbers   class indices, with [N, C] scores;
//   [N] or [N, 1]       binary targets with single-output scores: class 1 when
//                       > 0.5 (so 0/1 and -1/1 targets both work);
//   [N, C]              one-hot or probability rows: their argmax.
//
// Example:
//   maas::metrics::ConfusionMatrix cm(3);
//   cm.update(logits, labels);        // once per batch
//   std::cout << cm.report({"cat", "dog", "bird"});
//
// What this file is not: no ranking metrics (AUC, top-k), no regression metrics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "maas/tensor.hpp"

namespace maas {
class Loss;
}

namespace maas::metrics {

// The single-output threshold that suits `loss`: 0 for losses on logits or
// margins (binary_cross_entropy_with_logits, hinge_loss), 0.5 otherwise.
float decision_threshold(const Loss& loss);

// Predicted class of each sample from scores [N, C], [N] or [N, 1] (see top).
std::vector<int64_t> predicted_classes(const Tensor& scores, float threshold = 0.5f);
// True class of each sample; `scores` tells how to read `labels` (see top).
// Throws maas::Error for a label that is not a whole number >= 0, or shapes
// that do not fit together.
std::vector<int64_t> target_classes(const Tensor& scores, const Tensor& labels);

// Number of samples whose predicted class equals the true class.
int64_t count_correct(const Tensor& scores, const Tensor& labels, float threshold = 0.5f);
// Fraction of samples predicted right, in [0, 1] (NaN for no samples).
double accuracy(const Tensor& scores, const Tensor& labels, float threshold = 0.5f);

// Keras' binary_accuracy, element-wise for any shape (multi-label outputs
// too): entries where (score > threshold) == (target > 0.5). scores and
// targets hold the same number of elements.
int64_t count_binary_correct(const Tensor& scores, const Tensor& targets, float threshold = 0.5f);
double binary_accuracy(const Tensor& scores, const Tensor& targets, float threshold = 0.5f);

// Counts of (true class, predicted class) pairs: row = true, column =
// predicted, as sklearn.metrics.confusion_matrix. With num_classes 0 the
// matrix grows to fit the largest class seen.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t num_classes = 0);

  // Adds `count` samples of class `true_class` predicted as `predicted_class`.
  void add(int64_t true_class, int64_t predicted_class, int64_t count = 1);
  // Adds a batch: classes from scores and labels as described at the top.
  void update(const Tensor& scores, const Tensor& labels, float threshold = 0.5f);
  void reset();

  int64_t num_classes() const { return n_; }
  int64_t count(int64_t true_class, int64_t predicted_class) const;
  int64_t total() const;
  // Samples of class c (row sum) and predictions of class c (column sum).
  int64_t support(int64_t c) const;
  int64_t predicted(int64_t c) const;

  // Fraction on the diagonal (NaN when empty).
  double accuracy() const;
  // tp / (tp + fp), tp / (tp + fn), their harmonic mean; 0 when the
  // denominator is 0 (sklearn's zero_division default).
  double precision(int64_t c) const;
  double recall(int64_t c) const;
  double f1(int64_t c) const;
  // Unweighted means over all num_classes() classes.
  double macro_precision() const;
  double macro_recall() const;
  double macro_f1() const;
  // Means weighted by support.
  double weighted_precision() const;
  double weighted_recall() const;
  double weighted_f1() const;

  // sklearn's classification_report layout: one row per class (precision,
  // recall, f1-score, support), then accuracy, macro avg and weighted avg.
  // class_names: empty (classes are numbered) or one per class.
  std::string report(const std::vector<std::string>& class_names = {}, int digits = 2) const;
  // The matrix itself, rows = true class, columns = predicted class.
  std::string str() const;

 private:
  void check_class(int64_t c, const char* who) const;
  void grow(int64_t n);

  int64_t n_;
  bool fixed_;
  std::vector<int64_t> counts_;  // n_ x n_, row-major
};

}  // namespace maas::metrics
