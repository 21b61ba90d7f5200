// bench_dist: data-parallel costs, under mpirun (see bench/RESULTS.md,
// "Data-parallel training over MPI").
//
//   mpirun -np 2 build/bench/bench_dist allreduce      # 225 k and 10 M gradients
//   mpirun -np 2 -x OMP_NUM_THREADS=1 build/bench/bench_dist step 64 40
//   OMP_NUM_THREADS=2 build/bench/bench_dist step 128 40  # one process, for comparison
//
// allreduce: maas::average_gradients (fused buckets, one allreduce each) over
// the reference CNN's parameter shapes (225,034 floats) and over a 10 M-float
// model of ResNet-like shapes; each repetition starts together (a tiny
// allreduce first) and counts the slowest rank; medians.
// step: training steps of the reference CNN with batch B per rank on random
// data: forward, backward, average_gradients, Adam; and the same steps without
// the allreduce. Their difference is the communication a step waits for: the
// most that overlapping it with the backward pass could save. Prints the
// median step times and the images per second over all ranks.
// Nothing is asserted: these are measurements.
#include <maas/dist.hpp>
#include <maas/maas.hpp>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace maas;

namespace {

using Clock = std::chrono::steady_clock;

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The slowest rank's value.
double slowest(double t) {
  Communicator& c = dist::communicator();
  std::vector<double> all(static_cast<size_t>(c.size()), 0.0);
  all[static_cast<size_t>(c.rank())] = t;
  c.allreduce_sum(all.data(), c.size());
  return *std::max_element(all.begin(), all.end());
}

void sync() {
  double x = 0;
  dist::communicator().allreduce_sum(&x, 1);
}

nn::Sequential reference_cnn() {
  manual_seed(1);
  nn::Sequential model({1, 28, 28});
  model.add(nn::Conv2D(32, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2));
  model.add(nn::Conv2D(64, 3)).add(nn::ReLU()).add(nn::MaxPool2D(2));
  model.add(nn::Flatten()).add(nn::Dense(128)).add(nn::ReLU()).add(nn::Dense(10));
  return model;
}

std::vector<Tensor> tensors(const std::vector<int64_t>& sizes) {
  std::vector<Tensor> out;
  for (int64_t n : sizes) out.push_back(Tensor::zeros({n}).requires_grad_());
  return out;
}

void bench_allreduce() {
  const nn::Sequential cnn = reference_cnn();
  // ~10 M floats shaped like a ResNet stage: four 3x3x512x512 kernels, a
  // 512x1000 classifier, BatchNorm-sized vectors.
  std::vector<int64_t> big = {2359296, 2359296, 2359296, 2359296, 512000, 1000};
  for (int i = 0; i < 40; ++i) big.push_back(512);
  struct Case {
    const char* name;
    std::vector<Tensor> params;
    int reps;
  };
  std::vector<Case> cases;
  cases.push_back({"reference CNN", cnn.parameters(), 200});
  cases.push_back({"10M model", tensors(big), 20});
  for (Case& c : cases) {
    int64_t n = 0;
    for (const Tensor& p : c.params) n += p.numel();
    const float w = 1.f / static_cast<float>(dist::world_size());
    average_gradients(dist::communicator(), c.params, w);  // warm-up (creates the gradients)
    std::vector<double> times;
    for (int r = 0; r < c.reps; ++r) {
      sync();
      const double t0 = now_s();
      average_gradients(dist::communicator(), c.params, w);
      times.push_back(slowest(now_s() - t0));
    }
    if (dist::rank() == 0)
      std::printf("allreduce %-14s %9lld floats (%6.2f MB), %d ranks: median %8.3f ms  (%d reps)\n", c.name,
                  static_cast<long long>(n), static_cast<double>(n) * 4e-6, dist::world_size(),
                  median(times) * 1e3, c.reps);
  }
}

void bench_step(int64_t batch, int steps) {
  nn::Sequential model = reference_cnn();
  optim::Adam adam(model.parameters());
  CrossEntropyLoss loss;
  Generator gen(static_cast<uint64_t>(dist::rank()) + 7);
  const Tensor x = Tensor::randn({batch, 1, 28, 28}, gen);
  Tensor y = Tensor::empty({batch});
  for (int64_t i = 0; i < batch; ++i) y.data()[i] = static_cast<float>(i % 10);
  dist::broadcast_parameters(model);
  const int ranks = dist::world_size();
  for (bool communicate : {false, true, false, true}) {  // interleaved: the second pair is reported
    std::vector<double> times;
    for (int s = 0; s < steps; ++s) {
      sync();
      const double t0 = now_s();
      adam.zero_grad();
      loss(model(x), y).backward();
      if (communicate) average_gradients(dist::communicator(), adam.params(), 1.f / static_cast<float>(ranks));
      adam.step();
      times.push_back(slowest(now_s() - t0));
    }
    const double t = median(times);
    if (dist::rank() == 0)
      std::printf("step %-16s %d rank(s) x %d thread(s) x batch %lld: median %7.2f ms, %7.0f img/s\n",
                  communicate ? "with allreduce" : "without", ranks, omp_get_max_threads(),
                  static_cast<long long>(batch), t * 1e3, static_cast<double>(batch * ranks) / t);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    dist::Session mpi(&argc, &argv);
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "allreduce") {
      bench_allreduce();
    } else if (mode == "step") {
      bench_step(argc > 2 ? std::atoll(argv[2]) : 64, argc > 3 ? std::atoi(argv[3]) : 40);
    } else {
      std::fprintf(stderr, "usage: bench_dist allreduce | step [BATCH_PER_RANK] [STEPS]\n");
      return 2;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_dist: %s\n", e.what());
    return 1;
  }
  return 0;
}
