#pragma once
// Method::Auto: PRISM or windowed multislice where they hold a stated accuracy, multislice
// where they do not.
//
// Why PRISM errs (docs/physics.md, "PRISM accuracy"): the probe is a sum of plane waves on
// the reciprocal lattice coarsened f times, so it is periodic with the window Lx/f × Ly/f
// — PRISM at factor f is multislice of a specimen whose probe has periodic images every
// L/f. On a crystal whose cell divides L/f the result is exactly multislice on an
// (L/f)-wide supercell, whatever window the exit wave is cut from. The error is the overlap
// of the probe with its images, which is small when L/f holds the probe's spread:
//
//   W(t) = K·λ/α + 2·(α·t + r_aberr),   K = kAutoTailFactor,
//
// λ/α the probe's diffraction scale (its Airy tails decay slowly), α·t the geometric
// spread of the convergent cone through the thickness t, r_aberr the largest ray
// displacement the aberrations (defocus, Cs, …) give inside the aperture. The model predicts
// f = the largest divisor of the grid (≤ 8) with min(Lx, Ly)/f ≥ W; Auto then *measures*:
// it simulates a few positions both ways, and lowers f until the ErrorBudget holds on them.
// Where no PRISM factor holds, windowed multislice (windowed.hpp) is measured the same way
// when its window is smaller than the cell (large fields, thin specimens); multislice is the
// last resort, exact by definition.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/physics/stem_result.hpp"
#include "stemtwin/physics/stem_settings.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/slice_observer.hpp"
#include "stemtwin/physics/translational_symmetry.hpp"

namespace stemtwin {

/// K in the window model, from the measured PRISM errors on SrTiO3 [001] 8×8×10 cells
/// (docs/physics.md, bench_auto --only table): HAADF 0.9 % off at a 15.6 Å window, 2–4 % at
/// 7.8 Å; 15.6 Å = K·λ/α + 2αt with λ/α = 1.25 Å, 2αt = 1.56 Å gives K ≈ 11; 12 leaves margin.
inline constexpr double kAutoTailFactor = 12.0;

/// The window (Å) the probe needs through `thickness_A` (model above).
double prism_window_needed_A(const ProbeOptics& optics, double thickness_A);

/// The model's interpolation factor: the largest f ≤ max_f dividing both point counts with
/// min(Lx, Ly)/f ≥ prism_window_needed_A (1 = multislice).
std::size_t predict_interpolation(const Grid& grid, const ProbeOptics& optics, double thickness_A, std::size_t max_f = 8);

/// The cache key of a calibration: specimen class (or the structure's cell, composition
/// and slicing), grid, optics, detectors, budget and phonon settings.
std::string auto_calibration_key(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                                 const std::vector<Detector>& detectors, const StemSettings& settings);

/// The calibration positions: `count` of `positions`, spread evenly over the list.
std::vector<std::size_t> calibration_subset(std::size_t positions, std::size_t count);

/// Auto's cost model, in units of one probe propagated through the whole cell on the full
/// grid (per phonon configuration; focal-spread nodes count as propagations):
///   multislice of the whole scan        R·F           (R of the P positions simulated after
///                                                     translational-symmetry reuse, F focal nodes)
///   calibration reference               C·F           (C = min(P, calibration positions))
///   PRISM at the predicted f            B(f)          (S-matrix: one propagation per beam)
///   windowed multislice                 (C + P)·F·ρ,  ρ = n_w log n_w / (N log N)
/// (n_w, N the window's and the grid's points). Auto's least cost is the reference plus the
/// cheapest candidate (if its first trial holds the budget); when that is more than
/// kAutoWorthwhile × the multislice cost — or there is no candidate — multislice is chosen
/// without calibrating, so a tiny run never pays for a calibration it cannot earn back
/// (and a failed calibration costs at most (1 + kAutoWorthwhile)× plain multislice).
struct AutoCost {
  double multislice = 0;
  double reference = 0;
  double prism = -1;     ///< < 0: not a candidate
  double windowed = -1;  ///< < 0: not a candidate
  double least = 0;      ///< reference + the cheapest candidate (0 when none)
  bool multislice_cheap = true;
};
inline constexpr double kAutoWorthwhile = 0.5;

/// The cost model above. `prism_f` ≤ 1 or `window_points` = 0: that candidate is absent.
/// `multislice_positions`: R, the positions multislice simulates (multislice_classes() in
/// translational_symmetry.hpp); 0 = all of them.
AutoCost auto_cost(const Grid& grid, const ProbeOptics& optics, std::size_t positions, std::size_t prism_f,
                   std::size_t window_points, const StemSettings& settings, std::size_t multislice_positions = 0);

/// Auto's decisions before any calibration: the model's prediction and costs (in `choice`),
/// the PRISM factors to try (predicted f downwards, those dividing the grid and fitting the
/// memory budget), whether windowed multislice is a candidate, and whether to calibrate at
/// all (false: multislice is cheap, auto_cost(); choice.calibrated false, measured_* NaN).
/// Callers that run multislice their own way (the dataset runner's per-configuration
/// statistics) ask this first. The multislice cost counts only the positions translational
/// symmetry leaves to simulate (choice.symmetry_positions of choice.total_positions;
/// multislice_classes(): a slice observer switches the reuse off, streamed 4D patterns are
/// replayed as copies within kSymmetryMaxKeptPatternBytes); a caller
/// whose multislice does not reuse symmetry sets settings.symmetry_reuse = false.
/// Throws std::invalid_argument for a bad budget or no positions.
struct AutoPlan {
  AutoChoice choice;
  std::vector<std::size_t> prism_factors;
  bool windowed_candidate = false;
  bool calibrate = false;
  bool crop = false;  ///< PRISM band-limit crop (settings.prism_band_limit_crop, no 4D detector)
};
/// `observed`: a slice observer that PRISM cannot serve (SliceObserver::reads_intensities()
/// false) rides on the scan: PRISM is no candidate, windowed multislice still is. (An EDS/EELS
/// InelasticRecorder can ride on PRISM: pass false.) `observer_attached`: any slice observer
/// rides on the scan (an InelasticRecorder too): multislice then reuses no symmetry class
/// (multislice_classes), so its cost counts every position.
AutoPlan plan_auto(const Structure& structure, const Grid& grid, const ProbeOptics& optics, const std::vector<Point2>& positions,
                   const std::vector<Detector>& detectors, const StemSettings& settings, bool streams_patterns,
                   bool observed = false, bool observer_attached = false);

/// Auto's PRISM calibration on prepared transmission functions (simulate_auto; the session,
/// whose windows hold their own): multislice on calibration_subset() of `positions` (kept in
/// `reference`, computed once), then PRISM at each of `factors` in order until
/// settings.budget holds. On success choice.method = Prism, its factor and measured error, and
/// `accepted` holds the S-matrices (one per configuration, re-usable for the full scan);
/// otherwise choice.method = Multislice (measured 0 / 1). Every trial is appended to choice.trials.
void calibrate_prism(const std::vector<Transmission>& transmissions, const Fft2& fft, const ProbeOptics& optics,
                     const std::vector<Point2>& positions, const std::vector<Detector>& detectors, const StemSettings& settings,
                     const std::vector<std::size_t>& factors, bool crop, AutoChoice& choice, std::vector<SMatrix>& accepted,
                     std::optional<StemResult>& reference, SliceObserver* observer = nullptr);

/// Method::Auto (simulate_stem dispatches here): model → calibrate → fall back → full scan.
/// The result carries method, interpolation and auto_choice.
/// With an `observer` (EDS/EELS): PRISM (when the observer reads intensities, prism.hpp),
/// windowed multislice and multislice. PRISM and windowed are calibrated on the annular
/// detectors and — when the observer gives a fresh_copy() — on what the observer records
/// (recorded_signals(): e.g. the probe intensity at each element's atoms, of which clean
/// spectra and maps are positive linear combinations), each against multislice on the same
/// calibration positions with the same budget; the worst of the two is the trial's measured
/// error. The observer itself sees only the final scan. In calibrate_prism, an `observer`
/// (begun for its pixels, then left for the final scan to begin again) makes the trials' and
/// `accepted`'s S-matrices keep its samples.
StemResult simulate_auto(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                         const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                         const StemSettings& settings, PatternSink* sink = nullptr, SliceObserver* observer = nullptr);

}  // namespace stemtwin
