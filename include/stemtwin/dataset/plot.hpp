#pragma once
// A small dependency-free raster plotter for reports: metric-versus-parameter line plots with
// a panel of per-bin sample counts underneath. Text uses a built-in 5×7 bitmap font (digits,
// capital letters — lower case is drawn as capitals — Å, and . , - + _ / ( ) : = % < > [ ] * ' ?).
#include <cstdint>
#include <string>
#include <vector>

#include "stemtwin/dataset/png.hpp"

namespace stemtwin::plot {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

/// A polyline with square markers; NaN y values leave a gap.
struct Series {
  std::string label;
  std::vector<double> x, y;
  Rgb color{31, 119, 180};
};

struct Figure {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool fixed_y = false;  ///< use [y_min, y_max] instead of the data range
  double y_min = 0, y_max = 1;
  /// Optional count panel: one bar per bin [bin_lo[i], bin_hi[i]] of height counts[i],
  /// labelled with its count. Bins also set the x range of the main panel.
  std::vector<double> bin_lo, bin_hi, counts;
  std::size_t width = 720, height = 540;
};

/// Renders a figure (white background); throws std::invalid_argument for an unusable figure
/// (too small, mismatched vector lengths).
RgbImage render(const Figure& figure);

// --- primitives (exposed for tests and other pictures) --------------------------------------

/// Draws text with its top-left corner at (x, y); each font pixel is scale × scale.
/// Glyphs are 5 wide with 1 pixel spacing, 7 high.
void draw_text(RgbImage& img, int x, int y, const std::string& text, Rgb color, int scale = 1);
/// The same, rotated 90° counter-clockwise (reads bottom to top), (x, y) the top-left of the
/// rotated box.
void draw_text_vertical(RgbImage& img, int x, int y, const std::string& text, Rgb color, int scale = 1);
/// Width in pixels of `text` drawn with draw_text.
int text_width(const std::string& text, int scale = 1);
/// The 7 rows of a glyph, 5 bits each (bit 4 = leftmost pixel); unknown characters give '?'.
const std::uint8_t* glyph(char c);

void draw_line(RgbImage& img, int x0, int y0, int x1, int y1, Rgb color, int thickness = 1);
void fill_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb color);  ///< inclusive corners

/// "Nice" tick positions (1, 2, 5 × 10^k steps) covering [lo, hi], at most ~max_ticks.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks = 6);
/// Short tick label for value v on a grid of spacing `step` ("0.25", "1500", "2e+06").
std::string format_tick(double v, double step);

}  // namespace stemtwin::plot
