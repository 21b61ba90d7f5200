// maas/dist.hpp: data-parallel training over MPI (target maas::dist, built
// when CMake finds MPI: MAAS_MPI).
//
// As Horovod: every rank runs the same program on its own shard of the data;
// parameters start from rank 0's, and gradients are averaged with an
// allreduce after each backward pass. Trainer::fit does all of this with
// FitOptions::distributed = true while a Session lives:
//
//   int main(int argc, char** argv) {
//     maas::dist::Session mpi(&argc, &argv);      // MPI_Init ... MPI_Finalize
//     ... build model, loss, optimizer, trainer, data as for one process ...
//     maas::FitOptions options;
//     options.distributed = true;                // shards, averages, reduces
//     trainer.fit(train, options);                // rank 0 prints and saves
//   }
//
//   mpirun -np 4 ./train                          # one machine, 4 ranks
//   mpirun -np 8 --hostfile hosts ./train         # several machines
//
// Without the trainer: broadcast_parameters(model) once at the start, then per
// step backward(); allreduce_gradients(model); optimizer.step().
//
// Failures: MPI's error handler returns errors instead of aborting, and every
// collective waits at most timeout() seconds (default 300, or the environment
// variable MAAS_DIST_TIMEOUT). A failed or timed-out collective throws
// maas::Error naming the operation, the rank and the cause; an exception
// leaving Trainer::fit on one rank, or a Session destroyed by an exception,
// ends every rank of the job (MPI_Abort) with that message, so no rank waits
// forever for a dead one.
//
// What this is not: no model parallelism, no sub-communicators, no GPU
// transport, no elastic membership (a lost rank ends the job).
#pragma once

#include <memory>

#include "maas/communicator.hpp"

namespace maas {
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}
}  // namespace maas

namespace maas::dist {

struct SessionOptions {
  // Seconds a collective may wait for the other ranks; <= 0: the environment
  // variable MAAS_DIST_TIMEOUT, else 300.
  double timeout_s = 0.0;
};

// MPI for the lifetime of the object (one per process): MPI_Init_thread on
// construction, MPI_Finalize on destruction, or MPI_Abort of every rank when
// destroyed during stack unwinding or after a failed collective. Installs its
// communicator as maas::default_communicator(). Throws maas::Error when MPI
// was already initialised by someone else or a Session exists.
class Session {
 public:
  explicit Session(int* argc = nullptr, char*** argv = nullptr, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// Whether a Session is alive.
bool initialized();
// This process's rank and the number of ranks (0 and 1 without a Session).
int rank();
int world_size();
// The Session's communicator; throws maas::Error without a Session.
Communicator& communicator();
// The timeout of each collective, in seconds.
double timeout();
void set_timeout(double seconds);

// Every rank receives root's parameters and buffers.
void broadcast_parameters(const nn::Module& module, int root = 0);
// Each parameter's gradient becomes its average over ranks (maas::average_gradients).
void allreduce_gradients(const nn::Module& module);
// Each buffer (BatchNorm's running mean and variance) becomes its average over ranks.
void allreduce_buffers(const nn::Module& module);
// Every rank receives root's optimizer state, step count and learning rate.
void broadcast_optimizer_state(optim::Optimizer& optimizer, int root = 0);
// Ends every rank of the job with `message` on stderr (MPI_Abort, exit code 1).
[[noreturn]] void abort(const std::string& message);

}  // namespace maas::dist
