// The report's SVG writer: escaping, numbers, ticks, line charts, heat maps.
#include "report/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "maas/error.hpp"

namespace maas::svg {

namespace {

constexpr double kCharWidth = 6.6;  // mean width of a 11px sans-serif character, for layout

bool valid(double x, double y, bool log) { return std::isfinite(x) && std::isfinite(y) && (!log || y > 0); }

double text_width(const std::string& s, double char_width = kCharWidth) {
  size_t chars = 0;  // UTF-8 code points
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return static_cast<double>(chars) * char_width;
}

// At most `max` code points of `s`, with "..." when cut.
std::string shorten(const std::string& s, size_t max) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && ++chars > max) return s.substr(0, i) + "...";
  }
  return s;
}

// Maps [lo, hi] onto [a, b]; halves first so that hi - lo cannot overflow.
struct Axis {
  double lo, hi, a, b;
  double operator()(double v) const {
    const double t = (v / 2 - lo / 2) / (hi / 2 - lo / 2);
    return a + t * (b - a);
  }
};

double nice_step(double raw, bool integer) {
  if (!(raw > 0) || !std::isfinite(raw)) return 1.0;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * p;
  for (double m : {1.0, 2.0, 5.0})
    if (m * p >= raw * (1 - 1e-9)) {
      step = m * p;
      break;
    }
  return integer ? std::max(1.0, std::round(step)) : step;
}

// The next nice step after `step`: 1 -> 2 -> 5 -> 10.
double next_step(double step) {
  const double p = std::pow(10.0, std::floor(std::log10(step) + 1e-9));
  const double m = step / p;
  return m < 1.5 ? 2 * p : m < 3.5 ? 5 * p : 10 * p;
}

// The nice step before `step`: 10 -> 5 -> 2 -> 1.
double prev_step(double step) {
  const double p = std::pow(10.0, std::floor(std::log10(step) + 1e-9));
  const double m = step / p;
  return m < 1.5 ? 0.5 * p : m < 3.5 ? p : 2 * p;
}

}  // namespace

std::string escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default:
          if (c >= 0x20 || c == '\t' || c == '\n') out += static_cast<char>(c);
          else if (c == '\r') out += ' ';
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: its length from the lead byte, then continuation
    // bytes, no overlong forms, no surrogates, nothing above U+10FFFF.
    size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (c > 0xF4) len = 0;
    bool ok = len > 0 && i + len <= n;
    uint32_t cp = ok ? (c & (0xFF >> (len + 1))) : 0;
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned char d = static_cast<unsigned char>(text[i + k]);
      ok = (d & 0xC0) == 0x80;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (ok) ok = !(len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) && !(len == 4 && (cp < 0x10000 || cp > 0x10FFFF));
    // U+FFFE and U+FFFF are not XML characters either.
    if (ok && (cp == 0xFFFE || cp == 0xFFFF)) ok = false;
    if (ok) {
      out.append(text, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string number(double v, int decimals) {
  if (!std::isfinite(v)) return "0";
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.*f", std::clamp(decimals, 0, 12), v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

std::string tick_label(double v, double step) {
  if (!std::isfinite(v)) return "";
  if (v == 0 || std::fabs(v) < std::fabs(step) * 1e-9) return "0";
  char buf[64];
  const double a = std::fabs(v);
  if (a >= 1e6 || a < 1e-4) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
  }
  const double s = std::fabs(step) > 0 && std::isfinite(step) ? std::fabs(step) : a;
  int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(s) - 1e-9)));
  while (decimals < 8) {  // 0.25 needs 2 decimals, not 1
    const double scaled = s * std::pow(10.0, decimals);
    if (std::fabs(scaled - std::round(scaled)) < 1e-6 * std::max(1.0, scaled)) break;
    ++decimals;
  }
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::vector<double> linear_ticks(double lo, double hi, int max_ticks, bool integer) {
  if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi)) return {};
  max_ticks = std::max(max_ticks, 2);
  const size_t max = static_cast<size_t>(max_ticks);
  auto make = [&](double step) {
    std::vector<double> ticks;
    const double first = std::ceil(lo / step - 1e-9);
    for (double k = first; ticks.size() <= max; ++k) {
      double v = k * step;
      if (std::fabs(v) < step * 1e-9) v = 0;
      if (v > hi + step * 1e-9 || !std::isfinite(v)) break;
      ticks.push_back(v);
    }
    return ticks;
  };
  double step = nice_step(hi / (max_ticks - 1) - lo / (max_ticks - 1), integer);
  std::vector<double> ticks = make(step);
  for (int tries = 0; ticks.size() > max && tries < 64; ++tries) ticks = make(step = next_step(step));
  // A step as wide as the range may leave fewer than two multiples in it.
  for (int tries = 0; ticks.size() < 2 && tries < 64; ++tries) {
    const double smaller = prev_step(step);
    if (integer && smaller < 1) break;
    std::vector<double> more = make(smaller);
    if (more.size() > max) break;
    step = smaller;
    ticks = std::move(more);
  }
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  if (!(lo > 0) || !(lo < hi) || !std::isfinite(hi)) return ticks;
  const int e0 = static_cast<int>(std::floor(std::log10(lo))), e1 = static_cast<int>(std::ceil(std::log10(hi)));
  std::vector<double> powers;
  for (int e = e0; e <= e1; ++e) {
    const double p = std::pow(10.0, e);
    if (p >= lo * (1 - 1e-12) && p <= hi * (1 + 1e-12)) powers.push_back(p);
  }
  const int every = std::max(1, static_cast<int>(powers.size() + 7) / 8);  // at most ~8 labels
  if (powers.size() >= 3) {
    for (size_t i = 0; i < powers.size(); i += every) ticks.push_back(powers[i]);
    return ticks;
  }
  for (int e = e0; e <= e1; ++e)
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = m * std::pow(10.0, e);
      if (v >= lo * (1 - 1e-12) && v <= hi * (1 + 1e-12)) ticks.push_back(v);
    }
  return ticks;
}

bool use_log(const std::vector<std::vector<double>>& values, Scale scale) {
  if (scale != Scale::Auto) return scale == Scale::Log;
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const auto& vs : values)
    for (double v : vs) {
      if (!std::isfinite(v)) continue;
      if (v <= 0) return false;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  return hi > 0 && hi > 10 * lo;
}

std::string line_chart(const std::vector<Series>& series, const ChartOptions& o) {
  const double W = std::max(o.width, 160), H = std::max(o.height, 120);
  std::vector<std::vector<double>> ys;
  for (const Series& s : series) ys.push_back(s.y);
  const bool log = use_log(ys, o.y_scale);

  // Data ranges over the points that can be drawn.
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const Series& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!valid(s.x[i], s.y[i], log)) continue;
      xlo = std::min(xlo, s.x[i]);
      xhi = std::max(xhi, s.x[i]);
      const double y = log ? std::log10(s.y[i]) : s.y[i];
      ylo = std::min(ylo, y);
      yhi = std::max(yhi, y);
    }
  const bool empty = !(xlo <= xhi);
  if (empty) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (xlo == xhi) {
    xlo -= o.integer_x ? 0.5 : 1, xhi += o.integer_x ? 0.5 : 1;
  } else {  // the first and last points clear of the frame
    const double pad = (xhi / 2 - xlo / 2) * 0.04;
    xlo -= pad, xhi += pad;
  }
  if (!std::isfinite(xlo)) xlo = -std::numeric_limits<double>::max();
  if (!std::isfinite(xhi)) xhi = std::numeric_limits<double>::max();
  if (ylo == yhi) {
    const double d = log ? 0.3 : (ylo == 0 ? 1.0 : std::fabs(ylo) * 0.1);
    ylo -= d, yhi += d;
  } else {
    const double pad = (yhi / 2 - ylo / 2) * 0.1;  // 5% of the span each side
    ylo -= pad, yhi += pad;
  }
  if (!std::isfinite(ylo)) ylo = -std::numeric_limits<double>::max();
  if (!std::isfinite(yhi)) yhi = std::numeric_limits<double>::max();

  // The y ticks first: their labels' width sets the left margin. Their
  // number follows the plot's height, estimated with one legend row.
  const int max_yticks = std::max(2, static_cast<int>((H - 44 - (o.title.empty() ? 8 : 26) - 24) / 32));
  std::vector<double> yt;
  if (log) {
    for (double v : log_ticks(std::pow(10.0, ylo), std::pow(10.0, yhi))) yt.push_back(v);
  } else {
    yt = linear_ticks(ylo, yhi, max_yticks, false);
  }
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  std::vector<std::string> ylabels;
  double ylabel_w = 0;
  for (double v : yt) {
    ylabels.push_back(tick_label(v, log ? v : ystep));
    ylabel_w = std::max(ylabel_w, text_width(ylabels.back(), 6.2));
  }

  // Legend rows above the plot area.
  const double left = std::max(50.0, 26 + ylabel_w + 12), right = W - 16;
  std::vector<std::vector<size_t>> rows(1);
  double row_x = left;
  for (size_t i = 0; i < series.size(); ++i) {
    const double w = 26 + text_width(series[i].name) + 14;
    if (row_x + w > right && !rows.back().empty()) {
      rows.emplace_back();
      row_x = left;
    }
    rows.back().push_back(i);
    row_x += w;
  }
  const double title_h = o.title.empty() ? 8 : 26;
  const double legend_h = series.empty() ? 0 : 16.0 * rows.size();
  const double top = title_h + legend_h + 8, bottom = H - 44;
  const Axis ax{xlo, xhi, left, right}, ay{ylo, yhi, bottom, top};

  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << number(W) << "\" height=\""
     << number(H) << "\" viewBox=\"0 0 " << number(W) << " " << number(H) << "\" font-family=\"sans-serif\" "
     << "font-size=\"11\">\n";
  if (!o.title.empty())
    os << "<text x=\"" << number(left) << "\" y=\"17\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">"
       << escape(o.title) << "</text>\n";
  // Legend.
  for (size_t r = 0; r < rows.size(); ++r) {
    double x = left;
    const double y = title_h + 8 + 16.0 * r;
    for (size_t i : rows[r]) {
      const Series& s = series[i];
      os << "<g class=\"legend\"><line x1=\"" << number(x) << "\" y1=\"" << number(y) << "\" x2=\"" << number(x + 20)
         << "\" y2=\"" << number(y) << "\" stroke=\"" << escape(s.color) << "\" stroke-width=\"3\""
         << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << "/><text x=\"" << number(x + 26) << "\" y=\""
         << number(y + 4) << "\" fill=\"#333\">" << escape(s.name) << "</text></g>\n";
      x += 26 + text_width(s.name) + 14;
    }
  }
  // Plot area, grid and ticks.
  os << "<rect class=\"plot-area\" x=\"" << number(left) << "\" y=\"" << number(top) << "\" width=\""
     << number(right - left) << "\" height=\"" << number(bottom - top) << "\" fill=\"#f4f6fa\" stroke=\"#9aa\"/>\n";
  const int max_xticks = std::max(2, static_cast<int>((right - left) / 60));
  const std::vector<double> xt = linear_ticks(xlo, xhi, max_xticks, o.integer_x);
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  os << "<g class=\"x-ticks\" text-anchor=\"middle\" fill=\"#333\">\n";
  for (double v : xt) {
    const double x = ax(v);
    os << "<line x1=\"" << number(x) << "\" y1=\"" << number(top) << "\" x2=\"" << number(x) << "\" y2=\""
       << number(bottom) << "\" stroke=\"#dde2ea\"/><line x1=\"" << number(x) << "\" y1=\"" << number(bottom)
       << "\" x2=\"" << number(x) << "\" y2=\"" << number(bottom + 5) << "\" stroke=\"#555\"/><text x=\"" << number(x)
       << "\" y=\"" << number(bottom + 17) << "\">" << escape(tick_label(v, xstep)) << "</text>\n";
  }
  os << "</g>\n";
  os << "<g class=\"y-ticks\" text-anchor=\"end\" fill=\"#333\">\n";
  for (size_t k = 0; k < yt.size(); ++k) {
    const double v = yt[k];
    const double y = ay(log ? std::log10(v) : v);
    os << "<line x1=\"" << number(left) << "\" y1=\"" << number(y) << "\" x2=\"" << number(right) << "\" y2=\""
       << number(y) << "\" stroke=\"#dde2ea\"/><line x1=\"" << number(left - 5) << "\" y1=\"" << number(y)
       << "\" x2=\"" << number(left) << "\" y2=\"" << number(y) << "\" stroke=\"#555\"/><text x=\""
       << number(left - 8) << "\" y=\"" << number(y + 4) << "\">" << escape(ylabels[k]) << "</text>\n";
  }
  os << "</g>\n";
  // Axis labels.
  if (!o.x_label.empty())
    os << "<text x=\"" << number((left + right) / 2) << "\" y=\"" << number(H - 8)
       << "\" text-anchor=\"middle\" fill=\"#333\">" << escape(o.x_label) << "</text>\n";
  if (!o.y_label.empty() || log) {
    const std::string label = o.y_label + (log ? (o.y_label.empty() ? "log scale" : " (log scale)") : "");
    const double cy = (top + bottom) / 2;
    os << "<text x=\"14\" y=\"" << number(cy) << "\" transform=\"rotate(-90 14 " << number(cy)
       << ")\" text-anchor=\"middle\" fill=\"#333\">" << escape(label) << "</text>\n";
  }
  if (empty)
    os << "<text x=\"" << number((left + right) / 2) << "\" y=\"" << number((top + bottom) / 2)
       << "\" text-anchor=\"middle\" fill=\"#888\">no finite values</text>\n";
  // Series: one path, broken at gaps; dots on few or isolated points.
  for (const Series& s : series) {
    const size_t n = std::min(s.x.size(), s.y.size());
    size_t points = 0;
    for (size_t i = 0; i < n; ++i) points += valid(s.x[i], s.y[i], log);
    os << "<g class=\"series\" data-name=\"" << escape(s.name) << "\">";
    std::string d;
    bool pen = false;
    for (size_t i = 0; i < n; ++i) {
      if (!valid(s.x[i], s.y[i], log)) {
        pen = false;
        continue;
      }
      const double y = log ? std::log10(s.y[i]) : s.y[i];
      d += (pen ? "L" : (d.empty() ? "M" : " M")) + number(ax(s.x[i])) + " " + number(ay(y));
      pen = true;
    }
    if (!d.empty())
      os << "<path d=\"" << d << "\" fill=\"none\" stroke=\"" << escape(s.color)
         << "\" stroke-width=\"2.5\" stroke-linejoin=\"round\" stroke-linecap=\"round\""
         << (s.dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>";
    for (size_t i = 0; i < n; ++i) {
      if (!valid(s.x[i], s.y[i], log)) continue;
      const bool isolated = (i == 0 || !valid(s.x[i - 1], s.y[i - 1], log)) &&
                            (i + 1 >= n || !valid(s.x[i + 1], s.y[i + 1], log));
      if (points > o.max_markers && !isolated) continue;
      const double y = log ? std::log10(s.y[i]) : s.y[i];
      os << "<circle cx=\"" << number(ax(s.x[i])) << "\" cy=\"" << number(ay(y)) << "\" r=\"3.5\" fill=\""
         << escape(s.color) << "\"/>";
    }
    os << "</g>\n";
  }
  os << "</svg>\n";
  return os.str();
}

std::string heat_map(const std::vector<int64_t>& counts, int64_t n, const std::vector<std::string>& labels,
                     const std::string& title) {
  MAAS_CHECK(n >= 0 && counts.size() == static_cast<size_t>(n) * static_cast<size_t>(n),
             "svg::heat_map: " << counts.size() << " counts for " << n << " classes; it needs n * n");
  std::vector<std::string> names;
  for (int64_t i = 0; i < n; ++i)
    names.push_back(shorten(static_cast<size_t>(i) < labels.size() && labels.size() == static_cast<size_t>(n)
                                ? labels[static_cast<size_t>(i)]
                                : std::to_string(i),
                            16));
  double label_w = 0;
  for (const std::string& s : names) label_w = std::max(label_w, text_width(s));
  const double cell = std::clamp(std::floor(440.0 / std::max<int64_t>(n, 1)), 4.0, 44.0);
  const double left = 34 + label_w + 8, top = 34;
  const double side = cell * static_cast<double>(n);
  const double bottom_labels = label_w * 0.72 + 14;
  const double W = std::max(left + side + 20, left + text_width(title, 8.4) + 10);
  const double H = top + side + bottom_labels + 24;

  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heat-map\" width=\"" << number(W) << "\" height=\""
     << number(H) << "\" viewBox=\"0 0 " << number(W) << " " << number(H)
     << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  if (!title.empty())
    os << "<text x=\"" << number(left) << "\" y=\"17\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">"
       << escape(title) << "</text>\n";
  const bool labelled = cell >= 10;  // class names beside rows and under columns
  for (int64_t i = 0; i < n; ++i) {
    int64_t row = 0;
    for (int64_t j = 0; j < n; ++j) row += std::max<int64_t>(0, counts[static_cast<size_t>(i * n + j)]);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t c = counts[static_cast<size_t>(i * n + j)];
      const double share = row > 0 ? static_cast<double>(std::max<int64_t>(c, 0)) / static_cast<double>(row) : 0.0;
      const double t = std::pow(share, 0.6);  // small shares still visible
      const int r = static_cast<int>(std::lround(247 + t * (8 - 247)));
      const int g = static_cast<int>(std::lround(251 + t * (48 - 251)));
      const int b = static_cast<int>(std::lround(255 + t * (107 - 255)));
      char fill[16];
      std::snprintf(fill, sizeof fill, "#%02x%02x%02x", r, g, b);
      const double x = left + cell * static_cast<double>(j), y = top + cell * static_cast<double>(i);
      os << "<rect class=\"cell\" data-true=\"" << i << "\" data-pred=\"" << j << "\" data-count=\"" << c
         << "\" x=\"" << number(x) << "\" y=\"" << number(y) << "\" width=\"" << number(cell) << "\" height=\""
         << number(cell) << "\" fill=\"" << fill << "\" stroke=\"#fff\" stroke-width=\"0.5\"><title>"
         << escape(names[static_cast<size_t>(i)]) << " predicted as " << escape(names[static_cast<size_t>(j)])
         << ": " << c << "</title></rect>";
      const std::string text = std::to_string(c);
      const double font = std::min({12.0, 0.6 * cell, 1.6 * cell / static_cast<double>(text.size())});
      if (font >= 7)
        os << "<text x=\"" << number(x + cell / 2) << "\" y=\"" << number(y + cell / 2 + font * 0.35)
           << "\" font-size=\"" << number(font, 1) << "\" text-anchor=\"middle\" fill=\""
           << (t > 0.55 ? "#fff" : "#222") << "\">" << text << "</text>";
    }
    os << "\n";
  }
  if (labelled) {
    for (int64_t i = 0; i < n; ++i) {
      const double c = top + cell * (static_cast<double>(i) + 0.5);
      os << "<text x=\"" << number(left - 6) << "\" y=\"" << number(c + 4) << "\" text-anchor=\"end\" fill=\"#333\">"
         << escape(names[static_cast<size_t>(i)]) << "</text>";
      const double cx = left + cell * (static_cast<double>(i) + 0.5), cy = top + side + 12;
      os << "<text x=\"" << number(cx) << "\" y=\"" << number(cy) << "\" text-anchor=\"end\" transform=\"rotate(-40 "
         << number(cx) << " " << number(cy) << ")\" fill=\"#333\">" << escape(names[static_cast<size_t>(i)])
         << "</text>\n";
    }
  }
  const double cy = top + side / 2;
  os << "<text x=\"14\" y=\"" << number(cy) << "\" transform=\"rotate(-90 14 " << number(cy)
     << ")\" text-anchor=\"middle\" fill=\"#333\">true class</text>\n";
  os << "<text x=\"" << number(left + side / 2) << "\" y=\"" << number(H - 6)
     << "\" text-anchor=\"middle\" fill=\"#333\">predicted class</text>\n";
  os << "</svg>\n";
  return os.str();
}

}  // namespace maas::svg
