// GenerationEngine: text generation for one served language model, with
// continuous batching. It knows tokens, text and a KV cache; no protocol and
// no HTTP (api_openai.cpp is its front end).
//
// One decoding thread per model owns an nn::Decoder and an nn::KVCache of
// max_sequences slots, llama.cpp's server loop: each step admits waiting
// requests into free slots and runs ONE Decoder::step holding one token of
// every running sequence and up to prefill_chunk more of the new sequences'
// prompts (a longer prompt is prefilled over several steps, so that it does
// not hold back the others' next tokens). A
// request that finishes (max_tokens, a stop string) or is cancelled (its
// client gone) leaves its slot at once, for the next waiting one.
//
// Each request samples with its own Generator seeded by its seed, and
// Decoder::step gives each sequence the logits it would have alone, so a
// request's text does not depend on what else is decoded with it.
//
//   auto c = engine.submit(request);     // QueueFull when slots and queue are full
//   std::string text;
//   while (c->next(text)) {}             // or stream each piece as it comes
//   c->finish_reason();                  // "length" or "stop"
//
// Stop strings: the text released to the client never holds a stop string
// nor the start of one that the next tokens could complete; a stop string
// ends the generation, and the text is cut before it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "maas/data/text.hpp"
#include "maas/nn/decode.hpp"
#include "serve/metrics.hpp"

namespace maas::serve {

struct GenerationOptions {
  int64_t max_sequences = 16;  // sequences decoded together: the KV cache's slots
  int64_t max_context = 0;     // positions per sequence; 0 (or more than the model's): the model's context
  int64_t max_queue = 1024;    // requests waiting for a slot; more are refused (QueueFull)
  int64_t prefill_chunk = 64;  // prompt tokens per step beyond one per sequence (a longer prompt takes more steps)
};

// A sequence whose cache fills up starts again from the last context() / 2
// tokens (one prefill; the learned positions end at the context), as
// nn::Decoder::generate does: each token sees between context() / 2 and
// context() tokens before it.
struct GenerationRequest {
  std::vector<int32_t> prompt;  // 1 to context() tokens
  int64_t max_tokens = 16;      // 1 to context()
  nn::SamplingOptions sampling;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // non-empty strings
};

// One request's generation: written by the decoding thread, read by the
// request's own thread.
class Completion {
 public:
  explicit Completion(GenerationRequest request) : request_(std::move(request)) {}

  // Waits until text is released or the generation ends, and appends the
  // next piece released to `text`: one token's text (or several tokens',
  // released together once they could no longer begin a stop string).
  // Returns false once the generation has ended and all its text was taken.
  bool next(std::string& text);
  // The client is gone: the sequence leaves its slot at the next step (or
  // never takes one). next() then returns false.
  void cancel() { cancelled_.store(true); }

  // Once next() returned false: "length", "stop", "cancelled" or "error"
  // (then error() says why).
  std::string finish_reason() const;
  std::string error() const;
  int64_t prompt_tokens() const { return static_cast<int64_t>(request_.prompt.size()); }
  int64_t completion_tokens() const;

 private:
  friend class GenerationEngine;
  // Decoding thread: releases `text` and, when `finish` is not empty, ends.
  void release(const std::string& text, int64_t generated, const std::string& finish = "",
               const std::string& error = "");

  const GenerationRequest request_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> released_;  // pieces released, not yet taken by next()
  bool done_ = false;
  std::string finish_, error_;
  int64_t generated_ = 0;
};

class GenerationEngine {
 public:
  // Throws maas::Error when `model` cannot be decoded step by step, or its
  // vocabulary is not the tokenizer's; runs one token through it.
  GenerationEngine(std::shared_ptr<nn::Network> model, data::CharTokenizer tokenizer, GenerationOptions options,
                   Metrics& metrics, const std::string& name);
  // Ends every sequence (finish reason "cancelled") and stops the thread.
  ~GenerationEngine();
  GenerationEngine(const GenerationEngine&) = delete;
  GenerationEngine& operator=(const GenerationEngine&) = delete;

  const data::CharTokenizer& tokenizer() const { return tokenizer_; }
  // Positions a sequence may hold (prompt and generated tokens).
  int64_t context() const { return cache_.context(); }

  // Queues `request` (checked as GenerationRequest says) for the next step.
  // Throws QueueFull when max_sequences run and max_queue wait.
  std::shared_ptr<Completion> submit(GenerationRequest request);

 private:
  using Clock = std::chrono::steady_clock;
  struct Waiting {
    std::shared_ptr<Completion> completion;
    Clock::time_point arrived;
  };
  struct Sequence;  // a request holding a slot (generation.cpp)

  void loop();
  // One step for `running`: their tokens through the model, one token
  // sampled for each; finished ones are removed.
  void step(std::vector<Sequence>& running);
  // Ends `s` and frees its slot (the caller removes it from `running`); its
  // last text goes to its client at end_step().
  void finish(Sequence& s, const std::string& reason, const std::string& error = "");
  // The gauges, then the ended requests' last text: a client that sees its
  // end sees the metrics of it.
  void end_step(int64_t running, int64_t waiting);

  std::shared_ptr<nn::Network> model_;
  data::CharTokenizer tokenizer_;
  nn::Decoder decoder_;
  nn::KVCache cache_;  // decoding thread only
  GenerationOptions options_;
  Metrics& metrics_;
  std::string name_, labels_;
  struct Ending {
    std::shared_ptr<Completion> completion;
    std::string text, reason, error;
    int64_t generated;
  };
  std::vector<int64_t> free_;    // free slots, decoding thread only
  std::vector<Ending> ending_;   // ended this step, decoding thread only
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Waiting> queue_;
  int64_t running_ = 0;  // sequences holding a slot, as the decoding thread last said
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace maas::serve
