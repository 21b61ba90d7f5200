// maas/data/dataset.hpp: what the trainer reads samples from.
//
// A Dataset is a numbered collection of (input, target) samples. The trainer
// asks it for batches by index, so a Dataset may keep its data in any form
// (uint8 images, a memory-mapped file) and convert only the requested
// samples to fp32 in get_batch().
//
// Example:
//   maas::data::TensorDataset all(x, y);                   // x [N,2], y [N] labels
//   maas::data::Split parts = maas::data::validation_split(all, 0.2);  // last 20% validate
//   maas::FitOptions options;
//   options.validation_data = &parts.validation;
//   trainer.fit(parts.train, options);
//
// What this file is not: file loaders and the prefetching DataLoader build on
// this interface elsewhere; there are no transforms or samplers here.
#pragma once

#include <cstdint>
#include <vector>

#include "maas/tensor.hpp"

namespace maas::data {

class Dataset {
 public:
  virtual ~Dataset();

  // Number of samples.
  virtual int64_t size() const = 0;
  // Shape of one input sample, without the batch dimension ({1,28,28}).
  virtual Shape sample_shape() const = 0;
  // Gathers the samples `indices` (each in [0, size()), repeats allowed) in
  // that order into x [B, ...sample_shape()] and y [B] (class labels) or
  // [B, ...] (other targets), B = indices.size(). x and y are replaced by
  // new tensors: the caller may keep earlier batches.
  // Throws maas::Error naming the index when one is out of range.
  virtual void get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const = 0;
};

// Samples held in two tensors: input i is row i of x, its target row i of y.
class TensorDataset : public Dataset {
 public:
  // requires: x and y defined, each with a first (sample) dimension, and
  // x.size(0) == y.size(0). The tensors are shared, not copied.
  TensorDataset(Tensor x, Tensor y);

  int64_t size() const override { return x_.size(0); }
  Shape sample_shape() const override;
  void get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const override;

  const Tensor& x() const { return x_; }
  const Tensor& y() const { return y_; }

 private:
  Tensor x_, y_;
};

// A view of some samples of another dataset: sample i is base[indices[i]].
// Holds a reference: `base` must outlive the view.
class SubsetDataset : public Dataset {
 public:
  // requires: every index in [0, base.size()).
  SubsetDataset(const Dataset& base, std::vector<int64_t> indices);

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Shape sample_shape() const override { return base_->sample_shape(); }
  void get_batch(const std::vector<int64_t>& indices, Tensor& x, Tensor& y) const override;

  const Dataset& base() const { return *base_; }
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  const Dataset* base_;
  std::vector<int64_t> indices_;
};

struct Split {
  SubsetDataset train;
  SubsetDataset validation;
};

// Keras' validation_split: the LAST fraction of the samples (taken before any
// shuffling) validate, the first floor(size * (1 - fraction)) train.
// requires: 0 < fraction < 1, and both parts non-empty. `data` must outlive
// the returned views.
Split validation_split(const Dataset& data, double fraction);

}  // namespace maas::data
