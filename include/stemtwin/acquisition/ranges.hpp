#pragma once
// Physical ranges of a session's settings: the one table that the Microscope's setters check
// (microscope.hpp), so C++ callers, the Python bindings and `stemtwin serve` (which maps the
// exception to a JSON-RPC -32602 error) refuse the same values with the same message. NaN and
// ±inf are outside every range.
//
// The bounds are what a real instrument can do, widened so that no honest experiment is
// refused; they exist to stop nonsense (1e300 eV, a stage 1e308 Å away) before it reaches
// the physics, where it would overflow, allocate without bound or loop for minutes. Limits on
// compute per request (pixels, field of view, frames…) are policy, not physics: they are the
// server's (ServiceLimits in microscope_service.hpp) and MicroscopeSettings::max_positions_per_call.
#include <string>
#include <string_view>

namespace stemtwin {

/// An interval of one quantity. `lo_open`: the lower bound itself is excluded (x > lo).
struct Range {
  const char* name;  ///< as it appears in messages: what it is and the session's field name
  double lo, hi;
  const char* unit;  ///< "" for pure numbers
  const char* why;   ///< where the bounds come from, quoted in the message
  bool lo_open = false;
  /// False for NaN and ±inf.
  constexpr bool contains(double v) const { return (lo_open ? v > lo : v >= lo) && v <= hi; }
};

namespace ranges {
// Beam. 1 keV (low-voltage SEM/STEM) to 3 MeV (the largest high-voltage TEM built).
inline constexpr Range kEnergy{"beam energy (energy_eV)", 1e3, 3e6, "eV", "1 keV to 3 MeV", false};
// Probe-forming apertures of corrected instruments reach ~50 mrad; 100 mrad leaves room.
inline constexpr Range kConvergence{"convergence semi-angle (semiangle_mrad)", 0, 100, "mrad", "0 < α ≤ 100 mrad", true};
// Probe currents are pA to a few nA; 1 µA is beyond any STEM probe.
inline constexpr Range kCurrent{"beam current (current_pA)", 0, 1e6, "pA", "0 to 1 µA", false};
// Aberration coefficients: uncorrected Cs is 0.5–3 mm, C5 a few mm; 1 cm bounds them all.
inline constexpr Range kAberration{"aberration coefficient", -1e8, 1e8, "Å", "|C| ≤ 1 cm", false};
// Aberration angles: one turn; a larger value is usually degrees given for radians.
inline constexpr Range kAberrationAngle{"aberration angle", -6.283185307179586, 6.283185307179586, "rad", "|φ| ≤ 2π", false};
// Corrector tableau (aberration_measure.hpp): outer tilt 1–100 mrad (CEOS/DTMicroscope default
// 18 mrad; beyond 100 mrad the tilted cone leaves any objective aperture), dose per tilted
// probe image 100 e⁻ (a centroid to ~0.1 Å) to 1e9 e⁻, and the fraction of a correction
// applied (0, 1] (over-correcting is never the intent).
inline constexpr Range kTableauTilt{"tableau tilt (angle)", 1, 100, "mrad", "1 to 100 mrad", false};
inline constexpr Range kTableauElectrons{"tableau dose per tilt (electrons)", 100, 1e9, "e⁻", "100 to 1e9 per tilt", false};
inline constexpr Range kCorrectionGain{"correction fraction (select)", 0, 1, "", "0 < fraction ≤ 1", true};
// Focal spread (1σ) is 20–100 Å on real guns; source size (1σ) 0.3–1 Å.
inline constexpr Range kFocalSpread{"focal spread (focal_spread_A)", 0, 1e4, "Å", "0 to 1 µm", false};
inline constexpr Range kFocalSpreadPoints{"focal-spread quadrature points (focal_spread_points)", 1, 64, "", "1 to 64", false};
inline constexpr Range kSourceSize{"source size (source_size_A)", 0, 100, "Å", "0 to 10 nm", false};

// Stage: a side-entry stage travels about ±1 mm in x, y and z (z also acts as defocus).
inline constexpr Range kStageX{"stage x (x_A)", -1e7, 1e7, "Å", "stage travel ±1 mm", false};
inline constexpr Range kStageY{"stage y (y_A)", -1e7, 1e7, "Å", "stage travel ±1 mm", false};
inline constexpr Range kStageZ{"stage z (z_A)", -1e7, 1e7, "Å", "stage travel ±1 mm", false};
// Tilts: the twin models small tilts only (periodic windows, projected potentials).
inline constexpr Range kStageTiltAlpha{"stage tilt alpha (alpha_rad)", -0.1, 0.1, "rad", "the twin models small tilts only", false};
inline constexpr Range kStageTiltBeta{"stage tilt beta (beta_rad)", -0.1, 0.1, "rad", "the twin models small tilts only", false};
// Probe positions (probe_at, scan_points) are specimen coordinates: within the stage travel.
inline constexpr Range kProbeX{"probe position x", -1e7, 1e7, "Å", "stage travel ±1 mm", false};
inline constexpr Range kProbeY{"probe position y", -1e7, 1e7, "Å", "stage travel ±1 mm", false};

// Scan. A field of view of 1 µm is already far beyond what the twin can simulate at atomic
// sampling (the simulated window grows with it); the server's own limit is much smaller.
inline constexpr Range kFieldOfView{"field of view", 0, 1e4, "Å", "0 < fov ≤ 1 µm", true};
inline constexpr Range kScanRotation{"scan rotation (rotation_deg)", -360, 360, "deg", "one turn", false};
// Dwell per position and camera exposures: 10 s is beyond any single read-out.
inline constexpr Range kDwell{"dwell time (dwell_us)", 0, 1e7, "µs", "0 < t ≤ 10 s", true};
inline constexpr Range kFlyback{"flyback time (flyback_us)", 0, 1e7, "µs", "0 to 10 s", false};
}  // namespace ranges

/// `value` when it lies in `r`; otherwise throws std::invalid_argument such as
/// "beam energy (energy_eV) = 1e+300 eV is outside 1000 … 3e+06 eV (1 keV to 3 MeV)".
/// `name` replaces r.name in the message when given (e.g. "aberration C30").
double check_range(const Range& r, double value, std::string_view name = {});

/// A number with its unit and 6 significant digits ("4e-09 m", "40 Å", "2.5 µs"), for messages:
/// never "0.000000" for a small value.
std::string format_quantity(double value, std::string_view unit);

}  // namespace stemtwin
