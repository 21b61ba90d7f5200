// Helpers for the optimizer tests: fixed gradients, and a five-step
// trajectory checked against values computed once with PyTorch 1.13 (CPU,
// float32) by the script below, run as `python3 ref.py sgd|adam|adamw|rmsprop`;
// its output is pasted into test_sgd.cpp, test_adam.cpp and test_rmsprop.cpp.
// Hyper-parameters are rounded to float32 before PyTorch sees them, as maas
// stores them in float, so both sides use the same coefficients.
//
//   # Reference values for tests/optim (PyTorch 1.13, CPU, float32, foreach=False).
//   # Hyper-parameters are rounded to float32 first, as maas stores them.
//   import math, struct, torch
//   torch.set_printoptions(precision=10)
//   def f32(x): return struct.unpack('f', struct.pack('f', x))[0]
//   P0 = [0.5, -1.0, 1.5, 2.0]
//   G = [[0.1, -0.2, 0.3, -0.4], [-0.5, 0.25, 0.05, 0.6], [0.2, 0.2, -0.3, -0.1],
//        [0.0, -0.7, 0.4, 0.15], [0.3, -0.05, -0.2, 0.5]]
//   B0 = [1.0, -2.0]
//   BG = [None, [0.3, -0.1], [0.2, 0.4], None, [-0.6, 0.1]]   # second parameter: no grad on steps 1 and 4
//   def lit(v):
//       s = '%.9g' % v
//       return s + ('' if ('.' in s or 'e' in s) else '.0') + 'f'
//   def fmt(t): return '{' + ', '.join(lit(v) for v in t.flatten().tolist()) + '}'
//   def run(cls, **kw):
//       shown = ', '.join('%s=%r' % kv for kv in kw.items())
//       kw = {k: (tuple(f32(b) for b in v) if isinstance(v, tuple) else f32(v) if isinstance(v, float) else v) for k, v in kw.items()}
//       p = torch.tensor(P0).reshape(2, 2).requires_grad_()
//       b = torch.tensor(B0).requires_grad_()
//       opt = cls([p, b], foreach=False, **kw)
//       rows = []
//       for k in range(5):
//           p.grad = torch.tensor(G[k]).reshape(2, 2)
//           b.grad = None if BG[k] is None else torch.tensor(BG[k])
//           opt.step()
//           rows.append('{%s, %s}' % (fmt(p.detach()), fmt(b.detach())))
//       print('  // %s(%s)' % (cls.__name__, shown))
//       print('  {' + ',\n   '.join(rows) + '},')
//   import sys
//   which = sys.argv[1]
//   if which == 'sgd':
//       for kw in [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.9, dampening=0.5),
//                  dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.1, weight_decay=0.1),
//                  dict(lr=0.05, momentum=0.8, weight_decay=0.2, nesterov=True),
//                  dict(lr=0.05, momentum=0.5, dampening=0.1, weight_decay=0.01)]:
//           run(torch.optim.SGD, **kw)
//   elif which == 'adam':
//       for kw in [dict(lr=0.1), dict(lr=0.1, weight_decay=0.1), dict(lr=0.1, amsgrad=True),
//                  dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.05, amsgrad=True)]:
//           run(torch.optim.Adam, **kw)
//   elif which == 'adamw':
//       for kw in [dict(lr=0.1), dict(lr=0.1, weight_decay=0.1, amsgrad=True),
//                  dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.0)]:
//           run(torch.optim.AdamW, **kw)
//   elif which == 'rmsprop':
//       for kw in [dict(lr=0.01), dict(lr=0.01, centered=True), dict(lr=0.01, momentum=0.9),
//                  dict(lr=0.01, alpha=0.9, eps=1e-4, weight_decay=0.1),
//                  dict(lr=0.02, alpha=0.95, momentum=0.5, centered=True, weight_decay=0.05)]:
//           run(torch.optim.RMSprop, **kw)
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "gradcheck.hpp"
#include "maas/maas.hpp"
#include "maas/optim/optimizer.hpp"

namespace maas::test {

// Makes p.grad() exactly `g` (through a backward pass of sum(p * g)), or
// drops it when g is empty.
inline void set_grad(Tensor& p, const std::vector<float>& g) {
  p.zero_grad(/*set_to_none=*/true);
  if (g.empty()) return;
  sum(p * Tensor::from_vector(g, p.shape())).backward();
}

// |got - want| <= rel * |want| + abs, element by element.
inline void require_near(const Tensor& got, const std::vector<float>& want, double rel = 1e-6, double abs = 1e-7) {
  REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got.data()[i], w = want[i];
    if (!(std::fabs(g - w) <= rel * std::fabs(w) + abs)) {
      INFO("element " << i << ": got " << g << ", want " << w << " in " << got.str());
      REQUIRE(false);
    }
  }
}

// The fixed problem of tests/optim: p (2x2) gets a gradient every step, b (2)
// only on steps 2, 3 and 5 (its grad is dropped on steps 1 and 4).
inline const std::vector<float> kP0 = {0.5f, -1.0f, 1.5f, 2.0f};
inline const std::vector<float> kB0 = {1.0f, -2.0f};
inline const std::vector<std::vector<float>> kGradP = {{0.1f, -0.2f, 0.3f, -0.4f},
                                                       {-0.5f, 0.25f, 0.05f, 0.6f},
                                                       {0.2f, 0.2f, -0.3f, -0.1f},
                                                       {0.0f, -0.7f, 0.4f, 0.15f},
                                                       {0.3f, -0.05f, -0.2f, 0.5f}};
inline const std::vector<std::vector<float>> kGradB = {{}, {0.3f, -0.1f}, {0.2f, 0.4f}, {}, {-0.6f, 0.1f}};

// Values of p and b after each step.
struct TrajectoryRow {
  std::vector<float> p, b;
};
using Trajectory = std::vector<TrajectoryRow>;
using MakeOptimizer = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

// A factory for check_trajectory: make<SGD>(options).
template <class Opt, class Options>
MakeOptimizer make(const Options& options) {
  return [options](std::vector<Tensor> params) -> std::unique_ptr<optim::Optimizer> {
    return std::make_unique<Opt>(std::move(params), options);
  };
}

inline void check_trajectory(const MakeOptimizer& make, const Trajectory& want) {
  Tensor p = Tensor::from_vector(kP0, {2, 2}).requires_grad_();
  Tensor b = Tensor::from_vector(kB0, {2}).requires_grad_();
  auto opt = make({p, b});
  for (size_t k = 0; k < want.size(); ++k) {
    set_grad(p, kGradP[k]);
    set_grad(b, kGradB[k]);
    opt->step();
    INFO(opt->name() << " after step " << k + 1);
    REQUIRE(opt->step_count() == static_cast<int64_t>(k + 1));
    require_near(p, want[k].p);
    require_near(b, want[k].b);
  }
}

}  // namespace maas::test
