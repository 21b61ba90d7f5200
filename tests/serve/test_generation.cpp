// maas-serve's language-model routes over real sockets: OpenAI's
// /v1/completions and /v1/chat/completions, plain and streamed
// (Server-Sent Events read from a raw socket as a client reads them),
// continuous batching (a request's text alone equals its text among
// others), a client leaving mid-stream, a full pool, and the errors.
// The models are tiny random GPTs (tests/nn/gpt_model.hpp) with a character
// tokenizer of lowercase letters, ' ', ':' and '\n'. Nothing here asserts a
// duration: where a test needs a generation still running when the client
// acts, it uses a long one and tries again if it ended first.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "data/temp_dir.hpp"
#include "maas/checkpoint.hpp"
#include "maas/data/text.hpp"
#include "maas/maas.hpp"
#include "maas/serve.hpp"
#include "nn/gpt_model.hpp"
#include "serve/prometheus.hpp"

using namespace maas;
using json = nlohmann::json;
using maas::test::metric;

namespace {

const char* const kAlphabet = "abcdefghijklmnopqrstuvwxyz :\n";

// A random GPT of context `block`, saved with its tokenizer as examples/gpt --save does.
void save_gpt(const std::string& path, int64_t block) {
  const data::CharTokenizer tokenizer = data::CharTokenizer::from_text(kAlphabet);
  manual_seed(11);
  nn::Model model = test::build_gpt(tokenizer.vocab_size(), block, 1, 2, 16, true);
  model.metadata()["tokenizer"] = tokenizer.to_json();
  save_model(model, path);
}

void save_classifier(const std::string& path) {
  manual_seed(3);
  nn::Sequential m({4});
  m.add(nn::Dense(2));
  save_model(m, path);
}

struct Fixture {
  test::TempDir dir{"serve_generation"};
  std::unique_ptr<serve::Server> server;

  // Serves "gpt" (context 64), "long" (context 2048) and "mlp" (a classifier).
  explicit Fixture(int64_t max_sequences = 16, int64_t max_queue = 1024, const std::string& token = "",
                   int64_t prefill_chunk = 64) {
    save_gpt(dir / "gpt.h5", 64);
    save_gpt(dir / "long.h5", 2048);
    save_classifier(dir / "mlp.h5");
    serve::ServeOptions o;
    o.port = 0;
    o.quiet = true;
    o.max_sequences = max_sequences;
    o.max_queue = max_queue;
    o.token = token;
    o.prefill_chunk = prefill_chunk;
    o.models = {{"gpt", dir / "gpt.h5"}, {"long", dir / "long.h5"}, {"mlp", dir / "mlp.h5"}};
    server = std::make_unique<serve::Server>(o);
    server->start();
  }
  ~Fixture() { server->stop(); }
  int port() const { return server->port(); }
  double gauge(const std::string& series) {
    httplib::Client c("127.0.0.1", port());
    auto r = c.Get("/metrics");
    REQUIRE(r);
    return metric(r->body, series);
  }
  // Waits (without a deadline that could fail a slow machine: 120 s) until `series` reads `value`.
  void await(const std::string& series, double value) {
    for (int i = 0; i < 12000 && gauge(series) != value; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(gauge(series) == value);
  }
  // Waits until `model` decodes nothing and nothing waits: both gauges read
  // 0 in one scrape (a request leaving its queue shows as queued 0 with
  // active 0 for a moment before it is admitted).
  void await_idle(const std::string& model) {
    const auto idle = [&] {
      httplib::Client c("127.0.0.1", port());
      auto r = c.Get("/metrics");
      REQUIRE(r);
      return metric(r->body, "maas_generation_active_sequences{model=\"" + model + "\"}") == 0 &&
             metric(r->body, "maas_generation_queued_requests{model=\"" + model + "\"}") == 0;
    };
    for (int i = 0; i < 12000 && !idle(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(idle());
  }
};

httplib::Result post(int port, const std::string& path, const json& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120);
  return c.Post(path.c_str(), body.dump(), "application/json");
}

// A raw HTTP/1.1 client, to read a stream as it comes and to leave mid-stream.
int open_post(int port, const std::string& path, const std::string& body) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                              "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  return fd;
}

// Reads until `needle` has arrived (or the end); returns all that was read.
std::string read_until(int fd, const std::string& needle = "") {
  std::string got;
  char buf[4096];
  while (needle.empty() || got.find(needle) == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Closes with a reset, as a client killed mid-stream.
void reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

struct Answer {
  int status = 0;
  std::string head, body;
  std::vector<std::string> events;  // the `data:` payloads of a stream
};

Answer parse_answer(const std::string& raw) {
  Answer a;
  const size_t end = raw.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  a.head = raw.substr(0, end);
  a.status = std::stoi(a.head.substr(9, 3));
  std::string rest = raw.substr(end + 4);
  if (a.head.find("Transfer-Encoding: chunked") == std::string::npos) {
    a.body = rest;
    return a;
  }
  for (size_t at = 0;;) {  // chunked: HEX\r\nDATA\r\n ... 0\r\n\r\n
    const size_t line = rest.find("\r\n", at);
    REQUIRE(line != std::string::npos);
    const size_t n = std::stoul(rest.substr(at, line - at), nullptr, 16);
    if (n == 0) break;
    a.body += rest.substr(line + 2, n);
    at = line + 2 + n + 2;
  }
  for (size_t at = 0; at < a.body.size();) {  // events end with a blank line
    size_t stop = a.body.find("\n\n", at);
    REQUIRE(stop != std::string::npos);
    const std::string event = a.body.substr(at, stop - at);
    REQUIRE(event.rfind("data: ", 0) == 0);
    a.events.push_back(event.substr(6));
    at = stop + 2;
  }
  return a;
}

Answer stream(int port, const std::string& path, json body) {
  body["stream"] = true;
  const int fd = open_post(port, path, body.dump());
  const std::string raw = read_until(fd);
  ::close(fd);
  return parse_answer(raw);
}

// The text of a stream's chunks, checking their shape; `last` gets the final chunk.
std::string streamed_text(const Answer& a, bool chat, json* last = nullptr) {
  REQUIRE(a.status == 200);
  CHECK(a.head.find("Content-Type: text/event-stream") != std::string::npos);
  REQUIRE(a.events.size() >= 2);
  CHECK(a.events.back() == "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < a.events.size(); ++i) {
    const json chunk = json::parse(a.events[i]);
    CHECK(chunk.at("object") == (chat ? "chat.completion.chunk" : "text_completion"));
    const json& choice = chunk.at("choices").at(0);
    if (chat) {
      if (i == 0) CHECK(choice.at("delta").at("role") == "assistant");
      if (choice.at("delta").contains("content")) text += choice["delta"]["content"].get<std::string>();
    } else {
      text += choice.at("text").get<std::string>();
    }
    const bool final_chunk = i + 2 == a.events.size();
    CHECK(choice.at("finish_reason").is_null() != final_chunk);
    if (final_chunk && last != nullptr) *last = chunk;
  }
  return text;
}

json completion(int port, const json& body, const std::string& path = "/v1/completions") {
  auto r = post(port, path, body);
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 200);
  return json::parse(r->body);
}

std::string text_of(const json& answer) { return answer.at("choices").at(0).at("text").get<std::string>(); }

json error_of(const httplib::Result& r, int status) {
  REQUIRE(r);
  INFO(r->body);
  CHECK(r->status == status);
  const json e = json::parse(r->body).at("error");
  CHECK(e.at("message").is_string());
  CHECK(e.at("type") == (status >= 500 ? "server_error" : "invalid_request_error"));
  CHECK(e.contains("param"));
  CHECK(e.contains("code"));
  return e;
}

const std::string kActive = "maas_generation_active_sequences{model=\"long\"}";
const std::string kQueued = "maas_generation_queued_requests{model=\"long\"}";
const std::string kCancelled = "maas_generation_finished_total{model=\"long\",reason=\"cancelled\"}";

}  // namespace

TEST_CASE("serve: a saved GPT is a language model on /v1/completions and /v1/models", "[serve][generation]") {
  Fixture f;
  const json body = {{"model", "gpt"}, {"prompt", "to be or"}, {"max_tokens", 12}, {"seed", 5}};
  const json a = completion(f.port(), body);
  CHECK(a.at("object") == "text_completion");
  CHECK(a.at("model") == "gpt");
  CHECK(a.at("id").get<std::string>().rfind("cmpl-", 0) == 0);
  CHECK(a.at("created").get<int64_t>() > 0);
  CHECK(a.at("choices").at(0).at("index") == 0);
  CHECK(a.at("choices").at(0).at("finish_reason") == "length");
  CHECK(text_of(a).size() == 12);  // one character per token
  CHECK(a.at("usage") == json({{"prompt_tokens", 8}, {"completion_tokens", 12}, {"total_tokens", 20}}));
  CHECK(text_of(completion(f.port(), body)) == text_of(a));  // the same seed, the same text

  // Greedy: the same text whatever the seed; the model defaults to the first language model.
  const std::string greedy = text_of(completion(f.port(), {{"prompt", "ab"}, {"temperature", 0}, {"seed", 1}}));
  CHECK(greedy.size() == 16);  // max_tokens' default
  CHECK(text_of(completion(f.port(), {{"prompt", "ab"}, {"temperature", 0}, {"seed", 2}})) == greedy);
  // top_k 1 is greedy too; unknown fields are ignored.
  CHECK(text_of(completion(f.port(), {{"prompt", "ab"}, {"top_k", 1}, {"user", "x"}, {"logit_bias", json::object()}})) ==
        greedy);

  auto r = httplib::Client("127.0.0.1", f.port()).Get("/v1/models");
  REQUIRE(r);
  const json models = json::parse(r->body);
  CHECK(models.at("object") == "list");
  REQUIRE(models.at("data").size() == 2);  // not the classifier
  CHECK(models["data"][0].at("id") == "gpt");
  CHECK(models["data"][1].at("id") == "long");

  const std::string metrics = httplib::Client("127.0.0.1", f.port()).Get("/metrics")->body;
  CHECK(metric(metrics, "maas_generation_tokens_total{model=\"gpt\"}") == 12 + 12 + 16 * 3);
  CHECK(metric(metrics, "maas_generation_prompt_tokens_total{model=\"gpt\"}") == 8 + 8 + 2 * 3);
  CHECK(metric(metrics, "maas_generation_finished_total{model=\"gpt\",reason=\"length\"}") == 5);
  CHECK(metric(metrics, "maas_generation_time_to_first_token_seconds_count{model=\"gpt\"}") == 5);
  CHECK(metric(metrics, "maas_generation_time_per_output_token_seconds_count{model=\"gpt\"}") == 11 + 11 + 15 * 3);
  CHECK(metric(metrics, "maas_generation_active_sequences{model=\"gpt\"}") == 0);
  CHECK(metric(metrics, "maas_generation_kv_cache_usage_ratio{model=\"gpt\"}") == 0);
}

TEST_CASE("serve: a streamed completion's chunks add up to the text the same seed gives unstreamed",
          "[serve][generation]") {
  Fixture f;
  const json body = {{"model", "gpt"}, {"prompt", "hello"}, {"max_tokens", 30}, {"seed", 7}, {"temperature", 0.8}};
  const std::string whole = text_of(completion(f.port(), body));
  json last;
  const Answer a = stream(f.port(), "/v1/completions", body);
  CHECK(a.events.size() == 30 + 2);  // a chunk per token, the final chunk, [DONE]
  CHECK(streamed_text(a, false, &last) == whole);
  CHECK(last.at("choices").at(0).at("finish_reason") == "length");
  CHECK(last.at("usage").at("completion_tokens") == 30);

  // Chat: the messages in the template, the answer as a message or as deltas.
  const json chat = {{"model", "gpt"},
                     {"messages", {{{"role", "user"}, {"content", "hi there"}}}},
                     {"max_tokens", 20},
                     {"seed", 3}};
  const json c = completion(f.port(), chat, "/v1/chat/completions");
  CHECK(c.at("object") == "chat.completion");
  CHECK(c.at("id").get<std::string>().rfind("chatcmpl-", 0) == 0);
  const json& message = c.at("choices").at(0).at("message");
  CHECK(message.at("role") == "assistant");
  CHECK(c.at("usage").at("prompt_tokens") == std::string("user: hi there\nassistant: ").size());
  CHECK(streamed_text(stream(f.port(), "/v1/chat/completions", chat), true) == message.at("content"));
  // The template is the prompt: the same text through /v1/completions.
  CHECK(text_of(completion(f.port(), {{"model", "gpt"}, {"prompt", "user: hi there\nassistant: "}, {"max_tokens", 20},
                                      {"seed", 3}})) == message.at("content"));
}

TEST_CASE("serve: a prompt of the whole context, and more tokens than it holds, are generated", "[serve][generation]") {
  // The cache fills and decoding starts again from its last 32 tokens, as
  // nn::Decoder::generate does: the text is the library's for the same seed,
  // whether the prompts go in whole or 5 tokens a step beside other streams.
  const data::CharTokenizer tokenizer = data::CharTokenizer::from_text(kAlphabet);
  std::string want;
  for (const int64_t chunk : {64, 5}) {
    Fixture f(16, 1024, "", chunk);
    const json body = {{"model", "gpt"}, {"prompt", std::string(64, 'q')}, {"max_tokens", 64}, {"seed", 9}};
    if (want.empty()) {
      std::unique_ptr<nn::Network> model = load_model(f.dir / "gpt.h5");
      nn::Decoder decoder(*model);
      Generator gen(9);
      want = tokenizer.decode(decoder.generate(tokenizer.encode(std::string(64, 'q')), 64, {}, gen));
    }
    std::string other;
    std::thread beside([&] {
      other = text_of(completion(f.port(), {{"model", "gpt"}, {"prompt", "abc"}, {"max_tokens", 64}, {"seed", 1}}));
    });
    const json a = completion(f.port(), body);
    beside.join();
    CHECK(text_of(a) == want);
    CHECK(a.at("choices").at(0).at("finish_reason") == "length");
    CHECK(streamed_text(stream(f.port(), "/v1/completions", body), false) == want);
    CHECK(other.size() == 64);
  }
}

TEST_CASE("serve: a stop string ends the text before it, streamed or not", "[serve][generation]") {
  Fixture f;
  json body = {{"model", "gpt"}, {"prompt", "abc"}, {"max_tokens", 40}, {"seed", 21}};
  const std::string free_text = text_of(completion(f.port(), body));
  REQUIRE(free_text.size() == 40);
  const std::string stop = free_text.substr(20, 3);  // found at 20 or before
  const size_t at = free_text.find(stop);
  body["stop"] = {"never", stop};
  const json a = completion(f.port(), body);
  CHECK(text_of(a) == free_text.substr(0, at));
  CHECK(a.at("choices").at(0).at("finish_reason") == "stop");
  CHECK(a.at("usage").at("completion_tokens") == static_cast<int64_t>(at + stop.size()));
  json last;
  CHECK(streamed_text(stream(f.port(), "/v1/completions", body), false, &last) == free_text.substr(0, at));
  CHECK(last.at("choices").at(0).at("finish_reason") == "stop");
  body["stop"] = stop;  // one string
  CHECK(text_of(completion(f.port(), body)) == free_text.substr(0, at));
}

TEST_CASE("serve: 8 concurrent streams each equal its run alone", "[serve][generation]") {
  Fixture f;
  std::vector<json> bodies;
  std::vector<std::string> alone;
  for (int i = 0; i < 8; ++i) {
    // Up to 64 + 8 positions: the longer ones fill the context of 64 and
    // start again from its last half while the others decode beside them.
    bodies.push_back({{"model", "gpt"}, {"prompt", std::string(1 + 7 * i, 'a' + i)}, {"max_tokens", 20 + 4 * i},
                      {"seed", 100 + i}, {"top_p", 0.9}});
    alone.push_back(text_of(completion(f.port(), bodies.back())));
  }
  std::vector<std::string> together(8);
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      json b = bodies[i];
      b["stream"] = true;
      const int fd = open_post(f.port(), "/v1/completions", b.dump());
      together[i] = read_until(fd);
      ::close(fd);
    });
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < 8; ++i) {
    INFO("stream " << i);
    CHECK(streamed_text(parse_answer(together[i]), false) == alone[i]);
  }
}

TEST_CASE("serve: a client leaving mid-stream frees its sequence", "[serve][generation]") {
  Fixture f(1);
  const json body = {{"model", "long"}, {"prompt", "a"}, {"max_tokens", 2000}, {"stream", true}, {"seed", 1}};
  bool seen = false;  // the stream was running when it was seen, and was cancelled
  for (int attempt = 0; attempt < 5 && !seen; ++attempt) {
    const double cancelled = std::max(0.0, f.gauge(kCancelled));
    const int fd = open_post(f.port(), "/v1/completions", body.dump());
    read_until(fd, "data: ");
    const bool running = f.gauge(kActive) == 1;
    reset(fd);
    f.await(kActive, 0);
    seen = running && f.gauge(kCancelled) == cancelled + 1;
  }
  CHECK(seen);
  CHECK(f.gauge("maas_generation_kv_cache_usage_ratio{model=\"long\"}") == 0);
  // The slot serves the next request.
  CHECK(text_of(completion(f.port(), {{"model", "long"}, {"prompt", "b"}, {"max_tokens", 3}})).size() == 3);
}

TEST_CASE("serve: with every sequence decoding and the queue full, a request gets 503 and Retry-After",
          "[serve][generation]") {
  Fixture f(1, 1);
  const json body = {{"model", "long"}, {"prompt", "a"}, {"max_tokens", 2000}, {"stream", true}};
  bool refused = false;
  for (int attempt = 0; attempt < 5 && !refused; ++attempt) {
    const int running = open_post(f.port(), "/v1/completions", body.dump());
    read_until(running, "data: ");  // holds the one slot
    const int waiting = open_post(f.port(), "/v1/completions", body.dump());
    for (int i = 0; i < 12000 && f.gauge(kQueued) + f.gauge(kActive) < 2; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto r = post(f.port(), "/v1/completions", {{"model", "long"}, {"prompt", "a"}, {"max_tokens", 2}});
    REQUIRE(r);
    if (r->status == 503) {
      refused = true;
      CHECK(r->get_header_value("Retry-After") == "1");
      CHECK(error_of(r, 503).at("message").get<std::string>().find("--max-queue") != std::string::npos);
    }
    reset(running);
    reset(waiting);
    f.await_idle("long");
  }
  CHECK(refused);
}

TEST_CASE("serve: language-model requests that cannot be served get OpenAI's error shape", "[serve][generation]") {
  Fixture f;
  const int port = f.port();
  auto message = [](const json& e) { return e.at("message").get<std::string>(); };

  json e = error_of(post(port, "/v1/completions", {{"model", "gpt"}, {"prompt", "abcdefghij"}, {"max_tokens", 65}}), 400);
  CHECK(message(e).find("max_tokens 65 is beyond the model's context of 64") != std::string::npos);
  CHECK(e.at("param") == "max_tokens");
  CHECK(e.at("code") == "context_length_exceeded");

  e = error_of(post(port, "/v1/completions", {{"model", "gpt"}, {"prompt", std::string(65, 'a')}}), 400);
  CHECK(message(e).find("65 tokens, longer than the model's context of 64") != std::string::npos);
  CHECK(e.at("param") == "prompt");
  CHECK(e.at("code") == "context_length_exceeded");

  e = error_of(post(port, "/v1/completions", {{"model", "gpt"}, {"prompt", "what?"}}), 400);
  CHECK(message(e).find("'?'") != std::string::npos);
  CHECK(e.at("code") == "unsupported_character");
  e = error_of(post(port, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}}), 400);
  CHECK(message(e).find("'H'") != std::string::npos);
  CHECK(e.at("param") == "messages");

  CHECK(error_of(post(port, "/v1/completions", {{"prompt", "a"}, {"n", 2}}), 400).at("param") == "n");
  CHECK(error_of(post(port, "/v1/completions", {{"prompt", "a"}, {"temperature", -1}}), 400).at("param") ==
        "temperature");
  CHECK(error_of(post(port, "/v1/completions", {{"prompt", "a"}, {"top_p", 0}}), 400).at("param") == "top_p");
  CHECK(error_of(post(port, "/v1/completions", {{"prompt", "a"}, {"max_tokens", 0}}), 400).at("param") ==
        "max_tokens");
  CHECK(error_of(post(port, "/v1/completions", {{"prompt", "a"}, {"stop", {"a", "b", "c", "d", "e"}}}), 400)
            .at("param") == "stop");
  CHECK(error_of(post(port, "/v1/completions", {{"prompt", ""}}), 400).at("param") == "prompt");
  CHECK(error_of(post(port, "/v1/completions", {{"max_tokens", 3}}), 400).at("param") == "prompt");
  CHECK(error_of(post(port, "/v1/chat/completions", {{"messages", json::array()}}), 400).at("param") == "messages");
  {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Post("/v1/completions", "{\"prompt\": ", "application/json");
    CHECK(message(error_of(r, 400)).find("malformed JSON") != std::string::npos);
  }
  CHECK(error_of(post(port, "/v1/completions", {{"model", "nope"}, {"prompt", "a"}}), 404).at("code") ==
        "model_not_found");
  // A classifier on the language-model routes, and a language model on the classifiers'.
  e = error_of(post(port, "/v1/completions", {{"model", "mlp"}, {"prompt", "a"}}), 400);
  CHECK(message(e).find("/v1/models/mlp:predict") != std::string::npos);
  auto r = post(port, "/v1/models/gpt:predict", {{"instances", json::array({std::vector<float>(64, 1.f)})}});
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(json::parse(r->body).at("error").get<std::string>().find("language model") != std::string::npos);
  r = post(port, "/v2/models/gpt/infer",
           {{"inputs", {{{"name", "x"}, {"shape", {1, 64}}, {"datatype", "FP32"}, {"data", std::vector<float>(64)}}}}});
  REQUIRE(r);
  CHECK(r->status == 400);
  // The classifier still answers its routes.
  r = post(port, "/v1/models/mlp:predict", {{"instances", {{1, 2, 3, 4}}}});
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("serve: the Open Inference Protocol's generate extension gives the same text", "[serve][generation]") {
  Fixture f;
  const json options = {{"max_tokens", 20}, {"seed", 4}, {"temperature", 0.7}};
  json openai = options;
  openai["model"] = "gpt";
  openai["prompt"] = "to be";
  const std::string want = text_of(completion(f.port(), openai));
  const json body = {{"text_input", "to be"}, {"parameters", options}};
  auto r = post(f.port(), "/v2/models/gpt/generate", body);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  const json a = json::parse(r->body);
  CHECK(a.at("model_name") == "gpt");
  CHECK(a.at("model_version") == "1");
  CHECK(a.at("text_output") == want);
  CHECK(a.at("finish_reason") == "length");
  r = post(f.port(), "/v2/models/gpt/versions/1/generate", body);
  REQUIRE(r);
  CHECK(json::parse(r->body).at("text_output") == want);

  const int fd = open_post(f.port(), "/v2/models/gpt/generate_stream", body.dump());
  const Answer s = parse_answer(read_until(fd));
  ::close(fd);
  REQUIRE(s.status == 200);
  REQUIRE(s.events.size() == 21);  // one per token, then the last with the finish reason
  std::string text;
  for (const std::string& e : s.events) text += json::parse(e).at("text_output").get<std::string>();
  CHECK(text == want);
  CHECK(json::parse(s.events.back()).at("finish_reason") == "length");

  const auto error = [&](const std::string& path, const json& b, int status) {
    auto e = post(f.port(), path, b);
    REQUIRE(e);
    CHECK(e->status == status);
    return json::parse(e->body).at("error").get<std::string>();
  };
  CHECK(error("/v2/models/gpt/generate", {{"text_input", "A"}}, 400).find("'A'") != std::string::npos);
  CHECK(error("/v2/models/gpt/generate", {{"parameters", options}}, 400).find("text_input") != std::string::npos);
  CHECK(error("/v2/models/gpt/generate", {{"text_input", "a"}, {"parameters", {{"max_tokens", 65}}}}, 400)
            .find("context of 64") != std::string::npos);
  CHECK(error("/v2/models/mlp/generate", {{"text_input", "a"}}, 400).find("not a language model") !=
        std::string::npos);
  CHECK(error("/v2/models/nope/generate", {{"text_input", "a"}}, 404).find("nope") != std::string::npos);
}

TEST_CASE("serve: the language-model routes need the bearer token", "[serve][generation]") {
  Fixture f(16, 1024, "s3cret");
  httplib::Client c("127.0.0.1", f.port());
  auto r = c.Post("/v1/completions", R"({"prompt": "ab", "max_tokens": 2})", "application/json");
  REQUIRE(r);
  CHECK(r->status == 401);
  r = c.Get("/v1/models");
  REQUIRE(r);
  CHECK(r->status == 401);
  c.set_bearer_token_auth("s3cret");
  r = c.Post("/v1/completions", R"({"prompt": "ab", "max_tokens": 2})", "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
}
