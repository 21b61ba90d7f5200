// The endpoint table and what the adapters share (see api.hpp): the
// request's note and record, the model lookup, the predict call, replies.
#include "serve/api.hpp"

#include <charconv>
#include <exception>
#include <new>

#include "maas/error.hpp"

namespace maas::serve {

// Each adapter's table entry (api_*.cpp), listed once here.
Api tfserving_api();
Api kserve_api();
Api plain_api();
Api openai_api();
Api metrics_api();

const std::vector<Api>& apis() {
  static const std::vector<Api> table{tfserving_api(), kserve_api(), plain_api(), openai_api(), metrics_api()};
  return table;
}

std::string endpoint_list() {
  std::string list;
  for (const Api& a : apis()) list += (list.empty() ? "" : ", ") + a.endpoint;
  return list;
}

namespace {

bool starts_with(const std::string& path, const std::string& prefix) {
  return path.compare(0, prefix.size(), prefix) == 0;
}

// The API a request no route answered counts under (null: "other").
const Api* api_of_path(const std::string& path) {
  for (const Api& a : apis()) {
    if (a.paths.empty()) continue;
    if (a.paths.back() == '/' ? starts_with(path, a.paths) : path == a.paths) return &a;
  }
  return nullptr;
}

}  // namespace

bool needs_token(const std::string& path) {
  for (const Api& a : apis())
    if (!a.open.empty() && starts_with(path, a.open)) return false;
  return true;
}

RequestNote& note() {
  thread_local RequestNote n;
  return n;
}

void begin_request() {
  RequestNote& n = note();
  n = RequestNote{};
  n.start = std::chrono::steady_clock::now();
  n.started = true;
}

void handle(const Context& ctx, const Api& api, const Route& route, const httplib::Request& req,
            httplib::Response& res) {
  note().api = &api;
  try {
    route.handler(ctx, req, res);
  } catch (const HttpError& e) {
    reply_json(res, error_json(e.what()), e.status);
  } catch (const Error& e) {
    reply_json(res, error_json(e.what()), 400);
  } catch (const std::bad_alloc&) {
    reply_json(res, error_json("out of memory"), 503);
  } catch (const std::exception& e) {
    reply_json(res, error_json(std::string("internal error: ") + e.what()), 500);
  }
}

void record(const Context& ctx, const httplib::Request& req, const httplib::Response& res) {
  RequestNote& n = note();
  const Api* api = n.api != nullptr ? n.api : api_of_path(req.path);
  const std::string label = api != nullptr ? api->label : "other";
  double seconds = -1;
  if (n.started) seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - n.start).count();
  ctx.metrics.add("maas_requests_total",
                  labels({{"model", n.model}, {"api", label}, {"code", std::to_string(res.status)}}));
  if (seconds >= 0 && (api == nullptr || api->timed))
    ctx.metrics.observe("maas_request_duration_seconds", labels({{"model", n.model}, {"api", label}}), seconds);
  if (ctx.options.log_json) {
    JsonOut o;
    o.raw("{\"time_unix\":").num(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
    o.raw(",\"method\":").str(req.method).raw(",\"path\":").str(req.path).raw(",\"status\":").integer(res.status);
    o.raw(",\"api\":").str(label).raw(",\"model\":").str(n.model).raw(",\"version\":").integer(n.version);
    o.raw(",\"request_bytes\":").integer(static_cast<int64_t>(req.body.size()));
    o.raw(",\"response_bytes\":").integer(static_cast<int64_t>(res.body.size()));
    o.raw(",\"latency_ms\":").num(seconds >= 0 ? seconds * 1e3 : 0.0);
    o.raw(",\"remote\":").str(req.remote_addr);
    if (res.status >= 400 && res.body.size() < 2048) o.raw(",\"error\":").str(res.body);
    o.raw("}");
    ctx.log.line(o.s);
  }
  n = RequestNote{};
}

std::shared_ptr<ServedModel> find_model(const Context& ctx, const std::string& name, const std::string& version) {
  int64_t v = 0;
  if (!version.empty()) {
    const auto r = std::from_chars(version.data(), version.data() + version.size(), v);
    if (r.ec != std::errc() || r.ptr != version.data() + version.size() || v < 1)
      throw HttpError(404, "model '" + name + "': version '" + version + "' is not a version number");
  }
  auto m = ctx.repo.find(name, v);
  if (m == nullptr) {
    if (!ctx.repo.has(name)) {
      std::string known;
      for (const std::string& n : ctx.repo.names()) known += (known.empty() ? "" : ", ") + n;
      throw HttpError(404, "model '" + name + "' is not served (models: " + known + ")");
    }
    std::string known;
    for (int64_t k : ctx.repo.versions(name)) known += (known.empty() ? "" : ", ") + std::to_string(k);
    throw HttpError(404, "model '" + name + "' has no version " + version + " (versions: " + known + ")");
  }
  note().model = m->name;
  note().version = m->version;
  return m;
}

Tensor predict(const ServedModel& m, const Tensor& input) {
  require_tensor_model(m);
  try {
    return m.batcher->run(input);
  } catch (const QueueFull& e) {
    throw HttpError(503, e.what());
  }
}

void reply_json(httplib::Response& res, std::string body, int status) {
  res.status = status;
  res.set_content(std::move(body), "application/json");
}

}  // namespace maas::serve
