// Test helper: a strict, small XML parser, to check that the report is
// well-formed XML and to read values out of it. It rejects what an XML
// parser rejects in the pages maas writes: unclosed or mismatched tags,
// unquoted or repeated attributes, '<' in attribute values, unknown entities,
// control characters, invalid UTF-8, text after the root element. (No
// DTD internal subsets, CDATA or processing instructions beyond the prolog.)
#pragma once

#include <cctype>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace maas::test {

struct XmlElement {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::vector<std::unique_ptr<XmlElement>> children;
  std::string text;  // all character data directly inside, decoded

  std::string attr(const std::string& k) const {
    auto it = attrs.find(k);
    return it == attrs.end() ? std::string() : it->second;
  }
  // Every descendant (and this element) named `tag`, in document order.
  void find_all(const std::string& tag, std::vector<const XmlElement*>& out) const {
    if (name == tag) out.push_back(this);
    for (const auto& c : children) c->find_all(tag, out);
  }
  std::vector<const XmlElement*> all(const std::string& tag) const {
    std::vector<const XmlElement*> out;
    find_all(tag, out);
    return out;
  }
  // All text inside, children's too.
  std::string all_text() const {
    std::string s = text;
    for (const auto& c : children) s += c->all_text();
    return s;
  }
};

class XmlParser {
 public:
  explicit XmlParser(const std::string& s) : s_(s) {}

  // Throws std::runtime_error with the offset for a document that is not well-formed.
  std::unique_ptr<XmlElement> parse() {
    check_chars();
    if (starts("<?xml")) skip_past("?>");
    misc();
    if (starts("<!DOCTYPE")) {
      skip_past(">");
      misc();
    }
    auto root = element();
    misc();
    if (i_ != s_.size()) fail("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("XML error at offset " + std::to_string(i_) + ": " + what + " near '" +
                             s_.substr(i_ > 20 ? i_ - 20 : 0, 60) + "'");
  }
  bool starts(const char* p) const { return s_.compare(i_, std::char_traits<char>::length(p), p) == 0; }
  void skip_past(const char* p) {
    const size_t at = s_.find(p, i_);
    if (at == std::string::npos) fail(std::string("missing '") + p + "'");
    i_ = at + std::char_traits<char>::length(p);
  }
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  void misc() {
    for (;;) {
      space();
      if (starts("<!--")) skip_past("-->");
      else return;
    }
  }
  void check_chars() {
    for (size_t k = 0; k < s_.size();) {
      const unsigned char c = static_cast<unsigned char>(s_[k]);
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        i_ = k;
        fail("control character");
      }
      size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
      if (len == 0 || k + len > s_.size() || (len == 2 && c < 0xC2)) {
        i_ = k;
        fail("invalid UTF-8");
      }
      for (size_t m = 1; m < len; ++m)
        if ((static_cast<unsigned char>(s_[k + m]) & 0xC0) != 0x80) {
          i_ = k;
          fail("invalid UTF-8");
        }
      k += len;
    }
  }
  static bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
  static bool name_char(char c) {
    return name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  }
  std::string name() {
    if (i_ >= s_.size() || !name_start(s_[i_])) fail("expected a name");
    const size_t b = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    return s_.substr(b, i_ - b);
  }
  std::string entity() {  // at '&'
    const size_t semi = s_.find(';', i_);
    if (semi == std::string::npos || semi - i_ > 10) fail("unterminated entity");
    const std::string e = s_.substr(i_ + 1, semi - i_ - 1);
    i_ = semi + 1;
    if (e == "amp") return "&";
    if (e == "lt") return "<";
    if (e == "gt") return ">";
    if (e == "quot") return "\"";
    if (e == "apos") return "'";
    if (e.size() > 1 && e[0] == '#') {
      uint32_t cp = 0;
      const bool hex = e[1] == 'x';
      for (size_t k = hex ? 2 : 1; k < e.size(); ++k) {
        const char c = e[k];
        const int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                      : hex && std::isxdigit(static_cast<unsigned char>(c)) ? std::tolower(c) - 'a' + 10
                                                                            : -1;
        if (d < 0) fail("bad character reference &" + e + ";");
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
        if (cp > 0x10FFFF) fail("character reference out of range");
      }
      if (cp < 0x20 && cp != 9 && cp != 10 && cp != 13) fail("reference to a control character");
      std::string out;  // UTF-8
      if (cp < 0x80) out += static_cast<char>(cp);
      else if (cp < 0x800) out += {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
      else if (cp < 0x10000)
        out += {static_cast<char>(0xE0 | (cp >> 12)), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
                static_cast<char>(0x80 | (cp & 0x3F))};
      else
        out += {static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
                static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
      return out;
    }
    fail("unknown entity &" + e + ";");
  }
  std::unique_ptr<XmlElement> element() {
    if (!starts("<")) fail("expected '<'");
    ++i_;
    auto el = std::make_unique<XmlElement>();
    el->name = name();
    for (;;) {
      const size_t before = i_;
      space();
      if (starts("/>")) {
        i_ += 2;
        return el;
      }
      if (starts(">")) {
        ++i_;
        break;
      }
      if (i_ == before) fail("expected whitespace before an attribute");
      const std::string k = name();
      space();
      if (!starts("=")) fail("attribute '" + k + "' has no value");
      ++i_;
      space();
      if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\'')) fail("unquoted value of '" + k + "'");
      const char q = s_[i_++];
      std::string v;
      while (i_ < s_.size() && s_[i_] != q) {
        if (s_[i_] == '<') fail("'<' in the value of '" + k + "'");
        if (s_[i_] == '&') v += entity();
        else v += s_[i_++];
      }
      if (i_ >= s_.size()) fail("unterminated value of '" + k + "'");
      ++i_;
      if (!el->attrs.emplace(k, v).second) fail("repeated attribute '" + k + "'");
    }
    for (;;) {
      if (i_ >= s_.size()) fail("unclosed <" + el->name + ">");
      if (starts("</")) {
        i_ += 2;
        const std::string end = name();
        if (end != el->name) fail("</" + end + "> closes <" + el->name + ">");
        space();
        if (!starts(">")) fail("expected '>'");
        ++i_;
        return el;
      }
      if (starts("<!--")) {
        skip_past("-->");
      } else if (starts("<")) {
        el->children.push_back(element());
      } else if (s_[i_] == '&') {
        el->text += entity();
      } else {
        if (s_[i_] == '>' && i_ >= 2 && s_.compare(i_ - 2, 2, "]]") == 0) fail("']]>' in text");
        el->text += s_[i_++];
      }
    }
  }

  const std::string& s_;
  size_t i_ = 0;
};

inline std::unique_ptr<XmlElement> parse_xml(const std::string& text) { return XmlParser(text).parse(); }

}  // namespace maas::test
