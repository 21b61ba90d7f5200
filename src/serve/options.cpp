// maas-serve's command line: its flags, and --help (what is served comes
// from the endpoint table, api.hpp).
#include <charconv>
#include <string>
#include <vector>

#include "maas/error.hpp"
#include "maas/serve.hpp"
#include "serve/api.hpp"

namespace maas::serve {

namespace {

// `text` broken into lines of at most `width` characters, at spaces.
std::string wrap(const std::string& text, size_t width) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  return out + line + "\n";
}

// What is served: each API of the endpoint table, by its --help phrase, in
// a paragraph of lines up to 97 characters (the width it always had).
std::string served() {
  std::string list;
  const std::vector<Api>& table = apis();
  for (size_t i = 0; i < table.size(); ++i)
    list += (i == 0 ? "" : i + 1 < table.size() ? ", " : ", and ") + table[i].help;
  return wrap("Serves models saved by maas::save_model or Keras (.h5) over HTTP: " + list +
                  ". SIGTERM or SIGINT: answer the requests in flight, then exit 0.",
              97);
}

}  // namespace

std::string usage() {
  const ServeOptions d;
  return "usage: maas-serve (--model NAME=PATH.h5 ... | --model-dir DIR) [options]\n"
         "\n" +
         served() +
         "\n"
         "models:\n"
         "  --model NAME=PATH.h5    serve PATH as model NAME, version 1 (repeatable; the first answers /predict)\n"
         "  --model-dir DIR         serve DIR/NAME/VERSION/model.h5 (TensorFlow Serving's layout): the highest\n"
         "                          VERSION by default, any by number; new versions are loaded while serving\n"
         "  --poll-ms MS            how often --model-dir is looked at (default " +
         std::to_string(d.poll_ms) +
         ")\n"
         "network:\n"
         "  --host HOST             address to listen on (default " +
         d.host +
         "; 0.0.0.0 for every interface)\n"
         "  --port PORT             port (default " +
         std::to_string(d.port) +
         "; 0 picks a free one, printed at start)\n"
         "  --threads N             connections served at once; each open keep-alive connection holds a thread,\n"
         "                          started when needed (default " +
         std::to_string(d.threads) +
         ")\n"
         "  --backlog N             listen backlog: connections waiting to be accepted (default " +
         std::to_string(d.backlog) +
         ")\n"
         "  --max-body-bytes N      larger request bodies get 413 (default " +
         std::to_string(d.max_body_bytes) +
         ")\n"
         "  --token TOKEN           require \"Authorization: Bearer TOKEN\" (401 otherwise; /v2/health/* stays open)\n"
         "batching:\n"
         "  --max-batch N           rows per batch run through a model (default " +
         std::to_string(d.max_batch) +
         ")\n"
         "  --batch-timeout-us US   after the first request of a batch, wait up to US for more (default " +
         std::to_string(d.batch_timeout_us) +
         ":\n"
         "                          requests arriving while a batch runs form the next one without waiting)\n"
         "  --max-queue N           requests waiting per model; more get 503 (default " +
         std::to_string(d.max_queue) +
         ")\n"
         "language models (a GPT saved with its tokenizer, as examples/gpt --save writes it):\n"
         "  --max-sequences N       generations decoded together, each with its KV cache slot; --max-queue\n"
         "                          more wait for a slot, and more again get 503 (default " +
         std::to_string(d.max_sequences) +
         ")\n"
         "  --max-context N         positions (prompt and generated tokens) per sequence (default: the model's\n"
         "                          context, also the most)\n"
         "  --prefill-chunk N       prompt tokens a decoding step takes beyond one per sequence: smaller keeps\n"
         "                          the running streams' inter-token latency low, larger gives more tokens/s\n"
         "                          (default " +
         std::to_string(d.prefill_chunk) +
         ")\n"
         "logging:\n"
         "  --log-format FORMAT     text (default) or json: one JSON line per request and event on stderr\n"
         "  --help                  this text\n";
}

namespace {

int64_t integer(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
  int64_t x = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  MAAS_CHECK(r.ec == std::errc() && r.ptr == v.data() + v.size() && x >= lo && x <= hi,
             "maas-serve: " << flag << " expects an integer in [" << lo << ", " << hi << "], got '" << v << "'");
  return x;
}

}  // namespace

ServeOptions parse_args(int argc, const char* const* argv, bool* help) {
  ServeOptions o;
  if (help) *help = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i], value;
    const size_t eq = flag.find('=');
    bool inline_value = false;
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
      inline_value = true;
    }
    if (flag == "--help" || flag == "-h") {
      if (help) *help = true;
      return o;
    }
    auto next = [&]() -> std::string {
      if (inline_value) return value;
      MAAS_CHECK(i + 1 < argc, "maas-serve: " << flag << " needs a value (see --help)");
      return argv[++i];
    };
    if (flag == "--model") {
      const std::string v = next();
      const size_t at = v.find('=');
      MAAS_CHECK(at != std::string::npos && at > 0 && at + 1 < v.size(),
                 "maas-serve: --model expects NAME=PATH.h5, got '" << v << "'");
      o.models.emplace_back(v.substr(0, at), v.substr(at + 1));
    } else if (flag == "--model-dir") {
      o.model_dir = next();
    } else if (flag == "--poll-ms") {
      o.poll_ms = integer(flag, next(), 0, 3600000);
    } else if (flag == "--host") {
      o.host = next();
    } else if (flag == "--port") {
      o.port = static_cast<int>(integer(flag, next(), 0, 65535));
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(integer(flag, next(), 1, 100000));
    } else if (flag == "--backlog") {
      o.backlog = static_cast<int>(integer(flag, next(), 1, 1 << 20));
    } else if (flag == "--max-body-bytes") {
      o.max_body_bytes = static_cast<size_t>(integer(flag, next(), 1, int64_t{1} << 40));
    } else if (flag == "--token") {
      o.token = next();
    } else if (flag == "--max-batch") {
      o.max_batch = integer(flag, next(), 1, 1 << 20);
    } else if (flag == "--batch-timeout-us") {
      o.batch_timeout_us = integer(flag, next(), 0, 10000000);
    } else if (flag == "--max-queue") {
      o.max_queue = integer(flag, next(), 1, 1 << 24);
    } else if (flag == "--max-sequences") {
      o.max_sequences = integer(flag, next(), 1, 4096);
    } else if (flag == "--max-context") {
      o.max_context = integer(flag, next(), 1, 1 << 24);
    } else if (flag == "--prefill-chunk") {
      o.prefill_chunk = integer(flag, next(), 0, 1 << 24);
    } else if (flag == "--log-format") {
      const std::string v = next();
      MAAS_CHECK(v == "json" || v == "text", "maas-serve: --log-format expects text or json, got '" << v << "'");
      o.log_json = v == "json";
    } else {
      MAAS_FAIL("maas-serve: unknown option '" << argv[i] << "' (see --help)");
    }
  }
  return o;
}

}  // namespace maas::serve
