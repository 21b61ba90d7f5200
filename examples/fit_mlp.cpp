// fit_mlp: the trainer in one page. A small MLP learns to tell apart the three
// arms of a 2-D spiral with Trainer::fit (Adam, Keras' progress bar, a
// validation split and early stopping), then prints sklearn's classification
// report and the class probabilities of a few points.
// mpirun -np 2 build/examples/fit_mlp --distributed: the same fit on 2 ranks.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "common.hpp"

using namespace maas;

// n random points of a 3-arm spiral, with noise; the label is the arm. Rows
// are in random order: validation_split takes the LAST rows, as Keras does.
data::TensorDataset spiral(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::empty({n, 2}), y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t arm = i % 3;
    const float r = gen.uniform(), t = 4.f * r + 2.0944f * arm + 0.2f * gen.normal();
    x.at({i, 0}) = r * std::sin(t);
    x.at({i, 1}) = r * std::cos(t);
    y.at({i}) = static_cast<float>(arm);
  }
  return data::TensorDataset(x, y);
}

int main(int argc, char** argv) {
  return examples::run_main("fit_mlp", [&]() -> int {
    // [--report PATH.html] (the HTML training report, maas/report.hpp) and
    // [--distributed] (under mpirun) and [--precision fp32|bf16].
    std::string report;
    bool distributed = false;
    Precision precision = Precision::FP32;
    for (int i = 1; i < argc; ++i) {
      const std::string f = argv[i];
      if (f == "--distributed") {
        distributed = true;
      } else if (f == "--report" && i + 1 < argc) {
        report = argv[++i];
      } else if (f == "--precision" && i + 1 < argc && (std::strcmp(argv[i + 1], "fp32") == 0 ||
                                                         std::strcmp(argv[i + 1], "bf16") == 0)) {
        precision = precision_from_string(argv[++i]);
      } else {
        std::fprintf(stderr, "usage: %s [--report PATH.html] [--distributed] [--precision fp32|bf16]\n", argv[0]);
        return examples::kExitUsage;
      }
    }
    if (distributed) {
      examples::Args a;
      a.program = argv[0];
      a.distributed = true;
      examples::start_distributed(a);
      if (a.threads > 0) omp_set_num_threads(a.threads);
    }
    manual_seed(42);  // repeatable initial weights
    nn::Sequential model({2});
    model.add(nn::Dense(64)).add(nn::ReLU()).add(nn::Dense(64)).add(nn::ReLU()).add(nn::Dense(3));
    std::cout << model.summary() << "\n";

    CrossEntropyLoss loss;
    optim::AdamOptions adam_options;
    adam_options.lr = 0.01f;
    optim::Adam adam(model.parameters(), adam_options);
    Trainer trainer(model, loss, adam);

    data::TensorDataset train = spiral(1500, 1), test = spiral(600, 2);
    FitOptions options;
    options.epochs = 40;
    options.batch_size = 32;
    options.precision = precision;
    options.seed = 7;
    options.validation_split = 0.2;  // the last 20% validate
    options.distributed = distributed;
    EarlyStoppingOptions stop;
    stop.monitor = "val_accuracy";
    stop.patience = 8;
    stop.restore_best_weights = true;
    options.callbacks = {std::make_shared<EarlyStopping>(stop)};
    if (!report.empty()) {
      ReportOptions ro;
      ro.test_data = &test;
      ro.class_names = {"arm 0", "arm 1", "arm 2"};
      options.callbacks.push_back(std::make_shared<ReportCallback>(report, ro));
    }
    History history = trainer.fit(train, options);  // a bad --report path: maas::Error, exit 1

    EvalResult result = trainer.evaluate(test);
    std::cout << "\ntest " << result.str() << " (" << history.size() << " epochs)\n\n"
              << result.report({"arm 0", "arm 1", "arm 2"});

    Tensor points = Tensor::from_vector({0.f, 0.5f, 0.45f, -0.2f, -0.4f, -0.3f}, {3, 2});
    Tensor probs = trainer.predict(points);  // softmax of the logits
    for (int64_t i = 0; i < probs.size(0); ++i)
      std::printf("(%5.2f, %5.2f) -> p = [%.3f %.3f %.3f]\n", points.at({i, 0}), points.at({i, 1}),
                  probs.at({i, 0}), probs.at({i, 1}), probs.at({i, 2}));
    return examples::kExitOk;
  });
}
