// Metrics: the one registry every part of the server reports to, rendered in
// Prometheus' text format (GET /metrics). Counters, gauges and histograms,
// each a family of series told apart by a label string such as
// `model="mnist",api="v1"` (made by labels()). One mutex: an update is a map
// lookup and an add, far below a request's cost.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace maas::serve {

class Metrics {
 public:
  Metrics();

  // Counter += v.
  void add(const std::string& name, const std::string& labels, double v = 1.0);
  // Gauge = v, or += delta.
  void set(const std::string& name, const std::string& labels, double v);
  void shift(const std::string& name, const std::string& labels, double delta);
  // Histogram observation (families declared in the constructor).
  void observe(const std::string& name, const std::string& labels, double v);

  // The current value of a counter or gauge, or a histogram's count and sum
  // (0 when absent): for tests and logs.
  double value(const std::string& name, const std::string& labels) const;
  std::pair<uint64_t, double> histogram(const std::string& name, const std::string& labels) const;

  std::string render() const;

 private:
  struct Family {
    std::string type, help;
    std::vector<double> bounds;  // histograms
  };
  struct Histogram {
    std::vector<uint64_t> counts;  // per bound, not cumulative; last: +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  void declare(const std::string& name, const std::string& type, const std::string& help,
               std::vector<double> bounds = {});

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
  std::map<std::string, std::map<std::string, double>> scalars_;
  std::map<std::string, std::map<std::string, Histogram>> histograms_;
};

// `k1="v1",k2="v2"` with the values escaped as Prometheus wants.
std::string labels(std::initializer_list<std::pair<const char*, std::string>> kv);

}  // namespace maas::serve
