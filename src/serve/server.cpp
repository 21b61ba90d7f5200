// Server: cpp-httplib set up for load, the routes of the three APIs and
// /metrics, authentication, error bodies, per-request metrics and log lines.
//
// cpp-httplib's defaults, each replaced on purpose:
//   - TCP_NODELAY off (Nagle + delayed ACK: ~44 ms a request)   -> on
//   - a fixed pool of 8 threads, each held by a keep-alive connection for its
//     life, so a 9th connection waits                            -> a pool that
//     starts a thread whenever none is idle, up to --threads
//   - 5 requests per keep-alive connection                       -> 100,000
//   - listen backlog 5 (a burst of connections retries SYNs)     -> --backlog (1024)
//   - SO_REUSEPORT on (a second server binds the same port and
//     silently takes half the connections)                       -> off; bind fails
//   - no payload limit                                           -> --max-body-bytes (413)
#include "maas/serve.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <thread>

#include "maas/error.hpp"
#include "serve/api.hpp"

namespace maas::serve {

RequestNote& note() {
  thread_local RequestNote n;
  return n;
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
  try {
    return to_keras_output(m, m.batcher->run(input));
  } catch (const QueueFull& e) {
    throw HttpError(503, e.what());
  }
}

void reply_json(httplib::Response& res, std::string body, int status) {
  res.status = status;
  res.set_content(std::move(body), "application/json");
}

void guarded(httplib::Response& res, const std::function<void()>& fn) {
  try {
    fn();
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

namespace {

// cpp-httplib's TaskQueue, growing: a connection gets a thread of its own
// at once while fewer than `max` exist, so idle keep-alive connections
// cannot starve new ones; idle threads wait for the next connection.
class GrowingPool : public httplib::TaskQueue {
 public:
  explicit GrowingPool(size_t max) : max_(max) {}
  ~GrowingPool() override { shutdown(); }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && threads_.size() < max_) threads_.emplace_back([this] { work(); });
    lock.unlock();
    cv_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();  // after stop_, threads_ no longer grows
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;  // stopping with nothing left
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }
  size_t max_;
  size_t idle_ = 0;
  bool stop_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> threads_;
};

std::string status_text(int status) {
  switch (status) {
    case 400: return "bad request";
    case 401: return "missing or wrong bearer token (send \"Authorization: Bearer <token>\")";
    case 404: return "no such endpoint: the API is /v1/models/NAME:predict, /v2/models/NAME/infer, /predict, /metrics";
    case 405: return "method not allowed";
    case 413: return "the body is larger than --max-body-bytes";
    case 414: return "the URI is too long";
    case 503: return "unavailable";
    default: return "error " + std::to_string(status);
  }
}

}  // namespace

struct Server::Impl {
  ServeOptions options;
  Log log;
  Metrics metrics;
  ModelRepository repo;
  Context ctx;
  httplib::Server http;
  int listen_fd = -1;
  int port = -1;
  std::thread thread;
  std::mutex run_mutex;

  explicit Impl(ServeOptions o)
      : options(std::move(o)),
        log(options.log_json, options.quiet),
        repo(BatchOptions{options.max_batch, options.batch_timeout_us, options.max_queue}, metrics, log),
        ctx{repo, metrics, log, options} {
    MAAS_CHECK(!options.models.empty() || !options.model_dir.empty(),
               "maas-serve: no model to serve (give --model NAME=PATH.h5 or --model-dir DIR)");
    for (const auto& [name, path] : options.models) repo.add_file(name, path);
    if (!options.model_dir.empty()) repo.add_dir(options.model_dir, options.poll_ms);
    setup();
  }

  void setup() {
    http.set_tcp_nodelay(true);
    http.set_socket_options([this](int fd) {
      const int yes = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);  // restart over TIME_WAIT; not SO_REUSEPORT
      listen_fd = fd;
    });
    const size_t threads = static_cast<size_t>(std::max(1, options.threads));
    http.new_task_queue = [threads] { return new GrowingPool(threads); };
    http.set_keep_alive_max_count(100000);
    http.set_keep_alive_timeout(5);
    http.set_payload_max_length(options.max_body_bytes);
    http.set_read_timeout(10);
    http.set_write_timeout(10);

    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      RequestNote& n = note();
      n = RequestNote{};
      n.start = std::chrono::steady_clock::now();
      n.started = true;
      if (!options.token.empty() && req.path.rfind("/v2/health/", 0) != 0) {
        const std::string want = "Bearer " + options.token;
        const std::string got = req.get_header_value("Authorization");
        bool same = got.size() == want.size();
        unsigned char diff = 0;  // compared in constant time
        for (size_t i = 0; same && i < want.size(); ++i) diff |= static_cast<unsigned char>(got[i] ^ want[i]);
        if (!same || diff != 0) {
          res.set_header("WWW-Authenticate", "Bearer");
          reply_json(res, error_json(status_text(401)), 401);
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      // cpp-httplib caps form bodies (what `curl -d` sends) at 8 KB, whatever
      // --max-body-bytes says: name the way out.
      if (res.status == 413 && req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0) {
        reply_json(res, error_json("a form-urlencoded body is limited to 8192 bytes: send the JSON with "
                                   "\"Content-Type: application/json\" (curl: -H 'Content-Type: application/json' "
                                   "--data-binary @body.json)"), 413);
        return httplib::Server::HandlerResponse::Handled;
      }
      reply_json(res, error_json(status_text(res.status)), res.status);
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      reply_json(res, error_json("internal error"), 500);
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) { record(req, res); });

    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      note().api = "metrics";
      res.set_content(metrics.render(), "text/plain; version=0.0.4");
    });
    add_tfserving_routes(http, ctx);
    add_kserve_routes(http, ctx);
    add_plain_routes(http, ctx);
  }

  // After each answer: the request counter, the latency histogram, the log line.
  void record(const httplib::Request& req, const httplib::Response& res) {
    RequestNote& n = note();
    std::string api = n.api;
    if (api.empty()) {
      api = req.path.rfind("/v1/", 0) == 0 ? "v1" : req.path.rfind("/v2/", 0) == 0 ? "v2"
            : req.path == "/predict"       ? "predict"
                                           : "other";
    }
    double seconds = -1;
    if (n.started) seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - n.start).count();
    metrics.add("maas_requests_total", labels({{"model", n.model}, {"api", api}, {"code", std::to_string(res.status)}}));
    if (seconds >= 0 && api != "metrics")
      metrics.observe("maas_request_duration_seconds", labels({{"model", n.model}, {"api", api}}), seconds);
    if (options.log_json) {
      JsonOut o;
      o.raw("{\"time_unix\":").num(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
      o.raw(",\"method\":").str(req.method).raw(",\"path\":").str(req.path).raw(",\"status\":").integer(res.status);
      o.raw(",\"api\":").str(api).raw(",\"model\":").str(n.model).raw(",\"version\":").integer(n.version);
      o.raw(",\"request_bytes\":").integer(static_cast<int64_t>(req.body.size()));
      o.raw(",\"response_bytes\":").integer(static_cast<int64_t>(res.body.size()));
      o.raw(",\"latency_ms\":").num(seconds >= 0 ? seconds * 1e3 : 0.0);
      o.raw(",\"remote\":").str(req.remote_addr);
      if (res.status >= 400 && res.body.size() < 2048) o.raw(",\"error\":").str(res.body);
      o.raw("}");
      log.line(o.s);
    }
    n = RequestNote{};
  }
};

Server::Server(ServeOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() {
  stop();
}

int Server::bind() {
  Impl& s = *impl_;
  if (s.port >= 0) return s.port;
  errno = 0;
  int port = s.options.port;
  bool ok;
  if (port == 0) {
    port = s.http.bind_to_any_port(s.options.host);
    ok = port > 0;
  } else {
    ok = s.http.bind_to_port(s.options.host, port);
  }
  const int err = errno;
  MAAS_CHECK(ok, "maas-serve: cannot listen on " << s.options.host << ":" << s.options.port << ": "
                                                 << (err == EADDRINUSE ? "the address is already in use (is another "
                                                                         "server running on this port?)"
                                                     : err != 0       ? std::strerror(err)
                                                                      : "cannot bind this host and port"));
  // cpp-httplib listens with a backlog of 5; listen() again sets ours.
  if (s.listen_fd >= 0) ::listen(s.listen_fd, s.options.backlog);
  s.port = port;
  s.log.event("info", "listening on http://" + s.options.host + ":" + std::to_string(port),
              "\"host\":" + json_string(s.options.host) + ",\"port\":" + std::to_string(port));
  return port;
}

void Server::run() {
  bind();
  impl_->http.listen_after_bind();  // returns after stop(), once the connections' threads are done
}

void Server::start() {
  bind();
  impl_->thread = std::thread([this] { impl_->http.listen_after_bind(); });
  for (int i = 0; !impl_->http.is_running(); ++i) {
    MAAS_CHECK(i < 10000, "maas-serve: the server did not start listening on port " << impl_->port);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Server::stop() {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->run_mutex);
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int Server::port() const { return impl_->port; }

}  // namespace maas::serve
