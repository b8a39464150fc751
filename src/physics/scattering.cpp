#include "stemtwin/physics/scattering.hpp"

#include <cctype>
#include <cmath>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/names.hpp"

namespace stemtwin {
namespace {
#include "scattering_tables.inc"

void check_Z(int Z) {
  if (Z < 1 || Z > 103) throw std::invalid_argument("atomic number " + std::to_string(Z) + " outside 1..103");
}
}  // namespace

Parametrization parse_parametrization(const std::string& name) {
  return parse_name("parametrization", name, kParametrizationNames);
}

std::string to_string(Parametrization p) { return name_of(p, kParametrizationNames); }

double scattering_factor(int Z, double k, Parametrization p) {
  check_Z(Z);
  const double k2 = k * k;
  double f = 0;
  if (p == Parametrization::Lobato) {
    const double* t = kLobato[Z - 1];
    for (int i = 0; i < 5; ++i) {
      const double bk2 = 1.0 + t[5 + i] * k2;
      f += t[i] * (2.0 + t[5 + i] * k2) / (bk2 * bk2);
    }
  } else {
    const double* t = kKirkland[Z - 1];
    for (int i = 0; i < 3; ++i) f += t[i] / (k2 + t[3 + i]) + t[6 + i] * std::exp(-t[9 + i] * k2);
  }
  return f;
}

double projected_potential(int Z, double r, Parametrization p) {
  check_Z(Z);
  if (!(r > 0)) throw std::invalid_argument("projected_potential: r must be > 0 Å");
  const double C = kFeToPotential_VA2;
  double v = 0;
  if (p == Parametrization::Lobato) {
    const double* t = kLobato[Z - 1];
    for (int i = 0; i < 5; ++i) {
      const double b = t[5 + i], sb = std::sqrt(b), x = 2.0 * kPi * r / sb;
      v += t[i] * (std::cyl_bessel_k(0.0, x) / b + kPi * r * std::cyl_bessel_k(1.0, x) / (b * sb));
    }
    v *= 2.0 * kPi * C;
  } else {
    const double* t = kKirkland[Z - 1];
    double bessel = 0, gauss = 0;
    for (int i = 0; i < 3; ++i) {
      bessel += t[i] * std::cyl_bessel_k(0.0, 2.0 * kPi * r * std::sqrt(t[3 + i]));
      gauss += t[6 + i] / t[9 + i] * std::exp(-kPi * kPi * r * r / t[9 + i]);
    }
    v = 2.0 * kPi * C * bessel + kPi * C * gauss;
  }
  return v;
}

double projected_potential_cutoff(int Z, double r, double rc, Parametrization p) {
  if (!(rc > 0)) throw std::invalid_argument("projected_potential_cutoff: cut-off must be > 0 Å");
  if (r >= rc) return 0.0;
  const double h = 1e-4 * rc;  // central difference for the slope at rc; v_z is smooth there
  const double vc = projected_potential(Z, rc, p);
  const double dv = (projected_potential(Z, rc + h, p) - projected_potential(Z, rc - h, p)) / (2.0 * h);
  return projected_potential(Z, r, p) - vc - (r - rc) * dv;
}

}  // namespace stemtwin
