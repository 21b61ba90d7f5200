// Shared by the examples on a CSV table (tabular_binary, svm): finding the
// file, choosing the label column, and the stratified train/test split.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "common.hpp"

namespace examples {

// --data: a CSV file, or a directory holding exactly one (.csv or .csv.gz).
inline std::string csv_path(const std::string& data) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(data, ec)) {
    MAAS_CHECK(fs::exists(data, ec), data << ": no such file or directory (data/provision.sh breast-cancer puts the "
                                             "default data set in data/breast-cancer)");
    return data;
  }
  std::vector<std::string> found;
  for (const fs::directory_entry& e : fs::directory_iterator(data, ec)) {
    const std::string name = e.path().filename().string();
    const auto ends = [&](const std::string& suffix) {
      return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends(".csv") || ends(".csv.gz")) found.push_back(e.path().string());
  }
  std::sort(found.begin(), found.end());
  MAAS_CHECK(found.size() == 1, data << ": " << (found.empty() ? "no .csv file" : "several .csv files")
                                     << " in the directory; pass --data FILE.csv");
  return found[0];
}

// --label: a column name, or an index (negative from the end).
inline maas::data::CsvOptions csv_options(const std::string& label) {
  maas::data::CsvOptions o;
  if (label.empty()) return o;
  int64_t index = 0;
  if (parse_integer(label, INT64_MIN, INT64_MAX, index))
    o.label_index = index;
  else
    o.label_name = label;
  return o;
}

// Throws unless every label of `table` is 0 or 1, naming the first row that is not.
inline void check_binary_labels(const maas::data::CsvDataset& table, const std::string& path) {
  for (int64_t i = 0; i < table.size(); ++i) {
    const float v = table.y().data()[i];
    MAAS_CHECK(v == 0.f || v == 1.f, path << ": the label column '" << table.label_name() << "' holds " << v
                                          << " in data row " << i + 1 << "; a binary classifier needs 0 or 1");
  }
}

// A stratified split: within each class, a seeded shuffle of its samples,
// the first round(test_fraction * count) of them to test, the rest to train.
// Both lists in increasing order.
inline void stratified_split(const maas::Tensor& labels, double test_fraction, uint64_t seed,
                             std::vector<int64_t>& train, std::vector<int64_t>& test) {
  const int64_t n = labels.numel();
  const std::vector<int64_t> order = maas::data::epoch_order(n, true, seed, 0);
  int64_t count[2] = {0, 0}, taken[2] = {0, 0};
  const auto label = [&](int64_t i) { return labels.data()[i] > 0.5f ? 1 : 0; };
  for (int64_t i = 0; i < n; ++i) ++count[label(i)];
  for (int64_t i : order) {
    const int c = label(i);
    const auto quota = static_cast<int64_t>(std::llround(test_fraction * static_cast<double>(count[c])));
    (taken[c]++ < quota ? test : train).push_back(i);
  }
  std::sort(train.begin(), train.end());
  std::sort(test.begin(), test.end());
}

// The class names of the breast-cancer table (label 0 malignant, 1
// benign) when `path` is that file, else none (classes are numbered).
inline std::vector<std::string> binary_class_names(const std::string& path) {
  if (path.find("breast_cancer") == std::string::npos) return {};
  return {"malignant", "benign"};
}

}  // namespace examples
