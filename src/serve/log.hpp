// Log: the server's lines on stderr, plain text or one JSON object a line
// (--log-format json). Thread-safe; a line is written with one fwrite.
#pragma once

#include <string>

namespace maas::serve {

class Log {
 public:
  // quiet: "info" events are dropped (errors and request lines stay).
  explicit Log(bool json = false, bool quiet = false) : json_(json), quiet_(quiet) {}
  bool json() const { return json_; }
  // An event: level ("info", "error"), message, extra JSON fields
  // (`"model":"m","version":2`, already encoded; may be empty).
  void event(const char* level, const std::string& message, const std::string& fields = "") const;
  // A raw line (a request's JSON record).
  void line(const std::string& text) const;

 private:
  bool json_, quiet_;
};

// `s` as a JSON string literal, quotes included.
std::string json_string(const std::string& s);

}  // namespace maas::serve
