// maas/tensor.hpp: the Tensor handle.
//
// A Tensor is a cheap handle (a shared pointer) to fp32 data with a shape.
// Copying a Tensor copies the handle; both see the same numbers. clone()
// copies the data. Data is always contiguous and row-major; strides() are
// derived from the shape. Image batches are NCHW: [batch, channels, height,
// width], the layout every maas op and layer expects.
//
// Example:
//   maas::Generator gen(42);
//   maas::Tensor x = maas::Tensor::randn({2, 3}, gen);
//   maas::Tensor w = maas::Tensor::zeros({3, 4}).requires_grad_();
//   maas::Tensor y = maas::matmul(x, w);        // records the graph
//   maas::sum(y).backward();                    // fills w.grad()
//
// What a Tensor is not: it holds no device, no dtype other than fp32, and no
// non-contiguous views (transpose copies).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "maas/error.hpp"

namespace maas {

using Shape = std::vector<int64_t>;

// "[32,784]"
std::string to_string(const Shape& shape);
// Product of the dimensions (1 for a 0-d shape).
int64_t numel(const Shape& shape);

// A seeded random number generator. Everything random in maas (initialisers,
// dropout, shuffling) takes one explicitly, so runs repeat given a seed.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : engine_(seed) {}
  void seed(uint64_t s) { engine_.seed(s); }
  std::mt19937_64& engine() { return engine_; }
  // Uniform in [0, 1).
  float uniform();
  // Standard normal.
  float normal();

 private:
  std::mt19937_64 engine_;
};

// The generator layers draw their initial weights from (and Dropout its
// seed), unless given their own. manual_seed() makes model creation repeat.
Generator& default_generator();
void manual_seed(uint64_t seed);

namespace autograd {
struct Node;
}

namespace detail {
// Owns an aligned block of floats.
struct Storage {
  explicit Storage(int64_t n);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  float* data = nullptr;
  int64_t size = 0;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;
};
}  // namespace detail

class Tensor {
 public:
  // An undefined tensor (no data); defined() is false.
  Tensor() = default;

  // Factories. Shapes may be 0-d ({}), which holds one element.
  static Tensor empty(const Shape& shape);  // uninitialised
  static Tensor zeros(const Shape& shape);
  static Tensor ones(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  static Tensor scalar(float value);  // 0-d
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor randn(const Shape& shape, Generator& gen, float mean = 0.f, float stddev = 1.f);
  static Tensor rand(const Shape& shape, Generator& gen, float low = 0.f, float high = 1.f);
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape()); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  Shape strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  // size(-1) is the last dimension.
  int64_t size(int64_t d) const;
  int64_t numel() const { return maas::numel(shape()); }

  float* data();
  const float* data() const;
  // Checked element access by full index: t.at({n, c, h, w}).
  float& at(std::initializer_list<int64_t> index);
  float at(std::initializer_list<int64_t> index) const;
  // The value of a one-element tensor.
  float item() const;
  std::vector<float> to_vector() const;

  // A view with a new shape over the same data (one dimension may be -1).
  // Differentiable.
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const { return reshape(shape); }
  // A copy of the data; differentiable (gradients flow back to this tensor).
  Tensor clone() const;
  // The same data, cut from the graph: requires_grad() is false.
  Tensor detach() const;
  // Rows [begin, end) of dimension 0, sharing data (a batch of a data set).
  // Not differentiable.
  Tensor slice_rows(int64_t begin, int64_t end) const;

  // Autograd.
  bool requires_grad() const;
  // Marks a leaf tensor as a parameter whose gradient is wanted.
  Tensor& requires_grad_(bool on = true);
  // The accumulated gradient (undefined until a backward pass reaches it).
  Tensor grad() const;
  // Sets the gradient to zero (keeps the buffer) or drops it.
  void zero_grad(bool set_to_none = false);
  // True for tensors not produced by a recorded op.
  bool is_leaf() const;
  // Name of the op that produced this tensor, or "" for a leaf.
  std::string grad_fn_name() const;
  // Back-propagates from a scalar (gradient 1).
  void backward(bool retain_graph = false) const;
  // Back-propagates with an explicit upstream gradient of this tensor's shape.
  void backward(const Tensor& grad, bool retain_graph = false) const;

  // True when both handles refer to the same tensor.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  // True when both share the same storage block.
  bool shares_storage(const Tensor& other) const;

  std::string str() const;

  // For the autograd engine and op implementations.
  const std::shared_ptr<detail::TensorImpl>& impl() const { return impl_; }
  explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<detail::TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace maas
