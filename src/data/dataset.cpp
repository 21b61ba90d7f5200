// Dataset, TensorDataset, SubsetDataset and validation_split.
#include "maas/data/dataset.hpp"

#include <cmath>
#include <cstring>

#include "maas/error.hpp"

namespace maas::data {

Dataset::~Dataset() = default;

namespace {

// Copies rows `indices` of src (shape [N, ...]) into a new [B, ...] tensor.
Tensor gather_rows(const Tensor& src, const std::vector<int64_t>& indices, const char* what) {
  Shape shape = src.shape();
  const int64_t n = shape[0];
  const int64_t row = n > 0 ? src.numel() / n : maas::numel(Shape(shape.begin() + 1, shape.end()));
  shape[0] = static_cast<int64_t>(indices.size());
  Tensor out = Tensor::empty(shape);
  const float* s = src.data();
  float* d = out.data();
  for (size_t b = 0; b < indices.size(); ++b) {
    const int64_t i = indices[b];
    MAAS_CHECK(0 <= i && i < n, "TensorDataset::get_batch: index " << i << " (batch position " << b
                                    << ") is out of range for " << n << " samples (" << what << " "
                                    << to_string(src.shape()) << ")");
    std::memcpy(d + static_cast<int64_t>(b) * row, s + i * row, sizeof(float) * static_cast<size_t>(row));
  }
  return out;
}

}  // namespace

TensorDataset::TensorDataset(Tensor x, Tensor y) : x_(std::move(x)), y_(std::move(y)) {
  MAAS_CHECK(x_.defined() && y_.defined(), "TensorDataset: x and y must both be defined tensors");
  MAAS_CHECK(x_.dim() >= 1 && y_.dim() >= 1, "TensorDataset: x " << to_string(x_.shape()) << " and y "
                                                                 << to_string(y_.shape())
                                                                 << " both need a first (sample) dimension");
  MAAS_CHECK(x_.size(0) == y_.size(0), "TensorDataset: x " << to_string(x_.shape()) << " has " << x_.size(0)
                                                           << " samples but y " << to_string(y_.shape())
                                                           << " has " << y_.size(0)
                                                           << "; dimension 0 must count the same samples");
}

Shape TensorDataset::sample_shape() const { return Shape(x_.shape().begin() + 1, x_.shape().end()); }

void TensorDataset::get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const {
  x = gather_rows(x_, indices, "x");
  y = gather_rows(y_, indices, "y");
}

SubsetDataset::SubsetDataset(const Dataset& base, std::vector<int64_t> indices)
    : base_(&base), indices_(std::move(indices)) {
  const int64_t n = base.size();
  for (size_t k = 0; k < indices_.size(); ++k)
    MAAS_CHECK(0 <= indices_[k] && indices_[k] < n, "SubsetDataset: index " << indices_[k] << " (position " << k
                                                                            << ") is out of range for a dataset of "
                                                                            << n << " samples");
}

void SubsetDataset::get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const {
  std::vector<int64_t> mapped(indices.size());
  const int64_t n = size();
  for (size_t b = 0; b < indices.size(); ++b) {
    MAAS_CHECK(0 <= indices[b] && indices[b] < n, "SubsetDataset::get_batch: index " << indices[b]
                                                      << " (batch position " << b << ") is out of range for "
                                                      << n << " samples");
    mapped[b] = indices_[static_cast<size_t>(indices[b])];
  }
  base_->get_batch(mapped, x, y);
}

Split validation_split(const Dataset& data, double fraction) {
  MAAS_CHECK(fraction > 0.0 && fraction < 1.0,
             "validation_split: fraction " << fraction << " must be in (0, 1), e.g. 0.2 to validate on the last 20%");
  const int64_t n = data.size();
  const auto n_train = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - fraction)));
  MAAS_CHECK(n_train > 0 && n_train < n, "validation_split: " << n << " samples cannot be split with fraction "
                                                              << fraction << " (it leaves " << n_train
                                                              << " to train and " << n - n_train
                                                              << " to validate); both parts need samples");
  std::vector<int64_t> train(static_cast<size_t>(n_train)), val(static_cast<size_t>(n - n_train));
  for (int64_t i = 0; i < n_train; ++i) train[static_cast<size_t>(i)] = i;
  for (int64_t i = n_train; i < n; ++i) val[static_cast<size_t>(i - n_train)] = i;
  return Split{SubsetDataset(data, std::move(train)), SubsetDataset(data, std::move(val))};
}

}  // namespace maas::data
