// The Tree a read gives (h5/internal.hpp), and its wire format: how the
// child process that reads a file sends it to the parent.
#include "checkpoint/h5/internal.hpp"

#include <algorithm>
#include <cstring>

namespace maas::detail::h5 {

void put_u64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}

uint64_t get_u64(const char* b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(b[i])} << (8 * i);
  return v;
}

namespace {

void put_str(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}

}  // namespace

void put_tree(std::string& out, const Tree& t) {
  put_u64(out, t.nodes.size());
  for (const Node& n : t.nodes) {
    out += static_cast<char>(n.group ? 1 : 0);
    if (n.group) {
      put_u64(out, n.links.size());
      for (const auto& [name, idx] : n.links) {
        put_str(out, name);
        put_u64(out, idx);
      }
      put_u64(out, n.attributes.size());
      for (const auto& [name, a] : n.attributes) {
        put_str(out, name);
        out += static_cast<char>(a.kind);
        out += static_cast<char>(a.integer ? 1 : 0);
        put_u64(out, a.count);
        put_str(out, a.error);
        put_u64(out, a.strings.size());
        for (const std::string& v : a.strings) put_str(out, v);
        put_u64(out, a.numbers.size());
        for (double v : a.numbers) {
          uint64_t bits;
          std::memcpy(&bits, &v, 8);
          put_u64(out, bits);
        }
        put_u64(out, a.ints.size());
        for (int64_t v : a.ints) put_u64(out, static_cast<uint64_t>(v));
      }
    } else {
      put_u64(out, n.shape.size());
      for (int64_t d : n.shape) put_u64(out, static_cast<uint64_t>(d));
      out += static_cast<char>(n.numeric ? 1 : 0);
      put_str(out, n.error);
      put_u64(out, n.values.size());
      out.append(reinterpret_cast<const char*>(n.values.data()), n.values.size() * sizeof(float));
    }
  }
}


namespace {

// Reads what put_tree wrote, checking every length against the bytes left.
class Reader {
 public:
  Reader(const std::string& s, size_t start) : s_(s), at_(start) {}
  bool ok() const { return ok_; }
  uint64_t u64() {
    if (!take(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(s_[at_ - 8 + i])} << (8 * i);
    return v;
  }
  uint8_t u8() { return take(1) ? static_cast<uint8_t>(s_[at_ - 1]) : 0; }
  std::string str() {
    const uint64_t n = u64();
    if (!take(n)) return {};
    return s_.substr(at_ - n, n);
  }
  // A count of items of at least `min_bytes` each.
  uint64_t count(uint64_t min_bytes) {
    const uint64_t n = u64();
    if (n > (s_.size() - at_) / std::max<uint64_t>(min_bytes, 1)) ok_ = false;
    return ok_ ? n : 0;
  }
  const char* bytes(uint64_t n) { return take(n) ? s_.data() + at_ - n : nullptr; }
  bool done() const { return ok_ && at_ == s_.size(); }

 private:
  bool take(uint64_t n) {
    if (!ok_ || n > s_.size() - at_) {
      ok_ = false;
      return false;
    }
    at_ += n;
    return true;
  }
  const std::string& s_;
  size_t at_;
  bool ok_ = true;
};


}  // namespace

// Reads the tree that starts at in[start].
bool get_tree(const std::string& in, size_t start, Tree& t) {
  Reader r(in, start);
  const uint64_t n = r.count(9);
  t.nodes.resize(n);
  for (Node& node : t.nodes) {
    node.group = r.u8() != 0;
    if (node.group) {
      const uint64_t links = r.count(16);
      for (uint64_t i = 0; i < links && r.ok(); ++i) {
        std::string name = r.str();
        const uint64_t idx = r.u64();
        if (idx >= n) return false;
        node.links[name] = idx;
      }
      const uint64_t attrs = r.count(42);
      for (uint64_t i = 0; i < attrs && r.ok(); ++i) {
        std::string name = r.str();
        Attribute a;
        a.kind = r.u8();
        a.integer = r.u8() != 0;
        a.count = r.u64();
        a.error = r.str();
        const uint64_t ns = r.count(8);
        for (uint64_t k = 0; k < ns && r.ok(); ++k) a.strings.push_back(r.str());
        const uint64_t nn = r.count(8);
        for (uint64_t k = 0; k < nn && r.ok(); ++k) {
          const uint64_t bits = r.u64();
          double v;
          std::memcpy(&v, &bits, 8);
          a.numbers.push_back(v);
        }
        const uint64_t ni = r.count(8);
        for (uint64_t k = 0; k < ni && r.ok(); ++k) a.ints.push_back(static_cast<int64_t>(r.u64()));
        if (a.kind > Attribute::kOther) return false;
        node.attributes[name] = std::move(a);
      }
    } else {
      const uint64_t rank = r.count(8);
      for (uint64_t i = 0; i < rank && r.ok(); ++i) node.shape.push_back(static_cast<int64_t>(r.u64()));
      node.numeric = r.u8() != 0;
      node.error = r.str();
      const uint64_t nv = r.count(sizeof(float));
      const char* p = r.bytes(nv * sizeof(float));
      if (p != nullptr) {
        node.values.resize(nv);
        if (nv > 0) std::memcpy(node.values.data(), p, nv * sizeof(float));
      }
    }
    if (!r.ok()) return false;
  }
  return r.done() && n > 0 && t.nodes[0].group;
}
}  // namespace maas::detail::h5
