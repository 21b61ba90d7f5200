// Prometheus: GET /metrics, the server's counters, gauges and histograms in
// Prometheus' text format (metrics.hpp). Its own requests are counted but
// kept out of the latency histogram.
#include "serve/api.hpp"

namespace maas::serve {

namespace {

void render(const Context& ctx, const httplib::Request&, httplib::Response& res) {
  res.set_content(ctx.metrics.render(), "text/plain; version=0.0.4");
}

}  // namespace

Api metrics_api() {
  Api a;
  a.label = "metrics";
  a.endpoint = "/metrics";
  a.help = "Prometheus metrics (/metrics)";
  a.timed = false;
  a.routes = {{Method::Get, "/metrics", render}};
  return a;
}

}  // namespace maas::serve
