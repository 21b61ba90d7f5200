// maas/data/csv.hpp: numeric tables in CSV files, for tabular models.
//
// Example (data/breast-cancer/breast_cancer.csv: a header row, 30 feature
// columns, the label last):
//   maas::data::CsvDataset all = maas::data::load_csv("data/breast-cancer/breast_cancer.csv");
//   all.size();              // 569
//   all.x().shape();         // {569, 30}, float
//   all.y().shape();         // {569}, the label column as float (0 or 1 here)
//   all.label_name();        // "target"
//
//   maas::data::CsvOptions options;
//   options.label_name = "price";        // or options.label_index = 0 (the first column)
//   options.delimiter = ';';
//   maas::data::CsvDataset houses = maas::data::load_csv("houses.csv", options);
//
//   maas::data::Normalize n = maas::data::feature_stats(train_x);  // [N, F]: mean and std per column
//   maas::data::normalize_(train_x, n);                          // then the same n on the test rows
//
// Format: one row per line ("\n" or "\r\n"), fields separated by the
// delimiter, every field a number (what strtod reads: "3", "-0.5", "1e-3",
// surrounded by optional spaces) except in the header row. A field may be
// double-quoted ("a,b" and "say ""hi""" as RFC 4180), within one line.
// Blank lines are skipped. Every row has the header's number of fields (or
// the first row's). The file may be gzip-compressed.
//
// Header (CsvOptions::header): Auto takes the first row as a header when one
// of its fields is text (not empty, "nan" or "inf", which are bad data
// instead), Yes always, No never.
//
// Errors: every problem throws maas::Error naming the file and, for a bad
// row, its line (counting from 1, blank lines included) and column (from 1,
// with its header name): a missing or empty file, a header without rows, a
// row with more or fewer fields than the first, a field that is not a finite
// float ("nan", "", "1.5x", 1e39), a label column that is not there, a table
// with no feature column.
//
// What this file is not: no categorical columns (encode them as numbers
// first), no missing values, no multi-line quoted fields, no type inference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "maas/data/dataset.hpp"
#include "maas/data/loader.hpp"

namespace maas::data {

enum class CsvHeader { Auto, Yes, No };

struct CsvOptions {
  // The label column: the header field label_name when it is not empty (the
  // file must then have a header), else the column label_index, from 0;
  // negative counts from the end (-1, the default: the last column).
  std::string label_name;
  int64_t label_index = -1;
  CsvHeader header = CsvHeader::Auto;
  // Any character but '"', '\r' and '\n' (e.g. ',', ';', '\t').
  char delimiter = ',';
  // The most bytes the file (after gzip decompression) may hold; a larger
  // one, or a gzip bomb, is an error before more than this is read.
  size_t max_bytes = size_t{1} << 30;
};

// A CSV table: x [N, F] the feature columns in file order (the label column
// left out), y [N] the label column.
class CsvDataset : public TensorDataset {
 public:
  CsvDataset(Tensor x, Tensor y, std::vector<std::string> feature_names, std::string label_name);

  // The header's names (empty strings when the file has no header).
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  const std::string& label_name() const { return label_name_; }

 private:
  std::vector<std::string> feature_names_;
  std::string label_name_;
};

// Parses CSV text already in memory; `name` (a file name) starts the errors.
CsvDataset parse_csv(const char* text, size_t size, const CsvOptions& options = {},
                     const std::string& name = "<memory>");

// Reads and parses a CSV file (plain or gzipped).
CsvDataset load_csv(const std::string& path, const CsvOptions& options = {});

// Per-column mean and standard deviation (population, as sklearn's
// StandardScaler) of x [N, F], as a Normalize for normalize_(x, n), which
// then makes each column zero-mean and unit-variance. A constant column gets
// std 1 (it becomes 0), as StandardScaler. Compute it on the training rows
// and apply it to the test rows too. Throws maas::Error when x is not
// [N, F] with N >= 1.
Normalize feature_stats(const Tensor& x);

}  // namespace maas::data
