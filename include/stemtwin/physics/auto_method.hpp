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
#include <string>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/physics/stem_result.hpp"
#include "stemtwin/physics/stem_settings.hpp"

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

/// Method::Auto (simulate_stem dispatches here): model → calibrate → fall back → full scan.
/// The result carries method, interpolation and auto_choice.
StemResult simulate_auto(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                         const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                         const StemSettings& settings, PatternSink* sink = nullptr);

}  // namespace stemtwin
