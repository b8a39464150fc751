#pragma once
// What one sample of a scenario run holds in memory at its peak, computed arithmetically
// (nothing of the size being estimated is allocated), so a run that cannot fit is refused
// with the numbers before any work and before any file is touched.
//
// The estimate is an upper bound of the growth of the process's resident memory while the
// sample runs: every large buffer of the pipeline is counted (specimen atoms, potential
// slices and the per-thread potential workspaces, the transmission functions of every
// phonon configuration or the PRISM S-matrices, per-thread waves and detector
// accumulators, detector signals, 4D pattern blocks, images and masks, HDF5 chunk
// buffers), the phases (building the potential, scanning) added, plus a margin for the
// allocator and libraries. tests/test_memory_estimate.cpp checks it against the peak RSS of
// real runs.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "stemtwin/core/grid.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin {

struct MemoryEstimate {
  std::vector<std::pair<std::string, double>> parts;  ///< (what, bytes), the large ones
  double bytes = 0;             ///< the bound: all parts + margin
  double grid_nx = 0, grid_ny = 0;  ///< simulation grid (an upper bound when it was too large to choose)
  double slices = 0;            ///< slices of the potential
  std::size_t threads = 1;
  /// "sample 7 needs about 5120 MiB (transmission functions 4096 MiB: 2 configurations ×
  /// 100 slices × 2048×2048 points; ...)": the numbers a refusal shows.
  std::string describe(std::size_t sample_index) const;
};

/// Method auto's worst case for memory: the smallest PRISM interpolation factor its
/// calibration may build an S-matrix at (plan_auto's factors: predicted f downwards, dividing
/// the grid, fitting the memory budget; none without an annular detector); 1 when it never
/// builds one or the sample's method is not auto. The S-matrix grows as 1/f², so this is the
/// largest S-matrix auto may hold (estimate_memory adds it to auto's multislice parts).
std::size_t auto_worst_prism_factor(const SampledScenario& s, const Grid& grid, double thickness_A);

/// The estimate for one sample run on `threads` OpenMP threads (`labels`: which masks it draws). `budget` only limits the
/// work spent on it: once the sample clearly exceeds it, the rest is bounded arithmetically
/// instead of building the specimen or choosing the grid. Throws what building the sample's
/// unit specimen throws (a missing structure file, an unknown element). `spectrometers`
/// (EDS/EELS, the scenario's): their inelastic recorders (footprints per configuration, a
/// window's copy) and spectrum images (expected and Poisson counts, the float rows written,
/// noisy and clean).
MemoryEstimate estimate_memory(const SampledScenario& s, const LabelsSpec& labels, std::size_t threads, double budget,
                               const std::vector<ScenarioSpectrometer>& spectrometers = {});

}  // namespace stemtwin
