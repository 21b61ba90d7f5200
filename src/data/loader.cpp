// ImageDataset, read_file_bytes, the transforms, TransformedDataset and the
// prefetching DataLoader.
//
// The prefetch thread runs the same make_batch() the caller would, on the
// same (epoch, batch) positions in the same order, so prefetching cannot
// change a single number; the bounded queue between them holds at most
// `prefetch` batches.
#include "maas/data/loader.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/splitmix.hpp"
#include "maas/error.hpp"

namespace maas::data {

// ---------------------------------------------------------------- ImageDataset

ImageDataset::ImageDataset(std::vector<uint8_t> pixels, std::vector<int64_t> labels, Shape sample_shape,
                           std::vector<std::string> class_names)
    : pixels_(std::move(pixels)),
      labels_(std::move(labels)),
      sample_shape_(std::move(sample_shape)),
      class_names_(std::move(class_names)) {
  MAAS_CHECK(sample_shape_.size() == 3 && sample_shape_[0] > 0 && sample_shape_[1] > 0 && sample_shape_[2] > 0,
             "ImageDataset: sample shape " << to_string(sample_shape_) << " must be [C,H,W] with positive sizes");
  const auto row = static_cast<size_t>(maas::numel(sample_shape_));
  MAAS_CHECK(pixels_.size() == labels_.size() * row,
             "ImageDataset: " << pixels_.size() << " pixel bytes do not hold " << labels_.size() << " samples of "
                              << to_string(sample_shape_) << " (" << labels_.size() * row << " bytes)");
  int64_t max_label = -1;
  for (size_t i = 0; i < labels_.size(); ++i) {
    MAAS_CHECK(labels_[i] >= 0, "ImageDataset: label " << labels_[i] << " of sample " << i << " is negative");
    max_label = std::max(max_label, labels_[i]);
  }
  if (class_names_.empty()) {
    num_classes_ = max_label + 1;
  } else {
    num_classes_ = static_cast<int64_t>(class_names_.size());
    MAAS_CHECK(max_label < num_classes_, "ImageDataset: label " << max_label << " needs more than the "
                                                                << num_classes_ << " class names given");
  }
}

const uint8_t* ImageDataset::sample(int64_t i) const {
  MAAS_CHECK(0 <= i && i < size(), "ImageDataset::sample: index " << i << " is out of range for " << size()
                                                                  << " samples");
  return pixels_.data() + static_cast<size_t>(i) * static_cast<size_t>(maas::numel(sample_shape_));
}

void ImageDataset::get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const {
  static const auto lut = [] {
    std::vector<float> t(256);
    for (int v = 0; v < 256; ++v) t[static_cast<size_t>(v)] = static_cast<float>(v) / 255.f;
    return t;
  }();
  const int64_t n = size();
  const auto b = static_cast<int64_t>(indices.size());
  const int64_t row = maas::numel(sample_shape_);
  for (size_t k = 0; k < indices.size(); ++k)
    MAAS_CHECK(0 <= indices[k] && indices[k] < n, "ImageDataset::get_batch: index " << indices[k]
                                                      << " (batch position " << k << ") is out of range for "
                                                      << n << " samples");
  Shape shape{b};
  shape.insert(shape.end(), sample_shape_.begin(), sample_shape_.end());
  Tensor bx = Tensor::empty(shape);
  Tensor by = Tensor::empty({b});
  float* dx = bx.data();
  float* dy = by.data();
  for (int64_t k = 0; k < b; ++k) {
    const int64_t i = indices[static_cast<size_t>(k)];
    const uint8_t* src = pixels_.data() + i * row;
    float* dst = dx + k * row;
    for (int64_t j = 0; j < row; ++j) dst[j] = lut[src[j]];
    dy[k] = static_cast<float>(labels_[static_cast<size_t>(i)]);
  }
  x = bx;
  y = by;
}

// ---------------------------------------------------------------- files

std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& who, size_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  MAAS_CHECK(fs::exists(st), who << ": " << path << ": no such file");
  MAAS_CHECK(fs::is_regular_file(st), who << ": " << path << ": not a regular file");
  gzFile f = gzopen(path.c_str(), "rb");
  MAAS_CHECK(f != nullptr, who << ": " << path << ": cannot open: " << std::strerror(errno));
  std::vector<uint8_t> out;
  // The buffer grows with the bytes that actually arrive, never past
  // max_bytes: a header that lies or a gzip bomb costs no more memory than
  // the caller allows.
  const uintmax_t on_disk = fs::file_size(path, ec);
  if (!ec) out.reserve(static_cast<size_t>(std::min<uintmax_t>(on_disk, max_bytes)));
  const size_t chunk = size_t{1} << 20;
  while (out.size() < max_bytes) {
    const size_t old = out.size();
    const size_t want = std::min(chunk, max_bytes - old);
    if (old + want > out.capacity()) out.reserve(std::min(max_bytes, std::max(2 * out.capacity(), old + want)));
    out.resize(old + want);
    const int got = gzread(f, out.data() + old, static_cast<unsigned>(want));
    if (got < 0) {
      int errnum = 0;
      const std::string msg = gzerror(f, &errnum);
      gzclose(f);
      MAAS_FAIL(who << ": " << path << ": cannot read: " << msg);
    }
    out.resize(old + static_cast<size_t>(got));
    if (got == 0) break;
  }
  if (out.size() == max_bytes) {  // stopped at the limit: what follows is not read, nor checked
    gzclose(f);
    return out;
  }
  // zlib reports a gzip stream that stops early only here (Z_BUF_ERROR).
  int errnum = 0;
  const std::string msg = gzerror(f, &errnum);
  const int closed = gzclose(f);
  MAAS_CHECK(errnum == Z_OK && closed == Z_OK,
             who << ": " << path << ": corrupt or truncated gzip data: "
                 << (errnum != Z_OK ? msg : std::string(closed == Z_BUF_ERROR ? "unexpected end of file"
                                                                               : "read error")));
  return out;
}

// ---------------------------------------------------------------- transforms

void check_transforms(const Shape& sample_shape, const Normalize& n, const Augment& a, const std::string& who) {
  if (n.enabled()) {
    MAAS_CHECK(!n.mean.empty() && !n.std.empty(),
               who << ": normalisation needs both mean and std (got " << n.mean.size() << " means and "
                   << n.std.size() << " stds)");
    MAAS_CHECK(!sample_shape.empty(), who << ": cannot normalise samples of shape " << to_string(sample_shape)
                                          << ": there is no channel dimension");
    const auto c = static_cast<size_t>(sample_shape[0]);
    MAAS_CHECK(n.mean.size() == 1 || n.mean.size() == c,
               who << ": " << n.mean.size() << " means for samples " << to_string(sample_shape) << " with " << c
                   << " channels; give 1 or " << c);
    MAAS_CHECK(n.std.size() == 1 || n.std.size() == c,
               who << ": " << n.std.size() << " stds for samples " << to_string(sample_shape) << " with " << c
                   << " channels; give 1 or " << c);
    for (size_t k = 0; k < n.mean.size(); ++k)
      MAAS_CHECK(std::isfinite(n.mean[k]), who << ": mean[" << k << "] = " << n.mean[k] << " is not finite");
    for (size_t k = 0; k < n.std.size(); ++k)
      MAAS_CHECK(std::isfinite(n.std[k]) && n.std[k] > 0.f,
                 who << ": std[" << k << "] = " << n.std[k] << " must be finite and > 0");
  }
  MAAS_CHECK(a.crop_padding >= 0, who << ": crop_padding " << a.crop_padding << " must be >= 0");
  if (a.enabled())
    MAAS_CHECK(sample_shape.size() == 3, who << ": augmentation needs [C,H,W] image samples, not "
                                             << to_string(sample_shape));
}

Normalize channel_stats(const ImageDataset& data) {
  MAAS_CHECK(data.size() > 0, "channel_stats: the data set has no samples");
  const Shape& shape = data.sample_shape();
  const int64_t channels = shape[0], plane = shape[1] * shape[2];
  // Exact integer sums of v and v^2 per channel (v <= 255: no overflow below
  // 2^63 / 65025 pixels), then mean and variance of v / 255 in double.
  std::vector<uint64_t> sum(static_cast<size_t>(channels), 0), sum_sq(static_cast<size_t>(channels), 0);
  const uint8_t* p = data.pixels().data();
  for (int64_t i = 0; i < data.size(); ++i)
    for (int64_t c = 0; c < channels; ++c, p += plane) {
      uint64_t s = 0, s2 = 0;
      for (int64_t k = 0; k < plane; ++k) {
        s += p[k];
        s2 += static_cast<uint64_t>(p[k]) * p[k];
      }
      sum[static_cast<size_t>(c)] += s;
      sum_sq[static_cast<size_t>(c)] += s2;
    }
  const double count = static_cast<double>(data.size()) * static_cast<double>(plane);
  Normalize n;
  for (size_t c = 0; c < sum.size(); ++c) {
    const double mean = static_cast<double>(sum[c]) / count;
    const double var = std::max(0.0, static_cast<double>(sum_sq[c]) / count - mean * mean);
    MAAS_CHECK(var > 0, "channel_stats: channel " << c << " has the same value in every pixel (std 0)");
    n.mean.push_back(static_cast<float>(mean / 255.0));
    n.std.push_back(static_cast<float>(std::sqrt(var) / 255.0));
  }
  return n;
}

void normalize_(Tensor& x, const Normalize& n) {
  if (!n.enabled()) return;
  MAAS_CHECK(x.dim() >= 2, "normalize_: x " << to_string(x.shape()) << " must be [B, C, ...]");
  check_transforms(Shape(x.shape().begin() + 1, x.shape().end()), n, Augment{}, "normalize_");
  const int64_t b = x.size(0), c = x.size(1);
  const int64_t inner = b * c > 0 ? x.numel() / (b * c) : 0;
  float* d = x.data();
  for (int64_t s = 0; s < b; ++s)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float m = n.mean[n.mean.size() == 1 ? 0 : static_cast<size_t>(ch)];
      const float inv = 1.f / n.std[n.std.size() == 1 ? 0 : static_cast<size_t>(ch)];
      float* p = d + (s * c + ch) * inner;
      for (int64_t i = 0; i < inner; ++i) p[i] = (p[i] - m) * inv;
    }
}

void augment_(Tensor& x, const Augment& a, Generator& gen) {
  if (!a.enabled()) return;
  MAAS_CHECK(x.dim() == 4, "augment_: x " << to_string(x.shape()) << " must be [B, C, H, W]");
  MAAS_CHECK(a.crop_padding >= 0, "augment_: crop_padding " << a.crop_padding << " must be >= 0");
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t p = a.crop_padding;
  std::vector<float> tmp(static_cast<size_t>(c * h * w));
  float* d = x.data();
  for (int64_t s = 0; s < b; ++s) {
    float* img = d + s * c * h * w;
    if (p > 0) {
      const auto span = static_cast<uint64_t>(2 * p + 1);
      // Output (i, j) reads padded (i + dy, j + dx), i.e. input (i + dy - p, j + dx - p).
      const int64_t oy = static_cast<int64_t>(gen.engine()() % span) - p;
      const int64_t ox = static_cast<int64_t>(gen.engine()() % span) - p;
      std::fill(tmp.begin(), tmp.end(), 0.f);
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < h; ++i) {
          const int64_t si = i + oy;
          if (si < 0 || si >= h) continue;
          const int64_t j0 = std::max<int64_t>(0, -ox), j1 = std::min<int64_t>(w, w - ox);
          if (j0 >= j1) continue;
          std::memcpy(&tmp[static_cast<size_t>((ch * h + i) * w + j0)], img + (ch * h + si) * w + j0 + ox,
                      sizeof(float) * static_cast<size_t>(j1 - j0));
        }
      std::copy(tmp.begin(), tmp.end(), img);
    }
    if (a.horizontal_flip && (gen.engine()() >> 63) != 0) {
      for (int64_t r = 0; r < c * h; ++r) std::reverse(img + r * w, img + (r + 1) * w);
    }
  }
}

using detail::splitmix64;

uint64_t shuffle_seed(uint64_t seed, int64_t epoch) {
  return splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(epoch));
}

uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t batch) {
  // A different stream from the shuffle's: the constant separates them.
  return splitmix64(shuffle_seed(seed ^ 0xA076F1A5D3C2B4E9ULL, epoch) ^ static_cast<uint64_t>(batch));
}

std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  if (shuffle) {
    Generator gen(shuffle_seed(seed, epoch));
    for (size_t i = v.size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(gen.engine()() % static_cast<uint64_t>(i));
      std::swap(v[i - 1], v[j]);
    }
  }
  return v;
}

// ---------------------------------------------------------------- TransformedDataset

TransformedDataset::TransformedDataset(const Dataset& base, Normalize normalize, Augment augment, uint64_t seed)
    : base_(&base), norm_(std::move(normalize)), aug_(augment), seed_(seed) {
  check_transforms(base.sample_shape(), norm_, aug_, "TransformedDataset");
}

TransformedDataset::TransformedDataset(const TransformedDataset& other)
    : Dataset(other), base_(other.base_), norm_(other.norm_), aug_(other.aug_), seed_(other.seed_),
      calls_(other.calls_.load()) {}

void TransformedDataset::set_calls(int64_t calls) {
  MAAS_CHECK(calls >= 0, "TransformedDataset::set_calls: " << calls << " must be >= 0");
  calls_.store(calls);
}

void TransformedDataset::get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const {
  const int64_t call = calls_.fetch_add(1);
  base_->get_batch(indices, x, y);
  if (aug_.enabled()) {
    Generator gen(augment_seed(seed_, 0, call));
    augment_(x, aug_, gen);
  }
  normalize_(x, norm_);
}

// ---------------------------------------------------------------- DataLoader

struct DataLoader::Worker {
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  std::mutex mutex;
  std::condition_variable cv;  // both sides wait on it
  std::deque<Slot> queue;
  bool stop = false;
  std::thread thread;

  // Produces batches from `from` on, epoch after epoch, until stopped or a
  // batch fails (the failure is queued and the thread waits to be stopped).
  void run(const DataLoader* loader, LoaderState from, int64_t capacity) {
    int64_t epoch = from.epoch, b = from.batch, order_epoch = -1;
    std::vector<int64_t> order;
    for (;;) {
      if (b == loader->num_batches_) {
        ++epoch;
        b = 0;
      }
      {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return stop || static_cast<int64_t>(queue.size()) < capacity; });
        if (stop) return;
      }
      Slot slot;
      try {
        if (order_epoch != epoch) {
          order = epoch_order(loader->data_->size(), loader->options_.shuffle, loader->options_.seed, epoch);
          order_epoch = epoch;
        }
        slot.batch = loader->make_batch(epoch, b, order);
      } catch (...) {
        slot.error = std::current_exception();
      }
      const bool failed = slot.error != nullptr;
      {
        std::lock_guard<std::mutex> lock(mutex);
        queue.push_back(std::move(slot));
      }
      cv.notify_all();
      if (failed) {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return stop; });
        return;
      }
      ++b;
    }
  }
};

DataLoader::DataLoader(const Dataset& data, LoaderOptions options) : data_(&data), options_(std::move(options)) {
  MAAS_CHECK(options_.batch_size > 0, "DataLoader: batch_size " << options_.batch_size << " must be > 0");
  MAAS_CHECK(options_.prefetch >= 0, "DataLoader: prefetch " << options_.prefetch << " must be >= 0");
  check_transforms(data.sample_shape(), options_.normalize, options_.augment, "DataLoader");
  const int64_t n = data.size();
  num_batches_ = options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
  MAAS_CHECK(num_batches_ > 0, "DataLoader: " << n << " samples give no batch of " << options_.batch_size
                                              << (options_.drop_last ? " with drop_last" : ""));
}

DataLoader::~DataLoader() { stop_worker(); }

void DataLoader::start_worker() {
  worker_ = std::make_unique<Worker>();
  Worker* w = worker_.get();
  const LoaderState from = state_;
  const int64_t capacity = options_.prefetch;
  w->thread = std::thread([this, w, from, capacity] { w->run(this, from, capacity); });
}

void DataLoader::stop_worker() {
  if (!worker_) return;
  {
    std::lock_guard<std::mutex> lock(worker_->mutex);
    worker_->stop = true;
  }
  worker_->cv.notify_all();
  if (worker_->thread.joinable()) worker_->thread.join();
  worker_.reset();
}

Batch DataLoader::make_batch(int64_t epoch, int64_t batch, const std::vector<int64_t>& order) const {
  MAAS_CHECK(0 <= batch && batch < num_batches_, "DataLoader::make_batch: batch " << batch << " is out of range for "
                                                                                  << num_batches_ << " batches");
  const int64_t n = static_cast<int64_t>(order.size());
  const int64_t begin = batch * options_.batch_size;
  const int64_t end = std::min(n, begin + options_.batch_size);
  MAAS_CHECK(begin < end, "DataLoader::make_batch: batch " << batch << " is empty for an order of " << n
                                                           << " samples");
  Batch out;
  out.epoch = epoch;
  out.index = batch;
  out.indices.assign(order.begin() + begin, order.begin() + end);
  data_->get_batch(out.indices, out.x, out.y);
  if (options_.augment.enabled()) {
    Generator gen(augment_seed(options_.seed, epoch, batch));
    augment_(out.x, options_.augment, gen);
  }
  normalize_(out.x, options_.normalize);
  return out;
}

bool DataLoader::next(Batch& batch) {
  if (state_.batch >= num_batches_) {
    // The prefetch thread, if running, is already past this boundary.
    state_ = {state_.epoch + 1, 0};
    return false;
  }
  if (options_.prefetch == 0) {
    if (order_epoch_ != state_.epoch) {
      order_ = epoch_order(data_->size(), options_.shuffle, options_.seed, state_.epoch);
      order_epoch_ = state_.epoch;
    }
    batch = make_batch(state_.epoch, state_.batch, order_);
    ++state_.batch;
    return true;
  }
  if (!worker_) start_worker();
  Worker::Slot slot;
  {
    std::unique_lock<std::mutex> lock(worker_->mutex);
    worker_->cv.wait(lock, [&] { return !worker_->queue.empty(); });
    slot = std::move(worker_->queue.front());
    worker_->queue.pop_front();
  }
  worker_->cv.notify_all();
  if (slot.error) {
    // The position stays at the failed batch: a later next() retries it.
    stop_worker();
    std::rethrow_exception(slot.error);
  }
  MAAS_CHECK(slot.batch.epoch == state_.epoch && slot.batch.index == state_.batch,
             "DataLoader::next: internal error: the prefetch thread produced batch "
                 << slot.batch.index << " of epoch " << slot.batch.epoch << " for batch " << state_.batch
                 << " of epoch " << state_.epoch);
  batch = std::move(slot.batch);
  ++state_.batch;
  return true;
}

void DataLoader::set_state(const LoaderState& state) {
  MAAS_CHECK(state.epoch >= 0 && state.batch >= 0 && state.batch <= num_batches_,
             "DataLoader::set_state: epoch " << state.epoch << ", batch " << state.batch
                                             << " is not a position of a loader with " << num_batches_
                                             << " batches per epoch");
  stop_worker();
  state_ = state;
}

DataLoader::Iterator::Iterator(DataLoader* loader) : loader_(loader) {
  if (!loader_->next(batch_)) loader_ = nullptr;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (loader_ && !loader_->next(batch_)) loader_ = nullptr;
  return *this;
}

}  // namespace maas::data
