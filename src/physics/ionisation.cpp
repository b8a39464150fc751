#include "stemtwin/physics/ionisation.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "stemtwin/core/constants.hpp"

namespace stemtwin {

namespace {
#include "bote_salvat_table.inc"

const BoteSalvatRow* find_row(int Z, Shell shell) {
  // Rows are sorted by Z then shell; at most 9 rows per Z, 731 in all: a linear scan is cheap
  // next to anything that uses a cross section, and the callers cache per element.
  for (const auto& r : kBoteSalvat)
    if (r.Z == Z && r.shell == static_cast<int>(shell)) return &r;
  return nullptr;
}

const BoteSalvatRow& row(int Z, Shell shell) {
  const BoteSalvatRow* r = find_row(Z, shell);
  if (!r)
    throw std::invalid_argument("Bote–Salvat ionisation cross section: no fit for Z=" + std::to_string(Z) + " shell " +
                                shell_name(shell) + " (available: Z 1–99, shells occupied in the neutral atom's ground state)");
  return *r;
}

// Constants exactly as in xion.f, so the fit reproduces the authors' numbers.
constexpr double kBohrRadiusA = 0.5291772108;  // Å
constexpr double kElectronRestEnergyEv = 5.10998918e5;
}  // namespace

bool bote_salvat_available(int Z, Shell shell) { return find_row(Z, shell) != nullptr; }

double bote_salvat_edge_eV(int Z, Shell shell) { return row(Z, shell).edge_eV; }

double bote_salvat_cross_section_A2(int Z, Shell shell, double E) {
  const BoteSalvatRow& r = row(Z, shell);
  if (!(E > 0)) throw std::invalid_argument("Bote–Salvat ionisation cross section: electron energy must be > 0 eV");
  const double U = E / r.edge_eV;
  if (U <= 1.0) return 0.0;
  const double unit = 4.0 * kPi * kBohrRadiusA * kBohrRadiusA;  // 4π a0², Å²
  if (U <= 16.0) {
    // Low-energy fit (U ≤ 16): σ = 4πa0² (U−1)/U² [a1 + a2 U + a3/(1+U) + a4/(1+U)³ + a5/(1+U)⁵]².
    const double p = 1.0 / (1.0 + U);
    const double f = r.a[0] + r.a[1] * U + r.a[2] * p + r.a[3] * p * p * p + r.a[4] * p * p * p * p * p;
    return unit * (U - 1.0) / (U * U) * f * f;
  }
  // High energies (U > 16): the relativistic Bethe asymptote with fitted corrections,
  // σ = 4πa0² Anlj/β² · U/(U+B) · [(ln X² − β²)(1 + g1/X) + g2 + g3 (1−β²)^¼ + g4/X],
  // X = √(E(E+2mc²))/mc² (= βγ), β² = E(E+2mc²)/(E+mc²)².
  const double mc2 = kElectronRestEnergyEv;
  const double beta2 = E * (E + 2 * mc2) / ((E + mc2) * (E + mc2));
  const double X = std::sqrt(E * (E + 2 * mc2)) / mc2;
  const double bracket = (2.0 * std::log(X) - beta2) * (1.0 + r.g[0] / X) + r.g[1] +
                         r.g[2] * std::sqrt(mc2 / (E + mc2)) + r.g[3] / X;
  return unit * r.Anlj / beta2 * U / (U + r.B) * bracket;
}

}  // namespace stemtwin
