// Log: timestamped lines on stderr.
#include "serve/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace maas::serve {

namespace {

std::string now_iso() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void Log::event(const char* level, const std::string& message, const std::string& fields) const {
  if (quiet_ && std::string(level) == "info") return;
  if (json_) {
    line("{\"time\":\"" + now_iso() + "\",\"level\":\"" + level + "\",\"message\":" + json_string(message) +
         (fields.empty() ? "" : "," + fields) + "}");
  } else {
    line(now_iso() + " " + level + " " + message);
  }
}

void Log::line(const std::string& text) const {
  const std::string l = text + "\n";
  std::fwrite(l.data(), 1, l.size(), stderr);
  std::fflush(stderr);
}

}  // namespace maas::serve
