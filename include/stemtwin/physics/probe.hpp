#pragma once
// Probe formation: aperture, aberrations, partial coherence.
//
// The probe in reciprocal space is ψ(k) = A(k) · exp(−iχ(k)) · exp(−2πi k·r₀), with A a
// soft-edged aperture of semi-angle α_max and χ the aberration function in Krivanek's polar
// notation (Krivanek, Dellby & Lupini, Ultramicroscopy 78 (1999) 1):
//     χ(α, φ) = (2π/λ) Σ_{n,m} C_nm α^{n+1}/(n+1) · cos(m(φ − φ_nm)),    α = λ|k|.
// C_nm in Å, φ_nm in rad. `defocus` = −C10 (as in abTEM): a POSITIVE defocus puts the
// crossover (the sharpest probe) at depth z = defocus BELOW the entrance surface, i.e. inside
// the specimen (the probe at z = 0 equals the in-focus probe propagated by −defocus);
// a negative defocus focuses above the specimen. (Tested: a probe with defocus D propagated
// through vacuum is sharpest after a distance D.)
// The probe is normalised so that Σ|ψ(r)|² = 1 over the grid: intensities are fractions of
// the incident beam.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/core/fft.hpp"
#include "stemtwin/core/grid.hpp"
#include "stemtwin/core/scan.hpp"

namespace stemtwin {

/// The aberration aliases: the one table (Aberrations::set, the scenario's
/// microscope.aberrations, Python and the session all resolve names through it).
struct AberrationAlias {
  const char* name;
  int n, m;     ///< the Krivanek coefficient C_nm it names
  bool angle;   ///< names φ_nm rather than C_nm
  double sign;  ///< value = sign × coefficient (defocus = −C10)
};
inline constexpr AberrationAlias kAberrationAliases[] = {
    {"defocus", 1, 0, false, -1},    {"Cs", 3, 0, false, 1},   {"C5", 5, 0, false, 1},
    {"astigmatism", 1, 2, false, 1}, {"astigmatism_angle", 1, 2, true, 1},
    {"coma", 2, 1, false, 1},        {"coma_angle", 2, 1, true, 1},
    {"trefoil", 2, 3, false, 1},     {"trefoil_angle", 2, 3, true, 1}};

/// A resolved aberration symbol: its Krivanek name ("C30", "phi12") and the sign that turns
/// a value given under the symbol into the coefficient (−1 for defocus only).
struct AberrationName {
  std::string krivanek;
  double sign = 1;
};
/// Resolves C10 … C56, phi12 … phi56 and the aliases; nullopt for anything else.
std::optional<AberrationName> resolve_aberration(const std::string& name);

/// Aberration coefficients C_nm (Å) with angles φ_nm (rad), up to 5th order.
class Aberrations {
 public:
  /// The symbols accepted by set(): C10 … C56, phi12 … phi56, and the aliases defocus
  /// (= −C10), Cs (= C30), C5 (= C50), astigmatism (C12), astigmatism_angle (phi12),
  /// coma (C21), coma_angle (phi21), trefoil (C23), trefoil_angle (phi23).
  static const std::vector<std::string>& names();
  /// Sets one coefficient by name; throws std::invalid_argument naming unknown symbols.
  void set(const std::string& name, double value);
  double get(const std::string& name) const;
  /// χ(α, φ) in rad for angle α (rad) and azimuth φ (rad) at wavelength λ (Å).
  double chi(double alpha_rad, double phi_rad, double wavelength_A) const;
  bool any() const;

  static constexpr std::array<std::array<int, 2>, 14> kOrders = {{{1, 0}, {1, 2}, {2, 1}, {2, 3}, {3, 0}, {3, 2}, {3, 4},
                                                                 {4, 1}, {4, 3}, {4, 5}, {5, 0}, {5, 2}, {5, 4}, {5, 6}}};
  std::array<double, 14> C{};    ///< Å, in kOrders order
  std::array<double, 14> phi{};  ///< rad
};

struct ProbeOptics {
  double energy_eV = 200e3;
  double semiangle_mrad = 20.0;  ///< aperture (convergence) semi-angle
  Aberrations aberrations;
  /// Partial temporal coherence: 1σ focal spread (Å), integrated by Gauss–Hermite
  /// quadrature over defocus with `focal_spread_points` nodes. 0 = off.
  double focal_spread_A = 0.0;
  std::size_t focal_spread_points = 7;
  /// Partial spatial coherence: Gaussian source size, 1σ (Å) in the specimen plane,
  /// applied by convolving images (apply_source_size). 0 = off.
  double source_size_A = 0.0;
};

/// Aperture value for angle α, azimuth φ (rad): 1 inside, 0 outside, with a soft edge one
/// reciprocal-space pixel wide (anti-aliased), so the aperture does not jump with sampling.
double aperture(double alpha_rad, double phi_rad, double semiangle_rad, double angular_sampling_x_rad,
                double angular_sampling_y_rad);

/// The probe in reciprocal space at r₀ = 0, FFT order, scaled so that the unnormalised
/// inverse FFT gives a real-space probe with Σ|ψ|² = 1. `defocus_offset_A` adds to the
/// optics' defocus (used for focal-spread quadrature).
ComplexBuffer probe_fourier(const Grid& grid, const ProbeOptics& optics, double defocus_offset_A = 0.0);

/// The probe in real space, centred at `position` (Å; sub-pixel exact Fourier shift).
ComplexBuffer probe_real_space(const Grid& grid, const ProbeOptics& optics, Point2 position, const Fft2& fft);

/// Multiplies a reciprocal-space wave by exp(−2πi k·r₀) (a shift to r₀), separably.
void shift_fourier(const Grid& grid, Point2 r0, const cfloat* in, cfloat* out);

/// Focal-spread quadrature: defocus offsets (Å) and weights (summing to 1) of the
/// Gauss–Hermite rule with n nodes for a Gaussian of 1σ = focal_spread_A.
struct FocalQuadrature {
  std::vector<double> defocus_A;
  std::vector<double> weight;
};
FocalQuadrature focal_spread_quadrature(double focal_spread_A, std::size_t n);

/// Diagnostics for plots: χ (rad) on the grid in FFT order, 0 outside the aperture.
std::vector<double> chi_on_aperture(const Grid& grid, const ProbeOptics& optics);
/// Azimuthally averaged real-space probe intensity profile around the probe centre:
/// returns (radius Å, intensity per pixel) pairs in bins of the grid sampling.
std::vector<std::array<double, 2>> probe_profile(const Grid& grid, const ProbeOptics& optics, const Fft2& fft);
/// Scherzer defocus (Å, in the `defocus` = −C10 convention): √(1.5·Cs·λ) · sign(Cs)
/// (Kirkland 2010, eq. 3.x, "extended" Scherzer condition).
double scherzer_defocus_A(double Cs_A, double energy_eV);
/// Full width at half maximum (Å) of the real-space probe intensity along x through its peak.
double probe_fwhm_A(const Grid& grid, const ComplexBuffer& probe_real);

}  // namespace stemtwin
