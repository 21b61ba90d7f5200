// Functional models in Keras' .h5 layout: maas' own files (save -> load ->
// the same predictions, byte-identical re-saves, weights and exact resume),
// files as Keras 2 and Keras 3 write them (their two spellings of
// inbound_nodes) with known weights and hand-computed outputs, and damaged
// graphs (unknown layers, cycles, missing nodes).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <pthread.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint/h5.hpp"
#include "checkpoint/keras_file.hpp"
#include "data/temp_dir.hpp"
#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"
#include "gradcheck.hpp"

using namespace maas;
using maas::test::error_of;
using namespace maas::nn;
using maas::test::FileLayer;
using maas::test::read_bytes;
using maas::test::TempDir;
using maas::test::write_model_file;

namespace {

Tensor predict(Module& m, const Tensor& x) {
  m.eval();
  NoGradGuard ng;
  return m(x);
}

// Images through two branches (Concatenate), a BatchNorm, a residual Add
// over a shared convolution, then Flatten, Dropout and Dense.
std::shared_ptr<Model> graph_cnn(uint64_t seed) {
  manual_seed(seed);
  Conv2DOptions same;
  same.padding = Padding::Same;
  Node x = Input({2, 6, 6});
  Node a = layer(Conv2D(3, 3, same))(x);
  Node b = layer(Conv2D(2, 1))(x);
  Node h = layer(BatchNorm())(layer(Concatenate())({a, b}));
  auto shared = layer(Conv2D(5, 3, same));
  h = layer(Add())({h, shared(layer(ReLU())(shared(h)))});
  h = layer(Dropout(0.25f))(layer(Flatten())(layer(MaxPool2D(2))(h)));
  return std::make_shared<Model>(x, layer(Dense(3))(h));
}

// Keras 2's spelling: inbound_nodes as lists of [layer, node, tensor, kwargs].
// input_1 (2) -> dense_a (shared: called on input_1, then on add) ->
// add(dense_a[0], input_1) -> concatenate(dense_a[1], input_1) -> dense_out.
// The layers are listed with dense_out first: the file's order is not the graph's.
const char* kKeras2 = R"({"class_name": "Functional", "config": {"name": "model", "trainable": true, "layers": [
  {"class_name": "Dense", "config": {"name": "dense_out", "trainable": true, "dtype": "float32", "units": 1,
     "activation": "linear", "use_bias": true}, "name": "dense_out",
   "inbound_nodes": [[["concatenate", 0, 0, {}]]]},
  {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 2], "dtype": "float32", "sparse": false,
     "ragged": false, "name": "input_1"}, "name": "input_1", "inbound_nodes": []},
  {"class_name": "Dense", "config": {"name": "dense_a", "trainable": true, "dtype": "float32", "units": 2,
     "activation": "linear", "use_bias": true}, "name": "dense_a",
   "inbound_nodes": [[["input_1", 0, 0, {}]], [["add", 0, 0, {}]]]},
  {"class_name": "Add", "config": {"name": "add", "trainable": true, "dtype": "float32"}, "name": "add",
   "inbound_nodes": [[["dense_a", 0, 0, {}], ["input_1", 0, 0, {}]]]},
  {"class_name": "Concatenate", "config": {"name": "concatenate", "trainable": true, "dtype": "float32", "axis": -1},
   "name": "concatenate", "inbound_nodes": [[["dense_a", 1, 0, {}], ["input_1", 0, 0, {}]]]}],
  "input_layers": [["input_1", 0, 0]], "output_layers": [["dense_out", 0, 0]]},
  "keras_version": "2.13.1", "backend": "tensorflow"})";

std::vector<FileLayer> keras2_weights() {
  return {{"input_1", {}},
          {"dense_out", {{"kernel", {4, 1}, {1, -1, 2, 0.5f}}, {"bias", {1}, {0.25f}}}},
          {"dense_a", {{"kernel", {2, 2}, {1, 2, 3, 4}}, {"bias", {2}, {0.5f, -0.5f}}}},
          {"add", {}},
          {"concatenate", {}}};
}

// A Keras 3 tensor reference.
std::string tensor(const std::string& layer, int node, const std::string& shape) {
  return R"({"class_name": "__keras_tensor__", "config": {"shape": )" + shape +
         R"(, "dtype": "float32", "keras_history": [")" + layer + "\", " + std::to_string(node) + ", 0]}}";
}

// Keras 3's spelling: {"args": [tensor or [tensors]], "kwargs": {}}, InputLayer's batch_shape.
// input_layer (H, W, C) = (2, 2, 1) -> conv2d (1x1, 2 filters) ->
// concatenate(conv2d, input_layer) (3 channels) -> flatten -> dense.
std::string keras3_config(const std::string& model_class = "Functional") {
  return R"({"module": "keras", "class_name": ")" + model_class + R"(", "config": {"name": "functional",
  "trainable": true, "layers": [
  {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 2, 2, 1],
     "dtype": "float32", "sparse": false, "name": "input_layer"}, "registered_name": null, "name": "input_layer",
   "inbound_nodes": []},
  {"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "conv2d", "trainable": true,
     "dtype": "float32", "filters": 2, "kernel_size": [1, 1], "strides": [1, 1], "padding": "valid",
     "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "linear",
     "use_bias": true}, "registered_name": null, "build_config": {"input_shape": [null, 2, 2, 1]},
   "name": "conv2d", "inbound_nodes": [{"args": [)" +
         tensor("input_layer", 0, "[null, 2, 2, 1]") + R"(], "kwargs": {}}]},
  {"module": "keras.layers", "class_name": "Concatenate", "config": {"name": "concatenate", "trainable": true,
     "dtype": "float32", "axis": -1}, "registered_name": null, "name": "concatenate",
   "inbound_nodes": [{"args": [[)" +
         tensor("conv2d", 0, "[null, 2, 2, 2]") + ", " + tensor("input_layer", 0, "[null, 2, 2, 1]") +
         R"(]], "kwargs": {}}]},
  {"module": "keras.layers", "class_name": "Flatten", "config": {"name": "flatten", "trainable": true,
     "dtype": "float32", "data_format": "channels_last"}, "registered_name": null, "name": "flatten",
   "inbound_nodes": [{"args": [)" +
         tensor("concatenate", 0, "[null, 2, 2, 3]") + R"(], "kwargs": {}}]},
  {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "trainable": true,
     "dtype": "float32", "units": 1, "activation": "linear", "use_bias": true}, "registered_name": null,
   "name": "dense", "inbound_nodes": [{"args": [)" +
         tensor("flatten", 0, "[null, 12]") + R"(], "kwargs": {}}]}],
  "input_layers": [["input_layer", 0, 0]], "output_layers": [["dense", 0, 0]]}, "registered_name": "Functional"})";
}

std::vector<FileLayer> keras3_weights() {
  return {{"conv2d", {{"kernel", {1, 1, 1, 2}, {1, -1}}, {"bias", {2}, {0, 1}}}},
          {"concatenate", {}},
          {"flatten", {}},
          {"dense", {{"kernel", {12, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}, {"bias", {1}, {0}}}}};
}

// A two-input-free graph config of `layers` (Keras 2 spelling) with input_1 (2,) and output `out`.
std::string graph(const std::string& layers, const std::string& out) {
  return R"({"class_name": "Functional", "config": {"name": "model", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 2], "name": "input_1"}, "name": "input_1",
     "inbound_nodes": []}, )" +
         layers + R"(], "input_layers": [["input_1", 0, 0]], "output_layers": [[")" + out + R"(", 0, 0]]}})";
}

std::string dense(const std::string& name, const std::string& inbound) {
  return R"({"class_name": "Dense", "config": {"name": ")" + name + R"(", "units": 2}, "name": ")" + name +
         R"(", "inbound_nodes": )" + inbound + "}";
}

// Runs `f` on a thread with a 256 KiB stack: freeing a 20,000-node chain
// one recursion per node would overflow it.
void on_small_stack(std::function<void()> f) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t t;
  REQUIRE(pthread_create(
              &t, &attr,
              [](void* p) -> void* {
                (*static_cast<std::function<void()>*>(p))();
                return nullptr;
              },
              &f) == 0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
}

}  // namespace

TEST_CASE("functional models: save -> load gives the same predictions, and the file is Keras 2's", "[io]") {
  TempDir dir("functional");
  auto m = graph_cnn(4);
  Generator gen(5);
  const Tensor x = Tensor::randn({4, 2, 6, 6}, gen);
  // Move the BatchNorm statistics off their initial values.
  m->train();
  (void)(*m)(x);
  const Tensor want = predict(*m, x);
  save_model(*m, dir / "a.h5");

  auto loaded = load_model(dir / "a.h5");
  auto* fm = dynamic_cast<Model*>(loaded.get());
  REQUIRE(fm != nullptr);
  CHECK(predict(*fm, x).to_vector() == want.to_vector());
  CHECK(fm->summary() == m->summary());
  // Written again, the file is byte for byte the same.
  save_model(*fm, dir / "b.h5");
  CHECK(read_bytes(dir / "a.h5") == read_bytes(dir / "b.h5"));

  const detail::h5::File f = detail::h5::File::open(dir / "a.h5", {"test", dir / "a.h5"});
  const auto config = nlohmann::json::parse(f.root().read_string("model_config"));
  CHECK(config["class_name"] == "Functional");
  const auto& c = config["config"];
  CHECK(c["input_layers"] == nlohmann::json::parse(R"([["input_1", 0, 0]])"));
  CHECK(c["output_layers"] == nlohmann::json::parse(R"([["dense", 0, 0]])"));
  CHECK(c["layers"][0]["class_name"] == "InputLayer");
  CHECK(c["layers"][0]["config"]["batch_input_shape"] == nlohmann::json::parse("[null, 6, 6, 2]"));
  for (const auto& L : c["layers"]) {
    if (L["name"] == "concatenate")
      CHECK(L["inbound_nodes"] == nlohmann::json::parse(R"([[["conv2d", 0, 0, {}], ["conv2d_1", 0, 0, {}]]])"));
    if (L["name"] == "conv2d_2")  // the shared convolution: two calls
      CHECK(L["inbound_nodes"] == nlohmann::json::parse(R"([[["batch_normalization", 0, 0, {}]], [["re_lu", 0, 0, {}]]])"));
    if (L["name"] == "add")
      CHECK(L["inbound_nodes"] == nlohmann::json::parse(R"([[["batch_normalization", 0, 0, {}], ["conv2d_2", 1, 0, {}]]])"));
  }
}

TEST_CASE("functional models: save_weights / load_weights and an exact resume from a checkpoint", "[io]") {
  TempDir dir("functional_resume");
  Generator gen(6);
  const Tensor x = Tensor::randn({4, 2, 6, 6}, gen), y = Tensor::randn({4, 3}, gen);
  auto steps = [&](Model& m, optim::Optimizer& opt, int n) {
    m.train();
    for (int i = 0; i < n; ++i) {
      opt.zero_grad();
      mse_loss(m(x), y).backward();
      opt.step();
    }
  };
  auto a = graph_cnn(7), b = graph_cnn(8);
  save_weights(*a, dir / "w.h5");
  load_weights(*b, dir / "w.h5");
  CHECK(predict(*b, x).to_vector() == predict(*a, x).to_vector());

  optim::Adam adam(a->parameters());
  steps(*a, adam, 2);
  save_checkpoint(dir / "ck.h5", *a, adam);
  steps(*a, adam, 2);  // uninterrupted: 4 steps

  auto c = graph_cnn(9);
  optim::Adam adam_c(c->parameters());
  load_checkpoint(dir / "ck.h5", *c, adam_c);
  steps(*c, adam_c, 2);  // resumed after 2: the same 4 steps, Dropout masks included
  const NamedTensors pa = a->named_parameters(), pc = c->named_parameters();
  REQUIRE(pa.size() == pc.size());
  for (size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].second.to_vector() == pc[i].second.to_vector());
}

TEST_CASE("functional models: a Keras 2 file (nested-list inbound_nodes, a shared layer) predicts the known outputs",
          "[io]") {
  TempDir dir("functional_keras2");
  write_model_file(dir / "k2.h5", kKeras2, keras2_weights());
  auto m = load_model(dir / "k2.h5");
  auto* fm = dynamic_cast<Model*>(m.get());
  REQUIRE(fm != nullptr);
  CHECK(fm->name() == "model");
  CHECK(fm->calls().size() == 5);  // dense_a twice
  // By hand: x = (1, 2): dense_a = (7.5, 9.5); add = (8.5, 11.5); dense_a again =
  // (43.5, 62.5); joined with x: (43.5, 62.5, 1, 2); dense_out = 43.5 - 62.5 + 2 + 1 + 0.25.
  // x = (-1, 0.5): (1, -0.5); (0, 0); (0.5, -0.5); (0.5, -0.5, -1, 0.5); 0.5 + 0.5 - 2 + 0.25 + 0.25.
  const Tensor out = predict(*m, Tensor::from_vector({1, 2, -1, 0.5f}, {2, 2}));
  CHECK(out.to_vector() == std::vector<float>{-15.75f, -0.5f});
  CHECK_THAT(fm->summary(), Catch::Contains("['input_1[0][0]', 'add[0][0]']"));
}

TEST_CASE("functional models: a Keras 3 file ({args: [__keras_tensor__]} inbound_nodes) predicts the known outputs",
          "[io]") {
  TempDir dir("functional_keras3");
  for (const char* cls : {"Functional", "Model"}) {
    INFO(cls);
    write_model_file(dir / "k3.h5", keras3_config(cls), keras3_weights());
    auto m = load_model(dir / "k3.h5");
    CHECK(m->input_shapes() == std::vector<Shape>{{1, 2, 2}});
    // The image (H, W) = [[1, 2], [3, 4]]; conv2d gives channels x and 1 - x;
    // joined with x, each pixel is (x, 1 - x, x) in Keras' (H, W, C) order:
    // (1, 0, 1, 2, -1, 2, 3, -2, 3, 4, -3, 4), dotted with 1..12: 106.
    const Tensor out = predict(*m, Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2}));
    CHECK(out.to_vector() == std::vector<float>{106.f});
  }
}

TEST_CASE("functional models: damaged graphs are clear errors", "[io]") {
  TempDir dir("functional_bad");
  const std::string path = dir / "bad.h5";
  auto load_error = [&](const std::string& config) {
    write_model_file(path, config, {});
    return error_of([&] { load_model(path); });
  };
  const std::string prefix = "load_model: " + path + ": ";
  // A reference to a layer the model does not have.
  CHECK_THAT(load_error(graph(dense("dense", R"([[["nope", 0, 0, {}]]])"), "dense")),
             Catch::StartsWith(prefix + "layer 'dense' (Dense): inbound_nodes 0 refers to layer 'nope', which the "
                                        "model does not have"));
  // Keras 3's spelling, the same.
  CHECK_THAT(load_error(graph(dense("dense", "[{\"args\": [" + tensor("nope", 0, "[null, 2]") + "], \"kwargs\": {}}]"),
                              "dense")),
             Catch::Contains("refers to layer 'nope', which the model does not have"));
  // A cycle: a reads b, b reads a.
  CHECK_THAT(load_error(graph(dense("a", R"([[["b", 0, 0, {}]]])") + ", " + dense("b", R"([[["a", 0, 0, {}]]])"), "a")),
             Catch::StartsWith(prefix + "the inbound_nodes form a cycle"));
  // A layer that reads itself.
  CHECK_THAT(load_error(graph(dense("a", R"([[["a", 0, 0, {}]]])"), "a")), Catch::Contains("form a cycle: layer 'a'"));
  // A node that does not exist.
  CHECK_THAT(load_error(graph(dense("a", R"([[["input_1", 0, 0, {}]]])") + ", " + dense("b", R"([[["a", 1, 0, {}]]])"),
                              "b")),
             Catch::Contains("layer 'b' reads node 1 of layer 'a', which has 1"));
  // A second output of a layer.
  CHECK_THAT(load_error(graph(dense("a", R"([[["input_1", 0, 1, {}]]])"), "a")),
             Catch::Contains("refers to output 1 of layer 'input_1'; maas layers have one output"));
  // Malformed entries, an output that is not a layer, duplicate names, shapes that do not fit.
  CHECK_THAT(load_error(graph(dense("a", R"([[["input_1", 0]]])"), "a")),
             Catch::Contains("is not [layer name, node index, tensor index]"));
  CHECK_THAT(load_error(graph(dense("a", R"([[["input_1", 0, 0, {}]]])"), "z")),
             Catch::StartsWith(prefix + "output_layers refers to layer 'z'"));
  CHECK_THAT(load_error(graph(dense("a", R"([[["input_1", 0, 0, {}]]])") + ", " + dense("a", R"([[["a", 0, 0, {}]]])"),
                              "a")),
             Catch::Contains("two layers are named 'a'"));
  CHECK_THAT(load_error(graph(dense("a", R"([[["input_1", 0, 0, {}]]])") +
                                  R"(, {"class_name": "Add", "config": {"name": "add"}, "name": "add",
                                  "inbound_nodes": [[["a", 0, 0, {}], ["input_1", 0, 0, {}]]]}, )" +
                                  R"({"class_name": "Concatenate", "config": {"name": "cat"}, "name": "cat",
                                  "inbound_nodes": [[["add", 0, 0, {}], ["input_1", 0, 0, {}]]]})",
                              "cat")),
             Catch::Contains("no weights for a (Dense)"));  // the graph is fine; the file lacks the weights
  CHECK_THAT(load_error(graph(R"({"class_name": "Dense", "config": {"name": "a", "units": 3}, "name": "a",
                                  "inbound_nodes": [[["input_1", 0, 0, {}]]]}, )"
                              R"({"class_name": "Add", "config": {"name": "add"}, "name": "add",
                                  "inbound_nodes": [[["a", 0, 0, {}], ["input_1", 0, 0, {}]]]})",
                              "add")),
             Catch::StartsWith(prefix + "layer 'add' (Add): ") && Catch::Contains("(None, 3), (None, 2)"));
  // The weights must be the config's layers.
  write_model_file(path, kKeras2, {{"dense_out", {{"kernel", {4, 1}}, {"bias", {1}}}}});
  CHECK_THAT(error_of([&] { load_model(path); }), Catch::Contains("no weights for dense_a (Dense)"));
  std::vector<FileLayer> wrong = keras2_weights();
  wrong[2].weights[0].shape = {3, 2};
  wrong[2].weights[0].values.clear();  // declared, not written
  write_model_file(path, kKeras2, wrong);
  CHECK_THAT(error_of([&] { load_model(path); }),
             Catch::Contains("layer 'dense_a' (Dense): kernel expected (2, 2), found (3, 2)"));
}

TEST_CASE("functional models: a 20,000-layer chain loads and is freed without deep recursion", "[io]") {
  TempDir dir("functional_deep");
  constexpr int kDepth = 20000;
  std::string layers;
  for (int i = 0; i < kDepth; ++i) {
    const std::string name = "r" + std::to_string(i), from = i == 0 ? "input_1" : "r" + std::to_string(i - 1);
    layers += (i ? ", " : "") + std::string(R"({"class_name": "ReLU", "config": {"name": ")") + name +
              R"("}, "name": ")" + name + R"(", "inbound_nodes": [[[")" + from + R"(", 0, 0, {}]]]})";
  }
  write_model_file(dir / "deep.h5", graph(layers, "r" + std::to_string(kDepth - 1)), {});
  auto m = load_model(dir / "deep.h5");
  CHECK(m->size() == static_cast<size_t>(kDepth));
  CHECK(predict(*m, Tensor::from_vector({-1, 2}, {1, 2})).to_vector() == std::vector<float>{0, 2});
  on_small_stack([&] { m.reset(); });  // the node chain is freed iteratively
  // The same depth built in code.
  Node x = Input({2});
  Node h = x;
  for (int i = 0; i < kDepth; ++i) h = layer(ReLU())(h);
  {
    Model deep(x, h);
    CHECK(deep.calls().size() == static_cast<size_t>(kDepth));
  }
  on_small_stack([&] { h = Node(); });
}

TEST_CASE("functional models: two inputs and two outputs save and load", "[io]") {
  TempDir dir("functional_two");
  manual_seed(12);
  Node a = Input({3}, "a"), b = Input({2}, "b");
  Node h = layer(Dense(4))(layer(Concatenate())({a, b}));
  Model m({a, b}, {layer(Dense(2))(h), h});
  save_model(m, dir / "two.h5");
  auto loaded = load_model(dir / "two.h5");
  auto* fm = dynamic_cast<Model*>(loaded.get());
  REQUIRE(fm != nullptr);
  CHECK(fm->input_shapes() == std::vector<Shape>{{3}, {2}});
  CHECK(fm->input_nodes()[1].name() == "b");
  Generator gen(3);
  const std::vector<Tensor> x{Tensor::randn({4, 3}, gen), Tensor::randn({4, 2}, gen)};
  NoGradGuard ng;
  const std::vector<Tensor> want = m.forward_all(x), got = fm->forward_all(x);
  REQUIRE(got.size() == 2);
  CHECK(got[0].to_vector() == want[0].to_vector());
  CHECK(got[1].to_vector() == want[1].to_vector());
}
