// Internal: a small RAII layer over the HDF5 C API, just what checkpoints need.
//
// The files of src/checkpoint/h5/ (h5/internal.hpp lists them) are the only
// maas files that include <hdf5.h>; this header does not,
// so the rest of the checkpoint code never sees an hid_t or an HDF5 error.
// Every failure throws maas::Error as "<who>: <file>: <problem>", with
// HDF5's own innermost message appended; HDF5's automatic error printing is
// switched off around every call, so nothing reaches stderr.
//
// Writing happens in memory (HDF5's core driver): chunked float32 datasets
// with the Fletcher32 checksum, groups and datasets without modification
// times, and the HDF5 1.8 file format, so the same model gives the same
// bytes and any HDF5 >= 1.8 (h5py, Keras, h5dump) reads the files. The image
// starts with a 512-byte HDF5 user block that other readers skip, holding
// maas' header: a signature, the length of the rest and its CRC-32.
//
// Reading never lets libhdf5 parse a file inside this process: libhdf5
// 1.10 trusts sizes stored in the file (its global heap, where
// variable-length strings live) and crashes or loops forever on damaged
// ones. File::open reads the file (a regular file, at most kMaxFileBytes)
// into memory once, checks maas' header when there is one, then reads the
// image in a child process: it walks every group reachable through hard
// links, reads every attribute and every numeric dataset (as float32) and
// sends them back through a pipe. A crash or a hang of the child (killed
// after a timeout) is a maas::Error naming the file. The child refuses
// external links, external storage and virtual datasets (they would read
// other files) and datasets that declare far more data than the file
// stores. Group's reading functions then answer from that copy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "maas/tensor.hpp"

namespace maas::detail::h5 {

// Names the operation and the file in error messages.
struct Context {
  std::string who;   // "load_model"
  std::string path;  // as the user gave it
};

// Owns one HDF5 identifier (file, group, dataset, attribute, type, space or
// property list) and closes it once.
class Handle {
 public:
  Handle() = default;
  explicit Handle(int64_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  int64_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; returns false when HDF5 reports a failure.
  bool reset();
  // Gives up ownership, returning the identifier.
  int64_t release() {
    const int64_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  int64_t id_ = -1;
};

// The largest file File::open reads.
inline constexpr uint64_t kMaxFileBytes = uint64_t{2} << 30;  // 2 GiB
// The size of maas' header (HDF5's user block) at the start of its files.
inline constexpr uint64_t kHeaderBytes = 512;

// How long the child process reading a file may take, in seconds; 0 (the
// default) allows 10 s plus 1 s per 20 MB.
void set_read_timeout(double seconds);

struct Capture;  // h5/write.cpp
struct Tree;  // a file's groups, attributes and datasets, read (h5/internal.hpp)

// A group: being written (an open HDF5 group; copies share it), or of a file
// read by File::open (a node of its Tree).
class Group {
 public:
  Group() = default;
  Group(Handle h, std::shared_ptr<const Context> ctx, std::string path)
      : h_(std::make_shared<Handle>(std::move(h))), ctx_(std::move(ctx)), path_(std::move(path)) {}
  Group(std::shared_ptr<const Tree> tree, size_t node, std::shared_ptr<const Context> ctx, std::string path)
      : tree_(std::move(tree)), node_(node), ctx_(std::move(ctx)), path_(std::move(path)) {}

  // This group's path in the file ("/model_weights/dense"), for messages.
  const std::string& path() const { return path_; }
  const Context& context() const { return *ctx_; }

  // `rel` may hold '/' ("dense/kernel:0"): true when every component exists.
  bool has(const std::string& rel) const;
  bool has_group(const std::string& rel) const;
  bool has_attribute(const std::string& name) const;
  Group group(const std::string& rel) const;         // throws when missing
  Group create_group(const std::string& rel) const;  // creates missing components

  // Attributes. Strings are written as h5py writes them for Keras: a scalar
  // variable-length UTF-8 string, or a 1-D array of fixed-length byte strings
  // (an empty list as an empty float64 array, as h5py stores numpy's []).
  void write_string(const std::string& name, const std::string& value) const;
  void write_string_list(const std::string& name, const std::vector<std::string>& values) const;
  void write_int(const std::string& name, int64_t value) const;
  void write_doubles(const std::string& name, const std::vector<double>& values) const;
  void write_double(const std::string& name, double value) const { write_doubles(name, {value}); }

  // Reading accepts fixed- or variable-length strings, ASCII or UTF-8, as a
  // scalar or a 1-D array, and Keras' split lists ("layer_names0",
  // "layer_names1", ... when one attribute would exceed 64 KB). An empty
  // attribute of any type reads as an empty list.
  std::string read_string(const std::string& name) const;
  std::vector<std::string> read_string_list(const std::string& name) const;
  int64_t read_int(const std::string& name) const;
  std::vector<double> read_doubles(const std::string& name) const;
  double read_double(const std::string& name) const;

  // Datasets of floats; `rel` may name intermediate groups, which are created.
  void write_floats(const std::string& rel, const Shape& shape, const float* data) const;
  // Likewise as int8 / int32 datasets (quantized weights); read_floats reads them back.
  void write_int8s(const std::string& rel, const Shape& shape, const int8_t* data) const;
  void write_int32s(const std::string& rel, const Shape& shape, const int32_t* data) const;
  Shape dataset_shape(const std::string& rel) const;
  // Converts any integer or floating-point dataset to float.
  std::vector<float> read_floats(const std::string& rel, Shape* shape = nullptr) const;

 private:
  std::string child_path(const std::string& rel) const;
  // file_type, memory_type: HDF5 type identifiers (hid_t).
  void write_dataset(const std::string& rel, const Shape& shape, const void* data, int64_t file_type,
                     int64_t memory_type, size_t element_bytes) const;
  // The node `rel` names in the tree read, or none (-1) when a component is
  // missing or not a group.
  int64_t find(const std::string& rel) const;
  // The dataset node `rel` names; fails when it is missing or a group.
  size_t dataset_node(const std::string& rel) const;
  [[noreturn]] void fail(const std::string& what) const;
  void need_tree() const;
  void need_handle() const;

  int64_t id() const { return h_->id(); }

  std::shared_ptr<Handle> h_;  // writing
  std::shared_ptr<const Tree> tree_;  // reading
  size_t node_ = 0;
  std::shared_ptr<const Context> ctx_;
  std::string path_;
};

class File {
 public:
  // A new file in memory, for writing; image() gives its bytes.
  static File create(Context ctx);
  // Reads `path` (see the top of this file); throws when it is missing, not
  // a regular file, too large, not HDF5, truncated, damaged or refused.
  static File open(const std::string& path, Context ctx);

  Group root() const;
  // Closes a file being written and returns its bytes, maas' header
  // included (the file is then closed; call once).
  std::string image();

 private:
  Handle h_;                          // writing
  std::shared_ptr<Capture> capture_;     // writing: the bytes HDF5 leaves at closing
  std::shared_ptr<const Tree> tree_;  // reading
  std::shared_ptr<const Context> ctx_;
};

// Checks maas' header of a file image: nothing when the image has none (a
// file of another program), else throws unless the rest has the length and
// the CRC-32 the header records.
void check_header(const std::string& image, const Context& ctx);

}  // namespace maas::detail::h5
