// DataLoader, transforms and TransformedDataset: batching, drop_last, seeded
// shuffling, normalisation values, augmentation (flip, crop offsets,
// determinism), prefetch = no prefetch, resume, errors from the prefetch
// thread, and clean destruction mid-epoch (run under ASan).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include "gradcheck.hpp"
#include "maas/data/loader.hpp"
#include "maas/trainer.hpp"

using namespace maas;
using namespace maas::data;

namespace {

// n samples [c, h, w]; sample i, element k holds i * 1000 + k + 1 (all distinct,
// none zero); label i % 3.
TensorDataset numbered(int64_t n, int64_t c = 1, int64_t h = 4, int64_t w = 4) {
  Tensor x = Tensor::empty({n, c, h, w});
  Tensor y = Tensor::empty({n});
  const int64_t row = c * h * w;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < row; ++k) x.data()[i * row + k] = static_cast<float>(i * 1000 + k + 1);
    y.data()[i] = static_cast<float>(i % 3);
  }
  return TensorDataset(x, y);
}

std::vector<Batch> run_epochs(const Dataset& data, const LoaderOptions& o, int epochs) {
  DataLoader loader(data, o);
  std::vector<Batch> out;
  for (int e = 0; e < epochs; ++e)
    for (const Batch& b : loader) out.push_back(b);
  return out;
}

void require_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("batch " << i);
    REQUIRE(a[i].epoch == b[i].epoch);
    REQUIRE(a[i].index == b[i].index);
    REQUIRE(a[i].indices == b[i].indices);
    REQUIRE(a[i].x.shape() == b[i].x.shape());
    REQUIRE(a[i].x.to_vector() == b[i].x.to_vector());  // bit-identical
    REQUIRE(a[i].y.to_vector() == b[i].y.to_vector());
  }
}

// A data set whose get_batch is slow (and optionally fails on one index).
class SlowDataset : public Dataset {
 public:
  SlowDataset(int64_t n, int64_t fail_index = -1) : base_(numbered(n)), fail_(fail_index) {}
  int64_t size() const override { return base_.size(); }
  Shape sample_shape() const override { return base_.sample_shape(); }
  void get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const override {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    for (int64_t i : indices) MAAS_CHECK(i != fail_, "SlowDataset: sample " << i << " is unreadable");
    base_.get_batch(indices, x, y);
  }
  mutable std::atomic<int> calls{0};

 private:
  TensorDataset base_;
  int64_t fail_;
};

}  // namespace

TEST_CASE("ImageDataset checks its arguments", "[data]") {
  MAAS_REQUIRE_THROWS_WITH(ImageDataset({1, 2, 3}, {0}, {1, 2, 2}), "3 pixel bytes do not hold 1 samples");
  MAAS_REQUIRE_THROWS_WITH(ImageDataset({}, {}, {2, 2}), "must be [C,H,W]");
  MAAS_REQUIRE_THROWS_WITH(ImageDataset({1}, {-1}, {1, 1, 1}), "label -1 of sample 0 is negative");
  MAAS_REQUIRE_THROWS_WITH(ImageDataset({1, 2}, {0, 2}, {1, 1, 1}, {"a", "b"}), "label 2 needs more than the 2");
  const ImageDataset d({0, 255, 51, 102}, {1, 0}, {1, 1, 2});
  REQUIRE(d.num_classes() == 2);
  Tensor x, y;
  d.get_batch({1, 0}, x, y);
  test::require_close(x, {0.2f, 0.4f, 0.f, 1.f});
  REQUIRE(y.to_vector() == std::vector<float>{0.f, 1.f});
  MAAS_REQUIRE_THROWS_WITH(d.get_batch({-1}, x, y), "index -1 (batch position 0) is out of range for 2 samples");
}

TEST_CASE("epoch_order: a seeded permutation per epoch", "[data]") {
  const std::vector<int64_t> a = epoch_order(50, true, 7, 0);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) REQUIRE(sorted[static_cast<size_t>(i)] == i);
  REQUIRE(a == epoch_order(50, true, 7, 0));
  REQUIRE(a != epoch_order(50, true, 7, 1));
  REQUIRE(a != epoch_order(50, true, 8, 0));
  const std::vector<int64_t> plain = epoch_order(5, false, 7, 3);
  REQUIRE(plain == std::vector<int64_t>{0, 1, 2, 3, 4});
  // Fisher-Yates from the top with the raw draws of Generator(shuffle_seed(seed, epoch)).
  Generator gen(shuffle_seed(7, 0));
  std::vector<int64_t> v(50);
  for (int64_t i = 0; i < 50; ++i) v[static_cast<size_t>(i)] = i;
  for (size_t i = 50; i > 1; --i) std::swap(v[i - 1], v[gen.engine()() % i]);
  REQUIRE(v == a);
  // The same seeds as the Trainer's shuffles, so both visit samples alike.
  for (uint64_t seed : {0ULL, 7ULL, 123456789ULL})
    for (int64_t e : {0, 1, 99}) REQUIRE(shuffle_seed(seed, e) == Trainer::shuffle_seed(seed, e));
}

TEST_CASE("DataLoader batches: sizes, drop_last, every sample once per epoch", "[data]") {
  const TensorDataset data = numbered(10);
  for (int64_t prefetch : {0, 2}) {
    LoaderOptions o;
    o.batch_size = 4;
    o.prefetch = prefetch;
    {
      DataLoader loader(data, o);
      REQUIRE(loader.num_batches() == 3);
      for (int e = 0; e < 2; ++e) {
        REQUIRE(loader.epoch() == e);
        std::vector<int64_t> sizes, seen;
        for (const Batch& b : loader) {
          REQUIRE(b.epoch == e);
          REQUIRE(b.index == static_cast<int64_t>(sizes.size()));
          sizes.push_back(b.x.size(0));
          REQUIRE(b.x.shape() == Shape{b.x.size(0), 1, 4, 4});
          REQUIRE(b.y.shape() == Shape{b.x.size(0)});
          for (size_t k = 0; k < b.indices.size(); ++k) {
            const int64_t i = b.indices[k];
            seen.push_back(i);
            REQUIRE(b.x.data()[k * 16] == static_cast<float>(i * 1000 + 1));
            REQUIRE(b.y.data()[k] == static_cast<float>(i % 3));
          }
        }
        REQUIRE(sizes == std::vector<int64_t>{4, 4, 2});
        std::sort(seen.begin(), seen.end());
        for (int64_t i = 0; i < 10; ++i) REQUIRE(seen[static_cast<size_t>(i)] == i);
      }
      REQUIRE(loader.epoch() == 2);
    }
    o.drop_last = true;
    DataLoader dropping(data, o);
    REQUIRE(dropping.num_batches() == 2);
    Batch b;
    int64_t count = 0;
    while (dropping.next(b)) {
      REQUIRE(b.x.size(0) == 4);
      ++count;
    }
    REQUIRE(count == 2);
    REQUIRE(dropping.epoch() == 1);
  }
}

TEST_CASE("DataLoader shuffling is seeded: same seed, same batches; new order each epoch", "[data]") {
  const TensorDataset data = numbered(37);
  LoaderOptions o;
  o.batch_size = 8;
  o.seed = 123;
  const std::vector<Batch> a = run_epochs(data, o, 3);
  const std::vector<Batch> b = run_epochs(data, o, 3);
  require_same(a, b);
  REQUIRE(a.size() == 15);
  REQUIRE(a[0].indices != a[5].indices);  // epoch 1 reshuffles
  std::vector<int64_t> epoch0;
  for (int k = 0; k < 5; ++k) epoch0.insert(epoch0.end(), a[static_cast<size_t>(k)].indices.begin(), a[static_cast<size_t>(k)].indices.end());
  REQUIRE(epoch0 == epoch_order(37, true, 123, 0));
  o.seed = 124;
  REQUIRE(run_epochs(data, o, 1)[0].indices != a[0].indices);
  o.shuffle = false;
  REQUIRE(run_epochs(data, o, 1)[1].indices == std::vector<int64_t>{8, 9, 10, 11, 12, 13, 14, 15});
}

TEST_CASE("normalisation: (x - mean[c]) / std[c]", "[data]") {
  const TensorDataset data = numbered(2, 2, 1, 2);  // sample i: {i*1000+1, +2 | +3, +4}
  LoaderOptions o;
  o.batch_size = 2;
  o.shuffle = false;
  o.normalize = {{1.f, 3.f}, {2.f, 0.5f}};
  DataLoader loader(data, o);
  Batch b;
  REQUIRE(loader.next(b));
  test::require_close(b.x, {0.f, 0.5f, 0.f, 2.f, 1000.f / 2.f, 1001.f / 2.f, 2000.f, 2002.f});
  // One value applies to every channel; normalize_ works on its own.
  Tensor x = Tensor::from_vector({1.f, 2.f, 3.f, 4.f}, {1, 2, 2});
  normalize_(x, {{1.f}, {0.5f}});
  test::require_close(x, {0.f, 2.f, 4.f, 6.f});
  MAAS_REQUIRE_THROWS_WITH(normalize_(x, {{1.f, 2.f, 3.f}, {1.f}}), "3 means for samples [2,2] with 2 channels");
  MAAS_REQUIRE_THROWS_WITH(normalize_(x, {{1.f}, {0.f}}), "std[0] = 0 must be finite and > 0");
  MAAS_REQUIRE_THROWS_WITH(normalize_(x, {{1.f}, {}}), "needs both mean and std");
  o.normalize = {{0.5f, 0.5f, 0.5f}, {1.f, 1.f, 1.f}};
  MAAS_REQUIRE_THROWS_WITH(DataLoader(data, o), "DataLoader: 3 means for samples [2,1,2] with 2 channels");
}

TEST_CASE("channel_stats: per-channel mean and std of the pixels in [0, 1]", "[data]") {
  // Two 2-channel 1x2 images. Channel 0 holds 0, 255, 255, 255 (0, 1, 1, 1):
  // mean 0.75, variance 0.75 - 0.75^2 = 0.1875. Channel 1 holds 51, 102, 51,
  // 51 (0.2, 0.4, 0.2, 0.2): mean 0.25, deviations -0.05, 0.15, -0.05, -0.05,
  // variance (3 * 0.0025 + 0.0225) / 4 = 0.0075.
  const ImageDataset data({0, 255, 51, 102, 255, 255, 51, 51}, {0, 1}, {2, 1, 2});
  const Normalize n = channel_stats(data);
  REQUIRE(n.mean.size() == 2);
  REQUIRE(n.std.size() == 2);
  CHECK(n.mean[0] == Approx(0.75f));
  CHECK(n.std[0] == Approx(std::sqrt(0.1875f)));
  CHECK(n.mean[1] == Approx(0.25f));
  CHECK(n.std[1] == Approx(std::sqrt(0.0075f)));
  // Applying it gives zero mean and unit variance per channel.
  Tensor x, y;
  data.get_batch({0, 1}, x, y);
  normalize_(x, n);
  const float* v = x.data();
  CHECK(v[0] + v[1] + v[4] + v[5] == Approx(0.f).margin(1e-5));
  CHECK((v[0] * v[0] + v[1] * v[1] + v[4] * v[4] + v[5] * v[5]) / 4 == Approx(1.f));
  MAAS_REQUIRE_THROWS_WITH(channel_stats(ImageDataset()), "channel_stats: the data set has no samples");
  MAAS_REQUIRE_THROWS_WITH(channel_stats(ImageDataset({7, 7, 7, 7}, {0, 0}, {1, 1, 2})),
                           "channel_stats: channel 0 has the same value in every pixel (std 0)");
}

TEST_CASE("augmentation: flips mirror, crops stay within the padding, both seeded", "[data]") {
  const TensorDataset data = numbered(64, 2, 5, 6);
  Tensor x0, y0;
  std::vector<int64_t> all(64);
  for (int64_t i = 0; i < 64; ++i) all[static_cast<size_t>(i)] = i;
  data.get_batch(all, x0, y0);
  const int64_t c = 2, h = 5, w = 6, row = c * h * w;

  SECTION("horizontal flip: each sample as it was or mirrored, both seen") {
    Tensor x = x0.clone();
    Generator gen(3);
    augment_(x, {0, true}, gen);
    int flipped = 0, kept = 0;
    for (int64_t s = 0; s < 64; ++s) {
      const float* a = x0.data() + s * row;
      const float* b = x.data() + s * row;
      const bool same = std::equal(a, a + row, b);
      bool mirrored = true;
      for (int64_t r = 0; r < c * h; ++r)
        for (int64_t j = 0; j < w; ++j) mirrored = mirrored && b[r * w + j] == a[r * w + (w - 1 - j)];
      REQUIRE(same != mirrored);
      (same ? kept : flipped)++;
    }
    REQUIRE(flipped > 10);
    REQUIRE(kept > 10);
  }
  SECTION("random crop: one shift per sample within [-pad, pad], zeros outside") {
    const int64_t pad = 2;
    Tensor x = x0.clone();
    Generator gen(5);
    augment_(x, {pad, false}, gen);
    std::set<std::pair<int64_t, int64_t>> offsets;
    for (int64_t s = 0; s < 64; ++s) {
      const float* b = x.data() + s * row;
      // Find the shift from any kept pixel: value s*1000 + k + 1 came from element k.
      int64_t oy = 99, ox = 99;
      for (int64_t k = 0; k < h * w && oy == 99; ++k)
        if (b[k] != 0.f) {
          const int64_t src = static_cast<int64_t>(b[k]) - s * 1000 - 1;
          oy = src / w - k / w;
          ox = src % w - k % w;
        }
      REQUIRE(std::abs(oy) <= pad);
      REQUIRE(std::abs(ox) <= pad);
      offsets.insert({oy, ox});
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < h; ++i)
          for (int64_t j = 0; j < w; ++j) {
            const int64_t si = i + oy, sj = j + ox;
            const float want = (si < 0 || si >= h || sj < 0 || sj >= w)
                                   ? 0.f
                                   : static_cast<float>(s * 1000 + (ch * h + si) * w + sj + 1);
            REQUIRE(b[(ch * h + i) * w + j] == want);
          }
    }
    REQUIRE(offsets.size() > 10);  // of the 25 possible shifts
  }
  SECTION("same generator seed, same augmentation; the loader's is seeded by (seed, epoch, batch)") {
    Tensor a = x0.clone(), b = x0.clone();
    Generator g1(11), g2(11);
    augment_(a, {4, true}, g1);
    augment_(b, {4, true}, g2);
    REQUIRE(a.to_vector() == b.to_vector());
    LoaderOptions o;
    o.batch_size = 16;
    o.seed = 9;
    o.augment = {4, true};
    const std::vector<Batch> r1 = run_epochs(data, o, 2);
    require_same(r1, run_epochs(data, o, 2));
    Tensor manual = r1[5].x.clone();  // epoch 1, batch 1
    Tensor raw, ry;
    data.get_batch(r1[5].indices, raw, ry);
    Generator g(augment_seed(9, 1, 1));
    augment_(raw, o.augment, g);
    REQUIRE(raw.to_vector() == manual.to_vector());
    o.seed = 10;
    REQUIRE(run_epochs(data, o, 1)[0].x.to_vector() != r1[0].x.to_vector());
  }
  SECTION("bad augmentation options") {
    LoaderOptions o;
    o.augment = {-1, false};
    MAAS_REQUIRE_THROWS_WITH(DataLoader(data, o), "crop_padding -1 must be >= 0");
    Tensor flat = Tensor::zeros({2, 3});
    Generator g(1);
    MAAS_REQUIRE_THROWS_WITH(augment_(flat, {0, true}, g), "must be [B, C, H, W]");
    const TensorDataset vectors(Tensor::zeros({4, 3}), Tensor::zeros({4}));
    o.augment = {0, true};
    MAAS_REQUIRE_THROWS_WITH(DataLoader(vectors, o), "augmentation needs [C,H,W] image samples, not [3]");
  }
}

TEST_CASE("prefetching gives the same batches in the same order as loading in place", "[data]") {
  const TensorDataset data = numbered(45, 3, 6, 6);
  LoaderOptions o;
  o.batch_size = 7;
  o.seed = 77;
  o.normalize = {{10.f, 20.f, 30.f}, {2.f, 3.f, 4.f}};
  o.augment = {2, true};
  o.prefetch = 0;
  const std::vector<Batch> direct = run_epochs(data, o, 3);
  for (int64_t prefetch : {1, 2, 5, 100}) {
    o.prefetch = prefetch;
    require_same(direct, run_epochs(data, o, 3));
  }
  // A consumer slower than the producer, and one faster, change nothing.
  o.prefetch = 2;
  DataLoader loader(data, o);
  std::vector<Batch> slow;
  for (int e = 0; e < 3; ++e)
    for (const Batch& b : loader) {
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      slow.push_back(b);
    }
  require_same(direct, slow);
}

TEST_CASE("DataLoader resumes exactly from a saved state", "[data]") {
  const TensorDataset data = numbered(30);
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 5;
  o.augment = {1, true};
  DataLoader a(data, o);
  Batch b;
  while (a.next(b)) {
  }
  for (int k = 0; k < 3; ++k) REQUIRE(a.next(b));
  const LoaderState saved = a.state();
  REQUIRE(saved.epoch == 1);
  REQUIRE(saved.batch == 3);
  std::vector<Batch> rest;
  while (a.next(b)) rest.push_back(b);
  for (int64_t prefetch : {0, 3}) {
    o.prefetch = prefetch;
    DataLoader resumed(data, o);
    resumed.set_state(saved);
    std::vector<Batch> again;
    while (resumed.next(b)) again.push_back(b);
    require_same(rest, again);
    REQUIRE(resumed.epoch() == 2);
  }
  // Seeking back on a running loader drops what it prefetched.
  a.set_state({0, 0});
  DataLoader fresh(data, o);
  Batch x, y;
  REQUIRE(a.next(x));
  REQUIRE(fresh.next(y));
  require_same({x}, {y});
  MAAS_REQUIRE_THROWS_WITH(a.set_state({0, 9}), "batch 9 is not a position of a loader with 8 batches");
}

TEST_CASE("an error while preparing a batch reaches the consumer, in order", "[data]") {
  SlowDataset data(20, 13);
  for (int64_t prefetch : {0, 1, 4}) {
    LoaderOptions o;
    o.batch_size = 5;
    o.shuffle = false;
    o.prefetch = prefetch;
    DataLoader loader(data, o);
    Batch b;
    REQUIRE(loader.next(b));
    REQUIRE(loader.next(b));
    MAAS_REQUIRE_THROWS_WITH(loader.next(b), "SlowDataset: sample 13 is unreadable");
    REQUIRE(loader.state().batch == 2);  // still at the failed batch
    MAAS_REQUIRE_THROWS_WITH(loader.next(b), "sample 13 is unreadable");  // retried, fails again
    loader.set_state({0, 3});
    REQUIRE(loader.next(b));
    REQUIRE(b.indices.front() == 15);
  }
}

TEST_CASE("destroying a DataLoader mid-epoch stops its thread cleanly", "[data]") {
  SlowDataset data(200);
  LoaderOptions o;
  o.batch_size = 4;
  o.prefetch = 3;
  {
    DataLoader idle(data, o);  // never started
  }
  {
    DataLoader loader(data, o);
    Batch b;
    REQUIRE(loader.next(b));  // the thread is now busy preparing more
  }
  const int calls = data.calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(data.calls.load() == calls);  // nothing runs after destruction
  REQUIRE(calls <= 1 + 3 + 1);          // at most the batch taken, a full queue, one in progress
  {
    LoaderOptions small = o;
    small.batch_size = 100;
    DataLoader loader(data, small);
    Batch b;
    while (loader.next(b)) {
    }  // the thread is already preparing epoch 1
  }
}

TEST_CASE("DataLoader checks its options", "[data]") {
  const TensorDataset data = numbered(3);
  LoaderOptions o;
  o.batch_size = 0;
  MAAS_REQUIRE_THROWS_WITH(DataLoader(data, o), "batch_size 0 must be > 0");
  o.batch_size = 4;
  o.prefetch = -1;
  MAAS_REQUIRE_THROWS_WITH(DataLoader(data, o), "prefetch -1 must be >= 0");
  o.prefetch = 1;
  o.drop_last = true;
  MAAS_REQUIRE_THROWS_WITH(DataLoader(data, o), "3 samples give no batch of 4 with drop_last");
}

TEST_CASE("TransformedDataset normalises and augments inside get_batch", "[data]") {
  const TensorDataset data = numbered(8, 2, 3, 3);
  const std::vector<int64_t> idx{3, 1, 6};
  Tensor raw, ry;
  data.get_batch(idx, raw, ry);

  const TransformedDataset norm(data, {{1.f, 2.f}, {10.f, 100.f}});
  REQUIRE(norm.size() == 8);
  REQUIRE(norm.sample_shape() == Shape{2, 3, 3});
  Tensor x, y;
  norm.get_batch(idx, x, y);
  Tensor want = raw.clone();
  normalize_(want, {{1.f, 2.f}, {10.f, 100.f}});
  REQUIRE(x.to_vector() == want.to_vector());
  REQUIRE(y.to_vector() == ry.to_vector());

  const Normalize n{{0.5f}, {2.f}};
  TransformedDataset aug(data, n, {1, true}, 42);
  TransformedDataset twin(data, n, {1, true}, 42);
  std::vector<std::vector<float>> first;
  for (int k = 0; k < 4; ++k) {
    aug.get_batch(idx, x, y);
    twin.get_batch(idx, raw, ry);
    REQUIRE(x.to_vector() == raw.to_vector());  // same seed, same calls: same batches
    first.push_back(x.to_vector());
  }
  REQUIRE(aug.calls() == 4);
  REQUIRE(first[0] != first[1]);  // a new draw each call
  // Call k draws from augment_seed(seed, 0, k), then normalises.
  data.get_batch(idx, raw, ry);
  Generator gen(augment_seed(42, 0, 2));
  augment_(raw, {1, true}, gen);
  normalize_(raw, n);
  REQUIRE(raw.to_vector() == first[2]);
  // set_calls resumes the sequence.
  TransformedDataset resumed(data, n, {1, true}, 42);
  resumed.set_calls(2);
  resumed.get_batch(idx, x, y);
  REQUIRE(x.to_vector() == first[2]);
  const TransformedDataset copy(aug);
  REQUIRE(copy.calls() == 4);

  // A TransformedDataset feeds a DataLoader or anything else that takes a Dataset.
  LoaderOptions o;
  o.batch_size = 3;
  DataLoader loader(norm, o);
  Batch b;
  REQUIRE(loader.next(b));
  REQUIRE(b.x.shape() == Shape{3, 2, 3, 3});

  MAAS_REQUIRE_THROWS_WITH(TransformedDataset(data, {{1.f, 2.f, 3.f}, {1.f}}),
                           "TransformedDataset: 3 means for samples [2,3,3] with 2 channels");
  MAAS_REQUIRE_THROWS_WITH(resumed.set_calls(-1), "must be >= 0");
}
