// Decoding a causal language model one step at a time, with a key/value
// cache: the way a trained GPT generates text.
//
// A full forward pass over T tokens costs O(T) matrix products per token
// generated; with the keys and values of the earlier positions kept, each
// new token costs one position's products and one query's attention. The
// Decoder runs a functional Network (tokens [T] in, logits [T, V] out) over
// the new tokens of several sequences at once: their positions are laid
// end to end in one batch of rows, so the Dense and LayerNormalization
// layers run one matrix product for all of them (a prompt's prefill and
// other sequences' single tokens together), and each MultiHeadAttention
// attends per sequence over that sequence's cache.
//
//   nn::Decoder decoder(model);                 // checks the model once
//   nn::KVCache cache(decoder, 8);              // 8 sequences of up to decoder.context() positions
//   Tensor logits = decoder.step(cache, {slot}, {prompt_tokens});   // [1, V]
//   int32_t next = nn::sample_token(logits.data(), decoder.vocab(), sampling, gen);
//
// The model must be what a GPT is made of: Embedding, PositionEmbedding,
// causal self-attention (MultiHeadAttention with use_causal_mask, query =
// value = key), layers that act on each position alone (Dense,
// LayerNormalization, Add, activations, Dropout, EmbeddingTranspose). The
// Decoder names the first layer that is not.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "maas/nn/network.hpp"
#include "maas/tensor.hpp"

namespace maas::nn {

// How the next token is drawn from a row of logits.
struct SamplingOptions {
  float temperature = 1.f;  // 0: greedy (the most likely token)
  int64_t top_k = 0;        // keep the k most likely tokens; 0: all
  float top_p = 1.f;        // then the smallest most-likely set holding top_p of the probability
};

// A token drawn from softmax(logits / temperature) restricted by top_k and
// top_p, using one uniform draw of `gen` (none when greedy). Ties go to the
// lower id. Throws maas::Error on options out of range (temperature < 0,
// top_k < 0, top_p outside (0, 1]) or vocab < 1.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, Generator& gen);

class KVCache;

class Decoder {
 public:
  // Throws maas::Error naming the first layer (or input, or output) that a
  // step-by-step causal language model cannot have. The model is used, not
  // copied: keep it alive, and do not change its weights while decoding.
  explicit Decoder(Network& model);

  // Positions a sequence may hold: the model's input length (its block).
  int64_t context() const { return context_; }
  int64_t vocab() const { return vocab_; }

  // Appends tokens[i] (one or more ids) to sequence slots[i] of `cache` and
  // returns the logits at the last new position of each: [slots.size(), V].
  // Slots must be distinct. Throws maas::Error, changing nothing, for a slot
  // outside the cache, an empty run of tokens, an id outside the
  // vocabulary, or a sequence that would outgrow the cache's context (both
  // lengths named). Runs without recording gradients.
  Tensor step(KVCache& cache, const std::vector<int64_t>& slots, const std::vector<std::vector<int32_t>>& tokens);

  // `n` tokens sampled after `prompt`, one sequence, in a cache of its own.
  // When the context is full, decoding starts again from the last
  // context / 2 tokens (the learned positions end at the context), so each
  // token sees between context / 2 and context tokens.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, int64_t n, const SamplingOptions& sampling,
                                Generator& gen);

 private:
  friend class KVCache;
  struct Attention {  // one MultiHeadAttention layer's place in the cache
    size_t call;
    int64_t heads, key_dim, value_dim;
  };
  // One sequence's part of a step: rows [offset, offset + count) of the
  // batch, at positions [start, start + count) of cache slot `slot`.
  struct Segment {
    int64_t slot, offset, count, start;
  };
  // Attention layer a (call index attention_[a].call) on the step's rows x [1, N, C].
  Tensor attend(KVCache& cache, size_t a, const std::vector<Segment>& segments, const Tensor& x) const;
  Network& model_;
  std::vector<Network::Call> calls_;
  Network::Source output_;
  std::vector<Attention> attention_;  // in call order
  int64_t context_ = 0, vocab_ = 0;
};

// The keys and values of up to `sequences` sequences of up to `context`
// positions (at most the decoder's), for each attention layer: preallocated,
// so that decoding allocates nothing per token for them.
class KVCache {
 public:
  KVCache(const Decoder& decoder, int64_t sequences, int64_t context = 0);  // context 0: the decoder's

  int64_t sequences() const { return static_cast<int64_t>(length_.size()); }
  int64_t context() const { return context_; }
  // Positions sequence `slot` holds.
  int64_t length(int64_t slot) const;
  // Empties sequence `slot`, for a new text.
  void clear(int64_t slot);
  // Bytes held for keys and values.
  int64_t bytes() const;

 private:
  friend class Decoder;
  // Layer a's keys of sequence s, head h: context rows of key_dim floats.
  float* keys(size_t a, int64_t s, int64_t h);
  float* values(size_t a, int64_t s, int64_t h);

  std::vector<Decoder::Attention> layers_;
  int64_t context_;
  std::vector<int64_t> length_;
  std::vector<std::vector<float>> keys_, values_;  // per attention layer: [sequences, heads, context, dim]
};

}  // namespace maas::nn
