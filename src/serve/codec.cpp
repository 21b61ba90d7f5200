// Codec: JSON numbers and images in, JSON out, checked against the model.
#include "serve/codec.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

#include "maas/data/image_folder.hpp"
#include "maas/error.hpp"
#include "serve/log.hpp"

namespace maas::serve {

namespace {

constexpr size_t kMaxDepth = 8;
// Images larger than this are refused before decoding (a small PNG can claim
// a huge size: decoding allocates width x height x channels bytes).
constexpr uint64_t kMaxImagePixels = uint64_t{1} << 24;

float to_float(simdjson::dom::element e, const std::string& what) {
  switch (e.type()) {
    case simdjson::dom::element_type::DOUBLE: return static_cast<float>(double(e));
    case simdjson::dom::element_type::INT64: return static_cast<float>(int64_t(e));
    case simdjson::dom::element_type::UINT64: return static_cast<float>(uint64_t(e));
    case simdjson::dom::element_type::BOOL:
    case simdjson::dom::element_type::STRING:
    case simdjson::dom::element_type::NULL_VALUE:
      throw HttpError(400, what + ": expected numbers (the model takes float32), got " +
                               (e.type() == simdjson::dom::element_type::STRING ? "a string"
                                : e.type() == simdjson::dom::element_type::BOOL ? "a boolean"
                                                                                : "null"));
    default: throw HttpError(400, what + ": expected numbers, got an object or array at the innermost level");
  }
}

// Shape from the first element at each level.
void infer_shape(simdjson::dom::element e, Shape& shape, const std::string& what) {
  while (e.type() == simdjson::dom::element_type::ARRAY) {
    simdjson::dom::array a = e;
    if (shape.size() >= kMaxDepth) throw HttpError(400, what + ": arrays nested deeper than 8 levels");
    shape.push_back(static_cast<int64_t>(a.size()));
    if (a.size() == 0) return;
    e = *a.begin();
  }
}

void fill(simdjson::dom::element e, const Shape& shape, size_t level, std::vector<float>& out, const std::string& what) {
  if (level == shape.size()) {
    out.push_back(to_float(e, what));
    return;
  }
  if (e.type() != simdjson::dom::element_type::ARRAY)
    throw HttpError(400, what + ": ragged array (a number where a list of " + std::to_string(shape[level]) +
                             " was expected at depth " + std::to_string(level) + ")");
  simdjson::dom::array a = e;
  if (static_cast<int64_t>(a.size()) != shape[level])
    throw HttpError(400, what + ": ragged array (" + std::to_string(a.size()) + " elements where the first had " +
                             std::to_string(shape[level]) + ", at depth " + std::to_string(level) + ")");
  for (simdjson::dom::element c : a) fill(c, shape, level + 1, out, what);
}

// Width x height from an image file's header (PNG, BMP, JPEG), read before
// anything is decoded; 0 when the header is not one of those (stb then
// refuses the bytes itself).
uint64_t header_pixels(std::string_view b) {
  auto u8 = [&](size_t i) { return static_cast<uint64_t>(static_cast<uint8_t>(b[i])); };
  auto be16 = [&](size_t i) { return (u8(i) << 8) | u8(i + 1); };
  auto be32 = [&](size_t i) { return (be16(i) << 16) | be16(i + 2); };
  auto le16 = [&](size_t i) { return u8(i) | (u8(i + 1) << 8); };
  auto le32 = [&](size_t i) { return le16(i) | (le16(i + 2) << 16); };
  if (b.size() >= 24 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) return be32(16) * be32(20);
  if (b.size() >= 26 && b[0] == 'B' && b[1] == 'M') {
    if (le32(14) == 12) return le16(18) * le16(20);
    const auto h = static_cast<int32_t>(static_cast<uint32_t>(le32(22)));
    return le32(18) * static_cast<uint64_t>(h < 0 ? -static_cast<int64_t>(h) : h);
  }
  if (b.size() >= 4 && u8(0) == 0xFF && u8(1) == 0xD8) {
    size_t i = 2;
    while (i + 4 <= b.size()) {
      if (u8(i) != 0xFF) return 0;
      const uint64_t marker = u8(i + 1);
      if (marker == 0xFF) { ++i; continue; }
      if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9)) { i += 2; continue; }
      const uint64_t len = be16(i + 2);
      const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (sof && i + 9 <= b.size()) return be16(i + 5) * be16(i + 7);
      if (marker == 0xDA || len < 2) return 0;
      i += 2 + len;
    }
  }
  return 0;
}

}  // namespace

simdjson::dom::element parse_json(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element e;
  const auto err = parser.parse(body.data(), body.size()).get(e);
  if (err) throw HttpError(400, std::string("malformed JSON: ") + simdjson::error_message(err));
  return e;
}

Dense nested_numbers(simdjson::dom::element e, const std::string& what, size_t limit) {
  Dense d;
  infer_shape(e, d.shape, what);
  size_t n = 1;
  for (int64_t dim : d.shape) {
    if (dim != 0 && n > limit / static_cast<size_t>(dim))
      throw HttpError(400, what + ": ragged array (its shape " + to_string(d.shape) +
                               ", from the first element at each level, holds more numbers than the body)");
    n *= static_cast<size_t>(dim);
  }
  d.data.reserve(n);
  fill(e, d.shape, 0, d.data, what);
  return d;
}

void flat_numbers(simdjson::dom::element e, std::vector<float>& out, size_t limit, const std::string& what) {
  if (e.type() != simdjson::dom::element_type::ARRAY) {
    if (out.size() >= limit) throw HttpError(400, what + ": more values than the shape holds");
    out.push_back(to_float(e, what));
    return;
  }
  for (simdjson::dom::element c : simdjson::dom::array(e)) flat_numbers(c, out, limit, what);
}

std::string batch_shape(const Shape& sample) {
  std::string s = "[-1";
  for (int64_t d : sample) s += "," + std::to_string(d);
  return s + "]";
}

void require_tensor_model(const ServedModel& m) {
  if (m.generation != nullptr)
    throw HttpError(400, "model '" + m.name + "' is a language model: it takes text at POST /v1/completions or "
                         "/v1/chat/completions, not tensors");
}

Tensor to_model_input(const ServedModel& m, Dense&& x) {
  require_tensor_model(m);
  const Shape& k = m.keras_input;
  Shape shape = x.shape;
  if (shape == k) shape.insert(shape.begin(), 1);  // one sample without its batch dimension
  if (shape.size() != k.size() + 1 || !std::equal(k.begin(), k.end(), shape.begin() + 1))
    throw HttpError(400, "input shape " + to_string(x.shape) + " does not match model '" + m.name +
                             "', which takes " + batch_shape(k) + " (or one sample " + to_string(k) + ")");
  const int64_t n = shape[0];
  if (n < 1) throw HttpError(400, "the input holds no samples");
  Shape full = m.input;
  full.insert(full.begin(), n);
  Tensor t = Tensor::empty(full);
  float* dst = t.data();
  if (k.size() == 3) {  // NHWC -> NCHW
    const int64_t H = k[0], W = k[1], C = k[2];
    for (int64_t b = 0; b < n; ++b) {
      const float* src = x.data.data() + b * H * W * C;
      float* out = dst + b * C * H * W;
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t c = 0; c < C; ++c) out[(c * H + h) * W + w] = src[(h * W + w) * C + c];
    }
  } else {
    std::memcpy(dst, x.data.data(), x.data.size() * sizeof(float));
  }
  return t;
}

Tensor image_input(const ServedModel& m, std::string_view bytes) {
  require_tensor_model(m);
  if (m.input.size() != 3 || (m.input[0] != 1 && m.input[0] != 3))
    throw HttpError(400, "model '" + m.name + "' takes " + batch_shape(m.keras_input) +
                             ", not images (a model taking images has input [H, W, 1] or [H, W, 3])");
  const uint64_t pixels_in = header_pixels(bytes);
  if (pixels_in > kMaxImagePixels)
    throw HttpError(400, "the image has " + std::to_string(pixels_in) + " pixels; at most " +
                             std::to_string(kMaxImagePixels) + " (4096 x 4096) are decoded");
  data::ImageFolderOptions o;
  o.channels = m.input[0];
  o.height = m.input[1];
  o.width = m.input[2];
  std::vector<uint8_t> pixels;
  try {
    pixels = data::decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), o, "image");
  } catch (const Error& e) {
    throw HttpError(400, std::string("cannot decode the image (PNG, JPEG or BMP expected): ") + e.what());
  }
  Shape s = m.input;
  s.insert(s.begin(), 1);
  Tensor t = Tensor::empty(s);
  float* dst = t.data();
  for (size_t i = 0; i < pixels.size(); ++i) dst[i] = static_cast<float>(pixels[i]) / 255.f;
  return t;
}

std::string base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '\n' || c == '\r') continue;
    const int v = value(c);
    if (v < 0) throw HttpError(400, "b64: invalid base64 character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6) throw HttpError(400, "b64: truncated base64 text");
  return out;
}

Tensor stack_rows(const std::vector<Tensor>& rows) {
  if (rows.size() == 1) return rows[0];
  Shape s = rows[0].shape();
  int64_t n = 0;
  for (const Tensor& r : rows) n += r.size(0);
  s[0] = n;
  Tensor t = Tensor::empty(s);
  float* dst = t.data();
  for (const Tensor& r : rows) {
    std::memcpy(dst, r.data(), static_cast<size_t>(r.numel()) * sizeof(float));
    dst += r.numel();
  }
  return t;
}

Tensor to_keras_output(const ServedModel& m, const Tensor& y) {
  if (m.output.size() != 3) return y;
  const int64_t n = y.size(0), C = m.output[0], H = m.output[1], W = m.output[2];
  Tensor t = Tensor::empty({n, H, W, C});
  const float* src = y.data();
  float* dst = t.data();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          dst[((b * H + h) * W + w) * C + c] = src[((b * C + c) * H + h) * W + w];
  return t;
}

JsonOut& JsonOut::str(std::string_view t) {
  s += json_string(std::string(t));
  return *this;
}

namespace {
// The shortest text that reads back as `v` (std::to_chars); NaN and the
// infinities as TensorFlow Serving writes them.
template <typename T>
JsonOut& append_real(JsonOut& out, T v) {
  if (std::isnan(v)) return out.raw("NaN");
  if (std::isinf(v)) return out.raw(v > 0 ? "Infinity" : "-Infinity");
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.s.append(buf, r.ptr);
  return out;
}
}  // namespace

JsonOut& JsonOut::num(float v) { return append_real(*this, v); }
JsonOut& JsonOut::num(double v) { return append_real(*this, v); }

JsonOut& JsonOut::integer(int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, r.ptr);
  return *this;
}

JsonOut& JsonOut::flat(const float* data, int64_t n) {
  s += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (i) s += ',';
    num(data[i]);
  }
  s += ']';
  return *this;
}

JsonOut& JsonOut::nested(const float* data, const Shape& shape) {
  if (shape.empty()) return num(data[0]);
  if (shape.size() == 1) return flat(data, shape[0]);
  const Shape inner(shape.begin() + 1, shape.end());
  const int64_t step = numel(inner);
  s += '[';
  for (int64_t i = 0; i < shape[0]; ++i) {
    if (i) s += ',';
    nested(data + i * step, inner);
  }
  s += ']';
  return *this;
}

JsonOut& JsonOut::shape(const Shape& sh) {
  s += '[';
  for (size_t i = 0; i < sh.size(); ++i) {
    if (i) s += ',';
    integer(sh[i]);
  }
  s += ']';
  return *this;
}

std::string error_json(const std::string& message) { return "{\"error\":" + json_string(message) + "}"; }

}  // namespace maas::serve
