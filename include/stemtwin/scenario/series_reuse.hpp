#pragma once
// Defocus series in the dataset runner: when consecutive samples differ only in defocus
// (C10), one PRISM S-matrix serves them all (physics/prism_series.hpp) instead of one build
// per sample.
//
// Which samples share an S-matrix is decided from what the engine would be given, not from
// the scenario's text: each sample's specimen is built, its grid, scan positions, detectors,
// optics and settings are derived exactly as simulate_sample does, and two samples are
// grouped only when all of these are equal except the aberration coefficient C10. The
// member results are byte-identical to simulating each sample on its own (prism_series.hpp
// says why), so grouping changes no byte of a dataset: resumed, sharded and interrupted
// runs, which group differently, give the same file as an uninterrupted one.
//
// Eligible samples: method PRISM (auto is not grouped: its calibration depends on the
// defocus and builds its own S-matrices), a static lattice (no atom with rms > 0: the
// phonon stream is keyed by the sample index, so displaced configurations differ between
// samples), no pixelated detector (its rows stream per sample) and no spectrometer.
// Thickness sweeps are not grouped (docs/scenario.md, "Series reuse").
#include <cstddef>
#include <span>
#include <vector>

#include "stemtwin/scenario/runner.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin {

/// Splits `pending` (in order) into runs of consecutive entries that one PRISM S-matrix
/// serves (the rule above); each run holds at most `max_group` samples. Runs of one sample
/// are simulated as usual. Samples whose draw or specimen fails are left alone (a run of
/// one), so the error surfaces where the one-by-one run would raise it.
std::vector<std::vector<std::size_t>> defocus_series_groups(const ScenarioSpec& spec, std::span<const std::size_t> pending,
                                                            std::size_t max_group = 64);

/// The serial sample loop with defocus-series reuse: computes each group of
/// defocus_series_groups() from one S-matrix and appends its samples in order (every other
/// sample as run_scenario's own loop would). Stops after the append for which `appended()`
/// returns true, as the plain loop does. `spec` must outlive the loop.
SampleLoop series_sample_loop(const ScenarioSpec& spec);

}  // namespace stemtwin
