// Batcher: one per served model version; turns requests into batches. It
// knows tensors and rows, no protocol and no HTTP.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "maas/tensor.hpp"
#include "serve/metrics.hpp"

namespace maas::serve {

struct BatchOptions {
  int64_t max_batch = 64;
  int64_t timeout_us = 0;
  int64_t max_queue = 1024;
};

// Thrown by Batcher::run when max_queue requests are already waiting.
struct QueueFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Batcher {
 public:
  // `model` maps a batch [B, ...] to outputs [B, ...]; it runs one batch at
  // a time, on the batcher's thread or on a caller's (see run()). `name`
  // names the model in metrics and errors.
  using Model = std::function<Tensor(const Tensor&)>;
  Batcher(Model model, BatchOptions options, Metrics& metrics, const std::string& name);
  // Runs what is queued, then stops.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Returns this request's n rows of the model's output for `rows` ([n, ...],
  // n >= 1). When no batch is running, nothing is queued and timeout_us is 0,
  // the model runs at once on the calling thread; otherwise the request is
  // queued for the batcher's thread and waits. Throws QueueFull, or what the
  // model threw.
  Tensor run(Tensor rows);

 private:
  struct Job {
    Tensor rows;
    std::promise<Tensor> result;
  };
  void loop();
  // Runs the model on x (`total` rows) and checks its output; records the
  // batch's size and duration.
  Tensor execute(const Tensor& x, int64_t total);

  Model model_;
  BatchOptions options_;
  Metrics& metrics_;
  std::string name_, label_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stop_ = false;
  bool busy_ = false;  // a batch is running (on the batcher's thread or a caller's)
  std::thread thread_;
};

}  // namespace maas::serve
