#include "stemtwin/specimen/columns.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <tuple>
#include <stdexcept>

namespace stemtwin {
namespace {

int cls(SpecimenClass c) { return static_cast<int>(c); }

// 2-D periodic bins of projected points.
struct Bins2 {
  Bins2(const Cell& c, double bin) : cell(c) {
    if (!(c.x > 0 && c.y > 0)) throw std::invalid_argument("columns: cell x and y must be > 0 Å");
    nx = std::max(1, static_cast<int>(std::floor(c.x / bin)));
    ny = std::max(1, static_cast<int>(std::floor(c.y / bin)));
    bx = c.x / nx;
    by = c.y / ny;
    bins.resize(static_cast<std::size_t>(nx) * ny);
  }
  int ix(double x) const { return std::clamp(static_cast<int>(std::floor(wrap(x, cell.x) / bx)), 0, nx - 1); }
  int iy(double y) const { return std::clamp(static_cast<int>(std::floor(wrap(y, cell.y) / by)), 0, ny - 1); }
  static double wrap(double v, double L) {
    v -= L * std::floor(v / L);
    return v >= L ? 0.0 : v;
  }
  void add(double x, double y, std::size_t id) { bins[static_cast<std::size_t>(iy(y)) * nx + ix(x)].push_back(id); }
  // visit ids in bins within radius r of (x, y) (each bin once, also when r spans the cell)
  template <class F>
  void near(double x, double y, double r, F&& f) const {
    thread_local std::vector<int> xs, ys;
    const int cx = ix(x), cy = iy(y);
    const int rx = static_cast<int>(std::ceil(r / bx)), ry = static_cast<int>(std::ceil(r / by));
    xs.clear();
    ys.clear();
    if (2 * rx + 1 >= nx) for (int i = 0; i < nx; ++i) xs.push_back(i);
    else for (int d = -rx; d <= rx; ++d) xs.push_back(((cx + d) % nx + nx) % nx);
    if (2 * ry + 1 >= ny) for (int j = 0; j < ny; ++j) ys.push_back(j);
    else for (int d = -ry; d <= ry; ++d) ys.push_back(((cy + d) % ny + ny) % ny);
    for (int j : ys)
      for (int i : xs)
        for (std::size_t id : bins[static_cast<std::size_t>(j) * nx + i]) f(id);
  }
  double min_bin() const { return std::min(bx, by); }
  Cell cell;
  int nx, ny;
  double bx, by;
  std::vector<std::vector<std::size_t>> bins;
};

double pdist2(double dx, double dy, const Cell& c) {
  dx -= c.x * std::round(dx / c.x);
  dy -= c.y * std::round(dy / c.y);
  return dx * dx + dy * dy;
}

int find_root(std::vector<std::size_t>& parent, std::size_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return static_cast<int>(i);
}

// Nearest-column painter: value of the nearest column (with periodic images) within radius.
Image paint(const std::vector<Column>& cols, const Cell& cell, const ScanGrid& g, double radius, double background,
            const std::function<double(const Column&)>& value, const std::function<bool(const Column&)>& use) {
  if (!(radius > 0)) throw std::invalid_argument("mask radius must be > 0 Å");
  if (!(cell.x > 0 && cell.y > 0)) throw std::invalid_argument("mask: cell x and y must be > 0 Å");
  Image img(g.nx, g.ny, background);
  std::vector<double> best(g.nx * g.ny, radius * radius);
  const double x0 = std::min(g.start.x, g.start.x + (double(g.nx) - 1) * g.step_x) - radius;
  const double x1 = std::max(g.start.x, g.start.x + (double(g.nx) - 1) * g.step_x) + radius;
  const double y0 = std::min(g.start.y, g.start.y + (double(g.ny) - 1) * g.step_y) - radius;
  const double y1 = std::max(g.start.y, g.start.y + (double(g.ny) - 1) * g.step_y) + radius;
  for (const Column& c : cols) {
    if (!use(c)) continue;
    const double v = value(c);
    for (int ky = static_cast<int>(std::floor((y0 - c.y) / cell.y)); ky <= static_cast<int>(std::ceil((y1 - c.y) / cell.y)); ++ky)
      for (int kx = static_cast<int>(std::floor((x0 - c.x) / cell.x)); kx <= static_cast<int>(std::ceil((x1 - c.x) / cell.x)); ++kx) {
        const double cx = c.x + kx * cell.x, cy = c.y + ky * cell.y;
        if (cx < x0 || cx > x1 || cy < y0 || cy > y1) continue;
        // pixel index range covering the disc (steps may be negative: scan all then)
        long ix0 = 0, ix1 = static_cast<long>(g.nx) - 1, iy0 = 0, iy1 = static_cast<long>(g.ny) - 1;
        if (g.step_x > 0) {
          ix0 = std::max(0L, static_cast<long>(std::floor((cx - radius - g.start.x) / g.step_x)));
          ix1 = std::min(ix1, static_cast<long>(std::ceil((cx + radius - g.start.x) / g.step_x)));
        }
        if (g.step_y > 0) {
          iy0 = std::max(0L, static_cast<long>(std::floor((cy - radius - g.start.y) / g.step_y)));
          iy1 = std::min(iy1, static_cast<long>(std::ceil((cy + radius - g.start.y) / g.step_y)));
        }
        for (long iy = iy0; iy <= iy1; ++iy)
          for (long ix = ix0; ix <= ix1; ++ix) {
            Point2 p = g.position(static_cast<std::size_t>(ix), static_cast<std::size_t>(iy));
            double d2 = (p.x - cx) * (p.x - cx) + (p.y - cy) * (p.y - cy);
            std::size_t k = static_cast<std::size_t>(iy) * g.nx + static_cast<std::size_t>(ix);
            if (d2 < best[k]) {
              best[k] = d2;
              img.data[k] = v;
            }
          }
      }
  }
  return img;
}

bool is_defect(int c) {
  return c == cls(SpecimenClass::Dopant) || c == cls(SpecimenClass::Interstitial) || c == cls(SpecimenClass::Vacancy) ||
         c == cls(SpecimenClass::Boundary);
}

}  // namespace

std::vector<Column> find_columns(const Specimen& s, double tolerance) {
  check_specimen(s);
  if (!(tolerance > 0)) throw std::invalid_argument("column tolerance must be > 0 Å");
  const Cell& cell = s.structure.cell;
  const std::size_t na = s.structure.atoms.size(), nv = s.vacancies.size(), n = na + nv;
  auto px = [&](std::size_t i) { return i < na ? s.structure.atoms[i].x : s.vacancies[i - na].x; };
  auto py = [&](std::size_t i) { return i < na ? s.structure.atoms[i].y : s.vacancies[i - na].y; };
  Bins2 bins(cell, tolerance);
  for (std::size_t i = 0; i < n; ++i) bins.add(px(i), py(i), i);
  std::vector<std::size_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  const double t2 = tolerance * tolerance;
  for (std::size_t i = 0; i < n; ++i)
    bins.near(px(i), py(i), tolerance, [&](std::size_t j) {
      if (j <= i) return;
      if (pdist2(px(i) - px(j), py(i) - py(j), cell) < t2) {
        std::size_t a = find_root(parent, i), b = find_root(parent, j);
        if (a != b) parent[std::max(a, b)] = std::min(a, b);
      }
    });
  std::vector<long> col_of(n, -1);
  std::vector<Column> cols;
  std::vector<std::size_t> anchor;  // first member (for periodic averaging)
  std::vector<double> wsum;
  std::vector<std::map<int, double>> class_weight;
  std::vector<int> flags;  // bit per defect class present
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t r = find_root(parent, i);
    if (col_of[r] < 0) {
      col_of[r] = static_cast<long>(cols.size());
      cols.emplace_back();
      anchor.push_back(i);
      wsum.push_back(0);
      class_weight.emplace_back();
      flags.push_back(0);
    }
    const std::size_t c = static_cast<std::size_t>(col_of[r]);
    Column& col = cols[c];
    // unwrap relative to the anchor so that a column across the cell edge averages correctly
    double dx = px(i) - px(anchor[c]), dy = py(i) - py(anchor[c]);
    dx -= cell.x * std::round(dx / cell.x);
    dy -= cell.y * std::round(dy / cell.y);
    const double w = i < na ? std::max(s.structure.atoms[i].occupancy, 1e-6) : 1e-6;
    col.x += w * dx;
    col.y += w * dy;
    wsum[c] += w;
    if (i < na) {
      const Atom& a = s.structure.atoms[i];
      col.atoms.push_back(i);
      col.composition[a.Z] += a.occupancy;
      col.count += a.occupancy;
      const int k = s.atom_class[i];
      class_weight[c][k] += a.occupancy;
      if (is_defect(k)) flags[c] |= 1 << k;
    } else {
      ++col.vacancies;
      flags[c] |= 1 << cls(SpecimenClass::Vacancy);
    }
  }
  for (std::size_t c = 0; c < cols.size(); ++c) {
    Column& col = cols[c];
    col.x = Bins2::wrap(px(anchor[c]) + col.x / wsum[c], cell.x);
    col.y = Bins2::wrap(py(anchor[c]) + col.y / wsum[c], cell.y);
    double best = -1;
    for (auto& [Z, w] : col.composition)  // ascending Z: ties go to the heavier element
      if (w >= best - 1e-12) {
        best = w;
        col.dominant_Z = Z;
      }
    col.cls = cls(SpecimenClass::Crystal);
    bool set = false;
    for (SpecimenClass k : {SpecimenClass::Dopant, SpecimenClass::Interstitial, SpecimenClass::Vacancy, SpecimenClass::Boundary})
      if (flags[c] & (1 << cls(k))) {
        col.cls = cls(k);
        set = true;
        break;
      }
    if (!set) {
      double bw = -1;
      for (auto& [k, w] : class_weight[c])
        if (w > bw) {
          bw = w;
          col.cls = k;
        }
    }
  }
  std::sort(cols.begin(), cols.end(), [](const Column& a, const Column& b) {
    if (std::abs(a.y - b.y) > 1e-6) return a.y < b.y;
    return a.x < b.x;
  });
  return cols;
}

std::vector<Column> find_columns(const Structure& s, double tolerance) { return find_columns(make_specimen(s), tolerance); }

Image species_mask(const std::vector<Column>& columns, const Cell& cell, const ScanGrid& grid, double radius,
                   double background) {
  return paint(columns, cell, grid, radius, background, [](const Column& c) { return double(c.dominant_Z); },
               [](const Column& c) { return c.count > 0; });
}

Image class_mask(const std::vector<Column>& columns, const Cell& cell, const ScanGrid& grid, double radius,
                 double background) {
  return paint(columns, cell, grid, radius, background, [](const Column& c) { return double(c.cls); },
               [](const Column&) { return true; });
}

Image defect_mask(const std::vector<Column>& columns, const Cell& cell, const ScanGrid& grid, double radius) {
  return paint(columns, cell, grid, radius, 0.0, [](const Column&) { return 1.0; },
               [](const Column& c) { return is_defect(c.cls); });
}

Image count_mask(const std::vector<Column>& columns, const Cell& cell, const ScanGrid& grid, double radius) {
  return paint(columns, cell, grid, radius, 0.0, [](const Column& c) { return c.count; },
               [](const Column& c) { return c.count > 0; });
}

Image region_map(const Specimen& s, const ScanGrid& g, double max_distance, double overlay_radius) {
  check_specimen(s);
  if (!(max_distance > 0)) throw std::invalid_argument("region_map: max_distance must be > 0 Å");
  const Cell& cell = s.structure.cell;
  Bins2 region(cell, std::min(max_distance, 1.0)), particles(cell, std::max(overlay_radius, 0.5));
  bool any_particle = false;
  // projected points, de-duplicated (a crystal column is one point): (x, y, class)
  struct P {
    double x, y;
    int k;
  };
  std::vector<P> pts;
  std::map<std::tuple<long long, long long, int>, std::size_t> seen;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    const int k = s.atom_class[i];
    const Atom& a = s.structure.atoms[i];
    if (k == cls(SpecimenClass::Particle)) {
      particles.add(a.x, a.y, pts.size());
      pts.push_back({a.x, a.y, k});
      any_particle = true;
    }
    if (k != cls(SpecimenClass::Dopant) && k != cls(SpecimenClass::Interstitial) && k != cls(SpecimenClass::Boundary)) {
      auto key = std::make_tuple(std::llround(a.x * 1e4), std::llround(a.y * 1e4), k);
      if (seen.emplace(key, pts.size()).second) {
        region.add(a.x, a.y, pts.size());
        pts.push_back({a.x, a.y, k});
      }
    }
  }
  // Boundary / dopant atoms stand for the region they sit in: the host crystal or film.
  Image img(g.nx, g.ny, static_cast<double>(SpecimenClass::Vacuum));
  const double md2 = max_distance * max_distance, or2 = overlay_radius * overlay_radius;
  for (std::size_t iy = 0; iy < g.ny; ++iy)
    for (std::size_t ix = 0; ix < g.nx; ++ix) {
      Point2 p = g.position(ix, iy);
      if (any_particle && overlay_radius > 0) {
        bool hit = false;
        particles.near(p.x, p.y, overlay_radius, [&](std::size_t i) {
          if (pdist2(pts[i].x - p.x, pts[i].y - p.y, cell) < or2) hit = true;
        });
        if (hit) {
          img(iy, ix) = static_cast<double>(SpecimenClass::Particle);
          continue;
        }
      }
      double best = md2;
      int k = cls(SpecimenClass::Vacuum);
      auto visit = [&](std::size_t i) {
        double d2 = pdist2(pts[i].x - p.x, pts[i].y - p.y, cell);
        if (d2 < best || (d2 == best && pts[i].k < k)) {
          best = d2;
          k = pts[i].k;
        }
      };
      // the 3×3 bins around the pixel hold every atom within one bin width; search wider
      // only when the nearest atom is farther than that
      const double b = std::min(region.min_bin(), max_distance);
      region.near(p.x, p.y, b, visit);
      if (best > b * b) region.near(p.x, p.y, max_distance, visit);
      img(iy, ix) = k;
    }
  return img;
}

GroundTruth ground_truth(const Specimen& s, const ScanGrid& grid, double radius, double tolerance) {
  GroundTruth g;
  g.columns = find_columns(s, tolerance);
  const Cell& c = s.structure.cell;
  g.region = region_map(s, grid);
  g.species = species_mask(g.columns, c, grid, radius);
  g.classes = class_mask(g.columns, c, grid, radius);
  g.defects = defect_mask(g.columns, c, grid, radius);
  return g;
}

}  // namespace stemtwin
