#pragma once
// The aberration corrector of the twin: residual aberrations, and their measurement from
// simulated data by a beam-tilt tableau.
//
// Notation. The corrector speaks CEOS names (Uhlemann & Haider, Ultramicroscopy 72 (1998)
// 109): χ(ω) = Re{½ωω̄ C1 + ½ω̄² A1 + ω²ω̄ B2 + ⅓ω̄³ A2 + ¼(ωω̄)² C3 + ω³ω̄ S3 + ¼ω̄⁴ A3},
// ω = α e^{iφ}. In Krivanek's notation (probe.hpp) that is C1 = C10, A1 = C12, B2 = C21/3,
// A2 = C23, C3 = C30, S3 = C32/4, A3 = C34. A coefficient is given as a complex number
// x + iy = |C| e^{i m φ_nm} (for m = 0 only x): the "Cartesian" form used in the tableau
// fit and by correctAberration.
//
// Measurement (measure_tableau). With the beam tilted by τ (the illumination cone centred
// on τ instead of the axis) the probe's intensity centroid is exactly
//     ⟨r⟩(τ) = (1/2π)·⟨∇_k χ⟩ = ⟨∇_α f⟩,   χ = (2π/λ) f,
// the aperture-weighted mean of the aberration gradient over the tilted cone (Ehrenfest:
// ⟨r⟩ = ∫|ψ(k)|²∇χ dk / 2π∫|ψ|²; a real aperture adds nothing). This is LINEAR in the
// Cartesian coefficients, so a set of tilts (the tableau) gives a linear least-squares
// problem. Each tilt is simulated (the coherent probe on a grid, |ψ(r)|², Poisson counts of
// `electrons_per_tilt`), its centroid measured from the counts (circular mean, so a probe
// across the periodic boundary is handled) with the standard error σ = s/√N of the counts,
// and the fit is weighted by 1/σ². Unknowns: a constant offset (the untilted probe position:
// image shift) and the coefficients up to 3rd order (2nd order for one ring of tilts, where
// C1 and C3 cannot be told apart). Parameter errors: the covariance (AᵀWA)⁻¹, scaled by
// the reduced χ² when it exceeds 1 (unfitted 4th/5th-order terms show up as misfit).
// Model limits: the focal spread and source size are left out of the tilted probes (both
// are symmetric and do not move the centroid; they only add noise); the tilts are
// "off-specimen" (vacuum probe, as the Ronchigram/probe-image alignments of real correctors).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "stemtwin/core/rng.hpp"
#include "stemtwin/physics/probe.hpp"

namespace stemtwin {

/// The Rng stream key of the corrector (first word of its streams): RngPurpose::Corrector.
inline constexpr std::uint64_t kCorrectorRngKey = static_cast<std::uint64_t>(RngPurpose::Corrector);

/// One CEOS-named coefficient and its Krivanek counterpart C_nm = krivanek_per_ceos · CEOS.
struct CeosCoefficient {
  const char* name;
  int n, m;
  double krivanek_per_ceos;
};
/// C1, A1, B2, A2, C3, S3, A3 (orders 1–3), in that order.
const std::vector<CeosCoefficient>& ceos_coefficients();
/// The entry named `name` (case-sensitive, e.g. "A1"); throws std::invalid_argument naming
/// the known names otherwise.
const CeosCoefficient& ceos_coefficient(const std::string& name);

/// CEOS Cartesian value (x, y) (Å) of coefficient `c` in `a` (y = 0 for m = 0).
std::array<double, 2> ceos_get(const Aberrations& a, const CeosCoefficient& c);
/// Sets coefficient `c` of `a` from its CEOS Cartesian value (x, y) (Å; y ignored for m = 0).
void ceos_set(Aberrations& a, const CeosCoefficient& c, std::array<double, 2> xy_A);
/// a + b, coefficient by coefficient as complex numbers C e^{imφ} (what two aberrating
/// elements in series give, to first order in each).
Aberrations add_aberrations(const Aberrations& a, const Aberrations& b);

/// Typical residual aberrations of an aberration-corrected STEM after automatic tuning and
/// some time of drift, before the operator's final C1/A1 touch-up: magnitude scales (Å).
/// Each coefficient's magnitude is drawn uniformly in [0.5, 1] × scale, its angle uniformly.
/// See docs/corrector.md for the sources of these numbers.
struct ResidualScales {
  double C1_A = 30;     ///< 3 nm
  double A1_A = 30;     ///< 3 nm
  double B2_A = 300;    ///< 30 nm
  double A2_A = 300;    ///< 30 nm
  double C3_A = 1e4;    ///< 1 µm
  double S3_A = 5e3;    ///< 0.5 µm
  double A3_A = 1e4;    ///< 1 µm
};
/// Deterministic draw of the residual set from `seed` (stream kCorrectorRngKey, 0).
Aberrations draw_residual_aberrations(std::uint64_t seed, const ResidualScales& scales = {});

/// The tableau's tilts: the axis plus `rings` rings (radius tilt_mrad · r / rings, r = 1…)
/// of `azimuths` tilts each.
struct TableauSettings {
  double tilt_mrad = 18;          ///< outer ring (DTMicroscope's default "angle")
  std::size_t rings = 2;          ///< 1: 2nd-order fit only
  std::size_t azimuths = 8;       ///< ≥ 8 so that 4-fold A3 is sampled
  double electrons_per_tilt = 1e5;  ///< dose of each probe image (0: noiseless)
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;       ///< e.g. the session's call counter
};

struct MeasuredCoefficient {
  std::string name;           ///< CEOS name
  std::array<double, 2> xy_A{};     ///< Cartesian value (Å)
  std::array<double, 2> sigma_xy_A{};  ///< standard errors (Å)
  double magnitude_A = 0, angle_rad = 0;  ///< Krivanek-style |C| and φ_nm (= arg/m)
  double sigma_magnitude_A = 0, sigma_angle_rad = 0;
};

struct TableauResult {
  std::vector<MeasuredCoefficient> coefficients;  ///< C1, A1, … (those fitted)
  std::array<double, 2> offset_A{};               ///< untilted probe position (Å)
  double reduced_chi2 = 0;
  std::size_t tilts = 0;
  std::vector<std::array<double, 2>> tilts_mrad;   ///< the tilts (x, y)
  std::vector<std::array<double, 2>> shifts_A;     ///< measured centroids
  std::vector<std::array<double, 2>> sigma_shifts_A;
  const MeasuredCoefficient& get(const std::string& name) const;  ///< throws if not fitted
  /// The measured coefficients as Aberrations (Krivanek, Å / rad).
  Aberrations aberrations() const;
};

/// Measures the aberrations of `optics` (its aberrations are the ones measured; energy and
/// semi-angle set the tableau) by a beam-tilt tableau; see the file comment. Throws
/// std::invalid_argument for settings out of range (tilt 1–100 mrad, rings 1–4,
/// azimuths 8–64, electrons ≥ 0) or probes too large for the simulation box.
TableauResult measure_tableau(const ProbeOptics& optics, const TableauSettings& settings);

}  // namespace stemtwin
