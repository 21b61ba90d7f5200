// Writing a file in memory (HDF5's core driver): groups, attributes,
// chunked and checksummed datasets, and the image with maas' header.
#include "checkpoint/h5/internal.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "maas/error.hpp"

namespace maas::detail::h5 {

namespace {

// Creation properties shared by groups and datasets: no modification times,
// so the same content gives the same bytes.
Handle object_plist(hid_t cls, const Context& ctx) {
  Handle p = checked(H5Pcreate(cls), ctx, "cannot create a property list");
  H5Pset_obj_track_times(p.id(), 0);
  return p;
}

}  // namespace

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
  write_header(out);
  return out;
}

}  // namespace maas::detail::h5
