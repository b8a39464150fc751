#include "stemtwin/dataset/label_masks.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace stemtwin {

LabelMasks rasterize_label_masks(const std::vector<ColumnLabel>& columns, std::size_t nx, std::size_t ny,
                                 double radius, double step_x, double step_y) {
  if (!(radius > 0) || !(step_x > 0) || !(step_y > 0))
    throw std::invalid_argument("rasterize_label_masks: radius and steps must be > 0");
  LabelMasks m{Image(nx, ny), Image(nx, ny)};
  std::vector<double> best(nx * ny, std::numeric_limits<double>::infinity());
  const double r2 = radius * radius;
  for (const auto& c : columns) {
    const double rx = radius / step_x, ry = radius / step_y;
    const long x0 = std::max(0L, static_cast<long>(std::floor(c.px - rx)));
    const long x1 = std::min(static_cast<long>(nx) - 1, static_cast<long>(std::ceil(c.px + rx)));
    const long y0 = std::max(0L, static_cast<long>(std::floor(c.py - ry)));
    const long y1 = std::min(static_cast<long>(ny) - 1, static_cast<long>(std::ceil(c.py + ry)));
    for (long y = y0; y <= y1; ++y)
      for (long x = x0; x <= x1; ++x) {
        const double dx = (static_cast<double>(x) - c.px) * step_x, dy = (static_cast<double>(y) - c.py) * step_y;
        const double d2 = dx * dx + dy * dy;
        if (d2 > r2) continue;
        const std::size_t i = static_cast<std::size_t>(y) * nx + static_cast<std::size_t>(x);
        m.columns.data[i] = 1;
        if (d2 < best[i]) {
          best[i] = d2;
          m.species.data[i] = c.species + 1;
        }
      }
  }
  return m;
}

}  // namespace stemtwin
