// Tensor: storage, factories, element access, printing.
#include "maas/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <limits>
#include <mutex>
#include <ostream>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "core/internal.hpp"

namespace maas {

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t numel(const Shape& shape) {
  // The product of the non-zero dimensions must fit, so that every stride
  // and every partial product of the shape fits too, whatever the order.
  int64_t n = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d == 0) {
      empty = true;
      continue;
    }
    MAAS_CHECK(!__builtin_mul_overflow(n, d, &n),
               "shape " << to_string(shape) << " has more elements than a 64-bit size can count");
  }
  return empty ? 0 : n;
}

float Generator::uniform() {
  // 24 random bits: every float in [0, 1) with spacing 2^-24, never 1.
  return static_cast<float>(engine_() >> 40) * (1.0f / 16777216.0f);
}

float Generator::normal() {
  // Box-Muller; written out so results do not depend on the standard library.
  float u1 = uniform();
  float u2 = uniform();
  if (u1 < 1e-12f) u1 = 1e-12f;
  return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.283185307179586f * u2);
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().seed(seed); }

namespace detail {

namespace {

// Freed blocks of 64 KiB and more are kept for reuse, by exact size, up to
// kCacheLimit bytes in all. A training step allocates the same sizes every
// step; without the cache, the C library hands those large blocks back to
// the kernel when they are freed and the next step pays a page fault for
// every 4 KiB it touches again (a few % of the step). Sanitizer builds keep
// no cache, so that every use after free is seen.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kCacheLimit = 0;
#else
constexpr size_t kCacheLimit = size_t{1} << 30;
#endif
constexpr size_t kCacheMinBlock = size_t{64} << 10;

class BlockCache {
 public:
  // A cached block of exactly `bytes`, or nullptr.
  void* take(size_t bytes) {
    if (bytes < kCacheMinBlock || kCacheLimit == 0) return nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.find(bytes);
    if (it == blocks_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= bytes;
    return p;
  }
  // Keeps the block for reuse, or frees it when the cache is full.
  void give(void* p, size_t bytes) {
    if (bytes >= kCacheMinBlock && kCacheLimit > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= kCacheLimit) {
        blocks_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> blocks_;
  size_t cached_ = 0;
};

// Never destroyed: tensors with static storage duration may be freed after
// any other static object.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;
  return *cache;
}

// 64-byte alignment suits AVX-512 loads; the byte count is rounded up as
// aligned_alloc requires.
size_t storage_bytes(int64_t n) {
  MAAS_CHECK(n <= static_cast<int64_t>((std::numeric_limits<size_t>::max() - 63) / sizeof(float)),
             "cannot allocate " << n << " floats: more bytes than memory can address");
  const size_t bytes = static_cast<size_t>(n > 0 ? n : 1) * sizeof(float);
  return (bytes + 63) / 64 * 64;
}

}  // namespace

Storage::Storage(int64_t n) : size(n) {
  const size_t bytes = storage_bytes(n);
  data = static_cast<float*>(block_cache().take(bytes));
  if (!data) data = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!data) throw Error("out of memory allocating " + std::to_string(n) + " floats");
}

Storage::~Storage() { block_cache().give(data, storage_bytes(size)); }

int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op, const Shape& shape) {
  MAAS_CHECK(dim >= -ndim && dim < ndim, op << ": dimension " << dim << " is out of range for shape "
                                            << to_string(shape));
  return dim < 0 ? dim + ndim : dim;
}

void check_defined(const Tensor& t, const char* op, const char* arg) {
  MAAS_CHECK(t.defined(), op << ": " << arg << " is an undefined tensor");
}

}  // namespace detail

namespace {

void check_shape(const Shape& shape, const char* where) {
  for (int64_t d : shape)
    MAAS_CHECK(d >= 0, where << ": negative dimension in shape " << to_string(shape));
}

const detail::TensorImpl& checked(const std::shared_ptr<detail::TensorImpl>& impl) {
  MAAS_CHECK(impl != nullptr, "tensor is undefined (default-constructed)");
  return *impl;
}

}  // namespace

Tensor Tensor::empty(const Shape& shape) {
  check_shape(shape, "Tensor::empty");
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->storage = std::make_shared<detail::Storage>(maas::numel(shape));
  impl->shape = shape;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.f); }
Tensor Tensor::ones(const Shape& shape) { return full(shape, 1.f); }

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  float* p = t.data();
  const int64_t n = t.numel();
  if (value == 0.f) {
    // Large buffers (gradients of activations) are cleared by every thread:
    // one core alone cannot fill memory at the rate two can.
    constexpr int64_t kPiece = int64_t{1} << 16;
    const int64_t pieces = (n + kPiece - 1) / kPiece;
#pragma omp parallel for if (pieces > 4) schedule(static)
    for (int64_t k = 0; k < pieces; ++k)
      std::memset(p + k * kPiece, 0, static_cast<size_t>(std::min(kPiece, n - k * kPiece)) * sizeof(float));
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = value;
  }
  return t;
}

Tensor Tensor::scalar(float value) { return full({}, value); }

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  check_shape(shape, "Tensor::from_vector");
  MAAS_CHECK(static_cast<int64_t>(values.size()) == maas::numel(shape),
             "Tensor::from_vector: " << values.size() << " values do not fill shape " << to_string(shape)
                                     << " (" << maas::numel(shape) << " elements)");
  Tensor t = empty(shape);
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, float mean, float stddev) {
  Tensor t = empty(shape);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = mean + stddev * gen.normal();
  return t;
}

Tensor Tensor::rand(const Shape& shape, Generator& gen, float low, float high) {
  MAAS_CHECK(low <= high, "Tensor::rand: low " << low << " exceeds high " << high);
  Tensor t = empty(shape);
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = low + (high - low) * gen.uniform();
  return t;
}

const Shape& Tensor::shape() const { return checked(impl_).shape; }

Shape Tensor::strides() const {
  const Shape& s = shape();
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

int64_t Tensor::size(int64_t d) const {
  const int64_t nd = dim();
  return shape()[static_cast<size_t>(detail::normalize_dim(d, nd, "Tensor::size", shape()))];
}

float* Tensor::data() {
  const auto& impl = checked(impl_);
  return impl.storage->data + impl.offset;
}

const float* Tensor::data() const {
  const auto& impl = checked(impl_);
  return impl.storage->data + impl.offset;
}

namespace {
int64_t flat_index(const Tensor& t, std::initializer_list<int64_t> index) {
  const Shape& s = t.shape();
  MAAS_CHECK(index.size() == s.size(), "Tensor::at: " << index.size() << " indices for a "
                                                      << s.size() << "-d tensor of shape " << to_string(s));
  int64_t flat = 0;
  size_t d = 0;
  for (int64_t i : index) {
    MAAS_CHECK(i >= 0 && i < s[d], "Tensor::at: index " << i << " is out of range for dimension " << d
                                                        << " of shape " << to_string(s));
    flat = flat * s[d] + i;
    ++d;
  }
  return flat;
}
}  // namespace

float& Tensor::at(std::initializer_list<int64_t> index) { return data()[flat_index(*this, index)]; }
float Tensor::at(std::initializer_list<int64_t> index) const { return data()[flat_index(*this, index)]; }

float Tensor::item() const {
  MAAS_CHECK(numel() == 1, "Tensor::item: tensor of shape " << to_string(shape())
                                                            << " has " << numel() << " elements, not 1");
  return data()[0];
}

std::vector<float> Tensor::to_vector() const { return std::vector<float>(data(), data() + numel()); }

Tensor Tensor::detach() const {
  const auto& src = checked(impl_);
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->storage = src.storage;
  impl->offset = src.offset;
  impl->shape = src.shape;
  return Tensor(std::move(impl));
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  const auto& src = checked(impl_);
  MAAS_CHECK(dim() >= 1, "Tensor::slice_rows: tensor of shape " << to_string(shape()) << " has no rows");
  MAAS_CHECK(0 <= begin && begin <= end && end <= src.shape[0],
             "Tensor::slice_rows: rows [" << begin << ", " << end << ") are out of range for shape "
                                          << to_string(src.shape));
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->storage = src.storage;
  impl->shape = src.shape;
  impl->shape[0] = end - begin;
  impl->offset = src.offset + begin * (src.shape[0] ? numel() / src.shape[0] : 0);
  return Tensor(std::move(impl));
}

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  checked(impl_);
  MAAS_CHECK(is_leaf(), "requires_grad_: only leaf tensors can be marked; this one was produced by '"
                            << grad_fn_name() << "' (use detach() first)");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& impl = checked(impl_);
  return impl.grad ? Tensor(impl.grad) : Tensor();
}

void Tensor::zero_grad(bool set_to_none) {
  auto& impl = const_cast<detail::TensorImpl&>(checked(impl_));
  if (!impl.grad) return;
  if (set_to_none) {
    impl.grad.reset();
  } else {
    Tensor g(impl.grad);
    std::memset(g.data(), 0, static_cast<size_t>(g.numel()) * sizeof(float));
  }
}

bool Tensor::is_leaf() const { return checked(impl_).grad_fn == nullptr; }

bool Tensor::shares_storage(const Tensor& other) const {
  return defined() && other.defined() && impl_->storage == other.impl_->storage;
}

std::string Tensor::str() const {
  std::ostringstream os;
  os << *this;
  return os.str();
}

namespace {
// Prints up to `edge` leading and trailing entries per dimension, like NumPy.
void print_rec(std::ostream& os, const float* p, const Shape& s, size_t d, int64_t stride, int indent) {
  constexpr int64_t edge = 3;
  const int64_t n = s[d];
  const int64_t inner = d + 1 < s.size() ? stride / n : 1;
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (n > 2 * edge && i == edge) {
      os << (d + 1 == s.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - edge;
    }
    if (d + 1 == s.size()) {
      os << p[i];
    } else {
      print_rec(os, p + i * inner, s, d + 1, inner, indent + 1);
    }
    if (i + 1 < n) os << (d + 1 == s.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << "]";
}
}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::ostringstream body;
  body << std::setprecision(4);
  if (t.dim() == 0) {
    body << t.data()[0];
  } else if (t.numel() == 0) {
    body << "[]";
  } else {
    print_rec(body, t.data(), t.shape(), 0, t.numel(), 7);
  }
  os << "tensor(" << body.str() << ", shape=" << to_string(t.shape());
  if (t.requires_grad()) os << (t.is_leaf() ? ", requires_grad" : ", grad_fn=" + t.grad_fn_name());
  return os << ")";
}

}  // namespace maas
