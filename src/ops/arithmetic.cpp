// add, sub, mul, div (broadcasting), neg, scalar forms, pow, and operators.
#include <cmath>

#include "maas/ops.hpp"
#include "ops/elementwise.hpp"

namespace maas {

namespace detail {

Broadcast broadcast(const Shape& a, const Shape& b, const char* op) {
  const size_t nd = std::max(a.size(), b.size());
  Broadcast bc{Shape(nd), Shape(nd), Shape(nd)};
  int64_t sa = 1, sb = 1;
  for (size_t k = 0; k < nd; ++k) {  // k counts from the right
    const size_t d = nd - 1 - k;
    const int64_t da = k < a.size() ? a[a.size() - 1 - k] : 1;
    const int64_t db = k < b.size() ? b[b.size() - 1 - k] : 1;
    MAAS_CHECK(da == db || da == 1 || db == 1,
               op << ": shapes " << to_string(a) << " and " << to_string(b)
                  << " cannot be broadcast (dimension " << static_cast<int64_t>(d) << ": " << da << " vs " << db
                  << ")");
    bc.out[d] = da == 1 ? db : da;
    bc.stride_a[d] = da == 1 ? 0 : sa;
    bc.stride_b[d] = db == 1 ? 0 : sb;
    sa *= da;
    sb *= db;
  }
  return bc;
}

}  // namespace detail

using detail::binary_op;
using detail::unary_op;

Tensor add(const Tensor& a, const Tensor& b) {
  return binary_op(
      "add", a, b, [](float x, float y) { return x + y; }, [](float, float, float g) { return g; },
      [](float, float, float g) { return g; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return binary_op(
      "sub", a, b, [](float x, float y) { return x - y; }, [](float, float, float g) { return g; },
      [](float, float, float g) { return -g; });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return binary_op(
      "mul", a, b, [](float x, float y) { return x * y; }, [](float, float y, float g) { return g * y; },
      [](float x, float, float g) { return g * x; });
}

Tensor div(const Tensor& a, const Tensor& b) {
  return binary_op(
      "div", a, b, [](float x, float y) { return x / y; }, [](float, float y, float g) { return g / y; },
      [](float x, float y, float g) { return -g * x / (y * y); });
}

Tensor neg(const Tensor& a) {
  return unary_op(
      "neg", a, [](float x) { return -x; }, [](float, float, float g) { return -g; });
}

Tensor add(const Tensor& a, float s) {
  return unary_op(
      "add_scalar", a, [s](float x) { return x + s; }, [](float, float, float g) { return g; });
}

Tensor mul(const Tensor& a, float s) {
  return unary_op(
      "mul_scalar", a, [s](float x) { return x * s; }, [s](float, float, float g) { return g * s; });
}

Tensor rsub(const Tensor& a, float s) {
  return unary_op(
      "rsub_scalar", a, [s](float x) { return s - x; }, [](float, float, float g) { return -g; });
}

Tensor rdiv(const Tensor& a, float s) {
  return unary_op(
      "rdiv_scalar", a, [s](float x) { return s / x; }, [](float x, float y, float g) { return -g * y / x; });
}

Tensor pow(const Tensor& a, float exponent) {
  return unary_op(
      "pow", a, [exponent](float x) { return std::pow(x, exponent); },
      [exponent](float x, float, float g) {
        return exponent == 0.f ? 0.f : g * exponent * std::pow(x, exponent - 1.f);
      });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, float s) { return add(a, s); }
Tensor operator+(float s, const Tensor& a) { return add(a, s); }
Tensor operator-(const Tensor& a, float s) { return add(a, -s); }
Tensor operator-(float s, const Tensor& a) { return rsub(a, s); }
Tensor operator*(const Tensor& a, float s) { return mul(a, s); }
Tensor operator*(float s, const Tensor& a) { return mul(a, s); }
Tensor operator/(const Tensor& a, float s) {
  MAAS_CHECK(s != 0.f, "div: division of a tensor of shape " << to_string(a.shape()) << " by scalar zero");
  return mul(a, 1.f / s);
}
Tensor operator/(float s, const Tensor& a) { return rdiv(a, s); }

}  // namespace maas
