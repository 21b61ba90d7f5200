// A small SVG writer for the training report: line charts and a heat map,
// as text that is valid inside an XHTML page. Internal; not installed.
//
// Every number written is finite (non-finite data become gaps, never "nan"
// in an attribute), and every text is XML-escaped, so a chart is always
// well-formed XML whatever the data.
//
// What this is not: no general plotting library (no bars, no subplots, no
// dates), no interaction, no JavaScript.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace maas::svg {

// `text` escaped for XML character data and attribute values: & < > " '
// replaced by entities, control characters other than tab and newline
// dropped, and invalid UTF-8 sequences replaced by U+FFFD.
std::string escape(const std::string& text);

// A finite number for an attribute, with at most `decimals` decimals and no
// trailing zeros ("12.5", "3", "-0.25"). Non-finite values write "0".
std::string number(double v, int decimals = 2);

// A short label for a tick at `v` when ticks are `step` apart: enough
// decimals to tell neighbours apart, exponent form for very small or large
// values ("0.5", "1200", "1e-05").
std::string tick_label(double v, double step);

// Tick positions for a linear axis over [lo, hi] (lo < hi): multiples of a
// "nice" step (1, 2 or 5 times a power of ten), at most `max_ticks`, all
// within [lo, hi]. `integer` keeps the step a whole number (epochs).
std::vector<double> linear_ticks(double lo, double hi, int max_ticks, bool integer = false);

// Tick positions for a log axis over [lo, hi] (0 < lo < hi): the powers of
// ten within it, with 2 and 5 times them when fewer than 3 powers fit.
std::vector<double> log_ticks(double lo, double hi);

// The y scale of a chart. Auto: Log when every finite value is > 0 and the
// largest is more than 10 times the smallest (the values span a decade),
// else Linear.
enum class Scale { Auto, Linear, Log };
bool use_log(const std::vector<std::vector<double>>& values, Scale scale);

struct Series {
  std::string name;    // in the legend
  std::string color;   // a CSS colour, "#1f77b4"
  std::vector<double> x, y;  // same length; a non-finite x or y is a gap
  bool dashed = false;
};

struct ChartOptions {
  std::string title;
  std::string x_label = "epoch";
  std::string y_label;
  int width = 520, height = 320;
  Scale y_scale = Scale::Auto;
  bool integer_x = true;      // whole-number x ticks (epochs)
  // Marks each point with a dot when a series has at most this many points
  // (isolated points, between two gaps, are always marked).
  size_t max_markers = 40;
};

// A line chart: a plot area with grid lines, axes with ticks and labels, a
// title, a legend above the plot area and one path per series, broken at
// non-finite values (and at values <= 0 on a log scale). The plot area is a
// <rect class="plot-area">; each series is a <g class="series"
// data-name="..."> holding its path and one <circle> per marked point.
// With no finite point at all the chart says so in the plot area.
std::string line_chart(const std::vector<Series>& series, const ChartOptions& options);

// A confusion matrix as a heat map: n x n `counts` (row-major, row = true
// class, column = predicted class), each cell shaded by its share of the
// row and labelled with its count when it is large enough to hold the text.
// Each cell is a <rect class="cell" data-true="i" data-pred="j"
// data-count="c"/>. `labels`: one per class, or empty for 0..n-1.
std::string heat_map(const std::vector<int64_t>& counts, int64_t n, const std::vector<std::string>& labels,
                     const std::string& title);

}  // namespace maas::svg
