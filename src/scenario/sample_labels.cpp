#include "sample_labels.hpp"
#include "scenario_spectra.hpp"

#include <algorithm>
#include <cmath>

#include "stemtwin/specimen/columns.hpp"

namespace stemtwin::detail {

std::vector<ColumnLabel> column_labels(const Specimen& sp, const DistortedScan& ds, const ScanGeometry& g,
                                       const DatasetLayout& layout) {
  std::vector<ColumnLabel> out;
  const Cell& c = sp.structure.cell;
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (const Point2& p : ds.positions_A) {
    xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x);
    ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
  }
  const double pad = std::max(g.grid.step_x, g.grid.step_y);
  for (const Column& col : find_columns(sp)) {
    if (col.count <= 0) continue;  // an emptied column: its vacancy is a label of its own kind
    for (double ix = std::floor((xmin - pad - col.x) / c.x); col.x + ix * c.x <= xmax + pad; ++ix)
      for (double iy = std::floor((ymin - pad - col.y) / c.y); col.y + iy * c.y <= ymax + pad; ++iy) {
        const Point2 q{col.x + ix * c.x, col.y + iy * c.y};
        const MappedPoint m = map_to_image(ds, g, q);
        if (!m.found || !m.inside) continue;
        ColumnLabel l;
        l.x = q.x;
        l.y = q.y;
        l.px = m.image_px.x;
        l.py = m.image_px.y;
        l.species = col.dominant_Z;  // layout.species[Z] is the element symbol
        l.count = int(std::lround(col.count));
        l.class_id = col.cls;
        if (!layout.composition_elements.empty()) l.composition = detail::column_composition(col.composition, layout);
        out.push_back(l);
      }
  }
  return out;
}

Image region_at_positions(const Specimen& sp, const DistortedScan& ds) {
  const Cell& c = sp.structure.cell;
  const double step = 0.2;
  const ScanGrid fine = ScanGrid::from_fov({0, 0}, c.x, c.y, std::max<std::size_t>(1, std::size_t(std::ceil(c.x / step))),
                                           std::max<std::size_t>(1, std::size_t(std::ceil(c.y / step))));
  const Image map = region_map(sp, fine);
  Image out(ds.nx, ds.ny);
  for (std::size_t i = 0; i < ds.positions_A.size(); ++i) {
    const double x = ds.positions_A[i].x - std::floor(ds.positions_A[i].x / c.x) * c.x;
    const double y = ds.positions_A[i].y - std::floor(ds.positions_A[i].y / c.y) * c.y;
    const auto ix = std::min(map.nx - 1, std::size_t(std::lround(x / fine.step_x)) % map.nx);
    const auto iy = std::min(map.ny - 1, std::size_t(std::lround(y / fine.step_y)) % map.ny);
    out.data[i] = map(iy, ix);
  }
  return out;
}

}  // namespace stemtwin::detail
