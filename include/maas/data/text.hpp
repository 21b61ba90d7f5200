// maas/data/text.hpp: text for language models: UTF-8 files, a character
// tokenizer, windows of a token stream, and a split by position.
//
// Example (a character-level model on tiny-shakespeare, as nanoGPT's
// shakespeare_char):
//   std::string text = maas::data::read_text_file("data/tinyshakespeare/input.txt.gz");
//   maas::data::CharTokenizer tok = maas::data::CharTokenizer::from_text(text);
//   tok.vocab_size();                                 // 65
//   maas::data::TokenSplit parts = maas::data::split_tokens(tok.encode(text), 0.9);
//   maas::data::TokenWindows train(std::move(parts.train), /*block_size=*/64);
//   maas::Generator gen(1337);
//   maas::Tensor x, y;
//   train.sample_batch(12, gen, x, y);                // x, y [12, 64]: y is x shifted by one
//   std::string json = tok.to_json();                 // the vocabulary, to store beside the weights
//   tok.decode(maas::data::CharTokenizer::from_json(json).encode("O Romeo"));  // "O Romeo"
//
// Text is UTF-8 throughout; a "character" is one Unicode code point. Token
// ids are int32 in [0, vocab_size()); as tensors (TokenWindows) they are
// floats, exact below 2^24.
//
// What this file is not: no subword (BPE) tokenizer, no normalisation
// (Unicode forms, case, a byte-order mark is an ordinary character), no
// special tokens (padding, end of text), no streaming of files larger than
// memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "maas/data/dataset.hpp"
#include "maas/tensor.hpp"

namespace maas::data {

// The most bytes read_text_file accepts by default (after decompression):
// 1 GiB, a thousand times tiny-shakespeare.
constexpr size_t kMaxTextBytes = size_t{1} << 30;

// The content of a UTF-8 text file, plain or gzipped (a name ending in .gz
// or not: gzip is recognised by its content). At most max_bytes + 1 bytes
// are ever read, so a gzip bomb costs no more memory than that.
// Throws maas::Error naming the file when it is missing or unreadable, holds
// more than max_bytes, is empty, or is not valid UTF-8 (naming the byte
// offset of the first bad sequence).
std::string read_text_file(const std::string& path, size_t max_bytes = kMaxTextBytes);

// Characters (Unicode code points) to ids and back. from_text's vocabulary
// is the sorted set of the text's distinct code points, so id order is code
// point order (for tiny-shakespeare: '\n', ' ', '!', ..., 'z', as nanoGPT's
// sorted(set(text))).
class CharTokenizer {
 public:
  // requires: vocabulary not empty, every entry a Unicode scalar value
  // (<= U+10FFFF, not a surrogate), no entry twice. Id i is vocabulary[i];
  // any order is kept as given.
  explicit CharTokenizer(std::vector<char32_t> vocabulary);
  // The distinct code points of `text` (valid UTF-8, not empty), sorted.
  static CharTokenizer from_text(const std::string& text);

  int64_t vocab_size() const { return static_cast<int64_t>(vocabulary_.size()); }
  const std::vector<char32_t>& vocabulary() const { return vocabulary_; }

  // One id per character of `text` (valid UTF-8). Throws maas::Error naming
  // the first character outside the vocabulary (printable, with its U+
  // code) and its position (character and byte offset), or the byte offset
  // of invalid UTF-8.
  std::vector<int32_t> encode(const std::string& text) const;
  // The UTF-8 text of `ids`. Throws maas::Error naming the first id outside
  // [0, vocab_size()) and its position.
  std::string decode(const std::vector<int32_t>& ids) const;

  // {"class_name": "CharTokenizer", "vocabulary": ["\n", " ", "!", ...]}:
  // one string of one character per id, in id order.
  std::string to_json() const;
  // The inverse of to_json(). Throws maas::Error on anything else: text over
  // kMaxTokenizerJsonBytes, not JSON, another class_name, a missing or
  // unknown key, an empty vocabulary, an entry that is not a string of
  // exactly one character, invalid UTF-8, a character given twice.
  static CharTokenizer from_json(const std::string& json);

  // The most bytes from_json accepts: 32 MiB, above the largest vocabulary
  // there can be (every code point, escaped).
  static constexpr size_t kMaxTokenizerJsonBytes = size_t{1} << 25;

 private:
  std::vector<char32_t> vocabulary_;
  std::vector<std::string> pieces_;           // the UTF-8 bytes of each id
  std::vector<int32_t> ascii_;                // id of each code point < 128, or -1
  std::unordered_map<char32_t, int32_t> ids_;  // ids of the others
};

// Overlapping windows of a token stream, for next-token prediction: sample i
// is the window at offset i, x = tokens[i, i + T) and y = tokens[i + 1,
// i + T + 1), both [T] floats, T the block size. size() = n - T, so every
// window and its target lie inside the stream.
class TokenWindows : public Dataset {
 public:
  // requires: block_size >= 1; more than block_size tokens (the error names
  // both lengths); every token in [0, 2^24) (exact as a float).
  TokenWindows(std::vector<int32_t> tokens, int64_t block_size);
  // The same from a 1-D tensor of whole numbers.
  TokenWindows(const Tensor& tokens, int64_t block_size);

  int64_t size() const override;
  Shape sample_shape() const override { return {block_size_}; }
  // x [B, T], y [B, T]: the windows at the offsets `indices`.
  void get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const override;
  // nanoGPT's get_batch: `batch` offsets drawn uniformly from [0, size())
  // (with replacement) by `gen`, then get_batch. The same generator state
  // gives the same batch; the generator advances by `batch` draws.
  // requires: batch >= 1.
  void sample_batch(int64_t batch, Generator& gen, Tensor& x, Tensor& y) const;

  int64_t block_size() const { return block_size_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  std::vector<int32_t> tokens_;
  int64_t block_size_;
};

struct TokenSplit {
  std::vector<int32_t> train, validation;
};

// The first floor(n * train_fraction) tokens train, the rest validate
// (nanoGPT's n = int(0.9 * len(data)) for 0.9).
// requires: 0 < train_fraction < 1 and at least one token in each part.
TokenSplit split_tokens(const std::vector<int32_t>& tokens, double train_fraction);

}  // namespace maas::data
