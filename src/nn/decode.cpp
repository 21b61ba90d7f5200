// Decoder and KVCache: a causal language model run one step at a time over
// cached keys and values (maas/nn/decode.hpp).
#include "maas/nn/decode.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <string>

#include "maas/autograd.hpp"
#include "maas/error.hpp"
#include "maas/nn/layers.hpp"
#include "maas/ops.hpp"

namespace maas::nn {

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, Generator& gen) {
  MAAS_CHECK(vocab >= 1, "sample_token: the vocabulary is empty");
  MAAS_CHECK(options.temperature >= 0.f && std::isfinite(options.temperature),
             "sample_token: temperature must be >= 0 (0: greedy), got " << options.temperature);
  MAAS_CHECK(options.top_k >= 0, "sample_token: top_k must be >= 0 (0: all tokens), got " << options.top_k);
  MAAS_CHECK(options.top_p > 0.f && options.top_p <= 1.f, "sample_token: top_p must be in (0, 1], got "
                                                               << options.top_p);
  const int64_t k = options.top_k > 0 ? std::min(options.top_k, vocab) : vocab;
  if (options.temperature == 0.f || k == 1)
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  // The k most likely ids, most likely first (ties: the lower id first).
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  const auto likelier = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (k < vocab) std::partial_sort(order.begin(), order.begin() + k, order.end(), likelier);
  else std::sort(order.begin(), order.end(), likelier);
  std::vector<double> p(static_cast<size_t>(k));
  double total = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    p[i] = std::exp(static_cast<double>(logits[order[i]] - logits[order[0]]) / options.temperature);
    total += p[i];
  }
  // Top-p: the smallest head of the sorted distribution holding top_p of it.
  double kept = 0.0;
  int64_t n = 0;
  while (n < k && (n == 0 || kept < options.top_p * total)) kept += p[n++];
  double u = gen.uniform() * kept;
  for (int64_t i = 0; i < n; ++i) {
    u -= p[i];
    if (u <= 0.0) return order[i];
  }
  return order[n - 1];
}

namespace {

// Layers that act on each position alone: run on the new positions as they are.
const std::set<std::string>& per_position_layers() {
  static const std::set<std::string> types = {"Embedding", "EmbeddingTranspose", "Dense",     "LayerNormalization",
                                              "Activation", "ReLU",              "Sigmoid",   "Tanh",
                                              "LeakyReLU",  "Dropout",           "Rescaling", "Add"};
  return types;
}

Tensor project(const MultiHeadAttention& m, const Tensor& x, int i) {
  Tensor h = matmul(x, m.kernel(i));
  return m.bias(i).defined() ? h + m.bias(i) : h;
}

}  // namespace

Decoder::Decoder(Network& model) : model_(model), calls_(model.calls()) {
  const std::vector<Shape> in = model.input_shapes();
  MAAS_CHECK(in.size() == 1 && in[0].size() == 1 && in[0][0] > 0,
             "Decoder: a language model takes one input of token ids (None, T); this model takes "
                 << (in.size() == 1 ? batch_shape_string(in[0]) : std::to_string(in.size()) + " inputs"));
  const std::vector<Network::Source> outs = model.outputs();
  const std::vector<Shape> out_shapes = model.output_shapes();
  MAAS_CHECK(outs.size() == 1 && !outs[0].model_input && out_shapes.size() == 1,
             "Decoder: a language model has one output, the logits (None, T, V); build the model first");
  MAAS_CHECK(out_shapes[0].size() == 2 && out_shapes[0][0] == in[0][0],
             "Decoder: the model's output " << batch_shape_string(out_shapes[0])
                                            << " is not logits per position (None, " << in[0][0] << ", V)");
  output_ = outs[0];
  context_ = in[0][0];
  vocab_ = out_shapes[0][1];
  for (size_t c = 0; c < calls_.size(); ++c) {
    Module& layer = model[calls_[c].layer];
    const std::string type = layer.type_name();
    if (auto* m = dynamic_cast<MultiHeadAttention*>(&layer)) {
      const auto& ins = calls_[c].inputs;
      MAAS_CHECK(m->options().use_causal_mask, "Decoder: MultiHeadAttention '"
                                                   << layer.name()
                                                   << "' has no causal mask (use_causal_mask): each position sees "
                                                      "later ones, so the text cannot be generated step by step");
      MAAS_CHECK(std::all_of(ins.begin(), ins.end(), [&](const Network::Source& s) { return s == ins[0]; }),
                 "Decoder: MultiHeadAttention '" << layer.name()
                                                 << "' attends over another input (cross-attention); the decoder "
                                                    "caches self-attention only");
      attention_.push_back({c, m->num_heads(), m->key_dim(), m->value_dim()});
    } else if (auto* p = dynamic_cast<PositionEmbedding*>(&layer)) {
      context_ = std::min(context_, p->sequence_length());
    } else {
      MAAS_CHECK(per_position_layers().count(type) != 0,
                 "Decoder: layer '" << layer.name() << "' (" << type
                                    << ") does not act on each position alone; a language model decoded step by "
                                       "step has Embedding, PositionEmbedding, causal MultiHeadAttention, Dense, "
                                       "LayerNormalization, Add, activations, Dropout and EmbeddingTranspose");
    }
  }
}

Tensor Decoder::attend(KVCache& cache, size_t a, const std::vector<Segment>& segments, const Tensor& x) const {
  const auto& m = dynamic_cast<const MultiHeadAttention&>(model_[calls_[attention_[a].call].layer]);
  const int64_t heads = attention_[a].heads, dk = attention_[a].key_dim, dv = attention_[a].value_dim;
  const int64_t n = x.size(1);
  const Tensor q = project(m, x, 0), k = project(m, x, 1), v = project(m, x, 2);
  Tensor out = Tensor::empty({1, n, heads * dv});
  const float scale = 1.f / std::sqrt(static_cast<float>(dk));
  const int64_t tasks = static_cast<int64_t>(segments.size()) * heads;
  int64_t work = 0;  // multiply-adds, to decide whether threads pay
  for (const Segment& s : segments) work += s.count * (s.start + s.count) * heads * (dk + dv);
#pragma omp parallel if (work > 65536 && tasks > 1)
  {
    std::vector<float> w(static_cast<size_t>(cache.context()));
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const Segment& s = segments[static_cast<size_t>(task / heads)];
      const int64_t h = task % heads;
      float* keys = cache.keys(a, s.slot, h);
      float* values = cache.values(a, s.slot, h);
      for (int64_t j = 0; j < s.count; ++j) {
        const int64_t row = s.offset + j;
        std::copy_n(k.data() + (row * heads + h) * dk, dk, keys + (s.start + j) * dk);
        std::copy_n(v.data() + (row * heads + h) * dv, dv, values + (s.start + j) * dv);
      }
      // Query j sees positions 0 .. start + j (causal, bottom-right aligned).
      for (int64_t j = 0; j < s.count; ++j) {
        const int64_t row = s.offset + j, seen = s.start + j + 1;
        const float* qr = q.data() + (row * heads + h) * dk;
        float top = -INFINITY;
        for (int64_t p = 0; p < seen; ++p) {
          const float* kr = keys + p * dk;
          float dot = 0.f;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < dk; ++d) dot += qr[d] * kr[d];
          w[p] = dot * scale;
          top = std::max(top, w[p]);
        }
        float total = 0.f;
        for (int64_t p = 0; p < seen; ++p) total += (w[p] = std::exp(w[p] - top));
        float* o = out.data() + (row * heads + h) * dv;
        std::fill_n(o, dv, 0.f);
        for (int64_t p = 0; p < seen; ++p) {
          const float* vr = values + p * dv;
          const float wp = w[p];
#pragma omp simd
          for (int64_t d = 0; d < dv; ++d) o[d] += wp * vr[d];
        }
        const float inv = 1.f / total;
        for (int64_t d = 0; d < dv; ++d) o[d] *= inv;
      }
    }
  }
  return project(m, out, 3);
}

Tensor Decoder::step(KVCache& cache, const std::vector<int64_t>& slots,
                     const std::vector<std::vector<int32_t>>& tokens) {
  MAAS_CHECK(cache.layers_.size() == attention_.size() &&
                 std::equal(attention_.begin(), attention_.end(), cache.layers_.begin(),
                            [](const Attention& x, const Attention& y) {
                              return x.heads == y.heads && x.key_dim == y.key_dim && x.value_dim == y.value_dim;
                            }),
             "Decoder: the cache was made for another model's attention layers");
  MAAS_CHECK(!slots.empty() && slots.size() == tokens.size(),
             "Decoder: step takes one run of tokens per slot, got " << slots.size() << " slots and "
                                                                    << tokens.size() << " runs of tokens");
  std::vector<Segment> segments;
  int64_t rows = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    const int64_t slot = slots[i], count = static_cast<int64_t>(tokens[i].size());
    MAAS_CHECK(slot >= 0 && slot < cache.sequences(),
               "Decoder: slot " << slot << " is outside the cache's " << cache.sequences() << " sequences");
    for (size_t j = 0; j < i; ++j)
      MAAS_CHECK(slots[j] != slot, "Decoder: slot " << slot << " appears twice in one step");
    MAAS_CHECK(count > 0, "Decoder: the run of tokens for slot " << slot << " is empty");
    for (int32_t id : tokens[i])
      MAAS_CHECK(id >= 0 && id < vocab_, "Decoder: token id " << id << " is outside the vocabulary [0, " << vocab_
                                                              << ")");
    const int64_t start = cache.length_[static_cast<size_t>(slot)];
    MAAS_CHECK(start + count <= cache.context(),
               "Decoder: slot " << slot << " holds " << start << " positions; " << count << " more make "
                                << start + count << ", longer than the context of " << cache.context());
    segments.push_back({slot, rows, count, start});
    rows += count;
  }

  NoGradGuard no_grad;
  Tensor ids = Tensor::empty({1, rows}), positions = Tensor::empty({1, rows});
  for (size_t i = 0; i < segments.size(); ++i)
    for (int64_t j = 0; j < segments[i].count; ++j) {
      ids.data()[segments[i].offset + j] = static_cast<float>(tokens[i][static_cast<size_t>(j)]);
      positions.data()[segments[i].offset + j] = static_cast<float>(segments[i].start + j);
    }
  std::vector<Tensor> values(calls_.size()), ins;
  size_t next_attention = 0;
  for (size_t c = 0; c < calls_.size(); ++c) {
    ins.clear();
    for (const Network::Source& s : calls_[c].inputs) ins.push_back(s.model_input ? ids : values[s.index]);
    Module& layer = model_[calls_[c].layer];
    if (next_attention < attention_.size() && attention_[next_attention].call == c) {
      values[c] = attend(cache, next_attention++, segments, ins[0]);
    } else if (auto* p = dynamic_cast<PositionEmbedding*>(&layer)) {
      MAAS_CHECK(ins[0].dim() == 3 && ins[0].size(2) == p->embeddings().size(1),
                 "Decoder: PositionEmbedding '" << layer.name() << "' has " << p->embeddings().size(1)
                                                << " features but got " << maas::to_string(ins[0].shape()));
      values[c] = embedding(positions, p->embeddings());
    } else if (layer.type_name() == "Dropout") {
      values[c] = ins[0];  // decoding is inference
    } else {
      values[c] = layer.forward_many(ins);
    }
  }
  const Tensor& logits = values[output_.index];
  Tensor last = Tensor::empty({static_cast<int64_t>(segments.size()), vocab_});
  for (size_t i = 0; i < segments.size(); ++i)
    std::copy_n(logits.data() + (segments[i].offset + segments[i].count - 1) * vocab_, vocab_,
                last.data() + static_cast<int64_t>(i) * vocab_);
  for (const Segment& s : segments) cache.length_[static_cast<size_t>(s.slot)] = s.start + s.count;
  return last;
}

std::vector<int32_t> Decoder::generate(const std::vector<int32_t>& prompt, int64_t n, const SamplingOptions& sampling,
                                       Generator& gen) {
  MAAS_CHECK(!prompt.empty(), "Decoder: the prompt is empty");
  MAAS_CHECK(static_cast<int64_t>(prompt.size()) <= context_,
             "Decoder: the prompt's " << prompt.size() << " tokens are longer than the model's context of "
                                      << context_);
  MAAS_CHECK(n >= 0, "Decoder: cannot generate " << n << " tokens");
  KVCache cache(*this, 1);
  std::vector<int32_t> text = prompt, out;
  Tensor logits = step(cache, {0}, {prompt});
  const int64_t keep = std::max<int64_t>(1, context_ / 2);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = sample_token(logits.data(), vocab_, sampling, gen);
    out.push_back(id);
    text.push_back(id);
    if (i + 1 == n) break;
    if (cache.length(0) < context_) {
      logits = step(cache, {0}, {{id}});
    } else {  // full: start again from the last `keep` tokens
      cache.clear(0);
      logits = step(cache, {0}, {std::vector<int32_t>(text.end() - keep, text.end())});
    }
  }
  return out;
}

KVCache::KVCache(const Decoder& decoder, int64_t sequences, int64_t context)
    : layers_(decoder.attention_), context_(context > 0 ? context : decoder.context()) {
  MAAS_CHECK(sequences >= 1, "KVCache: sequences must be >= 1, got " << sequences);
  MAAS_CHECK(context >= 0 && context_ <= decoder.context(),
             "KVCache: context " << context << " must be in [1, " << decoder.context()
                                 << "] (the model's positions), or 0 for all of them");
  // Bounded before anything is allocated: at most 2^40 bytes.
  double floats = 0.0;
  for (const Decoder::Attention& a : layers_)
    floats += static_cast<double>(sequences) * static_cast<double>(a.heads) * static_cast<double>(context_) *
              static_cast<double>(a.key_dim + a.value_dim);
  MAAS_CHECK(floats * sizeof(float) <= std::ldexp(1.0, 40),
             "KVCache: " << sequences << " sequences of " << context_ << " positions need " << floats * 4.0 / 1e9
                         << " GB of keys and values, more than the 1 TiB a cache may hold");
  length_.assign(static_cast<size_t>(sequences), 0);
  for (const Decoder::Attention& a : layers_) {
    keys_.emplace_back(static_cast<size_t>(sequences * a.heads * context_ * a.key_dim));
    values_.emplace_back(static_cast<size_t>(sequences * a.heads * context_ * a.value_dim));
  }
}

int64_t KVCache::length(int64_t slot) const {
  MAAS_CHECK(slot >= 0 && slot < sequences(), "KVCache: slot " << slot << " is outside [0, " << sequences() << ")");
  return length_[static_cast<size_t>(slot)];
}

void KVCache::clear(int64_t slot) {
  MAAS_CHECK(slot >= 0 && slot < sequences(), "KVCache: slot " << slot << " is outside [0, " << sequences() << ")");
  length_[static_cast<size_t>(slot)] = 0;
}

int64_t KVCache::bytes() const {
  int64_t total = 0;
  for (size_t a = 0; a < layers_.size(); ++a)
    total += static_cast<int64_t>((keys_[a].size() + values_[a].size()) * sizeof(float));
  return total;
}

float* KVCache::keys(size_t a, int64_t s, int64_t h) {
  return keys_[a].data() + ((s * layers_[a].heads + h) * context_) * layers_[a].key_dim;
}

float* KVCache::values(size_t a, int64_t s, int64_t h) {
  return values_[a].data() + ((s * layers_[a].heads + h) * context_) * layers_[a].value_dim;
}

}  // namespace maas::nn
