#include "stemtwin/dataset/plot.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace stemtwin::plot {
namespace {

/// The font's code for Å (UTF-8 "Å"/"å" in text), so scale bars can say Å.
constexpr char kAngstrom = '\x01';

struct GlyphDef {
  char c;
  std::uint8_t rows[7];
};

// 5×7 glyphs, one byte per row, bit 4 = leftmost column.
constexpr GlyphDef kGlyphs[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}},
    {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
    {'*', {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}},
    {'\'', {0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
    {kAngstrom, {0x04, 0x0A, 0x04, 0x0E, 0x11, 0x1F, 0x11}},  // Å: a ring over a short A
};

const std::array<const std::uint8_t*, 128>& glyph_table() {
  static const std::array<const std::uint8_t*, 128> table = [] {
    std::array<const std::uint8_t*, 128> t{};
    for (const GlyphDef& g : kGlyphs) t[static_cast<unsigned char>(g.c)] = g.rows;
    return t;
  }();
  return table;
}

// UTF-8 text → the characters the font draws: lower case as capitals, Å/å as Å, µ as U,
// any other non-ASCII character as '?'.
std::string font_chars(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : static_cast<char>(c));
      continue;
    }
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    const unsigned char next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    if (c == 0xC3 && (next == 0x85 || next == 0xA5)) out.push_back(kAngstrom);
    else if (c == 0xC2 && next == 0xB5) out.push_back('U');
    else out.push_back('?');
  }
  return out;
}

constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kGrid{225, 225, 225};
constexpr Rgb kBar{150, 170, 200};

int clampi(long v, long lo, long hi) { return static_cast<int>(std::clamp(v, lo, hi)); }

}  // namespace

const std::uint8_t* glyph(char c) {
  const auto& t = glyph_table();
  const auto u = static_cast<unsigned char>(c);
  char key = static_cast<char>(u);
  if (u < 128 && c >= 'a' && c <= 'z') key = static_cast<char>(c - 'a' + 'A');
  if (u < 128 && (key == ' ' || t[static_cast<unsigned char>(key)])) {
    static const std::uint8_t blank[7] = {0, 0, 0, 0, 0, 0, 0};
    return key == ' ' ? blank : t[static_cast<unsigned char>(key)];
  }
  return t[static_cast<unsigned char>('?')];
}

int text_width(const std::string& text, int scale) {
  const auto n = static_cast<int>(font_chars(text).size());
  return n == 0 ? 0 : (6 * n - 1) * std::max(scale, 1);
}

void draw_text(RgbImage& img, int x, int y, const std::string& text, Rgb color, int scale) {
  scale = std::max(scale, 1);
  int cx = x;
  for (char c : font_chars(text)) {
    const std::uint8_t* g = glyph(c);
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col)
        if (g[row] & (0x10 >> col))
          fill_rect(img, cx + col * scale, y + row * scale, cx + col * scale + scale - 1, y + row * scale + scale - 1,
                    color);
    cx += 6 * scale;
  }
}

void draw_text_vertical(RgbImage& img, int x, int y, const std::string& text, Rgb color, int scale) {
  scale = std::max(scale, 1);
  // Rotated 90° counter-clockwise: the text runs upwards from the bottom of its box.
  const int len = text_width(text, scale);
  int cy = y + len - 1;  // bottom of the box: first character
  for (char c : font_chars(text)) {
    const std::uint8_t* g = glyph(c);
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col)
        if (g[row] & (0x10 >> col)) {
          // glyph (col, row) → screen (x + row, cy − col)
          const int sx = x + row * scale, sy = cy - col * scale - (scale - 1);
          fill_rect(img, sx, sy, sx + scale - 1, sy + scale - 1, color);
        }
    cy -= 6 * scale;
  }
}

void fill_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb color) {
  if (x0 > x1) std::swap(x0, x1);
  if (y0 > y1) std::swap(y0, y1);
  const long w = static_cast<long>(img.width) - 1, h = static_cast<long>(img.height) - 1;
  if (x1 < 0 || y1 < 0 || x0 > w || y0 > h) return;
  for (int y = clampi(y0, 0, h); y <= clampi(y1, 0, h); ++y)
    for (int x = clampi(x0, 0, w); x <= clampi(x1, 0, w); ++x)
      img.set(static_cast<std::size_t>(x), static_cast<std::size_t>(y), color.r, color.g, color.b);
}

void draw_line(RgbImage& img, int x0, int y0, int x1, int y1, Rgb color, int thickness) {
  // Bresenham with a square brush of side `thickness`.
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    fill_rect(img, x0 + lo, y0 + lo, x0 + hi, y0 + hi, color);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) return {lo};
  max_ticks = std::max(max_ticks, 2);
  const double raw = (hi - lo) / max_ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double m = 10.0;
  for (double c : {1.0, 2.0, 5.0, 10.0})
    if (c * mag >= raw) {
      m = c;
      break;
    }
  const double step = m * mag;
  // Tick k is k·m·mag; for mag < 1 it is computed as k·m / (1/mag), with 1/mag an exact
  // integer, so 0.6 comes out as the double nearest 0.6 (not 3·0.2 = 0.6000000000000001).
  const double inv = mag < 1 ? std::round(1.0 / mag) : 0.0;
  auto value = [&](long k) { return inv > 0 ? static_cast<double>(k) * m / inv : static_cast<double>(k) * m * mag; };
  std::vector<double> ticks;
  const auto k0 = static_cast<long>(std::ceil(lo / step - 1e-9));
  for (long k = k0; value(k) <= hi + step * 1e-9 && ticks.size() < 1000; ++k) ticks.push_back(value(k));
  return ticks;
}

std::string format_tick(double v, double step) {
  char buf[48];
  step = std::abs(step);
  const double a = std::max(std::abs(v), step);
  const int decimals = step > 0 ? std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9))) : 0;
  if (a >= 1e6 || decimals > 5) {
    // Scientific, with as many digits as the step resolves: 2.85e-07 on a 5e-09 grid.
    const int digits = step > 0 ? std::max(0, static_cast<int>(std::floor(std::log10(a)) - std::floor(std::log10(step)))) : 2;
    std::snprintf(buf, sizeof buf, "%.*e", std::min(digits, 8), v);
  } else {
    std::snprintf(buf, sizeof buf, "%.*f", decimals, std::abs(v) < step * 1e-6 ? 0.0 : v);
  }
  return buf;
}

RgbImage render(const Figure& f) {
  if (f.width < 200 || f.height < 160) throw std::invalid_argument("plot::render: figure must be at least 200 × 160");
  for (const Series& s : f.series)
    if (s.x.size() != s.y.size()) throw std::invalid_argument("plot::render: series '" + s.label + "' has x/y of different lengths");
  const bool bars = !f.counts.empty();
  if (bars && (f.bin_lo.size() != f.counts.size() || f.bin_hi.size() != f.counts.size()))
    throw std::invalid_argument("plot::render: bin_lo, bin_hi and counts must have the same length");

  RgbImage img(f.width, f.height, 255);
  const int W = static_cast<int>(f.width), H = static_cast<int>(f.height);
  const int left = 84, right = W - 20, top = f.series.empty() ? 40 : 56;  // legend strip under the title
  const int axis_bottom = H - 48;                 // bottom of the lowest panel
  const int count_h = bars ? std::max(40, H / 6) : 0;
  const int main_bottom = bars ? axis_bottom - count_h - 16 : axis_bottom;
  const int count_top = main_bottom + 16;

  // x range: the bins when given, else the data.
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo;
  auto take_x = [&](double v) {
    if (std::isfinite(v)) xlo = std::min(xlo, v), xhi = std::max(xhi, v);
  };
  for (double v : f.bin_lo) take_x(v);
  for (double v : f.bin_hi) take_x(v);
  if (!bars)
    for (const Series& s : f.series)
      for (double v : s.x) take_x(v);
  if (!(xlo <= xhi)) xlo = 0, xhi = 1;
  if (xhi == xlo) {
    const double pad = xlo != 0 ? std::abs(xlo) * 0.1 : 0.5;
    xlo -= pad, xhi += pad;
  }
  const double xpad = 0.04 * (xhi - xlo);
  const double x0 = xlo - xpad, x1 = xhi + xpad;

  double ylo = f.y_min, yhi = f.y_max;
  if (!f.fixed_y) {
    ylo = std::numeric_limits<double>::infinity(), yhi = -ylo;
    for (const Series& s : f.series)
      for (double v : s.y)
        if (std::isfinite(v)) ylo = std::min(ylo, v), yhi = std::max(yhi, v);
    if (!(ylo <= yhi)) ylo = 0, yhi = 1;
    if (yhi == ylo) {
      const double pad = ylo != 0 ? std::abs(ylo) * 0.1 : 0.5;
      ylo -= pad, yhi += pad;
    }
    const double ypad = 0.06 * (yhi - ylo);
    ylo -= ypad, yhi += ypad;
  }

  auto px = [&](double x) { return left + static_cast<int>(std::lround((x - x0) / (x1 - x0) * (right - left))); };
  auto py = [&](double y) {
    return main_bottom - static_cast<int>(std::lround((y - ylo) / (yhi - ylo) * (main_bottom - top)));
  };

  // Title and axis labels.
  draw_text(img, std::max(4, (W - text_width(f.title, 2)) / 2), 10, f.title, kBlack, 2);
  draw_text(img, std::max(4, (left + right - text_width(f.x_label, 2)) / 2), H - 18, f.x_label, kBlack, 2);
  draw_text_vertical(img, 6, std::max(top, (top + main_bottom - text_width(f.y_label, 2)) / 2), f.y_label, kBlack, 2);

  // Main panel: grid, y ticks, frame.
  const auto yt = nice_ticks(ylo, yhi, 6);
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1.0;
  for (double t : yt) {
    const int y = py(t);
    if (y < top || y > main_bottom) continue;
    draw_line(img, left + 1, y, right - 1, y, kGrid);
    draw_line(img, left - 4, y, left, y, kBlack);
    const std::string s = format_tick(t, ystep);
    draw_text(img, left - 8 - text_width(s), y - 3, s, kBlack);
  }
  const auto xt = nice_ticks(x0, x1, std::max(2, (right - left) / 90));
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1.0;
  for (double t : xt) {
    const int x = px(t);
    if (x < left || x > right) continue;
    draw_line(img, x, top + 1, x, main_bottom - 1, kGrid);
    draw_line(img, x, axis_bottom, x, axis_bottom + 4, kBlack);
    if (bars) draw_line(img, x, main_bottom, x, main_bottom + 3, kBlack);
    const std::string s = format_tick(t, xstep);
    draw_text(img, x - text_width(s) / 2, axis_bottom + 8, s, kBlack);
  }

  // Count panel.
  if (bars) {
    double cmax = 0;
    for (double c : f.counts) cmax = std::max(cmax, c);
    if (cmax <= 0) cmax = 1;
    const int inner_top = count_top + 12;  // room for the count labels
    for (std::size_t i = 0; i < f.counts.size(); ++i) {
      int a = px(f.bin_lo[i]), b = px(f.bin_hi[i]);
      if (b - a < 3) a -= 2, b += 2;  // a degenerate bin still shows
      else a += 1, b -= 1;
      const int h = static_cast<int>(std::lround(f.counts[i] / cmax * (axis_bottom - inner_top)));
      if (h > 0) fill_rect(img, a, axis_bottom - h, b, axis_bottom - 1, kBar);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.0f", f.counts[i]);
      draw_text(img, (a + b) / 2 - text_width(buf) / 2, axis_bottom - h - 10, buf, kBlack);
    }
    draw_line(img, left, count_top, right, count_top, kBlack);
    draw_line(img, left, axis_bottom, right, axis_bottom, kBlack);
    draw_line(img, left, count_top, left, axis_bottom, kBlack);
    draw_line(img, right, count_top, right, axis_bottom, kBlack);
    draw_text(img, left - 8 - text_width("N"), (count_top + axis_bottom) / 2 - 3, "N", kBlack);
  }

  // Series: polylines (broken at NaN) and markers.
  for (const Series& s : f.series) {
    bool have_prev = false;
    int ox = 0, oy = 0;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        have_prev = false;
        continue;
      }
      const int x = px(s.x[i]), y = std::clamp(py(s.y[i]), top, main_bottom);
      if (have_prev) draw_line(img, ox, oy, x, y, s.color, 2);
      fill_rect(img, x - 3, y - 3, x + 3, y + 3, s.color);
      ox = x, oy = y, have_prev = true;
    }
  }

  // Frame of the main panel (drawn last so lines do not cover it).
  draw_line(img, left, top, right, top, kBlack);
  draw_line(img, left, main_bottom, right, main_bottom, kBlack);
  draw_line(img, left, top, left, main_bottom, kBlack);
  draw_line(img, right, top, right, main_bottom, kBlack);

  // Legend: one row under the title, right-aligned, clear of the data.
  if (!f.series.empty()) {
    int w = 0;
    for (const Series& s : f.series) w += 30 + text_width(s.label) + 14;
    int x = std::max(left, right - w);
    for (const Series& s : f.series) {
      draw_line(img, x, 38 + 3, x + 18, 38 + 3, s.color, 2);
      fill_rect(img, x + 7, 38, x + 11, 38 + 6, s.color);
      draw_text(img, x + 24, 38, s.label, kBlack);
      x += 30 + text_width(s.label) + 14;
    }
  }
  return img;
}

}  // namespace stemtwin::plot
