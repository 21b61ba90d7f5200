// OpenAI's API, for the language models maas-serve serves (a GPT saved with
// its tokenizer; repository.hpp), as OpenAI's clients speak it:
//   POST /v1/completions
//        {"model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream"}
//        -> {"id", "object": "text_completion", "created", "model",
//            "choices": [{"text", "index": 0, "logprobs": null, "finish_reason": "stop" | "length"}],
//            "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}
//   POST /v1/chat/completions
//        {"model", "messages": [{"role", "content"}, ...], and the same options}
//        -> {..., "object": "chat.completion",
//            "choices": [{"index": 0, "message": {"role": "assistant", "content"}, "finish_reason"}], "usage"}
//   GET  /v1/models  -> {"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}: the language models
//
// Options: model: a language model's name (default: the first one served);
// prompt: a string (or a list of one) of at most the model's context;
// max_tokens in [1, context] (default 16, or the context when less): when the
// context fills, decoding starts again from its last half (generation.hpp);
// temperature >= 0 (default 1; 0: greedy);
// top_p in (0, 1] (default 1); top_k >= 0 (default 0: all tokens); seed: an
// integer (default: a random one), the same request and seed give the same
// text; stop: a string or up to 4 (the text ends before the first found);
// n: 1 only. Other fields are ignored, as OpenAI's server does.
//
// The chat template, plain so that a character-level model can follow it:
// each message as "ROLE: CONTENT\n", then "assistant: ", after which the
// model writes. Every character must be in the model's vocabulary.
//
// "stream": true answers Server-Sent Events, one `data: {chunk}` per token
// (a few tokens together while they may begin a stop string), each flushed
// at once, then a chunk with the finish_reason and usage, then
// `data: [DONE]`. Chunks are "text_completion" objects with "text", or
// "chat.completion.chunk" objects with "delta" ({"role", "content"} first,
// then {"content"}). A client that disconnects frees its sequence at the
// next step.
//
// The Open Inference Protocol's generate extension (routed by
// api_kserve.cpp): POST /v2/models/NAME[/versions/V]/generate
//        {"text_input", "parameters": {the options above}}
//        -> {"model_name", "model_version", "text_output", "finish_reason"}
// and /generate_stream: one such event per token (text_output the piece),
// the last with the finish_reason. Its errors are the protocol's {"error"}.
//
// Errors are {"error": {"message", "type", "param", "code"}}: 400 for a bad
// request (a prompt or max_tokens beyond the context, a character outside
// the vocabulary, n > 1, malformed JSON), 404 for an unknown model, 503 with
// Retry-After when every sequence is decoding and the queue is full.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <random>

#include "maas/error.hpp"
#include "serve/api.hpp"

namespace maas::serve {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// A request OpenAI's way refuses: the status, and the field at fault.
struct OpenAiError : HttpError {
  OpenAiError(int status, const std::string& message, std::string param = "", std::string code = "")
      : HttpError(status, message), param(std::move(param)), code(std::move(code)) {}
  std::string param, code;
};

void reply_error(httplib::Response& res, int status, const std::string& message, const std::string& param,
                 const std::string& code) {
  JsonOut o;
  o.raw("{\"error\":{\"message\":").str(message);
  o.raw(",\"type\":").str(status >= 500 ? "server_error" : "invalid_request_error");
  o.raw(",\"param\":");
  param.empty() ? o.raw("null") : o.str(param);
  o.raw(",\"code\":");
  code.empty() ? o.raw("null") : o.str(code);
  o.raw("}}");
  reply_json(res, std::move(o.s), status);
}

// Runs `route`, answering what it throws in OpenAI's shape.
template <typename F>
void answer(httplib::Response& res, F&& route) {
  try {
    route();
  } catch (const OpenAiError& e) {
    reply_error(res, e.status, e.what(), e.param, e.code);
  } catch (const HttpError& e) {  // find_model's 404, parse_json's 400
    reply_error(res, e.status, e.what(), e.status == 404 ? "model" : "", e.status == 404 ? "model_not_found" : "");
  } catch (const QueueFull& e) {
    res.set_header("Retry-After", "1");
    reply_error(res, 503, e.what(), "", "");
  } catch (const Error& e) {
    reply_error(res, 400, e.what(), "", "");
  }
}

// The field `key` of `doc`, if present and not null.
bool field(element doc, const char* key, element& out) {
  return !doc[key].get(out) && out.type() != element_type::NULL_VALUE;
}

double number(element doc, const char* key, double fallback, double lo, double hi, bool open_lo = false) {
  element e;
  if (!field(doc, key, e)) return fallback;
  double v = 0;
  if (e.get(v) || !std::isfinite(v) || v < lo || (open_lo && v == lo) || v > hi)
    throw OpenAiError(400, std::string("\"") + key + "\" must be a number in " + (open_lo ? "(" : "[") +
                               JsonOut().num(lo).s + ", " + JsonOut().num(hi).s + "]",
                      key);
  return v;
}

// An integer field, `fallback` when absent.
int64_t integer(element doc, const char* key, int64_t fallback, int64_t lo) {
  element e;
  if (!field(doc, key, e)) return fallback;
  int64_t v = 0;
  if (e.get(v) || v < lo)
    throw OpenAiError(400, std::string("\"") + key + "\" must be an integer >= " + std::to_string(lo), key);
  return v;
}

std::string text_field(element e, const char* what) {
  std::string_view s;
  if (e.get(s)) throw OpenAiError(400, std::string("\"") + what + "\" must be a string", what);
  return std::string(s);
}

// The model named by "model", or the first language model served.
std::shared_ptr<ServedModel> language_model(const Context& ctx, element doc) {
  element e;
  std::string name;
  if (field(doc, "model", e)) {
    name = text_field(e, "model");
  } else {
    for (const std::string& n : ctx.repo.names()) {
      const auto m = ctx.repo.find(n);
      if (m != nullptr && m->generation != nullptr) {
        name = n;
        break;
      }
    }
    if (name.empty()) throw OpenAiError(404, "no language model is served", "model", "model_not_found");
  }
  auto m = find_model(ctx, name, "");
  if (m->generation == nullptr)
    throw OpenAiError(400,
                      "model '" + name + "' is not a language model (a GPT saved with its tokenizer): it is served at "
                      "/v1/models/" + name + ":predict and /v2/models/" + name + "/infer",
                      "model", "model_not_supported");
  return m;
}

// The prompt of /v1/completions: a string, or a list of one.
std::string completion_prompt(element doc) {
  element e;
  if (doc["prompt"].get(e)) throw OpenAiError(400, "\"prompt\" is missing", "prompt");
  if (e.type() == element_type::ARRAY) {
    simdjson::dom::array a = e;
    if (a.size() != 1)
      throw OpenAiError(400, "\"prompt\" holds " + std::to_string(a.size()) + " prompts; one is served per request",
                        "prompt");
    e = *a.begin();
  }
  return text_field(e, "prompt");
}

// The messages of /v1/chat/completions in the chat template.
std::string chat_prompt(element doc) {
  element e;
  if (doc["messages"].get(e) || e.type() != element_type::ARRAY || simdjson::dom::array(e).size() == 0)
    throw OpenAiError(400, "\"messages\" must be a list of {\"role\", \"content\"}", "messages");
  std::string text;
  for (element message : simdjson::dom::array(e)) {
    element role, content;
    if (message.type() != element_type::OBJECT || message["role"].get(role) || message["content"].get(content))
      throw OpenAiError(400, "each message must be {\"role\": string, \"content\": string}", "messages");
    text += text_field(role, "role") + ": " + text_field(content, "content") + "\n";
  }
  return text + "assistant: ";
}

std::vector<std::string> stop_strings(element doc) {
  element e;
  std::vector<std::string> stop;
  if (!field(doc, "stop", e)) return stop;
  if (e.type() == element_type::ARRAY) {
    for (element s : simdjson::dom::array(e)) stop.push_back(text_field(s, "stop"));
    if (stop.size() > 4)
      throw OpenAiError(400, "\"stop\" holds " + std::to_string(stop.size()) + " strings; at most 4", "stop");
  } else {
    stop.push_back(text_field(e, "stop"));
  }
  stop.erase(std::remove(stop.begin(), stop.end(), std::string()), stop.end());
  return stop;
}

// The generation request for `text` (from the field `what`) with the
// options of `doc`: a /v1/completions or /v1/chat/completions body, or the
// generate extension's "parameters".
GenerationRequest generation_request(const GenerationEngine& engine, const std::string& text, const char* what,
                                     element doc) {
  GenerationRequest r;
  try {
    r.prompt = engine.tokenizer().encode(text);
  } catch (const Error& e) {  // a character outside the vocabulary: encode() names it
    throw OpenAiError(400, std::string(what) + ": " + e.what(), what, "unsupported_character");
  }
  const int64_t prompt = static_cast<int64_t>(r.prompt.size()), context = engine.context();
  if (prompt == 0) throw OpenAiError(400, std::string("the ") + what + " is empty", what);
  if (prompt > context)
    throw OpenAiError(400, "the " + std::string(what) + " is " + std::to_string(prompt) +
                               " tokens, longer than the model's context of " + std::to_string(context) + " tokens",
                      what, "context_length_exceeded");
  r.max_tokens = integer(doc, "max_tokens", std::min<int64_t>(16, context), 1);
  if (r.max_tokens > context)
    throw OpenAiError(400, "max_tokens " + std::to_string(r.max_tokens) + " is beyond the model's context of " +
                               std::to_string(context) + " tokens",
                      "max_tokens", "context_length_exceeded");
  r.sampling.temperature = static_cast<float>(number(doc, "temperature", 1.0, 0.0, 1e6));
  r.sampling.top_p = static_cast<float>(number(doc, "top_p", 1.0, 0.0, 1.0, true));
  r.sampling.top_k = integer(doc, "top_k", 0, 0);
  element seed;
  if (field(doc, "seed", seed)) {
    int64_t s = 0;
    uint64_t u = 0;
    if (!seed.get(s)) r.seed = static_cast<uint64_t>(s);
    else if (!seed.get(u)) r.seed = u;
    else throw OpenAiError(400, "\"seed\" must be an integer", "seed");
  } else {
    r.seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  }
  r.stop = stop_strings(doc);
  const int64_t n = integer(doc, "n", 1, 1);
  if (n != 1) throw OpenAiError(400, "\"n\" is " + std::to_string(n) + ": one choice per request is served", "n");
  return r;
}

// What every answer of one request begins with.
struct Head {
  std::string id, model;
  int64_t created = 0;
  bool chat = false;
};

void begin(JsonOut& o, const Head& h, const char* object) {
  o.raw("{\"id\":").str(h.id).raw(",\"object\":").str(object).raw(",\"created\":").integer(h.created);
  o.raw(",\"model\":").str(h.model);
}

void usage(JsonOut& o, const Completion& c) {
  o.raw(",\"usage\":{\"prompt_tokens\":").integer(c.prompt_tokens());
  o.raw(",\"completion_tokens\":").integer(c.completion_tokens());
  o.raw(",\"total_tokens\":").integer(c.prompt_tokens() + c.completion_tokens()).raw("}");
}

// One streamed chunk: `text` (the first of a chat also gives the role), and
// when `last` the finish reason and usage.
std::string chunk(const Head& h, const std::string& text, bool first, const Completion* last) {
  JsonOut o;
  begin(o, h, h.chat ? "chat.completion.chunk" : "text_completion");
  o.raw(",\"choices\":[{\"index\":0,");
  if (h.chat) {
    o.raw("\"delta\":{");
    if (first) o.raw("\"role\":\"assistant\"");
    if (!text.empty() || first) o.raw(first ? "," : "").raw("\"content\":").str(text);
    o.raw("}");
  } else {
    o.raw("\"text\":").str(text).raw(",\"logprobs\":null");
  }
  o.raw(",\"finish_reason\":");
  last != nullptr ? o.str(last->finish_reason()) : o.raw("null");
  o.raw("}]");
  if (last != nullptr) usage(o, *last);
  o.raw("}");
  return "data: " + o.s + "\n\n";
}

// The answer as Server-Sent Events, each written as soon as the decoding
// thread releases it. The response holds the model (and so its engine).
void stream_reply(httplib::Response& res, std::shared_ptr<ServedModel> m, std::shared_ptr<Completion> c,
                  const Head& head) {
  res.set_header("Cache-Control", "no-cache");
  bool first = true;
  res.set_chunked_content_provider(
      "text/event-stream",
      [m, c, head, first](size_t, httplib::DataSink& sink) mutable {
        std::string text, event;
        const bool more = c->next(text);
        if (more) {
          event = chunk(head, text, first, nullptr);
          first = false;
        } else {
          if (c->finish_reason() == "error") {
            JsonOut o;
            o.raw("{\"error\":{\"message\":").str("generation failed: " + c->error());
            o.raw(",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
            event = "data: " + o.s + "\n\n";
          }
          event += chunk(head, "", first, c.get()) + "data: [DONE]\n\n";
        }
        if (!sink.write(event.data(), event.size())) {
          c->cancel();  // the client is gone
          return false;
        }
        if (!more) sink.done();
        return true;
      },
      [c](bool) { c->cancel(); });  // ends it if the stream stopped early; a finished one is unaffected
}

std::atomic<uint64_t> request_count{0};

void complete(const Context& ctx, const httplib::Request& req, httplib::Response& res, bool chat) {
  answer(res, [&] {
    const element doc = parse_json(req.body);
    if (doc.type() != element_type::OBJECT) throw OpenAiError(400, "the body must be a JSON object");
    const auto m = language_model(ctx, doc);
    element e;
    bool stream = false;
    if (field(doc, "stream", e) && e.get(stream)) throw OpenAiError(400, "\"stream\" must be true or false", "stream");
    auto c = m->generation->submit(generation_request(*m->generation, chat ? chat_prompt(doc) : completion_prompt(doc),
                                                      chat ? "messages" : "prompt", doc));
    Head head;
    head.id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++request_count);
    head.model = m->name;
    head.created = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    head.chat = chat;
    if (stream) return stream_reply(res, m, std::move(c), head);
    std::string text;
    while (c->next(text)) {
    }
    const std::string finish = c->finish_reason();
    if (finish == "error") throw OpenAiError(500, "generation failed: " + c->error());
    if (finish == "cancelled") throw QueueFull("model '" + m->name + "' was unloaded during the generation");
    JsonOut o;
    begin(o, head, chat ? "chat.completion" : "text_completion");
    if (chat)
      o.raw(",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":").str(text).raw("}");
    else
      o.raw(",\"choices\":[{\"text\":").str(text).raw(",\"index\":0,\"logprobs\":null");
    o.raw(",\"finish_reason\":").str(finish).raw("}]");
    usage(o, *c);
    o.raw("}");
    reply_json(res, std::move(o.s));
  });
}

void completions(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  complete(ctx, req, res, false);
}

void chat_completions(const Context& ctx, const httplib::Request& req, httplib::Response& res) {
  complete(ctx, req, res, true);
}

void models(const Context& ctx, const httplib::Request&, httplib::Response& res) {
  JsonOut o;
  o.raw("{\"object\":\"list\",\"data\":[");
  bool first = true;
  for (const std::string& name : ctx.repo.names()) {
    const auto m = ctx.repo.find(name);
    if (m == nullptr || m->generation == nullptr) continue;
    o.raw(first ? "" : ",").raw("{\"id\":").str(name).raw(",\"object\":\"model\",\"created\":0,\"owned_by\":\"maas\"}");
    first = false;
  }
  o.raw("]}");
  reply_json(res, std::move(o.s));
}

// One event of the generate extension's stream, or its whole answer.
std::string generate_json(const ServedModel& m, const std::string& text, const Completion* last) {
  JsonOut o;
  o.raw("{\"model_name\":").str(m.name).raw(",\"model_version\":").str(std::to_string(m.version));
  o.raw(",\"text_output\":").str(text);
  if (last != nullptr) o.raw(",\"finish_reason\":").str(last->finish_reason());
  o.raw("}");
  return o.s;
}

}  // namespace

void generate_route(const std::shared_ptr<ServedModel>& m, bool stream, const httplib::Request& req,
                    httplib::Response& res) {
  note().model = m->name;
  note().version = m->version;
  if (m->generation == nullptr)
    throw HttpError(400, "model '" + m->name + "' is not a language model: POST /v2/models/" + m->name +
                             "/infer takes its tensors");
  const element doc = parse_json(req.body);
  element text, parameters;
  if (doc.type() != element_type::OBJECT || doc["text_input"].get(text))
    throw HttpError(400, "the body must be {\"text_input\": string, \"parameters\": {...}}");
  const element options = field(doc, "parameters", parameters) ? parameters : doc;
  if (options.type() != element_type::OBJECT) throw HttpError(400, "\"parameters\" must be an object");
  std::shared_ptr<Completion> c;
  try {
    c = m->generation->submit(generation_request(*m->generation, text_field(text, "text_input"), "text_input",
                                                 options));
  } catch (const QueueFull& e) {
    res.set_header("Retry-After", "1");
    throw HttpError(503, e.what());
  }
  if (stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [m, c](size_t, httplib::DataSink& sink) {
          std::string piece;
          const bool more = c->next(piece);
          const std::string event = "data: " + generate_json(*m, piece, more ? nullptr : c.get()) + "\n\n";
          if (!sink.write(event.data(), event.size())) {
            c->cancel();
            return false;
          }
          if (!more) sink.done();
          return true;
        },
        [c](bool) { c->cancel(); });
    return;
  }
  std::string out;
  while (c->next(out)) {
  }
  if (c->finish_reason() == "error") throw HttpError(500, "generation failed: " + c->error());
  if (c->finish_reason() == "cancelled") throw HttpError(503, "model '" + m->name + "' was unloaded");
  reply_json(res, generate_json(*m, out, c.get()));
}

Api openai_api() {
  Api a;
  a.label = "openai";
  a.endpoint = "/v1/completions";
  a.help = "OpenAI's API for language models (/v1/completions, /v1/chat/completions and /v1/models, streaming "
           "tokens as Server-Sent Events)";
  a.routes = {{Method::Post, "/v1/completions", completions},
              {Method::Post, "/v1/chat/completions", chat_completions},
              {Method::Get, "/v1/models", models}};
  return a;
}

}  // namespace maas::serve
