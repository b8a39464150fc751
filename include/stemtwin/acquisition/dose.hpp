#pragma once
// Electron dose: how many electrons the beam delivers per probe position and per area.
// Units (DESIGN §3): current in pA, dwell in µs, lengths in Å.
#include <cstddef>
#include <span>

#include "stemtwin/core/constants.hpp"

namespace stemtwin {

/// Electrons per probe position N = I·t/e (20 pA × 2 µs ≈ 249.7 e⁻). Throws
/// std::invalid_argument for a negative current or dwell.
double electrons_per_position(double beam_current_pA, double dwell_us);

/// What a frame delivers to the specimen.
struct DoseReport {
  double electrons_per_position = 0;  ///< N = I·t/e at nominal current, e⁻
  double pixel_area_A2 = 0;           ///< area one scan pixel stands for (step_x·step_y), Å²
  double dose_e_per_A2 = 0;           ///< areal dose of the frame: mean electrons per position / pixel area, e⁻/Å²
  double frame_electrons = 0;         ///< electrons delivered in the whole frame, e⁻
  double mean_dose_multiplier = 1;    ///< mean of the per-pixel current multipliers (1 without fluctuation)
};

/// Dose of a frame of n_positions positions on pixels of step_x_A × step_y_A. The optional
/// per-pixel dose multipliers (probe-current fluctuation, from distort_scan) scale each
/// position's electrons; an empty span means all 1.
DoseReport dose_report(double beam_current_pA, double dwell_us, double step_x_A, double step_y_A,
                       std::size_t n_positions, std::span<const double> dose_multipliers = {});

}  // namespace stemtwin
