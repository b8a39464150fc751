#pragma once
// Electron scattering factors and the projected potential of one atom.
//
// Two parametrisations of f_e(k) (Å, with k = |k| in 1/Å, k = 2 sin θ / λ... i.e. the
// spatial frequency, not 4π sin θ/λ):
//  - Lobato & Van Dyck, Acta Cryst. A70 (2014) 636 (the default):
//      f_e(k) = Σ_{i=1..5} a_i (2 + b_i k²) / (1 + b_i k²)²
//  - Kirkland, Advanced Computing in Electron Microscopy, 2nd ed. (2010), App. C:
//      f_e(k) = Σ_{i=1..3} a_i / (k² + b_i) + Σ_{i=1..3} c_i exp(−d_i k²)
// Tables for Z = 1..103 are embedded from src/physics/data/*.json (see its README).
//
// The projected potential of one atom follows from the 2-D Hankel transform of f_e:
//   v_z(r) = (h²/(2π m₀ e)) · 2π ∫₀^∞ f_e(k) J₀(2πkr) k dk      [V·Å]
// which in closed form is (K₀, K₁ modified Bessel functions)
//   Lobato:   v_z(r) = C·2π Σ a_i [ K₀(2πr/√b_i)/b_i + π r K₁(2πr/√b_i)/b_i^{3/2} ]
//   Kirkland: v_z(r) = C·2π Σ a_i K₀(2πr√b_i) + C·π Σ (c_i/d_i) exp(−π² r²/d_i)
// with C = kFeToPotential_VA2 = 47.8776 V·Å². Its integral over the plane is C·f_e(0).
#include <string>

namespace stemtwin {

enum class Parametrization { Lobato, Kirkland };

/// "lobato" / "kirkland" (case-insensitive; the table: physics/names.hpp); throws
/// std::invalid_argument otherwise.
Parametrization parse_parametrization(const std::string& name);
std::string to_string(Parametrization p);

/// Electron scattering factor f_e(k) in Å for atomic number Z (1..103) at spatial
/// frequency k (1/Å).
double scattering_factor(int Z, double k_invA, Parametrization p = Parametrization::Lobato);

/// Radial projected potential v_z(r) (V·Å) of one neutral atom at distance r (Å) from its
/// centre; diverges logarithmically at r → 0 (r must be > 0).
double projected_potential(int Z, double r_A, Parametrization p = Parametrization::Lobato);

/// The same with a smooth finite cut-off: v_z(r) − v_z(rc) − (r − rc)·v_z'(rc) for r < rc,
/// 0 beyond, so both the value and the slope are continuous at rc (no visible step).
double projected_potential_cutoff(int Z, double r_A, double cutoff_A,
                                  Parametrization p = Parametrization::Lobato);

}  // namespace stemtwin
