// The report's SVG writer: escaping, numbers, ticks, charts that stay
// well-formed with any data, gaps for NaN/Inf, 1 and 300 epochs, heat maps.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "maas/error.hpp"
#include "report/svg.hpp"
#include "report/xml.hpp"

using namespace maas;
using maas::test::parse_xml;
using maas::test::XmlElement;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// The numbers in a path's d attribute, and how many subpaths ("M") it has.
std::vector<double> path_numbers(const std::string& d, int& moves, int& lines) {
  std::vector<double> out;
  moves = lines = 0;
  for (size_t i = 0; i < d.size();) {
    if (d[i] == 'M') ++moves, ++i;
    else if (d[i] == 'L') ++lines, ++i;
    else if (d[i] == ' ') ++i;
    else {
      char* end = nullptr;
      out.push_back(std::strtod(d.c_str() + i, &end));
      REQUIRE(end != d.c_str() + i);
      i = static_cast<size_t>(end - d.c_str());
    }
  }
  return out;
}

// Every numeric attribute of every element is a finite number.
void check_numbers(const XmlElement& e) {
  for (const char* k : {"x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height"}) {
    const std::string v = e.attr(k);
    if (v.empty()) continue;
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    INFO("<" << e.name << " " << k << "=\"" << v << "\">");
    CHECK(*end == '\0');
    CHECK(std::isfinite(d));
  }
  if (e.name == "path") {
    int m = 0, l = 0;
    for (double d : path_numbers(e.attr("d"), m, l)) CHECK(std::isfinite(d));
  }
  for (const auto& c : e.children) check_numbers(*c);
}

svg::Series make(const std::string& name, const std::vector<double>& y) {
  svg::Series s;
  s.name = name;
  s.color = "#1f77b4";
  for (size_t i = 0; i < y.size(); ++i) s.x.push_back(static_cast<double>(i + 1));
  s.y = y;
  return s;
}

const XmlElement* series_group(const XmlElement& root, const std::string& name) {
  for (const XmlElement* g : root.all("g"))
    if (g->attr("class") == "series" && g->attr("data-name") == name) return g;
  return nullptr;
}

}  // namespace

TEST_CASE("svg::escape makes any text safe XML", "[report]") {
  CHECK(svg::escape("a<b&c>\"d'") == "a&lt;b&amp;c&gt;&quot;d&#39;");
  CHECK(svg::escape("caf\xC3\xA9") == "caf\xC3\xA9");            // valid UTF-8 kept
  CHECK(svg::escape("x\x01y\x7Fz") == "xy\x7Fz");                  // control characters dropped
  CHECK(svg::escape("bad\xFF") == "bad\xEF\xBF\xBD");              // invalid byte: U+FFFD
  CHECK(svg::escape("\xC0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD");    // overlong NUL
  CHECK(svg::escape("\xED\xA0\x80").find("\xED") == std::string::npos);  // a surrogate
  CHECK(svg::escape("cut\xE2\x82") == "cut\xEF\xBF\xBD\xEF\xBF\xBD");     // truncated sequence
  // Whatever the bytes, the result parses inside an element.
  std::string all;
  for (int c = 1; c < 256; ++c) all += static_cast<char>(c);
  const auto doc = parse_xml("<t a=\"" + svg::escape(all) + "\">" + svg::escape(all) + "</t>");
  CHECK(doc->text.find("<=>") != std::string::npos);
  CHECK(doc->attr("a").find("&'(") != std::string::npos);
}

TEST_CASE("svg::number writes short finite numbers", "[report]") {
  CHECK(svg::number(12.5) == "12.5");
  CHECK(svg::number(3.0) == "3");
  CHECK(svg::number(-0.001) == "0");
  CHECK(svg::number(2.345, 1) == "2.3");
  CHECK(svg::number(kNaN) == "0");
  CHECK(svg::number(-kInf) == "0");
}

TEST_CASE("svg tick labels and linear ticks", "[report]") {
  CHECK(svg::tick_label(0.25, 0.25) == "0.25");
  CHECK(svg::tick_label(0.5, 0.1) == "0.5");
  CHECK(svg::tick_label(0.4, 0.2) == "0.4");
  CHECK(svg::tick_label(1200, 200) == "1200");
  CHECK(svg::tick_label(1e-5, 1e-5) == "1e-05");
  CHECK(svg::tick_label(2e6, 1e6) == "2e+06");
  CHECK(svg::tick_label(1e-17, 0.1) == "0");

  CHECK(svg::linear_ticks(0, 1, 6) == std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1});
  CHECK(svg::linear_ticks(1, 300, 8, true) == std::vector<double>{50, 100, 150, 200, 250, 300});
  CHECK(svg::linear_ticks(0.5, 1.5, 8, true) == std::vector<double>{1});
  CHECK(svg::linear_ticks(1, 2, 8, true) == std::vector<double>{1, 2});
  CHECK(svg::linear_ticks(-3, -1, 3) == std::vector<double>{-3, -2, -1});
  CHECK(svg::linear_ticks(1, 1, 5).empty());
  // At most max_ticks, inside the range, evenly spaced, for ranges of every size.
  for (double lo : {-1e300, -7.3, 0.0, 0.001, 3.0})
    for (double span : {1e-9, 0.37, 1.0, 9.9, 1234.0, 1e300})
      for (int max : {2, 5, 9}) {
        const double hi = lo + span;
        if (hi == lo) continue;  // below the precision of lo
        const std::vector<double> t = svg::linear_ticks(lo, hi, max);
        INFO("[" << lo << ", " << hi << "] max " << max);
        REQUIRE(t.size() >= (max >= 5 ? 2u : 1u));  // 1, 2 or 5 times a power of ten
        CHECK(static_cast<int>(t.size()) <= max);
        for (double v : t) CHECK((v >= lo - std::fabs(span) * 1e-6 && v <= hi + std::fabs(span) * 1e-6));
        for (size_t i = 2; i < t.size(); ++i) CHECK(t[i] - t[i - 1] == Approx(t[1] - t[0]));
      }
}

TEST_CASE("svg log ticks and the choice of a log scale", "[report]") {
  CHECK(svg::log_ticks(0.01, 10) == std::vector<double>{0.01, 0.1, 1, 10});
  CHECK(svg::log_ticks(0.15, 3) == std::vector<double>{0.2, 0.5, 1, 2});
  CHECK(svg::log_ticks(1e-12, 1e12).size() <= 9);
  CHECK(svg::log_ticks(0, 1).empty());

  CHECK(svg::use_log({{2.3, 1.0, 0.1}}, svg::Scale::Auto));         // 23x: spans a decade
  CHECK_FALSE(svg::use_log({{0.9, 0.3}}, svg::Scale::Auto));          // 3x
  CHECK(svg::use_log({{2.0, kNaN}, {kInf, 0.05}}, svg::Scale::Auto));  // non-finite ignored
  CHECK_FALSE(svg::use_log({{2.0, 0.0001, -1.0}}, svg::Scale::Auto));  // a value <= 0
  CHECK_FALSE(svg::use_log({{2.0, 0.0001}}, svg::Scale::Linear));
  CHECK(svg::use_log({{0.9, 0.8}}, svg::Scale::Log));
}

TEST_CASE("svg line chart: one epoch is one marked point", "[report]") {
  svg::ChartOptions o;
  o.title = "Loss";
  o.y_label = "loss";
  const auto doc = parse_xml(svg::line_chart({make("training", {0.7})}, o));
  check_numbers(*doc);
  CHECK(doc->name == "svg");
  const XmlElement* g = series_group(*doc, "training");
  REQUIRE(g != nullptr);
  CHECK(g->all("circle").size() == 1);
  int m = 0, l = 0;
  path_numbers(g->all("path").at(0)->attr("d"), m, l);
  CHECK((m == 1 && l == 0));
  // The single epoch has its tick, labelled 1.
  bool one = false;
  for (const XmlElement* t : doc->all("g"))
    if (t->attr("class") == "x-ticks")
      for (const XmlElement* txt : t->all("text")) one = one || txt->text == "1";
  CHECK(one);
  CHECK(doc->all_text().find("Loss") != std::string::npos);
}

TEST_CASE("svg line chart: 300 epochs give one point each and few ticks", "[report]") {
  std::vector<double> y;
  for (int i = 0; i < 300; ++i) y.push_back(2.0 * std::exp(-i / 60.0));
  svg::ChartOptions o;
  const auto doc = parse_xml(svg::line_chart({make("training", y)}, o));
  check_numbers(*doc);
  const XmlElement* g = series_group(*doc, "training");
  REQUIRE(g != nullptr);
  int m = 0, l = 0;
  const std::vector<double> xy = path_numbers(g->all("path").at(0)->attr("d"), m, l);
  CHECK(m + l == 300);
  CHECK(xy.size() == 600);
  CHECK(g->all("circle").empty());  // too many points for dots
  // x strictly increasing: one point per epoch, in order.
  for (size_t i = 2; i < xy.size(); i += 2) CHECK(xy[i] > xy[i - 2]);
  size_t xticks = 0;
  for (const XmlElement* t : doc->all("g"))
    if (t->attr("class") == "x-ticks") xticks = t->all("text").size();
  CHECK((xticks >= 3 && xticks <= 10));
  // 2 .. 0.014 spans two decades: a log scale, labelled so.
  CHECK(doc->all_text().find("log scale") != std::string::npos);
}

TEST_CASE("svg line chart: NaN and Inf are gaps, never broken SVG", "[report]") {
  const auto doc = parse_xml(svg::line_chart({make("loss", {1.0, kNaN, 2.0, 3.0, kInf, 4.0, -kInf})}, {}));
  check_numbers(*doc);
  const XmlElement* g = series_group(*doc, "loss");
  REQUIRE(g != nullptr);
  int m = 0, l = 0;
  path_numbers(g->all("path").at(0)->attr("d"), m, l);
  CHECK(m == 3);  // [1], [2, 3], [4]
  CHECK(l == 1);
  CHECK(g->all("circle").size() == 4);  // the four finite points

  // Nothing finite: an empty plot that says so.
  const auto none = parse_xml(svg::line_chart({make("loss", {kNaN, kInf})}, {}));
  check_numbers(*none);
  CHECK(none->all_text().find("no finite values") != std::string::npos);
  CHECK(series_group(*none, "loss")->all("path").empty());

  // No series at all, and the extremes of double.
  check_numbers(*parse_xml(svg::line_chart({}, {})));
  const auto huge = parse_xml(svg::line_chart({make("x", {-1.7e308, 1.7e308, 0.0})}, {}));
  check_numbers(*huge);
  path_numbers(series_group(*huge, "x")->all("path").at(0)->attr("d"), m, l);
  CHECK(m + l == 3);
}

TEST_CASE("svg line chart: legend, escaped names, values <= 0 on a log scale", "[report]") {
  svg::ChartOptions o;
  o.y_scale = svg::Scale::Log;
  o.title = "a <b> & c";
  svg::Series s = make("val <x>", {1.0, 0.0, 0.1});
  s.dashed = true;
  const auto doc = parse_xml(svg::line_chart({make("train", {1.0, 0.5, 0.2}), s}, o));
  check_numbers(*doc);
  std::vector<std::string> legend;
  for (const XmlElement* g : doc->all("g"))
    if (g->attr("class") == "legend") legend.push_back(g->all("text").at(0)->text);
  CHECK(legend == std::vector<std::string>{"train", "val <x>"});
  const XmlElement* g = series_group(*doc, "val <x>");
  REQUIRE(g != nullptr);
  int m = 0, l = 0;
  path_numbers(g->all("path").at(0)->attr("d"), m, l);
  CHECK(m == 2);  // 0 cannot be drawn on a log scale
  CHECK(doc->all_text().find("a <b> & c") != std::string::npos);
}

TEST_CASE("svg heat map: one cell per count, labelled", "[report]") {
  const std::vector<int64_t> counts = {5, 1, 0, 2, 7, 1, 0, 0, 9};
  const auto doc = parse_xml(svg::heat_map(counts, 3, {"<cat>", "dog", "bird"}, "Confusion"));
  check_numbers(*doc);
  std::vector<const XmlElement*> cells;
  for (const XmlElement* r : doc->all("rect"))
    if (r->attr("class") == "cell") cells.push_back(r);
  REQUIRE(cells.size() == 9);
  for (const XmlElement* c : cells) {
    const int i = std::stoi(c->attr("data-true")), j = std::stoi(c->attr("data-pred"));
    CHECK(std::stoll(c->attr("data-count")) == counts[static_cast<size_t>(i * 3 + j)]);
  }
  const std::string text = doc->all_text();
  CHECK(text.find("<cat>") != std::string::npos);
  CHECK(text.find("predicted class") != std::string::npos);
  // The diagonal's largest share is the darkest fill.
  CHECK(cells[8]->attr("fill") == "#08306b");
  CHECK(cells[2]->attr("fill") == "#f7fbff");
  CHECK_THROWS_AS(svg::heat_map({1, 2, 3}, 2, {}, ""), Error);
  check_numbers(*parse_xml(svg::heat_map({}, 0, {}, "")));
  // Many classes: small cells, still one per count.
  std::vector<int64_t> big(40 * 40, 3);
  const auto many = parse_xml(svg::heat_map(big, 40, {}, ""));
  CHECK(many->all("rect").size() == 40 * 40);
  CHECK(many->all("text").size() == 2 + 40 * 2);  // axis titles and class names; no counts in 11-pixel cells
}
