// cifar10_cnn: the network of Keras' examples/cifar10_cnn.py trained on the
// CIFAR-10 binary version, with random crops and flips. Prints the test
// accuracy after each epoch.
//
//   build/examples/cifar10_cnn --data data/cifar-10-batches-bin --epochs 25
//   build/examples/cifar10_cnn --train-limit 5000 --epochs 2   # a quick run on the first 5000 images
//   build/examples/cifar10_cnn --json                 # one JSON object per epoch
//   build/examples/cifar10_cnn --save ck.h5           # checkpoint after every epoch
//   build/examples/cifar10_cnn --resume ck.h5         # continue where ck.h5 stopped
//
// Network (as Keras'; 1.25M parameters): Conv2D 32 3x3 same, ReLU, Conv2D 32
// 3x3, ReLU, MaxPool 2, Dropout 0.25, Conv2D 64 3x3 same, ReLU, Conv2D 64
// 3x3, ReLU, MaxPool 2, Dropout 0.25, Flatten, Dense 512, ReLU, Dropout 0.5,
// Dense 10 (logits: CrossEntropyLoss applies the softmax).
//
// Optimizer: Adam, lr 1e-3 following a half cosine down to ~0 over the run's
// epochs, batch 32, 25 epochs by default. Keras trains with RMSprop(lr 1e-4,
// decay 1e-6), a rate ten times lower than RMSprop's usual one, chosen so
// that its training stays stable; at that rate it needs its 25 epochs to
// reach ~75%. Adam's bias-corrected moments are stable at its default 1e-3
// and move ten times faster per step, so the same epochs go further; the
// cosine (as in mnist_cnn) then lets the last epochs settle into a minimum
// instead of bouncing at the full rate. (The nearest maas gets to Keras'
// setup is optim::RMSprop with lr 1e-4, alpha 0.9, eps 1e-7; Keras' decay
// 1e-6 lowers the rate by under 4% over 25 epochs of 1563 steps.)
//
// Data: data_batch_1..5.bin (50,000 training images) and test_batch.bin
// (10,000) from --data, or from its cifar-10-batches-bin sub-folder.
// Training images are padded by 4 black pixels and cropped back to 32x32 at
// a random offset, and mirrored left-right half of the time (torchvision's
// RandomCrop(32, padding=4) + RandomHorizontalFlip; Keras' example shifts by
// up to 10% and flips). The model's first layer, a Normalization, then
// normalises pixels in [0, 1] with CIFAR-10's per-channel mean and standard
// deviation, so the saved model takes raw pixels.
//
// Resuming restores the weights, Adam's moments, the schedule, the dropout
// generators, the epoch and the step count, and the augmentation continues
// from that step: a resumed run gives the figures an uninterrupted one gives
// (same --seed; tests/examples/cifar10_cnn_pipeline.cpp checks it).
//
// What this file is not: no CIFAR-100, no test-time augmentation. CIFAR-10
// is not provisioned by data/provision.sh (see missing_data_message below).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"

using namespace maas;

namespace {

// Where to get the data, for a --data folder without it.
std::string missing_data_message(const std::string& dir) {
  return "no CIFAR-10 in '" + dir +
         "' (it needs data_batch_1.bin .. data_batch_5.bin and test_batch.bin).\n"
         "CIFAR-10 is not provisioned by data/provision.sh: download the binary version, cifar-10-binary.tar.gz\n"
         "(162 MB), from https://www.cs.toronto.edu/~kriz/cifar.html, then\n"
         "  tar xzf cifar-10-binary.tar.gz -C data     # creates data/cifar-10-batches-bin/\n"
         "and pass --data data/cifar-10-batches-bin (the default).";
}

bool has_cifar10(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root(dir);
  return fs::exists(root / "data_batch_1.bin", ec) ||
         fs::exists(root / "cifar-10-batches-bin" / "data_batch_1.bin", ec);
}

// The value of --name as a count > 0, or 0 when the flag is absent.
int64_t count_flag(const examples::Args& args, const std::string& name) {
  return args.integer(name, 0, 1, INT64_MAX);
}

// The first `limit` samples of `data` (all of them when limit is 0 or larger).
std::vector<int64_t> first(const data::Dataset& data, int64_t limit) {
  const int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
  std::vector<int64_t> indices(static_cast<size_t>(n));
  std::iota(indices.begin(), indices.end(), int64_t{0});
  return indices;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("cifar10_cnn", [&]() -> int {
    examples::Args defaults;
    defaults.data = "data/cifar-10-batches-bin";
    defaults.epochs = 25;
    defaults.batch = 32;
    defaults.lr = 1e-3;
    const examples::Args args = parse_args(argc, argv, defaults, " [--train-limit N] [--test-limit N]");
    const int64_t train_limit = count_flag(args, "train-limit"), test_limit = count_flag(args, "test-limit");
    if (!has_cifar10(args.data)) {
      std::fprintf(stderr, "cifar10_cnn: %s\n", missing_data_message(args.data).c_str());
      return examples::kExitError;
    }
    const data::ImageDataset train_all = data::load_cifar10(args.data, data::Part::Train);
    const data::ImageDataset test_all = data::load_cifar10(args.data, data::Part::Test);
    const data::SubsetDataset train_part(train_all, first(train_all, train_limit));
    const data::SubsetDataset test_part(test_all, first(test_all, test_limit));
    // The model takes pixels in [0, 1]; its first layer normalises them with
    // CIFAR-10's per-channel mean and standard deviation over the training set.
    const std::vector<float> mean{0.4914f, 0.4822f, 0.4465f}, std{0.2470f, 0.2435f, 0.2616f};
    data::TransformedDataset train(train_part, data::Normalize{}, data::Augment{4, true}, args.seed);
    const data::Dataset& test = test_part;

    manual_seed(args.seed);
    nn::Sequential model({3, 32, 32});
    std::vector<float> variance;
    for (float s : std) variance.push_back(s * s);
    model.add(nn::Normalization(mean, variance));
    nn::Conv2DOptions same;
    same.padding = nn::Padding::Same;
    model.add(nn::Conv2D(32, 3, same)).add(nn::ReLU());
    model.add(nn::Conv2D(32, 3)).add(nn::ReLU());
    model.add(nn::MaxPool2D(2)).add(nn::Dropout(0.25f));
    model.add(nn::Conv2D(64, 3, same)).add(nn::ReLU());
    model.add(nn::Conv2D(64, 3)).add(nn::ReLU());
    model.add(nn::MaxPool2D(2)).add(nn::Dropout(0.25f));
    model.add(nn::Flatten());
    model.add(nn::Dense(512)).add(nn::ReLU()).add(nn::Dropout(0.5f));
    model.add(nn::Dense(10));
    if (!args.json) std::cout << model.summary();

    optim::AdamOptions ao;
    ao.lr = static_cast<float>(args.lr);
    optim::Adam adam(model.parameters(), ao);
    optim::CosineAnnealingLR cosine(adam, std::max<int64_t>(1, args.epochs));
    CrossEntropyLoss loss;
    Trainer trainer(model, loss, adam);

    const FitOptions fit = examples::fit_options(args, trainer, model, adam, &cosine, test, train.size(), &train);
    trainer.fit(train, fit);

    if (!args.json) {
      examples::print_test_report(trainer, test, train_all.class_names());
    }
    return examples::kExitOk;
  });
}
