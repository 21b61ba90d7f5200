// TensorFlow Serving's REST API:
//   POST /v1/models/NAME[/versions/V]:predict
//        {"instances": [sample, ...]}  -> {"predictions": [...]}   (row format)
//        {"inputs": [...] | {"name": [...]}} -> {"outputs": [...]} (columnar)
//        a sample may be {"b64": "<image file>"} (or {"name": {"b64": ...}})
//   GET  /v1/models/NAME[/versions/V]            version status
//   GET  /v1/models/NAME[/versions/V]/metadata   signature: input and output shapes
#include "serve/api.hpp"

#include <vector>

namespace maas::serve {

namespace {

struct Target {
  std::string name, version, verb;  // verb: "predict", "metadata" or ""
};

// "NAME[/versions/V][:predict|/metadata]" after /v1/models/.
Target parse_target(std::string rest) {
  Target t;
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos) {
    t.verb = rest.substr(colon + 1);
    rest.resize(colon);
  } else if (rest.size() > 9 && rest.compare(rest.size() - 9, 9, "/metadata") == 0) {
    t.verb = "metadata";
    rest.resize(rest.size() - 9);
  }
  const size_t v = rest.find("/versions/");
  if (v != std::string::npos) {
    t.version = rest.substr(v + 10);
    rest.resize(v);
  }
  t.name = rest;
  return t;
}

void tensor_info(JsonOut& o, const char* name, const Shape& sample) {
  o.str(name).raw(":{\"dtype\":\"DT_FLOAT\",\"tensor_shape\":{\"dim\":[{\"size\":\"-1\",\"name\":\"\"}");
  for (int64_t d : sample) o.raw(",{\"size\":\"").integer(d).raw("\",\"name\":\"\"}");
  o.raw("],\"unknown_rank\":false},\"name\":").str(name).raw("}");
}

// One sample of "instances": numbers, {"b64": ...}, or {"<input name>": either}.
bool is_b64(simdjson::dom::element e, std::string_view& text) {
  simdjson::dom::element b;
  return e.type() == simdjson::dom::element_type::OBJECT && !e["b64"].get(b) && !b.get(text);
}

Tensor rows_of(const ServedModel& m, simdjson::dom::element e, const std::string& what, size_t limit) {
  if (e.type() != simdjson::dom::element_type::ARRAY)
    throw HttpError(400, "\"" + what + "\" must be a list of samples");
  simdjson::dom::array a = e;
  if (a.size() == 0) throw HttpError(400, "\"" + what + "\" holds no samples");
  simdjson::dom::element first = *a.begin();
  if (first.type() == simdjson::dom::element_type::OBJECT) {  // images or named inputs, one per sample
    std::vector<Tensor> rows;
    for (simdjson::dom::element s : a) {
      std::string_view text;
      if (!is_b64(s, text) && s.type() == simdjson::dom::element_type::OBJECT) {
        simdjson::dom::object o = s;
        if (o.size() != 1) throw HttpError(400, "\"" + what + "\": the model has one input; a sample names " +
                                                    std::to_string(o.size()));
        s = (*o.begin()).value;
      }
      if (is_b64(s, text)) {
        rows.push_back(image_input(m, base64_decode(text)));
      } else {
        Dense d = nested_numbers(s, what, limit);
        if (d.shape != m.keras_input)
          throw HttpError(400, "a sample of shape " + to_string(d.shape) + " does not match model '" + m.name +
                                   "', which takes samples of " + to_string(m.keras_input));
        rows.push_back(to_model_input(m, std::move(d)));
      }
    }
    return stack_rows(rows);
  }
  return to_model_input(m, nested_numbers(e, what, limit));
}

// The model's output for `x` (its layout) as {"<key>": rows in Keras' layout};
// `head` opens the object up to the key.
void reply_rows(httplib::Response& res, const char* head, const ServedModel& m, const Tensor& x) {
  const Tensor y = to_keras_output(m, predict(m, x));
  JsonOut out;
  out.raw(head).nested(y.data(), y.shape()).raw("}");
  reply_json(res, std::move(out.s));
}

void predict_route(const Context& ctx, const Target& t, const httplib::Request& req, httplib::Response& res) {
  const auto m = find_model(ctx, t.name, t.version);
  if (req.get_header_value("Content-Type").rfind("image/", 0) == 0)
    return reply_rows(res, "{\"predictions\":", *m, image_input(*m, req.body));
  const simdjson::dom::element doc = parse_json(req.body);
  if (doc.type() != simdjson::dom::element_type::OBJECT)
    throw HttpError(400, "the body must be a JSON object with \"instances\" or \"inputs\"");
  simdjson::dom::element instances, inputs;
  const bool row = !doc["instances"].get(instances);
  const bool col = !doc["inputs"].get(inputs);
  if (row == col) throw HttpError(400, "the body must have exactly one of \"instances\" (row format) or \"inputs\" "
                                       "(columnar format)");
  Tensor x;
  if (row) {
    x = rows_of(*m, instances, "instances", req.body.size());
  } else {
    if (inputs.type() == simdjson::dom::element_type::OBJECT) {
      simdjson::dom::object o = inputs;
      if (o.size() != 1) throw HttpError(400, "\"inputs\": the model has one input; got " + std::to_string(o.size()));
      inputs = (*o.begin()).value;
    }
    std::string_view text;
    if (is_b64(inputs, text)) x = image_input(*m, base64_decode(text));
    else x = rows_of(*m, inputs, "inputs", req.body.size());
  }
  reply_rows(res, row ? "{\"predictions\":" : "{\"outputs\":", *m, x);
}

void status_route(const Context& ctx, const Target& t, httplib::Response& res) {
  const auto m = find_model(ctx, t.name, t.version);
  JsonOut out;
  out.raw("{\"model_version_status\":[");
  bool first = true;
  for (int64_t v : ctx.repo.versions(t.name)) {
    if (!t.version.empty() && v != m->version) continue;
    if (!first) out.raw(",");
    first = false;
    out.raw("{\"version\":\"").integer(v).raw("\",\"state\":\"AVAILABLE\",\"status\":{\"error_code\":\"OK\","
                                             "\"error_message\":\"\"}}");
  }
  out.raw("]}");
  reply_json(res, std::move(out.s));
}

void metadata_route(const Context& ctx, const Target& t, httplib::Response& res) {
  const auto m = find_model(ctx, t.name, t.version);
  JsonOut out;
  out.raw("{\"model_spec\":{\"name\":").str(m->name).raw(",\"signature_name\":\"\",\"version\":\"");
  out.integer(m->version).raw("\"},\"metadata\":{\"signature_def\":{\"signature_def\":{\"serving_default\":{");
  out.raw("\"inputs\":{");
  tensor_info(out, "input", m->keras_input);
  out.raw("},\"outputs\":{");
  tensor_info(out, "output", m->keras_output);
  out.raw("},\"method_name\":\"tensorflow/serving/predict\"}}}}}");
  reply_json(res, std::move(out.s));
}

// POST: only :predict.
void post_model(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const Target t = parse_target(req.matches[1]);
  note().model = ctx.repo.has(t.name) ? t.name : "";
  if (t.verb != "predict")
    throw HttpError(404, "unknown method: POST /v1/models/NAME[/versions/V]:predict is served (" +
                             (t.verb.empty() ? std::string("no :verb given") : ":" + t.verb) + ")");
  predict_route(ctx, t, req, res);
}

// GET: the version status, or /metadata.
void get_model(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  const Target t = parse_target(req.matches[1]);
  note().model = ctx.repo.has(t.name) ? t.name : "";
  if (t.verb == "metadata") return metadata_route(ctx, t, res);
  if (!t.verb.empty()) throw HttpError(404, "unknown method :" + t.verb);
  status_route(ctx, t, res);
}

}  // namespace

Api tfserving_api() {
  Api a;
  a.label = "v1";
  a.endpoint = "/v1/models/NAME:predict";
  a.help = "TensorFlow Serving's REST API (/v1/models/NAME:predict)";
  a.paths = "/v1/";
  a.routes = {{Method::Post, R"(/v1/models/(.+))", post_model}, {Method::Get, R"(/v1/models/(.+))", get_model}};
  return a;
}

}  // namespace maas::serve
