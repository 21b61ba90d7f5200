// Reading: File::open (read the file once, check maas' header, walk the
// image in a child process) and Group's reading functions, which answer
// from the Tree that walk gave.
#include "checkpoint/h5/internal.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maas/error.hpp"

namespace maas::detail::h5 {

namespace {

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

}  // namespace

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
}  // namespace maas::detail::h5
