#pragma once
// Frozen-phonon statistics: per-configuration detector signals, their mean and the standard
// error of that mean.
//
// The engine (stem.hpp) averages intensities over thermal configurations inside its inner
// loop and returns only the mean. The spread across configurations tells how converged that
// mean is: with N independent configurations (Einstein model: each one an independent draw)
// the standard error of the mean is
//     SEM = sqrt( Σ_c (x_c − x̄)² / (N (N − 1)) ),
// per position and bin. It is undefined for N = 1 (reported as NaN: a single configuration is a
// snapshot, not an average). Getting it costs no extra multislice: the same configurations
// are run one at a time instead of together (scan_multislice_per_configuration), and the mean
// of those equals scan_multislice's mean up to rounding in the last bits (the engine sums
// w·I over configurations in one accumulator; here each is summed separately), ≤ 1e-12 relative.
#include <cstddef>
#include <vector>

#include "stemtwin/physics/engine.hpp"

namespace stemtwin {

/// Mean and standard error of the mean of `samples` (one value per configuration);
/// sem = NaN for fewer than 2 samples; throws std::invalid_argument when empty.
struct MeanSem {
  double mean = 0, sem = 0;
};
MeanSem mean_and_sem(const std::vector<double>& samples);

/// Runs `scan_multislice` once per configuration (each alone, weight 1): result c holds the
/// signals of configuration c only, in the same layout as scan_multislice's result.
/// No 4D patterns (a PatternSink is not taken; pixelated detectors are rejected).
std::vector<StemResult> scan_multislice_per_configuration(const std::vector<Transmission>& configurations,
                                                          const ProbeOptics& optics,
                                                          const std::vector<Point2>& positions,
                                                          const std::vector<Detector>& detectors,
                                                          const StemSettings& settings, const Fft2& fft);

/// Mean and standard error across per-configuration results of identical layout (same
/// detectors, depths and positions). Both results have the layout of the inputs: `mean`
/// matches scan_multislice on all configurations (up to rounding; COM: the mean of the
/// per-configuration COM, which differs from the engine's ratio of mean moments at second
/// order in the spread), `sem` holds the standard error of each value (NaN for one
/// configuration) — what a dataset stores as `<detector>_phonon_sem`.
struct PhononSummary {
  StemResult mean, sem;
  std::size_t configurations = 0;
};
PhononSummary summarize_configurations(const std::vector<StemResult>& per_configuration);

/// simulate_stem with multislice, keeping the configurations apart: the thermal
/// configurations of settings.phonon_configurations (seeded as simulate_stem's, so `mean`
/// equals simulate_stem's result up to rounding) and their standard error. Without thermal
/// vibration (every rms = 0) there is one configuration and `sem` is NaN. Pixelated detectors
/// and Method::Prism are rejected (std::invalid_argument).
PhononSummary simulate_stem_phonon_statistics(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                                              const std::vector<Point2>& positions,
                                              const std::vector<Detector>& detectors, const StemSettings& settings);

}  // namespace stemtwin
