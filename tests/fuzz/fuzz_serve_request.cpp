// libFuzzer target: arbitrary request bodies sent to a maas-serve server in
// this process (a tiny CNN taking 8x8 grey images), over loopback HTTP, so
// every byte goes through the whole request path: cpp-httplib, the protocol
// adapters, simdjson, base64 and image decoding, shape checks, the batcher.
// The first byte picks the endpoint and content type; the rest is the body.
// Any answer is fine except a 500, a crash, an ASan report or no answer.
//
// Build and run as fuzz_idx.cpp describes (target fuzz_serve_request); seed
// the corpus with request bodies, e.g. tests/fuzz/serve_corpus/.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <httplib.h>

#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"
#include "maas/serve.hpp"

namespace {

struct Fixture {
  std::unique_ptr<maas::serve::Server> server;
  std::unique_ptr<httplib::Client> client;
  Fixture() {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("fuzz_serve_" + std::to_string(::getpid()) + ".h5")).string();
    maas::manual_seed(1);
    maas::nn::Sequential m({1, 8, 8});
    m.add(maas::nn::Conv2D(2, 3)).add(maas::nn::ReLU()).add(maas::nn::MaxPool2D(2)).add(maas::nn::Flatten());
    m.add(maas::nn::Dense(3));
    maas::save_model(m, path);
    maas::serve::ServeOptions o;
    o.port = 0;
    o.max_body_bytes = 1 << 20;
    o.models.push_back({"m", path});
    // The server's start-up lines go to /dev/null; libFuzzer's own output
    // to stderr again afterwards.
    std::fflush(stderr);
    const int saved = ::dup(2);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    server = std::make_unique<maas::serve::Server>(o);
    server->start();
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    ::close(null);
    std::filesystem::remove(path);
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);  // else Nagle holds the body behind the headers: 40 ms a request
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  if (size < 1) return 0;
  static const char* paths[] = {"/v1/models/m:predict", "/v2/models/m/infer", "/predict", "/v1/models/m/versions/1:predict"};
  const char* path = paths[data[0] & 3];
  const char* type = (data[0] & 4) ? "image/png" : "application/json";
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  httplib::Headers headers;
  if (data[0] & 8) {  // Triton's binary extension: the header length is the body's second byte
    headers.emplace("Inference-Header-Content-Length", std::to_string(size > 1 ? data[1] : 0));
  }
  auto r = f.client->Post(path, headers, body, type);
  if (!r || r->status >= 500) __builtin_trap();
  return 0;
}
