// Defects: vacancies, dopants, interstitials, planar faults (antiphase boundaries), FCC stacking faults.
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

// --- point defects ------------------------------------------------------------------------------
namespace {
std::vector<std::size_t> pick(const Specimen& s, int Z, double fraction, Rng rng, const char* what) {
  if (!(fraction >= 0 && fraction <= 1)) throw std::invalid_argument(std::string(what) + " fraction must lie in 0..1");
  std::vector<std::size_t> cand;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i)
    if (s.structure.atoms[i].Z == Z &&
        (s.atom_class[i] == cls(SpecimenClass::Crystal) || s.atom_class[i] == cls(SpecimenClass::Film)))
      cand.push_back(i);
  const std::size_t k = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(cand.size())));
  for (std::size_t i = 0; i < k; ++i) std::swap(cand[i], cand[i + rng.below(cand.size() - i)]);  // partial shuffle
  cand.resize(k);
  return cand;
}
}  // namespace

std::size_t add_vacancies(Specimen& s, int Z, double fraction, std::uint64_t seed, std::uint64_t sample) {
  check_specimen(s);
  auto idx = pick(s, Z, fraction, Rng(seed, RngPurpose::Structure, sample, kVacancies), "vacancy");
  std::vector<char> rm(s.structure.atoms.size(), 0);
  for (std::size_t i : idx) {
    rm[i] = 1;
    s.vacancies.push_back(s.structure.atoms[i]);
  }
  erase_atoms(s, rm);
  return idx.size();
}

std::size_t add_dopants(Specimen& s, int host_Z, int dopant_Z, double fraction, std::uint64_t seed,
                        std::uint64_t sample) {
  check_specimen(s);
  element_symbol(dopant_Z);
  auto idx = pick(s, host_Z, fraction, Rng(seed, RngPurpose::Structure, sample, kDopants), "dopant");
  for (std::size_t i : idx) {
    s.structure.atoms[i].Z = dopant_Z;
    // rms stays the host site's: a substitutional dopant vibrates with its site
    s.atom_class[i] = cls(SpecimenClass::Dopant);
  }
  return idx.size();
}

std::size_t add_interstitials(Specimen& s, int Z, std::size_t count, double min_distance, std::uint64_t seed,
                              std::uint64_t sample) {
  check_specimen(s);
  element_symbol(Z);
  if (!(min_distance > 0)) throw std::invalid_argument("interstitial min_distance must be > 0 Å");
  const Cell& c = s.structure.cell;
  std::vector<int> sp(count, Z);
  auto placed = rsa(s.structure, sp, {0, 0, 0}, {c.x, c.y, c.z}, [](const Vec3&) { return true; }, min_distance,
                    Rng(seed, RngPurpose::Structure, sample, kInterstitials));
  for (const Atom& a : placed) {
    s.structure.atoms.push_back(a);
    s.atom_class.push_back(cls(SpecimenClass::Interstitial));
  }
  return placed.size();
}

std::vector<Atom> random_sequential_atoms(const Structure& existing, const std::vector<int>& species, const Vec3& lo,
                                          const Vec3& hi, double min_distance, std::uint64_t seed,
                                          std::uint64_t sample, std::uint64_t stream) {
  if (!(min_distance > 0)) throw std::invalid_argument("min_distance must be > 0 Å");
  return rsa(existing, species, lo, hi, [](const Vec3&) { return true; }, min_distance,
             Rng(seed, RngPurpose::Structure, sample, stream));
}

// --- planar faults ---------------------------------------------------------------------------
std::size_t add_planar_fault(Specimen& s, const PlanarFault& f) {
  check_specimen(s);
  check_axis(f.axis, "fault axis");
  Cell& c = s.structure.cell;
  const double L = cell_len(c, f.axis);
  if (!(f.position > 0 && f.position < L)) throw std::invalid_argument("fault position must lie inside the cell");
  std::vector<char> shifted(s.structure.atoms.size(), 0);
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    Atom& a = s.structure.atoms[i];
    if (coord(a, f.axis) < f.position) continue;
    shifted[i] = 1;
    a.x = wrap(a.x + f.shift[0], c.x);
    a.y = wrap(a.y + f.shift[1], c.y);
    a.z += f.shift[2];
    if (f.axis == 2 || c.z > 0) a.z = wrap(a.z, c.z);
  }
  // remove shifted atoms that landed on kept ones
  Structure kept{c, {}};
  for (std::size_t i = 0; i < shifted.size(); ++i)
    if (!shifted[i]) kept.atoms.push_back(s.structure.atoms[i]);
  std::vector<char> rm(s.structure.atoms.size(), 0);
  std::size_t removed = 0;
  if (f.overlap_distance > 0) {
    PointHash hash(c, -1, c.z + 1, f.overlap_distance);
    for (const Atom& a : kept.atoms) hash.add({a.x, a.y, a.z});
    for (std::size_t i = 0; i < shifted.size(); ++i) {
      const Atom& a = s.structure.atoms[i];
      if (shifted[i] && !hash.clear({a.x, a.y, a.z}, f.overlap_distance)) {
        rm[i] = 1;
        ++removed;
      }
    }
  }
  erase_atoms(s, rm);
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    double v = coord(s.structure.atoms[i], f.axis);
    double d1 = std::abs(v - f.position), d2 = std::min(v, L - v);
    if ((d1 < f.boundary_width || d2 < f.boundary_width) && s.atom_class[i] != cls(SpecimenClass::Dopant) &&
        s.atom_class[i] != cls(SpecimenClass::Interstitial))
      s.atom_class[i] = cls(SpecimenClass::Boundary);
  }
  s.info["fault_removed_atoms"] = static_cast<double>(removed);
  return removed;
}

PlanarFault perovskite_antiphase_boundary(double a, double position) {
  PlanarFault f;
  f.axis = 0;
  f.position = position;
  f.shift = {0, a / 2, a / 2};
  f.overlap_distance = 0.8;
  f.boundary_width = a / 2;
  return f;
}

// --- stacking fault ----------------------------------------------------------------------------
Specimen build_fcc_stacking_fault(const StackingFaultParams& p) {
  if (!(p.a > 0)) throw std::invalid_argument("fcc a must be > 0 Å");
  if (p.planes < 5 || p.planes % 3 != 2)
    throw std::invalid_argument("stacking fault: planes must be ≥ 5 and ≡ 2 (mod 3) so one intrinsic fault is periodic");
  if (p.fault_after < 0 || p.fault_after >= p.planes - 1) throw std::invalid_argument("fault_after outside the planes");
  if (p.repeats_x < 1 || p.repeats_z < 1) throw std::invalid_argument("repeats must be ≥ 1");
  const double lx = p.a * std::sqrt(6.0) / 2, lz = p.a * std::sqrt(2.0) / 2, d111 = p.a / std::sqrt(3.0);
  // In a (111) plane the atoms of one layer, in the cell lx × lz, are at (0,0) and (lx/2, lz/2);
  // layers B and C are shifted along x by lx/3 and 2·lx/3 (the Shockley partial a/6[11-2]).
  std::vector<int> letter(p.planes);
  letter[0] = 0;
  for (int i = 1; i < p.planes; ++i) letter[i] = (letter[i - 1] + (i - 1 == p.fault_after ? 2 : 1)) % 3;
  if ((letter[p.planes - 1] + 1) % 3 != letter[0]) throw std::logic_error("stacking sequence not periodic");
  Specimen s;
  s.structure.cell = {lx * p.repeats_x, d111 * p.planes, lz * p.repeats_z};
  for (int i = 0; i < p.planes; ++i) {
    int prev = letter[(i + p.planes - 1) % p.planes], next = letter[(i + 1) % p.planes];
    const bool hcp = prev == next;  // the layer sits between two equal layers
    for (int rx = 0; rx < p.repeats_x; ++rx)
      for (int rz = 0; rz < p.repeats_z; ++rz)
        for (int k = 0; k < 2; ++k) {
          double x = (rx + letter[i] / 3.0 + 0.5 * k) * lx, z = (rz + 0.5 * k) * lz;
          s.structure.atoms.push_back({p.Z, wrap(x, s.structure.cell.x), (i + 0.5) * d111, z, 1.0, 0.0});
          s.atom_class.push_back(cls(hcp ? SpecimenClass::Boundary : SpecimenClass::Crystal));
        }
  }
  s.info["fault_y"] = (p.fault_after + 1) * d111;
  return s;
}

}  // namespace stemtwin
