#pragma once
// Probe positions. A regular scan is a raster of positions start + (i·step_x, j·step_y),
// x fast; positions may be anywhere (sub-pixel, outside the cell: the cell is periodic).
// Distorted scans (drift, jitter…) are just another list of positions in the same order.
#include <cstddef>
#include <stdexcept>
#include <vector>

namespace stemtwin {

struct Point2 {
  double x = 0, y = 0;  ///< Å
};

struct ScanGrid {
  Point2 start;             ///< first position, Å
  double step_x = 0.2;      ///< Å between columns (fast axis)
  double step_y = 0.2;      ///< Å between rows
  std::size_t nx = 1, ny = 1;

  /// Positions start + i·step for start ≤ p < end (end excluded, as in numpy's arange).
  static ScanGrid from_range(Point2 start, Point2 end, double step_x, double step_y);
  /// Field of view w × h (Å) sampled by nx × ny positions: start + i·fov/n.
  static ScanGrid from_fov(Point2 start, double fov_x, double fov_y, std::size_t nx, std::size_t ny);

  std::size_t size() const { return nx * ny; }
  Point2 position(std::size_t ix, std::size_t iy) const {
    return {start.x + static_cast<double>(ix) * step_x, start.y + static_cast<double>(iy) * step_y};
  }
  /// All positions, row-major [iy][ix].
  std::vector<Point2> positions() const;
};

}  // namespace stemtwin
