// CSV tables: parsed values for each header, label and format option, files
// plain and gzipped, every bad-input message, and feature_stats.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/gzip_bomb.hpp"
#include "data/temp_dir.hpp"
#include "gradcheck.hpp"
#include "maas/data/csv.hpp"

using namespace maas;
using namespace maas::data;
using maas::test::error_of;

using maas::test::TempDir;

namespace {

CsvDataset parse(const std::string& text, const CsvOptions& options = {}) {
  return parse_csv(text.data(), text.size(), options, "t.csv");
}

std::string parse_error(const std::string& text, const CsvOptions& options = {}) {
  return error_of([&] { parse(text, options); });
}

void write_text(const std::string& path, const std::string& text) {
  maas::test::write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
}

CsvOptions with_label(const std::string& name) {
  CsvOptions o;
  o.label_name = name;
  return o;
}

CsvOptions with_index(int64_t index) {
  CsvOptions o;
  o.label_index = index;
  return o;
}

CsvOptions with_header(CsvHeader h) {
  CsvOptions o;
  o.header = h;
  return o;
}

}  // namespace

TEST_CASE("load_csv: a header, features in order, the label last", "[data]") {
  const CsvDataset d = parse("a,b,label\n1,2,0\n3.5,-4,1\n");
  REQUIRE(d.size() == 2);
  REQUIRE(d.x().shape() == Shape{2, 2});
  REQUIRE(d.y().shape() == Shape{2});
  CHECK(d.x().to_vector() == std::vector<float>{1, 2, 3.5f, -4});
  CHECK(d.y().to_vector() == std::vector<float>{0, 1});
  CHECK(d.feature_names() == std::vector<std::string>{"a", "b"});
  CHECK(d.label_name() == "label");
  CHECK(d.sample_shape() == Shape{2});

  // A TensorDataset like any other: rows gathered by index.
  Tensor x, y;
  d.get_batch({1, 1, 0}, x, y);
  CHECK(x.to_vector() == std::vector<float>{3.5f, -4, 3.5f, -4, 1, 2});
  CHECK(y.to_vector() == std::vector<float>{1, 1, 0});
}

TEST_CASE("load_csv: the header row is detected, forced or refused", "[data]") {
  SECTION("Auto: an all-number first row is data, with unnamed columns") {
    const CsvDataset d = parse("1,2,3\n4,5,6\n");
    CHECK(d.x().to_vector() == std::vector<float>{1, 2, 4, 5});
    CHECK(d.y().to_vector() == std::vector<float>{3, 6});
    CHECK(d.feature_names() == std::vector<std::string>{"", ""});
    CHECK(d.label_name().empty());
  }
  SECTION("Auto: one text field makes the first row a header") {
    const CsvDataset d = parse("1,2,y\n4,5,6\n");
    CHECK(d.size() == 1);
    CHECK(d.feature_names() == std::vector<std::string>{"1", "2"});
    CHECK(d.label_name() == "y");
  }
  SECTION("Auto: an empty or non-finite field does not make a header, but a bad first row") {
    CHECK(parse_error("1,,3\n4,5,6\n") ==
          "parse_csv: t.csv: line 1, column 2 is empty (missing values are not supported)");
    CHECK(parse_error("1,inf,3\n4,5,6\n") == "parse_csv: t.csv: line 1, column 2: 'inf' is not a finite number");
  }
  SECTION("Yes: an all-number first row is the header") {
    const CsvDataset d = parse("1,2,3\n4,5,6\n", with_header(CsvHeader::Yes));
    CHECK(d.size() == 1);
    CHECK(d.x().to_vector() == std::vector<float>{4, 5});
    CHECK(d.y().to_vector() == std::vector<float>{6});
    CHECK(d.feature_names() == std::vector<std::string>{"1", "2"});
    CHECK(d.label_name() == "3");
  }
  SECTION("No: a text first row is a bad data row") {
    CHECK(parse_error("a,b\n1,2\n", with_header(CsvHeader::No)) ==
          "parse_csv: t.csv: line 1, column 1: 'a' is not a number");
  }
}

TEST_CASE("load_csv: the label column by name or index", "[data]") {
  const std::string text = "f1,target,f2\n1,0,2\n3,1,4\n";
  SECTION("by name") {
    const CsvDataset d = parse(text, with_label("target"));
    CHECK(d.x().to_vector() == std::vector<float>{1, 2, 3, 4});
    CHECK(d.y().to_vector() == std::vector<float>{0, 1});
    CHECK(d.feature_names() == std::vector<std::string>{"f1", "f2"});
    CHECK(d.label_name() == "target");
  }
  SECTION("by index from the start") {
    const CsvDataset d = parse(text, with_index(0));
    CHECK(d.x().to_vector() == std::vector<float>{0, 2, 1, 4});
    CHECK(d.y().to_vector() == std::vector<float>{1, 3});
    CHECK(d.feature_names() == std::vector<std::string>{"target", "f2"});
    CHECK(d.label_name() == "f1");
  }
  SECTION("by index from the end") {
    const CsvDataset d = parse(text, with_index(-2));
    CHECK(d.y().to_vector() == std::vector<float>{0, 1});
    CHECK(parse(text, with_index(-3)).label_name() == "f1");
    CHECK(parse(text, with_index(2)).label_name() == "f2");
  }
}

TEST_CASE("load_csv: delimiters, spaces, quotes, line ends and number forms", "[data]") {
  SECTION("';' and tabs, with spaces around fields") {
    const CsvDataset d = parse(" a ; b\n 1 ;2 \n", [] {
      CsvOptions o;
      o.delimiter = ';';
      return o;
    }());
    CHECK(d.feature_names() == std::vector<std::string>{"a"});
    CHECK(d.label_name() == "b");
    CHECK(d.x().to_vector() == std::vector<float>{1});
    CHECK(d.y().to_vector() == std::vector<float>{2});

    CsvOptions tab;
    tab.delimiter = '\t';
    const CsvDataset t = parse("x y\tz\n1.5\t-2\n", tab);  // a space inside a name
    CHECK(t.feature_names() == std::vector<std::string>{"x y"});
    CHECK(t.x().to_vector() == std::vector<float>{1.5f});
    CHECK(t.y().to_vector() == std::vector<float>{-2});
  }
  SECTION("CRLF, blank lines, a byte-order mark, no final newline") {
    const CsvDataset d = parse("\xEF\xBB\xBF" "a,b\r\n\r\n1,2\r\n   \n3,4");
    CHECK(d.feature_names() == std::vector<std::string>{"a"});
    CHECK(d.x().to_vector() == std::vector<float>{1, 3});
    CHECK(d.y().to_vector() == std::vector<float>{2, 4});
  }
  SECTION("quoted fields: delimiters and doubled quotes inside, numbers quoted") {
    const CsvDataset d = parse("\"w, h\",\"say \"\"hi\"\"\", \"y\" \n\"1.5\",2,\"0\"\n");
    CHECK(d.feature_names() == std::vector<std::string>{"w, h", "say \"hi\""});
    CHECK(d.label_name() == "y");
    CHECK(d.x().to_vector() == std::vector<float>{1.5f, 2});
    CHECK(d.y().to_vector() == std::vector<float>{0});
  }
  SECTION("signs, exponents, no leading digit; tiny values round to float") {
    const CsvDataset d = parse("+1.5,-2e3,.25,1E-2,-0,1e-50,7\n");
    CHECK(d.x().to_vector() == std::vector<float>{1.5f, -2000, 0.25f, 0.01f, -0.f, 0.f});
    CHECK(d.y().to_vector() == std::vector<float>{7});
  }
}

TEST_CASE("load_csv: files, plain and gzipped", "[data]") {
  TempDir dir("csv");
  write_text(dir / "t.csv", "a,b,y\n1,2,0\n3,4,1\n");
  const CsvDataset d = load_csv(dir / "t.csv");
  CHECK(d.x().to_vector() == std::vector<float>{1, 2, 3, 4});
  CHECK(d.y().to_vector() == std::vector<float>{0, 1});

  const std::string text = "a,y\n5,1\n";
  gzFile f = gzopen((dir / "t.csv.gz").c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, text.data(), static_cast<unsigned>(text.size())) == static_cast<int>(text.size()));
  REQUIRE(gzclose(f) == Z_OK);
  const CsvDataset g = load_csv(dir / "t.csv.gz");
  CHECK(g.x().to_vector() == std::vector<float>{5});
  CHECK(g.y().to_vector() == std::vector<float>{1});
}

TEST_CASE("load_csv: a file over max_bytes, or a gzip bomb, stops at the limit", "[data]") {
  TempDir dir("csv");
  // 64 MiB of zeros after a valid header row, from about 64 KB on disk.
  const std::string head = "a,y\n1,0\n";
  maas::test::write_gzip_bomb(dir / "bomb.csv.gz", std::vector<uint8_t>(head.begin(), head.end()), 64);
  CsvOptions o;
  o.max_bytes = size_t{1} << 20;
  CHECK_THAT(error_of([&] { load_csv(dir / "bomb.csv.gz", o); }),
             Catch::Contains("bomb.csv.gz: holds more than max_bytes = 1048576 bytes"));
  write_text(dir / "t.csv", "a,y\n1,0\n");
  o.max_bytes = 7;
  CHECK_THAT(error_of([&] { load_csv(dir / "t.csv", o); }), Catch::Contains("more than max_bytes = 7"));
  o.max_bytes = 8;  // exactly the file's size
  CHECK(load_csv(dir / "t.csv", o).y().to_vector() == std::vector<float>{0});
}

TEST_CASE("load_csv: each bad file names the file and the problem", "[data]") {
  TempDir dir("csv_bad");
  SECTION("missing, a directory, empty, blank lines only, a header only") {
    const std::string missing = dir / "missing.csv";
    CHECK(error_of([&] { load_csv(missing); }) == "load_csv: " + missing + ": no such file");
    std::filesystem::create_directory(dir / "sub");
    CHECK(error_of([&] { load_csv(dir / "sub"); }) == "load_csv: " + (dir / "sub") + ": not a regular file");
    write_text(dir / "empty.csv", "");
    CHECK(error_of([&] { load_csv(dir / "empty.csv"); }) == "load_csv: " + (dir / "empty.csv") + ": the file is empty");
    CHECK(parse_error("\n \r\n\n") == "parse_csv: t.csv: the file is empty");
    CHECK(parse_error("a,b\n\n") == "parse_csv: t.csv: the file has a header (line 1) but no data rows");
  }
  SECTION("ragged rows: which line, how many fields, how many expected") {
    CHECK(parse_error("a,b,c\n1,2,3\n\n4,5\n") ==
          "parse_csv: t.csv: line 4 has 2 fields, expected 3 (as line 1, the header)");
    CHECK(parse_error("\n1,2\n3,4,5\n") == "parse_csv: t.csv: line 3 has 3 fields, expected 2 (as line 2)");
    CHECK(parse_error("1,2\n3\n") == "parse_csv: t.csv: line 2 has 1 field, expected 2 (as line 1)");
  }
  SECTION("fields that are not finite floats: line, column (and its name), text") {
    CHECK(parse_error("a,b\n1,2\n3,abc\n") == "parse_csv: t.csv: line 3, column 2 ('b'): 'abc' is not a number");
    CHECK(parse_error("1,2\n3,4x\n") == "parse_csv: t.csv: line 2, column 2: '4x' is not a number");
    CHECK(parse_error("a,b\n,2\n") ==
          "parse_csv: t.csv: line 2, column 1 ('a') is empty (missing values are not supported)");
    CHECK(parse_error("a,b\n1,nan\n") == "parse_csv: t.csv: line 2, column 2 ('b'): 'nan' is not a finite number");
    CHECK(parse_error("a,b\n-inf,1\n") == "parse_csv: t.csv: line 2, column 1 ('a'): '-inf' is not a finite number");
    CHECK(parse_error("a,b\n1e39,1\n") == "parse_csv: t.csv: line 2, column 1 ('a'): 1e39 is out of float range");
    CHECK(parse_error("a,b\n1,++2\n") == "parse_csv: t.csv: line 2, column 2 ('b'): '++2' is not a number");
  }
  SECTION("the label column is missing") {
    CHECK(parse_error("a,b,c\n1,2,3\n", with_label("y")) ==
          "parse_csv: t.csv: no label column 'y' in the header (line 1: 'a', 'b', 'c')");
    CHECK(parse_error("1,2\n", with_label("y")) ==
          "parse_csv: t.csv: the label column is named 'y' but the file has no header row (its first row holds no "
          "text)");
    CHECK(parse_error("a,y,y\n1,2,3\n", with_label("y")) ==
          "parse_csv: t.csv: the label column 'y' appears twice in the header (columns 2 and 3)");
    CHECK(parse_error("a,b,c\n1,2,3\n", with_index(3)) ==
          "parse_csv: t.csv: label_index 3 is out of range for 3 columns (0..2, or -3..-1 from the end)");
    CHECK(parse_error("a,b,c\n1,2,3\n", with_index(-4)) ==
          "parse_csv: t.csv: label_index -4 is out of range for 3 columns (0..2, or -3..-1 from the end)");
    CHECK(parse_error("a;b\n1;2\n") ==
          "parse_csv: t.csv: line 1 has 1 column; a table needs at least 2 (features and a label) (is the "
          "delimiter ',' right?)");
  }
  SECTION("broken quotes, a bad delimiter") {
    CHECK(parse_error("a,\"b\n1,2\n") ==
          "parse_csv: t.csv: line 1, column 2: a quoted field has no closing quote (fields cannot span lines)");
    CHECK(parse_error("a,\"b\"c\n1,2\n") ==
          "parse_csv: t.csv: line 1, column 2: 'c' after the closing quote of \"b\" (expected the delimiter or the "
          "end of the line)");
    CsvOptions quote;
    quote.delimiter = '"';
    CHECK(parse_error("a,b\n1,2\n", quote) == "parse_csv: t.csv: the delimiter cannot be '\"', '\\r' or '\\n'");
  }
  SECTION("a long field is cut short in the message") {
    const std::string long_field(50, 'z');
    CHECK(parse_error("a,b\n1," + long_field + "\n") ==
          "parse_csv: t.csv: line 2, column 2 ('b'): '" + std::string(37, 'z') + "...' is not a number");
  }
}

TEST_CASE("feature_stats: column means and population stds, std 1 for a constant column", "[data]") {
  // Column 0: 1, 3, 5: mean 3, variance (4 + 0 + 4) / 3 = 8/3. Column 1: constant 10.
  Tensor x = Tensor::from_vector({1, 10, 3, 10, 5, 10}, {3, 2});
  const Normalize n = feature_stats(x);
  REQUIRE(n.mean.size() == 2);
  REQUIRE(n.std.size() == 2);
  CHECK(n.mean[0] == Approx(3.0f));
  CHECK(n.std[0] == Approx(std::sqrt(8.0f / 3.0f)));
  CHECK(n.mean[1] == Approx(10.0f));
  CHECK(n.std[1] == 1.0f);

  normalize_(x, n);  // (v - 3) / 1.63299: -1.22474, 0, 1.22474; the constant column becomes 0
  maas::test::require_close(x, {-1.2247449f, 0, 0, 0, 1.2247449f, 0});

  MAAS_REQUIRE_THROWS_WITH(feature_stats(Tensor::zeros({3})), "feature_stats: x [3] must be [N, F]");
  MAAS_REQUIRE_THROWS_WITH(feature_stats(Tensor::zeros({0, 2})),
                           "feature_stats: x [0,2] must be [N, F] with at least one row");
  MAAS_REQUIRE_THROWS_WITH(feature_stats(Tensor()), "feature_stats: x (undefined)");
}
