// accuracy, predicted/target classes and the confusion matrix with its report.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "maas/loss.hpp"
#include "maas/metrics.hpp"

using namespace maas;
using maas::metrics::ConfusionMatrix;

TEST_CASE("predicted classes: argmax for [N,C], threshold for one output", "[metrics]") {
  Tensor scores = Tensor::from_vector({0.1f, 2.f, -1.f,  //
                                       3.f, 3.f, 0.f,    // a tie: the first wins
                                       -5.f, -6.f, -4.f},
                                      {3, 3});
  CHECK(metrics::predicted_classes(scores) == std::vector<int64_t>{1, 0, 2});

  Tensor logits = Tensor::from_vector({-0.5f, 0.2f, 0.7f}, {3, 1});
  CHECK(metrics::predicted_classes(logits, 0.f) == std::vector<int64_t>{0, 1, 1});
  CHECK(metrics::predicted_classes(logits, 0.5f) == std::vector<int64_t>{0, 0, 1});
  CHECK(metrics::predicted_classes(Tensor::from_vector({0.4f, 0.6f}, {2})) == std::vector<int64_t>{0, 1});
  CHECK_THROWS_AS(metrics::predicted_classes(Tensor::zeros({2, 2, 2})), maas::Error);
}

TEST_CASE("decision_threshold: logits for BCE-with-logits and hinge, 0.5 otherwise", "[metrics]") {
  CHECK(metrics::decision_threshold(BinaryCrossEntropyWithLogitsLoss()) == 0.f);
  CHECK(metrics::decision_threshold(HingeLoss()) == 0.f);
  CHECK(metrics::decision_threshold(MSELoss()) == 0.5f);
  CHECK(metrics::decision_threshold(CrossEntropyLoss()) == 0.5f);
}

TEST_CASE("accuracy from labels, one-hot rows and binary targets", "[metrics]") {
  Tensor scores = Tensor::from_vector({1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0}, {4, 3});  // predicts 0, 0, 2, 1
  Tensor labels = Tensor::from_vector({0, 1, 2, 1}, {4});
  CHECK(metrics::count_correct(scores, labels) == 3);
  CHECK(metrics::accuracy(scores, labels) == Approx(0.75));
  Tensor one_hot = Tensor::from_vector({1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0}, {4, 3});
  CHECK(metrics::accuracy(scores, one_hot) == Approx(0.75));

  // Single logits with 0/1 and -1/1 targets.
  Tensor logits = Tensor::from_vector({-2.f, 1.f, 0.5f, -0.1f}, {4, 1});
  CHECK(metrics::accuracy(logits, Tensor::from_vector({0, 1, 0, 0}, {4}), 0.f) == Approx(0.75));
  CHECK(metrics::accuracy(logits, Tensor::from_vector({-1, 1, -1, -1}, {4, 1}), 0.f) == Approx(0.75));

  // Element-wise binary accuracy for multi-label outputs.
  Tensor ml = Tensor::from_vector({1.f, -1.f, -1.f, 2.f}, {2, 2});
  CHECK(metrics::binary_accuracy(ml, Tensor::from_vector({1, 0, 1, 1}, {2, 2}), 0.f) == Approx(0.75));

  CHECK_THROWS_WITH(metrics::accuracy(scores, Tensor::from_vector({0, 1, 3, 1}, {4})), Catch::Contains("label 3"));
  CHECK_THROWS_WITH(metrics::accuracy(scores, Tensor::from_vector({0, 1.5f, 2, 1}, {4})), Catch::Contains("1.5"));
  CHECK_THROWS_AS(metrics::accuracy(scores, Tensor::zeros({3})), maas::Error);
}

// y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1]: sklearn's documented
// classification_report example. The matrix (rows true, columns predicted):
//        0  1  2
//   0    1  0  0
//   1    1  0  0
//   2    0  1  2
// class 0: tp 1, predicted 2, support 1 -> P 1/2, R 1/1, F1 2(.5)(1)/1.5 = 2/3
// class 1: tp 0, predicted 1, support 1 -> P 0,   R 0,   F1 0
// class 2: tp 2, predicted 2, support 3 -> P 1,   R 2/3, F1 2(1)(2/3)/(5/3) = 0.8
// accuracy 3/5; macro P (.5+0+1)/3 = .5, R (1+0+2/3)/3 = 5/9, F1 (2/3+0+.8)/3 = 22/45
// weighted P (.5*1+0*1+1*3)/5 = .7, R (1+0+2)/5 = .6, F1 (2/3+0+2.4)/5 = 23/37.5
TEST_CASE("ConfusionMatrix on a hand-made example matches sklearn", "[metrics]") {
  ConfusionMatrix cm(3);
  const int64_t y_true[] = {0, 1, 2, 2, 2}, y_pred[] = {0, 0, 2, 2, 1};
  for (int i = 0; i < 5; ++i) cm.add(y_true[i], y_pred[i]);

  CHECK(cm.count(1, 0) == 1);
  CHECK(cm.count(2, 1) == 1);
  CHECK(cm.count(2, 2) == 2);
  CHECK(cm.total() == 5);
  CHECK(cm.support(2) == 3);
  CHECK(cm.predicted(0) == 2);
  CHECK(cm.accuracy() == Approx(0.6));
  CHECK(cm.precision(0) == Approx(0.5));
  CHECK(cm.recall(0) == Approx(1.0));
  CHECK(cm.f1(0) == Approx(2.0 / 3.0));
  CHECK(cm.precision(1) == 0.0);
  CHECK(cm.recall(1) == 0.0);
  CHECK(cm.f1(1) == 0.0);
  CHECK(cm.precision(2) == Approx(1.0));
  CHECK(cm.recall(2) == Approx(2.0 / 3.0));
  CHECK(cm.f1(2) == Approx(0.8));
  CHECK(cm.macro_precision() == Approx(0.5));
  CHECK(cm.macro_recall() == Approx(5.0 / 9.0));
  CHECK(cm.macro_f1() == Approx(22.0 / 45.0));
  CHECK(cm.weighted_precision() == Approx(0.7));
  CHECK(cm.weighted_recall() == Approx(0.6));
  CHECK(cm.weighted_f1() == Approx(23.0 / 37.5));

  // sklearn.metrics.classification_report(y_true, y_pred, target_names=["class 0", "class 1", "class 2"]):
  const std::string expected =
      "              precision    recall  f1-score   support\n"
      "\n"
      "     class 0       0.50      1.00      0.67         1\n"
      "     class 1       0.00      0.00      0.00         1\n"
      "     class 2       1.00      0.67      0.80         3\n"
      "\n"
      "    accuracy                           0.60         5\n"
      "   macro avg       0.50      0.56      0.49         5\n"
      "weighted avg       0.70      0.60      0.61         5\n";
  CHECK(cm.report({"class 0", "class 1", "class 2"}) == expected);
  CHECK_THAT(cm.report(), Catch::Contains("           2       1.00      0.67      0.80         3"));
  CHECK_THAT(cm.str(), Catch::Contains("true\\pred"));
  CHECK_THROWS_AS(cm.report({"a"}), maas::Error);
}

TEST_CASE("ConfusionMatrix accumulates batches of scores and grows when unsized", "[metrics]") {
  ConfusionMatrix cm;  // grows
  cm.update(Tensor::from_vector({0, 1, 1, 0}, {2, 2}), Tensor::from_vector({1, 1}, {2}));  // predicts 1, 0
  cm.update(Tensor::from_vector({0.9f}, {1, 1}), Tensor::from_vector({1}, {1}), 0.5f);       // predicts 1
  REQUIRE(cm.num_classes() == 2);
  CHECK(cm.count(1, 1) == 2);
  CHECK(cm.count(1, 0) == 1);
  CHECK(cm.total() == 3);
  cm.reset();
  CHECK(cm.total() == 0);
  CHECK(std::isnan(cm.accuracy()));

  ConfusionMatrix fixed(2);
  CHECK_THROWS_WITH(fixed.add(0, 2), Catch::Contains("class 2"));
  CHECK_THROWS_AS(fixed.count(0, 5), maas::Error);
}
