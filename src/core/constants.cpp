#include "stemtwin/core/constants.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace stemtwin {
namespace {
void check_energy(double energy_eV) {
  if (!(energy_eV > 0) || !std::isfinite(energy_eV))
    throw std::invalid_argument("beam energy must be > 0 eV (got " + std::to_string(energy_eV) + ")");
}
}  // namespace

double wavelength_A(double energy_eV) {
  check_energy(energy_eV);
  return kHC_eVA / std::sqrt(energy_eV * (2.0 * kElectronRestEnergy_eV + energy_eV));
}

double interaction_parameter(double energy_eV) {
  check_energy(energy_eV);
  const double lambda = wavelength_A(energy_eV);
  return 2.0 * kPi / (lambda * energy_eV) * (kElectronRestEnergy_eV + energy_eV) /
         (2.0 * kElectronRestEnergy_eV + energy_eV);
}

double lorentz_factor(double energy_eV) {
  check_energy(energy_eV);
  return 1.0 + energy_eV / kElectronRestEnergy_eV;
}

}  // namespace stemtwin
