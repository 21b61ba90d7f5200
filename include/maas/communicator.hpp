// maas/communicator.hpp: what the trainer needs from data-parallel training,
// without MPI.
//
// A Communicator is a group of processes ("ranks") running the same program.
// The core library only sees this interface; maas::dist (include/maas/dist.hpp,
// built when MPI is found) implements it over MPI and installs itself as the
// default_communicator() while a maas::dist::Session lives. Trainer::fit with
// FitOptions::distributed asks default_communicator() whether it runs
// distributed, and nothing else.
//
// Every function here is collective: all ranks call it, in the same order,
// with the same sizes; a rank that does not ends the job (see dist.hpp).
//
// The one place where gradients are averaged is average_gradients() below:
// gradients are packed into flat buckets of up to bucket_floats values (small
// tensors fused, fewer and larger messages), each bucket summed over ranks
// with one allreduce, and unpacked.
//
// What this file is not: no point-to-point messages, no sub-groups, no
// asynchronous API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "maas/tensor.hpp"

namespace maas {

namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}

class Communicator {
 public:
  virtual ~Communicator();
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }

  // In place: data[i] = the sum over ranks of data[i].
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // In place: every rank receives root's `bytes` bytes.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Called by Trainer::fit when it fails on this rank (an exception leaving
  // fit): ends every rank of the job with `message` (MPI_Abort), since the
  // others would otherwise wait for this one. The default does nothing.
  virtual void abort_job(const std::string& message) { (void)message; }
};

// The communicator Trainer::fit uses with FitOptions::distributed; null when
// none is installed (maas::dist::Session installs one).
Communicator* default_communicator();
void set_default_communicator(Communicator* comm);

// Largest bucket of fused gradients, in floats (4 MiB).
constexpr int64_t kBucketFloats = int64_t{1} << 20;

// Sets each parameter's gradient to sum over ranks of (weight * gradient):
// with weight = 1 / size() the average. A parameter whose gradient is
// undefined on a rank (no backward pass reached it) counts as zero there and
// gets a defined gradient, so that every rank steps every parameter alike.
void average_gradients(Communicator& comm, const std::vector<Tensor>& params, float weight,
                       int64_t bucket_floats = kBucketFloats);
// Every rank receives root's values of `tensors` (same shapes on every rank).
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root = 0);
// Each tensor becomes its mean over ranks (BatchNorm's running statistics).
void average_tensors(Communicator& comm, const std::vector<Tensor>& tensors);
// The model's parameters and buffers from root.
void broadcast_module(Communicator& comm, const nn::Module& module, int root = 0);
// The optimizer's state (buffers, step count, learning rate) from root.
void broadcast_optimizer_state(Communicator& comm, optim::Optimizer& optimizer, int root = 0);

// Data sharding. Sample position p (0-based) of an epoch's order belongs to
// rank p % size, as its local position p / size: rank r reads positions
// r, r + size, r + 2 size, ... Each position is read by exactly one rank;
// shard sizes differ by at most one (the first n % size ranks hold one more).
// Global batch s of a fit on `size` ranks with per-rank batch B holds the
// positions [s size B, (s + 1) size B): the batch s of one process with batch
// size * B.
int64_t shard_size(int64_t n, int rank, int size);

}  // namespace maas
