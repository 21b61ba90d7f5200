// How a request becomes a batch.
//
// Each served model version has one Batcher, and one batch runs at a time.
// A request (already checked and in the model's layout, [n, ...]) that
// finds no batch running and nobody waiting (and no batching delay asked
// for) runs the model itself, on its own thread: alone, a request pays no
// hand-over to another thread and back (two wake-ups, about 0.1 ms of a
// 0.35 ms answer on a 2-core machine). A connection thread that runs a
// batch becomes an OpenMP master with a team of its own; teams wait
// passively (maas-serve sets OMP_WAIT_POLICY), so idle ones cost no CPU,
// and only one batch runs at a time. Otherwise it is queued with a
// promise for its rows and waits, and the batcher's thread:
//   1. sleeps until the queue is not empty and no batch is running;
//   2. takes the queued requests in arrival order while their rows fit in
//      max_batch (a first request larger than max_batch goes alone);
//   3. if the batch is not full and timeout_us > 0, waits up to timeout_us
//      (counted from step 2) for more requests that fit;
//   4. copies the requests' rows into one [B, ...] tensor, runs the model
//      once, and hands request i rows [offset_i, offset_i + n_i) of the
//      output (an error reaches every request of the batch).
// Requests arriving while a batch runs queue up and make the next batch, so
// under load batches grow with no added wait, and alone a request waits for
// nothing. At most max_queue requests wait: more are refused (QueueFull, 503).
#include "serve/batcher.hpp"

#include <cstring>
#include <vector>

#include "maas/autograd.hpp"
#include "maas/error.hpp"

namespace maas::serve {

Batcher::Batcher(Model model, BatchOptions options, Metrics& metrics, const std::string& name)
    : model_(std::move(model)), options_(options), metrics_(metrics), name_(name), label_(labels({{"model", name}})) {
  thread_ = std::thread([this] { loop(); });
}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Tensor Batcher::run(Tensor rows) {
  MAAS_CHECK(rows.defined() && rows.dim() >= 1 && rows.size(0) >= 1, "batcher: a request needs at least one row");
  std::future<Tensor> result;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (stop_) throw QueueFull("the model is being unloaded");
    if (!busy_ && queue_.empty() && options_.timeout_us == 0) {
      busy_ = true;
      lock.unlock();
      // Whatever queues meanwhile is the batcher thread's once busy_ clears.
      struct Release {
        Batcher& b;
        // Notifies under the lock: once it is released, a stopping
        // batcher may return from its loop and be destroyed.
        ~Release() {
          std::lock_guard<std::mutex> relock(b.mutex_);
          b.busy_ = false;
          b.cv_.notify_all();
        }
      } release{*this};
      NoGradGuard no_grad;
      const int64_t n = rows.size(0);
      return execute(rows, n);
    }
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue)
      throw QueueFull("the queue of model '" + name_ + "'" + " is full (" + std::to_string(options_.max_queue) +
                      " requests waiting); retry later");
    queue_.push_back(Job{std::move(rows), {}});
    result = queue_.back().result.get_future();
    metrics_.set("maas_queue_depth", label_, static_cast<double>(queue_.size()));
  }
  cv_.notify_one();
  return result.get();
}

void Batcher::loop() {
  NoGradGuard no_grad;
  std::vector<Job> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return (stop_ || !queue_.empty()) && !busy_; });
      if (queue_.empty()) return;  // stopping, nothing left
      busy_ = true;
      int64_t rows = 0;
      auto take = [&] {
        while (!queue_.empty()) {
          const int64_t n = queue_.front().rows.size(0);
          if (!batch.empty() && rows + n > options_.max_batch) return;
          rows += n;
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
          if (rows >= options_.max_batch) return;
        }
      };
      take();
      if (options_.timeout_us > 0 && rows < options_.max_batch && !stop_) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(options_.timeout_us);
        while (rows < options_.max_batch && !stop_) {
          if (!cv_.wait_until(lock, deadline, [&] { return stop_ || !queue_.empty(); })) break;
          const size_t before = batch.size();
          take();
          if (batch.size() == before) break;  // the next request does not fit
        }
      }
      metrics_.set("maas_queue_depth", label_, static_cast<double>(queue_.size()));
    }

    // One input tensor for the whole batch.
    Tensor x;
    int64_t total = 0;
    for (const Job& j : batch) total += j.rows.size(0);
    if (batch.size() == 1) {
      x = batch[0].rows;
    } else {
      Shape shape = batch[0].rows.shape();
      shape[0] = total;
      x = Tensor::empty(shape);
      float* dst = x.data();
      for (const Job& j : batch) {
        const int64_t n = j.rows.numel();
        std::memcpy(dst, j.rows.data(), static_cast<size_t>(n) * sizeof(float));
        dst += n;
      }
    }
    try {
      const Tensor y = execute(x, total);
      int64_t offset = 0;
      for (Job& j : batch) {
        const int64_t n = j.rows.size(0);
        j.result.set_value(batch.size() == 1 ? y : y.slice_rows(offset, offset + n));
        offset += n;
      }
    } catch (...) {
      for (Job& j : batch) j.result.set_exception(std::current_exception());
    }
    std::lock_guard<std::mutex> lock(mutex_);
    busy_ = false;
  }
}

Tensor Batcher::execute(const Tensor& x, int64_t total) {
  metrics_.observe("maas_batch_size", label_, static_cast<double>(total));
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor y = model_(x);
  MAAS_CHECK(y.defined() && y.dim() >= 1 && y.size(0) == total,
             "the model returned " << to_string(y.defined() ? y.shape() : Shape{}) << " for " << total << " rows");
  metrics_.observe("maas_batch_duration_seconds", label_,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return y;
}

}  // namespace maas::serve
