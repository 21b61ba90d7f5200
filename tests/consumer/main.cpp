// Trains y = 2x + 1 with the installed library: proves headers, library and
// its link dependencies are all found through find_package(maas).
#include <maas/maas.hpp>

#include <cmath>
#include <iostream>

int main() {
  maas::Tensor x = maas::Tensor::from_vector({0.f, 1.f, 2.f, 3.f}, {4, 1});
  maas::Tensor y = maas::Tensor::from_vector({1.f, 3.f, 5.f, 7.f}, {4, 1});
  maas::Tensor w = maas::Tensor::zeros({1, 1}).requires_grad_();
  maas::Tensor b = maas::Tensor::zeros({1}).requires_grad_();
  for (int step = 0; step < 500; ++step) {
    maas::Tensor err = maas::matmul(x, w) + b - y;
    maas::Tensor loss = maas::mean(err * err);
    w.zero_grad();
    b.zero_grad();
    loss.backward();
    w.data()[0] -= 0.1f * w.grad().data()[0];
    b.data()[0] -= 0.1f * b.grad().data()[0];
  }
  if (std::fabs(w.data()[0] - 2.f) > 1e-2f || std::fabs(b.data()[0] - 1.f) > 1e-2f) {
    std::cerr << "consumer failed: w=" << w.data()[0] << " b=" << b.data()[0] << "\n";
    return 1;
  }
  std::cout << "consumer ok\n";
  return 0;
}
