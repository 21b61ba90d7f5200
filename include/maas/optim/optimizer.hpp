// maas/optim/optimizer.hpp: the Optimizer base class (SGD, Adam, AdamW, RMSprop derive from it).
//
// An optimizer holds handles to a model's parameters: leaf tensors with
// requires_grad that share storage with the model. step() updates each
// parameter's data in place from its grad(); a parameter whose grad() is
// undefined (no backward pass reached it since zero_grad(true)) is skipped,
// as in PyTorch, and its state is left untouched.
//
// Example:
//   maas::optim::SGDOptions o;
//   o.lr = 0.1f;
//   o.momentum = 0.9f;
//   maas::optim::SGD opt(model.parameters(), o);
//   for (auto& [x, y] : batches) {
//     opt.zero_grad();
//     maas::Tensor loss = cross_entropy(model.forward(x), y);
//     loss.backward();
//     opt.step();
//   }
//
// Per-parameter state (momentum buffers, moment estimates) is created on a
// parameter's first update, so step() allocates nothing after that. state()
// lists it for checkpoints as named tensors "<index>/<buffer>", e.g.
// "0/exp_avg", "0/exp_avg_sq", "3/momentum_buffer", where index is the
// parameter's position in params(); load_state() restores the same list.
// The learning rate is not part of state(): restore it with set_lr() or with
// an LRScheduler's load_state().
//
// What an Optimizer is not: it has no parameter groups of their own learning
// rates (one learning rate for all its parameters: use two optimizers for two
// rates; Adam and AdamW take groups that differ in weight decay only), no
// closures, and no "maximize" flag.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "maas/tensor.hpp"

namespace maas::optim {

// Named tensors, in order: the form of Optimizer::state().
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  // requires: params is not empty; each is a defined leaf tensor with
  // requires_grad(), and appears once; lr >= 0 and finite. `who` names the
  // optimizer in error messages (derived classes pass their name()).
  Optimizer(std::vector<Tensor> params, float lr, const std::string& who = "Optimizer");
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; increments step_count().
  virtual void step() = 0;
  // Zeroes every parameter's gradient (keeping the buffers), or drops them.
  void zero_grad(bool set_to_none = false);

  float lr() const { return lr_; }
  // requires: lr >= 0 and finite.
  void set_lr(float lr);
  // Number of step() calls (or the count given to load_state()).
  int64_t step_count() const { return step_count_; }
  const std::vector<Tensor>& params() const { return params_; }
  virtual std::string name() const = 0;

  // Copies of the per-parameter state buffers, "<index>/<buffer>", for the
  // parameters updated so far (parameter by parameter, buffers in a fixed
  // order). The copies do not change as the optimizer steps on.
  virtual NamedTensors state() const;
  // Restores state produced by state() of an optimizer of the same kind and
  // options over parameters of the same shapes (the values are copied).
  // Parameters not named in `state` start afresh. Throws maas::Error, leaving
  // this optimizer unchanged, for an unknown name, a bad index, a shape that
  // does not match, a duplicate, or a parameter given only some of its buffers.
  virtual void load_state(const NamedTensors& state, int64_t step_count);

 protected:
  // For derived constructors: declares a per-parameter buffer, shaped like its
  // parameter, or 0-d when `scalar`. The order of declaration is the order of
  // buffers(i) and of state().
  void declare_buffer(std::string name, bool scalar = false);
  // Parameter i's buffers, in declaration order; empty before its first update.
  std::vector<Tensor>& buffers(size_t i) { return buffers_[i]; }
  // Creates parameter i's buffers (zero-filled) unless it has them already;
  // returns true when it created them (the parameter's first update).
  bool init_buffers(size_t i);
  // Called once at the end of each step().
  void count_step() { ++step_count_; }

 private:
  struct BufferSpec {
    std::string name;
    bool scalar;
  };
  std::vector<Tensor> params_;
  float lr_;
  int64_t step_count_ = 0;
  std::vector<BufferSpec> buffer_specs_;
  std::vector<std::vector<Tensor>> buffers_;
};

}  // namespace maas::optim
