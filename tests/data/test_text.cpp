// Text data: read_text_file (plain, gzipped, every bad-input message),
// strict UTF-8, the character tokenizer and its JSON form, token windows,
// split_tokens, and the committed tiny-shakespeare corpus.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "data/gzip_bomb.hpp"
#include "data/temp_dir.hpp"
#include "gradcheck.hpp"
#include "maas/data/text.hpp"

using namespace maas;
using namespace maas::data;
using maas::test::error_of;
using maas::test::TempDir;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

}  // namespace

TEST_CASE("read_text_file: UTF-8 text, plain and gzipped", "[data][text]") {
  TempDir dir("text");
  const std::string text = "To be, or not to be\n\xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n";  // été € 😀
  maas::test::write_file(dir / "a.txt", bytes_of(text));
  maas::test::write_file(dir / "a.txt.gz", maas::test::gzip_member(bytes_of(text)));
  REQUIRE(read_text_file(dir / "a.txt") == text);
  REQUIRE(read_text_file(dir / "a.txt.gz") == text);
}

TEST_CASE("read_text_file: missing, empty, too large and non-UTF-8 files name the file", "[data][text]") {
  TempDir dir("text");
  CHECK_THAT(error_of([&] { read_text_file(dir / "none.txt"); }),
             Catch::Contains("read_text_file: ") && Catch::Contains("none.txt: no such file"));
  maas::test::write_file(dir / "empty.txt", {});
  CHECK_THAT(error_of([&] { read_text_file(dir / "empty.txt"); }),
             Catch::Contains("empty.txt: the file is empty (no text)"));
  maas::test::write_file(dir / "empty.txt.gz", maas::test::gzip_member({}));
  CHECK_THAT(error_of([&] { read_text_file(dir / "empty.txt.gz"); }),
             Catch::Contains("empty.txt.gz: the file is empty (no text)"));
  maas::test::write_file(dir / "latin1.txt", bytes_of("caf\xE9 au lait"));
  CHECK_THAT(error_of([&] { read_text_file(dir / "latin1.txt"); }),
             Catch::Contains("read_text_file: ") &&
                 Catch::Contains("latin1.txt: invalid UTF-8 at byte 3 (0xe9 0x20 0x61 0x75)"));
  maas::test::write_file(dir / "ten.txt", bytes_of("0123456789"));
  REQUIRE(read_text_file(dir / "ten.txt", 10) == "0123456789");
  CHECK_THAT(error_of([&] { read_text_file(dir / "ten.txt", 9); }),
             Catch::Contains("ten.txt: holds more than max_bytes = 9 bytes (after decompression)"));
  // 64 MiB of zeros in about 64 KB: refused after max_bytes + 1 bytes.
  maas::test::write_gzip_bomb(dir / "bomb.txt.gz", bytes_of("abc"), 64);
  CHECK_THAT(error_of([&] { read_text_file(dir / "bomb.txt.gz", size_t{1} << 20); }),
             Catch::Contains("bomb.txt.gz: holds more than max_bytes = 1048576 bytes"));
}

TEST_CASE("UTF-8 is decoded strictly: Unicode's well-formed sequences only", "[data][text]") {
  const CharTokenizer tok = CharTokenizer::from_text("a");
  const auto utf8_error = [&](const std::string& s) { return error_of([&] { CharTokenizer::from_text(s); }); };
  // Stray continuation byte, bytes never used, overlong forms, surrogates,
  // above U+10FFFF, sequences cut short (at the end and mid-text).
  CHECK(utf8_error("ab\x80") == "CharTokenizer::from_text: invalid UTF-8 at byte 2 (0x80)");
  CHECK(utf8_error("\xFF") == "CharTokenizer::from_text: invalid UTF-8 at byte 0 (0xff)");
  CHECK(utf8_error("\xC0\x80") == "CharTokenizer::from_text: invalid UTF-8 at byte 0 (0xc0 0x80)");
  CHECK(utf8_error("\xC1\xBF") == "CharTokenizer::from_text: invalid UTF-8 at byte 0 (0xc1 0xbf)");
  CHECK(utf8_error("\xE0\x9F\xBF") == "CharTokenizer::from_text: invalid UTF-8 at byte 0 (0xe0 0x9f 0xbf)");
  CHECK(utf8_error("\xF0\x8F\xBF\xBF") ==
        "CharTokenizer::from_text: invalid UTF-8 at byte 0 (0xf0 0x8f 0xbf 0xbf)");
  CHECK(utf8_error("x\xED\xA0\x80") == "CharTokenizer::from_text: invalid UTF-8 at byte 1 (0xed 0xa0 0x80)");
  CHECK(utf8_error("\xF4\x90\x80\x80") ==
        "CharTokenizer::from_text: invalid UTF-8 at byte 0 (0xf4 0x90 0x80 0x80)");
  CHECK(utf8_error("\xF5\x80\x80\x80") ==
        "CharTokenizer::from_text: invalid UTF-8 at byte 0 (0xf5 0x80 0x80 0x80)");
  CHECK(utf8_error("ok\xE2\x82") == "CharTokenizer::from_text: invalid UTF-8 at byte 2 (0xe2 0x82)");
  CHECK(utf8_error("\xE2\x82x") == "CharTokenizer::from_text: invalid UTF-8 at byte 0 (0xe2 0x82 0x78)");
  CHECK_THAT(error_of([&] { tok.encode("a\xC3"); }),
             Catch::Equals("CharTokenizer::encode: invalid UTF-8 at byte 1 (0xc3)"));
  // The edges that are valid: U+007F, U+0080, U+07FF, U+0800, U+D7FF,
  // U+E000, U+FFFF, U+10000, U+10FFFF.
  const CharTokenizer edges = CharTokenizer::from_text(
      "\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF");
  REQUIRE(edges.vocabulary() ==
          std::vector<char32_t>{0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF});
}

TEST_CASE("CharTokenizer: the sorted distinct characters, encode and decode", "[data][text]") {
  const std::string text = "b\xC3\xA9\x62 a\n\xF0\x9F\x98\x80";  // "béb a\n😀"
  const CharTokenizer tok = CharTokenizer::from_text(text);
  REQUIRE(tok.vocab_size() == 6);
  REQUIRE(tok.vocabulary() == std::vector<char32_t>{'\n', ' ', 'a', 'b', 0xE9, 0x1F600});
  REQUIRE(tok.encode(text) == std::vector<int32_t>{3, 4, 3, 1, 2, 0, 5});
  REQUIRE(tok.decode({3, 4, 3, 1, 2, 0, 5}) == text);
  REQUIRE(tok.encode("").empty());
  REQUIRE(tok.decode({}).empty());

  // A vocabulary given in any order keeps it.
  const CharTokenizer given({'z', 0xE9, 'a'});
  REQUIRE(given.encode("a\xC3\xA9z") == std::vector<int32_t>{2, 1, 0});
}

TEST_CASE("CharTokenizer: characters outside the vocabulary, bad ids, bad vocabularies", "[data][text]") {
  const CharTokenizer tok = CharTokenizer::from_text("abc\n");
  CHECK(error_of([&] { tok.encode("cab!"); }) ==
        "CharTokenizer::encode: character '!' (U+0021) at position 3 (byte 3) is not in the vocabulary of 4 "
        "characters");
  CHECK(error_of([&] { tok.encode("a\xC3\xA9\x62"); }) ==
        "CharTokenizer::encode: character '\xC3\xA9' (U+00E9) at position 1 (byte 1) is not in the vocabulary of "
        "4 characters");
  CHECK(error_of([&] { tok.encode("ab\t"); }) ==
        "CharTokenizer::encode: character '\\t' (U+0009) at position 2 (byte 2) is not in the vocabulary of 4 "
        "characters");
  CHECK(error_of([&] { tok.encode(std::string("a\0", 2)); }) ==
        "CharTokenizer::encode: character U+0000 at position 1 (byte 1) is not in the vocabulary of 4 characters");
  CHECK(error_of([&] { tok.decode({0, 4}); }) ==
        "CharTokenizer::decode: id 4 at position 1 is outside the vocabulary [0, 4)");
  CHECK(error_of([&] { tok.decode({-1}); }) ==
        "CharTokenizer::decode: id -1 at position 0 is outside the vocabulary [0, 4)");
  CHECK(error_of([] { CharTokenizer::from_text(""); }) == "CharTokenizer::from_text: the text is empty");
  CHECK(error_of([] { CharTokenizer({}); }) == "CharTokenizer: the vocabulary is empty");
  CHECK(error_of([] { CharTokenizer({'a', 'b', 'a'}); }) ==
        "CharTokenizer: character 'a' (U+0061) appears twice in the vocabulary (entries 0 and 2)");
  CHECK(error_of([] { CharTokenizer({0xE9, 'b', 0xE9}); }) ==
        "CharTokenizer: character '\xC3\xA9' (U+00E9) appears twice in the vocabulary (entries 0 and 2)");
  CHECK(error_of([] { CharTokenizer({'a', 0xD800}); }) ==
        "CharTokenizer: vocabulary entry 1 (U+D800) is not a Unicode character");
  CHECK(error_of([] { CharTokenizer({0x110000}); }) ==
        "CharTokenizer: vocabulary entry 0 (U+110000) is not a Unicode character");
}

TEST_CASE("CharTokenizer: JSON out and back", "[data][text]") {
  const CharTokenizer tok = CharTokenizer::from_text("hi \"there\"\n\xC3\xA9\xF0\x9F\x98\x80");
  const std::string json = tok.to_json();
  REQUIRE(json == "{\"class_name\":\"CharTokenizer\",\"vocabulary\":[\"\\n\",\" \",\"\\\"\",\"e\",\"h\",\"i\","
                  "\"r\",\"t\",\"\xC3\xA9\",\"\xF0\x9F\x98\x80\"]}");
  const CharTokenizer back = CharTokenizer::from_json(json);
  REQUIRE(back.vocabulary() == tok.vocabulary());
  REQUIRE(back.to_json() == json);
  // Escapes are read as JSON reads them; a NUL character is a character.
  const CharTokenizer escaped =
      CharTokenizer::from_json(R"({"vocabulary": ["\u0000", "\u00e9", "\ud83d\ude00"],
                                   "class_name": "CharTokenizer"})");
  REQUIRE(escaped.vocabulary() == std::vector<char32_t>{0, 0xE9, 0x1F600});
}

TEST_CASE("CharTokenizer::from_json refuses what to_json does not write", "[data][text]") {
  const auto error = [](const std::string& json) { return error_of([&] { CharTokenizer::from_json(json); }); };
  CHECK_THAT(error("{\"class_name\": \"CharTokenizer\", "),
             Catch::StartsWith("CharTokenizer::from_json: not valid JSON: "));
  CHECK_THAT(error("[\"a\"]"), Catch::StartsWith("CharTokenizer::from_json: expected a JSON object"));
  CHECK(error(R"({"class_name": "Tokenizer", "vocabulary": ["a"]})") ==
        "CharTokenizer::from_json: class_name must be \"CharTokenizer\", got \"Tokenizer\"");
  CHECK(error(R"({"vocabulary": ["a"]})") ==
        "CharTokenizer::from_json: class_name must be \"CharTokenizer\", got none");
  CHECK(error(R"({"class_name": "CharTokenizer"})") ==
        "CharTokenizer::from_json: vocabulary must be an array of one-character strings");
  CHECK(error(R"({"class_name": "CharTokenizer", "vocabulary": ["a"], "lower": true})") ==
        "CharTokenizer::from_json: unknown key \"lower\" (expected class_name and vocabulary)");
  CHECK(error(R"({"class_name": "CharTokenizer", "vocabulary": []})") == "CharTokenizer: the vocabulary is empty");
  CHECK(error(R"({"class_name": "CharTokenizer", "vocabulary": ["a", "b", "a"]})") ==
        "CharTokenizer: character 'a' (U+0061) appears twice in the vocabulary (entries 0 and 2)");
  CHECK(error(R"({"class_name": "CharTokenizer", "vocabulary": ["a", "bc"]})") ==
        "CharTokenizer::from_json: vocabulary entry 1 holds 2 characters, not 1");
  CHECK(error(R"({"class_name": "CharTokenizer", "vocabulary": [""]})") ==
        "CharTokenizer::from_json: vocabulary entry 0 holds 0 characters, not 1");
  CHECK(error(R"({"class_name": "CharTokenizer", "vocabulary": ["a", 7]})") ==
        "CharTokenizer::from_json: vocabulary entry 1 is number, not a string");
  CHECK(error(R"({"class_name": "CharTokenizer", "vocabulary": [["a"]]})") ==
        "CharTokenizer::from_json: not a CharTokenizer: arrays or objects nested more than 2 deep");
  // Bytes that are not UTF-8, raw or as a lone surrogate escape.
  CHECK_THAT(error("{\"class_name\": \"CharTokenizer\", \"vocabulary\": [\"\xE9\"]}"),
             Catch::StartsWith("CharTokenizer::from_json: not valid JSON: "));
  CHECK_THAT(error(R"({"class_name": "CharTokenizer", "vocabulary": ["\ud800"]})"),
             Catch::StartsWith("CharTokenizer::from_json: not valid JSON: "));
  // Deep nesting is refused as it is read, and oversized text before.
  CHECK(error(std::string(100000, '[')) ==
        "CharTokenizer::from_json: not a CharTokenizer: arrays or objects nested more than 2 deep");
  CHECK(error(std::string(CharTokenizer::kMaxTokenizerJsonBytes + 1, ' ')) ==
        "CharTokenizer::from_json: 33554433 bytes is over the limit of 33554432 bytes");
}

TEST_CASE("TokenWindows: sample i is the T tokens from i, its target the T after them", "[data][text]") {
  const TokenWindows w({10, 11, 12, 13, 14, 15}, 3);
  REQUIRE(w.size() == 3);
  REQUIRE(w.block_size() == 3);
  REQUIRE(w.sample_shape() == Shape{3});
  Tensor x, y;
  w.get_batch({2, 0, 2}, x, y);
  REQUIRE(x.shape() == Shape{3, 3});
  REQUIRE(y.shape() == Shape{3, 3});
  REQUIRE(values(x) == std::vector<float>{12, 13, 14, 10, 11, 12, 12, 13, 14});
  REQUIRE(values(y) == std::vector<float>{13, 14, 15, 11, 12, 13, 13, 14, 15});

  const TokenWindows from_tensor(Tensor::from_vector({10, 11, 12, 13, 14, 15}, {6}), 3);
  REQUIRE(from_tensor.tokens() == w.tokens());

  CHECK(error_of([&] { w.get_batch({3}, x, y); }) ==
        "TokenWindows::get_batch: index 3 (batch position 0) is out of range for 3 windows");
  CHECK(error_of([] { TokenWindows({1, 2, 3}, 3); }) ==
        "TokenWindows: a stream of 3 tokens is too short for block_size 3: it needs at least 4 (one window and its "
        "next token)");
  CHECK(error_of([] { TokenWindows({1, 2}, 0); }) == "TokenWindows: block_size must be >= 1, got 0");
  CHECK(error_of([] { TokenWindows({1, -2, 3}, 1); }) ==
        "TokenWindows: token -2 at position 1 is outside [0, 2^24)");
  CHECK(error_of([] { TokenWindows({1, 1 << 24}, 1); }) ==
        "TokenWindows: token 16777216 at position 1 is outside [0, 2^24)");
  CHECK(error_of([] { TokenWindows(Tensor::from_vector({1, 2.5f, 3}, {3}), 1); }) ==
        "TokenWindows: token 2.5 at position 1 is not a whole number in [0, 2^24)");
  CHECK(error_of([] { TokenWindows(Tensor::zeros({2, 3}), 1); }) ==
        "TokenWindows: the tokens must be a 1-D tensor, got [2,3]");
}

TEST_CASE("TokenWindows::sample_batch: uniform offsets from the generator, repeatable", "[data][text]") {
  std::vector<int32_t> tokens(1000);
  for (size_t k = 0; k < tokens.size(); ++k) tokens[k] = static_cast<int32_t>(k % 97);
  const TokenWindows w(tokens, 8);
  Generator gen(1337), same(1337), by_hand(1337);
  Tensor x, y, x2, y2;
  w.sample_batch(4, gen, x, y);
  w.sample_batch(4, same, x2, y2);
  REQUIRE(x.shape() == Shape{4, 8});
  REQUIRE(values(x) == values(x2));
  REQUIRE(values(y) == values(y2));
  // The offsets are the generator's next 4 draws modulo size() = 992.
  std::vector<int64_t> offsets(4);
  for (int64_t& o : offsets) o = static_cast<int64_t>(by_hand.engine()() % 992);
  Tensor hx, hy;
  w.get_batch(offsets, hx, hy);
  REQUIRE(values(x) == values(hx));
  REQUIRE(values(y) == values(hy));
  // The generator moved on: the next batch differs.
  w.sample_batch(4, gen, x2, y2);
  REQUIRE(values(x) != values(x2));
  CHECK(error_of([&] { w.sample_batch(0, gen, x, y); }) == "TokenWindows::sample_batch: batch must be >= 1, got 0");
}

TEST_CASE("split_tokens: the first fraction trains, the rest validates", "[data][text]") {
  const std::vector<int32_t> tokens{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const TokenSplit s = split_tokens(tokens, 0.9);
  REQUIRE(s.train == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8});
  REQUIRE(s.validation == std::vector<int32_t>{9});
  REQUIRE(split_tokens(tokens, 0.25).train.size() == 2);  // floor(2.5)
  CHECK(error_of([&] { split_tokens(tokens, 1.0); }) == "split_tokens: train_fraction must be in (0, 1), got 1");
  CHECK(error_of([&] { split_tokens(tokens, 0.0); }) == "split_tokens: train_fraction must be in (0, 1), got 0");
  CHECK(error_of([&] { split_tokens(tokens, 0.05); }) ==
        "split_tokens: 10 tokens split at 0.05 leave 0 to train and 10 to validate; each part needs at least one");
  CHECK(error_of([&] { split_tokens({1}, 0.5); }) ==
        "split_tokens: 1 tokens split at 0.5 leave 0 to train and 1 to validate; each part needs at least one");
}

TEST_CASE("The committed tiny-shakespeare: 1,115,394 bytes of 65 characters, as nanoGPT reads it", "[data][text]") {
  const std::string text = read_text_file(MAAS_SOURCE_DIR "/data/tinyshakespeare/input.txt.gz");
  REQUIRE(text.size() == 1115394);
  const CharTokenizer tok = CharTokenizer::from_text(text);
  REQUIRE(tok.vocab_size() == 65);
  // nanoGPT's data/shakespeare_char/prepare.py prints these, in this order.
  std::string all;
  for (int32_t id = 0; id < 65; ++id) all += tok.decode({id});
  REQUIRE(all == "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  const std::vector<int32_t> ids = tok.encode(text);
  REQUIRE(tok.decode(ids) == text);
  // ... and its split: "train has 1,003,854 tokens", "val has 111,540 tokens".
  const TokenSplit parts = split_tokens(ids, 0.9);
  REQUIRE(parts.train.size() == 1003854);
  REQUIRE(parts.validation.size() == 111540);
}
