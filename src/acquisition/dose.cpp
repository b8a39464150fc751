#include "stemtwin/acquisition/dose.hpp"

#include <stdexcept>
#include <string>

namespace stemtwin {

double electrons_per_position(double beam_current_pA, double dwell_us) {
  if (!(beam_current_pA >= 0) || !(dwell_us >= 0))
    throw std::invalid_argument("beam current (pA) and dwell (µs) must be ≥ 0, got " +
                                std::to_string(beam_current_pA) + " pA, " + std::to_string(dwell_us) + " µs");
  return beam_current_pA * 1e-12 * dwell_us * 1e-6 / kElementaryCharge_C;
}

DoseReport dose_report(double beam_current_pA, double dwell_us, double step_x_A, double step_y_A,
                       std::size_t n_positions, std::span<const double> dose_multipliers) {
  if (!(step_x_A > 0) || !(step_y_A > 0)) throw std::invalid_argument("scan step must be > 0 Å");
  if (!dose_multipliers.empty() && dose_multipliers.size() != n_positions)
    throw std::invalid_argument("dose_report: " + std::to_string(dose_multipliers.size()) +
                                " dose multipliers for " + std::to_string(n_positions) + " positions");
  DoseReport r;
  r.electrons_per_position = electrons_per_position(beam_current_pA, dwell_us);
  r.pixel_area_A2 = step_x_A * step_y_A;
  double m = 1.0;
  if (!dose_multipliers.empty()) {
    double s = 0;
    for (double v : dose_multipliers) s += v;
    m = s / static_cast<double>(n_positions);
  }
  r.mean_dose_multiplier = m;
  r.dose_e_per_A2 = r.electrons_per_position * m / r.pixel_area_A2;
  r.frame_electrons = r.electrons_per_position * m * static_cast<double>(n_positions);
  return r;
}

}  // namespace stemtwin
