// Communicator helpers: gradient averaging in fused buckets, broadcasts of
// modules and optimizer state, and the data-sharding arithmetic.
#include "maas/communicator.hpp"

#include <algorithm>
#include <cstring>

#include "maas/error.hpp"
#include "maas/nn/module.hpp"
#include "maas/optim/optimizer.hpp"

namespace maas {

namespace {
Communicator* g_default = nullptr;

// A gradient tensor for `p`: its own, or a new zero one it keeps.
Tensor grad_of(const Tensor& p) {
  Tensor g = p.grad();
  if (!g.defined()) {
    g = Tensor::zeros(p.shape());
    p.impl()->grad = g.impl();
  }
  return g;
}
}  // namespace

Communicator::~Communicator() = default;

Communicator* default_communicator() { return g_default; }
void set_default_communicator(Communicator* comm) { g_default = comm; }

void average_gradients(Communicator& comm, const std::vector<Tensor>& params, float weight, int64_t bucket_floats) {
  MAAS_CHECK(bucket_floats >= 1, "average_gradients: bucket_floats " << bucket_floats << " must be >= 1");
  // Last parameters first: the order in which backward produces gradients.
  std::vector<Tensor> grads;
  grads.reserve(params.size());
  for (auto it = params.rbegin(); it != params.rend(); ++it) grads.push_back(grad_of(*it));

  thread_local std::vector<float> bucket;
  size_t i = 0;
  while (i < grads.size()) {
    const int64_t first = grads[i].numel();
    if (first >= bucket_floats) {  // a large gradient is its own bucket, reduced in place
      float* g = grads[i].data();
      for (int64_t k = 0; k < first; ++k) g[k] *= weight;
      comm.allreduce_sum(g, first);
      ++i;
      continue;
    }
    size_t end = i;
    int64_t total = 0;
    while (end < grads.size() && total + grads[end].numel() <= bucket_floats) total += grads[end++].numel();
    bucket.resize(static_cast<size_t>(total));
    float* dst = bucket.data();
    for (size_t j = i; j < end; ++j) {
      const float* g = grads[j].data();
      const int64_t n = grads[j].numel();
      for (int64_t k = 0; k < n; ++k) dst[k] = g[k] * weight;
      dst += n;
    }
    comm.allreduce_sum(bucket.data(), total);
    const float* src = bucket.data();
    for (size_t j = i; j < end; ++j) {
      const int64_t n = grads[j].numel();
      std::memcpy(grads[j].data(), src, sizeof(float) * static_cast<size_t>(n));
      src += n;
    }
    i = end;
  }
}

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root) {
  MAAS_CHECK(root >= 0 && root < comm.size(),
             "broadcast: root " << root << " is not a rank (there are " << comm.size() << ")");
  for (const Tensor& t : tensors) {
    Tensor h = t;
    comm.broadcast(h.data(), h.numel() * static_cast<int64_t>(sizeof(float)), root);
  }
}

void average_tensors(Communicator& comm, const std::vector<Tensor>& tensors) {
  const float inv = 1.f / static_cast<float>(comm.size());
  for (const Tensor& t : tensors) {
    Tensor h = t;
    comm.allreduce_sum(h.data(), h.numel());
    float* d = h.data();
    for (int64_t k = 0; k < h.numel(); ++k) d[k] *= inv;
  }
}

void broadcast_module(Communicator& comm, const nn::Module& module, int root) {
  std::vector<Tensor> all = module.parameters();
  for (const auto& [name, b] : module.named_buffers()) all.push_back(b);
  // Different models on different ranks would scramble memory: compare the
  // layout first (the number of tensors and elements).
  int64_t layout[2] = {static_cast<int64_t>(all.size()), 0};
  for (const Tensor& t : all) layout[1] += t.numel();
  int64_t root_layout[2] = {layout[0], layout[1]};
  comm.broadcast(root_layout, sizeof root_layout, root);
  MAAS_CHECK(layout[0] == root_layout[0] && layout[1] == root_layout[1],
             "broadcast_module: rank " << comm.rank() << "'s model has " << layout[0] << " tensors of " << layout[1]
                                       << " values, rank " << root << "'s " << root_layout[0] << " of "
                                       << root_layout[1] << ": every rank must build the same model");
  broadcast_tensors(comm, all, root);
}

void broadcast_optimizer_state(Communicator& comm, optim::Optimizer& optimizer, int root) {
  // Root's state as a header (count, step count, lr) and, per entry, the
  // name's length, the name, the rank and the shape, then the values.
  std::vector<char> header;
  std::vector<float> values;
  auto put = [&header](const void* p, size_t n) {
    header.insert(header.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
  };
  if (comm.rank() == root) {
    const optim::NamedTensors state = optimizer.state();
    const int64_t count = static_cast<int64_t>(state.size()), steps = optimizer.step_count();
    const float lr = optimizer.lr();
    put(&count, sizeof count);
    put(&steps, sizeof steps);
    put(&lr, sizeof lr);
    for (const auto& [name, t] : state) {
      const int64_t len = static_cast<int64_t>(name.size()), dims = t.dim();
      put(&len, sizeof len);
      put(name.data(), name.size());
      put(&dims, sizeof dims);
      for (int64_t d = 0; d < dims; ++d) {
        const int64_t s = t.size(d);
        put(&s, sizeof s);
      }
      values.insert(values.end(), t.data(), t.data() + t.numel());
    }
  }
  int64_t sizes[2] = {static_cast<int64_t>(header.size()), static_cast<int64_t>(values.size())};
  comm.broadcast(sizes, sizeof sizes, root);
  header.resize(static_cast<size_t>(sizes[0]));
  values.resize(static_cast<size_t>(sizes[1]));
  comm.broadcast(header.data(), sizes[0], root);
  comm.broadcast(values.data(), sizes[1] * static_cast<int64_t>(sizeof(float)), root);
  if (comm.rank() == root) return;

  size_t at = 0;
  auto get = [&](void* p, size_t n) {
    MAAS_CHECK(at + n <= header.size(), "broadcast_optimizer_state: a truncated state from rank " << root);
    std::memcpy(p, header.data() + at, n);
    at += n;
  };
  int64_t count = 0, steps = 0;
  float lr = 0.f;
  get(&count, sizeof count);
  get(&steps, sizeof steps);
  get(&lr, sizeof lr);
  optim::NamedTensors state;
  size_t offset = 0;
  for (int64_t e = 0; e < count; ++e) {
    int64_t len = 0, dims = 0;
    get(&len, sizeof len);
    std::string name(static_cast<size_t>(len), '\0');
    get(name.data(), name.size());
    get(&dims, sizeof dims);
    Shape shape(static_cast<size_t>(dims));
    for (int64_t d = 0; d < dims; ++d) get(&shape[static_cast<size_t>(d)], sizeof(int64_t));
    Tensor t = Tensor::empty(shape);
    MAAS_CHECK(offset + static_cast<size_t>(t.numel()) <= values.size(),
               "broadcast_optimizer_state: a truncated state from rank " << root);
    std::memcpy(t.data(), values.data() + offset, sizeof(float) * static_cast<size_t>(t.numel()));
    offset += static_cast<size_t>(t.numel());
    state.emplace_back(std::move(name), std::move(t));
  }
  optimizer.load_state(state, steps);
  optimizer.set_lr(lr);
}

int64_t shard_size(int64_t n, int rank, int size) {
  MAAS_CHECK(size >= 1 && rank >= 0 && rank < size, "shard_size: rank " << rank << " of " << size);
  MAAS_CHECK(n >= 0, "shard_size: n " << n << " must be >= 0");
  return n / size + (rank < n % size ? 1 : 0);
}

}  // namespace maas
