// serve_bench_model OUT.h5: writes the CNN of ../shared/ref/flask_predict.py
// (Conv 1->32 3x3, ReLU, MaxPool 2, Conv 32->64 3x3, ReLU, MaxPool 2,
// Flatten, Dense 128, ReLU, Dense 10, Softmax; input 28x28x1) with seeded
// random weights, for bench/serve_load.sh. Speed does not depend on them.
#include <cstdio>

#include "maas/checkpoint.hpp"
#include "maas/error.hpp"
#include "maas/maas.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: serve_bench_model OUT.h5\n");
    return 2;
  }
  try {
    maas::manual_seed(0);
    maas::nn::Sequential m({1, 28, 28});
    m.add(maas::nn::Conv2D(32, 3)).add(maas::nn::ReLU()).add(maas::nn::MaxPool2D(2));
    m.add(maas::nn::Conv2D(64, 3)).add(maas::nn::ReLU()).add(maas::nn::MaxPool2D(2));
    m.add(maas::nn::Flatten()).add(maas::nn::Dense(128)).add(maas::nn::ReLU()).add(maas::nn::Dense(10));
    m.add(maas::nn::Softmax());
    maas::save_model(m, argv[1]);
  } catch (const maas::Error& e) {
    std::fprintf(stderr, "serve_bench_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
