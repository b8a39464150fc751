#pragma once
// Atomic X-ray data from xraylib (T. Schoonjans et al., Spectrochim. Acta B 66 (2011) 776;
// Debian package libxrl-dev): edge energies, fluorescence yields, Coster–Kronig
// probabilities, radiative rates and line energies, atomic weights and photon mass
// attenuation coefficients. Nothing here is typed in by hand; every number comes from
// xraylib at run time.
//
// Units: energies in eV (xraylib works in keV; the conversion is done here), mass
// attenuation in cm²/g, atomic weight in g/mol. Shells are the inner shells K, L1–L3, M1–M5
// (IUPAC). A bad Z, shell or line — or data xraylib does not have — is reported as
// std::invalid_argument naming the element, the shell or line and xraylib's own message.
#include <string>
#include <vector>

namespace stemtwin {

enum class Shell { K = 0, L1, L2, L3, M1, M2, M3, M4, M5 };
inline constexpr int kNumShells = 9;

/// "K", "L1", …, "M5".
std::string shell_name(Shell shell);
/// Inverse of shell_name (exact spelling); throws std::invalid_argument otherwise.
Shell shell_from_name(const std::string& name);

/// Absorption-edge (ionisation) energy of a shell, eV (xraylib EdgeEnergy).
double edge_energy_eV(int Z, Shell shell);
/// Fluorescence yield ω of a shell (xraylib FluorYield); 0 where xraylib has none.
double fluorescence_yield(int Z, Shell shell);
/// Coster–Kronig probability f_ij of a vacancy moving from shell i to shell j of the same
/// group (L1→L2, L1→L3, L2→L3, M1→M2 … M4→M5; xraylib CosKronTransProb); 0 otherwise or
/// where xraylib has none.
double coster_kronig(int Z, Shell from, Shell to);
/// Atomic weight, g/mol (xraylib AtomicWeight).
double atomic_weight_g_per_mol(int Z);
/// Density of the pure element at room temperature, g/cm³ (xraylib ElementDensity).
double element_density_g_per_cm3(int Z);
/// Total photon mass attenuation coefficient μ/ρ of an element at a photon energy, cm²/g
/// (xraylib CS_Total: photoelectric + coherent + incoherent).
double mass_attenuation_cm2_per_g(int Z, double photon_energy_eV);

/// One radiative transition filling a vacancy in `shell` (an xraylib IUPAC line).
struct XrayLine {
  int Z = 0;
  Shell shell = Shell::K;       ///< the vacancy it fills (initial state)
  int xraylib_line = 0;         ///< xraylib line macro (negative IUPAC code, e.g. KL3_LINE = −3)
  std::string iupac;            ///< e.g. "K-L3"
  std::string family;           ///< Siegbahn group for maps: "Ka", "Kb", "La", "Lb", "Lg", "Ll", "Ma", "Mb", "Mg", "Mz" or "other"
  double energy_eV = 0;         ///< xraylib LineEnergy
  double radiative_rate = 0;    ///< xraylib RadRate: fraction of the shell's radiative decays through this line
};

/// Every line xraylib knows for a vacancy in `shell` of element Z (radiative rate > 0 and a
/// line energy > 0), in xraylib order. The rates of a shell sum to 1 (xraylib's
/// normalisation). Empty when the shell has no radiative data.
std::vector<XrayLine> xray_lines(int Z, Shell shell);
/// One line by xraylib macro (e.g. KL3_LINE); throws if xraylib does not have it for Z.
XrayLine xray_line(int Z, int xraylib_line);

}  // namespace stemtwin
