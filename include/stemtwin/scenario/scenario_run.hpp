#pragma once
// The physics side of a scenario run: one SampledScenario → specimen → simulation → read-out
// → labels → SampleRecord, and the `stemtwin run` command around run_scenario (runner.hpp).
//
// Keys of the free-form scenario sections defined here (docs/scenario.md, "builder" and
// "acquisition"), checked before any work by check_physics_keys().
#include <cstddef>
#include <optional>
#include <ostream>
#include <string>

#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/scenario/memory_estimate.hpp"
#include "stemtwin/scenario/runner.hpp"
#include "stemtwin/scenario/scenario_checks.hpp"  // check_physics_keys, check_run
#include "stemtwin/scenario/scenario_detectors.hpp"  // physics_detectors
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/specimen/specimen.hpp"
#include "stemtwin/specimen/world.hpp"
#include "stemtwin/physics/engine.hpp"

namespace stemtwin {

/// The built-in quick-start scenario (the text of scenarios/quickstart.yaml).
const std::string& builtin_quickstart_scenario();

/// The thermal vibration a sample asked for (specimen.thermal; off without that block).
ThermalVibration thermal_vibration(const SampledScenario& s);

/// The specimen of one sample: a structure file oriented along the zone axis and tiled by
/// `repeat`, or a builder; rms set by apply_thermal_vibration (all 0 without a `thermal`
/// block); throws std::invalid_argument naming specimen.thermal when an element has no rms.
Specimen build_specimen(const SampledScenario& s);
/// WorldParams from a `world` builder's keys (key_reader.hpp: world_rows(); the others keep
/// world.hpp's defaults).
WorldParams world_params(const SampledTree& builder);

/// The simulation grid of a sample: its sampling (or auto_sampling_A) over the specimen cell,
/// FFT-friendly sizes; with PRISM f > 1, sizes divisible by f.
Grid simulation_grid(const SampledScenario& s, const Cell& cell);

/// Acquisition settings from the sampled `acquisition` section (absent: no noise at all).
/// `noise: false` keeps the section's distortions but turns counting noise off.
AcquisitionSettings acquisition_settings(const SampledScenario& s, bool& noisy);

/// Physics settings of one sample (potential, phonons, method).
StemSettings stem_settings(const SampledScenario& s);
ProbeOptics probe_optics(const SampledScenario& s);

/// Simulates one sample and fills a SampleRecord; 4D patterns go to `rows` row by row.
/// `precomputed`: the engine's result for this sample, already computed (a member of a
/// defocus series, series_reuse.hpp); only for a method-PRISM sample without spectrometers,
/// where it replaces the simulate_stem call and nothing else.
SampleRecord simulate_sample(const SampledScenario& s, const ScenarioSpec& spec, const DatasetLayout& layout,
                             const DiffractionRowSink& rows, const StemResult* precomputed = nullptr);

/// Fills what physics decides in a layout (radial bin edges, 4D pattern sizes, species).
void complete_layout(DatasetLayout& layout, const ScenarioSpec& spec);

struct RunCommand {
  std::string scenario;                 ///< YAML path; "" = the built-in quick start
  RunOptions options;
  std::optional<std::size_t> samples;   ///< --samples: overrides the scenario's `samples`
  std::optional<std::uint64_t> seed;    ///< --seed
  int threads = 0;                      ///< --threads (0: OpenMP default)
  bool dry_run = false;                 ///< print the sampled parameters, grid, memory and time estimate
  std::size_t memory_budget_bytes = 0;  ///< refuse samples estimated above this (0: default_memory_budget())
  bool series_reuse = true;             ///< serial runs: one S-matrix per defocus series (series_reuse.hpp)
};

/// `stemtwin run`: returns the exit code (0 done, 1 error, 130 interrupted by Ctrl-C).
/// `run` runs the prepared scenario (empty: run_scenario in this process; under mpirun the
/// CLI passes run_scenario_mpi, mpi_run.hpp).
int cmd_run(const RunCommand& cmd, std::ostream& out, std::ostream& err, const RunScenario& run = {});

}  // namespace stemtwin
