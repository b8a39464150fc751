#include "stemtwin/acquisition/scan_distortion.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "stemtwin/core/rng.hpp"

namespace stemtwin {
namespace {

// Stream components under RngPurpose::Scan (part of the determinism contract).
enum ScanStream : std::uint64_t { kDriftWalk = 1, kJitter = 2, kScanNoisePhase = 3, kMainsPhase = 4, kCurrent = 5 };

constexpr double kPi = 3.14159265358979323846;

}  // namespace

// ---------------------------------------------------------------- geometry ----------------

ScanGeometry ScanGeometry::from_fov(Point2 origin_A, double fov_x_A, double fov_y_A, std::size_t nx, std::size_t ny,
                                    double rotation_deg, double dwell_us, double flyback_us) {
  if (!(dwell_us > 0)) throw std::invalid_argument("scan dwell must be > 0 µs");
  if (!(flyback_us >= 0)) throw std::invalid_argument("scan flyback must be ≥ 0 µs");
  ScanGeometry g;
  g.grid = ScanGrid::from_fov(origin_A, fov_x_A, fov_y_A, nx, ny);
  g.rotation_deg = rotation_deg;
  g.dwell_us = dwell_us;
  g.flyback_us = flyback_us;
  return g;
}

double ScanGeometry::line_time_s() const {
  return (static_cast<double>(grid.nx) * dwell_us + flyback_us) * 1e-6;
}

double ScanGeometry::frame_time_s() const { return static_cast<double>(grid.ny) * line_time_s(); }

double ScanGeometry::pixel_time_s(std::size_t ix, std::size_t iy) const {
  return (static_cast<double>(iy) * (static_cast<double>(grid.nx) * dwell_us + flyback_us) +
          static_cast<double>(ix) * dwell_us) * 1e-6;
}

Point2 ScanGeometry::nominal_position(double fx, double fy) const {
  if (rotation_deg == 0.0) return {grid.start.x + fx * grid.step_x, grid.start.y + fy * grid.step_y};
  const double th = rotation_deg * kPi / 180.0, c = std::cos(th), s = std::sin(th);
  const double cx = 0.5 * static_cast<double>(grid.nx - 1) * grid.step_x;
  const double cy = 0.5 * static_cast<double>(grid.ny - 1) * grid.step_y;
  const double u = fx * grid.step_x - cx, v = fy * grid.step_y - cy;
  return {grid.start.x + cx + c * u - s * v, grid.start.y + cy + s * u + c * v};
}

Point2 ScanGeometry::nominal_pixel(Point2 p) const {
  if (rotation_deg == 0.0) return {(p.x - grid.start.x) / grid.step_x, (p.y - grid.start.y) / grid.step_y};
  const double th = rotation_deg * kPi / 180.0, c = std::cos(th), s = std::sin(th);
  const double cx = 0.5 * static_cast<double>(grid.nx - 1) * grid.step_x;
  const double cy = 0.5 * static_cast<double>(grid.ny - 1) * grid.step_y;
  const double dx = p.x - grid.start.x - cx, dy = p.y - grid.start.y - cy;
  const double u = c * dx + s * dy, v = -s * dx + c * dy;
  return {(u + cx) / grid.step_x, (v + cy) / grid.step_y};
}

std::vector<Point2> ScanGeometry::nominal_positions() const {
  if (rotation_deg == 0.0) return grid.positions();
  std::vector<Point2> p;
  p.reserve(size());
  for (std::size_t iy = 0; iy < grid.ny; ++iy)
    for (std::size_t ix = 0; ix < grid.nx; ++ix)
      p.push_back(nominal_position(static_cast<double>(ix), static_cast<double>(iy)));
  return p;
}

bool Distortion::moves_probe() const {
  return drift.velocity_x_A_per_s != 0 || drift.velocity_y_A_per_s != 0 || drift.diffusion_A_per_sqrt_s != 0 ||
         jitter.rms_A != 0 || (flyback.amplitude_A != 0 && flyback.decay_us > 0) ||
         (scan_noise.rms_A != 0 && !scan_noise.frequencies_Hz.empty()) || mains.amplitude_x_A != 0 ||
         mains.amplitude_y_A != 0;
}

// ---------------------------------------------------------------- distortion --------------

DistortedScan distort_scan(const ScanGeometry& g, const Distortion& d, std::uint64_t seed, std::uint64_t sample) {
  const std::size_t nx = g.nx(), ny = g.ny(), n = nx * ny;
  if (n == 0) throw std::invalid_argument("distort_scan: empty scan");
  if (!(g.dwell_us > 0) || !(g.flyback_us >= 0))
    throw std::invalid_argument("distort_scan: dwell must be > 0 µs and flyback ≥ 0 µs");
  if (d.drift.diffusion_A_per_sqrt_s < 0 || d.jitter.rms_A < 0 || d.scan_noise.rms_A < 0 ||
      d.current.relative_rms < 0)
    throw std::invalid_argument("distort_scan: rms values and diffusion must be ≥ 0");

  DistortedScan out;
  out.nx = nx;
  out.ny = ny;
  out.positions_A = g.nominal_positions();
  out.dose_multiplier.assign(n, 1.0);
  out.time_s.resize(n);
  for (std::size_t iy = 0; iy < ny; ++iy)
    for (std::size_t ix = 0; ix < nx; ++ix) out.time_s[iy * nx + ix] = g.pixel_time_s(ix, iy);

  if (d.moves_probe()) {
    const double th = g.rotation_deg * kPi / 180.0, c = std::cos(th), s = std::sin(th);
    // Scan-frame displacement (du along fast, dv along slow) and specimen-frame one (sx, sy).
    std::vector<double> du(n, 0.0), dv(n, 0.0), sx(n, 0.0), sy(n, 0.0);

    if (d.jitter.rms_A > 0) {
      for (std::size_t iy = 0; iy < ny; ++iy) {
        Rng rng(seed, RngPurpose::Scan, sample, (kJitter << 32) | iy);
        const double shift = d.jitter.rms_A * rng.normal();
        for (std::size_t ix = 0; ix < nx; ++ix) du[iy * nx + ix] += shift;
      }
    }
    if (d.flyback.amplitude_A != 0 && d.flyback.decay_us > 0) {
      for (std::size_t ix = 0; ix < nx; ++ix) {
        const double disp = d.flyback.amplitude_A * std::exp(-static_cast<double>(ix) * g.dwell_us / d.flyback.decay_us);
        for (std::size_t iy = 0; iy < ny; ++iy) du[iy * nx + ix] += disp;
      }
    }
    if (d.scan_noise.rms_A > 0 && !d.scan_noise.frequencies_Hz.empty()) {
      Rng rng(seed, RngPurpose::Scan, sample, kScanNoisePhase);
      const std::size_t m = d.scan_noise.frequencies_Hz.size();
      const double amp = d.scan_noise.rms_A * std::sqrt(2.0 / static_cast<double>(m));
      for (std::size_t k = 0; k < m; ++k) {
        const double w = 2.0 * kPi * d.scan_noise.frequencies_Hz[k];
        const double phx = rng.uniform(0.0, 2.0 * kPi), phy = rng.uniform(0.0, 2.0 * kPi);
        for (std::size_t i = 0; i < n; ++i) {
          du[i] += amp * std::sin(w * out.time_s[i] + phx);
          dv[i] += amp * std::sin(w * out.time_s[i] + phy);
        }
      }
    }
    if (d.mains.amplitude_x_A != 0 || d.mains.amplitude_y_A != 0) {
      Rng rng(seed, RngPurpose::Scan, sample, kMainsPhase);
      const double w = 2.0 * kPi * d.mains.frequency_Hz;
      const double phx = rng.uniform(0.0, 2.0 * kPi), phy = rng.uniform(0.0, 2.0 * kPi);
      for (std::size_t i = 0; i < n; ++i) {
        sx[i] += d.mains.amplitude_x_A * std::sin(w * out.time_s[i] + phx);
        sy[i] += d.mains.amplitude_y_A * std::sin(w * out.time_s[i] + phy);
      }
    }
    // Drift: the specimen moves by v·t + W(t); the probe lands on p − that.
    if (d.drift.velocity_x_A_per_s != 0 || d.drift.velocity_y_A_per_s != 0 || d.drift.diffusion_A_per_sqrt_s > 0) {
      double wx = 0, wy = 0;
      Rng rng(seed, RngPurpose::Scan, sample, kDriftWalk);
      for (std::size_t i = 0; i < n; ++i) {
        if (d.drift.diffusion_A_per_sqrt_s > 0 && i > 0) {
          const double step = d.drift.diffusion_A_per_sqrt_s * std::sqrt(out.time_s[i] - out.time_s[i - 1]);
          wx += step * rng.normal();
          wy += step * rng.normal();
        }
        sx[i] -= d.drift.velocity_x_A_per_s * out.time_s[i] + wx;
        sy[i] -= d.drift.velocity_y_A_per_s * out.time_s[i] + wy;
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      out.positions_A[i].x += c * du[i] - s * dv[i] + sx[i];
      out.positions_A[i].y += s * du[i] + c * dv[i] + sy[i];
    }
  }

  if (d.current.relative_rms > 0) {
    Rng rng(seed, RngPurpose::Scan, sample, kCurrent);
    const double sigma = d.current.relative_rms, tau = d.current.correlation_time_us * 1e-6;
    double delta = sigma * rng.normal();  // stationary start
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) {
        if (tau > 0) {
          const double a = std::exp(-(out.time_s[i] - out.time_s[i - 1]) / tau);
          delta = a * delta + sigma * std::sqrt(1.0 - a * a) * rng.normal();
        } else {
          delta = sigma * rng.normal();
        }
      }
      out.dose_multiplier[i] = std::max(0.0, 1.0 + delta);
    }
  }
  return out;
}

// ---------------------------------------------------------------- inverse map -------------

namespace {

struct Field {
  const DistortedScan& scan;
  std::size_t nx, ny;

  const Point2& at(std::size_t ix, std::size_t iy) const { return scan.positions_A[iy * nx + ix]; }

  // Bilinear patch of cell (cx, cy) at local (s, t); value and Jacobian columns.
  void eval(std::size_t cx, std::size_t cy, double s, double t, Point2& p, Point2& dfx, Point2& dfy) const {
    const Point2 &p00 = at(cx, cy), &p10 = at(cx + 1, cy), &p01 = at(cx, cy + 1), &p11 = at(cx + 1, cy + 1);
    p.x = (1 - s) * (1 - t) * p00.x + s * (1 - t) * p10.x + (1 - s) * t * p01.x + s * t * p11.x;
    p.y = (1 - s) * (1 - t) * p00.y + s * (1 - t) * p10.y + (1 - s) * t * p01.y + s * t * p11.y;
    dfx.x = (1 - t) * (p10.x - p00.x) + t * (p11.x - p01.x);
    dfx.y = (1 - t) * (p10.y - p00.y) + t * (p11.y - p01.y);
    dfy.x = (1 - s) * (p01.x - p00.x) + s * (p11.x - p10.x);
    dfy.y = (1 - s) * (p01.y - p00.y) + s * (p11.y - p10.y);
  }
  std::size_t cell(double f, std::size_t n) const {
    const double c = std::floor(f);
    if (!(c > 0)) return 0;
    return static_cast<std::size_t>(std::min(c, static_cast<double>(n - 2)));  // clamp before the cast
  }
  void eval_global(double fx, double fy, Point2& p, Point2& dfx, Point2& dfy) const {
    const std::size_t cx = cell(fx, nx), cy = cell(fy, ny);
    eval(cx, cy, fx - static_cast<double>(cx), fy - static_cast<double>(cy), p, dfx, dfy);
  }
};

bool solve2(const Point2& a, const Point2& b, const Point2& r, double& x, double& y) {
  // [a b]·(x, y) = r
  const double det = a.x * b.y - b.x * a.y;
  if (!(std::fabs(det) > 0)) return false;
  x = (r.x * b.y - b.x * r.y) / det;
  y = (a.x * r.y - r.x * a.y) / det;
  return true;
}

double tolerance_A(const ScanGeometry& g) { return 1e-9 * std::max(std::fabs(g.grid.step_x), std::fabs(g.grid.step_y)); }

MappedPoint make_point(const DistortedScan& scan, Point2 q, double fx, double fy, bool found) {
  MappedPoint m;
  m.specimen_A = q;
  m.image_px = {fx, fy};
  m.found = found;
  const double nx = static_cast<double>(scan.nx), ny = static_cast<double>(scan.ny);
  m.inside = found && fx >= -0.5 && fx <= nx - 0.5 && fy >= -0.5 && fy <= ny - 0.5;
  return m;
}

void check_scan(const DistortedScan& scan) {
  if (scan.nx < 2 || scan.ny < 2 || scan.positions_A.size() != scan.nx * scan.ny)
    throw std::invalid_argument("map_to_image needs a distorted scan of at least 2 × 2 positions");
}

// Newton on the whole piecewise-bilinear field from (fx, fy).
bool newton_global(const Field& f, Point2 q, double tol, double& fx, double& fy) {
  for (int it = 0; it < 60; ++it) {
    Point2 p, a, b;
    f.eval_global(fx, fy, p, a, b);
    const Point2 r{p.x - q.x, p.y - q.y};
    if (std::hypot(r.x, r.y) < tol) return true;
    double dx, dy;
    if (!solve2(a, b, r, dx, dy)) return false;
    const double len = std::hypot(dx, dy);
    if (len > 4.0) dx *= 4.0 / len, dy *= 4.0 / len;  // damp jumps across many cells
    fx -= dx;
    fy -= dy;
    if (!std::isfinite(fx) || !std::isfinite(fy)) return false;
  }
  return false;
}

// Every solution within cells [x0, x1] × [y0, y1]; edge cells extend by half a pixel.
void cell_search(const Field& f, Point2 q, double tol, std::size_t x0, std::size_t x1, std::size_t y0, std::size_t y1,
                 std::vector<Point2>& found) {
  const double eps = 1e-9;
  for (std::size_t cy = y0; cy <= y1; ++cy)
    for (std::size_t cx = x0; cx <= x1; ++cx) {
      const double smin = cx == 0 ? -0.5 : 0.0, smax = cx + 2 == f.nx ? 1.5 : 1.0;
      const double tmin = cy == 0 ? -0.5 : 0.0, tmax = cy + 2 == f.ny ? 1.5 : 1.0;
      // Bounding box of the (extended) patch: corners of the extended square suffice for
      // a bilinear patch, whose extremes lie on its corners.
      double bx0 = std::numeric_limits<double>::max(), bx1 = -bx0, by0 = bx0, by1 = -bx0;
      for (double s : {smin, smax})
        for (double t : {tmin, tmax}) {
          Point2 p, a, b;
          f.eval(cx, cy, s, t, p, a, b);
          bx0 = std::min(bx0, p.x), bx1 = std::max(bx1, p.x), by0 = std::min(by0, p.y), by1 = std::max(by1, p.y);
        }
      if (q.x < bx0 - tol || q.x > bx1 + tol || q.y < by0 - tol || q.y > by1 + tol) continue;
      double s = 0.5 * (smin + smax), t = 0.5 * (tmin + tmax);
      bool ok = false;
      for (int it = 0; it < 40; ++it) {
        Point2 p, a, b;
        f.eval(cx, cy, s, t, p, a, b);
        const Point2 r{p.x - q.x, p.y - q.y};
        if (std::hypot(r.x, r.y) < tol) {
          ok = true;
          break;
        }
        double ds, dt;
        if (!solve2(a, b, r, ds, dt)) break;
        s -= ds;
        t -= dt;
        if (!std::isfinite(s) || !std::isfinite(t)) break;
      }
      if (!ok || s < smin - eps || s > smax + eps || t < tmin - eps || t > tmax + eps) continue;
      const Point2 sol{static_cast<double>(cx) + s, static_cast<double>(cy) + t};
      bool dup = false;
      for (const Point2& o : found) dup = dup || (std::fabs(o.x - sol.x) < 1e-6 && std::fabs(o.y - sol.y) < 1e-6);
      if (!dup) found.push_back(sol);
    }
}

class Inverter {
 public:
  Inverter(const DistortedScan& scan, const ScanGeometry& g) : scan_(scan), g_(g), field_{scan, scan.nx, scan.ny} {
    check_scan(scan);
    if (g.nx() != scan.nx || g.ny() != scan.ny)
      throw std::invalid_argument("map_to_image: geometry and distorted scan differ in size");
    double maxd = 0;
    for (std::size_t iy = 0; iy < scan.ny; ++iy)
      for (std::size_t ix = 0; ix < scan.nx; ++ix) {
        const Point2 p = g.nominal_position(static_cast<double>(ix), static_cast<double>(iy));
        const Point2& t = scan.positions_A[iy * scan.nx + ix];
        maxd = std::max(maxd, std::hypot(t.x - p.x, t.y - p.y));
      }
    const double step = std::min(std::fabs(g.grid.step_x), std::fabs(g.grid.step_y));
    const double cells = static_cast<double>(std::max(scan.nx, scan.ny));  // a wider window adds nothing
    radius_ = static_cast<long>(std::min(std::ceil(maxd / step), cells)) + 2;
    tol_ = tolerance_A(g);
  }

  std::vector<Point2> all(Point2 q) const {
    const Point2 guess = g_.nominal_pixel(q);
    // Clamp in floating point first so that a far-away guess cannot overflow the cast.
    auto cellf = [](double f) { return static_cast<long>(std::floor(std::clamp(f, -1e15, 1e15))); };
    auto lo = [&](double f, std::size_t n) {
      const long c = cellf(f) - radius_;
      return static_cast<std::size_t>(std::clamp<long>(c, 0, static_cast<long>(n) - 2));
    };
    auto hi = [&](double f, std::size_t n) {
      const long c = cellf(f) + radius_;
      return static_cast<std::size_t>(std::clamp<long>(c, 0, static_cast<long>(n) - 2));
    };
    std::vector<Point2> found;
    if (!std::isfinite(guess.x) || !std::isfinite(guess.y)) return found;
    cell_search(field_, q, tol_, lo(guess.x, scan_.nx), hi(guess.x, scan_.nx), lo(guess.y, scan_.ny),
                hi(guess.y, scan_.ny), found);
    std::sort(found.begin(), found.end(), [&](const Point2& a, const Point2& b) {
      return std::hypot(a.x - guess.x, a.y - guess.y) < std::hypot(b.x - guess.x, b.y - guess.y);
    });
    return found;
  }

  MappedPoint one(Point2 q) const {
    const Point2 guess = g_.nominal_pixel(q);
    double fx = guess.x, fy = guess.y;
    if (newton_global(field_, q, tol_, fx, fy)) return make_point(scan_, q, fx, fy, true);
    const auto sols = all(q);
    if (sols.empty()) return make_point(scan_, q, guess.x, guess.y, false);
    return make_point(scan_, q, sols.front().x, sols.front().y, true);
  }

  const DistortedScan& scan_;
  const ScanGeometry& g_;
  Field field_;
  long radius_ = 2;
  double tol_ = 1e-9;
};

}  // namespace

MappedPoint map_to_image(const DistortedScan& scan, const ScanGeometry& geometry, Point2 q) {
  return Inverter(scan, geometry).one(q);
}

std::vector<MappedPoint> map_to_image_all(const DistortedScan& scan, const ScanGeometry& geometry, Point2 q) {
  std::vector<MappedPoint> out;
  for (const Point2& s : Inverter(scan, geometry).all(q)) out.push_back(make_point(scan, q, s.x, s.y, true));
  return out;
}

std::vector<MappedPoint> map_to_image(const DistortedScan& scan, const ScanGeometry& geometry,
                                      const std::vector<Point2>& q) {
  const Inverter inv(scan, geometry);
  std::vector<MappedPoint> out;
  out.reserve(q.size());
  for (const Point2& p : q) out.push_back(inv.one(p));
  return out;
}

Point2 image_to_specimen(const DistortedScan& scan, Point2 image_px) {
  check_scan(scan);
  const Field f{scan, scan.nx, scan.ny};
  Point2 p, a, b;
  f.eval_global(image_px.x, image_px.y, p, a, b);
  return p;
}

Image sample_at_positions(const DistortedScan& scan, const std::function<double(double, double)>& label) {
  if (scan.positions_A.size() != scan.nx * scan.ny) throw std::invalid_argument("sample_at_positions: bad scan");
  Image out(scan.nx, scan.ny);
  for (std::size_t i = 0; i < scan.positions_A.size(); ++i) out.data[i] = label(scan.positions_A[i].x, scan.positions_A[i].y);
  return out;
}

}  // namespace stemtwin
