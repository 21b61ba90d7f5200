// maas-serve over real sockets: a server on an ephemeral port (in this
// process, or the maas-serve binary) and HTTP clients. Expected outputs come
// from Trainer::predict on the same model and inputs, in maas' NCHW layout;
// requests send them in Keras' NHWC layout.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "maas/checkpoint.hpp"
#include "maas/loss.hpp"
#include "maas/maas.hpp"
#include "maas/optim/sgd.hpp"
#include "maas/serve.hpp"
#include "maas/trainer.hpp"
#include "serve/batcher.hpp"
#include "serve/codec.hpp"
#include "serve/prometheus.hpp"

using namespace maas;
using json = nlohmann::json;
using maas::test::metric;
using maas::test::TempDir;
namespace fs = std::filesystem;

namespace {

// A small CNN taking 8x8 grey images ([1, 8, 8] in maas, [8, 8, 1] in Keras).
void save_cnn(const std::string& path, uint64_t seed) {
  manual_seed(seed);
  nn::Sequential m({1, 8, 8});
  m.add(nn::Conv2D(4, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2)).add(nn::Flatten()).add(nn::Dense(3));
  save_model(m, path);
}

// NCHW samples [n, 1, 8, 8] with distinct values per seed.
Tensor samples(int64_t n, uint64_t seed) {
  Generator g(seed);
  return Tensor::rand({n, 1, 8, 8}, g);
}

// The same samples as Keras' nested NHWC lists.
json nhwc(const Tensor& x) {
  json out = json::array();
  for (int64_t b = 0; b < x.size(0); ++b) {
    json img = json::array();
    for (int64_t h = 0; h < 8; ++h) {
      json row = json::array();
      for (int64_t w = 0; w < 8; ++w) row.push_back(json::array({x.at({b, 0, h, w})}));
      img.push_back(row);
    }
    out.push_back(img);
  }
  return out;
}

// Trainer::predict of the model in `path` (MSE: the raw outputs).
Tensor expected(const std::string& path, const Tensor& x) {
  auto model = load_model(path);
  MSELoss loss;
  optim::SGD sgd(model->parameters());
  Trainer trainer(*model, loss, sgd);
  return trainer.predict(x);
}

void check_rows(const json& got, const Tensor& want) {
  REQUIRE(got.is_array());
  REQUIRE(static_cast<int64_t>(got.size()) == want.size(0));
  for (int64_t i = 0; i < want.size(0); ++i) {
    REQUIRE(static_cast<int64_t>(got[i].size()) == want.size(1));
    for (int64_t j = 0; j < want.size(1); ++j) CHECK(got[i][j].get<float>() == Approx(want.at({i, j})).margin(1e-5));
  }
}

serve::ServeOptions options_for(const std::string& name, const std::string& path) {
  serve::ServeOptions o;
  o.port = 0;
  o.quiet = true;
  o.models.push_back({name, path});
  return o;
}

httplib::Result post_json(httplib::Client& c, const std::string& path, const json& body) {
  return c.Post(path.c_str(), body.dump(), "application/json");
}

std::string error_of(const httplib::Result& r) {
  REQUIRE(r);
  const json j = json::parse(r->body);
  REQUIRE(j.contains("error"));
  return j["error"].get<std::string>();
}

// A 24-bit BMP of a grey image (rows bottom-up, padded to 4 bytes).
std::string bmp_grey(const std::vector<uint8_t>& px, int w, int h) {
  const int stride = (w * 3 + 3) & ~3;
  const uint32_t size = 54 + static_cast<uint32_t>(stride * h);
  std::string b(size, '\0');
  auto put32 = [&](size_t at, uint32_t v) { for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff); };
  auto put16 = [&](size_t at, uint16_t v) { b[at] = static_cast<char>(v & 0xff); b[at + 1] = static_cast<char>(v >> 8); };
  b[0] = 'B';
  b[1] = 'M';
  put32(2, size);
  put32(10, 54);
  put32(14, 40);
  put32(18, static_cast<uint32_t>(w));
  put32(22, static_cast<uint32_t>(h));
  put16(26, 1);
  put16(28, 24);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) b[54 + static_cast<size_t>((h - 1 - y) * stride + x * 3 + c)] = static_cast<char>(px[y * w + x]);
  return b;
}

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

// The maas-serve binary, started with `args` and --port 0; its stderr goes
// to a file, from which the port is read.
struct Process {
  pid_t pid = -1;
  std::string err_path;
  int port = -1;
  Process(const std::vector<std::string>& args, const std::string& err) : err_path(err) {
    pid = ::fork();
    if (pid == 0) {
      std::freopen(err.c_str(), "w", stderr);
      std::vector<char*> argv;
      static std::string bin = MAAS_SERVE_BIN;
      argv.push_back(bin.data());
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      std::_Exit(127);
    }
  }
  std::string err() const {
    std::ifstream f(err_path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  // Waits (up to 20 s) for "listening on http://host:PORT".
  bool wait_listening() {
    for (int i = 0; i < 2000; ++i) {
      const std::string e = err();
      const size_t at = e.find("listening on http://");
      if (at != std::string::npos) {
        const size_t colon = e.find(':', at + 20);
        port = std::stoi(e.substr(colon + 1));
        return true;
      }
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  int wait_exit() {
    int status = 0;
    if (pid > 0) ::waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  ~Process() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

}  // namespace

TEST_CASE("serve: every endpoint answers, predictions equal Trainer::predict", "[serve]") {
  TempDir dir("serve_endpoints");
  const std::string path = dir / "cnn.h5";
  save_cnn(path, 1);
  // The reference first: load_model reads the file in a forked child, best
  // forked before the server's threads run (under ASan a fork while another
  // thread allocates can leave the child waiting on the allocator's lock).
  const Tensor x = samples(3, 7);
  const Tensor want = expected(path, x);
  serve::Server server(options_for("cnn", path));
  server.start();
  httplib::Client c("127.0.0.1", server.port());

  SECTION("TensorFlow Serving: instances, inputs, versions, status, metadata") {
    auto r = post_json(c, "/v1/models/cnn:predict", {{"instances", nhwc(x)}});
    REQUIRE(r);
    REQUIRE(r->status == 200);
    check_rows(json::parse(r->body)["predictions"], want);
    r = post_json(c, "/v1/models/cnn/versions/1:predict", {{"inputs", nhwc(x)}});
    REQUIRE(r->status == 200);
    check_rows(json::parse(r->body)["outputs"], want);
    r = post_json(c, "/v1/models/cnn:predict", {{"inputs", {{"input", nhwc(x)}}}});
    REQUIRE(r->status == 200);
    check_rows(json::parse(r->body)["outputs"], want);
    r = c.Get("/v1/models/cnn");
    REQUIRE(r->status == 200);
    const json status = json::parse(r->body);
    CHECK(status["model_version_status"][0]["version"] == "1");
    CHECK(status["model_version_status"][0]["state"] == "AVAILABLE");
    r = c.Get("/v1/models/cnn/versions/1/metadata");
    REQUIRE(r->status == 200);
    const json sig = json::parse(r->body)["metadata"]["signature_def"]["signature_def"]["serving_default"];
    const json dims = sig["inputs"]["input"]["tensor_shape"]["dim"];
    REQUIRE(dims.size() == 4);
    CHECK(dims[1]["size"] == "8");
    CHECK(dims[3]["size"] == "1");
    CHECK(sig["outputs"]["output"]["tensor_shape"]["dim"][1]["size"] == "3");
  }

  SECTION("Open Inference Protocol: health, metadata, ready, JSON and binary infer") {
    auto r = c.Get("/v2/health/live");
    REQUIRE(r->status == 200);
    CHECK(c.Get("/v2/health/ready")->status == 200);
    r = c.Get("/v2/models/cnn");
    REQUIRE(r->status == 200);
    const json meta = json::parse(r->body);
    CHECK(meta["inputs"][0]["shape"] == json::array({-1, 8, 8, 1}));
    CHECK(meta["outputs"][0]["shape"] == json::array({-1, 3}));
    CHECK(meta["versions"] == json::array({"1"}));
    CHECK(c.Get("/v2/models/cnn/ready")->status == 200);
    CHECK(c.Get("/v2/models/cnn/versions/1/ready")->status == 200);

    std::vector<float> flat;
    for (const auto& img : nhwc(x))
      for (const auto& row : img)
        for (const auto& px : row) flat.push_back(px[0].get<float>());
    json req = {{"inputs", {{{"name", "input"}, {"shape", {3, 8, 8, 1}}, {"datatype", "FP32"}, {"data", flat}}}}};
    r = post_json(c, "/v2/models/cnn/infer", req);
    REQUIRE(r->status == 200);
    const json out = json::parse(r->body)["outputs"][0];
    CHECK(out["shape"] == json::array({3, 3}));
    json rows = json::array();
    for (int i = 0; i < 3; ++i) rows.push_back(json(std::vector<float>(out["data"].begin() + 3 * i, out["data"].begin() + 3 * i + 3)));
    check_rows(rows, want);

    // Triton's binary tensors: JSON header, then raw FP32 in and out.
    const json head = {{"inputs", {{{"name", "input"}, {"shape", {3, 8, 8, 1}}, {"datatype", "FP32"},
                                    {"parameters", {{"binary_data_size", flat.size() * 4}}}}}},
                       {"outputs", {{{"name", "output"}, {"parameters", {{"binary_data", true}}}}}}};
    std::string body = head.dump();
    const size_t head_len = body.size();
    body.append(reinterpret_cast<const char*>(flat.data()), flat.size() * 4);
    httplib::Headers h = {{"Inference-Header-Content-Length", std::to_string(head_len)}};
    r = c.Post("/v2/models/cnn/versions/1/infer", h, body, "application/octet-stream");
    REQUIRE(r->status == 200);
    const size_t out_len = std::stoul(r->get_header_value("Inference-Header-Content-Length"));
    const json rh = json::parse(r->body.substr(0, out_len));
    CHECK(rh["outputs"][0]["parameters"]["binary_data_size"] == 36);
    REQUIRE(r->body.size() == out_len + 36);
    std::vector<float> got(9);
    std::memcpy(got.data(), r->body.data() + out_len, 36);
    for (int i = 0; i < 9; ++i) CHECK(got[i] == Approx(want.data()[i]).margin(1e-5));
  }

  SECTION("plain /predict, one sample or a batch") {
    auto r = post_json(c, "/predict", {{"x_input", nhwc(x)}});
    REQUIRE(r->status == 200);
    check_rows(json::parse(r->body)["prediction"], want);
    r = post_json(c, "/predict", {{"x_input", nhwc(x)[1]}});
    REQUIRE(r->status == 200);
    check_rows(json::parse(r->body)["prediction"], want.slice_rows(1, 2));
  }

  SECTION("images: an image/* body and TensorFlow Serving's b64") {
    std::vector<uint8_t> px(64);
    for (int i = 0; i < 64; ++i) px[i] = static_cast<uint8_t>(i * 4);
    Tensor img = Tensor::empty({1, 1, 8, 8});
    for (int i = 0; i < 64; ++i) img.data()[i] = static_cast<float>(px[i]) / 255.f;
    const Tensor want_img = expected(path, img);
    const std::string bmp = bmp_grey(px, 8, 8);
    auto r = c.Post("/predict", bmp, "image/bmp");
    REQUIRE(r->status == 200);
    check_rows(json::parse(r->body)["prediction"], want_img);
    r = c.Post("/v1/models/cnn:predict", bmp, "image/bmp");
    REQUIRE(r->status == 200);
    check_rows(json::parse(r->body)["predictions"], want_img);
    r = post_json(c, "/v1/models/cnn:predict", {{"instances", {{{"b64", base64(bmp)}}, {{"b64", base64(bmp)}}}}});
    REQUIRE(r->status == 200);
    const json p = json::parse(r->body)["predictions"];
    check_rows(json::array({p[0]}), want_img);
    check_rows(json::array({p[1]}), want_img);
    // A 16x16 image is resized to 8x8.
    std::vector<uint8_t> big(256, 200);
    r = c.Post("/v2/models/cnn/infer", bmp_grey(big, 16, 16), "image/bmp");
    REQUIRE(r->status == 200);
    CHECK(json::parse(r->body)["outputs"][0]["shape"] == json::array({1, 3}));
  }

  SECTION("metrics: requests by model, API and code; latency and batch sizes") {
    REQUIRE(post_json(c, "/v1/models/cnn:predict", {{"instances", nhwc(x)}})->status == 200);
    REQUIRE(c.Get("/v1/models/nope")->status == 404);
    // A request is counted once its answer is written: the client may see
    // the answer first.
    std::string text;
    for (int i = 0; i < 400; ++i) {
      auto got = c.Get("/metrics");
      REQUIRE(got->status == 200);
      text = got->body;
      if (metric(text, R"(maas_requests_total{model="",api="v1",code="404"})") == 1 &&
          metric(text, R"(maas_request_duration_seconds_count{model="cnn",api="v1"})") == 1)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(metric(text, R"(maas_requests_total{model="cnn",api="v1",code="200"})") == 1);
    CHECK(metric(text, R"(maas_requests_total{model="",api="v1",code="404"})") == 1);
    CHECK(metric(text, R"(maas_request_duration_seconds_count{model="cnn",api="v1"})") == 1);
    CHECK(metric(text, R"(maas_batch_size_sum{model="cnn"})") >= 3);
    CHECK(metric(text, R"(maas_model_loads_total{model="cnn",event="load"})") == 1);
    CHECK(text.find("# TYPE maas_queue_depth gauge") != std::string::npos);
  }
  server.stop();
}

TEST_CASE("serve: bad requests get their status and a JSON error", "[serve]") {
  TempDir dir("serve_errors");
  const std::string path = dir / "cnn.h5";
  save_cnn(path, 2);
  serve::ServeOptions o = options_for("cnn", path);
  o.max_body_bytes = 100000;
  serve::Server server(o);
  server.start();
  httplib::Client c("127.0.0.1", server.port());

  auto r = c.Post("/v1/models/cnn:predict", "{\"instances\": [1, 2", "application/json");
  CHECK(r->status == 400);
  CHECK(error_of(r).find("malformed JSON") != std::string::npos);

  r = post_json(c, "/v1/models/cnn:predict", {{"instances", {{1, 2, 3}}}});
  CHECK(r->status == 400);
  CHECK(error_of(r).find("[-1,8,8,1]") != std::string::npos);

  r = post_json(c, "/predict", {{"x_input", json::array({json::array({"a", "b"})})}});
  CHECK(r->status == 400);
  CHECK(error_of(r).find("string") != std::string::npos);

  r = post_json(c, "/v2/models/cnn/infer", {{"inputs", {{{"name", "input"}, {"shape", {1, 8, 8, 1}}, {"datatype", "BYTES"}, {"data", {"x"}}}}}});
  CHECK(r->status == 400);
  CHECK(error_of(r).find("BYTES") != std::string::npos);

  r = post_json(c, "/v2/models/cnn/infer", {{"inputs", {{{"name", "input"}, {"shape", {1, 8, 8, 1}}, {"datatype", "FP32"}, {"data", {1, 2}}}}}});
  CHECK(r->status == 400);
  CHECK(error_of(r).find("needs 64") != std::string::npos);

  // A ragged first row cannot make the server allocate its claimed shape.
  {
    std::string ragged = "{\"x_input\": [[1";
    for (int i = 0; i < 5000; ++i) ragged += ",1";
    ragged += "]";
    for (int i = 0; i < 5000; ++i) ragged += ",1";
    r = c.Post("/predict", ragged + "]}", "application/json");
  }
  CHECK(r->status == 400);
  CHECK(error_of(r).find("ragged") != std::string::npos);

  r = post_json(c, "/v1/models/nope:predict", {{"instances", json::array()}});
  CHECK(r->status == 404);
  CHECK(error_of(r).find("nope") != std::string::npos);
  r = c.Get("/v1/models/cnn/versions/7");
  CHECK(r->status == 404);
  CHECK(error_of(r).find("version 7") != std::string::npos);
  CHECK(c.Get("/v2/models/nope/ready")->status == 404);
  CHECK(c.Get("/no/such/path")->status == 404);

  r = c.Post("/predict", std::string(200000, ' '), "application/json");
  REQUIRE(r);
  CHECK(r->status == 413);
  CHECK(error_of(r).find("--max-body-bytes") != std::string::npos);
  // What curl -d sends: a form body, which the HTTP library caps far lower.
  r = c.Post("/predict", std::string(20000, ' '), "application/x-www-form-urlencoded");
  REQUIRE(r);
  CHECK(r->status == 413);
  CHECK(error_of(r).find("Content-Type: application/json") != std::string::npos);

  {  // a small file claiming a huge image is refused before decoding
    std::string huge = bmp_grey(std::vector<uint8_t>(64, 1), 8, 8);
    for (size_t at : {18u, 22u}) {
      huge[at] = 0x20;  // 20000 = 0x4e20
      huge[at + 1] = 0x4e;
    }
    r = c.Post("/predict", huge, "image/bmp");
    CHECK(r->status == 400);
    CHECK(error_of(r).find("pixels") != std::string::npos);
  }
  r = c.Post("/predict", "not an image", "image/png");
  CHECK(r->status == 400);
  CHECK(error_of(r).find("decode") != std::string::npos);
  server.stop();

  SECTION("a token is required once set") {
    serve::ServeOptions t = options_for("cnn", path);
    t.token = "s3cret";
    serve::Server guarded(t);
    guarded.start();
    httplib::Client g("127.0.0.1", guarded.port());
    auto a = g.Get("/v1/models/cnn");
    CHECK(a->status == 401);
    CHECK(error_of(a).find("token") != std::string::npos);
    CHECK(g.Get("/v1/models/cnn", {{"Authorization", "Bearer wrong!"}})->status == 401);
    CHECK(g.Get("/v1/models/cnn", {{"Authorization", "Bearer s3cret"}})->status == 200);
    CHECK(g.Get("/v2/health/live")->status == 200);
    guarded.stop();
  }
}

TEST_CASE("serve: the batcher merges requests, returns each its rows, refuses a full queue", "[serve]") {
  serve::Metrics metrics;
  std::atomic<int> calls{0};
  std::mutex gate;
  gate.lock();
  serve::BatchOptions o;
  o.max_batch = 8;
  o.max_queue = 2;
  {
    // The model doubles its input; its first call waits for the gate, so
    // requests pile up behind it.
    serve::Batcher b(
        [&](const Tensor& x) {
          if (calls++ == 0) std::lock_guard<std::mutex> wait(gate);
          Tensor y = x.clone();
          for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] *= 2;
          return y;
        },
        o, metrics, "m");
    std::vector<std::thread> clients;
    std::vector<float> got(3, -1);
    clients.emplace_back([&] { got[0] = b.run(Tensor::full({1, 2}, 1.f)).at({0, 1}); });
    while (calls == 0) std::this_thread::yield();
    clients.emplace_back([&] { got[1] = b.run(Tensor::full({2, 2}, 2.f)).at({1, 0}); });
    clients.emplace_back([&] { got[2] = b.run(Tensor::full({1, 2}, 3.f)).at({0, 0}); });
    while (metrics.value("maas_queue_depth", serve::labels({{"model", "m"}})) < 2) std::this_thread::yield();
    CHECK_THROWS_AS(b.run(Tensor::full({1, 2}, 4.f)), serve::QueueFull);
    gate.unlock();
    for (auto& t : clients) t.join();
    CHECK(got == std::vector<float>{2, 4, 6});
    CHECK(calls == 2);  // the two waiting requests ran as one batch of 3 rows
  }
  const auto [count, sum] = metrics.histogram("maas_batch_size", serve::labels({{"model", "m"}}));
  CHECK(count == 2);
  CHECK(sum == 4);
}

TEST_CASE("serve: a lone request runs on its own thread unless a batching delay is asked for", "[serve]") {
  serve::Metrics metrics;
  std::thread::id ran_on;
  auto model = [&](const Tensor& x) {
    ran_on = std::this_thread::get_id();
    if (x.at({0, 0}) < 0) throw Error("negative input");
    return x.clone();
  };
  {
    serve::Batcher b(model, serve::BatchOptions{}, metrics, "m");
    CHECK(b.run(Tensor::full({1, 2}, 5.f)).at({0, 1}) == 5.f);
    CHECK(ran_on == std::this_thread::get_id());
    // A model error reaches the caller, and the next request still runs.
    CHECK_THROWS_WITH(b.run(Tensor::full({1, 2}, -1.f)), Catch::Contains("negative input"));
    CHECK(b.run(Tensor::full({2, 2}, 7.f)).at({1, 0}) == 7.f);
  }
  serve::BatchOptions delayed;
  delayed.timeout_us = 100;
  serve::Batcher b(model, delayed, metrics, "d");
  CHECK(b.run(Tensor::full({1, 2}, 3.f)).at({0, 0}) == 3.f);
  CHECK(ran_on != std::this_thread::get_id());
}

TEST_CASE("serve: concurrent clients each get their own answer while batches merge", "[serve]") {
  TempDir dir("serve_concurrent");
  const std::string path = dir / "cnn.h5";
  save_cnn(path, 3);
  serve::ServeOptions o = options_for("cnn", path);
  o.batch_timeout_us = 2000;
  const int kClients = 16, kEach = 6;
  const Tensor x = samples(kClients, 11);
  const Tensor want = expected(path, x);  // before the server's threads, as above
  serve::Server server(o);
  server.start();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", server.port());
      const std::string body = json{{"instances", nhwc(x.slice_rows(i, i + 1))}}.dump();
      for (int k = 0; k < kEach; ++k) {
        auto r = c.Post("/v1/models/cnn:predict", body, "application/json");
        if (!r || r->status != 200) continue;
        const json p = json::parse(r->body)["predictions"][0];
        bool same = true;
        for (int j = 0; j < 3; ++j) same = same && std::fabs(p[j].get<float>() - want.at({i, j})) < 1e-5f;
        ok += same;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == kClients * kEach);
  httplib::Client c("127.0.0.1", server.port());
  const std::string m = c.Get("/metrics")->body;
  const double batches = metric(m, R"(maas_batch_size_count{model="cnn"})");
  CHECK(metric(m, R"(maas_batch_size_sum{model="cnn"})") == kClients * kEach);
  CHECK(batches < kClients * kEach);  // some requests shared a batch
  server.stop();
}

TEST_CASE("serve: a new version in the model folder takes over under load; a broken one is refused", "[serve]") {
  TempDir dir("serve_reload");
  fs::create_directories(dir.path / "cnn" / "1");
  save_cnn(dir / "cnn/1/model.h5", 4);
  serve::ServeOptions o;
  o.port = 0;
  o.quiet = true;
  o.model_dir = dir.path.string();
  o.poll_ms = 20;
  serve::Server server(o);
  server.start();
  const Tensor x = samples(1, 5);
  const Tensor v1 = expected(dir / "cnn/1/model.h5", x);
  const std::string body = json{{"instances", nhwc(x)}}.dump();

  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, answered{0}, saw_v2{0};
  save_cnn(dir / "v2.h5", 5);
  const Tensor v2 = expected(dir / "v2.h5", x);
  std::vector<std::thread> load;
  for (int t = 0; t < 3; ++t) {
    load.emplace_back([&] {
      httplib::Client c("127.0.0.1", server.port());
      while (!stop) {
        auto r = c.Post("/v1/models/cnn:predict", body, "application/json");
        if (!r || r->status != 200) {
          ++failed;
          continue;
        }
        ++answered;
        const float p0 = json::parse(r->body)["predictions"][0][0].get<float>();
        if (std::fabs(p0 - v2.at({0, 0})) < 1e-5f) ++saw_v2;
        else if (std::fabs(p0 - v1.at({0, 0})) >= 1e-5f) ++failed;  // neither version's answer
      }
    });
  }
  while (answered < 20) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  fs::create_directories(dir.path / "cnn" / "2");
  fs::rename(dir / "v2.h5", dir / "cnn/2/model.h5");
  for (int i = 0; i < 1000 && saw_v2 < 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // A version 3 that is not a model: logged, version 2 keeps answering.
  fs::create_directories(dir.path / "cnn" / "3");
  { std::ofstream(dir / "cnn/3/model.h5") << "not a model"; }
  httplib::Client c("127.0.0.1", server.port());
  for (int i = 0; i < 1000; ++i) {
    if (metric(c.Get("/metrics")->body, R"(maas_model_loads_total{model="cnn",event="load_failed"})") >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const int before = saw_v2;
  while (saw_v2 < before + 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;
  for (auto& t : load) t.join();
  CHECK(failed == 0);
  CHECK(saw_v2 >= 20);
  const std::string m = c.Get("/metrics")->body;
  CHECK(metric(m, R"(maas_model_loads_total{model="cnn",event="load_failed"})") == 1);
  CHECK(metric(m, R"(maas_model_versions{model="cnn"})") == 2);
  // Both versions answer by number.
  auto r = c.Post("/v1/models/cnn/versions/1:predict", body, "application/json");
  REQUIRE(r->status == 200);
  check_rows(json::parse(r->body)["predictions"], v1);
  CHECK(c.Get("/v1/models/cnn/versions/3")->status == 404);
  server.stop();
}

TEST_CASE("serve: a 33rd keep-alive connection is served while 32 stay open and idle", "[serve]") {
  TempDir dir("serve_keepalive");
  save_cnn(dir / "cnn.h5", 6);
  serve::Server server(options_for("cnn", dir / "cnn.h5"));
  server.start();
  std::vector<int> idle;
  for (int i = 0; i < 32; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(server.port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const std::string req = "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
    char buf[512];
    REQUIRE(::recv(fd, buf, sizeof buf, 0) > 0);  // answered; the connection stays open
    idle.push_back(fd);
  }
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(3, 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.Get("/v2/health/ready");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(r);
  CHECK(r->status == 200);
  // cpp-httplib's default pool would hold it until an idle connection's
  // 5 s keep-alive ends; measured ~1 ms here.
  CHECK(ms < 1000);
  for (int fd : idle) ::close(fd);
  server.stop();
}

TEST_CASE("serve: maas-serve drains requests in flight on SIGTERM; a second one on its port fails", "[serve]") {
  TempDir dir("serve_sigterm");
  save_cnn(dir / "cnn.h5", 8);
  Process p({"--model", "cnn=" + dir / "cnn.h5", "--port", "0", "--batch-timeout-us", "400000", "--max-batch", "64",
             "--log-format", "json"},
            dir / "err.txt");
  REQUIRE(p.wait_listening());

  SECTION("SIGTERM") {
    const Tensor x = samples(1, 9);
    const std::string body = json{{"instances", nhwc(x)}}.dump();
    std::atomic<int> ok{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < 4; ++i)
      clients.emplace_back([&] {
        httplib::Client c("127.0.0.1", p.port);
        auto r = c.Post("/v1/models/cnn:predict", body, "application/json");
        ok += r && r->status == 200;
      });
    // The batch waits 400 ms for more rows: the requests are in flight.
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ::kill(p.pid, SIGTERM);
    for (auto& t : clients) t.join();
    CHECK(ok == 4);
    CHECK(p.wait_exit() == 0);
    CHECK(p.err().find("SIGTERM") != std::string::npos);
    // One JSON line per request.
    std::istringstream lines(p.err());
    int logged = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.find("\"path\":\"/v1/models/cnn:predict\"") == std::string::npos) continue;
      const json j = json::parse(line);
      logged += j["status"] == 200 && j["api"] == "v1" && j["model"] == "cnn" && j["latency_ms"].get<double>() > 0;
    }
    CHECK(logged == 4);
  }
  SECTION("a second server on the same port") {
    Process q({"--model", "cnn=" + dir / "cnn.h5", "--port", std::to_string(p.port)}, dir / "err2.txt");
    CHECK(q.wait_exit() == 1);
    CHECK(q.err().find("already in use") != std::string::npos);
  }
}

TEST_CASE("serve: a training checkpoint (mnist_cnn --save) is served like a saved model", "[serve]") {
  TempDir dir("serve_checkpoint");
  manual_seed(12);
  nn::Sequential m({1, 8, 8});
  m.add(nn::Conv2D(4, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2)).add(nn::Flatten()).add(nn::Dense(3));
  optim::SGD sgd(m.parameters());
  save_checkpoint(dir / "ck.h5", m, sgd);
  serve::Server server(options_for("ck", dir / "ck.h5"));
  server.start();
  httplib::Client c("127.0.0.1", server.port());
  const Tensor x = samples(2, 13);
  auto r = post_json(c, "/predict", {{"x_input", nhwc(x)}});
  REQUIRE(r->status == 200);
  check_rows(json::parse(r->body)["prediction"], expected(dir / "ck.h5", x));
  server.stop();
}

TEST_CASE("serve: a functional model (a residual block) is served like a Sequential", "[serve]") {
  TempDir dir("serve_functional");
  manual_seed(14);
  nn::Conv2DOptions same;
  same.padding = nn::Padding::Same;
  nn::Node in = nn::Input({1, 8, 8});
  nn::Node h = nn::layer(nn::Conv2D(4, 3, same))(in);
  h = nn::layer(nn::Add())({h, nn::layer(nn::Conv2D(4, 3, same))(h)});
  nn::Model m(in, nn::layer(nn::Dense(3))(nn::layer(nn::Flatten())(nn::layer(nn::MaxPool2D(2))(h))));
  save_model(m, dir / "f.h5");
  serve::Server server(options_for("f", dir / "f.h5"));
  server.start();
  httplib::Client c("127.0.0.1", server.port());
  const Tensor x = samples(2, 15);
  auto r = post_json(c, "/predict", {{"x_input", nhwc(x)}});
  REQUIRE(r->status == 200);
  m.eval();
  NoGradGuard ng;
  check_rows(json::parse(r->body)["prediction"], m(x));
  server.stop();
}

TEST_CASE("serve: a model with its own Normalization takes raw pixels from an image upload", "[serve]") {
  TempDir dir("serve_normalization");
  // The same CNN twice (same seed, Normalization draws nothing): with the
  // normalisation as its first layer, and without it.
  auto cnn = [](bool with_norm) {
    manual_seed(21);
    nn::Sequential m({1, 8, 8});
    if (with_norm) m.add(nn::Normalization({0.3f}, {0.09f}));
    m.add(nn::Conv2D(4, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2)).add(nn::Flatten()).add(nn::Dense(3));
    return m;
  };
  save_model(cnn(true), dir / "norm.h5");
  save_model(cnn(false), dir / "plain.h5");
  std::vector<uint8_t> px(64);
  for (int i = 0; i < 64; ++i) px[i] = static_cast<uint8_t>((i * 37) % 256);
  Tensor img = Tensor::empty({1, 1, 8, 8});
  for (int i = 0; i < 64; ++i) img.data()[i] = static_cast<float>(px[i]) / 255.f;
  Tensor standardised = img.clone();
  data::normalize_(standardised, data::Normalize{{0.3f}, {0.3f}});
  const Tensor want = expected(dir / "plain.h5", standardised);
  // The normalisation matters: the plain model on the raw pixels differs.
  CHECK(std::fabs(expected(dir / "plain.h5", img).at({0, 0}) - want.at({0, 0})) > 1e-3f);

  serve::Server server(options_for("fashion", dir / "norm.h5"));
  server.start();
  httplib::Client c("127.0.0.1", server.port());
  auto r = c.Post("/v1/models/fashion:predict", bmp_grey(px, 8, 8), "image/bmp");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  check_rows(json::parse(r->body)["predictions"], want);
  r = post_json(c, "/predict", {{"x_input", nhwc(img)}});
  REQUIRE(r->status == 200);
  check_rows(json::parse(r->body)["prediction"], want);
  server.stop();
}

TEST_CASE("serve: an int8 model from quantize() is served and answers as it does in process", "[serve][quantize]") {
  TempDir dir("serve_int8");
  manual_seed(31);
  nn::Sequential m({1, 8, 8});
  m.add(nn::Conv2D(4, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2)).add(nn::Flatten()).add(nn::Dense(3));
  QuantizeOptions qo;
  qo.quiet = true;
  auto q = quantize(m, samples(100, 32), qo);
  REQUIRE(q->layers().front()->type_name() == "QuantizedConv2D");
  save_model(*q, dir / "int8.h5");
  const Tensor x = samples(3, 33);
  Tensor want;
  {
    const NoGradGuard no_grad;
    auto loaded = load_model(dir / "int8.h5");
    loaded->eval();
    want = (*loaded)(x);
  }
  CHECK(want.to_vector() == (*q)(x).to_vector());
  serve::Server server(options_for("int8", dir / "int8.h5"));
  server.start();
  httplib::Client c("127.0.0.1", server.port());
  auto r = post_json(c, "/predict", {{"x_input", nhwc(x)}});
  REQUIRE(r);
  REQUIRE(r->status == 200);
  check_rows(json::parse(r->body)["prediction"], want);
  r = post_json(c, "/v1/models/int8:predict", {{"instances", nhwc(x.slice_rows(1, 2))}});
  REQUIRE(r);
  REQUIRE(r->status == 200);
  check_rows(json::parse(r->body)["predictions"], want.slice_rows(1, 2));
  server.stop();
}

TEST_CASE("serve: command line", "[serve]") {
  const char* ok[] = {"maas-serve", "--model", "a=x.h5", "--model=b=y.h5", "--port", "0", "--max-batch=8", "--log-format", "json"};
  const serve::ServeOptions o = serve::parse_args(9, ok);
  CHECK(o.models.size() == 2);
  CHECK(o.models[1].second == "y.h5");
  CHECK(o.max_batch == 8);
  CHECK(o.log_json);
  const char* bad[] = {"maas-serve", "--port", "70000"};
  CHECK_THROWS_WITH(serve::parse_args(3, bad), Catch::Contains("--port"));
  const char* unknown[] = {"maas-serve", "--frobnicate"};
  CHECK_THROWS_WITH(serve::parse_args(2, unknown), Catch::Contains("unknown option"));
  const char* lm[] = {"maas-serve", "--model", "g=gpt.h5", "--max-sequences", "4", "--max-context", "32",
                      "--prefill-chunk", "0"};
  const serve::ServeOptions g = serve::parse_args(9, lm);
  CHECK(g.max_sequences == 4);
  CHECK(g.max_context == 32);
  CHECK(g.prefill_chunk == 0);
  const char* no_sequences[] = {"maas-serve", "--max-sequences", "0"};
  CHECK_THROWS_WITH(serve::parse_args(3, no_sequences), Catch::Contains("--max-sequences"));
  for (const char* flag : {"--model ", "--model-dir", "--host", "--port", "--threads", "--max-batch", "--batch-timeout-us",
                           "--max-body-bytes", "--max-queue", "--max-sequences", "--max-context", "--prefill-chunk",
                           "--token", "--log-format", "--help"})
    CHECK(serve::usage().find(flag) != std::string::npos);
}
