#pragma once
// Checks of a scenario that need physics — band limit, expected counts, thermal settings —
// run by `stemtwin validate`, `run --dry-run` and `run` before any work and before any file
// is touched. What cannot be simulated is refused (ScenarioError with file, line and key);
// what would mislead is a warning, printed and stored in the dataset (root attribute
// `warnings`).
#include <cstddef>
#include <string>
#include <vector>

#include "stemtwin/dataset/shard.hpp"
#include "stemtwin/scenario/memory_estimate.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin {

/// Expected signal of one detector channel for sample 0, from a kinematic estimate.
struct CountEstimate {
  std::string detector;
  double fraction = 0;          ///< of the incident beam, mean over the field
  double counts_per_pixel = 0;  ///< fraction × electrons per probe position
};

struct ScenarioCheck {
  std::vector<std::string> warnings;
  std::vector<CountEstimate> counts;  ///< annular and segmented detectors, sample 0
  double sampling_A = 0;              ///< sample 0
  double band_limit_mrad = 0;         ///< sample 0, lower bound (the grid rounds finer)
};

/// Detectors against the band limit of every checked sample (refused when a detector lies
/// wholly beyond it, or the probe does; warned when a detector is cut), thermal vibration
/// for the first and last sample (refused when an element has no rms; a warning for one
/// configuration), and expected counts per pixel (warned below 1). Samples checked: all up to
/// `max_samples`, else that many spread evenly, first and last included.
ScenarioCheck check_scenario_physics(const ScenarioSpec& spec, std::size_t max_samples = 512);

/// Kinematic estimate of the mean fraction of the beam an annulus θ1..θ2 (mrad) collects:
/// the unscattered disc's share of the annulus × (1 − scattered), plus single elastic
/// scattering by independent atoms into the annulus,
///   σ(Z; θ1, θ2) = 2π λ² ∫ (γ f_e(k))² k dk  over k = θ/λ,
/// summed over the atoms per unit area (Σσ / area), capped at 1. Channelling, coherent
/// (HOLZ) and thermal diffuse scattering are not modelled: good to a factor ~2 for ADF/HAADF
/// of thin crystals, enough to tell a visible image from one with < 1 count per pixel.
double estimate_annular_fraction(const std::vector<int>& Z, const std::vector<double>& occupancy, double area_A2,
                                 double energy_eV, double convergence_mrad, double inner_mrad, double outer_mrad);

// The key and run checks (src/scenario/scenario_checks.cpp, with check_scenario_physics).

/// Rejects unknown keys and impossible values in `specimen.builder` and `acquisition`
/// (ScenarioError with file, line and key), before any work.
void check_physics_keys(const ScenarioSpec& spec);

/// The acquisition settings of sample `s` are valid (ScenarioError naming `acquisition` and the sample).
void check_acquisition(const ScenarioSpec& spec, const SampledScenario& s);

/// What `run` checks before it creates or touches its file: with a pixelated detector, no
/// key that changes the pattern shape between samples may vary (ScenarioError naming it);
/// every sample of the shard is drawn and its acquisition settings validated; the memory estimate of the samples most
/// likely to be the largest is held against `budget` bytes (0: default_memory_budget()) on
/// `threads` threads (0: OpenMP's default). Throws with the numbers; returns the largest estimate.
MemoryEstimate check_run(const ScenarioSpec& spec, Shard shard = {}, std::size_t threads = 0, double budget = 0);

}  // namespace stemtwin
