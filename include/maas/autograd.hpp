// maas/autograd.hpp: reverse-mode automatic differentiation (define-by-run).
//
// Each op that sees an input with requires_grad() records one Node on its
// output: the inputs, and a backward function written right beside the op's
// forward (src/ops/<op>.cpp). Tensor::backward() sorts the recorded nodes
// topologically and runs them in reverse. Backward functions ACCUMULATE
// (+=) into the gradient buffers they are given, so a tensor used twice
// needs no special case. Leaf gradients accumulate across backward calls
// until zero_grad(). After backward the graph is freed unless retain_graph.
//
// Nodes hold their inputs, never their output, so graphs have no cycles:
// backward functions that need the output capture out.detach().
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "maas/tensor.hpp"

namespace maas {

// Whether ops record the graph on this thread (true by default).
bool grad_enabled();

// Within its scope no op records a graph (inference, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

namespace autograd {

// dinputs[i] is a zero-initialised (or already accumulating) buffer shaped
// like inputs[i] when that input needs a gradient, and undefined otherwise.
using BackwardFn = std::function<void(const Tensor& dout, std::vector<Tensor>& dinputs)>;

struct Node {
  std::string name;
  std::vector<Tensor> inputs;
  BackwardFn backward;
  bool released = false;
  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();
};

// True when grad mode is on and any input requires a gradient.
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `out` as produced by `name` from `inputs`, if needs_grad(inputs).
// Returns true when recorded.
bool record(const char* name, Tensor& out, std::vector<Tensor> inputs, BackwardFn backward);

// Runs the backward pass from `root` with upstream gradient `grad`.
void backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace autograd
}  // namespace maas
