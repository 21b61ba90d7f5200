// mnist_mlp: Keras' mnist_mlp example, a multilayer perceptron trained on
// MNIST-format data (Fashion-MNIST by default): Flatten, Dense 512 ReLU,
// Dropout 0.2, Dense 512 ReLU, Dropout 0.2, Dense 10, with Adam (Keras uses
// RMSprop). Prints the test accuracy after each epoch.
//
//   build/examples/mnist_mlp --data data/fashion-mnist --epochs 10
//   build/examples/mnist_mlp --data data/mnist-sample
//   build/examples/mnist_mlp --json                 # one JSON object per epoch
//   build/examples/mnist_mlp --save ck.h5           # checkpoint after every epoch
//   build/examples/mnist_mlp --resume ck.h5         # continue where ck.h5 stopped
#include "common.hpp"

using namespace maas;

int main(int argc, char** argv) {
  return examples::run_main("mnist_mlp", [&]() -> int {
    examples::Args defaults;
    defaults.data = "data/fashion-mnist";
    defaults.epochs = 10;
    defaults.batch = 128;
    defaults.lr = 1e-3;
    const examples::Args args = parse_args(argc, argv, defaults);
    const data::ImageDataset train = data::load_mnist(args.data, data::Part::Train);
    const data::ImageDataset test = data::load_mnist(args.data, data::Part::Test);

    manual_seed(args.seed);
    nn::Sequential model({1, 28, 28});
    model.add(nn::Flatten());
    model.add(nn::Dense(512)).add(nn::ReLU()).add(nn::Dropout(0.2f));
    model.add(nn::Dense(512)).add(nn::ReLU()).add(nn::Dropout(0.2f));
    model.add(nn::Dense(10));
    if (!args.json) std::cout << model.summary();

    optim::AdamOptions ao;
    ao.lr = static_cast<float>(args.lr);
    optim::Adam adam(model.parameters(), ao);
    CrossEntropyLoss loss;
    Trainer trainer(model, loss, adam);

    const FitOptions fit = examples::fit_options(args, trainer, model, adam, nullptr, test, train.size());
    trainer.fit(train, fit);

    if (!args.json) {
      examples::print_test_report(trainer, test, examples::mnist_class_names(args.data, train));
    }
    return examples::kExitOk;
  });
}
