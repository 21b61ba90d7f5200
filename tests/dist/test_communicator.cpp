// Communicator helpers without MPI: a fake communicator stands for a group in
// which every other rank holds the same values as this one, and records the
// collectives it is asked for. The real group runs under mpirun
// (tests/dist/dist_driver.cpp).
#include <catch2/catch.hpp>

#include <maas/maas.hpp>

#include <numeric>

using namespace maas;

namespace {

// Rank `rank` of `size` ranks that all hold this rank's values. Broadcasts
// from this rank are recorded in `sent`; a broadcast to this rank receives the
// next of `replay` (what a root sent earlier).
class MirrorCommunicator : public Communicator {
 public:
  MirrorCommunicator(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(float* data, int64_t n) override {
    calls.push_back(n);
    for (int64_t i = 0; i < n; ++i) data[i] *= static_cast<float>(size_);
  }
  void allreduce_sum(double* data, int64_t n) override {
    calls.push_back(n);
    for (int64_t i = 0; i < n; ++i) data[i] *= size_;
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    broadcasts.push_back(bytes);
    roots.push_back(root);
    auto* p = static_cast<char*>(data);
    if (root == rank_) {
      sent.emplace_back(p, p + bytes);
    } else if (!replay.empty()) {
      REQUIRE(replay.front().size() == static_cast<size_t>(bytes));
      std::copy(replay.front().begin(), replay.front().end(), p);
      replay.erase(replay.begin());
    }
  }
  std::vector<std::vector<char>> sent, replay;
  std::vector<int64_t> calls, broadcasts;
  std::vector<int> roots;

 private:
  int rank_, size_;
};

Tensor param_with_grad(const std::vector<float>& g) {
  Tensor p = Tensor::zeros({static_cast<int64_t>(g.size())}).requires_grad_();
  sum(p * Tensor::from_vector(g, {static_cast<int64_t>(g.size())})).backward();
  return p;
}

}  // namespace

TEST_CASE("shard_size splits n samples over ranks, sizes differing by at most one", "[dist]") {
  CHECK(shard_size(10, 0, 4) == 3);
  CHECK(shard_size(10, 1, 4) == 3);
  CHECK(shard_size(10, 2, 4) == 2);
  CHECK(shard_size(10, 3, 4) == 2);
  CHECK(shard_size(3, 3, 4) == 0);
  CHECK(shard_size(7, 0, 1) == 7);
  for (int size = 1; size <= 5; ++size)
    for (int64_t n = 0; n <= 13; ++n) {
      // Position p belongs to rank p % size: count them directly.
      std::vector<int64_t> counted(static_cast<size_t>(size), 0);
      for (int64_t p = 0; p < n; ++p) ++counted[static_cast<size_t>(p % size)];
      for (int r = 0; r < size; ++r) CHECK(shard_size(n, r, size) == counted[static_cast<size_t>(r)]);
    }
  CHECK_THROWS_AS(shard_size(10, 4, 4), Error);
  CHECK_THROWS_AS(shard_size(10, 0, 0), Error);
}

TEST_CASE("average_gradients fuses small gradients into buckets, last parameter first", "[dist]") {
  // Gradients of 2, 5, 1 and 3 values; buckets of at most 4: [3, 1] fused,
  // 5 alone (larger than a bucket), then [2].
  std::vector<Tensor> params = {param_with_grad({1, 2}), param_with_grad({3, 4, 5, 6, 7}), param_with_grad({8}),
                                param_with_grad({9, 10, 11})};
  MirrorCommunicator comm(0, 4);
  average_gradients(comm, params, 0.25f, /*bucket_floats=*/4);
  CHECK(comm.calls == std::vector<int64_t>{4, 5, 2});
  // 4 ranks with the same gradient, each weighted 1/4: the mean, the same values.
  float expected = 1;
  for (const Tensor& p : params)
    for (int64_t i = 0; i < p.numel(); ++i) CHECK(p.grad().data()[i] == expected++);

  // One large bucket for all: a single call.
  MirrorCommunicator one(1, 2);
  average_gradients(one, params, 0.5f);
  CHECK(one.calls == std::vector<int64_t>{11});
  CHECK_THROWS_AS(average_gradients(one, params, 0.5f, 0), Error);
}

TEST_CASE("average_gradients weights this rank's gradient and gives unreached parameters a zero one", "[dist]") {
  Tensor reached = param_with_grad({2, -4});
  Tensor unreached = Tensor::zeros({3}).requires_grad_();
  REQUIRE_FALSE(unreached.grad().defined());
  MirrorCommunicator comm(0, 2);
  average_gradients(comm, {reached, unreached}, 0.75f);  // this rank held 3/4 of the global batch
  // sum over 2 identical ranks of 0.75 g = 1.5 g
  CHECK(reached.grad().data()[0] == 3.f);
  CHECK(reached.grad().data()[1] == -6.f);
  REQUIRE(unreached.grad().defined());
  for (int i = 0; i < 3; ++i) CHECK(unreached.grad().data()[i] == 0.f);
}

TEST_CASE("average_tensors divides the sum by the number of ranks", "[dist]") {
  Tensor t = Tensor::from_vector({1, 2, 3}, {3});
  MirrorCommunicator comm(2, 3);
  average_tensors(comm, {t});
  CHECK(t.data()[0] == 1.f);
  CHECK(t.data()[2] == 3.f);
  CHECK(comm.calls == std::vector<int64_t>{3});
}

TEST_CASE("broadcast_module checks the layout, then sends every parameter and buffer", "[dist]") {
  nn::Sequential model({2});
  model.add(nn::Dense(3)).add(nn::BatchNorm()).add(nn::Dense(1));
  MirrorCommunicator comm(1, 2);
  broadcast_module(comm, model, 0);
  // The layout (2 int64), then kernel 2x3, bias 3, gamma 3, beta 3, mean 3, variance 3, kernel 3x1, bias 1.
  const std::vector<int64_t> floats = {6, 3, 3, 3, 3, 1, 3, 3};
  std::vector<int64_t> expected = {16};
  for (int64_t f : floats) expected.push_back(f * 4);
  std::sort(expected.begin() + 1, expected.end());
  std::vector<int64_t> got = comm.broadcasts;
  std::sort(got.begin() + 1, got.end());
  CHECK(got == expected);
  CHECK(std::all_of(comm.roots.begin(), comm.roots.end(), [](int r) { return r == 0; }));
  CHECK_THROWS_AS(broadcast_module(comm, model, 2), Error);
}

TEST_CASE("fit with distributed but no communicator names what is missing", "[dist][trainer]") {
  REQUIRE(default_communicator() == nullptr);
  nn::Sequential model({2});
  model.add(nn::Dense(2));
  CrossEntropyLoss loss;
  optim::SGD sgd(model.parameters());
  Trainer trainer(model, loss, sgd);
  data::TensorDataset data(Tensor::zeros({4, 2}), Tensor::zeros({4}));
  FitOptions o;
  o.verbose = Verbose::Silent;
  o.distributed = true;
  CHECK_THROWS_WITH(trainer.fit(data, o), Catch::Contains("maas::dist::Session"));
}

TEST_CASE("fit on rank 1 of a group prints nothing and reduces its metrics", "[dist][trainer]") {
  // Two ranks holding the same data: rank 1 reads positions 1, 3, 5, 7 of
  // each epoch; the mirror doubles its counts, as rank 0's would add.
  nn::Sequential model({2});
  model.add(nn::Dense(2));
  CrossEntropyLoss loss;
  optim::SGDOptions so;
  so.lr = 0.f;  // the weights stay as rank 0 broadcast them
  optim::SGD sgd(model.parameters(), so);
  Trainer trainer(model, loss, sgd);
  Tensor x = Tensor::zeros({8, 2});
  Tensor y = Tensor::zeros({8});
  data::TensorDataset data(x, y);
  FitOptions o;
  o.verbose = Verbose::Lines;
  o.batch_size = 2;

  // Rank 0 prints, and broadcasts its model and optimizer state.
  MirrorCommunicator root(0, 2);
  std::ostringstream root_out;
  o.out = &root_out;
  o.communicator = &root;
  trainer.fit(data, o);
  CHECK(root_out.str().find("Epoch 1/1") != std::string::npos);
  REQUIRE_FALSE(root.sent.empty());

  // Rank 1 receives those broadcasts.
  MirrorCommunicator comm(1, 2);
  comm.replay = root.sent;
  std::ostringstream out;
  o.out = &out;
  o.communicator = &comm;
  for (Tensor p : model.parameters()) p.data()[0] = 5.f;  // the bias too: overwritten by rank 0's
  trainer.set_global_step(0);
  const History h = trainer.fit(data, o);
  CHECK(comm.replay.empty());
  CHECK(out.str().empty());
  CHECK(trainer.global_step() == 2);  // 4 samples per rank, batches of 2
  CHECK(h["loss"][0] == Approx(std::log(2.0)));  // zero inputs, zero bias: uniform over 2 classes
  CHECK(h["accuracy"][0] == 1.0);                // ties predict class 0, every label is 0
  CHECK(trainer.communicator() == nullptr);      // only during the fit
}
