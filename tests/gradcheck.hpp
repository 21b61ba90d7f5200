// Finite-difference gradient check for any differentiable function of tensors.
//
// For f(inputs) -> out, the scalar L = sum(out * R) with R fixed random weights
// is differentiated two ways: by maas' backward pass, and by central
// differences (L(x+eps) - L(x-eps)) / 2eps on every input element, with L
// summed in double. They must agree within atol + rtol * |numeric|.
// It also checks that backward accumulates: a second backward doubles the
// gradient.
#pragma once

#include <catch2/catch.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "maas/maas.hpp"

namespace maas::test {

struct GradCheckOptions {
  double eps = 1e-2;   // step; fp32 forward passes need a large one
  double atol = 2e-3;
  double rtol = 2e-2;
  uint64_t seed = 7;
  // check_module_gradients: also the gradient with respect to the input
  // (false for inputs that are indices, as Embedding's).
  bool check_input = true;
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

inline double weighted_sum(const Tensor& out, const Tensor& r) {
  double acc = 0.0;
  for (int64_t i = 0; i < out.numel(); ++i) acc += static_cast<double>(out.data()[i]) * r.data()[i];
  return acc;
}

inline void check_gradients(const TensorFn& f, const std::vector<Tensor>& inputs_in,
                            const GradCheckOptions& opt = {}) {
  std::vector<Tensor> inputs;
  for (const Tensor& t : inputs_in) {
    Tensor leaf = t.detach().clone();
    leaf.requires_grad_();
    inputs.push_back(leaf);
  }
  Generator gen(opt.seed);
  Tensor out = f(inputs);
  REQUIRE(out.requires_grad());
  const Tensor r = Tensor::randn(out.shape(), gen);
  sum(out * r).backward();

  std::vector<std::vector<float>> analytic;
  for (const Tensor& t : inputs) {
    REQUIRE(t.grad().defined());
    analytic.push_back(t.grad().to_vector());
  }

  int failures = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k];
    for (int64_t i = 0; i < x.numel() && failures < 5; ++i) {
      const float saved = x.data()[i];
      double lp, lm;
      {
        NoGradGuard ng;
        x.data()[i] = static_cast<float>(saved + opt.eps);
        lp = weighted_sum(f(inputs), r);
        x.data()[i] = static_cast<float>(saved - opt.eps);
        lm = weighted_sum(f(inputs), r);
        x.data()[i] = saved;
      }
      const double numeric = (lp - lm) / (2 * opt.eps);
      const double a = analytic[k][static_cast<size_t>(i)];
      if (std::fabs(a - numeric) > opt.atol + opt.rtol * std::fabs(numeric)) {
        ++failures;
        INFO("input " << k << " " << to_string(x.shape()) << " element " << i << ": analytic " << a
                      << " vs numeric " << numeric);
        CHECK(false);
      }
    }
  }
  REQUIRE(failures == 0);

  // Backward must accumulate (+=), not overwrite.
  Tensor out2 = f(inputs);
  sum(out2 * r).backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor g = inputs[k].grad();
    for (int64_t i = 0; i < g.numel(); ++i) {
      const float expect = 2.f * analytic[k][static_cast<size_t>(i)];
      if (std::fabs(g.data()[i] - expect) > 1e-5f + 1e-5f * std::fabs(expect)) {
        INFO("input " << k << " element " << i << ": second backward gave " << g.data()[i] << ", expected "
                      << expect);
        REQUIRE(false);
      }
    }
  }
}

// The same check through a module: the gradient with respect to the input
// and to every parameter (perturbed in place) against central differences.
inline void check_module_gradients(nn::Module& m, const Tensor& x_in, const GradCheckOptions& opt = {}) {
  Tensor x = x_in.detach().clone();
  if (opt.check_input) x.requires_grad_();
  Generator gen(opt.seed);
  m.zero_grad(true);
  Tensor out = m(x);
  const Tensor r = Tensor::randn(out.shape(), gen);
  sum(out * r).backward();
  std::vector<std::pair<std::string, Tensor>> targets;
  if (opt.check_input) targets.emplace_back("input", x);
  for (auto& p : m.named_parameters()) targets.push_back(p);
  int failures = 0;
  for (auto& [name, t] : targets) {
    REQUIRE(t.grad().defined());
    const std::vector<float> analytic = t.grad().to_vector();
    for (int64_t i = 0; i < t.numel() && failures < 5; ++i) {
      const float saved = t.data()[i];
      double lp, lm;
      {
        NoGradGuard ng;
        t.data()[i] = static_cast<float>(saved + opt.eps);
        lp = weighted_sum(m(x), r);
        t.data()[i] = static_cast<float>(saved - opt.eps);
        lm = weighted_sum(m(x), r);
        t.data()[i] = saved;
      }
      const double numeric = (lp - lm) / (2 * opt.eps);
      const double a = analytic[static_cast<size_t>(i)];
      if (std::fabs(a - numeric) > opt.atol + opt.rtol * std::fabs(numeric)) {
        ++failures;
        INFO(name << " " << to_string(t.shape()) << " element " << i << ": analytic " << a << " vs numeric "
                  << numeric);
        CHECK(false);
      }
    }
  }
  REQUIRE(failures == 0);
}

// Checks that `fn` throws maas::Error whose message contains `needle`.
#define MAAS_REQUIRE_THROWS_WITH(expr, needle) \
  REQUIRE_THROWS_WITH(expr, Catch::Matchers::Contains(needle))

// Element-wise comparison with a tolerance; reports the first mismatch.
// Runs f under 1, 2 and 3 OpenMP threads; each run must give the same bits
// (compared as bytes: -0 is not 0, and a NaN must be the same NaN).
inline void require_thread_invariant(const std::function<std::vector<float>()>& f) {
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> runs;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    runs.push_back(f());
  }
  omp_set_num_threads(saved);
  for (size_t i = 1; i < runs.size(); ++i) {
    REQUIRE(runs[i].size() == runs[0].size());
    REQUIRE(std::memcmp(runs[i].data(), runs[0].data(), runs[0].size() * sizeof(float)) == 0);
  }
}

inline void require_close(const Tensor& got, const std::vector<float>& want, float tol = 1e-5f) {
  REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    if (got.data()[i] == Approx(want[i]).margin(tol).epsilon(tol)) continue;
    INFO("element " << i << " of " << got.str());  // formatted only on failure
    REQUIRE(got.data()[i] == Approx(want[i]).margin(tol).epsilon(tol));
  }
}

// The message of the maas::Error that f throws ("" when it throws none), for
// checks on the whole message or on parts of it.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Fit options for tests: `epochs` epochs of `batch_size`, no output.
inline FitOptions silent(int64_t epochs, int64_t batch_size) {
  FitOptions o;
  o.epochs = epochs;
  o.batch_size = batch_size;
  o.verbose = Verbose::Silent;
  return o;
}

// n samples of `features` normal features with labels uniform in [0, classes).
inline data::TensorDataset random_classes(int64_t n, int64_t features, int64_t classes, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::randn({n, features}, gen);
  Tensor y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i)
    y.at({i}) = static_cast<float>(std::min<int64_t>(classes - 1, static_cast<int64_t>(gen.uniform() * classes)));
  return data::TensorDataset(x, y);
}

}  // namespace maas::test
