// tabular_binary: a binary classifier on a CSV table, by default the
// Wisconsin breast-cancer data (569 tumours, 30 measurements each; label 0
// malignant, 1 benign; data/provision.sh breast-cancer). Prints the test
// accuracy after each epoch.
//
// The pipeline: load_csv (label: the last column, or --label); a stratified
// 80/20 train/test split drawn from --split-seed (fixed by default, so runs
// with different --seed values are scored on the same tumours); features
// standardised with the training rows' mean and std by the model's first
// layer (a Normalization, so the saved model takes raw rows); Dense 16 ReLU, Dense 1
// giving a logit; binary cross-entropy on the logit (the sigmoid is inside
// the loss); Adam. A sample is predicted 1 when sigmoid(logit) > 0.5.
//
//   build/examples/tabular_binary                          # data/breast-cancer
//   build/examples/tabular_binary --data my.csv --label outcome --epochs 50
//   build/examples/tabular_binary --json                   # one JSON object per epoch
//   build/examples/tabular_binary --save ck.h5             # checkpoint after every epoch
//   build/examples/tabular_binary --resume ck.h5           # continue where ck.h5 stopped
//
// What this is not: no categorical features or missing values (load_csv reads
// numbers only), no class weights, one output (not multi-label).
#include "tabular.hpp"

using namespace maas;

int main(int argc, char** argv) {
  return examples::run_main("tabular_binary", [&]() -> int {
    examples::Args defaults;
    defaults.data = "data/breast-cancer";
    defaults.epochs = 30;
    defaults.batch = 32;
    defaults.lr = 1e-3;
    const examples::Args args = parse_args(argc, argv, defaults, " [--label COLUMN] [--split-seed S]");
    const std::string path = examples::csv_path(args.data);
    const data::CsvDataset table = data::load_csv(path, examples::csv_options(args.value("label")));
    const int64_t n = table.size(), features = table.x().size(1);
    examples::check_binary_labels(table, path);

    // The split; the training rows' statistics go into the model.
    const uint64_t split_seed = args.unsigned_integer("split-seed", 0);
    std::vector<int64_t> train_rows, test_rows;
    examples::stratified_split(table.y(), 0.2, split_seed, train_rows, test_rows);
    Tensor train_x, train_y, test_x, test_y;
    table.get_batch(train_rows, train_x, train_y);
    table.get_batch(test_rows, test_x, test_y);
    const data::Normalize stats = data::feature_stats(train_x);
    // Targets [N, 1], the shape of the model's output, as the loss requires.
    const int64_t n_train = train_x.size(0), n_test = test_x.size(0);
    const data::TensorDataset train(train_x, train_y.reshape({n_train, 1}));
    const data::TensorDataset test(test_x, test_y.reshape({n_test, 1}));
    if (!args.json)
      std::printf("%s: %lld samples, %lld features, label '%s'; %lld train, %lld test\n", path.c_str(),
                  static_cast<long long>(n), static_cast<long long>(features), table.label_name().c_str(),
                  static_cast<long long>(n_train), static_cast<long long>(n_test));

    manual_seed(args.seed);
    nn::Sequential model({features});
    std::vector<float> variance;
    for (float s : stats.std) variance.push_back(s * s);
    model.add(nn::Normalization(stats.mean, variance));
    model.add(nn::Dense(16)).add(nn::ReLU());
    model.add(nn::Dense(1));
    if (!args.json) std::cout << model.summary();

    optim::AdamOptions ao;
    ao.lr = static_cast<float>(args.lr);
    optim::Adam adam(model.parameters(), ao);
    BinaryCrossEntropyWithLogitsLoss loss;
    Trainer trainer(model, loss, adam);

    // On --resume, the split and statistics are recomputed alike from the
    // same file and --split-seed.
    const FitOptions fit = examples::fit_options(args, trainer, model, adam, nullptr, test, train.size());
    trainer.fit(train, fit);

    if (!args.json) {
      const EvalResult r = trainer.evaluate(test, 1000);
      std::cout << "\n" << r.report(examples::binary_class_names(path)) << "\n";
      // predict() applies the sigmoid: probabilities of class 1.
      const Tensor p = trainer.predict(test_x);
      int64_t correct = 0;
      for (int64_t i = 0; i < n_test; ++i) correct += (p.data()[i] > 0.5f) == (test_y.data()[i] > 0.5f);
      std::printf("test accuracy: %.2f%% (%lld of %lld)\n",
                  100.0 * static_cast<double>(correct) / static_cast<double>(n_test), static_cast<long long>(correct),
                  static_cast<long long>(n_test));
    }
    return examples::kExitOk;
  });
}
