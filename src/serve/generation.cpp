// GenerationEngine: the decoding thread's loop (admit, step, release), and
// the hand-over of text to the requests' threads.
#include "serve/generation.hpp"

#include <algorithm>
#include <exception>

#include "maas/error.hpp"
#include "serve/batcher.hpp"

namespace maas::serve {

bool Completion::next(std::string& text) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return !released_.empty() || done_; });
  if (released_.empty()) return false;
  text += released_.front();
  released_.pop_front();
  return true;
}

std::string Completion::finish_reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return finish_;
}

std::string Completion::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

int64_t Completion::completion_tokens() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return generated_;
}

void Completion::release(const std::string& text, int64_t generated, const std::string& finish,
                         const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!text.empty()) released_.push_back(text);
    generated_ = generated;
    if (!finish.empty()) {
      done_ = true;
      finish_ = finish;
      error_ = error;
    }
  }
  if (!text.empty() || !finish.empty()) cv_.notify_all();
}

// A request holding cache slot `slot`.
struct GenerationEngine::Sequence {
  std::shared_ptr<Completion> completion;
  int64_t slot = 0;
  std::vector<int32_t> input;    // the next step's tokens: the prompt, then the last token drawn
  std::vector<int32_t> history;  // the prompt and the tokens drawn: a full cache starts again from its end
  Generator gen;
  std::string text;  // generated so far
  size_t sent = 0;   // bytes of `text` released
  int64_t generated = 0;
  Clock::time_point arrived, last;
};

GenerationEngine::GenerationEngine(std::shared_ptr<nn::Network> model, data::CharTokenizer tokenizer,
                                   GenerationOptions options, Metrics& metrics, const std::string& name)
    : model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      decoder_(*model_),
      cache_(decoder_, options.max_sequences,
             options.max_context > 0 ? std::min(options.max_context, decoder_.context()) : 0),
      options_(options),
      metrics_(metrics),
      name_(name),
      labels_(labels({{"model", name}})) {
  MAAS_CHECK(tokenizer_.vocab_size() == decoder_.vocab(),
             "model '" << name << "': its tokenizer has " << tokenizer_.vocab_size()
                       << " characters but the model scores " << decoder_.vocab() << " tokens");
  (void)decoder_.step(cache_, {0}, {{0}});  // a file that loads but cannot run is refused here
  cache_.clear(0);
  for (int64_t s = cache_.sequences() - 1; s >= 0; --s) free_.push_back(s);
  end_step(0, 0);
  thread_ = std::thread([this] { loop(); });
}

GenerationEngine::~GenerationEngine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<Completion> GenerationEngine::submit(GenerationRequest request) {
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  MAAS_CHECK(prompt >= 1 && prompt <= context(), "model '" << name_ << "': a prompt of " << prompt
                                                              << " tokens does not fit its context of " << context()
                                                              << " tokens");
  MAAS_CHECK(request.max_tokens >= 1 && request.max_tokens <= context(),
             "model '" << name_ << "': max_tokens " << request.max_tokens << " is outside [1, " << context()
                       << "] (its context)");
  for (const std::string& s : request.stop) MAAS_CHECK(!s.empty(), "a stop string is empty");
  auto completion = std::make_shared<Completion>(std::move(request));
  std::lock_guard<std::mutex> lock(mutex_);
  if (stop_) throw QueueFull("model '" + name_ + "' is being unloaded");
  if (running_ + static_cast<int64_t>(queue_.size()) >= options_.max_sequences + options_.max_queue)
    throw QueueFull("model '" + name_ + "' is decoding " + std::to_string(running_) + " sequences (--max-sequences) and " +
                    std::to_string(queue_.size()) + " requests wait (--max-queue): retry later");
  queue_.push_back(Waiting{completion, Clock::now()});
  metrics_.set("maas_generation_queued_requests", labels_, static_cast<double>(queue_.size()));
  cv_.notify_one();
  return completion;
}

void GenerationEngine::loop() {
  std::vector<Sequence> running;
  for (;;) {
    std::vector<Waiting> admitted;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || !running.empty(); });
      if (stop_) break;
      while (!queue_.empty() && admitted.size() < free_.size()) {
        admitted.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      running_ = static_cast<int64_t>(running.size() + admitted.size());
    }
    for (Waiting& w : admitted) {
      if (w.completion->cancelled_.load()) {  // gone before its first step
        metrics_.add("maas_generation_finished_total", labels({{"model", name_}, {"reason", "cancelled"}}));
        ending_.push_back(Ending{std::move(w.completion), "", "cancelled", "", 0});
        continue;
      }
      Sequence s;
      s.completion = std::move(w.completion);
      s.slot = free_.back();
      free_.pop_back();
      s.input = s.history = s.completion->request_.prompt;
      s.gen.seed(s.completion->request_.seed);
      s.arrived = w.arrived;
      metrics_.add("maas_generation_prompt_tokens_total", labels_, static_cast<double>(s.input.size()));
      running.push_back(std::move(s));
    }
    for (auto it = running.begin(); it != running.end();) {  // clients gone: their slots are free
      if (!it->completion->cancelled_.load()) {
        ++it;
        continue;
      }
      finish(*it, "cancelled");
      it = running.erase(it);
    }
    if (!running.empty()) {
      try {
        step(running);
      } catch (const std::exception& e) {  // out of memory, or a bug: the requests get the reason
        for (Sequence& s : running) finish(s, "error", e.what());
        running.clear();
      }
    }
    int64_t waiting = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_ = static_cast<int64_t>(running.size());
      waiting = static_cast<int64_t>(queue_.size());
    }
    end_step(static_cast<int64_t>(running.size()), waiting);
  }
  // Unloaded: nothing waits for these any more, but they end all the same.
  for (Sequence& s : running) finish(s, "cancelled");
  std::lock_guard<std::mutex> lock(mutex_);
  for (Waiting& w : queue_) ending_.push_back(Ending{std::move(w.completion), "", "cancelled", "", 0});
  queue_.clear();
  end_step(0, 0);
}

void GenerationEngine::step(std::vector<Sequence>& running) {
  // Each sequence feeds one token; prompts (and restarts) beyond that share
  // prefill_chunk tokens per step, so that a long prompt joining does not
  // stall the others' next tokens. A sequence with input left over samples
  // nothing this step. (How a prompt is cut into steps does not change its
  // logits: the products are row by row, the attention query by query.)
  std::vector<int64_t> slots;
  std::vector<std::vector<int32_t>> tokens;
  int64_t budget = options_.prefill_chunk;
  for (Sequence& s : running) {
    const int64_t extra = std::min<int64_t>(static_cast<int64_t>(s.input.size()) - 1, std::max<int64_t>(0, budget));
    budget -= extra;
    slots.push_back(s.slot);
    tokens.emplace_back(s.input.begin(), s.input.begin() + 1 + extra);
    s.input.erase(s.input.begin(), s.input.begin() + 1 + extra);
  }
  const Tensor logits = decoder_.step(cache_, slots, tokens);
  const Clock::time_point now = Clock::now();
  const int64_t vocab = decoder_.vocab();
  std::vector<Sequence> still;
  for (size_t i = 0; i < running.size(); ++i) {
    Sequence& s = running[i];
    if (!s.input.empty()) {  // prefilling still
      still.push_back(std::move(s));
      continue;
    }
    metrics_.add("maas_generation_tokens_total", labels_);
    const GenerationRequest& r = s.completion->request_;
    const int32_t token = nn::sample_token(logits.data() + static_cast<int64_t>(i) * vocab, vocab, r.sampling, s.gen);
    ++s.generated;
    if (s.generated == 1)
      metrics_.observe("maas_generation_time_to_first_token_seconds", labels_,
                       std::chrono::duration<double>(now - s.arrived).count());
    else
      metrics_.observe("maas_generation_time_per_output_token_seconds", labels_,
                       std::chrono::duration<double>(now - s.last).count());
    s.last = now;
    s.text += tokenizer_.decode({token});
    size_t cut = std::string::npos;  // the first stop string: it begins after what was released
    for (const std::string& stop : r.stop) cut = std::min(cut, s.text.find(stop, s.sent));
    if (cut != std::string::npos || s.generated >= r.max_tokens) {
      s.text.resize(std::min(cut, s.text.size()));
      finish(s, cut != std::string::npos ? "stop" : "length");
      continue;
    }
    // Held back: the longest end of the text that begins a stop string.
    size_t release = s.text.size();
    for (const std::string& stop : r.stop)
      for (size_t k = std::min(stop.size() - 1, s.text.size() - s.sent); k > 0; --k)
        if (s.text.compare(s.text.size() - k, k, stop, 0, k) == 0) {
          release = std::min(release, s.text.size() - k);
          break;
        }
    s.completion->release(s.text.substr(s.sent, release - s.sent), s.generated);
    s.sent = release;
    s.history.push_back(token);
    if (cache_.length(s.slot) < cache_.context()) {
      s.input = {token};
    } else {  // full: start again from the last half
      const size_t keep = static_cast<size_t>(std::max<int64_t>(1, cache_.context() / 2));
      cache_.clear(s.slot);
      s.input.assign(s.history.end() - keep, s.history.end());
    }
    still.push_back(std::move(s));
  }
  running.swap(still);
}

void GenerationEngine::finish(Sequence& s, const std::string& reason, const std::string& error) {
  ending_.push_back(Ending{std::move(s.completion), s.text.substr(std::min(s.sent, s.text.size())), reason, error,
                           s.generated});
  cache_.clear(s.slot);
  free_.push_back(s.slot);
  metrics_.add("maas_generation_finished_total", labels({{"model", name_}, {"reason", reason}}));
  metrics_.observe("maas_generation_duration_seconds", labels_,
                   std::chrono::duration<double>(Clock::now() - s.arrived).count());
}

void GenerationEngine::end_step(int64_t running, int64_t waiting) {
  int64_t held = 0;
  for (int64_t s = 0; s < cache_.sequences(); ++s) held += cache_.length(s);
  metrics_.set("maas_generation_active_sequences", labels_, static_cast<double>(running));
  metrics_.set("maas_generation_queued_requests", labels_, static_cast<double>(waiting));
  metrics_.set("maas_generation_kv_cache_usage_ratio", labels_,
               static_cast<double>(held) / static_cast<double>(cache_.sequences() * cache_.context()));
  for (Ending& e : ending_) e.completion->release(e.text, e.generated, e.reason, e.error);
  ending_.clear();
}

}  // namespace maas::serve
