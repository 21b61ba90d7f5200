// The Open Inference Protocol (KServe v2, Triton):
//   GET  /v2/health/live, /v2/health/ready
//   GET  /v2/models/NAME[/versions/V]          metadata (inputs, outputs, versions)
//   GET  /v2/models/NAME[/versions/V]/ready
//   POST /v2/models/NAME[/versions/V]/infer
//        {"inputs": [{"name", "shape", "datatype", "data": [flat]}]}
//        -> {"model_name", "model_version", "outputs": [{"name", "shape", "datatype", "data"}]}
// Triton's binary tensor extension: with the header
// Inference-Header-Content-Length: N, the body's first N bytes are the JSON
// and an input with "parameters": {"binary_data_size": K} takes its data
// from the next K bytes (FP32, little-endian). Outputs come back in binary
// the same way when the request asks ("binary_data_output": true in the
// request's parameters, or "binary_data": true in an output's).
#include "serve/api.hpp"

#include <charconv>
#include <cstring>
#include <vector>

namespace maas::serve {

namespace {

struct Target {
  std::string name, version, verb;  // verb: "infer", "ready", "generate", "generate_stream" or ""
};

Target parse_target(std::string rest) {
  Target t;
  for (const char* verb : {"/infer", "/ready", "/generate", "/generate_stream"}) {
    const size_t n = std::strlen(verb);
    if (rest.size() > n && rest.compare(rest.size() - n, n, verb) == 0) {
      t.verb = verb + 1;
      rest.resize(rest.size() - n);
      break;
    }
  }
  const size_t v = rest.find("/versions/");
  if (v != std::string::npos) {
    t.version = rest.substr(v + 10);
    rest.resize(v);
  }
  t.name = rest;
  return t;
}

void tensor_meta(JsonOut& o, const char* name, const Shape& sample) {
  Shape s = sample;
  s.insert(s.begin(), -1);
  o.raw("{\"name\":").str(name).raw(",\"datatype\":\"FP32\",\"shape\":").shape(s).raw("}");
}

bool flag(simdjson::dom::element obj, const char* params_key, const char* key) {
  simdjson::dom::element p, v;
  bool b = false;
  return obj.type() == simdjson::dom::element_type::OBJECT && !obj[params_key].get(p) &&
         p.type() == simdjson::dom::element_type::OBJECT && !p[key].get(v) && !v.get(b) && b;
}

// The model's output for `x` (its layout) as the response's one output, in
// Keras' layout: its data in JSON, or after the JSON in binary.
void reply_outputs(httplib::Response& res, const ServedModel& m, const Tensor& x, bool binary_out) {
  const Tensor y = to_keras_output(m, predict(m, x));
  JsonOut out;
  out.raw("{\"model_name\":").str(m.name).raw(",\"model_version\":\"").integer(m.version);
  out.raw("\",\"outputs\":[{\"name\":\"output\",\"datatype\":\"FP32\",\"shape\":").shape(y.shape());
  if (binary_out) {
    const size_t bytes = static_cast<size_t>(y.numel()) * sizeof(float);
    out.raw(",\"parameters\":{\"binary_data_size\":").integer(static_cast<int64_t>(bytes)).raw("}}]}");
    res.set_header("Inference-Header-Content-Length", std::to_string(out.s.size()));
    std::string body = std::move(out.s);
    body.append(reinterpret_cast<const char*>(y.data()), bytes);
    res.status = 200;
    res.set_content(std::move(body), "application/octet-stream");
    return;
  }
  out.raw(",\"data\":").flat(y.data(), y.numel()).raw("}]}");
  reply_json(res, std::move(out.s));
}

void infer_route(const Context& ctx, const Target& t, const httplib::Request& req, httplib::Response& res) {
  const auto m = find_model(ctx, t.name, t.version);
  if (req.get_header_value("Content-Type").rfind("image/", 0) == 0)
    return reply_outputs(res, *m, image_input(*m, req.body), false);
  // The JSON part, and the binary part after it.
  std::string_view json = req.body, binary;
  if (req.has_header("Inference-Header-Content-Length")) {
    const std::string h = req.get_header_value("Inference-Header-Content-Length");
    size_t n = 0;
    const auto r = std::from_chars(h.data(), h.data() + h.size(), n);
    if (r.ec != std::errc() || r.ptr != h.data() + h.size() || n > req.body.size())
      throw HttpError(400, "Inference-Header-Content-Length " + h + " is not a length within the body (" +
                               std::to_string(req.body.size()) + " bytes)");
    json = std::string_view(req.body).substr(0, n);
    binary = std::string_view(req.body).substr(n);
  }
  const simdjson::dom::element doc = parse_json(json);
  simdjson::dom::element inputs;
  if (doc.type() != simdjson::dom::element_type::OBJECT || doc["inputs"].get(inputs) ||
      inputs.type() != simdjson::dom::element_type::ARRAY)
    throw HttpError(400, "the body must be a JSON object with \"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]");
  simdjson::dom::array in = inputs;
  if (in.size() != 1) throw HttpError(400, "model '" + m->name + "' has one input; the request gives " +
                                             std::to_string(in.size()));
  const simdjson::dom::element input = *in.begin();
  simdjson::dom::element shape_e, type_e, data_e;
  std::string_view dtype;
  if (input.type() != simdjson::dom::element_type::OBJECT || input["shape"].get(shape_e) ||
      shape_e.type() != simdjson::dom::element_type::ARRAY || input["datatype"].get(type_e) || type_e.get(dtype))
    throw HttpError(400, "an input needs \"shape\" (a list of integers) and \"datatype\"");
  Dense d;
  size_t count = 1;
  for (simdjson::dom::element s : simdjson::dom::array(shape_e)) {
    int64_t v = 0;
    if (s.get(v) || v < 0 || d.shape.size() >= 8) throw HttpError(400, "\"shape\" must be up to 8 integers >= 0");
    if (v != 0 && count > (req.body.size() + 1) / static_cast<size_t>(v))
      throw HttpError(400, "\"shape\" " + to_string(d.shape) + "... holds more values than the body");
    count *= static_cast<size_t>(v);
    d.shape.push_back(v);
  }
  const bool numeric = dtype == "FP32" || dtype == "FP64" || dtype == "FP16" || dtype == "INT8" ||
                       dtype == "INT16" || dtype == "INT32" || dtype == "INT64" || dtype == "UINT8" ||
                       dtype == "UINT16" || dtype == "UINT32" || dtype == "UINT64";
  if (!numeric)
    throw HttpError(400, "datatype " + std::string(dtype) + " is not supported: model '" + m->name +
                             "' takes FP32 (JSON data may be any numeric type)");
  simdjson::dom::element bsize;
  simdjson::dom::element params;
  uint64_t binary_size = 0;
  const bool is_binary = !input["parameters"].get(params) && params.type() == simdjson::dom::element_type::OBJECT &&
                         !params["binary_data_size"].get(bsize) && !bsize.get(binary_size);
  if (is_binary) {
    if (dtype != "FP32") throw HttpError(400, "binary data must be FP32, got " + std::string(dtype));
    if (binary_size != count * sizeof(float) || binary_size > binary.size())
      throw HttpError(400, "binary_data_size " + std::to_string(binary_size) + " does not match shape " +
                               to_string(d.shape) + " in FP32 (" + std::to_string(count * sizeof(float)) +
                               " bytes) within the " + std::to_string(binary.size()) + " bytes after the header");
    d.data.resize(count);
    std::memcpy(d.data.data(), binary.data(), binary_size);
  } else {
    if (input["data"].get(data_e)) throw HttpError(400, "the input has no \"data\"");
    d.data.reserve(count);
    flat_numbers(data_e, d.data, count, "data");
    if (d.data.size() != count)
      throw HttpError(400, "\"data\" holds " + std::to_string(d.data.size()) + " values; shape " +
                               to_string(d.shape) + " needs " + std::to_string(count));
  }
  const Tensor x = to_model_input(*m, std::move(d));
  bool binary_out = flag(doc, "parameters", "binary_data_output");
  simdjson::dom::element outputs;
  if (!doc["outputs"].get(outputs) && outputs.type() == simdjson::dom::element_type::ARRAY)
    for (simdjson::dom::element o : simdjson::dom::array(outputs)) binary_out = binary_out || flag(o, "parameters", "binary_data");
  reply_outputs(res, *m, x, binary_out);
}

void metadata_route(const Context& ctx, const Target& t, httplib::Response& res) {
  const auto m = find_model(ctx, t.name, t.version);
  JsonOut out;
  out.raw("{\"name\":").str(m->name).raw(",\"versions\":[");
  bool first = true;
  for (int64_t v : ctx.repo.versions(m->name)) {
    if (!first) out.raw(",");
    first = false;
    out.raw("\"").integer(v).raw("\"");
  }
  out.raw("],\"platform\":\"maas_h5\",\"inputs\":[");
  tensor_meta(out, "input", m->keras_input);
  out.raw("],\"outputs\":[");
  tensor_meta(out, "output", m->keras_output);
  out.raw("]}");
  reply_json(res, std::move(out.s));
}

void health_live(const Context&, const httplib::Request&, httplib::Response& res) { reply_json(res, "{\"live\":true}"); }

void health_ready(const Context& ctx, const httplib::Request&, httplib::Response& res) {
  const bool ready = !ctx.repo.names().empty();
  reply_json(res, ready ? "{\"ready\":true}" : "{\"ready\":false}", ready ? 200 : 503);
}

void server_metadata(const Context&, const httplib::Request&, httplib::Response& res) {
  reply_json(res, "{\"name\":\"maas-serve\",\"version\":\"0.1.0\",\"extensions\":[\"binary_tensor_data\"]}");
}

// GET: the model's metadata, or /ready.
void get_model(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const Target t = parse_target(req.matches[1]);
  note().model = ctx.repo.has(t.name) ? t.name : "";
  if (t.verb == "ready") {
    const auto m = find_model(ctx, t.name, t.version);
    return reply_json(res, "{\"name\":" + json_string(m->name) + ",\"ready\":true}");
  }
  if (!t.verb.empty()) throw HttpError(404, "GET " + t.verb + " is not served; POST it");
  metadata_route(ctx, t, res);
}

// POST: only /infer.
void post_model(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const Target t = parse_target(req.matches[1]);
  note().model = ctx.repo.has(t.name) ? t.name : "";
  if (t.verb == "generate" || t.verb == "generate_stream")
    return generate_route(find_model(ctx, t.name, t.version), t.verb == "generate_stream", req, res);
  if (t.verb != "infer")
    throw HttpError(404, "unknown method: POST /v2/models/NAME[/versions/V]/infer (or, for a language model, "
                         "/generate and /generate_stream) is served");
  infer_route(ctx, t, req, res);
}

}  // namespace

Api kserve_api() {
  Api a;
  a.label = "v2";
  a.endpoint = "/v2/models/NAME/infer";
  a.help = "the Open Inference Protocol (/v2/models/NAME/infer; /generate and /generate_stream for a language "
           "model)";
  a.paths = "/v2/";
  a.open = "/v2/health/";
  a.routes = {{Method::Get, "/v2/health/live", health_live},
              {Method::Get, "/v2/health/ready", health_ready},
              {Method::Get, "/v2", server_metadata},
              {Method::Get, R"(/v2/models/(.+))", get_model},
              {Method::Post, R"(/v2/models/(.+))", post_model}};
  return a;
}

}  // namespace maas::serve
