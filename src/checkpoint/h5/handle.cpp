// Handle, and HDF5's errors turned into maas::Error (h5/internal.hpp).
#include "checkpoint/h5/internal.hpp"

#include "maas/error.hpp"

namespace maas::detail::h5 {

namespace {

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

}  // namespace

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

std::string shape_text(const Shape& s) {
  std::string t = "(";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

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
}  // namespace maas::detail::h5
