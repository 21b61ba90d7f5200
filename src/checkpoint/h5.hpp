// Internal: a small RAII layer over the HDF5 C API, just what checkpoints need.
//
// h5.cpp is the only maas file that includes <hdf5.h>; this header does not,
// so the rest of the checkpoint code never sees an hid_t or an HDF5 error.
// Every failure throws maas::Error as "<who>: <file>: <problem>", with
// HDF5's own innermost message appended; HDF5's automatic error printing is
// switched off around every call, so nothing reaches stderr.
//
// Writing: chunked float32 datasets with the Fletcher32 checksum, groups and
// datasets without modification times, and the HDF5 1.8 file format (its
// superblock and object headers carry checksums): a damaged byte anywhere in
// the weights or the metadata makes reading fail instead of returning
// garbage, the same model gives the same bytes, and any HDF5 >= 1.8 (h5py,
// Keras, h5dump) reads the files.
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

// A group; copies share the open group.
class Group {
 public:
  Group() = default;
  Group(Handle h, std::shared_ptr<const Context> ctx, std::string path)
      : h_(std::make_shared<Handle>(std::move(h))), ctx_(std::move(ctx)), path_(std::move(path)) {}

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
  Shape dataset_shape(const std::string& rel) const;
  // Converts any integer or floating-point dataset to float.
  std::vector<float> read_floats(const std::string& rel, Shape* shape = nullptr) const;

 private:
  std::string child_path(const std::string& rel) const;
  // Opens dataset `rel` (failing when it is missing or unreadable), and its
  // dataspace, reading its shape. Call with HDF5's error printing off (Quiet).
  Handle open_dataset(const std::string& rel) const;
  Handle dataset_space(const Handle& dataset, const std::string& rel, Shape& shape) const;
  [[noreturn]] void fail(const std::string& what) const;

  int64_t id() const { return h_->id(); }

  std::shared_ptr<Handle> h_;
  std::shared_ptr<const Context> ctx_;
  std::string path_;
};

class File {
 public:
  // Creates (truncates) `path` for writing.
  static File create(const std::string& path, Context ctx);
  // Opens `path` read-only; throws when it is missing, not HDF5, truncated
  // or damaged.
  static File open(const std::string& path, Context ctx);

  Group root() const;
  // Flushes and closes the file, throwing if HDF5 cannot write it all.
  void close();

 private:
  Handle h_;
  std::shared_ptr<const Context> ctx_;
};

}  // namespace maas::detail::h5
