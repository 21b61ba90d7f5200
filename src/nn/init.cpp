// Weight initialisers (Glorot / He, uniform / normal).
#include "maas/nn/init.hpp"

#include <cmath>

#include "maas/error.hpp"

namespace maas::nn {

namespace {
thread_local bool skip_initialization = false;
}  // namespace

SkipInitialization::SkipInitialization() : previous_(skip_initialization) { skip_initialization = true; }
SkipInitialization::~SkipInitialization() { skip_initialization = previous_; }

void initialize(Tensor& t, Init init, int64_t fan_in, int64_t fan_out, Generator& gen) {
  if (skip_initialization) return;
  float* p = t.data();
  const int64_t n = t.numel();
  auto uniform = [&](double limit) {
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>((2.0 * gen.uniform() - 1.0) * limit);
  };
  auto normal = [&](double stddev) {
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(gen.normal() * stddev);
  };
  MAAS_CHECK((fan_in > 0 && fan_out > 0) || init == Init::Zeros || init == Init::Ones,
             "initialize: fan_in " << fan_in << " and fan_out " << fan_out << " must be positive");
  switch (init) {
    case Init::GlorotUniform: uniform(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out))); break;
    case Init::GlorotNormal: normal(std::sqrt(2.0 / static_cast<double>(fan_in + fan_out))); break;
    case Init::HeUniform: uniform(std::sqrt(6.0 / static_cast<double>(fan_in))); break;
    case Init::HeNormal: normal(std::sqrt(2.0 / static_cast<double>(fan_in))); break;
    case Init::Zeros:
      for (int64_t i = 0; i < n; ++i) p[i] = 0.f;
      break;
    case Init::Ones:
      for (int64_t i = 0; i < n; ++i) p[i] = 1.f;
      break;
  }
}

void initialize_uniform(Tensor& t, float low, float high, Generator& gen) {
  MAAS_CHECK(low <= high, "initialize_uniform: low " << low << " is above high " << high);
  if (skip_initialization) return;
  float* p = t.data();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) p[i] = low + (high - low) * gen.uniform();
}

std::string to_string(Init init) {
  switch (init) {
    case Init::GlorotUniform: return "glorot_uniform";
    case Init::GlorotNormal: return "glorot_normal";
    case Init::HeUniform: return "he_uniform";
    case Init::HeNormal: return "he_normal";
    case Init::Zeros: return "zeros";
    case Init::Ones: return "ones";
  }
  return "?";
}

Init init_from_string(const std::string& name) {
  for (Init i : {Init::GlorotUniform, Init::GlorotNormal, Init::HeUniform, Init::HeNormal, Init::Zeros, Init::Ones})
    if (to_string(i) == name) return i;
  MAAS_FAIL("initializer '" << name
                            << "' is not known (expected glorot_uniform, glorot_normal, he_uniform, he_normal, zeros, ones)");
}

}  // namespace maas::nn
