// maas::dist over MPI: the one file that includes mpi.h.
//
// Each collective is started nonblocking (MPI_Iallreduce, MPI_Ibcast) and
// completed by polling MPI_Test against a deadline, with MPI_ERRORS_RETURN on
// the communicator: a broken link returns an error code, a dead or stuck rank
// runs into the deadline, and both become a maas::Error instead of a hang.
// The polling spins for 5 ms (a yield this early can lose the core for a
// whole time slice on a busy machine), then yields the core, so that
// oversubscribed ranks (more than cores) let the others run, and naps 1 ms
// at a time only after 100 ms of waiting.
#include "maas/dist.hpp"

#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>

#include "maas/error.hpp"
#include "maas/nn/module.hpp"
#include "maas/optim/optimizer.hpp"

namespace maas::dist {

namespace {

using Clock = std::chrono::steady_clock;

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(len));
}

double timeout_from_env() {
  if (const char* env = std::getenv("MAAS_DIST_TIMEOUT")) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    MAAS_CHECK(end != env && *end == '\0' && v > 0,
               "dist: MAAS_DIST_TIMEOUT='" << env << "' must be a number of seconds > 0");
    return v;
  }
  return 300.0;
}

class MpiCommunicator final : public Communicator {
 public:
  MPI_Comm comm = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  double timeout_s = 300.0;
  bool failed = false;  // a collective failed: the ranks are out of step, finalising could hang

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(float* data, int64_t n) override { allreduce(data, n, MPI_FLOAT, sizeof(float)); }
  void allreduce_sum(double* data, int64_t n) override { allreduce(data, n, MPI_DOUBLE, sizeof(double)); }

  void broadcast(void* data, int64_t bytes, int root) override {
    MAAS_CHECK(bytes >= 0 && root >= 0 && root < size_,
               "dist::broadcast: " << bytes << " bytes from root " << root << " of " << size_ << " ranks");
    auto* p = static_cast<char*>(data);
    for (int64_t done = 0; done < bytes;) {
      const int count = static_cast<int>(std::min<int64_t>(bytes - done, INT_MAX));
      MPI_Request req = MPI_REQUEST_NULL;
      check(MPI_Ibcast(p + done, count, MPI_BYTE, root, comm, &req), "broadcast");
      wait(req, "broadcast");
      done += count;
    }
  }

  void abort_job(const std::string& message) override {
    if (size_ <= 1) return;  // alone: the exception itself ends the program
    abort_all(message);
  }

  [[noreturn]] void abort_all(const std::string& message) const {
    std::fprintf(stderr, "maas: rank %d of %d: %s\nmaas: ending all %d ranks\n", rank_, size_, message.c_str(),
                 size_);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);
  }

 private:
  void allreduce(void* data, int64_t n, MPI_Datatype type, size_t elem) {
    MAAS_CHECK(n >= 0, "dist::allreduce: count " << n << " must be >= 0");
    auto* p = static_cast<char*>(data);
    for (int64_t done = 0; done < n;) {
      const int count = static_cast<int>(std::min<int64_t>(n - done, INT_MAX / 8));
      MPI_Request req = MPI_REQUEST_NULL;
      check(MPI_Iallreduce(MPI_IN_PLACE, p + static_cast<size_t>(done) * elem, count, type, MPI_SUM, comm, &req),
            "allreduce");
      wait(req, "allreduce");
      done += count;
    }
  }

  void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    failed = true;
    MAAS_FAIL("dist: " << what << " failed on rank " << rank_ << " of " << size_ << ": " << mpi_error(rc)
                       << " (a rank died or the network failed)");
  }

  void wait(MPI_Request& req, const char* what) {
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
    for (int64_t polls = 0;; ++polls) {
      int done = 0;
      check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      if (polls < 256) continue;  // spin: most collectives finish within microseconds
      const auto now = Clock::now();
      if (now > deadline) {
        failed = true;
        MAAS_FAIL("dist: " << what << " on rank " << rank_ << " of " << size_ << " timed out after " << timeout_s
                           << " s waiting for the other ranks (one died, hangs, or runs a different number of "
                              "steps); set MAAS_DIST_TIMEOUT to wait longer");
      }
      // Every rank's MPI_Test moves the collective on (OpenMPI progresses
      // nonblocking collectives inside MPI calls only), so a rank must not
      // nap while its partners wait: yield the core, and nap only once the
      // wait is long (a partner is computing or writing a checkpoint).
      if (now - start < std::chrono::milliseconds(5))
        continue;  // yielding this early loses the core for a time slice on a busy machine
      if (now - start < std::chrono::milliseconds(100))
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
};

std::unique_ptr<MpiCommunicator> g_mpi;

MpiCommunicator& mpi(const char* who) {
  MAAS_CHECK(g_mpi != nullptr, "dist::" << who << ": no maas::dist::Session is alive (create one at the start of "
                                                  "main, and run under mpirun)");
  return *g_mpi;
}

}  // namespace

Session::Session(int* argc, char*** argv, SessionOptions options) {
  MAAS_CHECK(g_mpi == nullptr, "dist::Session: a Session exists already (one per process)");
  int already = 0;
  MPI_Initialized(&already);
  MAAS_CHECK(!already, "dist::Session: MPI is initialised already; a Session initialises and finalises it itself");
  int provided = 0;
  const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  MAAS_CHECK(rc == MPI_SUCCESS, "dist::Session: MPI_Init_thread failed: " << mpi_error(rc));
  auto c = std::make_unique<MpiCommunicator>();
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (MPI_Comm_dup(MPI_COMM_WORLD, &c->comm) != MPI_SUCCESS) {
    MPI_Finalize();
    MAAS_FAIL("dist::Session: MPI_Comm_dup failed");
  }
  MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(c->comm, &c->rank_);
  MPI_Comm_size(c->comm, &c->size_);
  try {
    c->timeout_s = options.timeout_s > 0 ? options.timeout_s : timeout_from_env();
  } catch (...) {
    MPI_Comm_free(&c->comm);
    MPI_Finalize();
    throw;
  }
  g_mpi = std::move(c);
  set_default_communicator(g_mpi.get());
}

Session::~Session() {
  if (default_communicator() == g_mpi.get()) set_default_communicator(nullptr);
  std::unique_ptr<MpiCommunicator> c = std::move(g_mpi);
  if (!c) return;
  if (c->size_ > 1 && std::uncaught_exceptions() > 0)
    c->abort_all("an exception is leaving the program on this rank");
  if (c->size_ > 1 && c->failed)
    c->abort_all("a collective operation failed on this rank; the ranks are out of step");
  MPI_Comm_free(&c->comm);
  MPI_Finalize();
}

bool initialized() { return g_mpi != nullptr; }
int rank() { return g_mpi ? g_mpi->rank_ : 0; }
int world_size() { return g_mpi ? g_mpi->size_ : 1; }
Communicator& communicator() { return mpi("communicator"); }
double timeout() { return mpi("timeout").timeout_s; }

void set_timeout(double seconds) {
  MAAS_CHECK(seconds > 0, "dist::set_timeout: " << seconds << " s must be > 0");
  mpi("set_timeout").timeout_s = seconds;
}

void broadcast_parameters(const nn::Module& module, int root) {
  broadcast_module(mpi("broadcast_parameters"), module, root);
}

void allreduce_gradients(const nn::Module& module) {
  MpiCommunicator& c = mpi("allreduce_gradients");
  average_gradients(c, module.parameters(), 1.f / static_cast<float>(c.size_));
}

void allreduce_buffers(const nn::Module& module) {
  std::vector<Tensor> buffers;
  for (const auto& [name, t] : module.named_buffers()) buffers.push_back(t);
  average_tensors(mpi("allreduce_buffers"), buffers);
}

void broadcast_optimizer_state(optim::Optimizer& optimizer, int root) {
  maas::broadcast_optimizer_state(mpi("broadcast_optimizer_state"), optimizer, root);
}

void abort(const std::string& message) {
  if (g_mpi) g_mpi->abort_all(message);
  std::fprintf(stderr, "maas: %s\n", message.c_str());
  std::exit(1);
}

}  // namespace maas::dist
