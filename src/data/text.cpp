// Text for language models: strict UTF-8 decoding, read_text_file, the
// character tokenizer and its JSON form, token windows and the split.
#include "maas/data/text.hpp"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "maas/data/loader.hpp"
#include "maas/error.hpp"

namespace maas::data {

namespace {

constexpr char32_t kMaxCodePoint = 0x10FFFF;
// Ids and tokens above this are not exact as floats.
constexpr int64_t kMaxExactToken = int64_t{1} << 24;

bool is_scalar_value(char32_t c) { return c <= kMaxCodePoint && !(c >= 0xD800 && c <= 0xDFFF); }

// The length of the UTF-8 sequence at s[pos] and its code point, or 0 when
// the bytes there are not well-formed UTF-8 (Unicode's table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF, no truncation).
size_t next_char(const std::string& s, size_t pos, char32_t& c) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[pos + k]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) {
    c = b0;
    return 1;
  }
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong below
    if (b0 == 0xED) hi = 0x9F;  // surrogates above
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong below
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - pos < len) return 0;
  if (byte(1) < lo || byte(1) > hi) return 0;
  for (size_t k = 2; k < len; ++k)
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  c = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) c = (c << 6) | (byte(k) & 0x3F);
  return len;
}

// "invalid UTF-8 at byte 12 (0xc3 0x28)": the offset and up to 4 bytes from it.
std::string utf8_error(const std::string& s, size_t pos) {
  std::string out = "invalid UTF-8 at byte " + std::to_string(pos) + " (";
  for (size_t k = pos; k < s.size() && k < pos + 4; ++k) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "%s0x%02x", k == pos ? "" : " ", static_cast<unsigned char>(s[k]));
    out += hex;
  }
  return out + ")";
}

// Calls f(code point, byte offset) for each character of s; throws,
// prefixed by `who`, at the first invalid byte.
template <class F>
void for_each_char(const std::string& s, const std::string& who, F&& f) {
  for (size_t pos = 0; pos < s.size();) {
    char32_t c;
    const size_t len = next_char(s, pos, c);
    MAAS_CHECK(len > 0, who << ": " << utf8_error(s, pos));
    f(c, pos);
    pos += len;
  }
}

std::string to_utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

// A character as an error message shows it: 'a' (U+0061), '\n' (U+000A),
// 'é' (U+00E9); other control characters by their code alone (U+0007).
std::string describe(char32_t c) {
  char code[16];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(c));
  if (c == '\n') return std::string("'\\n' (") + code + ")";
  if (c == '\t') return std::string("'\\t' (") + code + ")";
  if (c == '\r') return std::string("'\\r' (") + code + ")";
  if (c < 0x20 || (c >= 0x7F && c < 0xA0)) return code;
  return "'" + to_utf8(c) + "' (" + code + ")";
}

}  // namespace

// ---------------------------------------------------------------- files

std::string read_text_file(const std::string& path, size_t max_bytes) {
  MAAS_CHECK(max_bytes < SIZE_MAX, "read_text_file: " << path << ": max_bytes must be below SIZE_MAX");
  const std::vector<uint8_t> bytes = read_file_bytes(path, "read_text_file", max_bytes + 1);
  MAAS_CHECK(bytes.size() <= max_bytes, "read_text_file: " << path << ": holds more than max_bytes = " << max_bytes
                                                           << " bytes (after decompression)");
  MAAS_CHECK(!bytes.empty(), "read_text_file: " << path << ": the file is empty (no text)");
  std::string text(bytes.begin(), bytes.end());
  for_each_char(text, "read_text_file: " + path, [](char32_t, size_t) {});
  return text;
}

// ---------------------------------------------------------------- CharTokenizer

CharTokenizer::CharTokenizer(std::vector<char32_t> vocabulary)
    : vocabulary_(std::move(vocabulary)), ascii_(128, -1) {
  MAAS_CHECK(!vocabulary_.empty(), "CharTokenizer: the vocabulary is empty");
  MAAS_CHECK(vocabulary_.size() <= static_cast<size_t>(kMaxCodePoint) + 1,
             "CharTokenizer: " << vocabulary_.size() << " characters is more than Unicode has");
  pieces_.reserve(vocabulary_.size());
  for (size_t i = 0; i < vocabulary_.size(); ++i) {
    const char32_t c = vocabulary_[i];
    char code[16];
    std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(c));
    MAAS_CHECK(is_scalar_value(c), "CharTokenizer: vocabulary entry " << i << " (" << code
                                                                      << ") is not a Unicode character");
    const auto id = static_cast<int32_t>(i);
    const bool fresh = c < 128 ? ascii_[c] < 0 : ids_.emplace(c, id).second;
    MAAS_CHECK(fresh, "CharTokenizer: character " << describe(c) << " appears twice in the vocabulary (entries "
                                                  << (c < 128 ? ascii_[c] : ids_.at(c)) << " and " << i << ")");
    if (c < 128) ascii_[c] = id;
    pieces_.push_back(to_utf8(c));
  }
}

CharTokenizer CharTokenizer::from_text(const std::string& text) {
  MAAS_CHECK(!text.empty(), "CharTokenizer::from_text: the text is empty");
  std::vector<bool> seen(static_cast<size_t>(kMaxCodePoint) + 1, false);
  for_each_char(text, "CharTokenizer::from_text", [&](char32_t c, size_t) { seen[c] = true; });
  std::vector<char32_t> vocabulary;
  for (char32_t c = 0; c <= kMaxCodePoint; ++c)
    if (seen[c]) vocabulary.push_back(c);
  return CharTokenizer(std::move(vocabulary));
}

std::vector<int32_t> CharTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for_each_char(text, "CharTokenizer::encode", [&](char32_t c, size_t pos) {
    int32_t id = -1;
    if (c < 128) {
      id = ascii_[c];
    } else if (const auto it = ids_.find(c); it != ids_.end()) {
      id = it->second;
    }
    MAAS_CHECK(id >= 0, "CharTokenizer::encode: character " << describe(c) << " at position " << ids.size()
                                                            << " (byte " << pos << ") is not in the vocabulary of "
                                                            << vocabulary_.size() << " characters");
    ids.push_back(id);
  });
  return ids;
}

std::string CharTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (size_t k = 0; k < ids.size(); ++k) {
    const int32_t id = ids[k];
    MAAS_CHECK(id >= 0 && static_cast<size_t>(id) < pieces_.size(),
               "CharTokenizer::decode: id " << id << " at position " << k << " is outside the vocabulary [0, "
                                            << pieces_.size() << ")");
    text += pieces_[static_cast<size_t>(id)];
  }
  return text;
}

std::string CharTokenizer::to_json() const {
  nlohmann::json root;
  root["class_name"] = "CharTokenizer";
  root["vocabulary"] = pieces_;
  return root.dump();
}

CharTokenizer CharTokenizer::from_json(const std::string& json) {
  const char* who = "CharTokenizer::from_json";
  MAAS_CHECK(json.size() <= kMaxTokenizerJsonBytes, who << ": " << json.size() << " bytes is over the limit of "
                                                        << kMaxTokenizerJsonBytes << " bytes");
  nlohmann::json root;
  try {
    // The form nests two deep; refusing deeper input as it is read keeps
    // hostile text from costing stack.
    root = nlohmann::json::parse(json, [](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
      if (depth > 1 && (event == nlohmann::json::parse_event_t::object_start ||
                        event == nlohmann::json::parse_event_t::array_start))
        throw Error("arrays or objects nested more than 2 deep");
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    MAAS_FAIL(who << ": not valid JSON: " << e.what());
  } catch (const Error& e) {
    MAAS_FAIL(who << ": not a CharTokenizer: " << e.what());
  }
  MAAS_CHECK(root.is_object(),
             who << ": expected a JSON object {\"class_name\": \"CharTokenizer\", \"vocabulary\": [...]}");
  for (const auto& [key, value] : root.items())
    MAAS_CHECK(key == "class_name" || key == "vocabulary",
               who << ": unknown key \"" << key << "\" (expected class_name and vocabulary)");
  MAAS_CHECK(root.contains("class_name") && root["class_name"].is_string() &&
                 root["class_name"].get<std::string>() == "CharTokenizer",
             who << ": class_name must be \"CharTokenizer\", got "
                 << (root.contains("class_name") ? root["class_name"].dump() : std::string("none")));
  MAAS_CHECK(root.contains("vocabulary") && root["vocabulary"].is_array(),
             who << ": vocabulary must be an array of one-character strings");
  const nlohmann::json& entries = root["vocabulary"];
  std::vector<char32_t> vocabulary;
  vocabulary.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string where = std::string(who) + ": vocabulary entry " + std::to_string(i);
    MAAS_CHECK(entries[i].is_string(), where << " is " << entries[i].type_name() << ", not a string");
    const std::string& s = entries[i].get_ref<const std::string&>();
    size_t count = 0;
    for_each_char(s, where, [&](char32_t c, size_t) {
      if (count++ == 0) vocabulary.push_back(c);
    });
    MAAS_CHECK(count == 1, where << " holds " << count << " characters, not 1");
  }
  return CharTokenizer(std::move(vocabulary));
}

// ---------------------------------------------------------------- TokenWindows

namespace {

void check_windows(const std::vector<int32_t>& tokens, int64_t block_size) {
  MAAS_CHECK(block_size >= 1, "TokenWindows: block_size must be >= 1, got " << block_size);
  MAAS_CHECK(static_cast<int64_t>(tokens.size()) > block_size,
             "TokenWindows: a stream of " << tokens.size() << " tokens is too short for block_size " << block_size
                                          << ": it needs at least " << block_size + 1
                                          << " (one window and its next token)");
  for (size_t k = 0; k < tokens.size(); ++k)
    MAAS_CHECK(tokens[k] >= 0 && tokens[k] < kMaxExactToken,
               "TokenWindows: token " << tokens[k] << " at position " << k << " is outside [0, 2^24)");
}

std::vector<int32_t> tokens_of(const Tensor& t) {
  MAAS_CHECK(t.defined() && t.dim() == 1,
             "TokenWindows: the tokens must be a 1-D tensor, got "
                 << (t.defined() ? to_string(t.shape()) : std::string("an undefined tensor")));
  const float* d = t.data();
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  for (size_t k = 0; k < out.size(); ++k) {
    const float v = d[k];
    MAAS_CHECK(v >= 0.f && v < static_cast<float>(kMaxExactToken) && v == std::floor(v),
               "TokenWindows: token " << v << " at position " << k << " is not a whole number in [0, 2^24)");
    out[k] = static_cast<int32_t>(v);
  }
  return out;
}

}  // namespace

TokenWindows::TokenWindows(std::vector<int32_t> tokens, int64_t block_size)
    : tokens_(std::move(tokens)), block_size_(block_size) {
  check_windows(tokens_, block_size_);
}

TokenWindows::TokenWindows(const Tensor& tokens, int64_t block_size) : TokenWindows(tokens_of(tokens), block_size) {}

int64_t TokenWindows::size() const { return static_cast<int64_t>(tokens_.size()) - block_size_; }

void TokenWindows::get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const {
  const int64_t n = size(), t = block_size_;
  const auto b = static_cast<int64_t>(indices.size());
  for (size_t k = 0; k < indices.size(); ++k)
    MAAS_CHECK(0 <= indices[k] && indices[k] < n, "TokenWindows::get_batch: index " << indices[k]
                                                      << " (batch position " << k << ") is out of range for "
                                                      << n << " windows");
  Tensor bx = Tensor::empty({b, t});
  Tensor by = Tensor::empty({b, t});
  float* dx = bx.data();
  float* dy = by.data();
  for (int64_t k = 0; k < b; ++k) {
    const int32_t* src = tokens_.data() + indices[static_cast<size_t>(k)];
    for (int64_t j = 0; j < t; ++j) {
      dx[k * t + j] = static_cast<float>(src[j]);
      dy[k * t + j] = static_cast<float>(src[j + 1]);
    }
  }
  x = bx;
  y = by;
}

void TokenWindows::sample_batch(int64_t batch, Generator& gen, Tensor& x, Tensor& y) const {
  MAAS_CHECK(batch >= 1, "TokenWindows::sample_batch: batch must be >= 1, got " << batch);
  // Modulo, not std::uniform_int_distribution: the same offsets with every
  // standard library (as the trainer's shuffle).
  const auto n = static_cast<uint64_t>(size());
  std::vector<int64_t> offsets(static_cast<size_t>(batch));
  for (int64_t& o : offsets) o = static_cast<int64_t>(gen.engine()() % n);
  get_batch(offsets, x, y);
}

// ---------------------------------------------------------------- split

TokenSplit split_tokens(const std::vector<int32_t>& tokens, double train_fraction) {
  MAAS_CHECK(train_fraction > 0 && train_fraction < 1,
             "split_tokens: train_fraction must be in (0, 1), got " << train_fraction);
  const auto n_train = static_cast<size_t>(static_cast<double>(tokens.size()) * train_fraction);
  MAAS_CHECK(n_train >= 1 && n_train < tokens.size(),
             "split_tokens: " << tokens.size() << " tokens split at " << train_fraction << " leave "
                              << n_train << " to train and " << tokens.size() - n_train
                              << " to validate; each part needs at least one");
  return {std::vector<int32_t>(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n_train)),
          std::vector<int32_t>(tokens.begin() + static_cast<std::ptrdiff_t>(n_train), tokens.end())};
}

}  // namespace maas::data
