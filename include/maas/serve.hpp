// maas/serve.hpp: saved models behind HTTP (the maas-serve executable, or
// embedded in a program of your own).
//
// Example:
//   maas::serve::ServeOptions o;
//   o.models.push_back({"mnist", "mnist.h5"});       // or o.model_dir = "models"
//   o.port = 0;                                      // any free port
//   maas::serve::Server server(o);                   // loads the models
//   server.start();                                  // binds, serves on its own threads
//   ... curl -d '{"instances": [...]}' localhost:<server.port()>/v1/models/mnist:predict
//   server.stop();                                   // finishes requests in flight
//
// APIs: `maas-serve --help` names them, and a request to a path none serves
// is answered with their endpoints. Each is one thin adapter,
// src/serve/api_*.cpp, whose header lists its routes and bodies.
// Inputs are in Keras' layout (NHWC images: a model saved with input
// [C, H, W] takes [N, H, W, C]), outputs as Keras gives them. An image file
// (PNG, JPEG, BMP) is accepted as an `image/*` body or as {"b64": "..."}
// instances: it is converted to the model's channels, resized to its input
// size and scaled to [0, 1].
//
// Model repository (--model-dir) in TensorFlow Serving's layout:
// DIR/NAME/VERSION/model.h5. The highest version answers requests without a
// version; every loaded version answers by number. New version folders are
// picked up while serving (polled every poll_ms) and take over only once
// loaded, so no request fails; a file that does not load is logged and the
// versions already loaded keep serving. A removed version folder is unloaded.
//
// Requests that arrive together run as one batch (up to max_batch rows,
// waiting at most batch_timeout_us for more after the first; requests that
// arrive while a batch runs make up the next one). Each request gets its own
// rows back. At most max_queue requests wait per model; more get 503.
//
// A language model (a GPT saved with its tokenizer, as examples/gpt --save
// writes it) is served on OpenAI's routes (/v1/completions,
// /v1/chat/completions, /v1/models), streaming tokens as Server-Sent Events;
// up to max_sequences generations are decoded together, one token each per
// step, and a new one joins at the next step (src/serve/generation.hpp).
//
// Images over 4096 x 4096 pixels are refused before they are decoded.
//
// A program embedding the server should run with OMP_WAIT_POLICY=passive in
// its environment (maas-serve sets it for itself): OpenMP threads spinning
// between batches take the cores the HTTP threads need.
//
// What this is not: no TLS (run it behind a proxy for that), no gRPC, one
// input and one output per model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace maas::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8500;  // 0: any free port (Server::port() says which)
  // The most connections served at once: each open (keep-alive) connection
  // holds one thread; threads start as connections arrive.
  int threads = 256;
  int64_t max_batch = 64;         // rows per batch
  int64_t batch_timeout_us = 0;   // extra wait for a fuller batch
  size_t max_body_bytes = size_t{16} << 20;
  int64_t max_queue = 1024;       // waiting requests per model
  int64_t max_sequences = 16;     // language models: sequences decoded together (KV cache slots)
  int64_t max_context = 0;        // language models: positions per sequence; 0: the model's context
  int64_t prefill_chunk = 64;     // language models: prompt tokens per decoding step beyond one per sequence
  std::string token;              // non-empty: requests need "Authorization: Bearer <token>"
  bool log_json = false;          // one JSON line per request on stderr
  bool quiet = false;             // no info events (models loaded, listening) on stderr
  int64_t poll_ms = 1000;         // model_dir polling period
  int backlog = 1024;             // listen backlog
  std::vector<std::pair<std::string, std::string>> models;  // name, path.h5 (version 1)
  std::string model_dir;
};

// Parses maas-serve's command line. Throws maas::Error on a bad flag or
// value; `help` is set by --help (options then as far as parsed).
ServeOptions parse_args(int argc, const char* const* argv, bool* help = nullptr);
// The --help text.
std::string usage();

class Server {
 public:
  // Loads every model (maas::Error naming the file if one fails to load).
  explicit Server(ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port; throws maas::Error with the reason ("address already in
  // use") when it cannot. Returns the port.
  int bind();
  // Serves until stop(), then waits for the requests in flight and returns.
  // Binds first if bind() was not called.
  void run();
  // bind() if needed, then run() on a thread of its own.
  void start();
  // Stops accepting connections; requests in flight are answered. Safe from
  // any thread; returns once the server has drained (when started by start()).
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace maas::serve
