// Codec: the pieces every protocol adapter shares. Numbers out of JSON
// (simdjson) into a flat array with its shape, checked against a model's
// input and put in its layout; images and base64; outputs back to JSON
// (std::to_chars) in Keras' layout. Everything read is bounded before it is
// allocated: a JSON array cannot hold more numbers than its text has bytes,
// and images are decoded straight to the model's input size.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "maas/tensor.hpp"
#include "serve/repository.hpp"

namespace maas::serve {

// A request that cannot be served: an HTTP status and a message for the
// client ({"error": message}).
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

// Numbers with their shape, in the client's layout.
struct Dense {
  std::vector<float> data;
  Shape shape;
};

// Parses `body` (simdjson, one parser per thread). 400 on malformed JSON.
// The element is valid until the next parse on this thread.
simdjson::dom::element parse_json(std::string_view body);

// A nested array of numbers (or one number) to Dense: every level must be
// rectangular; depth at most 8. `what` names the field in errors ("instances").
// `limit` bounds the count of numbers (the body's size: a number takes at
// least one byte) before anything is allocated.
Dense nested_numbers(simdjson::dom::element e, const std::string& what, size_t limit);
// A flat or nested array of numbers, appended to `out` (KServe's data).
void flat_numbers(simdjson::dom::element e, std::vector<float>& out, size_t limit, const std::string& what);

// 400 when `m` is a language model, which takes text (/v1/completions),
// not tensors: called by to_model_input(), image_input() and predict().
void require_tensor_model(const ServedModel& m);

// Client data ([N, keras_input...], or one sample [keras_input...]) to the
// model's input [N, input...]: 400 naming the expected shape otherwise.
Tensor to_model_input(const ServedModel& m, Dense&& x);
// Image file bytes (PNG, JPEG, BMP) to one model input row [1, C, H, W],
// scaled to [0, 1]: 400 if the model does not take images or the bytes are
// not one.
Tensor image_input(const ServedModel& m, std::string_view bytes);
// Base64 (standard or URL-safe alphabet, padding optional) to bytes; 400 if invalid.
std::string base64_decode(std::string_view text);
// Rows of the same model stacked into one input.
Tensor stack_rows(const std::vector<Tensor>& rows);

// The model's output [N, output...] in Keras' layout (NHWC images).
Tensor to_keras_output(const ServedModel& m, const Tensor& y);
// "[-1,28,28,1]"
std::string batch_shape(const Shape& sample);

// A JSON text builder.
struct JsonOut {
  std::string s;
  JsonOut& raw(std::string_view t) { s.append(t); return *this; }
  JsonOut& str(std::string_view t);
  JsonOut& num(double v);
  JsonOut& num(float v);
  JsonOut& integer(int64_t v);
  // data of `shape` as nested arrays (a 0-d shape: one number).
  JsonOut& nested(const float* data, const Shape& shape);
  JsonOut& flat(const float* data, int64_t n);
  JsonOut& shape(const Shape& shape);
};

std::string error_json(const std::string& message);

}  // namespace maas::serve
