// Optimizer: parameter checks, zero_grad, and the per-parameter state buffers
// shared by every optimizer (lazy creation, state() and load_state()).
#include "maas/optim/optimizer.hpp"

#include <cmath>

#include "maas/error.hpp"

namespace maas::optim {

Optimizer::Optimizer(std::vector<Tensor> params, float lr, const std::string& who)
    : params_(std::move(params)), lr_(lr) {
  MAAS_CHECK(!params_.empty(), who << ": the parameter list is empty (did the model register its parameters?)");
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    MAAS_CHECK(p.defined(), who << ": parameter " << i << " is an undefined tensor");
    MAAS_CHECK(p.is_leaf(), who << ": parameter " << i << " " << to_string(p.shape())
                                << " is not a leaf tensor (it was produced by '" << p.grad_fn_name()
                                << "'); optimize the leaf it was computed from");
    MAAS_CHECK(p.requires_grad(), who << ": parameter " << i << " " << to_string(p.shape())
                                      << " does not require grad; call requires_grad_() on it or leave it out");
    for (size_t j = 0; j < i; ++j)
      MAAS_CHECK(!params_[j].is_same(p), who << ": parameter " << i << " is the same tensor as parameter " << j
                                             << "; list each parameter once");
  }
  MAAS_CHECK(std::isfinite(lr) && lr >= 0.f, who << ": lr must be >= 0 and finite, got " << lr);
  buffers_.resize(params_.size());
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad(bool set_to_none) {
  for (Tensor& p : params_) p.zero_grad(set_to_none);
}

void Optimizer::set_lr(float lr) {
  MAAS_CHECK(std::isfinite(lr) && lr >= 0.f, name() << ": lr must be >= 0 and finite, got " << lr);
  lr_ = lr;
}

void Optimizer::declare_buffer(std::string name, bool scalar) { buffer_specs_.push_back({std::move(name), scalar}); }

bool Optimizer::init_buffers(size_t i) {
  std::vector<Tensor>& bufs = buffers_[i];
  if (!bufs.empty()) return false;
  bufs.reserve(buffer_specs_.size());
  for (const BufferSpec& spec : buffer_specs_)
    bufs.push_back(Tensor::zeros(spec.scalar ? Shape{} : params_[i].shape()));
  return true;
}

NamedTensors Optimizer::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (size_t k = 0; k < buffers_[i].size(); ++k)
      out.emplace_back(std::to_string(i) + "/" + buffer_specs_[k].name, buffers_[i][k].detach().clone());
  }
  return out;
}

namespace {

// "12/exp_avg" -> (12, "exp_avg"); false when the name has another form.
bool split_state_name(const std::string& full, size_t& index, std::string& buffer) {
  const size_t slash = full.find('/');
  if (slash == 0 || slash == std::string::npos || slash > 9) return false;
  size_t value = 0;
  for (size_t c = 0; c < slash; ++c) {
    if (full[c] < '0' || full[c] > '9') return false;
    value = value * 10 + static_cast<size_t>(full[c] - '0');
  }
  index = value;
  buffer = full.substr(slash + 1);
  return true;
}

}  // namespace

void Optimizer::load_state(const NamedTensors& state, int64_t step_count) {
  MAAS_CHECK(step_count >= 0, name() << ": load_state: step_count must be >= 0, got " << step_count);
  std::string known;
  for (const BufferSpec& spec : buffer_specs_) known += (known.empty() ? "" : ", ") + spec.name;
  if (known.empty()) known = "none";

  // Validate everything into a fresh set before touching this optimizer.
  std::vector<std::vector<Tensor>> loaded(params_.size());
  for (const auto& [full, value] : state) {
    size_t i = 0;
    std::string buffer;
    MAAS_CHECK(split_state_name(full, i, buffer),
               name() << ": load_state: state name '" << full << "' is not of the form '<parameter index>/<buffer>'");
    MAAS_CHECK(i < params_.size(), name() << ": load_state: state '" << full << "' names parameter " << i
                                          << " but this " << name() << " has " << params_.size() << " parameters");
    size_t k = 0;
    while (k < buffer_specs_.size() && buffer_specs_[k].name != buffer) ++k;
    MAAS_CHECK(k < buffer_specs_.size(), name() << ": load_state: unknown state '" << full << "'; with these options "
                                                << name() << " keeps: " << known);
    MAAS_CHECK(value.defined(), name() << ": load_state: state '" << full << "' is an undefined tensor");
    const Shape want = buffer_specs_[k].scalar ? Shape{} : params_[i].shape();
    MAAS_CHECK(value.shape() == want,
               name() << ": load_state: state '" << full << "' has shape " << to_string(value.shape()) << " but "
                      << (buffer_specs_[k].scalar ? "a 0-d tensor" : "parameter " + std::to_string(i) + "'s shape")
                      << " " << to_string(want) << " is expected");
    if (loaded[i].empty()) loaded[i].resize(buffer_specs_.size());
    MAAS_CHECK(!loaded[i][k].defined(), name() << ": load_state: state '" << full << "' appears twice");
    loaded[i][k] = value.detach().clone();
  }
  for (size_t i = 0; i < loaded.size(); ++i) {
    for (size_t k = 0; k < loaded[i].size(); ++k)
      MAAS_CHECK(loaded[i][k].defined(), name()
                                             << ": load_state: parameter " << i << " has state but lacks '" << i << "/"
                                             << buffer_specs_[k].name << "' (expected all of: " << known << ")");
  }
  buffers_ = std::move(loaded);
  step_count_ = step_count;
}

}  // namespace maas::optim
