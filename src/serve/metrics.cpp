// Metrics: the registry and its Prometheus text rendering.
#include "serve/metrics.hpp"

#include <charconv>
#include <cmath>

namespace maas::serve {

namespace {

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string with_label(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return "{" + labels + "," + extra + "}";
}

}  // namespace

std::string labels(std::initializer_list<std::pair<const char*, std::string>> kv) {
  std::string out;
  for (const auto& [k, v] : kv) {
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    for (char c : v) {
      if (c == '\\') out += "\\\\";
      else if (c == '"') out += "\\\"";
      else if (c == '\n') out += "\\n";
      else out += c;
    }
    out += '"';
  }
  return out;
}

Metrics::Metrics() {
  declare("maas_requests_total", "counter", "Requests answered, by model, API and HTTP status code.");
  declare("maas_request_duration_seconds", "histogram", "Time from a request's routing to its answer, by model and API.",
          {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  declare("maas_batch_size", "histogram", "Rows per batch run through a model.",
          {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  declare("maas_batch_duration_seconds", "histogram", "Time a model takes to run one batch.",
          {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
  declare("maas_queue_depth", "gauge", "Requests waiting for a batch, by model.");
  declare("maas_model_loads_total", "counter",
          "Model versions loaded, by model and event (load, reload, load_failed, unload).");
  declare("maas_model_versions", "gauge", "Versions loaded, by model.");
  // Language models (generation.hpp).
  const std::vector<double> token_seconds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  declare("maas_generation_time_to_first_token_seconds", "histogram",
          "Time from a generation request's arrival to its first token, by model.", token_seconds);
  declare("maas_generation_time_per_output_token_seconds", "histogram",
          "Time between a sequence's successive tokens, by model.", token_seconds);
  declare("maas_generation_duration_seconds", "histogram",
          "Time from a generation request's arrival to its end, by model.",
          {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60});
  declare("maas_generation_prompt_tokens_total", "counter", "Prompt tokens prefilled, by model.");
  declare("maas_generation_tokens_total", "counter", "Tokens generated, by model.");
  declare("maas_generation_finished_total", "counter",
          "Generations ended, by model and reason (length, stop, cancelled: the client left, error).");
  declare("maas_generation_active_sequences", "gauge", "Sequences being decoded (holding a KV cache slot), by model.");
  declare("maas_generation_queued_requests", "gauge", "Generation requests waiting for a KV cache slot, by model.");
  declare("maas_generation_kv_cache_usage_ratio", "gauge",
          "Positions held in the KV cache over its capacity (slots x context), by model.");
}

void Metrics::declare(const std::string& name, const std::string& type, const std::string& help,
                      std::vector<double> bounds) {
  families_[name] = Family{type, help, std::move(bounds)};
}

void Metrics::add(const std::string& name, const std::string& l, double v) {
  std::lock_guard<std::mutex> lock(mutex_);
  scalars_[name][l] += v;
}

void Metrics::set(const std::string& name, const std::string& l, double v) {
  std::lock_guard<std::mutex> lock(mutex_);
  scalars_[name][l] = v;
}

void Metrics::shift(const std::string& name, const std::string& l, double delta) {
  std::lock_guard<std::mutex> lock(mutex_);
  scalars_[name][l] += delta;
}

void Metrics::observe(const std::string& name, const std::string& l, double v) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto f = families_.find(name);
  if (f == families_.end()) return;
  Histogram& h = histograms_[name][l];
  const std::vector<double>& b = f->second.bounds;
  if (h.counts.empty()) h.counts.assign(b.size() + 1, 0);
  size_t i = 0;
  while (i < b.size() && v > b[i]) ++i;
  ++h.counts[i];
  h.sum += v;
  ++h.count;
}

double Metrics::value(const std::string& name, const std::string& l) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto f = scalars_.find(name);
  if (f == scalars_.end()) return 0;
  const auto s = f->second.find(l);
  return s == f->second.end() ? 0 : s->second;
}

std::pair<uint64_t, double> Metrics::histogram(const std::string& name, const std::string& l) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto f = histograms_.find(name);
  if (f == histograms_.end()) return {0, 0.0};
  const auto s = f->second.find(l);
  return s == f->second.end() ? std::pair<uint64_t, double>{0, 0.0} : std::pair{s->second.count, s->second.sum};
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& [name, fam] : families_) {
    out += "# HELP " + name + " " + fam.help + "\n# TYPE " + name + " " + fam.type + "\n";
    if (fam.type == "histogram") {
      const auto hs = histograms_.find(name);
      if (hs == histograms_.end()) continue;
      for (const auto& [l, h] : hs->second) {
        uint64_t cum = 0;
        for (size_t i = 0; i < fam.bounds.size(); ++i) {
          cum += h.counts[i];
          out += name + "_bucket" + with_label(l, "le=\"" + number(fam.bounds[i]) + "\"") + " " +
                 std::to_string(cum) + "\n";
        }
        out += name + "_bucket" + with_label(l, "le=\"+Inf\"") + " " + std::to_string(h.count) + "\n";
        const std::string braces = l.empty() ? "" : "{" + l + "}";
        out += name + "_sum" + braces + " " + number(h.sum) + "\n";
        out += name + "_count" + braces + " " + std::to_string(h.count) + "\n";
      }
    } else {
      const auto ss = scalars_.find(name);
      if (ss == scalars_.end()) continue;
      for (const auto& [l, v] : ss->second) out += name + (l.empty() ? "" : "{" + l + "}") + " " + number(v) + "\n";
    }
  }
  return out;
}

}  // namespace maas::serve
