// Microscope::Impl: booking the dose of an acquisition (dose map, beam-on time) and beam
// damage.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "microscope_impl.hpp"
#include "stemtwin/core/constants.hpp"

namespace stemtwin {

void Microscope::Impl::deposit(const std::vector<Point2>& pos, const std::vector<double>& electrons, std::uint64_t call) {
  std::lock_guard<std::mutex> lock(state);
  const Cell& c = specimen.structure.cell;
  double sum = 0;
  if (world) {  // not periodic: electrons outside the world count in the total only
    const double fx = double(world_dose.nx) / c.x, fy = double(world_dose.ny) / c.y;
    for (std::size_t i = 0; i < pos.size(); ++i) {
      sum += electrons[i];
      const double X = pos[i].x * fx, Y = pos[i].y * fy;
      if (X >= 0 && Y >= 0 && X < double(world_dose.nx) && Y < double(world_dose.ny)) world_dose(std::size_t(Y), std::size_t(X)) += electrons[i];
    }
  }
  for (std::size_t i = 0; i < pos.size() && !world; ++i) {
    const double x = pos[i].x - std::floor(pos[i].x / c.x) * c.x, y = pos[i].y - std::floor(pos[i].y / c.y) * c.y;
    const auto ix = std::min(dose.nx - 1, std::size_t(x / kDoseMapPixel_A));
    const auto iy = std::min(dose.ny - 1, std::size_t(y / kDoseMapPixel_A));
    dose(iy, ix) += electrons[i];
    sum += electrons[i];
  }
  total_electrons += sum;
  if (optics.current_pA > 0) beam_time_s += sum / (optics.current_pA * 1e-12 / kElementaryCharge_C);
  if (settings.damage.enabled) damage(pos, electrons, call);
}

void Microscope::Impl::deposit_visited(const std::vector<Point2>& pos, const std::vector<double>& electrons, const Visited& visited,
                                       std::uint64_t call) {
  if (visited.count == 0) return;
  std::vector<Point2> p(visited.count);
  std::vector<double> e(visited.count);
  for (std::size_t k = 0; k < visited.count; ++k) p[k] = pos[visited.index(k)], e[k] = electrons[visited.index(k)];
  deposit(p, e, call);
}

void Microscope::Impl::damage(const std::vector<Point2>& pos, const std::vector<double>& electrons, std::uint64_t call) {
  const DamageSettings& d = settings.damage;
  Structure& s = specimen.structure;
  const double r2 = d.radius_A * d.radius_A, area = kPi * r2;
  std::vector<double> local_dose(s.atoms.size(), 0.0);
  for (std::size_t i = 0; i < pos.size(); ++i)
    for (std::size_t a = 0; a < s.atoms.size(); ++a) {
      double dx = s.atoms[a].x - pos[i].x, dy = s.atoms[a].y - pos[i].y;
      dx -= std::round(dx / s.cell.x) * s.cell.x;
      dy -= std::round(dy / s.cell.y) * s.cell.y;
      if (dx * dx + dy * dy <= r2) local_dose[a] += electrons[i] / area;
    }
  bool changed = false;
  std::vector<Atom> kept;
  std::vector<int> kept_class;
  for (std::size_t a = 0; a < s.atoms.size(); ++a) {
    Atom atom = s.atoms[a];
    bool keep = true;
    if (local_dose[a] > 0) {
      const double sigma = d.cross_section_A2 * std::pow(double(d.Z_ref) / double(atom.Z), d.exponent);
      Rng rng(settings.seed, RngPurpose::Damage, call + 1, a);  // call + 1: the counter after this call, as before
      if (rng.uniform() < 1.0 - std::exp(-sigma * local_dose[a])) {
        changed = true;
        if (rng.uniform() < d.removal_fraction) {
          keep = false;
          specimen.vacancies.push_back(atom);
          ++removed;
        } else {
          atom.x += d.displacement_A * rng.normal();
          atom.y += d.displacement_A * rng.normal();
          ++displaced;
        }
      }
    }
    if (keep) {
      kept.push_back(atom);
      kept_class.push_back(specimen.atom_class[a]);
    }
  }
  if (changed) {
    s.atoms = std::move(kept);
    specimen.atom_class = std::move(kept_class);
    ++specimen_version;
    cache.clear();  // every window may hold a changed atom
    cached_windows.store(0);
    clean_cache.clear();
    maps.clear();
  }
}

}  // namespace stemtwin
