// Amorphous regions: a rough front through a crystal, the atoms behind it made amorphous.
#include "stemtwin/specimen/builders.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/core/rng.hpp"
#include "stemtwin/specimen/structure_io.hpp"

#include "builder_common.hpp"

namespace stemtwin {

using namespace builder_detail;

// --- amorphous region ---------------------------------------------------------------------------
namespace {
struct Front {
  int axis, uaxis;
  double base, amplitude, period_u;
  int shape;
  std::vector<double> rough;  // unit-rms profile on a fine grid over u
  double at(double u) const {
    if (shape == 0) return base;
    if (shape == 1) return base + amplitude * std::sin(2 * std::numbers::pi * u / period_u);
    const std::size_t n = rough.size();
    double t = (u - period_u * std::floor(u / period_u)) / period_u * n;
    std::size_t i0 = static_cast<std::size_t>(t) % n;
    double w = t - std::floor(t);
    return base + amplitude * ((1 - w) * rough[i0] + w * rough[(i0 + 1) % n]);
  }
};

Front make_front(const Specimen& s, const AmorphousParams& p, std::uint64_t seed, std::uint64_t sample) {
  check_axis(p.axis, "amorphous axis");
  if (!(p.fraction >= 0 && p.fraction <= 1)) throw std::invalid_argument("amorphous fraction must lie in 0..1");
  if (!(p.amplitude >= 0)) throw std::invalid_argument("front amplitude must be ≥ 0 Å");
  Front f;
  f.axis = p.axis;
  f.uaxis = p.axis == 0 ? 1 : 0;
  f.base = p.fraction * cell_len(s.structure.cell, p.axis);
  f.amplitude = p.amplitude;
  const double Lu = cell_len(s.structure.cell, f.uaxis);
  f.shape = p.shape == FrontShape::Planar ? 0 : p.shape == FrontShape::Sinusoidal ? 1 : 2;
  if (f.shape != 0 && !(p.wavelength > 0)) throw std::invalid_argument("front wavelength must be > 0 Å");
  if (f.shape == 1) f.period_u = Lu / std::max(1.0, std::round(Lu / p.wavelength));  // periodic in the cell
  if (f.shape == 2) {
    f.period_u = Lu;
    const std::size_t n = 512;
    Rng rng(seed, RngPurpose::Structure, sample, kFront);
    std::vector<double> g(n);
    for (double& v : g) v = rng.normal();
    std::array<int, 3> dims{static_cast<int>(n), 1, 1};
    smooth_periodic(g, dims, p.wavelength / Lu * n);
    double mean = std::accumulate(g.begin(), g.end(), 0.0) / n, var = 0;
    for (double& v : g) v -= mean;
    for (double v : g) var += v * v;
    double sd = std::sqrt(var / n);
    for (double& v : g) v = sd > 0 ? v / sd : 0;
    f.rough = g;
  }
  return f;
}
}  // namespace

std::vector<double> amorphous_front(const Specimen& s, const AmorphousParams& p, const std::vector<double>& u,
                                    std::uint64_t seed, std::uint64_t sample) {
  const Front f = make_front(s, p, seed, sample);
  std::vector<double> out;
  out.reserve(u.size());
  for (double v : u) out.push_back(f.at(v));
  return out;
}

void amorphize(Specimen& s, const AmorphousParams& p, std::uint64_t seed, std::uint64_t sample) {
  check_specimen(s);
  const Front f = make_front(s, p, seed, sample);
  auto in_region = [&](const Vec3& r) { return r[f.axis] < f.at(r[f.uaxis]) && r[f.axis] >= 0; };
  std::vector<char> in(s.structure.atoms.size(), 0);
  std::vector<int> species;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    const Atom& a = s.structure.atoms[i];
    if (in_region({a.x, a.y, a.z})) {
      in[i] = 1;
      species.push_back(a.Z);
    }
  }
  // vacancies inside the region lose their meaning: there are no sites there any more
  std::erase_if(s.vacancies, [&](const Atom& v) { return in_region({v.x, v.y, v.z}); });
  const Cell& cell = s.structure.cell;
  double dmin = p.min_distance;
  if (p.mode == AmorphousMode::Displacement) {
    if (!(p.displacement_rms >= 0)) throw std::invalid_argument("displacement_rms must be ≥ 0 Å");
    Rng rng(seed, RngPurpose::Structure, sample, kAmorphousDisplace);
    for (std::size_t i = 0; i < in.size(); ++i)
      if (in[i]) {
        Atom& a = s.structure.atoms[i];
        a.x = wrap(a.x + p.displacement_rms * rng.normal(), cell.x);
        a.y = wrap(a.y + p.displacement_rms * rng.normal(), cell.y);
        a.z += p.displacement_rms * rng.normal();
        s.atom_class[i] = cls(SpecimenClass::Amorphous);
      }
  } else if (!species.empty()) {
    // region volume from the atoms' density: the region keeps the crystal's number density
    const double n_density = static_cast<double>(s.structure.atoms.size()) / (cell.x * cell.y * cell.z);
    if (!(dmin > 0)) dmin = 0.7 * std::cbrt(1.0 / n_density);
    Rng shuffle(seed, RngPurpose::Structure, sample, kAmorphousSpecies);
    for (std::size_t i = species.size(); i > 1; --i) std::swap(species[i - 1], species[shuffle.below(i)]);
    erase_atoms(s, in);
    Vec3 lo{0, 0, 0}, hi{cell.x, cell.y, cell.z};
    hi[f.axis] = std::min(cell_len(cell, f.axis), f.base + f.amplitude * (f.shape == 2 ? 6.0 : 1.0) + 1e-9);
    std::vector<Atom> placed = rsa(s.structure, species, lo, hi, in_region, dmin,
                                   Rng(seed, RngPurpose::Structure, sample, kAmorphousPlace));
    for (const Atom& a : placed) {
      s.structure.atoms.push_back(a);
      s.atom_class.push_back(cls(SpecimenClass::Amorphous));
    }
  }
  std::size_t n_am = std::count(s.atom_class.begin(), s.atom_class.end(), cls(SpecimenClass::Amorphous));
  s.info["amorphous_fraction"] = s.structure.atoms.empty() ? 0.0 : double(n_am) / s.structure.atoms.size();
  s.info["amorphous_min_distance"] = dmin;
}

}  // namespace stemtwin
