// Module: parameter/buffer/child registration and the recursive walks.
#include "maas/nn/module.hpp"

#include "maas/error.hpp"

namespace maas::nn {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  MAAS_CHECK(t.defined(), "register_parameter: '" << name << "' is an undefined tensor");
  for (const auto& p : params_)
    MAAS_CHECK(p.first != name, "register_parameter: '" << name << "' is already registered");
  t = t.detach();
  t.requires_grad_();
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  MAAS_CHECK(t.defined(), "register_buffer: '" << name << "' is an undefined tensor");
  for (const auto& b : buffers_)
    MAAS_CHECK(b.first != name, "register_buffer: '" << name << "' is already registered");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::register_module(const std::string& name, std::shared_ptr<Module> m) {
  MAAS_CHECK(m != nullptr, "register_module: '" << name << "' is null");
  MAAS_CHECK(child_names_.insert(name).second, "register_module: a child named '" << name << "' already exists");
  m->train(training_);
  children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix, NamedTensors& out, bool buffers) const {
  for (const auto& [n, t] : buffers ? buffers_ : params_) out.emplace_back(prefix + n, t);
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", out, buffers);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out, false);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", out, true);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

void Module::zero_grad(bool set_to_none) {
  for (Tensor& t : parameters()) t.zero_grad(set_to_none);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

Shape Module::compute_output_shape(const Shape&) const {
  MAAS_FAIL(type_name() << " '" << name_ << "' cannot compute its output shape without being built");
}

namespace {
void check_one(const Module& m, size_t n) {
  MAAS_CHECK(n == 1, m.type_name() << " '" << m.name() << "' takes one input, got " << n);
}
}  // namespace

Tensor Module::forward_many(const std::vector<Tensor>& xs) {
  check_one(*this, xs.size());
  return forward(xs[0]);
}

Shape Module::build_many(const std::vector<Shape>& input_shapes) {
  check_one(*this, input_shapes.size());
  return build(input_shapes[0]);
}

Shape Module::compute_output_shape_many(const std::vector<Shape>& input_shapes) const {
  check_one(*this, input_shapes.size());
  return compute_output_shape(input_shapes[0]);
}

void Module::ensure_built(const Tensor& x) {
  MAAS_CHECK(x.defined(), type_name() << " '" << name_ << "': input is an undefined tensor");
  MAAS_CHECK(x.dim() >= 1, type_name() << " '" << name_ << "': input of shape " << maas::to_string(x.shape())
                                       << " has no batch dimension");
  const Shape sample(x.shape().begin() + 1, x.shape().end());
  if (!built_) {
    build(sample);
    return;
  }
  if (!params_.empty())
    MAAS_CHECK(sample == input_shape_, type_name() << " '" << name_ << "' was built for input "
                                                   << batch_shape_string(input_shape_) << " but got a batch of shape "
                                                   << maas::to_string(x.shape()));
}

std::string batch_shape_string(const Shape& per_sample) {
  std::string s = "(None";
  for (int64_t d : per_sample) s += ", " + std::to_string(d);
  return s + ")";
}

}  // namespace maas::nn
