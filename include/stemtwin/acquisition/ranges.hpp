#pragma once
// Physical ranges: the one table of what every number may hold, for both drivers of the
// pipeline. The session's setters check the named entries below (microscope.hpp), so C++
// callers, the Python bindings and `stemtwin serve` (which maps the exception to a JSON-RPC
// -32602 error) refuse the same values with the same message; the scenario parser looks a key
// path up in `key_ranges()` (src/acquisition/ranges.cpp), whose rows for the same quantities
// (beam energy, convergence, current, aberrations, focal spread, source size, dwell, flyback,
// scan rotation, field of view) are these same entries. NaN and ±inf are outside every range.
//
// The bounds are what a real instrument can do, widened so that no honest experiment is
// refused; they exist to stop nonsense (1e300 eV, a stage 1e308 Å away) before it reaches
// the physics, where it would overflow, allocate without bound or loop for minutes. Limits on
// compute per request (pixels, field of view, frames…) are policy, not physics: they are the
// server's (ServiceLimits in microscope_service.hpp) and MicroscopeSettings::max_positions_per_call.
#include <span>
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
  bool whole = false;  ///< fixed scenario values must be integers (draws are rounded)
  /// False for NaN and ±inf.
  constexpr bool contains(double v) const { return (lo_open ? v > lo : v >= lo) && v <= hi; }
};

namespace ranges {
// Beam. 1 keV (low-voltage SEM/STEM) to 3 MeV (the largest high-voltage TEM built).
inline constexpr Range kEnergy{"beam energy (energy_eV)", 1e3, 3e6, "eV", "1 keV to 3 MeV", false};
// Probe-forming apertures of corrected instruments reach ~50 mrad; 200 mrad leaves room.
inline constexpr Range kConvergence{"convergence semi-angle (semiangle_mrad)", 0, 200, "mrad", "0 < α ≤ 200 mrad", true};
// Probe currents are pA to a few nA; 1 µA is beyond any STEM probe.
inline constexpr Range kCurrent{"beam current (current_pA)", 0, 1e6, "pA", "0 to 1 µA", false};
// Aberration coefficients by radial order n of C_nm: uncorrected Cs is 0.5–3 mm, C5 a few mm;
// 1 cm bounds orders 1–3, and the higher orders (whose effect at a given angle is smaller by
// α per order) get 10 cm (C4) and 1 m (C5).
inline constexpr Range kAberration{"aberration coefficient", -1e8, 1e8, "Å", "|C| ≤ 1 cm", false};
inline constexpr Range kAberrationC4{"aberration coefficient", -1e9, 1e9, "Å", "|C4| ≤ 10 cm", false};
inline constexpr Range kAberrationC5{"aberration coefficient", -1e10, 1e10, "Å", "|C5| ≤ 1 m", false};
/// The range of a coefficient of radial order `n` (1…5; C_nm's first digit).
constexpr const Range& aberration_range(int n) { return n <= 3 ? kAberration : n == 4 ? kAberrationC4 : kAberrationC5; }
// Aberration angles: one turn (rounded up, so 6.2832 written for 2π is accepted); a larger
// value is usually degrees given for radians.
inline constexpr Range kAberrationAngle{"aberration angle", -6.2832, 6.2832, "rad", "|φ| ≤ 2π", false};
// Corrector tableau (aberration_measure.hpp): outer tilt 1–100 mrad (CEOS/DTMicroscope default
// 18 mrad; beyond 100 mrad the tilted cone leaves any objective aperture), dose per tilted
// probe image 100 e⁻ (a centroid to ~0.1 Å) to 1e9 e⁻, and the fraction of a correction
// applied (0, 1] (over-correcting is never the intent).
inline constexpr Range kTableauTilt{"tableau tilt (angle)", 1, 100, "mrad", "1 to 100 mrad", false};
inline constexpr Range kTableauElectrons{"tableau dose per tilt (electrons)", 100, 1e9, "e⁻", "100 to 1e9 per tilt", false};
inline constexpr Range kCorrectionGain{"correction fraction (select)", 0, 1, "", "0 < fraction ≤ 1", true};
// Focal spread (1σ) is 20–100 Å on real guns; source size (1σ) 0.3–1 Å. The quadrature points
// are a compute setting the session exposes (a scenario fixes them).
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
// sampling (the simulated window grows with it); the server's own limit is much smaller, and a
// scenario's scan is also bounded by its pixel count (≤ 4096 per axis).
inline constexpr Range kFieldOfView{"field of view", 0, 1e4, "Å", "0 < fov ≤ 1 µm", true};
inline constexpr Range kScanRotation{"scan rotation (rotation_deg)", -360, 360, "deg", "one turn", false};
// Dwell per position and camera exposures: 10 ns (the fastest scan generators) to 10 s, beyond
// any single read-out; below 10 ns a pixel's dose of a pA beam is far below one electron.
inline constexpr Range kDwell{"dwell time (dwell_us)", 0.01, 1e7, "µs", "10 ns ≤ t ≤ 10 s", false};
inline constexpr Range kFlyback{"flyback time (flyback_us)", 0, 1e7, "µs", "0 to 10 s", false};
}  // namespace ranges

/// A row of the scenario keys' table: a key path ("microscope.energy", "detectors.*.inner",
/// "scan.pixels[]"; '*' matches one path component, "[]" any list index, a "#" suffix bounds a
/// list's length) and its range. The first matching row applies.
struct KeyRange {
  const char* path;
  Range range;
};
/// Every numeric scenario key's range (docs/scenario.md "Ranges" lists the same rows).
std::span<const KeyRange> key_ranges();
/// The row's range for a key path ("detectors.haadf.inner", "scan.pixels[1]"), or null.
const Range* range_for_key(const std::string& path);

/// `value` when it lies in `r`; otherwise throws std::invalid_argument such as
/// "beam energy (energy_eV) = 1e+300 eV is outside 1000 … 3e+06 eV (1 keV to 3 MeV)".
/// `name` replaces r.name in the message when given (e.g. "aberration C30").
double check_range(const Range& r, double value, std::string_view name = {});

/// A number with its unit and 6 significant digits ("4e-09 m", "40 Å", "2.5 µs"), for messages:
/// never "0.000000" for a small value.
std::string format_quantity(double value, std::string_view unit);

}  // namespace stemtwin
