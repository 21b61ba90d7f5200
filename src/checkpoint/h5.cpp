// The HDF5 wrapper of h5.hpp: the only maas file that includes <hdf5.h>.
#include "checkpoint/h5.hpp"

#include <hdf5.h>

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "maas/error.hpp"

namespace maas::detail::h5 {

static_assert(sizeof(hid_t) <= sizeof(int64_t), "hid_t must fit in int64_t");

namespace {

// Switches off HDF5's automatic printing of its error stack for one scope
// and restores whatever handler was there before.
class Quiet {
 public:
  Quiet() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~Quiet() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  Quiet(const Quiet&) = delete;
  Quiet& operator=(const Quiet&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

herr_t innermost(unsigned n, const H5E_error2_t* err, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (n == 0 && err != nullptr && err->desc != nullptr) *s = err->desc;
  return 0;
}

// HDF5's most specific message for the last failure (then clears the stack).
std::string hdf5_message() {
  std::string msg;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg;
}

[[noreturn]] void fail_in(const Context& ctx, const std::string& what) {
  const std::string h5 = hdf5_message();
  std::string hint;
  if (h5.find("checksum") != std::string::npos || h5.find("Fletcher32") != std::string::npos ||
      h5.find("bad version") != std::string::npos || h5.find("bad object header") != std::string::npos ||
      h5.find("wrong B-tree signature") != std::string::npos || h5.find("bad signature") != std::string::npos)
    hint = "; the file is corrupted";
  else if (h5.find("truncated") != std::string::npos || h5.find("addr overflow") != std::string::npos)
    hint = "; the file is truncated";
  throw Error(ctx.who + ": " + ctx.path + ": " + what + (h5.empty() ? "" : " (HDF5: " + h5 + ")") + hint);
}

Handle checked(int64_t id, const Context& ctx, const std::string& what) {
  if (id < 0) fail_in(ctx, what);
  return Handle(id);
}

std::vector<std::string> split_path(const std::string& rel) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : rel) {
    if (c == '/') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

// Creation properties shared by groups and datasets: no modification times,
// so the same content gives the same bytes.
Handle object_plist(hid_t cls, const Context& ctx) {
  Handle p = checked(H5Pcreate(cls), ctx, "cannot create a property list");
  H5Pset_obj_track_times(p.id(), 0);
  return p;
}

std::string shape_text(const Shape& s) {
  std::string t = "(";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

}  // namespace

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    o.id_ = -1;
  }
  return *this;
}

bool Handle::reset() {
  if (id_ < 0) return true;
  Quiet q;
  const hid_t id = static_cast<hid_t>(id_);
  id_ = -1;
  herr_t r = -1;
  switch (H5Iget_type(id)) {
    case H5I_FILE: r = H5Fclose(id); break;
    case H5I_GROUP: r = H5Gclose(id); break;
    case H5I_DATASET: r = H5Dclose(id); break;
    case H5I_ATTR: r = H5Aclose(id); break;
    case H5I_DATATYPE: r = H5Tclose(id); break;
    case H5I_DATASPACE: r = H5Sclose(id); break;
    case H5I_GENPROP_LST: r = H5Pclose(id); break;
    default: r = H5Idec_ref(id) < 0 ? -1 : 0; break;
  }
  if (r < 0) H5Eclear2(H5E_DEFAULT);
  return r >= 0;
}

// ---- Group ------------------------------------------------------------------

void Group::fail(const std::string& what) const { fail_in(*ctx_, what); }

void Group::need_tree() const {
  if (!tree_) throw Error(ctx_->who + ": " + ctx_->path + ": internal: reading a group being written");
}

void Group::need_handle() const {
  if (!h_) throw Error(ctx_->who + ": " + ctx_->path + ": internal: writing a group of a file read");
}

std::string Group::child_path(const std::string& rel) const {
  return (path_ == "/" ? "/" : path_ + "/") + rel;
}

Group Group::create_group(const std::string& rel) const {
  need_handle();
  Quiet q;
  const std::vector<std::string> parts = split_path(rel);
  if (parts.empty()) fail("cannot create a group with the empty name in " + path_);
  Handle gcpl = object_plist(H5P_GROUP_CREATE, *ctx_);
  std::string sofar;
  for (const std::string& part : parts) {
    if (part == "." || part == "..") fail("'" + rel + "' cannot name an HDF5 group");
    sofar += (sofar.empty() ? "" : "/") + part;
    const htri_t e = H5Lexists(static_cast<hid_t>(id()), sofar.c_str(), H5P_DEFAULT);
    if (e < 0) fail("cannot look up " + child_path(sofar));
    if (e == 0) {
      checked(H5Gcreate2(static_cast<hid_t>(id()), sofar.c_str(), H5P_DEFAULT, static_cast<hid_t>(gcpl.id()),
                         H5P_DEFAULT),
              *ctx_, "cannot create group " + child_path(sofar));
    }
  }
  Handle g = checked(H5Gopen2(static_cast<hid_t>(id()), rel.c_str(), H5P_DEFAULT), *ctx_,
                     "cannot open group " + child_path(rel));
  return Group(std::move(g), ctx_, child_path(rel));
}

// ---- Attributes: writing ------------------------------------------------------

namespace {

// Creates (replacing) attribute `name` of file type `ftype` and writes `data`
// of memory type `mtype` (nothing for an empty attribute).
void write_attribute(const Group& g, hid_t loc, const std::string& name, hid_t ftype, hid_t mtype, hid_t space,
                     const void* data, const Context& ctx) {
  if (H5Aexists(loc, name.c_str()) > 0) H5Adelete(loc, name.c_str());
  H5Eclear2(H5E_DEFAULT);
  Handle a = checked(H5Acreate2(loc, name.c_str(), ftype, space, H5P_DEFAULT, H5P_DEFAULT), ctx,
                     "cannot create attribute '" + name + "' of " + g.path());
  if (data != nullptr && H5Awrite(static_cast<hid_t>(a.id()), mtype, data) < 0)
    fail_in(ctx, "cannot write attribute '" + name + "' of " + g.path());
}

}  // namespace

void Group::write_string(const std::string& name, const std::string& value) const {
  need_handle();
  Quiet q;
  Handle type = checked(H5Tcopy(H5T_C_S1), *ctx_, "cannot make a string type");
  H5Tset_size(static_cast<hid_t>(type.id()), H5T_VARIABLE);
  H5Tset_cset(static_cast<hid_t>(type.id()), H5T_CSET_UTF8);
  H5Tset_strpad(static_cast<hid_t>(type.id()), H5T_STR_NULLTERM);
  Handle space = checked(H5Screate(H5S_SCALAR), *ctx_, "cannot make a dataspace");
  const char* p = value.c_str();
  write_attribute(*this, static_cast<hid_t>(id()), name, static_cast<hid_t>(type.id()),
                  static_cast<hid_t>(type.id()), static_cast<hid_t>(space.id()), &p, *ctx_);
}

void Group::write_string_list(const std::string& name, const std::vector<std::string>& values) const {
  need_handle();
  Quiet q;
  const hsize_t n = values.size();
  Handle space = checked(H5Screate_simple(1, &n, nullptr), *ctx_, "cannot make a dataspace");
  if (values.empty()) {
    // h5py stores numpy's empty list, np.asarray([]), as float64 with shape (0,).
    write_attribute(*this, static_cast<hid_t>(id()), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                    static_cast<hid_t>(space.id()), nullptr, *ctx_);
    return;
  }
  size_t width = 1;
  for (const std::string& v : values) width = std::max(width, v.size());
  std::vector<char> buf(width * values.size(), '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(buf.data() + i * width, values[i].data(), values[i].size());
  Handle type = checked(H5Tcopy(H5T_C_S1), *ctx_, "cannot make a string type");
  H5Tset_size(static_cast<hid_t>(type.id()), width);
  H5Tset_strpad(static_cast<hid_t>(type.id()), H5T_STR_NULLPAD);
  H5Tset_cset(static_cast<hid_t>(type.id()), H5T_CSET_ASCII);
  write_attribute(*this, static_cast<hid_t>(id()), name, static_cast<hid_t>(type.id()),
                  static_cast<hid_t>(type.id()), static_cast<hid_t>(space.id()), buf.data(), *ctx_);
}

void Group::write_int(const std::string& name, int64_t value) const {
  need_handle();
  Quiet q;
  Handle space = checked(H5Screate(H5S_SCALAR), *ctx_, "cannot make a dataspace");
  write_attribute(*this, static_cast<hid_t>(id()), name, H5T_STD_I64LE, H5T_NATIVE_INT64,
                  static_cast<hid_t>(space.id()), &value, *ctx_);
}

void Group::write_doubles(const std::string& name, const std::vector<double>& values) const {
  need_handle();
  Quiet q;
  const hsize_t n = values.size();
  Handle space = values.size() == 1 ? checked(H5Screate(H5S_SCALAR), *ctx_, "cannot make a dataspace")
                                    : checked(H5Screate_simple(1, &n, nullptr), *ctx_, "cannot make a dataspace");
  write_attribute(*this, static_cast<hid_t>(id()), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                  static_cast<hid_t>(space.id()), values.empty() ? nullptr : values.data(), *ctx_);
}

// ---- Datasets -------------------------------------------------------------------

void Group::write_floats(const std::string& rel, const Shape& shape, const float* data) const {
  write_dataset(rel, shape, data, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, sizeof(float));
}

void Group::write_int8s(const std::string& rel, const Shape& shape, const int8_t* data) const {
  write_dataset(rel, shape, data, H5T_STD_I8LE, H5T_NATIVE_SCHAR, 1);
}

void Group::write_int32s(const std::string& rel, const Shape& shape, const int32_t* data) const {
  write_dataset(rel, shape, data, H5T_STD_I32LE, H5T_NATIVE_INT32, 4);
}

void Group::write_dataset(const std::string& rel, const Shape& shape, const void* data, int64_t file_type,
                          int64_t memory_type, size_t element_bytes) const {
  need_handle();
  Quiet q;
  const std::vector<std::string> parts = split_path(rel);
  if (parts.empty()) fail("cannot create a dataset with the empty name in " + path_);
  std::string parent_rel;
  for (size_t i = 0; i + 1 < parts.size(); ++i) parent_rel += (i ? "/" : "") + parts[i];
  Group created;
  hid_t parent = static_cast<hid_t>(id());
  if (!parent_rel.empty()) {
    created = create_group(parent_rel);
    parent = static_cast<hid_t>(created.id());
  }
  const std::string& leaf = parts.back();

  std::vector<hsize_t> dims(shape.begin(), shape.end());
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) fail("dataset " + child_path(rel) + ": negative dimension in " + shape_text(shape));
    count *= d;
  }
  Handle space = shape.empty() ? checked(H5Screate(H5S_SCALAR), *ctx_, "cannot make a dataspace")
                               : checked(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), *ctx_,
                                         "cannot make a dataspace");
  Handle dcpl = object_plist(H5P_DATASET_CREATE, *ctx_);
  if (!shape.empty() && count > 0) {
    // Chunks of at most 1 MiB (splitting the leading dimensions), each with
    // a Fletcher32 checksum.
    std::vector<hsize_t> chunk = dims;
    const hsize_t limit = hsize_t{1} << 20;
    auto bytes = [&] {
      hsize_t b = element_bytes;
      for (hsize_t c : chunk) b *= c;
      return b;
    };
    for (size_t i = 0; i < chunk.size() && bytes() > limit; ++i) {
      const hsize_t rest = bytes() / chunk[i];
      chunk[i] = std::max<hsize_t>(1, limit / rest);
    }
    if (H5Pset_chunk(static_cast<hid_t>(dcpl.id()), static_cast<int>(chunk.size()), chunk.data()) < 0 ||
        H5Pset_fletcher32(static_cast<hid_t>(dcpl.id())) < 0)
      fail("cannot set up dataset " + child_path(rel));
  }
  Handle d = checked(H5Dcreate2(parent, leaf.c_str(), static_cast<hid_t>(file_type),
                                static_cast<hid_t>(space.id()), H5P_DEFAULT, static_cast<hid_t>(dcpl.id()), H5P_DEFAULT),
                     *ctx_, "cannot create dataset " + child_path(rel));
  if (count > 0 &&
      H5Dwrite(static_cast<hid_t>(d.id()), static_cast<hid_t>(memory_type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail("cannot write dataset " + child_path(rel));
}

// ---- The tree read from a file ----------------------------------------------------

struct Attribute {
  enum Kind : uint8_t { kStrings = 0, kNumbers = 1, kOther = 2 };
  uint8_t kind = kOther;
  bool integer = false;              // kNumbers of an integer type: `ints` holds them exactly
  uint64_t count = 0;                // elements
  std::vector<std::string> strings;  // kStrings
  std::vector<double> numbers;       // kNumbers
  std::vector<int64_t> ints;         // kNumbers, integer
  std::string error;                 // reading failed: the whole message
};

struct Node {
  bool group = true;
  // A group: its hard links (name -> node) and attributes.
  std::map<std::string, size_t> links;
  std::map<std::string, Attribute> attributes;
  // A dataset: its shape; float32 values when it holds numbers.
  Shape shape;
  bool numeric = false;
  std::vector<float> values;
  std::string error;  // reading its values failed: the whole message
};

struct Tree {
  std::vector<Node> nodes;  // nodes[0] is the root group
};

namespace {

double g_read_timeout = 0;

// Limits on what a file may make maas allocate: a dataset may declare at
// most kSlackBytes + kMaxExpansion times the bytes it stores (deflate
// compresses at most ~1000:1), and all that is read from a file at most
// kTotalSlack + kTotalExpansion times its size.
constexpr uint64_t kSlackBytes = uint64_t{1} << 20;
constexpr uint64_t kMaxExpansion = 1024;
constexpr uint64_t kTotalSlack = uint64_t{16} << 20;
constexpr uint64_t kTotalExpansion = 64;
constexpr int kMaxDepth = 256;

// ---- Serialising the tree (child -> parent) -------------------------------------

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

void put_str(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}

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

// ---- Walking a file (in the child process) ----------------------------------------

Shape space_shape(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) return {-1};
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  Shape s;
  for (hsize_t d : dims) s.push_back(d > static_cast<hsize_t>(INT64_MAX) ? -1 : static_cast<int64_t>(d));
  return s;
}

struct LinkSeen {
  std::string name;
  H5L_type_t type;
};

herr_t collect_link(hid_t, const char* name, const H5L_info_t* info, void* out) {
  static_cast<std::vector<LinkSeen>*>(out)->push_back({name, info->type});
  return 0;
}

class Walker {
 public:
  Walker(hid_t file, uint64_t image_bytes, const Context& ctx)
      : file_(file), image_bytes_(image_bytes), ctx_(ctx),
        budget_(kTotalSlack + kTotalExpansion * image_bytes) {}

  Tree walk() {
    Handle root = checked(H5Gopen2(file_, "/", H5P_DEFAULT), ctx_, "cannot open the root group");
    tree_.nodes.emplace_back();
    H5O_info_t info;
    if (H5Oget_info2(static_cast<hid_t>(root.id()), &info, H5O_INFO_BASIC) < 0)
      fail_in(ctx_, "cannot read the root group");
    seen_[info.addr] = 0;
    group(static_cast<hid_t>(root.id()), 0, "/", 0);
    return std::move(tree_);
  }

 private:
  // Counts `bytes` against what this file may make maas hold.
  void spend(uint64_t bytes, const std::string& what) {
    if (bytes > budget_)
      throw Error(ctx_.who + ": " + ctx_.path + ": " + what + " makes the file hold more data than maas reads from a " +
                  std::to_string(image_bytes_) + "-byte file: it is damaged or was made to exhaust memory");
    budget_ -= bytes;
  }

  static std::string join(const std::string& path, const std::string& name) {
    return (path == "/" ? "/" : path + "/") + name;
  }

  void group(hid_t g, size_t node, const std::string& path, int depth) {
    if (depth > kMaxDepth)
      throw Error(ctx_.who + ": " + ctx_.path + ": groups nested more than " + std::to_string(kMaxDepth) +
                  " deep at " + path);
    // Attributes.
    H5O_info_t info;
    if (H5Oget_info2(g, &info, H5O_INFO_NUM_ATTRS) < 0) fail_in(ctx_, "cannot read group " + path);
    for (hsize_t i = 0; i < info.num_attrs; ++i) {
      Handle a = checked(H5Aopen_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT),
                         ctx_, "cannot open an attribute of " + path);
      const ssize_t len = H5Aget_name(static_cast<hid_t>(a.id()), 0, nullptr);
      if (len < 0) fail_in(ctx_, "cannot read an attribute's name in " + path);
      std::string name(static_cast<size_t>(len) + 1, '\0');
      H5Aget_name(static_cast<hid_t>(a.id()), name.size(), &name[0]);
      name.resize(static_cast<size_t>(len));
      spend(name.size() + 64, "attribute '" + name + "' of " + path);
      Attribute attr;
      try {
        attribute(static_cast<hid_t>(a.id()), name, path, attr);
      } catch (const Error& e) {
        attr = Attribute();
        attr.error = e.what();
      }
      tree_.nodes[node].attributes[name] = std::move(attr);
    }
    // Links.
    std::vector<LinkSeen> links;
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, &links) < 0)
      fail_in(ctx_, "cannot list the members of group " + path);
    for (const LinkSeen& l : links) {
      const std::string child = join(path, l.name);
      spend(l.name.size() + 64, "member " + child);
      if (l.type == H5L_TYPE_EXTERNAL)
        throw Error(ctx_.who + ": " + ctx_.path + ": " + child +
                    " is an external link to another file: maas reads no other file (refused)");
      if (l.type == H5L_TYPE_SOFT) continue;  // an alias inside the file: not followed
      if (l.type != H5L_TYPE_HARD)
        throw Error(ctx_.who + ": " + ctx_.path + ": " + child + " is a user-defined link: maas does not follow it");
      Handle o = checked(H5Oopen(g, l.name.c_str(), H5P_DEFAULT), ctx_, "cannot open " + child);
      H5O_info_t oi;
      if (H5Oget_info2(static_cast<hid_t>(o.id()), &oi, H5O_INFO_BASIC) < 0) fail_in(ctx_, "cannot read " + child);
      const auto known = seen_.find(oi.addr);
      if (known != seen_.end()) {
        tree_.nodes[node].links[l.name] = known->second;
        continue;
      }
      const H5I_type_t type = H5Iget_type(static_cast<hid_t>(o.id()));
      if (type != H5I_GROUP && type != H5I_DATASET) continue;  // named datatypes
      const size_t n = tree_.nodes.size();
      tree_.nodes.emplace_back();
      tree_.nodes[node].links[l.name] = n;
      seen_[oi.addr] = n;
      if (type == H5I_GROUP) {
        group(static_cast<hid_t>(o.id()), n, child, depth + 1);
      } else {
        tree_.nodes[n].group = false;
        dataset(static_cast<hid_t>(o.id()), n, child);
      }
    }
  }

  void attribute(hid_t a, const std::string& name, const std::string& path, Attribute& out) {
    const std::string what = "attribute '" + name + "' of " + path;
    Handle type = checked(H5Aget_type(a), ctx_, "cannot read the type of " + what);
    Handle space = checked(H5Aget_space(a), ctx_, "cannot read the shape of " + what);
    const hid_t ftype = static_cast<hid_t>(type.id());
    const hssize_t n = H5Sget_simple_extent_npoints(static_cast<hid_t>(space.id()));
    if (n < 0) fail_in(ctx_, "cannot read the shape of " + what);
    out.count = static_cast<uint64_t>(n);
    const H5T_class_t cls = H5Tget_class(ftype);
    const size_t width = H5Tget_size(ftype);
    if (cls == H5T_STRING) {
      out.kind = Attribute::kStrings;
      if (n == 0) return;
      const htri_t is_vlen = H5Tis_variable_str(ftype);
      if (is_vlen < 0) fail_in(ctx_, "cannot read the type of " + what);
      if (is_vlen > 0) {
        spend(out.count * sizeof(char*), what);
        Handle mtype = checked(H5Tcopy(H5T_C_S1), ctx_, "cannot make a string type");
        H5Tset_size(static_cast<hid_t>(mtype.id()), H5T_VARIABLE);
        H5Tset_cset(static_cast<hid_t>(mtype.id()), H5Tget_cset(ftype));
        std::vector<char*> ptrs(out.count, nullptr);
        if (H5Aread(a, static_cast<hid_t>(mtype.id()), ptrs.data()) < 0) fail_in(ctx_, "cannot read " + what);
        bool over = false;
        for (char* p : ptrs) {
          if (p != nullptr && !over) {
            const size_t len = std::strlen(p);
            if (len > budget_) over = true;
            else {
              budget_ -= len;
              out.strings.emplace_back(p, len);
            }
          } else if (!over) {
            out.strings.emplace_back();
          }
          if (p != nullptr) H5free_memory(p);
        }
        if (over) spend(UINT64_MAX, what);
        return;
      }
      if (width == 0) fail_in(ctx_, "cannot read the type of " + what);
      if (out.count > UINT64_MAX / width) spend(UINT64_MAX, what);
      spend(width * out.count, what);
      const H5T_str_t pad = H5Tget_strpad(ftype);
      std::vector<char> buf(width * out.count);
      if (H5Aread(a, ftype, buf.data()) < 0) fail_in(ctx_, "cannot read " + what);
      for (uint64_t i = 0; i < out.count; ++i) {
        const char* p = buf.data() + i * width;
        size_t len = 0;
        while (len < width && p[len] != '\0') ++len;
        if (pad == H5T_STR_SPACEPAD)
          while (len > 0 && p[len - 1] == ' ') --len;
        out.strings.emplace_back(p, len);
      }
      return;
    }
    if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
      out.kind = Attribute::kNumbers;
      out.integer = cls == H5T_INTEGER;
      if (n == 0) return;
      if (out.count > UINT64_MAX / 16) spend(UINT64_MAX, what);
      spend(out.count * (out.integer ? 16 : 8), what);
      out.numbers.resize(out.count);
      if (H5Aread(a, H5T_NATIVE_DOUBLE, out.numbers.data()) < 0) fail_in(ctx_, "cannot read " + what);
      if (out.integer) {
        out.ints.resize(out.count);
        if (H5Aread(a, H5T_NATIVE_INT64, out.ints.data()) < 0) fail_in(ctx_, "cannot read " + what);
      }
      return;
    }
    out.kind = Attribute::kOther;
  }

  void dataset(hid_t d, size_t node, const std::string& path) {
    Handle dcpl = checked(H5Dget_create_plist(d), ctx_, "cannot read the properties of dataset " + path);
    const hid_t p = static_cast<hid_t>(dcpl.id());
    if (H5Pget_layout(p) == H5D_VIRTUAL)
      throw Error(ctx_.who + ": " + ctx_.path + ": dataset " + path +
                  " is a virtual dataset (its data are read from other datasets or files): maas refuses it");
    const int external = H5Pget_external_count(p);
    if (external != 0)
      throw Error(ctx_.who + ": " + ctx_.path + ": dataset " + path +
                  " keeps its data in external storage (other files): maas reads no other file (refused)");
    Handle type = checked(H5Dget_type(d), ctx_, "cannot read the type of dataset " + path);
    Handle space = checked(H5Dget_space(d), ctx_, "cannot read the shape of dataset " + path);
    Node& n = tree_.nodes[node];
    n.shape = space_shape(static_cast<hid_t>(space.id()));
    for (int64_t dim : n.shape)
      if (dim < 0) fail_in(ctx_, "cannot read the shape of dataset " + path);
    spend(n.shape.size() * 8 + 64, "dataset " + path);
    const H5T_class_t cls = H5Tget_class(static_cast<hid_t>(type.id()));
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) return;
    n.numeric = true;
    const hssize_t points = H5Sget_simple_extent_npoints(static_cast<hid_t>(space.id()));
    if (points < 0) fail_in(ctx_, "cannot read the shape of dataset " + path);
    const uint64_t count = static_cast<uint64_t>(points);
    const uint64_t width = std::max<uint64_t>(H5Tget_size(static_cast<hid_t>(type.id())), 1);
    const uint64_t stored = H5Dget_storage_size(d);
    const uint64_t stored_limit = stored > image_bytes_ ? image_bytes_ : stored;
    const bool too_big = count > UINT64_MAX / 16 ||
                         count * width > kSlackBytes + kMaxExpansion * stored_limit;
    if (too_big) {
      throw Error(ctx_.who + ": " + ctx_.path + ": dataset " + path + " declares " + shape_text(n.shape) + " numbers of " +
                  std::to_string(width) + " bytes but the file stores " + std::to_string(stored) +
                  " bytes of it: the file is damaged or was made to exhaust memory");
    }
    spend(count * sizeof(float), "dataset " + path);
    if (count == 0) return;
    n.values.resize(count);
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, n.values.data()) < 0) {
      try {
        fail_in(ctx_, "cannot read dataset " + path);
      } catch (const Error& e) {
        n.error = e.what();
      }
      n.values = {};
    }
  }

  hid_t file_;
  uint64_t image_bytes_;
  const Context& ctx_;
  uint64_t budget_;
  Tree tree_;
  std::map<haddr_t, size_t> seen_;
};

// The access properties to read an image held in memory (HDF5's core driver
// with no backing file).
Handle image_access(const std::string& image, const Context& ctx) {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), ctx, "cannot create a property list");
  if (H5Pset_fapl_core(static_cast<hid_t>(fapl.id()), 1 << 16, 0) < 0 ||
      H5Pset_file_image(static_cast<hid_t>(fapl.id()), const_cast<char*>(image.data()), image.size()) < 0)
    fail_in(ctx, "cannot set up reading the file in memory");
  H5Pset_fclose_degree(static_cast<hid_t>(fapl.id()), H5F_CLOSE_STRONG);
  return fapl;
}

// In the child: the tree of `image`, or the error, as the message to the parent.
std::string walk_image(const std::string& image, const Context& ctx) {
  std::string out;
  try {
    Quiet q;
    Handle fapl = image_access(image, ctx);
    Handle file = checked(H5Fopen("maas-image", H5F_ACC_RDONLY, static_cast<hid_t>(fapl.id())), ctx,
                          "cannot open the HDF5 file");
    const Tree t = Walker(static_cast<hid_t>(file.id()), image.size(), ctx).walk();
    size_t bytes = 64;
    for (const Node& n : t.nodes) {
      bytes += 64 + n.values.size() * sizeof(float) + n.shape.size() * 8 + n.error.size();
      for (const auto& link : n.links) bytes += 16 + link.first.size();
      for (const auto& [name, a] : n.attributes) {
        bytes += 64 + name.size() + a.error.size() + 8 * (a.numbers.size() + a.ints.size());
        for (const std::string& v : a.strings) bytes += 8 + v.size();
      }
    }
    out.reserve(bytes);
    out = "T";
    put_tree(out, t);
  } catch (const Error& e) {
    out = std::string("E") + e.what();
  } catch (const std::bad_alloc&) {
    out = "E" + ctx.who + ": " + ctx.path + ": reading it needs more memory than there is";
  }
  return out;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string signal_text(int sig) {
  const char* name = ::strsignal(sig);
  return "signal " + std::to_string(sig) + (name != nullptr ? std::string(", ") + name : std::string());
}

// Reads `image` in a child process (see the top of h5.hpp) and returns its tree.
Tree read_in_child(const std::string& image, const Context& ctx) {
  const std::string where = ctx.who + ": " + ctx.path + ": ";
  const double timeout = g_read_timeout > 0 ? g_read_timeout : 10.0 + static_cast<double>(image.size()) / 20e6;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(where + "cannot create a pipe to read the file: " + std::strerror(errno));
  const uint64_t max_message = 64 + kTotalSlack + kTotalExpansion * image.size() + 64 * image.size();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(where + "cannot start the process that reads HDF5 files: " + std::strerror(e));
  }
  if (pid == 0) {
    // The child: silent, bounded in time even if the parent is gone, and
    // leaving by _exit (no atexit handlers, no libhdf5 shutdown).
    ::close(fds[0]);
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    // Default actions: a crash or the alarm ends the child by its signal,
    // whatever handlers the program (or a sanitizer) installed.
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM, SIGPIPE, SIGTERM, SIGINT, SIGXFSZ})
      ::signal(sig, SIG_DFL);
    ::alarm(static_cast<unsigned>(timeout) + 5);
    int code = 0;
    try {
      const std::string msg = walk_image(image, ctx);
      std::string length;
      put_u64(length, msg.size());
      code = write_all(fds[1], length.data(), length.size()) && write_all(fds[1], msg.data(), msg.size()) ? 0 : 4;
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  // The answer: its length (8 bytes), then the message ('T' and the tree,
  // or 'E' and an error), read straight into place.
  std::string msg;
  bool timed_out = false, too_long = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  // Reads up to n bytes into dst; 0 at the end of the pipe or on timeout.
  auto read_some = [&](char* dst, size_t n) -> size_t {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        return 0;
      }
      struct pollfd pfd = {fds[0], POLLIN, 0};
      const int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
      if (r <= 0) continue;
      const ssize_t got = ::read(fds[0], dst, n);
      if (got < 0 && errno == EINTR) continue;
      return got > 0 ? static_cast<size_t>(got) : 0;
    }
  };
  char length[8];
  size_t have = 0;
  while (have < 8) {
    const size_t got = read_some(length + have, 8 - have);
    if (got == 0) break;
    have += got;
  }
  if (have == 8) {
    const uint64_t want = get_u64(length);
    if (want > max_message) {
      too_long = true;
    } else {
      msg.resize(static_cast<size_t>(want));
      size_t done = 0;
      while (done < msg.size()) {
        const size_t got = read_some(&msg[done], msg.size() - done);
        if (got == 0) break;
        done += got;
      }
      if (done < msg.size()) msg.clear();  // incomplete: reported below
    }
  }
  ::close(fds[0]);
  if (timed_out || too_long) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string damaged = ": the file is damaged or not a valid HDF5 file";
  if (timed_out)
    throw Error(where + "libhdf5 did not finish reading it in " + std::to_string(static_cast<int>(timeout)) +
                " s (stopped)" + damaged);
  if (too_long) throw Error(where + "reading it gave more data than the file can hold" + damaged);
  if (WIFSIGNALED(status))
    throw Error(where + "libhdf5 crashed (" + signal_text(WTERMSIG(status)) + ") while reading it" + damaged);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(where + "libhdf5 failed while reading it (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")" + damaged);
  if (!msg.empty() && msg[0] == 'E') throw Error(msg.substr(1));
  Tree t;
  if (msg.empty() || msg[0] != 'T' || !get_tree(msg, 1, t))
    throw Error(where + "the process reading it sent back an incomplete answer" + damaged);
  return t;
}

// ---- maas' header -------------------------------------------------------------------

constexpr char kMagic[8] = {'\x89', 'M', 'A', 'A', 'S', 'H', '5', '\n'};
constexpr char kHdf5Signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
constexpr uint32_t kHeaderVersion = 1;
constexpr uint32_t kChecksumCrc32 = 1;  // zlib's CRC-32

uint32_t crc32_of(const char* p, uint64_t n) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const uInt step = static_cast<uInt>(std::min<uint64_t>(n, uint64_t{1} << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(p), step);
    p += step;
    n -= step;
  }
  return static_cast<uint32_t>(crc);
}

void put_le(char* at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get_le(const char* at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(at[i])} << (8 * i);
  return v;
}

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

// Reads a regular file of at most kMaxFileBytes, never blocking on a pipe.
std::string read_file(const std::string& path, const Context& ctx) {
  const std::string where = ctx.who + ": " + path + ": ";
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) throw Error(where + "no such file");
    throw Error(where + "cannot open it: " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) throw Error(where + "cannot read it: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw Error(where + "is a directory, not an HDF5 file");
  if (!S_ISREG(st.st_mode))
    throw Error(where + "not a regular file (a named pipe, device or socket): maas reads files only");
  if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes)
    throw Error(where + "is " + std::to_string(st.st_size) + " bytes, more than the " +
                std::to_string(kMaxFileBytes >> 30) + " GiB maas reads");
  std::string image(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < image.size()) {
    const ssize_t r = ::pread(fd, &image[got], image.size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error(where + "cannot read it: " + std::strerror(errno));
    if (r == 0) break;  // it shrank meanwhile
    got += static_cast<size_t>(r);
  }
  image.resize(got);
  return image;
}

bool has_hdf5_signature(const std::string& image) {
  for (uint64_t at = 0; at + 8 <= image.size(); at = at == 0 ? 512 : at * 2)
    if (std::memcmp(image.data() + at, kHdf5Signature, 8) == 0) return true;
  return false;
}

}  // namespace

void set_read_timeout(double seconds) { g_read_timeout = seconds > 0 ? seconds : 0; }

void check_header(const std::string& image, const Context& ctx) {
  if (image.size() < 8 || std::memcmp(image.data(), kMagic, 8) != 0) return;
  const std::string where = ctx.who + ": " + ctx.path + ": ";
  if (image.size() < kHeaderBytes)
    throw Error(where + "the file is truncated (" + std::to_string(image.size()) + " bytes, less than maas' " +
                std::to_string(kHeaderBytes) + "-byte header)");
  const uint64_t version = get_le(image.data() + 8, 4), algorithm = get_le(image.data() + 12, 4);
  if (version != kHeaderVersion || algorithm != kChecksumCrc32)
    throw Error(where + "the file is corrupted, or written by a newer maas: header version " + std::to_string(version) +
                ", checksum " + std::to_string(algorithm) + " (this maas knows 1 and 1)");
  for (uint64_t i = 28; i < kHeaderBytes; ++i)
    if (image[i] != 0)
      throw Error(where + "the file is corrupted: byte " + std::to_string(i) + " of maas' header is not zero");
  const uint64_t expected = get_le(image.data() + 16, 8);
  const uint64_t found = image.size() - kHeaderBytes;
  if (found != expected)
    throw Error(where + "the file is " + (found < expected ? "truncated or corrupted" : "corrupted") + ": " +
                std::to_string(found) + " bytes follow maas' header, which says " + std::to_string(expected));
  const uint32_t want = static_cast<uint32_t>(get_le(image.data() + 24, 4));
  const uint32_t have = crc32_of(image.data() + kHeaderBytes, found);
  if (want != have)
    throw Error(where + "the file is corrupted: checksum mismatch (CRC-32 " + hex32(have) + ", maas wrote " +
                hex32(want) + "); if another program changed it on purpose, zero its first 8 bytes to load it "
                "unchecked");
}

// ---- Group: reading ------------------------------------------------------------------

int64_t Group::find(const std::string& rel) const {
  need_tree();
  size_t at = node_;
  bool any = false;
  for (const std::string& part : split_path(rel)) {
    if (part == ".") continue;
    const Node& n = tree_->nodes[at];
    if (!n.group) return -1;
    const auto it = n.links.find(part);
    if (it == n.links.end()) return -1;
    at = it->second;
    any = true;
  }
  return any ? static_cast<int64_t>(at) : -1;
}

bool Group::has(const std::string& rel) const { return find(rel) >= 0; }

bool Group::has_group(const std::string& rel) const {
  const int64_t n = find(rel);
  return n >= 0 && tree_->nodes[static_cast<size_t>(n)].group;
}

bool Group::has_attribute(const std::string& name) const {
  need_tree();
  return tree_->nodes[node_].attributes.count(name) > 0;
}

Group Group::group(const std::string& rel) const {
  if (!has_group(rel)) fail("group " + child_path(rel) + " is missing");
  return Group(tree_, static_cast<size_t>(find(rel)), ctx_, child_path(rel));
}

namespace {

const Attribute* attribute_of(const Tree& t, size_t node, const std::string& name) {
  const auto& attrs = t.nodes[node].attributes;
  const auto it = attrs.find(name);
  return it == attrs.end() ? nullptr : &it->second;
}

}  // namespace

std::vector<std::string> Group::read_string_list(const std::string& name) const {
  need_tree();
  auto strings_of = [&](const std::string& n, const Attribute& a) -> std::vector<std::string> {
    if (!a.error.empty()) throw Error(a.error);
    if (a.count == 0) return {};
    if (a.kind != Attribute::kStrings) fail("attribute '" + n + "' of " + path_ + " is not a string");
    return a.strings;
  };
  if (const Attribute* a = attribute_of(*tree_, node_, name)) return strings_of(name, *a);
  // Keras splits lists longer than 64 KB into name0, name1, ...
  std::vector<std::string> out;
  bool any = false;
  for (int k = 0;; ++k) {
    const std::string part = name + std::to_string(k);
    const Attribute* a = attribute_of(*tree_, node_, part);
    if (a == nullptr) break;
    any = true;
    for (std::string& s : strings_of(part, *a)) out.push_back(std::move(s));
  }
  if (!any) fail("attribute '" + name + "' of " + path_ + " is missing");
  return out;
}

std::string Group::read_string(const std::string& name) const {
  need_tree();
  const Attribute* a = attribute_of(*tree_, node_, name);
  if (a == nullptr) fail("attribute '" + name + "' of " + path_ + " is missing");
  if (!a->error.empty()) throw Error(a->error);
  if (a->count != 0 && a->kind != Attribute::kStrings) fail("attribute '" + name + "' of " + path_ + " is not a string");
  if (a->count != 1)
    fail("attribute '" + name + "' of " + path_ + " holds " + std::to_string(a->count) + " strings, expected one");
  return a->strings[0];
}

std::vector<double> Group::read_doubles(const std::string& name) const {
  need_tree();
  const Attribute* a = attribute_of(*tree_, node_, name);
  if (a == nullptr) fail("attribute '" + name + "' of " + path_ + " is missing");
  if (!a->error.empty()) throw Error(a->error);
  if (a->count == 0) return {};
  if (a->kind != Attribute::kNumbers) fail("attribute '" + name + "' of " + path_ + " is not a number");
  return a->numbers;
}

double Group::read_double(const std::string& name) const {
  const std::vector<double> v = read_doubles(name);
  if (v.size() != 1)
    fail("attribute '" + name + "' of " + path_ + " holds " + std::to_string(v.size()) + " numbers, expected one");
  return v[0];
}

int64_t Group::read_int(const std::string& name) const {
  need_tree();
  const Attribute* a = attribute_of(*tree_, node_, name);
  if (a == nullptr) fail("attribute '" + name + "' of " + path_ + " is missing");
  if (!a->error.empty()) throw Error(a->error);
  if (a->count != 1 || a->kind != Attribute::kNumbers || !a->integer || a->ints.size() != 1)
    fail("attribute '" + name + "' of " + path_ + " is not one integer");
  return a->ints[0];
}

size_t Group::dataset_node(const std::string& rel) const {
  const int64_t n = find(rel);
  if (n < 0) fail("dataset " + child_path(rel) + " is missing");
  if (tree_->nodes[static_cast<size_t>(n)].group) fail(child_path(rel) + " is a group, not a dataset");
  return static_cast<size_t>(n);
}

Shape Group::dataset_shape(const std::string& rel) const { return tree_->nodes[dataset_node(rel)].shape; }

std::vector<float> Group::read_floats(const std::string& rel, Shape* shape) const {
  const Node& n = tree_->nodes[dataset_node(rel)];
  if (!n.numeric) fail("dataset " + child_path(rel) + " does not hold numbers");
  if (!n.error.empty()) throw Error(n.error);
  if (shape != nullptr) *shape = n.shape;
  return n.values;
}

// ---- File -----------------------------------------------------------------------

// The core driver's memory for a file being written, kept when HDF5 closes
// the file: then it holds the file's final bytes (H5Fget_file_image of an
// open file gives a superblock whose checksum does not match).
struct Capture {
  void* kept = nullptr;
  size_t size = 0;
  ~Capture() { std::free(kept); }
};

namespace {

// New memory is zeroed: HDF5 leaves gaps unwritten, which must read as a
// file's holes do, so that the same content gives the same bytes.
void* image_malloc(size_t n, H5FD_file_image_op_t, void* udata) {
  void* p = std::calloc(n, 1);
  if (p != nullptr) static_cast<Capture*>(udata)->size = n;
  return p;
}

void* image_memcpy(void* dest, const void* src, size_t n, H5FD_file_image_op_t, void*) {
  return std::memcpy(dest, src, n);
}

void* image_realloc(void* ptr, size_t n, H5FD_file_image_op_t, void* udata) {
  auto* c = static_cast<Capture*>(udata);
  const size_t old = ptr == nullptr ? 0 : c->size;
  void* p = std::realloc(ptr, n);
  if (p != nullptr) {
    if (n > old) std::memset(static_cast<char*>(p) + old, 0, n - old);
    c->size = n;
  }
  return p;
}

herr_t image_free(void* ptr, H5FD_file_image_op_t op, void* udata) {
  auto* c = static_cast<Capture*>(udata);
  if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && c->kept == nullptr) {
    c->kept = ptr;
    return 0;
  }
  std::free(ptr);
  return 0;
}

void* udata_copy(void* udata) { return udata; }
herr_t udata_free(void*) { return 0; }

}  // namespace

File File::create(Context ctx) {
  Quiet q;
  File f;
  f.ctx_ = std::make_shared<const Context>(std::move(ctx));
  f.capture_ = std::make_shared<Capture>();
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), *f.ctx_, "cannot create a property list");
  // The HDF5 1.8 format: checksummed metadata, readable by any HDF5 >= 1.8.
  H5Pset_libver_bounds(static_cast<hid_t>(fapl.id()), H5F_LIBVER_V18, H5F_LIBVER_V18);
  H5Pset_fclose_degree(static_cast<hid_t>(fapl.id()), H5F_CLOSE_STRONG);
  H5FD_file_image_callbacks_t callbacks = {image_malloc, image_memcpy, image_realloc, image_free,
                                           udata_copy,   udata_free,   f.capture_.get()};
  if (H5Pset_fapl_core(static_cast<hid_t>(fapl.id()), 1 << 20, 0) < 0 ||
      H5Pset_file_image_callbacks(static_cast<hid_t>(fapl.id()), &callbacks) < 0)
    fail_in(*f.ctx_, "cannot set up writing the file in memory");
  // maas' header is HDF5's user block, which other readers skip.
  Handle fcpl = checked(H5Pcreate(H5P_FILE_CREATE), *f.ctx_, "cannot create a property list");
  // No modification times on the root group either.
  if (H5Pset_userblock(static_cast<hid_t>(fcpl.id()), kHeaderBytes) < 0 ||
      H5Pset_obj_track_times(static_cast<hid_t>(fcpl.id()), 0) < 0)
    fail_in(*f.ctx_, "cannot set up maas' header");
  static unsigned long counter = 0;
  const std::string name = "maas-new-" + std::to_string(++counter);
  f.h_ = checked(H5Fcreate(name.c_str(), H5F_ACC_EXCL, static_cast<hid_t>(fcpl.id()), static_cast<hid_t>(fapl.id())),
                 *f.ctx_, "cannot create " + f.ctx_->path);
  return f;
}

File File::open(const std::string& path, Context ctx) {
  File f;
  f.ctx_ = std::make_shared<const Context>(std::move(ctx));
  std::string image = read_file(path, *f.ctx_);
  if (!has_hdf5_signature(image))
    throw Error(f.ctx_->who + ": " + path + ": not an HDF5 file (no HDF5 signature; a checkpoint is written by "
                                            "save_model, save_weights or save_checkpoint, or by Keras' model.save)");
  check_header(image, *f.ctx_);
  f.tree_ = std::make_shared<const Tree>(read_in_child(image, *f.ctx_));
  return f;
}

Group File::root() const {
  if (tree_) return Group(tree_, 0, ctx_, "/");
  Quiet q;
  Handle g = checked(H5Gopen2(static_cast<hid_t>(h_.id()), "/", H5P_DEFAULT), *ctx_, "cannot open the root group");
  return Group(std::move(g), ctx_, "/");
}

std::string File::image() {
  Quiet q;
  if (!h_.valid() || !capture_) throw Error(ctx_->who + ": " + ctx_->path + ": internal: the file is not open for writing");
  if (!h_.reset() || capture_->kept == nullptr) fail_in(*ctx_, "cannot write the file in memory");
  // The file's length is the superblock's end-of-file address (superblock
  // version 2, 8-byte addresses: the HDF5 1.8 format written here).
  const char* b = static_cast<const char*>(capture_->kept);
  const char* sb = b + kHeaderBytes;
  if (capture_->size < kHeaderBytes + 48 || std::memcmp(sb, kHdf5Signature, 8) != 0 || sb[8] != 2 || sb[9] != 8)
    throw Error(ctx_->who + ": " + ctx_->path + ": internal: HDF5 wrote an unexpected superblock");
  const uint64_t size = get_le(sb + 28, 8);
  if (size < kHeaderBytes + 48 || size > capture_->size)
    throw Error(ctx_->who + ": " + ctx_->path + ": internal: HDF5 wrote an unexpected end of file");
  std::string out(b, static_cast<size_t>(size));
  std::free(capture_->kept);
  capture_->kept = nullptr;
  char* h = &out[0];
  std::memset(h, 0, kHeaderBytes);
  std::memcpy(h, kMagic, 8);
  put_le(h + 8, kHeaderVersion, 4);
  put_le(h + 12, kChecksumCrc32, 4);
  put_le(h + 16, out.size() - kHeaderBytes, 8);
  put_le(h + 24, crc32_of(out.data() + kHeaderBytes, out.size() - kHeaderBytes), 4);
  return out;
}

}  // namespace maas::detail::h5
