#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

#include "stemtwin/physics/potential.hpp"
#include "stemtwin/physics/spectroscopy.hpp"

namespace stemtwin {

std::size_t ElementIntensity::element_index(int Z) const {
  const auto it = std::lower_bound(elements.begin(), elements.end(), Z);
  if (it == elements.end() || *it != Z)
    throw std::out_of_range("element intensity: element Z=" + std::to_string(Z) + " was not recorded");
  return std::size_t(it - elements.begin());
}

const double* ElementIntensity::row(std::size_t position, std::size_t depth) const {
  if (depth == SIZE_MAX) depth = depths_A.empty() ? 0 : depths_A.size() - 1;
  if (position >= positions) throw std::out_of_range("element intensity: position " + std::to_string(position) + " out of range");
  if (depth >= std::max<std::size_t>(1, depths_A.size()))
    throw std::out_of_range("element intensity: depth index " + std::to_string(depth) + " out of range");
  return values.data() + (depth * positions + position) * elements.size();
}

double ElementIntensity::at(std::size_t position, int Z, std::size_t depth) const {
  return row(position, depth)[element_index(Z)];
}

InelasticRecorder::InelasticRecorder(Structure structure, std::uint64_t seed, InelasticSettings settings)
    : structure_(std::move(structure)), seed_(seed), settings_(std::move(settings)) {
  auto check_width = [](double w, const std::string& what) {
    if (!(w >= 0) || !std::isfinite(w))
      throw std::invalid_argument("inelastic recorder: " + what + " must be a finite number ≥ 0 Å (got " + std::to_string(w) + ")");
  };
  check_width(settings_.width_A, "width");
  for (const auto& [Z, w] : settings_.element_width_A) check_width(w, "width of Z=" + std::to_string(Z));
  for (double d : settings_.depths_A)
    if (!(d > 0)) throw std::invalid_argument("inelastic recorder: recording depth must be > 0 Å (got " + std::to_string(d) + ")");
  std::set<int> present;
  for (const Atom& a : structure_.atoms) {
    if (a.Z < 1 || a.Z > 103) throw std::invalid_argument("inelastic recorder: atom with atomic number " + std::to_string(a.Z));
    if (a.occupancy > 0) present.insert(a.Z);
  }
  std::set<int> wanted(settings_.elements.begin(), settings_.elements.end());
  if (wanted.empty()) wanted = present;
  for (int Z : wanted)
    if (Z < 1 || Z > 103) throw std::invalid_argument("inelastic recorder: element Z=" + std::to_string(Z) + " outside 1..103");
  result_.elements.assign(wanted.begin(), wanted.end());  // ascending; an absent element records 0
}

void InelasticRecorder::begin(const Grid& g, const std::vector<double>& dz, std::size_t configurations, std::size_t positions) {
  const Cell& cell = structure_.cell;
  if (std::fabs(cell.x - g.lx) > 1e-6 * cell.x || std::fabs(cell.y - g.ly) > 1e-6 * cell.y)
    throw std::invalid_argument("inelastic recorder: the scan's grid (" + std::to_string(g.lx) + " × " + std::to_string(g.ly) +
                                " Å) is not the structure's cell (" + std::to_string(cell.x) + " × " + std::to_string(cell.y) + " Å)");
  std::vector<double> bounds{0.0};
  for (double t : dz) bounds.push_back(bounds.back() + t);
  if (std::fabs(bounds.back() - cell.z) > 1e-6 * std::max(1.0, cell.z))
    throw std::invalid_argument("inelastic recorder: the slices (" + std::to_string(bounds.back()) +
                                " Å in all) do not span the structure's thickness (" + std::to_string(cell.z) + " Å)");
  const std::size_t ns = dz.size();
  const bool thermal = std::any_of(structure_.atoms.begin(), structure_.atoms.end(), [](const Atom& a) { return a.rms > 0; });
  const double inv_pixel_area = 1.0 / (g.dx() * g.dy());
  constexpr double kBoundaryTolerance_A = 1e-6;  // as build_potential (potential.hpp)

  // Index ns holds the reads of the exit wave (SliceObserver: observe(…, ns, …)).
  footprints_.assign(configurations, std::vector<std::vector<Footprint>>(ns + 1));
  weights_.assign(configurations, {});
  nx_ = g.nx;
  ny_ = g.ny;
  wave_nx_ = g.nx;
  wave_ny_ = g.ny;
  windowed_ = false;
  window_footprints_.clear();
  slots_.clear();  // read_pixels() builds them again for PRISM
  auto wrap = [](long i, std::size_t n) { return std::uint32_t(((i % long(n)) + long(n)) % long(n)); };
  for (std::size_t c = 0; c < configurations; ++c) {
    const Structure s = thermal ? displace_atoms(structure_, seed_, c) : structure_;
    std::vector<float>& wts = weights_[c];
    for (const Atom& a : s.atoms) {
      if (a.occupancy <= 0) continue;
      const auto it = std::lower_bound(result_.elements.begin(), result_.elements.end(), a.Z);
      if (it == result_.elements.end() || *it != a.Z) continue;
      const auto el = std::uint32_t(it - result_.elements.begin());
      const auto up = std::upper_bound(bounds.begin(), bounds.end(), a.z + kBoundaryTolerance_A);
      const auto sl = std::size_t(std::clamp<long>(long(up - bounds.begin()) - 1, 0, long(ns) - 1));
      // ρ at the atom's own depth: linear in z between the intensity entering its slice and
      // entering the next (the exit wave below the last slice); t = 0 on the entrance plane
      // (the tolerance above puts an atom within it there, reading exactly the entrance).
      const double t = std::clamp((a.z - bounds[sl]) / dz[sl], 0.0, 1.0);
      const double t_read = t < kBoundaryTolerance_A / dz[sl] ? 0.0 : t;
      // Fractional pixel coordinates, periodic (pixel i is centred at x = i·dx).
      const double fx = (a.x - std::floor(a.x / cell.x) * cell.x) / g.dx();
      const double fy = (a.y - std::floor(a.y / cell.y) * cell.y) / g.dy();
      const auto ew = settings_.element_width_A.find(a.Z);
      const double sigma = ew != settings_.element_width_A.end() ? ew->second : settings_.width_A;
      Footprint f{el, std::uint32_t(sl), 0, 0, 0, 0, std::uint32_t(wts.size()), a.occupancy * inv_pixel_area};
      // One axis: first pixel and normalised weights.
      auto axis = [&](double frac, double step, std::size_t n, std::uint32_t& first, std::uint32_t& span) {
        std::vector<double> w;
        long i0;
        if (sigma == 0) {  // δ: linear interpolation between the two neighbouring pixels
          i0 = long(std::floor(frac));
          const double t = frac - double(i0);
          w = {1 - t, t};
        } else {  // Gaussian of 1σ = width, cut at ±3σ (99.7 % per axis), at least the nearest pixel
          const double r = 3 * sigma / step;
          i0 = long(std::ceil(frac - r));
          const long i1 = std::max(i0, long(std::floor(frac + r)));
          for (long i = i0; i <= i1; ++i) {
            const double d = (double(i) - frac) * step;
            w.push_back(std::exp(-d * d / (2 * sigma * sigma)));
          }
        }
        if (w.size() > n) throw std::invalid_argument("inelastic recorder: the footprint (width " + std::to_string(sigma) +
                                                      " Å) is wider than the cell");
        double total = 0;
        for (double v : w) total += v;
        if (!(total > 0)) {  // narrower than a pixel: the nearest one
          i0 = std::lround(frac);
          w = {1.0};
          total = 1;
        }
        first = wrap(i0, n);
        span = std::uint32_t(w.size());
        for (double v : w) wts.push_back(float(v / total));
      };
      axis(fx, g.dx(), g.nx, f.x0, f.nx_span);
      axis(fy, g.dy(), g.ny, f.y0, f.ny_span);
      // Two reads sharing the footprint's weights: (1 − t) at the slice's entrance, t at the
      // next; an atom on the entrance plane (t = 0) is read once, as before.
      const double scale = f.scale;
      if (t_read < 1) {
        f.scale = scale * (1 - t_read);
        footprints_[c][sl].push_back(f);
      }
      if (t_read > 0) {
        f.scale = scale * t_read;
        footprints_[c][sl + 1].push_back(f);
      }
    }
  }
  // Recording depths → the last slice each includes (nearest boundary, as detail::depth_slices).
  std::vector<std::size_t> last;
  result_.depths_A.clear();
  if (settings_.depths_A.empty()) {
    last.push_back(ns - 1);
    result_.depths_A.push_back(bounds[ns]);
  }
  for (double d : settings_.depths_A) {
    std::size_t best = 1;
    for (std::size_t b = 1; b <= ns; ++b)
      if (std::fabs(bounds[b] - d) < std::fabs(bounds[best] - d)) best = b;
    last.push_back(best - 1);
    result_.depths_A.push_back(bounds[best]);
  }
  depths_of_slice_.assign(ns, {});  // by the slice holding the atom (Footprint::slice), not the wave read
  for (std::size_t s = 0; s < ns; ++s)
    for (std::size_t d = 0; d < last.size(); ++d)
      if (s <= last[d]) depths_of_slice_[s].push_back(std::uint32_t(d));
  result_.positions = positions;
  result_.values.assign(last.size() * positions * result_.elements.size(), 0.0);
}

void InelasticRecorder::observe(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
                                const cfloat* psi) {
  // The wave entering `slice` is read by the atoms of this slice and of the one above;
  // both below every recording depth: nothing to record (depths_of_slice_ only shrinks with depth).
  if (depths_of_slice_[slice == 0 ? 0 : slice - 1].empty()) return;
  const std::size_t ne = result_.elements.size(), stride = result_.positions * ne;
  double* out = result_.values.data() + position * ne;
  const float* wts = weights_[configuration].data();
  const std::size_t nx = wave_nx_, ny = wave_ny_;
  for (const Footprint& f : (windowed_ ? window_footprints_ : footprints_)[configuration][slice]) {
    const float* wx = wts + f.weights;
    const float* wy = wx + f.nx_span;
    // Columns x0 … x0+span−1, split where they wrap around the cell (a window's footprints
    // never wrap, except along an axis where the window is the whole cell).
    const std::size_t run1 = std::min<std::size_t>(f.nx_span, nx - f.x0);
    double acc = 0;
    for (std::size_t j = 0; j < f.ny_span; ++j) {
      std::size_t row = f.y0 + j;
      if (row >= ny) row -= ny;
      const cfloat* r = psi + row * nx;
      // A row sum of a few tens of terms in float (relative error ~1e-7, far below the
      // model's); the rows are accumulated in double.
      float sum = 0;
      const float* rf = reinterpret_cast<const float*>(r);
      for (std::size_t i = 0; i < run1; ++i) {
        const float re = rf[2 * (f.x0 + i)], im = rf[2 * (f.x0 + i) + 1];
        sum += wx[i] * (re * re + im * im);
      }
      for (std::size_t i = run1; i < f.nx_span; ++i) {
        const float re = rf[2 * (i - run1)], im = rf[2 * (i - run1) + 1];
        sum += wx[i] * (re * re + im * im);
      }
      acc += double(wy[j]) * double(sum);
    }
    const double v = weight * f.scale * acc;
    for (std::uint32_t d : depths_of_slice_[f.slice]) out[d * stride + f.element] += v;
  }
}

}  // namespace stemtwin
