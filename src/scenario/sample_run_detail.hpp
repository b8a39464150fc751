#pragma once
// Internal to src/scenario: what the pieces of one sample's run share (scenario_run.hpp is
// implemented by sample_specimen.cpp, sample_settings.cpp, sample_layout.cpp,
// simulate_sample.cpp and cmd_run.cpp).
#include <string>
#include <vector>

namespace stemtwin::detail {

/// Parameters derived from each sample's physics, stored in /params beside the sampled ones.
inline constexpr const char* kDerivedParams[] = {"thickness_A", "electrons_per_position", "dose_e_per_A2", "atoms", "sampling_A"};
/// What produced each sample's numbers (method auto's choice, docs/dataset.md): the method
/// (categories below), PRISM's factor, and the error auto measured on its calibration
/// positions against multislice (NaN when nothing was calibrated), and the probe positions
/// simulated (fewer than the scan's when multislice reused translational symmetry).
inline constexpr const char* kMethodParams[] = {"interpolation", "calibration_mean_error", "calibration_correlation",
                                                "symmetry_positions"};
inline const std::vector<std::string> kMethodCategories = {"multislice", "prism", "windowed"};

}  // namespace stemtwin::detail
