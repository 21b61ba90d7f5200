#include <catch2/catch.hpp>

#include <sstream>

#include "gradcheck.hpp"
#include "maas/maas.hpp"

using namespace maas;
using maas::test::require_close;

TEST_CASE("factories fill and shape tensors", "[tensor]") {
  Tensor z = Tensor::zeros({2, 3});
  REQUIRE(z.shape() == Shape{2, 3});
  REQUIRE(z.numel() == 6);
  REQUIRE(z.strides() == Shape{3, 1});
  require_close(z, {0, 0, 0, 0, 0, 0});
  require_close(Tensor::ones({2}), {1, 1});
  require_close(Tensor::full({3}, 2.5f), {2.5f, 2.5f, 2.5f});
  Tensor s = Tensor::scalar(4.f);
  REQUIRE(s.dim() == 0);
  REQUIRE(s.numel() == 1);
  REQUIRE(s.item() == 4.f);
  Tensor v = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  REQUIRE(v.at({1, 0}) == 4.f);
  v.at({1, 0}) = 9.f;
  REQUIRE(v.data()[3] == 9.f);
  REQUIRE(v.size(-1) == 3);
  REQUIRE(Tensor::empty({4, 0}).numel() == 0);
}

TEST_CASE("data is 64-byte aligned", "[tensor]") {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n});
    REQUIRE(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
  }
}

TEST_CASE("copies are handles, clone copies data", "[tensor]") {
  Tensor a = Tensor::zeros({3});
  Tensor b = a;
  b.data()[0] = 5.f;
  REQUIRE(a.data()[0] == 5.f);
  REQUIRE(a.is_same(b));
  Tensor c = a.clone();
  c.data()[1] = 7.f;
  REQUIRE(a.data()[1] == 0.f);
  REQUIRE_FALSE(c.shares_storage(a));
}

TEST_CASE("seeded generators repeat and have the right moments", "[tensor]") {
  Generator g1(123), g2(123), g3(124);
  Tensor a = Tensor::randn({10000}, g1);
  Tensor b = Tensor::randn({10000}, g2);
  Tensor c = Tensor::randn({10000}, g3);
  REQUIRE(a.to_vector() == b.to_vector());
  REQUIRE(a.to_vector() != c.to_vector());
  double m = 0, v = 0;
  for (float x : a.to_vector()) m += x;
  m /= 10000;
  for (float x : a.to_vector()) v += (x - m) * (x - m);
  v /= 10000;
  REQUIRE(std::fabs(m) < 0.05);
  REQUIRE(std::fabs(v - 1.0) < 0.05);
  Tensor u = Tensor::rand({10000}, g1, -2.f, 3.f);
  for (float x : u.to_vector()) {
    REQUIRE(x >= -2.f);
    REQUIRE(x < 3.f);
  }
}

TEST_CASE("reshape and slice_rows share storage", "[tensor]") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = a.reshape({3, -1});
  REQUIRE(r.shape() == Shape{3, 2});
  REQUIRE(r.shares_storage(a));
  Tensor rows = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}).slice_rows(1, 3);
  REQUIRE(rows.shape() == Shape{2, 2});
  require_close(rows, {3, 4, 5, 6});
}

TEST_CASE("printing shows values, shape and grad state", "[tensor]") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  REQUIRE(a.str() == "tensor([[1, 2],\n        [3, 4]], shape=[2,2])");
  a.requires_grad_();
  REQUIRE(a.str().find("requires_grad") != std::string::npos);
  Tensor big = Tensor::zeros({100});
  REQUIRE(big.str().find("...") != std::string::npos);
  REQUIRE(Tensor::scalar(2.f).str() == "tensor(2, shape=[])");
  REQUIRE(Tensor().str() == "tensor(undefined)");
}

TEST_CASE("bad tensor input throws maas::Error with the shapes", "[tensor]") {
  MAAS_REQUIRE_THROWS_WITH(Tensor::from_vector({1, 2, 3}, {2, 2}), "3 values do not fill shape [2,2]");
  MAAS_REQUIRE_THROWS_WITH(Tensor::zeros({2, -1}), "negative dimension");
  Tensor a = Tensor::zeros({2, 3});
  MAAS_REQUIRE_THROWS_WITH(a.at({2, 0}), "index 2 is out of range for dimension 0 of shape [2,3]");
  MAAS_REQUIRE_THROWS_WITH(a.at({0}), "1 indices for a 2-d tensor");
  MAAS_REQUIRE_THROWS_WITH(a.item(), "has 6 elements, not 1");
  MAAS_REQUIRE_THROWS_WITH(a.reshape({4, 2}), "cannot reshape [2,3] (6 elements) into [4,2]");
  MAAS_REQUIRE_THROWS_WITH(a.reshape({-1, -1}), "more than one -1");
  MAAS_REQUIRE_THROWS_WITH(a.size(2), "dimension 2 is out of range for shape [2,3]");
  MAAS_REQUIRE_THROWS_WITH(a.slice_rows(1, 3), "rows [1, 3) are out of range");
  MAAS_REQUIRE_THROWS_WITH(Tensor().shape(), "undefined");
  REQUIRE_THROWS_AS(Tensor().data(), Error);
}

TEST_CASE("shapes whose element count overflows int64 are refused", "[tensor]") {
  const int64_t big = int64_t{1} << 62;
  REQUIRE_THROWS_WITH(numel({big, 4}), Catch::Contains("more elements than a 64-bit size can count"));
  REQUIRE_THROWS_AS(Tensor::empty({big, 4}), Error);
  REQUIRE_THROWS_AS(Tensor::zeros({3, big, 3}), Error);
  // A zero dimension does not hide an overflow of the others (their strides).
  REQUIRE_THROWS_AS(numel({0, big, 4}), Error);
  REQUIRE(numel({0, big}) == 0);
  REQUIRE(numel({big, 1}) == big);
  // 2^61 floats is 2^63 bytes: more than memory can address, and said so.
  REQUIRE_THROWS_WITH(Tensor::empty({int64_t{1} << 61, 2}), Catch::Contains("more bytes than memory can address"));
}

TEST_CASE("layers with sizes that overflow throw instead of writing past their buffers", "[layer]") {
  const int64_t big = int64_t{1} << 62;
  nn::Sequential a({1, 8, 8});
  REQUIRE_THROWS_AS(a.add(nn::Conv2D(big, 3)), Error);
  nn::Sequential b({16});
  REQUIRE_THROWS_AS(b.add(nn::Dense(INT64_MAX)), Error);
  nn::Conv2DOptions o;
  o.dilation_rate = {big, 1};
  nn::Sequential c({1, 8, 8});
  REQUIRE_THROWS_WITH(c.add(nn::Conv2D(2, 3, o)), Catch::Contains("overflows 64-bit sizes"));
  nn::Pool2DOptions p;
  p.padding = nn::Padding::Explicit;
  p.explicit_padding = {INT64_MAX / 2 + 1, 0};
  nn::Sequential d({1, 8, 8});
  REQUIRE_THROWS_WITH(d.add(nn::AvgPool2D(Pair{INT64_MAX, 2}, p)), Catch::Contains("overflows 64-bit sizes"));
}
