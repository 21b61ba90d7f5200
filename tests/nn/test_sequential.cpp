#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using namespace maas::nn;

namespace {
// The CNN of ../shared/ref/torch_cnn.py.
Sequential mnist_cnn() {
  Sequential m({1, 28, 28});
  m.add(Conv2D(32, 3)).add(ReLU()).add(MaxPool2D(2));
  m.add(Conv2D(64, 3)).add(ReLU()).add(MaxPool2D(2));
  m.add(Flatten()).add(Dense(128)).add(ReLU()).add(Dense(10));
  return m;
}
}  // namespace

TEST_CASE("Sequential infers every layer's shape from the input shape", "[layer]") {
  Sequential m = mnist_cnn();
  REQUIRE(m.size() == 10);
  REQUIRE(m.output_shape(0) == Shape{32, 26, 26});
  REQUIRE(m.output_shape(2) == Shape{32, 13, 13});
  REQUIRE(m.output_shape(5) == Shape{64, 5, 5});
  REQUIRE(m.output_shape(6) == Shape{1600});
  REQUIRE(m.output_shape(9) == Shape{10});
  // 3*3*1*32+32, 3*3*32*64+64, 1600*128+128, 128*10+10 (the same counts Keras and PyTorch report)
  REQUIRE(m.num_parameters() == 320 + 18496 + 204928 + 1290);
  Tensor y = m(Tensor::zeros({2, 1, 28, 28}));
  REQUIRE(y.shape() == Shape{2, 10});
}

TEST_CASE("Sequential names layers as Keras does and prefixes parameter names", "[layer]") {
  Sequential m = mnist_cnn();
  REQUIRE(m[0].name() == "conv2d");
  REQUIRE(m[1].name() == "re_lu");
  REQUIRE(m[2].name() == "max_pooling2d");
  REQUIRE(m[3].name() == "conv2d_1");
  REQUIRE(m[6].name() == "flatten");
  REQUIRE(m[9].name() == "dense_1");
  auto named = m.named_parameters();
  REQUIRE(named.size() == 8);
  REQUIRE(named[0].first == "conv2d.kernel");
  REQUIRE(named[0].second.shape() == Shape{32, 1, 3, 3});
  REQUIRE(named[7].first == "dense_1.bias");
  Sequential b({3});
  b.add(Dense(4)).add(BatchNorm()).add(Dropout(0.5f)).add(Dense(2));
  auto buffers = b.named_buffers();
  REQUIRE(buffers.size() == 2);
  REQUIRE(buffers[0].first == "batch_normalization.moving_mean");
  REQUIRE(b[2].name() == "dropout");
}

TEST_CASE("summary lists layers, output shapes and parameter counts", "[layer]") {
  Sequential m = mnist_cnn();
  const std::string s = m.summary();
  INFO(s);
  REQUIRE(s.find("conv2d (Conv2D)") != std::string::npos);
  REQUIRE(s.find("(None, 26, 26, 32)") != std::string::npos);
  REQUIRE(s.find("18,496") != std::string::npos);
  REQUIRE(s.find("Total params: 225,034") != std::string::npos);
  REQUIRE(s.find("Trainable params: 225,034") != std::string::npos);
  Sequential b({3});
  b.add(BatchNorm());
  REQUIRE(b.summary().find("Non-trainable params: 6") != std::string::npos);  // moving mean and variance
}

TEST_CASE("train and eval reach every layer; zero_grad clears all", "[layer]") {
  Sequential m({4});
  m.add(Dense(3)).add(Dropout(0.5f)).add(Dense(2));
  m.eval();
  REQUIRE_FALSE(m[1].is_training());
  m.train();
  REQUIRE(m[1].is_training());
  sum(m(Tensor::ones({2, 4}))).backward();
  for (auto& p : m.parameters()) REQUIRE(p.grad().defined());
  m.zero_grad();
  for (auto& p : m.parameters())
    for (float g : p.grad().to_vector()) REQUIRE(g == 0.f);
}

TEST_CASE("a Sequential without input shape builds on first forward", "[layer]") {
  Sequential m;
  m.add(Dense(5)).add(ReLU()).add(Dense(2));
  REQUIRE_FALSE(m.built());
  REQUIRE(m(Tensor::ones({3, 7})).shape() == Shape{3, 2});
  REQUIRE(m.built());
  REQUIRE(m.num_parameters() == 7 * 5 + 5 + 5 * 2 + 2);
}

TEST_CASE("manual_seed makes model creation repeat", "[layer]") {
  manual_seed(5);
  Sequential a = mnist_cnn();
  manual_seed(5);
  Sequential b = mnist_cnn();
  auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) REQUIRE(pa[i].to_vector() == pb[i].to_vector());
}

TEST_CASE("Sequential reports shape errors at the layer that causes them", "[layer]") {
  Sequential m({1, 28, 28});
  m.add(Flatten());
  MAAS_REQUIRE_THROWS_WITH(m.add(Conv2D(8, 3)), "layer 1 'conv2d' (Conv2D) cannot take input (None, 784)");
  Sequential small({1, 4, 4});
  MAAS_REQUIRE_THROWS_WITH(small.add(Conv2D(2, 5)), "kernel 5x5 does not fit input (None, 1, 4, 4)");
  Sequential d({10});
  d.add(Dense(3));
  MAAS_REQUIRE_THROWS_WITH(d(Tensor::zeros({2, 11})), "model takes input (None, 10) but got a batch of shape [2,11]");
  Sequential named({2});
  named.add(Dense(2));
  Dense dup(2);
  dup.set_name("dense");
  MAAS_REQUIRE_THROWS_WITH(named.add(std::move(dup)), "a layer named 'dense' already exists");
}

namespace {

// Mixes the samples of its batch (adds the batch mean), so its output for a
// sample depends on the others: Sequential must not split it into pieces.
class BatchMean : public Module {
 public:
  Tensor forward(const Tensor& x) override { return add(x, mean(x, 0, true)); }
  Shape build(const Shape& input_shape) override {
    mark_built(input_shape);
    return input_shape;
  }
  std::string type_name() const override { return "BatchMean"; }
};

}  // namespace

TEST_CASE("Sequential runs large no-grad evaluation batches in pieces, with the same result", "[layer]") {
  manual_seed(4);
  Sequential model({3, 10, 10});
  model.add(Conv2D(8, 3)).add(BatchNorm()).add(ReLU()).add(MaxPool2D(2)).add(Flatten());
  model.add(Dropout(0.5f)).add(Dense(16)).add(ReLU()).add(Dense(5)).add(Softmax());
  REQUIRE(model.samples_independent());
  const int64_t n = 2 * Sequential::kInferencePiece + 37;  // two whole pieces and a partial one
  Generator gen(5);
  const Tensor x = Tensor::randn({n, 3, 10, 10}, gen);
  // Running statistics away from their initial values, so eval mode matters.
  model(x);
  model.eval();
  const Tensor whole = model(x);  // gradients on: one piece
  Tensor pieces;
  {
    NoGradGuard no_grad;
    pieces = model(x);
  }
  REQUIRE(pieces.shape() == Shape{n, 5});
  REQUIRE(pieces.to_vector() == whole.to_vector());
  // Each sample alone gives the same row.
  {
    NoGradGuard no_grad;
    const Tensor last = model(x.slice_rows(n - 1, n));
    const std::vector<float> all = pieces.to_vector();
    const std::vector<float> row = last.to_vector();
    for (size_t k = 0; k < 5; ++k) CHECK(row[k] == Approx(all[all.size() - 5 + k]).margin(1e-6));
  }

  // A layer that mixes samples keeps the batch whole.
  Sequential mixed({4});
  mixed.add(Dense(4)).add(std::make_shared<BatchMean>());
  REQUIRE_FALSE(mixed.samples_independent());
  mixed.eval();
  const Tensor xm = Tensor::randn({n, 4}, gen);
  const Tensor expect = mixed(xm);
  NoGradGuard no_grad;
  REQUIRE(mixed(xm).to_vector() == expect.to_vector());
}

TEST_CASE("Sequential pools before a ReLU that precedes a MaxPool2D: same outputs and gradients", "[layer]") {
  // Integers in [-3, 3]: many ties, windows all <= 0, zeros at the kink.
  Generator gen(6);
  const int64_t n = 3;
  std::vector<float> v(static_cast<size_t>(n * 2 * 6 * 6));
  for (float& e : v) e = static_cast<float>(static_cast<int>(gen.engine()() % 7) - 3);
  const Tensor x0 = Tensor::from_vector(v, {n, 2, 6, 6});
  Pool2DOptions same;  // 3x3 windows, stride 2, Keras' same padding
  same.strides = {2, 2};
  same.padding = Padding::Same;
  for (const bool pad : {false, true}) {
    Sequential model({2, 6, 6});
    model.add(ReLU());
    if (pad) model.add(MaxPool2D(3, same));
    else model.add(MaxPool2D(2));
    model.add(Flatten());
    Tensor x = x0.clone().requires_grad_();
    Tensor y = model(x);
    // The same layers one after the other, in the written order.
    Tensor xr = x0.clone().requires_grad_();
    Tensor yr = model[2](model[1](model[0](xr)));
    REQUIRE(y.to_vector() == yr.to_vector());
    Generator g2(7);
    const Tensor dout = Tensor::randn(y.shape(), g2);
    y.backward(dout);
    yr.backward(dout);
    REQUIRE(x.grad().to_vector() == xr.grad().to_vector());
  }
}

TEST_CASE("summary prints Keras' channels_last shapes in columns that fit long names", "[layer]") {
  Sequential m({1, 12, 12});
  m.add(Conv2D(64, 3));
  MaxPool2D pool(2);
  pool.set_name("max_pooling2d_1");
  m.add(std::move(pool)).add(Flatten()).add(Dense(10));
  // The longest entry, " max_pooling2d_1 (MaxPooling2D)" (31 characters),
  // widens the first column from 30 to 32: one space before its shape.
  const std::string expected =
      "Model: \"sequential\"\n"
      "____________________________________________________________________\n"
      " Layer (type)                   Output Shape            Param #\n"
      "====================================================================\n"
      " conv2d (Conv2D)                (None, 10, 10, 64)      640\n"
      "\n"
      " max_pooling2d_1 (MaxPooling2D) (None, 5, 5, 64)        0\n"
      "\n"
      " flatten (Flatten)              (None, 1600)            0\n"
      "\n"
      " dense (Dense)                  (None, 10)              16,010\n"
      "====================================================================\n"
      "Total params: 16,650\n"
      "Trainable params: 16,650\n"
      "Non-trainable params: 0\n"
      "____________________________________________________________________\n";
  REQUIRE(m.summary() == expected);
}

TEST_CASE("Sequential names layers as Keras does, skipping names already taken", "[layer]") {
  Sequential m({4});
  Dense named(4);
  named.set_name("dense_1");
  m.add(std::move(named)).add(Dense(4)).add(Dense(4)).add(Dense(4));
  REQUIRE(m[0].name() == "dense_1");
  REQUIRE(m[1].name() == "dense");
  REQUIRE(m[2].name() == "dense_2");  // dense_1 is taken
  REQUIRE(m[3].name() == "dense_3");
  Dense twin(4);
  twin.set_name("dense_2");
  MAAS_REQUIRE_THROWS_WITH(m.add(std::move(twin)), "Sequential::add: a layer named 'dense_2' already exists");
  // Many layers: names come from a set and a per-name counter, not a scan
  // of every earlier layer for every new one.
  Sequential big({4});
  for (int i = 0; i < 20000; ++i) big.add(ReLU());
  REQUIRE(big[19999].name() == "re_lu_19999");
  REQUIRE(big.children().size() == 20000);
}
