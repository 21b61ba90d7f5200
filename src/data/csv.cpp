// CSV tables: a one-pass parser over text in memory, the file loader, and the
// per-column statistics for standardising features.
#include "maas/data/csv.hpp"

#include <charconv>
#include <cstdint>
#include <cmath>
#include <limits>
#include <sstream>
#include <system_error>
#include <utility>

#include "maas/error.hpp"

namespace maas::data {

CsvDataset::CsvDataset(Tensor x, Tensor y, std::vector<std::string> feature_names, std::string label_name)
    : TensorDataset(std::move(x), std::move(y)),
      feature_names_(std::move(feature_names)),
      label_name_(std::move(label_name)) {
  MAAS_CHECK(this->x().dim() == 2 && this->y().dim() == 1,
             "CsvDataset: x " << to_string(this->x().shape()) << " must be [N, F] and y "
                              << to_string(this->y().shape()) << " [N]");
  MAAS_CHECK(static_cast<int64_t>(feature_names_.size()) == this->x().size(1),
             "CsvDataset: " << feature_names_.size() << " feature names for " << this->x().size(1)
                            << " feature columns");
}

namespace {

// At most 40 characters of a field, for error messages.
std::string shown(const std::string& s) {
  return s.size() <= 40 ? s : s.substr(0, 37) + "...";
}

bool is_blank(char c, char delimiter) { return (c == ' ' || c == '\t') && c != delimiter; }

// Splits line `line` (no line break) into fields, unquoting and trimming
// them. `prefix` ("load_csv: f.csv") starts the errors.
void split_line(const char* begin, const char* end, char delimiter, std::vector<std::string>& fields,
                const std::string& prefix, int64_t line) {
  fields.clear();
  const char* p = begin;
  for (;;) {
    while (p != end && is_blank(*p, delimiter)) ++p;
    std::string field;
    if (p != end && *p == '"') {
      const int64_t column = static_cast<int64_t>(fields.size()) + 1;
      for (++p;; ++p) {
        MAAS_CHECK(p != end, prefix << ": line " << line << ", column " << column
                                    << ": a quoted field has no closing quote "
                                   << "(fields cannot span lines)");
        if (*p == '"') {
          if (p + 1 != end && p[1] == '"') {
            field += '"';
            ++p;
          } else {
            ++p;
            break;
          }
        } else {
          field += *p;
        }
      }
      while (p != end && is_blank(*p, delimiter)) ++p;
      MAAS_CHECK(p == end || *p == delimiter,
                 prefix << ": line " << line << ", column " << column << ": '" << *p
                        << "' after the closing quote of \"" << shown(field)
                        << "\" (expected the delimiter or the end of the line)");
    } else {
      const char* start = p;
      while (p != end && *p != delimiter) ++p;
      const char* stop = p;
      while (stop != start && is_blank(stop[-1], delimiter)) --stop;
      field.assign(start, stop);
    }
    fields.push_back(std::move(field));
    if (p == end) return;
    ++p;  // the delimiter
  }
}

enum class NumberStatus { Ok, Empty, NotANumber, NotFinite, OutOfRange };

// The whole of `s` as a finite float (an optional leading '+' allowed). Read
// as a double then rounded, so that values below float's range become 0 or
// subnormal rather than errors.
NumberStatus parse_number(const std::string& s, float& value) {
  if (s.empty()) return NumberStatus::Empty;
  const char* b = s.data();
  const char* e = b + s.size();
  if (*b == '+' && e - b > 1 && b[1] != '-' && b[1] != '+') ++b;
  double d = 0.0;
  const std::from_chars_result r = std::from_chars(b, e, d);
  if (r.ec == std::errc::result_out_of_range && r.ptr == e) return NumberStatus::OutOfRange;
  if (r.ec != std::errc() || r.ptr != e) return NumberStatus::NotANumber;
  if (!std::isfinite(d)) return NumberStatus::NotFinite;
  if (std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max())) return NumberStatus::OutOfRange;
  value = static_cast<float>(d);
  return NumberStatus::Ok;
}

// "is empty (...)", "'x' is not a number", ...: what is wrong with field `f`.
std::string number_problem(NumberStatus status, const std::string& f) {
  switch (status) {
    case NumberStatus::Empty: return " is empty (missing values are not supported)";
    case NumberStatus::NotFinite: return ": '" + shown(f) + "' is not a finite number";
    case NumberStatus::OutOfRange: return ": " + shown(f) + " is out of float range";
    default: return ": '" + shown(f) + "' is not a number";
  }
}

CsvDataset parse(const char* text, size_t size, const CsvOptions& o, const std::string& name,
                 const std::string& who) {
  const std::string prefix = who + ": " + name;
  MAAS_CHECK(o.delimiter != '"' && o.delimiter != '\r' && o.delimiter != '\n',
             prefix << ": the delimiter cannot be '\"', '\\r' or '\\n'");
  MAAS_CHECK(o.header == CsvHeader::Auto || o.header == CsvHeader::Yes || o.header == CsvHeader::No,
             prefix << ": unknown CsvHeader " << static_cast<int>(o.header));
  const char* p = text;
  const char* end = text + size;
  if (size >= 3 && static_cast<unsigned char>(p[0]) == 0xEF && static_cast<unsigned char>(p[1]) == 0xBB &&
      static_cast<unsigned char>(p[2]) == 0xBF)
    p += 3;  // a UTF-8 byte-order mark, as spreadsheets write

  std::vector<std::string> fields, names;
  std::vector<float> xs, ys;
  int64_t line = 0, columns = 0, label = 0, first_line = 0, rows = 0;
  bool header = false;
  float value = 0.f;
  while (p != end) {
    const char* eol = p;
    while (eol != end && *eol != '\n') ++eol;
    const char* stop = eol;
    if (stop != p && stop[-1] == '\r') --stop;
    const char* next = eol == end ? end : eol + 1;
    ++line;
    const char* q = p;
    while (q != stop && (*q == ' ' || *q == '\t')) ++q;
    if (q == stop) {  // a blank line
      p = next;
      continue;
    }
    split_line(p, stop, o.delimiter, fields, prefix, line);
    p = next;

    if (columns == 0) {  // the first row: the header or data; fixes the columns
      first_line = line;
      columns = static_cast<int64_t>(fields.size());
      header = o.header == CsvHeader::Yes;
      if (o.header == CsvHeader::Auto)
        for (const std::string& f : fields) header = header || parse_number(f, value) == NumberStatus::NotANumber;
      names = header ? fields : std::vector<std::string>(fields.size());
      MAAS_CHECK(columns >= 2, prefix << ": line " << line << " has " << columns
                                      << " column; a table needs at least 2 (features and a label)"
                                      << (o.delimiter == ',' ? " (is the delimiter ',' right?)" : ""));
      if (!o.label_name.empty()) {
        MAAS_CHECK(header, prefix << ": the label column is named '" << o.label_name
                                  << "' but the file has no header row"
                                  << (o.header == CsvHeader::Auto ? " (its first row holds no text)" : ""));
        label = -1;
        for (int64_t c = 0; c < columns; ++c) {
          if (names[static_cast<size_t>(c)] != o.label_name) continue;
          MAAS_CHECK(label < 0, prefix << ": the label column '" << o.label_name
                                       << "' appears twice in the header (columns " << label + 1 << " and "
                                       << c + 1 << ")");
          label = c;
        }
        if (label < 0) {
          std::ostringstream list;
          for (int64_t c = 0; c < columns && c < 10; ++c)
            list << (c ? ", " : "") << "'" << shown(names[static_cast<size_t>(c)]) << "'";
          if (columns > 10) list << ", ... (" << columns << " in all)";
          MAAS_FAIL(prefix << ": no label column '" << o.label_name << "' in the header (line " << line
                           << ": " << list.str() << ")");
        }
      } else {
        MAAS_CHECK(o.label_index >= -columns && o.label_index < columns,
                   prefix << ": label_index " << o.label_index << " is out of range for " << columns
                          << " columns (0.." << columns - 1 << ", or -" << columns << "..-1 from the end)");
        label = o.label_index < 0 ? o.label_index + columns : o.label_index;
      }
      if (header) continue;
    }

    MAAS_CHECK(static_cast<int64_t>(fields.size()) == columns,
               prefix << ": line " << line << " has " << fields.size() << " field" << (fields.size() == 1 ? "" : "s")
                      << ", expected " << columns << " (as line " << first_line << (header ? ", the header" : "")
                      << ")");
    for (int64_t c = 0; c < columns; ++c) {
      const std::string& f = fields[static_cast<size_t>(c)];
      const NumberStatus status = parse_number(f, value);
      if (status != NumberStatus::Ok) {
        std::ostringstream col;
        col << prefix << ": line " << line << ", column " << c + 1;
        if (header) col << " ('" << shown(names[static_cast<size_t>(c)]) << "')";
        MAAS_FAIL(col.str() << number_problem(status, f));
      }
      (c == label ? ys : xs).push_back(value);
    }
    ++rows;
  }
  MAAS_CHECK(columns > 0, prefix << ": the file is empty");
  MAAS_CHECK(rows > 0, prefix << ": the file has a header (line " << first_line << ") but no data rows");

  std::vector<std::string> feature_names;
  for (int64_t c = 0; c < columns; ++c)
    if (c != label) feature_names.push_back(names[static_cast<size_t>(c)]);
  return CsvDataset(Tensor::from_vector(xs, {rows, columns - 1}), Tensor::from_vector(ys, {rows}),
                    std::move(feature_names), names[static_cast<size_t>(label)]);
}

}  // namespace

CsvDataset parse_csv(const char* text, size_t size, const CsvOptions& options, const std::string& name) {
  return parse(text, size, options, name, "parse_csv");
}

CsvDataset load_csv(const std::string& path, const CsvOptions& options) {
  MAAS_CHECK(options.max_bytes < SIZE_MAX, "load_csv: " << path << ": max_bytes must be below SIZE_MAX");
  const std::vector<uint8_t> bytes = read_file_bytes(path, "load_csv", options.max_bytes + 1);
  MAAS_CHECK(bytes.size() <= options.max_bytes, "load_csv: " << path << ": holds more than max_bytes = "
                                                             << options.max_bytes << " bytes (after decompression)");
  return parse(reinterpret_cast<const char*>(bytes.data()), bytes.size(), options, path, "load_csv");
}

Normalize feature_stats(const Tensor& x) {
  MAAS_CHECK(x.defined() && x.dim() == 2 && x.size(0) >= 1,
             "feature_stats: x " << (x.defined() ? to_string(x.shape()) : std::string("(undefined)"))
                                 << " must be [N, F] with at least one row");
  const int64_t n = x.size(0), f = x.size(1);
  const float* d = x.data();
  std::vector<double> mean(static_cast<size_t>(f), 0.0), var(static_cast<size_t>(f), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) mean[static_cast<size_t>(j)] += d[i * f + j];
  for (double& m : mean) m /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) {
      const double e = d[i * f + j] - mean[static_cast<size_t>(j)];
      var[static_cast<size_t>(j)] += e * e;
    }
  Normalize out;
  for (int64_t j = 0; j < f; ++j) {
    const double s = std::sqrt(var[static_cast<size_t>(j)] / static_cast<double>(n));
    out.mean.push_back(static_cast<float>(mean[static_cast<size_t>(j)]));
    out.std.push_back(s > 0.0 ? static_cast<float>(s) : 1.f);
  }
  return out;
}

}  // namespace maas::data
