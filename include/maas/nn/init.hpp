// maas/nn/init.hpp: weight initialisers.
//
// Defaults follow Keras: Dense and Conv2D kernels are Glorot-uniform, biases
// zero. fan_in / fan_out: for a Dense kernel [in, out] they are in and out;
// for a Conv2D kernel [O, C, kh, kw] they are C*kh*kw and O*kh*kw.
//   GlorotUniform  U(-l, l), l = sqrt(6 / (fan_in + fan_out))
//   GlorotNormal   N(0, s),  s = sqrt(2 / (fan_in + fan_out))   (untruncated, as PyTorch)
//   HeUniform      U(-l, l), l = sqrt(6 / fan_in)
//   HeNormal       N(0, s),  s = sqrt(2 / fan_in)                (untruncated, as PyTorch)
#pragma once

#include <cstdint>
#include <string>

#include "maas/tensor.hpp"

namespace maas::nn {

enum class Init { GlorotUniform, GlorotNormal, HeUniform, HeNormal, Zeros, Ones };

// Fills t in place (unless a SkipInitialization is alive on this thread).
void initialize(Tensor& t, Init init, int64_t fan_in, int64_t fan_out, Generator& gen);

// Fills t with U(low, high) in place (Keras' RandomUniform; Embedding's
// default is U(-0.05, 0.05)); skipped as initialize() is.
void initialize_uniform(Tensor& t, float low, float high, Generator& gen);

// While one lives, initialize() on this thread leaves tensors as they are
// (uninitialised) and draws nothing from the generator: for loaders that
// build a model only to overwrite every weight (load_model), so that
// building costs no pass over the weights.
class SkipInitialization {
 public:
  SkipInitialization();
  ~SkipInitialization();
  SkipInitialization(const SkipInitialization&) = delete;
  SkipInitialization& operator=(const SkipInitialization&) = delete;

 private:
  bool previous_;
};

// Keras' names: "glorot_uniform", "he_normal", "zeros", ...
std::string to_string(Init init);
Init init_from_string(const std::string& name);

}  // namespace maas::nn
