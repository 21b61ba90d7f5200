// Server: the transport. cpp-httplib set up for load, the routes of the
// endpoint table (api.hpp) handed to handle(), the bearer token, error
// bodies for what no route answers, binding, serving and draining. What a
// request means, its metrics and its log line are api.cpp's.
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
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <thread>

#include "maas/error.hpp"
#include "serve/api.hpp"

namespace maas::serve {

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
    case 404: return "no such endpoint: the API is " + endpoint_list();
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
        repo(BatchOptions{options.max_batch, options.batch_timeout_us, options.max_queue}, metrics, log,
             GenerationOptions{options.max_sequences, options.max_context, options.max_queue,
                               options.prefill_chunk}),
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
      begin_request();
      if (!options.token.empty() && needs_token(req.path)) {
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
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) { record(ctx, req, res); });

    for (const Api& api : apis()) {
      for (const Route& route : api.routes) {
        auto handler = [this, &api, &route](const httplib::Request& req, httplib::Response& res) {
          handle(ctx, api, route, req, res);
        };
        if (route.method == Method::Get) http.Get(route.pattern, handler);
        else http.Post(route.pattern, handler);
      }
    }
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
