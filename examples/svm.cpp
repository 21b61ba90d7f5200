// svm: a linear support-vector machine on a CSV table, by default the
// Wisconsin breast-cancer data that tabular_binary uses (569 tumours, 30
// measurements; label 0 malignant, 1 benign; data/provision.sh
// breast-cancer).
//
// The model is the primal soft-margin SVM, trained by gradient descent:
//   minimise  (l2 / 2) |w|^2 + mean_i max(0, 1 - y_i (w . x_i + b)),  y_i = -1 or +1
// which is Dense(1) (w, b) with Keras' hinge loss and L2 weight decay l2 on
// the weights (SGD adds l2 * w to each gradient; as LIBLINEAR, the bias is
// decayed too). With n training rows it is the C-SVM of C = 1 / (l2 n);
// the default l2 = 1 / n is C = 1, sklearn's LinearSVC default.
// The features are standardised with the training rows' mean and std by the
// model's first layer (a Normalization, saved with the model), the labels
// 0/1 mapped to -1/+1; a row is predicted 1 when its margin w . x + b > 0.
// The split is tabular_binary's (stratified 80/20 from --split-seed), so the
// two are scored on the same tumours.
//
//   build/examples/svm                                   # data/breast-cancer
//   build/examples/svm --l2 1e-2 --epochs 100            # a wider margin (C = 1 / (l2 n))
//   build/examples/svm --data my.csv --label outcome --json
//   build/examples/svm --save svm.h5 / --resume svm.h5   # checkpoints, as every example
//
// After training it prints sklearn's classification report, the test
// accuracy and each class's precision, recall and F1.
//
// What this is not: no kernels (a linear SVM), no dual solver, one output
// (two classes).
#include "tabular.hpp"

using namespace maas;

int main(int argc, char** argv) {
  return examples::run_main("svm", [&]() -> int {
    examples::Args defaults;
    defaults.data = "data/breast-cancer";
    defaults.epochs = 50;
    defaults.batch = 32;
    defaults.lr = 1e-2;
    const examples::Args args = parse_args(argc, argv, defaults, " [--label COLUMN] [--split-seed S] [--l2 X]");
    const double l2_given = args.number("l2", -1.0, 0.0, 1e3);  // checked before the data is read
    const std::string path = examples::csv_path(args.data);
    const data::CsvDataset table = data::load_csv(path, examples::csv_options(args.value("label")));
    const int64_t n = table.size(), features = table.x().size(1);
    examples::check_binary_labels(table, path);

    const uint64_t split_seed = args.unsigned_integer("split-seed", 0);
    std::vector<int64_t> train_rows, test_rows;
    examples::stratified_split(table.y(), 0.2, split_seed, train_rows, test_rows);
    Tensor train_x, train_y, test_x, test_y;
    table.get_batch(train_rows, train_x, train_y);
    table.get_batch(test_rows, test_x, test_y);
    const data::Normalize stats = data::feature_stats(train_x);
    // Targets -1 / +1 in [N, 1], the shape of the model's output.
    const auto signs = [](const Tensor& y) { return y * 2.f - 1.f; };
    const int64_t n_train = train_x.size(0), n_test = test_x.size(0);
    // By default C = 1, as sklearn's LinearSVC: l2 = 1 / n_train.
    const float l2 = static_cast<float>(args.flag("l2") ? l2_given : 1.0 / static_cast<double>(n_train));
    const data::TensorDataset train(train_x, signs(train_y).reshape({n_train, 1}));
    const data::TensorDataset test(test_x, signs(test_y).reshape({n_test, 1}));
    if (!args.json)
      std::printf("%s: %lld samples, %lld features, label '%s'; %lld train, %lld test; l2 %g (C = %g)\n",
                  path.c_str(), static_cast<long long>(n), static_cast<long long>(features),
                  table.label_name().c_str(), static_cast<long long>(n_train), static_cast<long long>(n_test),
                  static_cast<double>(l2),
                  l2 > 0 ? 1.0 / (static_cast<double>(l2) * static_cast<double>(n_train)) : 0.0);

    manual_seed(args.seed);
    nn::Sequential model({features});
    std::vector<float> variance;
    for (float s : stats.std) variance.push_back(s * s);
    model.add(nn::Normalization(stats.mean, variance));
    model.add(nn::Dense(1));
    if (!args.json) std::cout << model.summary();

    optim::SGDOptions so;
    so.lr = static_cast<float>(args.lr);
    so.momentum = 0.9f;
    so.weight_decay = l2;
    optim::SGD sgd(model.parameters(), so);
    HingeLoss loss;
    Trainer trainer(model, loss, sgd);
    // On --resume, the split and statistics are recomputed alike from the
    // same file and --split-seed.
    const FitOptions fit = examples::fit_options(args, trainer, model, sgd, nullptr, test, train.size());
    trainer.fit(train, fit);

    if (!args.json) {
      // Hinge loss: the trainer counts a margin > 0 as class 1.
      const EvalResult r = trainer.evaluate(test, 1000);
      const std::vector<std::string> names = examples::binary_class_names(path);
      std::cout << "\n" << r.report(names) << "\n";
      const metrics::ConfusionMatrix& cm = r.confusion;
      std::printf("test accuracy: %.2f%% (%lld of %lld)\n", 100.0 * cm.accuracy(),
                  static_cast<long long>(cm.count(0, 0) + cm.count(1, 1)), static_cast<long long>(cm.total()));
      for (int64_t c = 0; c < 2; ++c) {
        const std::string label = std::to_string(c) + (names.empty() ? "" : " (" + names[static_cast<size_t>(c)] + ")");
        std::printf("class %s: precision %.4f, recall %.4f, F1 %.4f\n", label.c_str(), cm.precision(c), cm.recall(c),
                    cm.f1(c));
      }
    }
    return examples::kExitOk;
  });
}
