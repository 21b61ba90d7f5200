// resnet: He et al. 2016's CIFAR ResNet ("Deep Residual Learning for Image
// Recognition", section 4.2), built with the functional API, trained on
// Fashion-MNIST (28x28 grey) or CIFAR-10 (32x32 colour), whichever --data
// holds. Prints the test accuracy after each epoch.
//
//   build/examples/resnet --data data/fashion-mnist --depth 20 --epochs 30
//   build/examples/resnet --data data/cifar-10-batches-bin --depth 56
//   build/examples/resnet --bn off            # no BatchNorm (convolutions get biases)
//   build/examples/resnet --json --save ck.h5 # one JSON object per epoch, a checkpoint after each
//   build/examples/resnet --resume ck.h5      # continue where ck.h5 stopped
//   build/examples/resnet --quantize q.h5     # then the int8 model (maas::quantize),
//                                             # its test accuracy and speed next to fp32's
//   (--calibration N, --calibration-method minmax|percentile: as mnist_cnn's)
//
// Network, depth 6n + 2 (20, 32, 56, ...; 8 for quick tests): a 3x3
// convolution of 16 filters, then three stages of n residual blocks with
// 16, 32 and 64 filters on maps of 32x32, 16x16 and 8x8 (28x28, 14x14, 7x7
// for Fashion-MNIST); the first block of stages 2 and 3 halves the map with
// stride 2. A block is conv 3x3, BN, ReLU, conv 3x3, BN, added to its
// input, ReLU; where the shape changes, the input goes through a 1x1
// convolution of stride 2 and a BN (the paper's option B; option A pads
// channels with zeros, which maas has no layer for). Then
// GlobalAveragePooling2D and Dense 10. Convolutions have padding "same" and He-normal
// initial weights, as in the paper; ResNet-20 has 0.27M parameters. A
// Normalization layer first scales pixels in [0, 1] with the data set's
// per-channel mean and standard deviation, so the saved model takes raw
// pixels (maas-serve serves it).
//
// Training as in the paper, over fewer epochs: SGD with momentum 0.9,
// batch 128, lr 0.1 following a half cosine down to ~0 (the paper divides
// by 10 at 50% and 75% of its 64k steps, about 180 epochs); weight decay
// 5e-4 (--weight-decay), where the paper's 1e-4 suits its longer schedule
// and short schedules commonly take 5e-4; random crops
// of the image padded by 4 pixels (2 for Fashion-MNIST) and left-right
// flips.
//
// What this file is not: no ImageNet ResNet (bottleneck blocks, 7x7 stem),
// no pre-activation variant, no option-A shortcuts.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common.hpp"

using namespace maas;
using namespace maas::nn;

namespace {

bool has_cifar10(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root(dir);
  return fs::exists(root / "data_batch_1.bin", ec) ||
         fs::exists(root / "cifar-10-batches-bin" / "data_batch_1.bin", ec);
}

bool has_mnist(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* name : {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"})
    if (fs::exists(fs::path(dir) / name, ec)) return true;
  return false;
}

// Where to get the data, for a --data folder without either set.
std::string missing_data_message(const std::string& dir) {
  return "no Fashion-MNIST or CIFAR-10 in '" + dir +
         "'.\n"
         "Fashion-MNIST: data/provision.sh fetches it into data/fashion-mnist.\n"
         "CIFAR-10: download the binary version, cifar-10-binary.tar.gz (162 MB), from\n"
         "https://www.cs.toronto.edu/~kriz/cifar.html, then tar xzf cifar-10-binary.tar.gz -C data\n"
         "and pass --data data/cifar-10-batches-bin.";
}

// conv 3x3 (stride) -> BN? -> (ReLU)
Node conv_bn(Node x, int64_t filters, int64_t kernel, int64_t stride, bool bn, bool relu) {
  Conv2DOptions o;
  o.padding = Padding::Same;
  o.strides = {stride, stride};
  o.use_bias = !bn;
  o.kernel_initializer = Init::HeNormal;
  Node h = layer(Conv2D(filters, kernel, o))(x);
  if (bn) h = layer(BatchNorm())(h);
  if (relu) h = layer(ReLU())(h);
  return h;
}

// One residual block: two 3x3 convolutions added to the shortcut.
Node residual_block(Node x, int64_t filters, int64_t stride, bool bn) {
  Node h = conv_bn(x, filters, 3, stride, bn, true);
  h = conv_bn(h, filters, 3, 1, bn, false);
  const bool same_shape = stride == 1 && x.shape()[0] == filters;
  Node shortcut = same_shape ? x : conv_bn(x, filters, 1, stride, bn, false);
  return layer(ReLU())(layer(Add())({h, shortcut}));
}

Model resnet(const Shape& input, int64_t depth, bool bn, const data::Normalize& norm, int64_t classes) {
  const int64_t n = (depth - 2) / 6;
  Node x = Input(input);
  std::vector<float> variance;
  for (float s : norm.std) variance.push_back(s * s);
  Node h = layer(Normalization(norm.mean, variance))(x);
  h = conv_bn(h, 16, 3, 1, bn, true);
  for (int64_t stage = 0; stage < 3; ++stage)
    for (int64_t b = 0; b < n; ++b)
      h = residual_block(h, 16 << stage, stage > 0 && b == 0 ? 2 : 1, bn);
  // Global average pooling: the mean over the whole map.
  h = layer(GlobalAveragePooling2D())(h);
  return Model(x, layer(Dense(classes))(h));
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_main("resnet", [&]() -> int {
    examples::Args defaults;
    defaults.data = "data/fashion-mnist";
    defaults.epochs = 30;
    defaults.batch = 128;
    defaults.lr = 0.1;
    const examples::Args args = parse_args(argc, argv, defaults, " [--depth D] [--bn on|off] [--weight-decay W] [--quantize PATH.h5] [--calibration N] [--calibration-method M]");
    const int64_t depth = args.integer("depth", 20, 8, 1000);
    if ((depth - 2) % 6 != 0) {
      std::fprintf(stderr, "resnet: --depth must be 6n + 2 (8, 20, 32, 44, 56, 110), got %lld\n",
                   static_cast<long long>(depth));
      return examples::kExitUsage;
    }
    const std::string bn_text = args.value("bn", "on");
    if (bn_text != "on" && bn_text != "off") {
      std::fprintf(stderr, "resnet: --bn expects on or off, got '%s'\n", bn_text.c_str());
      return examples::kExitUsage;
    }
    const bool bn = bn_text == "on";
    const double weight_decay = args.number("weight-decay", 5e-4, 0, 1);
    const bool cifar = has_cifar10(args.data);
    if (!cifar && !has_mnist(args.data)) {
      std::fprintf(stderr, "resnet: %s\n", missing_data_message(args.data).c_str());
      return examples::kExitError;
    }
    const data::ImageDataset train_images = cifar ? data::load_cifar10(args.data, data::Part::Train)
                                                  : data::load_mnist(args.data, data::Part::Train);
    const data::ImageDataset test_images = cifar ? data::load_cifar10(args.data, data::Part::Test)
                                                 : data::load_mnist(args.data, data::Part::Test);
    const data::Normalize norm = data::channel_stats(train_images);
    data::TransformedDataset train(train_images, data::Normalize{}, data::Augment{cifar ? 4 : 2, true}, args.seed);

    manual_seed(args.seed);
    const Shape input = train_images.sample_shape();
    Model model = resnet(input, depth, bn, norm, 10);  // both data sets have 10 classes
    model.set_name("resnet" + std::to_string(depth));
    if (!args.json) std::cout << model.summary();

    optim::SGDOptions so;
    so.lr = static_cast<float>(args.lr);
    so.momentum = 0.9f;
    so.weight_decay = static_cast<float>(weight_decay);
    optim::SGD sgd(model.parameters(), so);
    optim::CosineAnnealingLR cosine(sgd, std::max<int64_t>(1, args.epochs));
    CrossEntropyLoss loss;
    Trainer trainer(model, loss, sgd);

    const FitOptions fit =
        examples::fit_options(args, trainer, model, sgd, &cosine, test_images, train.size(), &train);
    trainer.fit(train, fit);

    if (!args.json)
      examples::print_test_report(trainer, test_images,
                                  cifar ? train_images.class_names()
                                        : examples::mnist_class_names(args.data, train_images));
    if (args.flag("quantize")) return examples::quantize_and_compare(args, model, train_images, test_images);
    return examples::kExitOk;
  });
}
