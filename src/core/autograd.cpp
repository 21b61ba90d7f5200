// The autograd engine: graph recording, topological sort, reverse sweep.
#include "maas/autograd.hpp"

#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/internal.hpp"

namespace maas {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

namespace autograd {

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool record(const char* name, Tensor& out, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!needs_grad(inputs)) return false;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::move(node);
  return true;
}

Node::~Node() {
  // Unlink long chains iteratively: letting each node's inputs free the next
  // node recursively would overflow the stack on deep graphs.
  std::vector<Tensor> pending = std::move(inputs);
  while (!pending.empty()) {
    Tensor t = std::move(pending.back());
    pending.pop_back();
    const auto& impl = t.impl();
    if (impl && impl.use_count() == 1 && impl->grad_fn && impl->grad_fn.use_count() == 1) {
      for (Tensor& in : impl->grad_fn->inputs) pending.push_back(std::move(in));
      impl->grad_fn->inputs.clear();
    }
  }
}

namespace {

using detail::TensorImpl;

// Post-order over the tensors reachable from root through recorded nodes:
// every tensor appears after all the tensors it was computed from.
// Holds owning pointers: releasing a node's inputs must not free tensors
// still to be visited.
std::vector<std::shared_ptr<TensorImpl>> topological_order(const std::shared_ptr<TensorImpl>& root) {
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<TensorImpl*> visited{root.get()};
  std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    TensorImpl* t = stack.back().first.get();
    Node* node = t->grad_fn.get();
    if (node && node->released)
      MAAS_FAIL("backward: the graph through '" << node->name << "' was freed by an earlier backward(); "
                "pass retain_graph=true to the first backward() to back-propagate through it twice");
    const size_t i = stack.back().second;
    if (node && i < node->inputs.size()) {
      ++stack.back().second;
      const std::shared_ptr<TensorImpl>& in = node->inputs[i].impl();
      if (in && in->requires_grad && visited.insert(in.get()).second) stack.emplace_back(in, 0);
    } else {
      order.push_back(std::move(stack.back().first));
      stack.pop_back();
    }
  }
  return order;
}

// The buffer a leaf accumulates into, created as zeros on first use.
Tensor leaf_grad(TensorImpl* t) {
  if (!t->grad) t->grad = Tensor::zeros(t->shape).impl();
  return Tensor(t->grad);
}

void accumulate(Tensor dst, const Tensor& src) { detail::add_to(dst.data(), src.data(), dst.numel()); }

}  // namespace

void backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  MAAS_CHECK(root.defined(), "backward: called on an undefined tensor");
  MAAS_CHECK(root.requires_grad(), "backward: tensor of shape " << to_string(root.shape())
                                   << " does not require grad (no input of the ops that made it "
                                      "had requires_grad set, or they ran under NoGradGuard)");
  MAAS_CHECK(grad.defined() && grad.shape() == root.shape(),
             "backward: gradient of shape " << (grad.defined() ? to_string(grad.shape()) : "undefined")
             << " does not match the output's shape " << to_string(root.shape()));
  NoGradGuard no_grad;  // backward functions build no graph of their own
  TensorImpl* root_impl = root.impl().get();
  const std::vector<std::shared_ptr<TensorImpl>> order = topological_order(root.impl());

  // Gradients of non-leaf tensors live here only while they are needed.
  std::unordered_map<TensorImpl*, Tensor> grads;
  if (root_impl->grad_fn) {
    grads[root_impl] = grad.clone();
  } else {
    accumulate(leaf_grad(root_impl), grad);
    return;
  }

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TensorImpl* t = it->get();
    Node* node = t->grad_fn.get();
    if (!node) continue;  // a leaf: its gradient was accumulated in place
    Tensor dout;
    if (auto found = grads.find(t); found != grads.end()) {
      dout = std::move(found->second);
      grads.erase(found);  // before inserting below, which may rehash
    } else {
      dout = Tensor::zeros(t->shape);
    }
    std::vector<Tensor> dinputs(node->inputs.size());
    for (size_t i = 0; i < node->inputs.size(); ++i) {
      TensorImpl* in = node->inputs[i].impl().get();
      if (!in || !in->requires_grad) continue;
      if (!in->grad_fn) {
        dinputs[i] = leaf_grad(in);
      } else {
        Tensor& g = grads[in];
        if (!g.defined()) g = Tensor::zeros(in->shape);
        dinputs[i] = g;
      }
    }
    node->backward(dout, dinputs);
    if (!retain_graph) {
      node->backward = nullptr;
      node->inputs.clear();
      node->released = true;
    }
  }
}

}  // namespace autograd

// Tensor's own entry points into the graph (declared in tensor.hpp).
std::string Tensor::grad_fn_name() const {
  MAAS_CHECK(defined(), "tensor is undefined (default-constructed)");
  return impl_->grad_fn ? impl_->grad_fn->name : std::string();
}

void Tensor::backward(bool retain_graph) const {
  MAAS_CHECK(numel() == 1, "backward: a gradient can be implied only for a one-element output; this tensor "
                           "has shape " << to_string(shape()) << " (pass the upstream gradient explicitly)");
  autograd::backward(*this, Tensor::ones(shape()), retain_graph);
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::backward(*this, grad, retain_graph);
}

}  // namespace maas
