// maas-serve: the model server executable (see maas/serve.hpp and --help).
// SIGTERM and SIGINT are taken by one thread (sigwait), which stops the
// server: requests in flight are answered, then the process exits 0.
//
// OpenMP threads that spin while waiting (libgomp's default) take the cores
// the HTTP threads need, and when the machine is busy a descheduled team
// member stalls every parallel region: a batch of 32 MNIST images took
// 400 ms instead of 2.7 ms on a loaded 2-core machine. maas-serve therefore
// runs with OMP_WAIT_POLICY=passive unless it is set (maas/openmp.hpp).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "maas/error.hpp"
#include "maas/openmp.hpp"
#include "maas/serve.hpp"

int main(int argc, char** argv) {
  maas::ensure_passive_openmp_wait(argv);
  // Blocked here, so every thread started later inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  try {
    bool help = false;
    const maas::serve::ServeOptions options = maas::serve::parse_args(argc, argv, &help);
    if (help) {
      std::fputs(maas::serve::usage().c_str(), stdout);
      return 0;
    }
    maas::serve::Server server(options);
    server.bind();
    std::thread waiter([&] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      std::fprintf(stderr, "maas-serve: %s: answering the requests in flight, then exiting\n",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
      server.stop();
    });
    server.run();
    // run() returned because of stop() (from the waiter): join it.
    waiter.join();
    return 0;
  } catch (const maas::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
