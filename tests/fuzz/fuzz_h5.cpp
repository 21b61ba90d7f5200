// libFuzzer target: arbitrary bytes as a model, weights or training
// checkpoint file, through load_model, load_weights and load_checkpoint.
//
// Build and run (clang only):
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAAS_FUZZ=ON \
//     -DMAAS_BUILD_TESTS=OFF -DMAAS_BUILD_EXAMPLES=OFF -DMAAS_BUILD_BENCH=OFF
//   cmake --build build-fuzz --target fuzz_h5
//   MAAS_FUZZ_H5_SEEDS=corpus-h5 build-fuzz/fuzz_h5 -max_total_time=600 -print_final_stats=1 corpus-h5
// With MAAS_FUZZ_H5_SEEDS set, it first writes seeds into that folder: the
// files maas writes for a small model (save_model, save_weights,
// save_checkpoint), each also without maas' header signature, so that
// mutations reach libhdf5 and not only the whole-file checksum.
// Every input must either load or throw maas::Error: any other exception,
// crash, hang, leak or ASan report is a bug. (libhdf5 itself runs in a child
// process: its crashes and hangs are maas::Errors by design. The child
// inherits libFuzzer's and ASan's handlers, so an out-of-bounds memcpy in
// libhdf5 there still writes a crash-* file while fuzzing goes on: replay it,
// `fuzz_h5 crash-...`; exit status 0 means maas turned it into an Error.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <unistd.h>

#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"

namespace {

std::shared_ptr<maas::nn::Sequential> small_model() {
  maas::manual_seed(1);
  auto m = std::make_shared<maas::nn::Sequential>(maas::Shape{1, 6, 6});
  m->add(maas::nn::Conv2D(2, 3)).add(maas::nn::ReLU()).add(maas::nn::Flatten()).add(maas::nn::Dropout(0.2f));
  m->add(maas::nn::Dense(3));
  return m;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_seeds(const std::string& dir) {
  auto m = small_model();
  maas::optim::Adam adam(m->parameters());
  maas::sum(m->forward(maas::Tensor::ones({2, 1, 6, 6}))).backward();
  adam.step();
  const std::string names[3] = {dir + "/model.h5", dir + "/weights.h5", dir + "/checkpoint.h5"};
  maas::save_model(*m, names[0]);
  maas::save_weights(*m, names[1]);
  maas::save_checkpoint(names[2], *m, adam);
  for (const std::string& n : names) {
    std::string bytes = read_all(n);
    for (size_t i = 0; i < 8 && i < bytes.size(); ++i) bytes[i] = 0;
    write_all(n + ".unsealed", bytes);
  }
}

std::string g_path;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("MAAS_FUZZ_H5_SEEDS")) write_seeds(dir);
  g_path = "/tmp/fuzz_h5_" + std::to_string(::getpid()) + ".h5";
  maas::detail::set_hdf5_read_timeout(2.0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_all(g_path, std::string(reinterpret_cast<const char*>(data), size));
  try {
    auto m = maas::load_model(g_path);
    (void)m;
  } catch (const maas::Error&) {
  }
  auto m = small_model();
  try {
    maas::load_weights(*m, g_path);
  } catch (const maas::Error&) {
  }
  try {
    maas::optim::Adam adam(m->parameters());
    maas::load_checkpoint(g_path, *m, adam);
  } catch (const maas::Error&) {
  }
  return 0;
}
