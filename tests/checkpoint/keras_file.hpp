// Hostile and hand-made Keras files for the loader tests: a model_config
// string of the test's choosing and weight datasets of declared shapes,
// written with the HDF5 C API as h5py writes them. Datasets are left
// unwritten (HDF5 allocates nothing and reads them as zeros), so a file can
// declare a (784, 1000000) kernel in a few kilobytes.
#pragma once

#include <hdf5.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace maas::test {

struct FileWeight {
  FileWeight(std::string name_, std::vector<hsize_t> shape_, std::vector<float> values_ = {})
      : name(std::move(name_)), shape(std::move(shape_)), values(std::move(values_)) {}
  std::string name;  // "kernel"
  std::vector<hsize_t> shape;
  std::vector<float> values;  // written when given (Keras' order); else the dataset is left unwritten
};
struct FileLayer {
  std::string name;
  std::vector<FileWeight> weights;
};

// How a file's string attributes are stored. h5py writes a scalar string
// variable-length and a list as fixed-length byte strings; other writers
// differ, and a reader must take either form of each.
struct StringForms {
  bool fixed_scalar = false;  // scalar strings as fixed-length, not variable-length
  bool fixed_lists = false;   // lists as fixed-length byte strings, not variable-length
};

inline void h5_attr_string(hid_t loc, const char* name, const std::string& value, bool fixed = false) {
  const hid_t t = H5Tcopy(H5T_C_S1);
  const hid_t s = H5Screate(H5S_SCALAR);
  if (fixed) {
    H5Tset_size(t, value.size());
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    const hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, value.data());
    H5Aclose(a);
  } else {
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    const hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = value.c_str();
    H5Awrite(a, t, &p);
    H5Aclose(a);
  }
  H5Sclose(s);
  H5Tclose(t);
}

inline void h5_attr_strings(hid_t loc, const char* name, const std::vector<std::string>& values, bool fixed = false) {
  const hsize_t n = values.size();
  const hid_t s = H5Screate_simple(1, &n, nullptr);
  if (values.empty()) {  // numpy's [] is float64 (0,)
    H5Aclose(H5Acreate2(loc, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(s);
    return;
  }
  const hid_t t = H5Tcopy(H5T_C_S1);
  if (fixed) {
    size_t w = 1;
    for (const std::string& v : values) w = std::max(w, v.size());
    std::string buf(w * values.size(), '\0');
    for (size_t i = 0; i < values.size(); ++i) std::memcpy(&buf[i * w], values[i].data(), values[i].size());
    H5Tset_size(t, w);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    const hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, buf.data());
    H5Aclose(a);
  } else {
    H5Tset_size(t, H5T_VARIABLE);
    std::vector<const char*> p;
    for (const std::string& v : values) p.push_back(v.c_str());
    const hid_t a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, p.data());
    H5Aclose(a);
  }
  H5Tclose(t);
  H5Sclose(s);
}

// Keras' layer groups under `g` (the root or /model_weights), as Keras'
// save_weights_to_hdf5_group writes them.
inline void h5_layers(hid_t g, const std::vector<FileLayer>& layers, StringForms forms = {}) {
  h5_attr_string(g, "backend", "tensorflow", forms.fixed_scalar);
  h5_attr_string(g, "keras_version", "2.13.1", forms.fixed_scalar);
  std::vector<std::string> names;
  for (const auto& l : layers) names.push_back(l.name);
  h5_attr_strings(g, "layer_names", names, forms.fixed_lists);
  for (const auto& l : layers) {
    const hid_t lg = H5Gcreate2(g, l.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<std::string> wn;
    for (const auto& w : l.weights) wn.push_back(l.name + "/" + w.name + ":0");
    h5_attr_strings(lg, "weight_names", wn, forms.fixed_lists);
    const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    for (size_t k = 0; k < l.weights.size(); ++k) {
      const auto& w = l.weights[k];
      const hid_t s = H5Screate_simple(static_cast<int>(w.shape.size()), w.shape.data(), nullptr);
      const hid_t d = H5Dcreate2(lg, wn[k].c_str(), H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
      if (!w.values.empty()) H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w.values.data());
      H5Dclose(d);
      H5Sclose(s);
    }
    H5Pclose(lcpl);
    H5Gclose(lg);
  }
}

// A save_model-style file: model_config `config` and `layers` under /model_weights.
inline void write_model_file(const std::string& path, const std::string& config,
                             const std::vector<FileLayer>& layers) {
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(f >= 0);
  h5_attr_string(f, "keras_version", "2.13.1");
  h5_attr_string(f, "backend", "tensorflow");
  h5_attr_string(f, "model_config", config);
  const hid_t g = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  h5_layers(g, layers);
  H5Gclose(g);
  H5Fclose(f);
}

// A Sequential's model_config around `layers` (JSON objects, comma-separated)
// for per-sample input `input` ("[null, 8, 8, 1]").
inline std::string sequential_config(const std::string& input, const std::string& layers) {
  return R"({"class_name": "Sequential", "config": {"name": "sequential", "layers": [)"
         R"({"class_name": "InputLayer", "config": {"batch_input_shape": )" +
         input + R"(, "name": "input"}})" + (layers.empty() ? "" : ", " + layers) + "]}}";
}

// The value of the open string attribute `a`, read as a variable-length
// string in the attribute's own character set.
inline std::string read_string_attr(hid_t a) {
  const hid_t t = H5Tcopy(H5T_C_S1), ft = H5Aget_type(a);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5Tget_cset(ft));
  H5Tclose(ft);
  char* value = nullptr;
  REQUIRE(H5Aread(a, t, &value) >= 0);
  std::string out = value;
  H5free_memory(value);
  H5Tclose(t);
  return out;
}

// A copy of the HDF5 file `src` as h5py would write it: the root's string
// attributes and every object below the root, nothing else (no user block),
// so the copy can be edited like any Keras file.
inline void copy_file(const std::string& src, const std::string& dst) {
  const hid_t in = H5Fopen(src.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(in >= 0);
  const hid_t out = H5Fcreate(dst.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(out >= 0);
  for (const char* name : {"keras_version", "backend", "model_config"}) {
    if (H5Aexists(in, name) <= 0) continue;
    const hid_t a = H5Aopen(in, name, H5P_DEFAULT);
    h5_attr_string(out, name, read_string_attr(a).c_str());
    H5Aclose(a);
  }
  H5Lvisit(in, H5_INDEX_NAME, H5_ITER_INC,
           [](hid_t root, const char* name, const H5L_info_t*, void* dst_file) -> herr_t {
             if (std::string(name).find('/') != std::string::npos) return 0;  // copied with its parent
             return H5Ocopy(root, name, *static_cast<hid_t*>(dst_file), name, H5P_DEFAULT, H5P_DEFAULT);
           },
           const_cast<hid_t*>(&out));
  H5Fclose(out);
  H5Fclose(in);
}

// Replaces dataset `path` of `file` by an unwritten float dataset of `shape`.
inline void redeclare_dataset(const std::string& file, const std::string& path, const std::vector<hsize_t>& shape) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  REQUIRE(H5Ldelete(f, path.c_str(), H5P_DEFAULT) >= 0);
  const hid_t s = H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr);
  const hid_t d = H5Dcreate2(f, path.c_str(), H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(d >= 0);
  H5Dclose(d);
  H5Sclose(s);
  H5Fclose(f);
}

// Rewrites attribute `name` of object `object` ("/training_state") as a scalar int64.
inline void rewrite_int(const std::string& file, const std::string& object, const char* name, int64_t value) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t o = H5Oopen(f, object.c_str(), H5P_DEFAULT);
  REQUIRE(o >= 0);
  H5Adelete(o, name);
  const hid_t s = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(o, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, &value);
  H5Aclose(a);
  H5Sclose(s);
  H5Oclose(o);
  H5Fclose(f);
}

// Rewrites attribute `name` of object `object` as a variable-length string.
inline void rewrite_string(const std::string& file, const std::string& object, const char* name,
                           const std::string& value) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t o = H5Oopen(f, object.c_str(), H5P_DEFAULT);
  REQUIRE(o >= 0);
  H5Adelete(o, name);
  h5_attr_string(o, name, value);
  H5Oclose(o);
  H5Fclose(f);
}

// The string attribute `name` of `object`.
inline std::string read_string_attr(const std::string& file, const std::string& object, const char* name) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t o = H5Oopen(f, object.c_str(), H5P_DEFAULT);
  const hid_t a = H5Aopen(o, name, H5P_DEFAULT);
  std::string out = read_string_attr(a);
  H5Aclose(a);
  H5Oclose(o);
  H5Fclose(f);
  return out;
}

}  // namespace maas::test
