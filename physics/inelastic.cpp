#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

#include "stemtwin/potential.hpp"
#include "stemtwin/spectroscopy.hpp"

namespace stemtwin {

std::size_t ElementIntensity::element_index(int Z) const {
  const auto it = std::lower_bound(elements.begin(), elements.end(), Z);
  if (it == elements.end() || *it != Z)
    throw std::out_of_range("element intensity: element Z=" + std::to_string(Z) + " was not recorded");
  return std::size_t(it - elements.begin());
}

double ElementIntensity::at(std::size_t position, int Z) const {
  if (position >= positions) throw std::out_of_range("element intensity: position " + std::to_string(position) + " out of range");
  return values[position * elements.size() + element_index(Z)];
}

InelasticRecorder::InelasticRecorder(Structure structure, std::uint64_t seed, InelasticSettings settings)
    : structure_(std::move(structure)), seed_(seed), settings_(std::move(settings)) {
  if (!(settings_.width_A >= 0) || !std::isfinite(settings_.width_A))
    throw std::invalid_argument("inelastic recorder: width must be a finite number ≥ 0 Å (got " +
                                std::to_string(settings_.width_A) + ")");
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
  const double sigma = settings_.width_A;
  constexpr double kBoundaryTolerance_A = 1e-6;  // as build_potential (potential.hpp)

  taps_.assign(configurations, std::vector<std::vector<Tap>>(ns));
  for (std::size_t c = 0; c < configurations; ++c) {
    const Structure s = thermal ? displace_atoms(structure_, seed_, c) : structure_;
    for (const Atom& a : s.atoms) {
      if (a.occupancy <= 0) continue;
      const auto it = std::lower_bound(result_.elements.begin(), result_.elements.end(), a.Z);
      if (it == result_.elements.end() || *it != a.Z) continue;
      const auto el = std::uint32_t(it - result_.elements.begin());
      const auto up = std::upper_bound(bounds.begin(), bounds.end(), a.z + kBoundaryTolerance_A);
      const auto sl = std::size_t(std::clamp<long>(long(up - bounds.begin()) - 1, 0, long(ns) - 1));
      std::vector<Tap>& taps = taps_[c][sl];
      // Fractional pixel coordinates, periodic (pixel i is centred at x = i·dx).
      const double fx = (a.x - std::floor(a.x / cell.x) * cell.x) / g.dx();
      const double fy = (a.y - std::floor(a.y / cell.y) * cell.y) / g.dy();
      auto wrap = [](long i, std::size_t n) { return std::size_t(((i % long(n)) + long(n)) % long(n)); };
      const double scale = a.occupancy * inv_pixel_area;
      if (sigma == 0) {
        // δ-function: bilinear interpolation of |ψ|² between the four surrounding pixels.
        const long ix = long(std::floor(fx)), iy = long(std::floor(fy));
        const double tx = fx - double(ix), ty = fy - double(iy);
        const double w[4] = {(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty};
        const long ox[4] = {0, 1, 0, 1}, oy[4] = {0, 0, 1, 1};
        for (int k = 0; k < 4; ++k)
          if (w[k] > 0)
            taps.push_back({std::uint32_t(wrap(iy + oy[k], g.ny) * g.nx + wrap(ix + ox[k], g.nx)), el, float(scale * w[k])});
      } else {
        // Gaussian footprint of 1σ = width, cut at 4σ, normalised to 1 on the pixels it covers
        // (so a uniform ρ is returned unchanged). Pixels closer than the cut-off to more
        // than one periodic image are counted once per image: the footprint is periodic.
        const double rx = 4 * sigma / g.dx(), ry = 4 * sigma / g.dy();
        const long x0 = long(std::ceil(fx - rx)), x1 = long(std::floor(fx + rx));
        const long y0 = long(std::ceil(fy - ry)), y1 = long(std::floor(fy + ry));
        const std::size_t first = taps.size();
        double total = 0;
        for (long iy = y0; iy <= y1; ++iy)
          for (long ix = x0; ix <= x1; ++ix) {
            const double ddx = (double(ix) - fx) * g.dx(), ddy = (double(iy) - fy) * g.dy();
            const double r2 = ddx * ddx + ddy * ddy;
            if (r2 > 16 * sigma * sigma) continue;
            const double w = std::exp(-r2 / (2 * sigma * sigma));
            total += w;
            taps.push_back({std::uint32_t(wrap(iy, g.ny) * g.nx + wrap(ix, g.nx)), el, float(w)});
          }
        if (taps.size() == first) {  // footprint narrower than a pixel: the nearest pixel
          taps.push_back({std::uint32_t(wrap(std::lround(fy), g.ny) * g.nx + wrap(std::lround(fx), g.nx)), el, 1.0f});
          total = 1;
        }
        for (std::size_t k = first; k < taps.size(); ++k) taps[k].weight = float(double(taps[k].weight) / total * scale);
      }
    }
  }
  result_.positions = positions;
  result_.values.assign(positions * result_.elements.size(), 0.0);
}

void InelasticRecorder::observe(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
                                const cfloat* psi) {
  double* out = result_.values.data() + position * result_.elements.size();
  for (const Tap& t : taps_[configuration][slice]) out[t.element] += weight * double(t.weight) * double(std::norm(psi[t.pixel]));
}

}  // namespace stemtwin
