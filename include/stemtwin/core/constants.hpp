#pragma once
// Physical constants and relativistic electron optics.
//
// Units: energies in eV (the accelerating voltage in V equals the kinetic energy in eV),
// lengths in Å. References: CODATA 2018; E. J. Kirkland, Advanced Computing in Electron
// Microscopy, 2nd ed. (2010), eqs. 2.5 and 5.6.

namespace stemtwin {

inline constexpr double kPi = 3.14159265358979323846;
/// Electron rest energy m₀c², eV (CODATA 2018).
inline constexpr double kElectronRestEnergy_eV = 510998.95;
/// h·c, eV·Å (CODATA 2018).
inline constexpr double kHC_eVA = 12398.419843320026;
/// Elementary charge, C.
inline constexpr double kElementaryCharge_C = 1.602176634e-19;
/// Bohr radius, Å (CODATA 2018).
inline constexpr double kBohrRadius_A = 0.529177210903;
/// e²/(4πε₀), eV·Å: the electron charge "e" of Kirkland's formulas times 1 V.
inline constexpr double kCoulomb_eVA = 14.3996454784936;
/// h²/(2π m₀ e) = 2π a₀ e, V·Å²: converts an electron scattering factor f_e (Å) into the
/// Fourier transform of the potential: V(q) = (h²/(2π m₀ e)) f_e(q) (non-relativistic m₀;
/// the relativistic mass enters through σ). Equals 47.8776 V·Å².
inline constexpr double kFeToPotential_VA2 = 2.0 * kPi * kBohrRadius_A * kCoulomb_eVA;

/// Relativistic electron wavelength λ (Å) at kinetic energy E (eV):
/// λ = hc / sqrt(E (2 m₀c² + E)). λ(200 keV) = 0.025079 Å.
double wavelength_A(double energy_eV);

/// Interaction parameter σ (rad / (V·Å)) at kinetic energy E (eV):
/// σ = 2π / (λ E) · (m₀c² + E) / (2 m₀c² + E) (Kirkland eq. 5.6). σ(200 keV) = 7.2884e-4.
double interaction_parameter(double energy_eV);

/// Relativistic factor γ = 1 + E / (m₀c²).
double lorentz_factor(double energy_eV);

}  // namespace stemtwin
