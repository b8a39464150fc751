#include "stemtwin/core/scan.hpp"

#include <cmath>
#include <string>

namespace stemtwin {

ScanGrid ScanGrid::from_range(Point2 start, Point2 end, double step_x, double step_y) {
  if (!(step_x > 0) || !(step_y > 0))
    throw std::invalid_argument("scan step must be > 0 Å (got " + std::to_string(step_x) + ", " +
                                std::to_string(step_y) + ")");
  if (!(end.x > start.x) || !(end.y > start.y))
    throw std::invalid_argument("scan end must lie beyond start in x and y");
  // Endpoint excluded; a tolerance so that end = start + n·step (in floating point) gives n.
  auto count = [](double span, double step) {
    return static_cast<std::size_t>(std::ceil(span / step - 1e-9));
  };
  ScanGrid g;
  g.start = start;
  g.step_x = step_x;
  g.step_y = step_y;
  g.nx = count(end.x - start.x, step_x);
  g.ny = count(end.y - start.y, step_y);
  return g;
}

ScanGrid ScanGrid::from_fov(Point2 start, double fov_x, double fov_y, std::size_t nx, std::size_t ny) {
  if (!(fov_x > 0) || !(fov_y > 0)) throw std::invalid_argument("scan field of view must be > 0 Å");
  if (nx == 0 || ny == 0) throw std::invalid_argument("scan pixels must be ≥ 1");
  ScanGrid g;
  g.start = start;
  g.nx = nx;
  g.ny = ny;
  g.step_x = fov_x / static_cast<double>(nx);
  g.step_y = fov_y / static_cast<double>(ny);
  return g;
}

std::vector<Point2> ScanGrid::positions() const {
  std::vector<Point2> p;
  p.reserve(size());
  for (std::size_t iy = 0; iy < ny; ++iy)
    for (std::size_t ix = 0; ix < nx; ++ix) p.push_back(position(ix, iy));
  return p;
}

}  // namespace stemtwin
