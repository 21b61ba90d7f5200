// The shared layer between the transport (server.cpp) and the protocol
// adapters (api_*.cpp): the endpoint table, the request's note, and the
// helpers every adapter uses (the model lookup, the predict call, the
// replies).
//
// A request runs one way: server.cpp hands it to handle(), which calls the
// adapter's route; the adapter turns the protocol into a model and input rows
// in the model's layout (codec.hpp), predict() runs them through the model's
// batcher, and the adapter turns the output back into Keras' layout and its
// own JSON. Nothing on that path calls back into server.cpp.
//
// Adding an endpoint: a route in its adapter's table entry. Adding an API: a
// file api_NAME.cpp defining `Api NAME_api()`, listed once in apis()
// (api.cpp). The routes, the 404 text, the metrics label and --help all come
// from the table.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <httplib.h>

#include "maas/serve.hpp"
#include "serve/codec.hpp"
#include "serve/log.hpp"
#include "serve/metrics.hpp"
#include "serve/repository.hpp"

namespace maas::serve {

struct Context {
  ModelRepository& repo;
  Metrics& metrics;
  const Log& log;
  const ServeOptions& options;
};

enum class Method { Get, Post };

// One route: an HTTP method, cpp-httplib's path pattern (a regex; its groups
// are in req.matches) and the handler. A handler may throw HttpError (or any
// error): handle() turns it into the status and {"error": ...}.
struct Route {
  using Handler = void (*)(const Context& ctx, const httplib::Request& req, httplib::Response& res);
  Method method;
  std::string pattern;
  Handler handler;
};

// One API (a protocol adapter) in the endpoint table.
struct Api {
  std::string label;     // the "api" label of its requests in metrics and log lines: "v1"
  std::string endpoint;  // its endpoint in the 404 text: "/v1/models/NAME:predict"
  std::string help;      // its phrase in --help, naming the endpoint: "TensorFlow Serving's REST API (...)"
  // Requests no route answers (404, 401, 413) count under `label` when their
  // path is `paths`, or lies under it if it ends in '/'; empty: none do.
  std::string paths;
  std::string open;      // paths under this prefix need no --token; empty: none
  bool timed = true;     // its requests go into the latency histogram
  std::vector<Route> routes;
};

// The endpoint table, in the order the APIs are listed in --help and the 404.
const std::vector<Api>& apis();
// "/v1/models/NAME:predict, /v2/models/NAME/infer, ...": each API's endpoint.
std::string endpoint_list();
// Whether `path` needs the bearer token (when one is set).
bool needs_token(const std::string& path);

// Per request, for the metrics and the log line written once it is
// answered (the request's own thread, from routing to the log).
struct RequestNote {
  const Api* api = nullptr;  // the API whose route answered
  std::string model;
  int64_t version = 0;
  std::chrono::steady_clock::time_point start{};
  bool started = false;
};
RequestNote& note();
// A new note for the request arriving on this thread (before routing).
void begin_request();
// Runs `route` of `api` for the request: notes the API; a HttpError (or
// any error) becomes its status and {"error": ...}.
void handle(const Context& ctx, const Api& api, const Route& route, const httplib::Request& req,
            httplib::Response& res);
// After each answer: the request counter, the latency histogram, the log line.
void record(const Context& ctx, const httplib::Request& req, const httplib::Response& res);

// The model `name` at `version` ("" = the highest); 404 if unknown.
std::shared_ptr<ServedModel> find_model(const Context& ctx, const std::string& name, const std::string& version);
// Runs `input` ([N, input...], the model's layout) through the model's
// batcher and returns its output in the model's layout; 503 when the queue is
// full. The adapter converts both ways: to_model_input() or image_input()
// before, to_keras_output() after.
Tensor predict(const ServedModel& m, const Tensor& input);
void reply_json(httplib::Response& res, std::string body, int status = 200);
// The Open Inference Protocol's generate extension for language model `m`
// (api_openai.cpp): {"text_input", "parameters": {...}} -> {"model_name",
// "model_version", "text_output"}, or with `stream` one such event per token.
void generate_route(const std::shared_ptr<ServedModel>& m, bool stream, const httplib::Request& req,
                    httplib::Response& res);

}  // namespace maas::serve
