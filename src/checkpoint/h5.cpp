// The HDF5 wrapper of h5.hpp: the only maas file that includes <hdf5.h>.
#include "checkpoint/h5.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <sys/stat.h>

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

std::string Group::child_path(const std::string& rel) const {
  return (path_ == "/" ? "/" : path_ + "/") + rel;
}

bool Group::has(const std::string& rel) const {
  Quiet q;
  std::string sofar;
  for (const std::string& part : split_path(rel)) {
    sofar += (sofar.empty() ? "" : "/") + part;
    const htri_t e = H5Lexists(static_cast<hid_t>(id()), sofar.c_str(), H5P_DEFAULT);
    if (e <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
  }
  return !sofar.empty();
}

bool Group::has_group(const std::string& rel) const {
  if (!has(rel)) return false;
  Quiet q;
  const hid_t o = H5Oopen(static_cast<hid_t>(id()), rel.c_str(), H5P_DEFAULT);
  if (o < 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  Handle owned(o);
  return H5Iget_type(o) == H5I_GROUP;
}

bool Group::has_attribute(const std::string& name) const {
  Quiet q;
  const htri_t e = H5Aexists(static_cast<hid_t>(id()), name.c_str());
  if (e < 0) fail("cannot look up attribute '" + name + "' of " + path_);
  return e > 0;
}

Group Group::group(const std::string& rel) const {
  if (!has_group(rel)) fail("group " + child_path(rel) + " is missing");
  Quiet q;
  Handle g = checked(H5Gopen2(static_cast<hid_t>(id()), rel.c_str(), H5P_DEFAULT), *ctx_,
                     "cannot open group " + child_path(rel));
  return Group(std::move(g), ctx_, child_path(rel));
}

Group Group::create_group(const std::string& rel) const {
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
  Quiet q;
  Handle space = checked(H5Screate(H5S_SCALAR), *ctx_, "cannot make a dataspace");
  write_attribute(*this, static_cast<hid_t>(id()), name, H5T_STD_I64LE, H5T_NATIVE_INT64,
                  static_cast<hid_t>(space.id()), &value, *ctx_);
}

void Group::write_doubles(const std::string& name, const std::vector<double>& values) const {
  Quiet q;
  const hsize_t n = values.size();
  Handle space = values.size() == 1 ? checked(H5Screate(H5S_SCALAR), *ctx_, "cannot make a dataspace")
                                    : checked(H5Screate_simple(1, &n, nullptr), *ctx_, "cannot make a dataspace");
  write_attribute(*this, static_cast<hid_t>(id()), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                  static_cast<hid_t>(space.id()), values.empty() ? nullptr : values.data(), *ctx_);
}

// ---- Attributes: reading ------------------------------------------------------

namespace {

struct OpenAttribute {
  Handle attr, type, space;
  hsize_t count = 0;
};

OpenAttribute open_attribute(const Group& g, hid_t loc, const std::string& name, const Context& ctx) {
  OpenAttribute a;
  a.attr = checked(H5Aopen(loc, name.c_str(), H5P_DEFAULT), ctx,
                   "cannot open attribute '" + name + "' of " + g.path());
  a.type = checked(H5Aget_type(static_cast<hid_t>(a.attr.id())), ctx, "cannot read the type of attribute '" + name + "'");
  a.space = checked(H5Aget_space(static_cast<hid_t>(a.attr.id())), ctx,
                    "cannot read the shape of attribute '" + name + "'");
  const hssize_t n = H5Sget_simple_extent_npoints(static_cast<hid_t>(a.space.id()));
  if (n < 0) fail_in(ctx, "cannot read the shape of attribute '" + name + "' of " + g.path());
  a.count = static_cast<hsize_t>(n);
  return a;
}

std::vector<std::string> read_strings(const Group& g, hid_t loc, const std::string& name, const Context& ctx) {
  OpenAttribute a = open_attribute(g, loc, name, ctx);
  const hid_t ftype = static_cast<hid_t>(a.type.id());
  if (a.count == 0) return {};
  if (H5Tget_class(ftype) != H5T_STRING)
    fail_in(ctx, "attribute '" + name + "' of " + g.path() + " is not a string");
  std::vector<std::string> out;
  out.reserve(a.count);
  const htri_t is_vlen = H5Tis_variable_str(ftype);
  if (is_vlen < 0) fail_in(ctx, "cannot read the type of attribute '" + name + "'");
  if (is_vlen > 0) {
    Handle mtype = checked(H5Tcopy(H5T_C_S1), ctx, "cannot make a string type");
    H5Tset_size(static_cast<hid_t>(mtype.id()), H5T_VARIABLE);
    H5Tset_cset(static_cast<hid_t>(mtype.id()), H5Tget_cset(ftype));
    std::vector<char*> ptrs(a.count, nullptr);
    if (H5Aread(static_cast<hid_t>(a.attr.id()), static_cast<hid_t>(mtype.id()), ptrs.data()) < 0)
      fail_in(ctx, "cannot read attribute '" + name + "' of " + g.path());
    for (char* p : ptrs) {
      out.emplace_back(p != nullptr ? p : "");
      if (p != nullptr) H5free_memory(p);
    }
    return out;
  }
  const size_t width = H5Tget_size(ftype);
  if (width == 0) fail_in(ctx, "cannot read the type of attribute '" + name + "'");
  const H5T_str_t pad = H5Tget_strpad(ftype);
  std::vector<char> buf(width * a.count);
  if (H5Aread(static_cast<hid_t>(a.attr.id()), ftype, buf.data()) < 0)
    fail_in(ctx, "cannot read attribute '" + name + "' of " + g.path());
  for (hsize_t i = 0; i < a.count; ++i) {
    const char* p = buf.data() + i * width;
    size_t len = 0;
    while (len < width && p[len] != '\0') ++len;
    if (pad == H5T_STR_SPACEPAD)
      while (len > 0 && p[len - 1] == ' ') --len;
    out.emplace_back(p, len);
  }
  return out;
}

}  // namespace

std::vector<std::string> Group::read_string_list(const std::string& name) const {
  Quiet q;
  const hid_t loc = static_cast<hid_t>(id());
  if (H5Aexists(loc, name.c_str()) > 0) return read_strings(*this, loc, name, *ctx_);
  H5Eclear2(H5E_DEFAULT);
  // Keras splits lists longer than 64 KB into name0, name1, ...
  std::vector<std::string> out;
  bool any = false;
  for (int k = 0;; ++k) {
    const std::string part = name + std::to_string(k);
    if (H5Aexists(loc, part.c_str()) <= 0) break;
    any = true;
    for (std::string& s : read_strings(*this, loc, part, *ctx_)) out.push_back(std::move(s));
  }
  H5Eclear2(H5E_DEFAULT);
  if (!any) fail("attribute '" + name + "' of " + path_ + " is missing");
  return out;
}

std::string Group::read_string(const std::string& name) const {
  if (!has_attribute(name)) fail("attribute '" + name + "' of " + path_ + " is missing");
  Quiet q;
  std::vector<std::string> v = read_strings(*this, static_cast<hid_t>(id()), name, *ctx_);
  if (v.size() != 1)
    fail("attribute '" + name + "' of " + path_ + " holds " + std::to_string(v.size()) + " strings, expected one");
  return v[0];
}

std::vector<double> Group::read_doubles(const std::string& name) const {
  if (!has_attribute(name)) fail("attribute '" + name + "' of " + path_ + " is missing");
  Quiet q;
  OpenAttribute a = open_attribute(*this, static_cast<hid_t>(id()), name, *ctx_);
  std::vector<double> out(a.count);
  if (a.count == 0) return out;
  const H5T_class_t c = H5Tget_class(static_cast<hid_t>(a.type.id()));
  if (c != H5T_FLOAT && c != H5T_INTEGER) fail("attribute '" + name + "' of " + path_ + " is not a number");
  if (H5Aread(static_cast<hid_t>(a.attr.id()), H5T_NATIVE_DOUBLE, out.data()) < 0)
    fail("cannot read attribute '" + name + "' of " + path_);
  return out;
}

double Group::read_double(const std::string& name) const {
  const std::vector<double> v = read_doubles(name);
  if (v.size() != 1)
    fail("attribute '" + name + "' of " + path_ + " holds " + std::to_string(v.size()) + " numbers, expected one");
  return v[0];
}

int64_t Group::read_int(const std::string& name) const {
  if (!has_attribute(name)) fail("attribute '" + name + "' of " + path_ + " is missing");
  Quiet q;
  OpenAttribute a = open_attribute(*this, static_cast<hid_t>(id()), name, *ctx_);
  if (a.count != 1 || H5Tget_class(static_cast<hid_t>(a.type.id())) != H5T_INTEGER)
    fail("attribute '" + name + "' of " + path_ + " is not one integer");
  int64_t v = 0;
  if (H5Aread(static_cast<hid_t>(a.attr.id()), H5T_NATIVE_INT64, &v) < 0)
    fail("cannot read attribute '" + name + "' of " + path_);
  return v;
}

// ---- Datasets -------------------------------------------------------------------

void Group::write_floats(const std::string& rel, const Shape& shape, const float* data) const {
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
      hsize_t b = sizeof(float);
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
  Handle d = checked(H5Dcreate2(parent, leaf.c_str(), H5T_IEEE_F32LE,
                                static_cast<hid_t>(space.id()), H5P_DEFAULT, static_cast<hid_t>(dcpl.id()), H5P_DEFAULT),
                     *ctx_, "cannot create dataset " + child_path(rel));
  if (count > 0 &&
      H5Dwrite(static_cast<hid_t>(d.id()), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail("cannot write dataset " + child_path(rel));
}

namespace {

Shape space_shape(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) return {-1};
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return Shape(dims.begin(), dims.end());
}

}  // namespace

Handle Group::open_dataset(const std::string& rel) const {
  if (!has(rel)) fail("dataset " + child_path(rel) + " is missing");
  return checked(H5Dopen2(static_cast<hid_t>(id()), rel.c_str(), H5P_DEFAULT), *ctx_,
                 "cannot open dataset " + child_path(rel));
}

Handle Group::dataset_space(const Handle& dataset, const std::string& rel, Shape& shape) const {
  Handle space = checked(H5Dget_space(static_cast<hid_t>(dataset.id())), *ctx_,
                         "cannot read the shape of dataset " + child_path(rel));
  shape = space_shape(static_cast<hid_t>(space.id()));
  if (!shape.empty() && shape[0] < 0) fail("cannot read the shape of dataset " + child_path(rel));
  return space;
}

Shape Group::dataset_shape(const std::string& rel) const {
  Quiet q;
  Shape s;
  dataset_space(open_dataset(rel), rel, s);
  return s;
}

std::vector<float> Group::read_floats(const std::string& rel, Shape* shape) const {
  Quiet q;
  Handle d = open_dataset(rel);
  Handle type = checked(H5Dget_type(static_cast<hid_t>(d.id())), *ctx_,
                        "cannot read the type of dataset " + child_path(rel));
  const H5T_class_t c = H5Tget_class(static_cast<hid_t>(type.id()));
  if (c != H5T_FLOAT && c != H5T_INTEGER) fail("dataset " + child_path(rel) + " does not hold numbers");
  Shape s;
  Handle space = dataset_space(d, rel, s);
  const hssize_t n = H5Sget_simple_extent_npoints(static_cast<hid_t>(space.id()));
  if (n < 0) fail("cannot read the shape of dataset " + child_path(rel));
  std::vector<float> out(static_cast<size_t>(n));
  if (n > 0 && H5Dread(static_cast<hid_t>(d.id()), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    fail("cannot read dataset " + child_path(rel));
  if (shape != nullptr) *shape = s;
  return out;
}

// ---- File -----------------------------------------------------------------------

namespace {

Handle file_access(const Context& ctx) {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), ctx, "cannot create a property list");
  // The HDF5 1.8 format: checksummed metadata, readable by any HDF5 >= 1.8.
  H5Pset_libver_bounds(static_cast<hid_t>(fapl.id()), H5F_LIBVER_V18, H5F_LIBVER_V18);
  H5Pset_fclose_degree(static_cast<hid_t>(fapl.id()), H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 10, 7)
  // Lock as usual, but do not fail on file systems without locks.
  H5Pset_file_locking(static_cast<hid_t>(fapl.id()), 1, 1);
#endif
  return fapl;
}

}  // namespace

File File::create(const std::string& path, Context ctx) {
  Quiet q;
  File f;
  f.ctx_ = std::make_shared<const Context>(std::move(ctx));
  Handle fapl = file_access(*f.ctx_);
  f.h_ = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, static_cast<hid_t>(fapl.id())), *f.ctx_,
                 "cannot create " + path);
  return f;
}

File File::open(const std::string& path, Context ctx) {
  Quiet q;
  File f;
  f.ctx_ = std::make_shared<const Context>(std::move(ctx));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw Error(f.ctx_->who + ": " + path + ": no such file");
  if (S_ISDIR(st.st_mode)) throw Error(f.ctx_->who + ": " + path + ": is a directory, not an HDF5 file");
  const htri_t is = H5Fis_hdf5(path.c_str());
  if (is == 0) {
    H5Eclear2(H5E_DEFAULT);
    throw Error(f.ctx_->who + ": " + path + ": not an HDF5 file (no HDF5 signature; a checkpoint is written by "
                                             "save_model, save_weights or save_checkpoint, or by Keras' model.save)");
  }
  if (is < 0) fail_in(*f.ctx_, "cannot read the file");
  Handle fapl = file_access(*f.ctx_);
  f.h_ = checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, static_cast<hid_t>(fapl.id())), *f.ctx_,
                 "cannot open the HDF5 file");
  return f;
}

Group File::root() const {
  Quiet q;
  Handle g = checked(H5Gopen2(static_cast<hid_t>(h_.id()), "/", H5P_DEFAULT), *ctx_, "cannot open the root group");
  return Group(std::move(g), ctx_, "/");
}

void File::close() {
  Quiet q;
  if (!h_.valid()) return;
  if (H5Fflush(static_cast<hid_t>(h_.id()), H5F_SCOPE_GLOBAL) < 0) fail_in(*ctx_, "cannot flush the file");
  const hid_t id = static_cast<hid_t>(h_.release());
  if (H5Fclose(id) < 0) fail_in(*ctx_, "cannot close the file (HDF5 could not write it all)");
}

}  // namespace maas::detail::h5
