// Test helper: reading one series of maas-serve's /metrics (Prometheus' text format).
#pragma once

#include <sstream>
#include <string>

namespace maas::test {

// The value of `series` (`name{labels}`) in Prometheus text; -1 if absent.
inline double metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

}  // namespace maas::test
