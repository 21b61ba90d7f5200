// maas/data/loader.hpp: in-memory image data sets, transforms, and the
// prefetching DataLoader.
//
// Example (CIFAR-10 with the usual augmentation):
//   maas::data::ImageDataset train = maas::data::load_cifar10("data/cifar10", maas::data::Part::Train);
//   maas::data::LoaderOptions options;
//   options.batch_size = 128;
//   options.seed = 42;
//   options.normalize = {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
//   options.augment = {4, true};                  // pad 4 then crop 32x32; random horizontal flip
//   maas::data::DataLoader loader(train, options);
//   for (int64_t epoch = 0; epoch < 10; ++epoch)
//     for (const maas::data::Batch& batch : loader) // one epoch: batch.x [B,3,32,32], batch.y [B]
//       step(batch.x, batch.y);
//
// Determinism: every batch is a pure function of (seed, epoch, batch index):
// the order of epoch e is a Fisher-Yates shuffle drawn from a Generator seeded
// with shuffle_seed(seed, e) (the same order maas::Trainer uses for that
// seed), and the augmentation of batch b of epoch e draws from a Generator
// seeded with augment_seed(seed, e, b). So prefetching on a thread changes
// nothing, and a LoaderState {epoch, batch} is all a checkpoint needs to
// resume exactly.
//
// Order of the transforms: get_batch gives pixels in [0, 1]; augmentation
// runs on them (the padding of a random crop is 0, a black pixel, as
// torchvision's RandomCrop(padding=4) before Normalize); normalisation last.
//
// What this file is not: no samplers, no multi-process workers, no
// colour jitter or other augmentations; file formats live in mnist.hpp,
// cifar10.hpp and image_folder.hpp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "maas/data/dataset.hpp"
#include "maas/tensor.hpp"

namespace maas::data {

// Which half of a data set with a fixed train/test division to load.
enum class Part { Train, Test };

// Images kept as uint8 in memory, [N, C, H, W] row-major, with integer class
// labels; get_batch converts only the requested samples: x = pixel / 255 in
// [0, 1] as [B, C, H, W], y = the label as a float, [B]. The file loaders
// (load_mnist, load_cifar10, load_image_folder) return one.
class ImageDataset : public Dataset {
 public:
  ImageDataset() = default;  // no samples
  // requires: sample_shape is [C, H, W] with every dimension > 0,
  // pixels.size() == labels.size() * C * H * W, labels >= 0, and, when
  // class_names is given, every label < class_names.size().
  // ensures: num_classes() is class_names.size() when given, else the
  // largest label + 1.
  ImageDataset(std::vector<uint8_t> pixels, std::vector<int64_t> labels, Shape sample_shape,
               std::vector<std::string> class_names = {});

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Shape sample_shape() const override { return sample_shape_; }
  void get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const override;

  int64_t num_classes() const { return num_classes_; }
  // Names of the classes by label (image folders: the sub-folder names;
  // CIFAR-10: "airplane" ...); empty when the format has none (IDX).
  const std::vector<std::string>& class_names() const { return class_names_; }
  const std::vector<uint8_t>& pixels() const { return pixels_; }
  const std::vector<int64_t>& labels() const { return labels_; }
  // The C*H*W bytes of sample i.
  const uint8_t* sample(int64_t i) const;

 private:
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  Shape sample_shape_;
  int64_t num_classes_ = 0;
  std::vector<std::string> class_names_;
};

// The content of a file, or its first max_bytes bytes when it holds more;
// gzip-compressed files are decompressed (zlib reads other files as they
// are). Reading stops at max_bytes, and memory grows only with the bytes
// read, so neither a gzip bomb nor a lying header costs more than max_bytes:
// a caller that accepts N bytes passes N + 1 and refuses a result of N + 1.
// `who` starts the error messages, which name the file: missing, not a
// regular file, unreadable, corrupt gzip (the gzip checks end where reading
// stops).
std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& who = "read_file_bytes",
                                     size_t max_bytes = SIZE_MAX);

// Per-channel normalisation: x[:, c] = (x[:, c] - mean[c]) / std[c].
// Empty vectors switch it off; one value applies to every channel.
struct Normalize {
  std::vector<float> mean;
  std::vector<float> std;
  bool enabled() const { return !mean.empty() || !std.empty(); }
};

// Random augmentation of [C, H, W] images, per sample.
struct Augment {
  // > 0: pad every side with this many zeros, then crop a random window of
  // the original size (offsets uniform in [0, 2 * crop_padding] per axis).
  int64_t crop_padding = 0;
  // Mirror left-right with probability 1/2.
  bool horizontal_flip = false;
  bool enabled() const { return crop_padding > 0 || horizontal_flip; }
};

// The per-channel mean and standard deviation (population, over every pixel
// of every sample) of `data`'s images scaled to [0, 1], as get_batch gives
// them: the Normalize that makes the data set zero-mean, unit-variance per
// channel. Compute it on the training data and apply it to the test data too.
// Throws maas::Error when `data` is empty or a channel is constant (std 0).
Normalize channel_stats(const ImageDataset& data);

// Applies `n` in place to x [B, C, ...]. Throws maas::Error when the sizes
// do not match C or a std is not > 0.
void normalize_(Tensor& x, const Normalize& n);
// Applies `a` in place to x [B, C, H, W], drawing for each sample in turn:
// the crop offsets (dy then dx, when cropping) then the flip (when flipping).
void augment_(Tensor& x, const Augment& a, Generator& gen);
// Throws maas::Error, starting with `who`, unless `n` and `a` suit samples of
// `sample_shape` (normalisation: the channel count; augmentation: [C, H, W]).
void check_transforms(const Shape& sample_shape, const Normalize& n, const Augment& a, const std::string& who);

// SplitMix64 mixes of the seed: the shuffle of epoch e (the same formula as
// Trainer::shuffle_seed) and the augmentation of batch b of epoch e.
uint64_t shuffle_seed(uint64_t seed, int64_t epoch);
uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t batch);
// The sample order of epoch `epoch`: 0..n-1, shuffled when `shuffle`
// (Fisher-Yates drawing the generator's raw 64-bit values).
std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch);

// Another data set with normalisation and augmentation applied in get_batch,
// for code that batches a Dataset itself (maas::Trainer). Each get_batch call
// draws its augmentation from a Generator seeded with augment_seed(seed, 0, k)
// for the k-th call (counting from 0), so a run that makes the same calls in
// the same order gets the same batches; set_calls() resumes the count. Wrap
// validation data without augmentation. Holds a reference: `base` must
// outlive the wrapper. get_batch may run on several threads at once.
class TransformedDataset : public Dataset {
 public:
  // requires: the transforms suit base.sample_shape() (see check_transforms).
  TransformedDataset(const Dataset& base, Normalize normalize, Augment augment = {}, uint64_t seed = 0);
  TransformedDataset(const TransformedDataset& other);

  int64_t size() const override { return base_->size(); }
  Shape sample_shape() const override { return base_->sample_shape(); }
  void get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const override;

  const Dataset& base() const { return *base_; }
  // The number of get_batch calls made so far (the state to checkpoint).
  int64_t calls() const { return calls_.load(); }
  void set_calls(int64_t calls);

 private:
  const Dataset* base_;
  Normalize norm_;
  Augment aug_;
  uint64_t seed_;
  mutable std::atomic<int64_t> calls_{0};
};

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;     // a new order every epoch
  bool drop_last = false;  // drop a last batch smaller than batch_size
  uint64_t seed = 0;       // seeds the shuffles and the augmentation
  Normalize normalize;
  Augment augment;         // leave off for evaluation data
  // Batches prepared ahead on a background thread; 0 loads each batch in
  // next() on the calling thread.
  int64_t prefetch = 2;
};

struct Batch {
  Tensor x;                      // [B, ...sample_shape]
  Tensor y;                      // [B] labels (or the data set's targets)
  std::vector<int64_t> indices;  // the samples, in order
  int64_t epoch = 0;
  int64_t index = 0;             // the batch's position in its epoch
};

// Where a DataLoader is: the next batch it yields is batch `batch` of epoch
// `epoch`. Saving and restoring it resumes exactly.
struct LoaderState {
  int64_t epoch = 0;
  int64_t batch = 0;
};

// Iterates a Dataset in batches, epoch after epoch. Holds a reference: `data`
// must outlive the loader, and its get_batch must be safe to call from the
// loader's thread. Destroying the loader at any point stops its thread;
// an exception thrown while a batch is prepared reaches the caller of next().
class DataLoader {
 public:
  // requires: batch_size > 0, prefetch >= 0, a data set that gives at least
  // one batch, and transforms that suit its samples.
  DataLoader(const Dataset& data, LoaderOptions options = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Batches per epoch.
  int64_t num_batches() const { return num_batches_; }
  int64_t epoch() const { return state_.epoch; }
  const LoaderOptions& options() const { return options_; }
  const Dataset& dataset() const { return *data_; }

  // The next batch of the current epoch into `batch`, true; or false when the
  // epoch is over, and the next call starts the next epoch.
  bool next(Batch& batch);

  LoaderState state() const { return state_; }
  // Positions the loader (dropping prefetched batches); batch may equal
  // num_batches() (the epoch's end).
  void set_state(const LoaderState& state);

  // Range-for over the rest of the current epoch.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;
    Iterator() = default;
    explicit Iterator(DataLoader* loader);
    const Batch& operator*() const { return batch_; }
    const Batch* operator->() const { return &batch_; }
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return loader_ == other.loader_; }
    bool operator!=(const Iterator& other) const { return loader_ != other.loader_; }

   private:
    DataLoader* loader_ = nullptr;  // nullptr at the end
    Batch batch_;
  };
  Iterator begin() { return Iterator(this); }
  Iterator end() { return Iterator(); }

  // Builds batch `batch` of epoch `epoch` on the calling thread (what the
  // prefetch thread runs). `order` is epoch_order() of that epoch.
  Batch make_batch(int64_t epoch, int64_t batch, const std::vector<int64_t>& order) const;

 private:
  struct Worker;
  void stop_worker();
  void start_worker();

  const Dataset* data_;
  LoaderOptions options_;
  int64_t num_batches_ = 0;
  LoaderState state_;
  std::vector<int64_t> order_;  // of order_epoch_
  int64_t order_epoch_ = -1;
  std::unique_ptr<Worker> worker_;
};

}  // namespace maas::data
