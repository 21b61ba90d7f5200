// Internal to src/checkpoint/h5/: what its files share. The files of this
// folder are the only maas files that include <hdf5.h> (h5.hpp, which the
// rest of maas uses, does not):
//   handle.cpp  Handle, HDF5's errors as maas::Error, paths
//   write.cpp   writing a file in memory: groups, attributes, datasets, File::create / image
//   wire.cpp    the Tree that a read gives, and its wire format (child -> parent)
//   child.cpp   reading an image in a child process: the Walker, limits and timeout
//   header.cpp  maas' header (signature, length, CRC-32) in HDF5's user block
//   read.cpp    File::open and Group's reading functions, answered from the Tree
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "checkpoint/h5.hpp"

namespace maas::detail::h5 {

static_assert(sizeof(hid_t) <= sizeof(int64_t), "hid_t must fit in int64_t");

// ---- handle.cpp ------------------------------------------------------------------

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

// Throws maas::Error "<who>: <path>: <what>", with HDF5's innermost message
// and a hint when it says the file is corrupted or truncated.
[[noreturn]] void fail_in(const Context& ctx, const std::string& what);
// `id` as a Handle, or fail_in(ctx, what) when HDF5 returned an error.
Handle checked(int64_t id, const Context& ctx, const std::string& what);
// "a/b//c" -> {"a", "b", "c"}.
std::vector<std::string> split_path(const std::string& rel);
// "(3, 3, 1, 32)", numpy's notation.
std::string shape_text(const Shape& s);

// ---- wire.cpp: the tree read from a file -----------------------------------------

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

void put_u64(std::string& out, uint64_t v);
uint64_t get_u64(const char* b);
// Appends `t` to `out`; get_tree reads it back from in[start], checking
// every length against the bytes left (false for anything malformed).
void put_tree(std::string& out, const Tree& t);
bool get_tree(const std::string& in, size_t start, Tree& t);

// ---- child.cpp -------------------------------------------------------------------

// Reads `image` in a child process (see the top of h5.hpp) and returns its tree.
Tree read_in_child(const std::string& image, const Context& ctx);

// ---- header.cpp ------------------------------------------------------------------

inline constexpr char kHdf5Signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};

// Fills the first kHeaderBytes of `image` (a file HDF5 wrote with a user
// block of that size) with maas' header for the rest.
void write_header(std::string& image);
// True when HDF5's signature stands where HDF5 looks for it (0, 512, 1024, ...).
bool has_hdf5_signature(const std::string& image);
// Little-endian integer of `bytes` bytes at `at`.
uint64_t get_le(const char* at, int bytes);

}  // namespace maas::detail::h5
