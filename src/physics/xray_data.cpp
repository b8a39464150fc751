#include "stemtwin/physics/xray_data.hpp"

#include <xraylib.h>

#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "stemtwin/core/atoms.hpp"

namespace stemtwin {

namespace {

constexpr std::array<const char*, kNumShells> kShellNames = {"K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5"};
// xraylib's IUPAC line macros of each initial vacancy occupy a contiguous range of codes
// (xraylib-lines.h): K −1…−29, L1 −30…−58, L2 −59…−85, L3 −86…−113, M1 −114…−136,
// M2 −137…−158, M3 −159…−180, M4 −181…−200, M5 −201…−219.
constexpr std::array<std::pair<int, int>, kNumShells> kLineRange = {
    {{-1, -29}, {-30, -58}, {-59, -85}, {-86, -113}, {-114, -136}, {-137, -158}, {-159, -180}, {-181, -200}, {-201, -219}}};

struct LineName {
  int code;
  const char* name;
};
constexpr LineName kLineNames[] = {
#include "xray_line_names.inc"
};
static_assert(sizeof(kLineNames) / sizeof(kLineNames[0]) == 219);

std::string element_label(int Z) {
  if (Z >= 1 && Z <= 103) return element_symbol(Z) + " (Z=" + std::to_string(Z) + ")";
  return "Z=" + std::to_string(Z);
}

/// Calls an xraylib function with its xrl_error** out-parameter and turns a reported error
/// into std::invalid_argument naming what was asked (`what`) and xraylib's message.
template <class F>
double checked(const std::string& what, F&& call) {
  xrl_error* err = nullptr;
  const double v = call(&err);
  if (err) {
    std::string msg = err->message ? err->message : "unknown error";
    xrl_error_free(err);
    throw std::invalid_argument("xraylib: " + what + ": " + msg);
  }
  return v;
}

/// As checked(), but an error yields `fallback` (data xraylib simply does not have).
template <class F>
double or_default(F&& call, double fallback) {
  xrl_error* err = nullptr;
  const double v = call(&err);
  if (err) {
    xrl_error_free(err);
    return fallback;
  }
  return v;
}

void check_z(int Z, const char* where) {
  if (Z < 1 || Z > 103) throw std::invalid_argument(std::string(where) + ": atomic number " + std::to_string(Z) + " outside 1..103");
}

int shell_index(Shell s) {
  const int i = static_cast<int>(s);
  if (i < 0 || i >= kNumShells) throw std::invalid_argument("unknown shell index " + std::to_string(i));
  return i;
}

Shell shell_of_line(int code) {
  for (int s = 0; s < kNumShells; ++s)
    if (code <= kLineRange[std::size_t(s)].first && code >= kLineRange[std::size_t(s)].second) return Shell(s);
  throw std::invalid_argument("xraylib line code " + std::to_string(code) + " is not a K, L or M line (−1 … −219)");
}

std::string iupac_name(int code) {
  const std::string n = kLineNames[std::size_t(-code - 1)].name;  // e.g. "KL3", "L3M5"
  const std::size_t split = n[0] == 'K' ? 1 : 2;
  return n.substr(0, split) + "-" + n.substr(split);
}

/// Siegbahn group of a line (for element maps), from its IUPAC name.
std::string family_of(const std::string& iupac) {
  static const std::pair<const char*, const char*> table[] = {
      {"K-L2", "Ka"},  {"K-L3", "Ka"},                                                        // Kα2, Kα1
      {"L3-M4", "La"}, {"L3-M5", "La"},                                                       // Lα2, Lα1
      {"L2-M4", "Lb"}, {"L3-N4", "Lb"}, {"L3-N5", "Lb"}, {"L1-M2", "Lb"}, {"L1-M3", "Lb"},  // Lβ1, Lβ15, Lβ2, Lβ4, Lβ3
      {"L3-O4", "Lb"}, {"L3-O5", "Lb"}, {"L3-N1", "Lb"},                                      // Lβ5, Lβ6
      {"L2-N4", "Lg"}, {"L1-N2", "Lg"}, {"L1-N3", "Lg"}, {"L2-O4", "Lg"},                   // Lγ1, Lγ2, Lγ3, Lγ6
      {"L3-M1", "Ll"},                                                                        // Lℓ
      {"M5-N6", "Ma"}, {"M5-N7", "Ma"}, {"M4-N6", "Mb"}, {"M3-N5", "Mg"},                   // Mα2, Mα1, Mβ, Mγ
      {"M5-N3", "Mz"}, {"M4-N2", "Mz"},                                                       // Mζ
  };
  for (const auto& [name, fam] : table)
    if (iupac == name) return fam;
  if (iupac[0] == 'K') return "Kb";  // every other K line: Kβ1,3 (K-M3, K-M2), Kβ2 (K-N), …
  return "other";
}

}  // namespace

std::string shell_name(Shell shell) { return kShellNames[std::size_t(shell_index(shell))]; }

Shell shell_from_name(const std::string& name) {
  for (int s = 0; s < kNumShells; ++s)
    if (name == kShellNames[std::size_t(s)]) return Shell(s);
  throw std::invalid_argument("unknown shell '" + name + "' (expected K, L1, L2, L3, M1 … M5)");
}

double edge_energy_eV(int Z, Shell shell) {
  check_z(Z, "edge_energy_eV");
  const int s = shell_index(shell);
  const double e = checked("EdgeEnergy of " + element_label(Z) + " " + shell_name(shell),
                           [&](xrl_error** err) { return EdgeEnergy(Z, s, err); });
  return e * 1e3;
}

double fluorescence_yield(int Z, Shell shell) {
  check_z(Z, "fluorescence_yield");
  const int s = shell_index(shell);
  return or_default([&](xrl_error** err) { return FluorYield(Z, s, err); }, 0.0);
}

double coster_kronig(int Z, Shell from, Shell to) {
  check_z(Z, "coster_kronig");
  const int i = shell_index(from), j = shell_index(to);
  int trans = -1;
  if (i >= 1 && i <= 3 && j > i && j <= 3) {  // L: FL12 = 1, FL13 = 2, FL23 = 4 (FLP13 = 3 is a sum)
    static constexpr int kL[4][4] = {{}, {0, 0, FL12_TRANS, FL13_TRANS}, {0, 0, 0, FL23_TRANS}, {}};
    trans = kL[i][j];
  } else if (i >= 4 && j > i && j <= 8) {  // M: FM12 … FM45 = 5 … 14, in order (12,13,14,15,23,24,25,34,35,45)
    static constexpr int kM[5][5] = {{0, FM12_TRANS, FM13_TRANS, FM14_TRANS, FM15_TRANS},
                                     {0, 0, FM23_TRANS, FM24_TRANS, FM25_TRANS},
                                     {0, 0, 0, FM34_TRANS, FM35_TRANS},
                                     {0, 0, 0, 0, FM45_TRANS},
                                     {}};
    trans = kM[i - 4][j - 4];
  }
  if (trans <= 0) return 0.0;
  return or_default([&](xrl_error** err) { return CosKronTransProb(Z, trans, err); }, 0.0);
}

double atomic_weight_g_per_mol(int Z) {
  check_z(Z, "atomic_weight_g_per_mol");
  return checked("AtomicWeight of " + element_label(Z), [&](xrl_error** err) { return AtomicWeight(Z, err); });
}

double element_density_g_per_cm3(int Z) {
  check_z(Z, "element_density_g_per_cm3");
  return checked("ElementDensity of " + element_label(Z), [&](xrl_error** err) { return ElementDensity(Z, err); });
}

double mass_attenuation_cm2_per_g(int Z, double photon_energy_eV) {
  check_z(Z, "mass_attenuation_cm2_per_g");
  if (!(photon_energy_eV > 0)) throw std::invalid_argument("mass_attenuation_cm2_per_g: photon energy must be > 0 eV");
  return checked("CS_Total of " + element_label(Z) + " at " + std::to_string(photon_energy_eV) + " eV",
                 [&](xrl_error** err) { return CS_Total(Z, photon_energy_eV * 1e-3, err); });
}

XrayLine xray_line(int Z, int code) {
  check_z(Z, "xray_line");
  XrayLine l;
  l.Z = Z;
  l.shell = shell_of_line(code);
  l.xraylib_line = code;
  l.iupac = iupac_name(code);
  l.family = family_of(l.iupac);
  const std::string what = element_label(Z) + " line " + l.iupac;
  l.energy_eV = 1e3 * checked("LineEnergy of " + what, [&](xrl_error** err) { return LineEnergy(Z, code, err); });
  l.radiative_rate = checked("RadRate of " + what, [&](xrl_error** err) { return RadRate(Z, code, err); });
  return l;
}

std::vector<XrayLine> xray_lines(int Z, Shell shell) {
  check_z(Z, "xray_lines");
  const auto [first, last] = kLineRange[std::size_t(shell_index(shell))];
  std::vector<XrayLine> out;
  for (int code = first; code >= last; --code) {
    const double rate = or_default([&](xrl_error** err) { return RadRate(Z, code, err); }, 0.0);
    if (!(rate > 0)) continue;
    const double e = or_default([&](xrl_error** err) { return LineEnergy(Z, code, err); }, 0.0);
    if (!(e > 0)) continue;
    XrayLine l;
    l.Z = Z;
    l.shell = shell;
    l.xraylib_line = code;
    l.iupac = iupac_name(code);
    l.family = family_of(l.iupac);
    l.energy_eV = e * 1e3;
    l.radiative_rate = rate;
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace stemtwin
