// Functional models: Add and Concatenate, graphs with skip connections and
// shared layers (gradients against finite differences), the equal
// Sequential, naming, summary, errors, and training through a Trainer.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::error_of;
using namespace maas::nn;
using maas::test::check_gradients;
using maas::test::check_module_gradients;
using maas::test::require_close;

namespace {

// x -> Dense(4) (shared) -> Tanh -> Add(., x) -> the same Dense(4) -> Dense(3):
// a skip connection and a layer called twice (smooth: no kink for the
// finite differences to straddle).
Model skip_and_shared(uint64_t seed) {
  manual_seed(seed);
  Node x = Input({4});
  auto shared = layer(Dense(4));
  Node h = layer(Tanh())(shared(x));
  h = layer(Add())({h, x});
  return Model(x, layer(Dense(3))(shared(h)));
}

}  // namespace

TEST_CASE("Add and Concatenate by hand", "[layer]") {
  Add add;
  const Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  const Tensor b = Tensor::from_vector({10, 20, 30, 40}, {2, 2});
  require_close(add.forward_many({a, b, a}), {12, 24, 36, 48});
  CHECK(add.compute_output_shape_many({{2}, {2}}) == Shape{2});
  CHECK_THAT(error_of([&] { add.forward_many({a, Tensor::zeros({2, 3})}); }),
             Catch::Contains("Add '' needs inputs of one shape, got (None, 2), (None, 3)"));
  CHECK_THAT(error_of([&] { add.forward_many({a, Tensor::zeros({3, 2})}); }), Catch::Contains("batch of 3 samples"));

  Concatenate cat;
  // Features: along the last axis.
  require_close(cat.forward_many({a, Tensor::from_vector({5, 6}, {2, 1})}), {1, 2, 5, 3, 4, 6});
  // Images [N, C, H, W]: along the channels, dimension 1.
  const Tensor p = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  const Tensor q = Tensor::from_vector({5, 6, 7, 8, 9, 10, 11, 12}, {1, 2, 2, 2});
  const Tensor pq = cat.forward_many({p, q});
  CHECK(pq.shape() == Shape{1, 3, 2, 2});
  require_close(pq, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK(cat.compute_output_shape_many({{1, 5, 5}, {4, 5, 5}}) == Shape{5, 5, 5});
  CHECK_THAT(error_of([&] { cat.compute_output_shape_many({{1, 5, 5}, {1, 4, 5}}); }),
             Catch::Contains("joins along the channels (C of (C, H, W))"));
}

TEST_CASE("Add and Concatenate gradients match finite differences", "[layer]") {
  Generator gen(3);
  Add add;
  check_gradients([&](const std::vector<Tensor>& in) { return add.forward_many(in); },
                  {Tensor::randn({2, 3}, gen), Tensor::randn({2, 3}, gen), Tensor::randn({2, 3}, gen)});
  Concatenate cat;
  check_gradients([&](const std::vector<Tensor>& in) { return cat.forward_many(in); },
                  {Tensor::randn({2, 1, 3, 3}, gen), Tensor::randn({2, 2, 3, 3}, gen)});
  check_gradients([&](const std::vector<Tensor>& in) { return cat.forward_many(in); },
                  {Tensor::randn({3, 2}, gen), Tensor::randn({3, 4}, gen)});
  // One tensor joined with itself: both halves of the gradient reach it.
  check_gradients([&](const std::vector<Tensor>& in) { return cat.forward_many({in[0], in[0]}); },
                  {Tensor::randn({2, 3}, gen)});
}

TEST_CASE("Model: gradients through a skip connection and a shared layer match finite differences", "[layer]") {
  Model m = skip_and_shared(5);
  REQUIRE(m.layers().size() == 4);  // dense (twice), tanh, add, dense_1
  CHECK(m.calls().size() == 5);
  CHECK(m.parameters().size() == 4);  // the shared Dense's kernel and bias once
  Generator gen(8);
  check_module_gradients(m, Tensor::randn({3, 4}, gen));

  // Images: two convolution branches joined by Concatenate, a residual Add.
  manual_seed(6);
  Conv2DOptions same;
  same.padding = Padding::Same;
  Node x = Input({2, 5, 5});
  Node a = layer(Conv2D(2, 3, same))(x);
  Node b = layer(Conv2D(3, 1))(x);
  Node h = layer(Concatenate())({a, b});
  h = layer(Add())({h, layer(Conv2D(5, 3, same))(h)});
  Model cnn(x, layer(Dense(2))(layer(Flatten())(layer(AvgPool2D(2))(h))));
  check_module_gradients(cnn, Tensor::randn({2, 2, 5, 5}, gen));
}

TEST_CASE("Model and the equal Sequential give identical outputs and gradients", "[layer]") {
  manual_seed(1);
  Sequential seq({1, 6, 6});
  seq.add(Conv2D(3, 3)).add(BatchNorm()).add(ReLU()).add(MaxPool2D(2)).add(Flatten()).add(Dense(4));
  Node x = Input({1, 6, 6});
  Node h = x;
  for (const auto& l : {std::shared_ptr<Module>(std::make_shared<Conv2D>(3, 3)), std::shared_ptr<Module>(std::make_shared<BatchNorm>()),
                        std::shared_ptr<Module>(std::make_shared<ReLU>()), std::shared_ptr<Module>(std::make_shared<MaxPool2D>(2)),
                        std::shared_ptr<Module>(std::make_shared<Flatten>()), std::shared_ptr<Module>(std::make_shared<Dense>(4))})
    h = call(l, {h});
  Model fm(x, h);
  // The same names, in the same order, as Keras would give them.
  NamedTensors sp = seq.named_parameters(), fp = fm.named_parameters();
  REQUIRE(sp.size() == fp.size());
  for (size_t i = 0; i < sp.size(); ++i) {
    CHECK(sp[i].first == fp[i].first);
    std::copy(sp[i].second.data(), sp[i].second.data() + sp[i].second.numel(), fp[i].second.data());
  }
  Generator gen(2);
  const Tensor input = Tensor::randn({5, 1, 6, 6}, gen);
  for (bool training : {true, false}) {
    seq.train(training);
    fm.train(training);
    seq.zero_grad();
    fm.zero_grad();
    const Tensor ys = seq(input), yf = fm(input);
    CHECK(ys.to_vector() == yf.to_vector());
    const Tensor r = Tensor::randn(ys.shape(), gen);
    sum(ys * r).backward();
    sum(yf * r).backward();
    for (size_t i = 0; i < sp.size(); ++i) CHECK(sp[i].second.grad().to_vector() == fp[i].second.grad().to_vector());
  }
  // A large batch in evaluation mode under NoGradGuard runs in pieces, bit for bit the same.
  const Tensor big = Tensor::randn({150, 1, 6, 6}, gen);
  const Tensor whole = fm(big);
  NoGradGuard ng;
  CHECK(fm(big).to_vector() == whole.to_vector());
  CHECK(seq(big).to_vector() == whole.to_vector());
}

TEST_CASE("Model: Keras-style names, the summary's Connected to column, shapes", "[layer]") {
  Model m = skip_and_shared(2);
  CHECK(m.input_nodes()[0].name() == "input_1");
  std::vector<std::string> names;
  for (const auto& l : m.layers()) names.push_back(l->name());
  CHECK(names == std::vector<std::string>{"dense", "tanh", "add", "dense_1"});
  CHECK(m.input_shapes() == std::vector<Shape>{{4}});
  CHECK(m.output_shapes() == std::vector<Shape>{{3}});
  CHECK(m.compute_output_shape({4}) == Shape{3});
  const std::string s = m.summary();
  CHECK_THAT(s, Catch::StartsWith("Model: \"model\"\n"));
  CHECK_THAT(s, Catch::Contains("Connected to"));
  CHECK_THAT(s, Catch::Contains(" input_1 (InputLayer)            [(None, 4)]           0           []\n"));
  // The shared Dense: both calls, the second reading the Add.
  CHECK_THAT(s, Catch::Contains(" dense (Dense)                   (None, 4)             20          ['input_1[0][0]', "
                                "'add[0][0]']\n"));
  CHECK_THAT(s, Catch::Contains(" add (Add)                       (None, 4)             0           ['tanh[0][0]', "
                                "'input_1[0][0]']\n"));
  CHECK_THAT(s, Catch::Contains(" dense_1 (Dense)                 (None, 3)             15          ['dense[1][0]']\n"));
  CHECK_THAT(s, Catch::Contains("Total params: 35\n"));

  // Given names stay; defaults avoid them.
  Node x = Input({2}, "features");
  auto named = std::make_shared<Dense>(2);
  named->set_name("dense");
  Node h = call(named, {x});
  Model m2(x, layer(Dense(1))(layer(Dense(2))(h)));
  CHECK(m2.layers()[0]->name() == "dense");
  CHECK(m2.layers()[1]->name() == "dense_1");
  CHECK(m2.layers()[2]->name() == "dense_2");
  CHECK(m2.input_nodes()[0].name() == "features");
}

TEST_CASE("Model: errors name the layer, the shapes, the input", "[layer]") {
  Node x = Input({4});
  Node y = Input({3});
  CHECK_THAT(error_of([&] { layer(Add())({x, y}); }),
             Catch::Contains("a Add cannot take input (None, 4), (None, 3): Add '' needs inputs of one shape"));
  auto dense = layer(Dense(2));
  Node h = dense(x);
  // The output depends on y, which is not an input.
  CHECK_THAT(error_of([&] { Model(x, layer(Concatenate())({h, y})); }),
             Catch::Contains("depend on Input (None, 3), which is not among the model's inputs"));
  CHECK_THAT(error_of([&] { Model(h, h); }), Catch::Contains("input 0 is the output of a Dense, not an Input()"));
  // Two different layers of one name.
  auto a = std::make_shared<ReLU>(), b = std::make_shared<ReLU>();
  a->set_name("act");
  b->set_name("act");
  CHECK_THAT(error_of([&] { Model(x, call(b, {call(a, {x})})); }),
             Catch::Contains("two different layers (or a layer and an input) are named 'act'"));
  // A shared layer built for 4 features called on 3.
  Model m(x, h);
  CHECK_THAT(error_of([&] { dense(y); }), Catch::Contains("layer 'dense' (Dense) cannot take input (None, 3)"));
  CHECK_THAT(error_of([&] { m(Tensor::zeros({2, 3})); }),
             Catch::Contains("Model: input 'input_1' takes (None, 4) but got a batch of shape [2,3]"));
  // Several outputs: forward() asks for forward_all().
  Model two({x}, {h, layer(ReLU())(h)});
  CHECK_THAT(error_of([&] { two(Tensor::zeros({1, 4})); }), Catch::Contains("has 2 outputs; use forward_all()"));
  const std::vector<Tensor> outs = two.forward_all({Tensor::ones({1, 4})});
  REQUIRE(outs.size() == 2);
  require_close(outs[1], relu(outs[0]).to_vector());
}

TEST_CASE("Model trains with Trainer: a residual network fits XOR", "[layer]") {
  manual_seed(3);
  Node x = Input({2});
  Node h = layer(Dense(8, {true, Activation::Tanh}))(x);
  h = layer(Add())({h, layer(Dense(8, {true, Activation::Tanh}))(h)});
  Model m(x, layer(Dense(1))(h));
  BinaryCrossEntropyWithLogitsLoss loss;
  optim::AdamOptions ao;
  ao.lr = 0.05f;
  optim::Adam adam(m.parameters(), ao);
  Trainer trainer(m, loss, adam);
  data::TensorDataset xor_data(Tensor::from_vector({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2}),
                               Tensor::from_vector({0, 1, 1, 0}, {4, 1}));
  FitOptions o;
  o.epochs = 200;
  o.batch_size = 4;
  o.verbose = Verbose::Silent;
  trainer.fit(xor_data, o);
  const EvalResult e = trainer.evaluate(xor_data, 4);
  CHECK(e.loss < 0.05);
  CHECK(trainer.predict(Tensor::from_vector({0, 1}, {1, 2})).shape() == Shape{1, 1});
}
