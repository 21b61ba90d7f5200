// Dataset, TensorDataset, SubsetDataset and validation_split.
#include <catch2/catch.hpp>

#include <functional>
#include <string>

#include "gradcheck.hpp"
#include "maas/data/dataset.hpp"

using namespace maas;
using maas::test::error_of;
using maas::data::SubsetDataset;
using maas::data::TensorDataset;

namespace {

// x row i is {i, 10 i}; y[i] = i % 3.
TensorDataset numbered(int64_t n) {
  Tensor x = Tensor::empty({n, 2});
  Tensor y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    x.at({i, 0}) = static_cast<float>(i);
    x.at({i, 1}) = static_cast<float>(10 * i);
    y.at({i}) = static_cast<float>(i % 3);
  }
  return TensorDataset(x, y);
}

}  // namespace

TEST_CASE("TensorDataset gathers the requested rows in order", "[data]") {
  TensorDataset ds = numbered(6);
  REQUIRE(ds.size() == 6);
  REQUIRE(ds.sample_shape() == Shape{2});
  Tensor x, y;
  ds.get_batch({4, 1, 4}, x, y);
  REQUIRE(x.shape() == Shape{3, 2});
  REQUIRE(y.shape() == Shape{3});
  CHECK(x.to_vector() == std::vector<float>{4, 40, 1, 10, 4, 40});
  CHECK(y.to_vector() == std::vector<float>{1, 1, 1});
  // Batches are copies: changing one leaves the data set alone.
  x.at({0, 0}) = -1.f;
  CHECK(ds.x().at({4, 0}) == 4.f);
}

TEST_CASE("TensorDataset keeps image samples and [N, k] targets whole", "[data]") {
  Tensor x = Tensor::zeros({3, 1, 2, 2});
  Tensor y = Tensor::zeros({3, 4});
  x.at({2, 0, 1, 1}) = 7.f;
  y.at({2, 3}) = 1.f;
  TensorDataset ds(x, y);
  REQUIRE(ds.sample_shape() == Shape{1, 2, 2});
  Tensor bx, by;
  ds.get_batch({2}, bx, by);
  REQUIRE(bx.shape() == Shape{1, 1, 2, 2});
  REQUIRE(by.shape() == Shape{1, 4});
  CHECK(bx.at({0, 0, 1, 1}) == 7.f);
  CHECK(by.at({0, 3}) == 1.f);
}

TEST_CASE("TensorDataset names both shapes when the sample counts differ", "[data]") {
  const std::string msg = error_of([] { TensorDataset(Tensor::zeros({10, 3}), Tensor::zeros({9})); });
  CHECK_THAT(msg, Catch::Contains("[10,3]") && Catch::Contains("[9]"));
  CHECK_THROWS_AS(TensorDataset(Tensor(), Tensor::zeros({1})), maas::Error);
  CHECK_THROWS_AS(TensorDataset(Tensor::scalar(1.f), Tensor::zeros({1})), maas::Error);
}

TEST_CASE("get_batch names an index out of range", "[data]") {
  TensorDataset ds = numbered(4);
  Tensor x, y;
  CHECK_THAT(error_of([&] { ds.get_batch({0, 4}, x, y); }), Catch::Contains("index 4") && Catch::Contains("4 samples"));
  CHECK_THROWS_AS(ds.get_batch({-1}, x, y), maas::Error);
}

TEST_CASE("SubsetDataset maps its indices onto the base", "[data]") {
  TensorDataset ds = numbered(6);
  SubsetDataset sub(ds, {5, 0, 3});
  REQUIRE(sub.size() == 3);
  REQUIRE(sub.sample_shape() == Shape{2});
  Tensor x, y;
  sub.get_batch({2, 0}, x, y);
  CHECK(x.to_vector() == std::vector<float>{3, 30, 5, 50});
  CHECK(y.to_vector() == std::vector<float>{0, 2});
  CHECK_THROWS_AS(sub.get_batch({3}, x, y), maas::Error);
  CHECK_THAT(error_of([&] { SubsetDataset(ds, {0, 6}); }), Catch::Contains("index 6"));
}

TEST_CASE("validation_split takes the last fraction, as Keras", "[data]") {
  TensorDataset ds = numbered(10);
  data::Split s = data::validation_split(ds, 0.25);
  // floor(10 * 0.75) = 7 train, the last 3 validate.
  REQUIRE(s.train.indices() == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
  REQUIRE(s.validation.indices() == std::vector<int64_t>{7, 8, 9});
  Tensor x, y;
  s.validation.get_batch({0}, x, y);
  CHECK(x.at({0, 0}) == 7.f);

  CHECK_THAT(error_of([&] { data::validation_split(ds, 1.5); }), Catch::Contains("1.5"));
  CHECK_THROWS_AS(data::validation_split(ds, 0.0), maas::Error);
  TensorDataset one = numbered(1);
  CHECK_THAT(error_of([&] { data::validation_split(one, 0.5); }), Catch::Contains("both parts"));
}
