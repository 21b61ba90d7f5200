// What the protocol adapters (api_tfserving.cpp, api_kserve.cpp,
// api_plain.cpp) share: the repository, the predict call, error replies.
// Each adapter turns its requests into (model, version, input rows), calls
// predict(), and writes the result back in its own JSON.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

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

// Per request, for the metrics and the log line written once it is
// answered (the request's own thread, from routing to the log).
struct RequestNote {
  std::string api, model;
  int64_t version = 0;
  std::chrono::steady_clock::time_point start{};
  bool started = false;
};
RequestNote& note();

// The model `name` at `version` ("" = the highest); 404 if unknown.
std::shared_ptr<ServedModel> find_model(const Context& ctx, const std::string& name, const std::string& version);
// Runs `input` (the model's layout) through the model's batcher and returns
// its output in Keras' layout; 503 when the queue is full.
Tensor predict(const ServedModel& m, const Tensor& input);
// Runs fn; a HttpError (or any error) becomes its status and {"error": ...}.
void guarded(httplib::Response& res, const std::function<void()>& fn);
void reply_json(httplib::Response& res, std::string body, int status = 200);

void add_tfserving_routes(httplib::Server& http, const Context& ctx);
void add_kserve_routes(httplib::Server& http, const Context& ctx);
void add_plain_routes(httplib::Server& http, const Context& ctx);

}  // namespace maas::serve
