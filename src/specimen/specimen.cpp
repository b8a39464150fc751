#include "stemtwin/specimen/specimen.hpp"

#include <algorithm>
#include <cmath>
#include <set>

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

double elemental_crystal_rms(int Z) {
  // B (Å²) at 280 K for elemental crystals: Peng, Ren, Dudarev & Whelan, Acta Cryst. A52
  // (1996) 456, Table 1 (280 K column). Cross-check: the room-temperature values of Sears &
  // Shelley, Acta Cryst. A47 (1991) 441 are 5 % larger for Al, Cu, Ag, Pt, Au, W (as B ∝ T
  // predicts for 295 K against 280 K: 1.054) and 12 % larger for Si (0.52 against 0.463).
  double B = 0;
  switch (Z) {
    case 6: B = 0.1420; break;   // C (diamond)
    case 13: B = 0.7460; break;  // Al
    case 14: B = 0.4630; break;  // Si
    case 22: B = 0.4910; break;  // Ti (hcp)
    case 24: B = 0.2390; break;  // Cr
    case 26: B = 0.3100; break;  // Fe (bcc)
    case 28: B = 0.3400; break;  // Ni
    case 29: B = 0.5260; break;  // Cu
    case 32: B = 0.5730; break;  // Ge
    case 41: B = 0.4290; break;  // Nb
    case 42: B = 0.2050; break;  // Mo
    case 46: B = 0.4250; break;  // Pd
    case 47: B = 0.7017; break;  // Ag
    case 73: B = 0.3078; break;  // Ta
    case 74: B = 0.1526; break;  // W
    case 78: B = 0.3557; break;  // Pt
    case 79: B = 0.5925; break;  // Au
    case 82: B = 2.0341; break;  // Pb
    default: return 0;
  }
  return std::sqrt(B / (8 * M_PI * M_PI));
}

void apply_thermal_vibration(Structure& s, const ThermalVibration& t) {
  if (!t.enabled) {
    for (Atom& a : s.atoms) a.rms = 0;
    return;
  }
  const auto check = [](double v, const std::string& what) {
    if (!(v >= 0) || !std::isfinite(v) || v > 1.0)
      throw std::invalid_argument(what + " = " + std::to_string(v) + " Å: must be in [0, 1] Å");
  };
  if (t.rms_A) check(*t.rms_A, "thermal rms");
  for (const auto& [Z, v] : t.rms_by_Z_A) check(v, "thermal rms of " + element_symbol(Z));
  std::set<int> elements;
  for (const Atom& a : s.atoms) elements.insert(a.Z);
  const bool elemental = elements.size() == 1;
  std::set<int> missing;
  for (Atom& a : s.atoms) {
    if (auto it = t.rms_by_Z_A.find(a.Z); it != t.rms_by_Z_A.end())
      a.rms = it->second;
    else if (t.rms_A)
      a.rms = *t.rms_A;
    else if (a.rms > 0)
      continue;  // the structure file's own U/B
    else if (elemental && elemental_crystal_rms(a.Z) > 0)
      a.rms = elemental_crystal_rms(a.Z);
    else
      missing.insert(a.Z);
  }
  if (!missing.empty()) {
    std::string names;
    for (int Z : missing) names += (names.empty() ? "" : ", ") + element_symbol(Z);
    throw std::invalid_argument(
        "thermal vibration is on but no rms displacement is known for " + names +
        ": give it (e.g. thermal: {rms: {" + element_symbol(*missing.begin()) +
        ": 0.08}}, Å per axis) or use a structure file with U_iso/B_iso; tabulated values exist only for "
        "single-element crystals (docs/specimens.md)");
  }
}

std::string thermal_warning(const Structure& s, std::size_t configurations) {
  const bool displaced = std::any_of(s.atoms.begin(), s.atoms.end(), [](const Atom& a) { return a.rms > 0; });
  if (!displaced || configurations > 1) return "";
  return "thermal vibration with 1 frozen-phonon configuration: the result is one random thermal snapshot, not "
         "the thermal average (use ≥ 8 configurations for averages; the standard error across configurations is "
         "stored with each signal)";
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
