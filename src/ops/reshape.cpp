// reshape / flatten / clone: views and copies of the same numbers.
#include <cstring>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {
void add_into(Tensor& dst, const Tensor& src) { detail::add_to(dst.data(), src.data(), dst.numel()); }
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  detail::check_defined(x, "reshape", "input");
  Shape target = shape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      MAAS_CHECK(infer < 0, "reshape: more than one -1 in " << to_string(shape));
      infer = static_cast<int>(i);
    } else {
      MAAS_CHECK(target[i] >= 0, "reshape: negative dimension in " << to_string(shape));
      known *= target[i];
    }
  }
  if (infer >= 0) {
    MAAS_CHECK(known != 0 && x.numel() % known == 0,
               "reshape: cannot reshape " << to_string(x.shape()) << " into " << to_string(shape));
    target[static_cast<size_t>(infer)] = x.numel() / known;
  }
  MAAS_CHECK(numel(target) == x.numel(), "reshape: cannot reshape " << to_string(x.shape()) << " ("
                                         << x.numel() << " elements) into " << to_string(shape));
  Tensor out = x.detach();
  out.impl()->shape = target;
  autograd::record("reshape", out, {x}, [](const Tensor& dout, std::vector<Tensor>& dx) {
    add_into(dx[0], dout);  // same element order: only the shape differs
  });
  return out;
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  detail::check_defined(x, "flatten", "input");
  const int64_t nd = x.dim();
  if (nd == 0) return reshape(x, {1});
  const int64_t s = detail::normalize_dim(start_dim, nd, "flatten", x.shape());
  const int64_t e = detail::normalize_dim(end_dim, nd, "flatten", x.shape());
  MAAS_CHECK(s <= e, "flatten: start_dim " << start_dim << " comes after end_dim " << end_dim << " for shape "
                                           << to_string(x.shape()));
  Shape target;
  int64_t merged = 1;
  for (int64_t i = 0; i < nd; ++i) {
    if (i < s || i > e) {
      target.push_back(x.shape()[i]);
    } else {
      merged *= x.shape()[i];
      if (i == e) target.push_back(merged);
    }
  }
  return reshape(x, target);
}

Tensor Tensor::clone() const {
  detail::check_defined(*this, "clone", "input");
  Tensor out = Tensor::empty(shape());
  if (numel()) std::memcpy(out.data(), data(), static_cast<size_t>(numel()) * sizeof(float));
  autograd::record("clone", out, {*this}, [](const Tensor& dout, std::vector<Tensor>& dx) {
    add_into(dx[0], dout);
  });
  return out;
}

// Tensor::reshape (declared in tensor.hpp) is this op.
Tensor Tensor::reshape(const Shape& shape) const { return maas::reshape(*this, shape); }

}  // namespace maas
