#include "stemtwin/specimen.hpp"

#include <cmath>

namespace stemtwin {

std::string class_name(SpecimenClass c) {
  switch (c) {
    case SpecimenClass::Crystal: return "crystal";
    case SpecimenClass::Amorphous: return "amorphous";
    case SpecimenClass::Dopant: return "dopant";
    case SpecimenClass::Interstitial: return "interstitial";
    case SpecimenClass::Vacancy: return "vacancy";
    case SpecimenClass::Boundary: return "boundary";
    case SpecimenClass::Film: return "film";
    case SpecimenClass::Particle: return "particle";
    case SpecimenClass::Support: return "support";
    case SpecimenClass::Vacuum: return "vacuum";
  }
  throw std::invalid_argument("unknown specimen class id " + std::to_string(static_cast<int>(c)));
}

std::vector<std::string> default_class_names() {
  std::vector<std::string> names;
  for (int i = 0; i < kNumSpecimenClasses; ++i) names.push_back(class_name(static_cast<SpecimenClass>(i)));
  return names;
}

Specimen make_specimen(Structure s, SpecimenClass cls) {
  Specimen sp;
  sp.atom_class.assign(s.atoms.size(), static_cast<int>(cls));
  sp.structure = std::move(s);
  return sp;
}

void check_specimen(const Specimen& s) {
  if (s.atom_class.size() != s.structure.atoms.size())
    throw std::invalid_argument("specimen has " + std::to_string(s.structure.atoms.size()) + " atoms but " +
                                std::to_string(s.atom_class.size()) + " class ids");
  for (int c : s.atom_class)
    if (c < 0 || c >= static_cast<int>(s.class_names.size()))
      throw std::invalid_argument("specimen class id " + std::to_string(c) + " has no name");
}

double default_rms(int Z) {
  // Room-temperature rms displacements (Å) with their sources. Only values we can name a
  // measurement for are listed; everything else gets kDefaultRmsFallback.
  //  Si: U_iso = 57.7e-4 Å² at 300 K (Rietveld refinement of Si powder diffraction, PMC8086158,
  //      Table 2, reciprocal-space refinement) → rms = sqrt(U) = 0.0760 Å (B = 0.456 Å²).
  switch (Z) {
    case 14: return std::sqrt(57.7e-4);
    default: return kDefaultRmsFallback;
  }
}

void override_rms(Structure& s, const std::map<int, double>& by_Z) {
  for (auto& [Z, rms] : by_Z)
    if (!(rms >= 0)) throw std::invalid_argument("rms override for " + element_symbol(Z) + " must be ≥ 0 Å");
  for (Atom& a : s.atoms) {
    auto it = by_Z.find(a.Z);
    if (it != by_Z.end()) a.rms = it->second;
  }
}

double number_density(const Structure& s) {
  double v = s.cell.x * s.cell.y * s.cell.z;
  if (!(v > 0)) throw std::invalid_argument("number_density: cell volume must be > 0");
  double n = 0;
  for (const Atom& a : s.atoms) n += a.occupancy;
  return n / v;
}

double count_element(const Structure& s, int Z) {
  double n = 0;
  for (const Atom& a : s.atoms)
    if (a.Z == Z) n += a.occupancy;
  return n;
}

}  // namespace stemtwin
