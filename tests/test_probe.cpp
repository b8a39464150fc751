// Probe formation: normalisation, shifts, aberration conventions, coherence helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/probe.hpp"

using namespace stemtwin;

namespace {
double total(const ComplexBuffer& b) {
  double s = 0;
  for (std::size_t i = 0; i < b.size(); ++i) s += std::norm(b[i]);
  return s;
}
double peak(const ComplexBuffer& b) {
  double m = 0;
  for (std::size_t i = 0; i < b.size(); ++i) m = std::max(m, double(std::norm(b[i])));
  return m;
}
}  // namespace

TEST(Probe, SumsToOne) {
  const Grid g(12, 10, 120, 100);
  const Fft2 fft(g);
  ProbeOptics o;
  EXPECT_NEAR(total(probe_real_space(g, o, {3.3, 4.1}, fft)), 1.0, 1e-6);
  o.aberrations.set("defocus", 80);
  o.aberrations.set("C30", 1e5);
  EXPECT_NEAR(total(probe_real_space(g, o, {0, 0}, fft)), 1.0, 1e-6);
}

TEST(Probe, ShiftedProbeEqualsShiftedArray) {
  // A whole-pixel shift of the position rolls the array exactly; sub-pixel shifts are the
  // same Fourier operation, so this checks the sign and the axes of the phase ramp.
  const Grid g(8, 6, 64, 48);
  const Fft2 fft(g);
  ProbeOptics o;
  const ComplexBuffer a = probe_real_space(g, o, {1.0, 1.5}, fft);
  const ComplexBuffer b = probe_real_space(g, o, {1.0 + 3 * g.dx(), 1.5 + 2 * g.dy()}, fft);
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const cfloat x = a[j * g.nx + i], y = b[((j + 2) % g.ny) * g.nx + (i + 3) % g.nx];
      EXPECT_NEAR(std::abs(x - y), 0.0, 1e-6);
    }
  // The intensity peak sits at the requested position.
  const ComplexBuffer c = probe_real_space(g, o, {5.0, 2.0}, fft);
  std::size_t best = 0;
  for (std::size_t i = 0; i < c.size(); ++i)
    if (std::norm(c[i]) > std::norm(c[best])) best = i;
  EXPECT_NEAR(double(best % g.nx) * g.dx(), 5.0, 0.5 * g.dx());
  EXPECT_NEAR(double(best / g.nx) * g.dy(), 2.0, 0.5 * g.dy());
}

TEST(Probe, PositiveDefocusFocusesBelowTheEntranceSurface) {
  // Convention (probe.hpp, README): defocus = −C10 > 0 puts the crossover at depth z = defocus.
  // Propagate a defocused probe through vacuum and find the depth of the sharpest probe.
  const Grid g(16, 16, 160, 160);
  const Fft2 fft(g);
  ProbeOptics o;
  o.semiangle_mrad = 25;
  o.aberrations.set("defocus", 60.0);
  ComplexBuffer psi = probe_real_space(g, o, {8, 8}, fft);
  const double lambda = wavelength_A(o.energy_eV), dz = 5.0;
  const ComplexBuffer prop = fresnel_propagator(g, lambda, dz, 1.0f / float(g.size()));
  double best_peak = peak(psi), best_z = 0;
  for (int s = 1; s <= 24; ++s) {
    fft.forward(psi.data());
    for (std::size_t i = 0; i < g.size(); ++i) psi[i] *= prop[i];
    fft.backward(psi.data());
    if (peak(psi) > best_peak) best_peak = peak(psi), best_z = s * dz;
  }
  EXPECT_NEAR(best_z, 60.0, dz / 2 + 1e-9);
  // and C10 is its negative
  EXPECT_DOUBLE_EQ(o.aberrations.get("C10"), -60.0);
}

TEST(Probe, ChiFollowsKrivanekNotation) {
  Aberrations a;
  const double lambda = 0.025, alpha = 0.02;
  a.set("Cs", 1e7);  // 1 mm
  EXPECT_NEAR(a.chi(alpha, 0.3, lambda), 2 * kPi / lambda * 1e7 * std::pow(alpha, 4) / 4, 1e-9);
  Aberrations b;
  b.set("astigmatism", 50);
  b.set("astigmatism_angle", 0.5);
  // C12 term: (2π/λ) C12 α²/2 cos(2(φ − φ12)): maximal along φ12, negative across it.
  EXPECT_NEAR(b.chi(alpha, 0.5, lambda), 2 * kPi / lambda * 50 * alpha * alpha / 2, 1e-9);
  EXPECT_NEAR(b.chi(alpha, 0.5 + kPi / 2, lambda), -2 * kPi / lambda * 50 * alpha * alpha / 2, 1e-9);
  EXPECT_THROW(b.set("C99", 1), std::invalid_argument);
  EXPECT_THROW(b.set("phi30", 1), std::invalid_argument);  // C30 is round: no angle
  EXPECT_NO_THROW(b.set("C56", 1e9));
}

TEST(Probe, SoftApertureEdgeIsOnePixelWide) {
  EXPECT_DOUBLE_EQ(aperture(0.010, 0, 0.020, 0.001, 0.001), 1.0);
  EXPECT_DOUBLE_EQ(aperture(0.020, 0, 0.020, 0.001, 0.001), 0.5);
  EXPECT_DOUBLE_EQ(aperture(0.0215, 0, 0.020, 0.001, 0.001), 0.0);
}

TEST(Probe, FocalSpreadQuadratureMoments) {
  // Gauss–Hermite with n nodes integrates polynomials to degree 2n−1 exactly against the
  // Gaussian: mean 0, variance σ², fourth moment 3σ⁴.
  const auto q = focal_spread_quadrature(30.0, 7);
  ASSERT_EQ(q.defocus_A.size(), 7u);
  double w = 0, m1 = 0, m2 = 0, m4 = 0;
  for (std::size_t i = 0; i < 7; ++i) {
    w += q.weight[i];
    m1 += q.weight[i] * q.defocus_A[i];
    m2 += q.weight[i] * std::pow(q.defocus_A[i], 2);
    m4 += q.weight[i] * std::pow(q.defocus_A[i], 4);
  }
  EXPECT_NEAR(w, 1.0, 1e-12);
  EXPECT_NEAR(m1, 0.0, 1e-9);
  EXPECT_NEAR(m2, 900.0, 1e-7);
  EXPECT_NEAR(m4, 3 * 810000.0, 1e-3);
  EXPECT_EQ(focal_spread_quadrature(0, 7).defocus_A.size(), 1u);
}

TEST(Probe, ScherzerAndDiagnostics) {
  // √(1.5 · 1.2 mm · λ(200 kV)) = 671.9 Å.
  EXPECT_NEAR(scherzer_defocus_A(1.2e7, 200e3), 671.9, 0.1);
  const Grid g(12, 12, 240, 240);
  const Fft2 fft(g);
  ProbeOptics o;
  // Diffraction-limited probe FWHM ≈ 0.51 λ/α (Airy disc intensity): 0.51 · 0.025079/0.02 = 0.64 Å.
  const double fwhm = probe_fwhm_A(g, probe_real_space(g, o, {6, 6}, fft));
  EXPECT_NEAR(fwhm, 0.51 * wavelength_A(200e3) / 0.020, 0.05);
  const auto prof = probe_profile(g, o, fft);
  ASSERT_GT(prof.size(), 10u);
  EXPECT_GT(prof[0][1], prof[5][1]);
  o.aberrations.set("defocus", 100);
  const auto chi = chi_on_aperture(g, o);
  EXPECT_EQ(chi[0], 0.0);  // χ(0) = 0
  EXPECT_LT(chi[3], 0.0);  // defocus > 0: C10 < 0, χ < 0 inside the aperture
}
