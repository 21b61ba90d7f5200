// dist_driver: data-parallel training checked under a real mpirun (the ctest
// entries dist_* in tests/CMakeLists.txt launch it with 1, 2 and 4 ranks).
//
//   dist_driver equivalence sgd|adam B K   N ranks x batch B for K steps, vs one process x batch N*B
//   dist_driver broadcast                  ranks seeded differently end identical
//   dist_driver shard                      each sample once per epoch over the ranks
//   dist_driver save DIR                   3 epochs, a checkpoint after each, the final weights
//   dist_driver resume DIR                 resumes DIR's epoch-1 checkpoint, ends at DIR's final weights
//   dist_driver kill                       rank 1 kills itself mid-epoch
//   dist_driver hang                       rank 1 stops answering mid-epoch (run with MAAS_DIST_TIMEOUT)
//
// A failed check ends every rank (dist::abort) with a message naming it, so
// mpirun exits non-zero. Prints "dist_driver <mode>: ok" on rank 0 on success.
#include <maas/checkpoint.hpp>
#include <maas/dist.hpp>
#include <maas/maas.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace maas;

namespace {

#define EXPECT(cond, msg)                                                                          \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::ostringstream os_;                                                                      \
      os_ << "dist_driver: check failed on rank " << dist::rank() << ": " #cond " - " << msg;      \
      dist::abort(os_.str());                                                                      \
    }                                                                                              \
  } while (0)

// n samples of 1x6x6 inputs and 3 classes, the same on every rank.
data::TensorDataset make_data(int64_t n) {
  Generator gen(1234);
  Tensor x = Tensor::randn({n, 1, 6, 6}, gen);
  Tensor y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) y.data()[i] = static_cast<float>((i * 7) % 3);
  return data::TensorDataset(x, y);
}

// A small CNN: convolution, pooling and dense layers, as the reference CNN.
nn::Sequential make_model(uint64_t seed, bool batch_norm = false) {
  manual_seed(seed);
  nn::Sequential model({1, 6, 6});
  model.add(nn::Conv2D(4, 3));
  if (batch_norm) model.add(nn::BatchNorm());
  model.add(nn::ReLU()).add(nn::MaxPool2D(2)).add(nn::Flatten()).add(nn::Dense(8)).add(nn::ReLU()).add(nn::Dense(3));
  return model;
}

std::vector<float> flat(const nn::Module& model) {
  std::vector<float> out;
  for (const Tensor& p : model.parameters()) out.insert(out.end(), p.data(), p.data() + p.numel());
  for (const auto& [name, b] : model.named_buffers()) out.insert(out.end(), b.data(), b.data() + b.numel());
  return out;
}

// Every rank's values are bit-identical to rank 0's.
void expect_identical_across_ranks(const nn::Module& model, const char* what) {
  const std::vector<float> mine = flat(model);
  std::vector<float> root = mine;
  dist::communicator().broadcast(root.data(), static_cast<int64_t>(root.size() * sizeof(float)), 0);
  EXPECT(std::memcmp(root.data(), mine.data(), mine.size() * sizeof(float)) == 0,
         what << ": the parameters differ from rank 0's");
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
  return d;
}

FitOptions silent_fit(int64_t batch, int64_t epochs, bool distributed) {
  FitOptions o;
  o.batch_size = batch;
  o.epochs = epochs;
  o.seed = 7;
  o.verbose = Verbose::Silent;
  o.distributed = distributed;
  return o;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& kind, const nn::Module& model) {
  if (kind == "sgd") {
    optim::SGDOptions o;
    o.lr = 0.1f;
    o.momentum = 0.9f;
    return std::make_unique<optim::SGD>(model.parameters(), o);
  }
  optim::AdamOptions o;
  o.lr = 0.01f;
  return std::make_unique<optim::Adam>(model.parameters(), o);
}

// Equivalence: N ranks x batch B for K steps == one process x batch N*B on the
// same samples (global batch s = positions [s N B, (s + 1) N B) of the order).
// The averaged gradient sums the same per-sample terms in another order (per
// rank, then over ranks), so the two differ by float rounding only: each
// gradient value by a few ulps of the sum of its terms' magnitudes. Over K
// steps at these learning rates that stays below 1e-5 (the largest seen is
// printed; typically ~1e-7).
int equivalence(const std::string& kind, int64_t B, int64_t K) {
  const int N = dist::world_size();
  const data::TensorDataset train = make_data(K * N * B);
  const data::TensorDataset validation = make_data(13);  // split unevenly over the ranks
  CrossEntropyLoss loss;

  nn::Sequential model = make_model(42);
  auto opt = make_optimizer(kind, model);
  Trainer trainer(model, loss, *opt);
  FitOptions o = silent_fit(B, 1, true);
  o.validation_data = &validation;
  const History h = trainer.fit(train, o);
  EXPECT(trainer.global_step() == K, "ran " << trainer.global_step() << " steps, expected " << K);
  expect_identical_across_ranks(model, "after training");

  nn::Sequential single = make_model(42);
  auto single_opt = make_optimizer(kind, single);
  Trainer single_trainer(single, loss, *single_opt);
  FitOptions os = silent_fit(N * B, 1, false);
  os.validation_data = &validation;
  const History hs = single_trainer.fit(train, os);
  const double d = max_abs_diff(flat(model), flat(single));
  const double dl = std::fabs(h["loss"][0] - hs["loss"][0]);
  if (dist::rank() == 0)
    std::printf("equivalence %s: %d ranks x batch %lld, %lld steps: max |w_dist - w_single| = %.3g, "
                "|loss_dist - loss_single| = %.3g\n",
                kind.c_str(), N, static_cast<long long>(B), static_cast<long long>(K), d, dl);
  EXPECT(d <= 1e-5, "the weights differ from one process with batch " << N * B << " by " << d);
  EXPECT(dl <= 1e-5, "the epoch's mean loss differs from one process's by " << dl);
  // The validation, each rank evaluating part of it, reduced over the ranks.
  const double dv = std::fabs(h["val_loss"][0] - hs["val_loss"][0]);
  EXPECT(dv <= 1e-5, "val_loss differs from one process's by " << dv);
  EXPECT(h["val_accuracy"][0] == hs["val_accuracy"][0],
         "val_accuracy " << h["val_accuracy"][0] << " against one process's " << hs["val_accuracy"][0]);
  EXPECT(max_abs_diff(flat(model), flat(make_model(42))) > 1e-3, "training did not change the weights");
  return 0;
}

// Ranks seeded differently (weights, BatchNorm buffers, Adam state) end identical.
int broadcast() {
  const int r = dist::rank();
  nn::Sequential model = make_model(100 + static_cast<uint64_t>(r), /*batch_norm=*/true);
  for (auto [name, b] : model.named_buffers()) b.data()[0] = static_cast<float>(r);  // differing buffers
  CrossEntropyLoss loss;
  optim::Adam adam(model.parameters());
  Trainer trainer(model, loss, adam);
  const std::vector<float> before = flat(model);
  std::vector<float> root = before;
  dist::communicator().broadcast(root.data(), static_cast<int64_t>(root.size() * sizeof(float)), 0);
  if (r != 0) EXPECT(max_abs_diff(before, root) > 1e-3, "the ranks started identical: the test proves nothing");
  trainer.fit(make_data(40), silent_fit(4, 2, true));
  expect_identical_across_ranks(model, "after 2 epochs with BatchNorm and Adam");
  // Optimizer state too: one more step, without the trainer, stays identical
  // (in evaluation mode: BatchNorm's running statistics would follow each
  // rank's own sample in training mode).
  model.eval();
  adam.zero_grad();
  Tensor x, y;
  make_data(40).get_batch({static_cast<int64_t>(r)}, x, y);
  loss(model(x), y).backward();
  dist::allreduce_gradients(model);
  adam.step();
  expect_identical_across_ranks(model, "after a manual allreduce_gradients step");
  return 0;
}

// Records the samples fetched, to count them over the ranks.
class CountingDataset : public data::Dataset {
 public:
  explicit CountingDataset(const data::TensorDataset& inner) : inner_(inner), seen(inner.size(), 0.0) {}
  int64_t size() const override { return inner_.size(); }
  Shape sample_shape() const override { return inner_.sample_shape(); }
  void get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const override {
    for (int64_t i : indices) seen[static_cast<size_t>(i)] += 1.0;
    inner_.get_batch(indices, x, y);
  }
  const data::TensorDataset& inner_;
  mutable std::vector<double> seen;
};

class ShardCheck : public Callback {
 public:
  explicit ShardCheck(CountingDataset& data) : data_(data) {}
  void on_epoch_end(int64_t epoch, const Logs&) override {
    std::vector<double> counts = data_.seen;
    double mine = 0;
    for (double c : counts) mine += c;
    dist::communicator().allreduce_sum(counts.data(), static_cast<int64_t>(counts.size()));
    for (size_t i = 0; i < counts.size(); ++i)
      EXPECT(counts[i] == 1.0, "epoch " << epoch + 1 << ": sample " << i << " was read " << counts[i] << " times");
    const int64_t n = data_.size(), N = dist::world_size();
    EXPECT(mine == static_cast<double>(shard_size(n, dist::rank(), static_cast<int>(N))),
           "this rank read " << mine << " samples");
    std::fill(data_.seen.begin(), data_.seen.end(), 0.0);
    ++epochs;
  }
  CountingDataset& data_;
  int epochs = 0;
};

int shard() {
  for (int64_t n : {45, 48}) {  // uneven and even shards
    const data::TensorDataset base = make_data(n);
    CountingDataset counting(base);
    nn::Sequential model = make_model(1);
    CrossEntropyLoss loss;
    optim::SGD sgd(model.parameters());
    Trainer trainer(model, loss, sgd);
    auto check = std::make_shared<ShardCheck>(counting);
    FitOptions o = silent_fit(4, 3, true);
    o.callbacks = {check};
    trainer.fit(counting, o);
    EXPECT(check->epochs == 3, "ran " << check->epochs << " epochs");
  }
  return 0;
}

// Checkpoint and resume: a global batch of 8 whatever the number of ranks,
// 45 samples (uneven shards), Adam. `save` on 2 ranks writes ck-1.h5 .. ck-3.h5
// and final.bin; `resume` on any number of ranks continues ck-1.h5 to the end
// and must reach final.bin's weights (same global batches; float rounding only).
constexpr int64_t kGlobalBatch = 8, kSamples = 45, kEpochs = 3;

int save_or_resume(bool save, const std::string& dir) {
  const int N = dist::world_size();
  EXPECT(kGlobalBatch % N == 0, "run with 1, 2, 4 or 8 ranks");
  const data::TensorDataset train = make_data(kSamples);
  nn::Sequential model = make_model(5 + static_cast<uint64_t>(dist::rank()));  // rank 0's weights win
  CrossEntropyLoss loss;
  optim::Adam adam(model.parameters());
  Trainer trainer(model, loss, adam);
  FitOptions o = silent_fit(kGlobalBatch / N, kEpochs, true);
  if (save) {
    o.callbacks = {std::make_shared<ModelCheckpoint>(dir + "/ck-{epoch}.h5", "loss", false, MonitorMode::Min,
                                                     checkpoint_writer(trainer))};
  } else {
    const TrainingState s = load_checkpoint(dir + "/ck-1.h5", model, adam);
    trainer.set_global_step(s.global_step);
    o.initial_epoch = s.epoch;
    EXPECT(s.epoch == 1, "the checkpoint holds epoch " << s.epoch);
  }
  trainer.fit(train, o);
  expect_identical_across_ranks(model, "at the end");
  const std::vector<float> w = flat(model);
  const std::string final_path = dir + "/final.bin";
  if (save) {
    if (dist::rank() == 0) {
      std::ofstream f(final_path, std::ios::binary);
      f.write(reinterpret_cast<const char*>(w.data()), static_cast<std::streamsize>(w.size() * sizeof(float)));
      EXPECT(f.good(), "cannot write " << final_path);
    }
    for (int e = 1; e <= kEpochs; ++e)
      EXPECT(std::ifstream(dir + "/ck-" + std::to_string(e) + ".h5").good(), "no checkpoint for epoch " << e);
  } else {
    std::vector<float> ref(w.size());
    std::ifstream f(final_path, std::ios::binary);
    f.read(reinterpret_cast<char*>(ref.data()), static_cast<std::streamsize>(ref.size() * sizeof(float)));
    EXPECT(f.good(), "cannot read " << final_path << " (run the save mode on 2 ranks first)");
    const double d = max_abs_diff(w, ref);
    if (dist::rank() == 0)
      std::printf("resume on %d ranks: max |w - w_2ranks| = %.3g after %lld steps\n", N, d,
                  static_cast<long long>(trainer.global_step()));
    EXPECT(d <= 1e-5, "resumed on " << N << " ranks, the weights differ from the 2-rank run's by " << d);
    EXPECT(trainer.global_step() == kEpochs * ((kSamples + kGlobalBatch - 1) / kGlobalBatch),
           "global step " << trainer.global_step());
  }
  return 0;
}

// Rank 1 fails at its 4th step of epoch 1: killed (SIGKILL) or stuck.
class Failure : public Callback {
 public:
  explicit Failure(bool kill) : kill_(kill) {}
  void on_batch_begin(int64_t step) override {
    if (dist::rank() != 1 || step != 3) return;
    std::fprintf(stderr, "dist_driver: rank 1 %s\n", kill_ ? "kills itself" : "stops answering");
    std::fflush(stderr);
    if (kill_) std::raise(SIGKILL);
    std::this_thread::sleep_for(std::chrono::seconds(120));
  }
  bool kill_;
};

int failure(bool kill) {
  nn::Sequential model = make_model(3);
  CrossEntropyLoss loss;
  optim::SGD sgd(model.parameters());
  Trainer trainer(model, loss, sgd);
  FitOptions o = silent_fit(2, 2, true);
  o.callbacks = {std::make_shared<Failure>(kill)};
  trainer.fit(make_data(64), o);
  std::fprintf(stderr, "dist_driver: rank %d finished a fit that should have failed\n", dist::rank());
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    dist::Session mpi(&argc, &argv);
    int rc = 2;
    if (mode == "equivalence" && argc == 5)
      rc = equivalence(argv[2], std::stoll(argv[3]), std::stoll(argv[4]));
    else if (mode == "broadcast")
      rc = broadcast();
    else if (mode == "shard")
      rc = shard();
    else if ((mode == "save" || mode == "resume") && argc == 3)
      rc = save_or_resume(mode == "save", argv[2]);
    else if (mode == "kill" || mode == "hang")
      rc = failure(mode == "kill");
    else
      std::fprintf(stderr, "usage: dist_driver equivalence|broadcast|shard|save DIR|resume DIR|kill|hang\n");
    if (rc == 0 && dist::rank() == 0) std::printf("dist_driver %s: ok\n", mode.c_str());
    return rc;
  } catch (const Error& e) {
    std::fprintf(stderr, "dist_driver %s: %s\n", mode.c_str(), e.what());
    return 1;
  }
}
