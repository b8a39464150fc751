// The corrector's physics (aberration_measure.hpp): CEOS ↔ Krivanek conversion, the residual
// draw, and the beam-tilt tableau recovering known aberrations (noiseless: exact up to the
// grid; with a dose: the stated uncertainty covers the error).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "stemtwin/physics/aberration_measure.hpp"
#include "stemtwin/core/fft.hpp"

using namespace stemtwin;

namespace {
ProbeOptics optics_with(const Aberrations& a) {
  ProbeOptics o;
  o.energy_eV = 200e3;
  o.semiangle_mrad = 25;
  o.aberrations = a;
  return o;
}
}  // namespace

// A1 = C12 and B2 = C21/3 by definition (Uhlemann & Haider 1998): the CEOS Cartesian value
// round-trips, and adding an aberration to its negative cancels it.
TEST(AberrationMeasure, CeosConversionAndAddition) {
  Aberrations a;
  a.set("C21", 300);
  a.set("phi21", 0.4);
  const auto b2 = ceos_get(a, ceos_coefficient("B2"));
  EXPECT_NEAR(std::hypot(b2[0], b2[1]), 100.0, 1e-12);
  EXPECT_NEAR(std::atan2(b2[1], b2[0]), 0.4, 1e-12);
  Aberrations neg;
  ceos_set(neg, ceos_coefficient("B2"), {-b2[0], -b2[1]});
  EXPECT_NEAR(add_aberrations(a, neg).C[2], 0.0, 1e-10);
  EXPECT_THROW(ceos_coefficient("Q7"), std::invalid_argument);
}

// Same seed → same residuals; magnitudes within [0.5, 1] × their scales.
TEST(AberrationMeasure, ResidualDrawIsDeterministicAndScaled) {
  const Aberrations a = draw_residual_aberrations(7), b = draw_residual_aberrations(7), c = draw_residual_aberrations(8);
  EXPECT_EQ(a.C, b.C);
  EXPECT_EQ(a.phi, b.phi);
  EXPECT_NE(a.C, c.C);
  const ResidualScales s;
  const double scale[] = {s.C1_A, s.A1_A, s.B2_A, s.A2_A, s.C3_A, s.S3_A, s.A3_A};
  for (std::size_t j = 0; j < ceos_coefficients().size(); ++j) {
    const auto xy = ceos_get(a, ceos_coefficients()[j]);
    const double mag = std::hypot(xy[0], xy[1]);
    EXPECT_GE(mag, 0.5 * scale[j] * (1 - 1e-12)) << ceos_coefficients()[j].name;
    EXPECT_LE(mag, scale[j] * (1 + 1e-12)) << ceos_coefficients()[j].name;
  }
}

// Noiseless tableau: the centroid relation ⟨r⟩ = ⟨∇f⟩ is exact for a continuous probe, so
// the fit returns the coefficients up to the grid (circular mean and finite box). Cases
// not used in writing the code: a corrected-microscope set from the residual draw.
TEST(AberrationMeasure, NoiselessTableauRecoversResiduals) {
  for (std::uint64_t seed : {3u, 11u}) {
    const Aberrations truth = draw_residual_aberrations(seed);
    TableauSettings ts;
    ts.electrons_per_tilt = 0;
    const TableauResult r = measure_tableau(optics_with(truth), ts);
    ASSERT_EQ(r.coefficients.size(), 7u);
    for (const auto& m : r.coefficients) {
      const auto t = ceos_get(truth, ceos_coefficient(m.name));
      std::printf("seed %llu %s: true (%.3f, %.3f) measured (%.3f, %.3f) Å\n", (unsigned long long)seed, m.name.c_str(), t[0],
                  t[1], m.xy_A[0], m.xy_A[1]);
      // 1 % of the residual's scale: a discretisation bound (the box holds the probe's
      // tails to well under 1 % of its intensity, and the circular mean is exact for
      // them); C1/A1 errors of 0.3 Å shift focus by far less than the 0.8 nm depth of field.
      const double tol = 0.01 * std::max(std::hypot(t[0], t[1]), 1.0);
      EXPECT_NEAR(m.xy_A[0], t[0], tol) << m.name;
      EXPECT_NEAR(m.xy_A[1], t[1], tol) << m.name;
    }
  }
}

// With a dose, the error of C1 and A1 is covered by the stated uncertainty: over 12 seeds
// every component lies within 4σ (a 1-in-16000 event per component for a Gaussian), and
// the rms of the z-scores is between 0.5 and 1.6 (12 × 3 z-scores: a chi distribution with
// 36 degrees of freedom has rms within [0.75, 1.25] at 99 %; wider bounds allow the scaled
// covariance's own spread).
TEST(AberrationMeasure, NoisyTableauUncertaintyCoversError) {
  const Aberrations truth = draw_residual_aberrations(21);
  double z2 = 0;
  int nz = 0;
  for (std::uint64_t s = 0; s < 12; ++s) {
    TableauSettings ts;
    ts.electrons_per_tilt = 2e4;
    ts.seed = 100;
    ts.stream = s;
    const TableauResult r = measure_tableau(optics_with(truth), ts);
    for (const char* name : {"C1", "A1"}) {
      const auto& m = r.get(name);
      const auto t = ceos_get(truth, ceos_coefficient(name));
      for (int k = 0; k < (std::string(name) == "C1" ? 1 : 2); ++k) {
        const double z = (m.xy_A[k] - t[k]) / m.sigma_xy_A[k];
        EXPECT_LT(std::abs(z), 4.0) << name << " component " << k << " stream " << s;
        z2 += z * z;
        ++nz;
      }
    }
    if (s == 0)
      std::printf("C1 %.2f ± %.2f Å (true %.2f), reduced chi2 %.2f\n", r.get("C1").xy_A[0], r.get("C1").sigma_xy_A[0],
                  ceos_get(truth, ceos_coefficient("C1"))[0], r.reduced_chi2);
  }
  const double rms = std::sqrt(z2 / nz);
  std::printf("rms z-score %.3f over %d components\n", rms, nz);
  EXPECT_GT(rms, 0.5);
  EXPECT_LT(rms, 1.6);
}

// One ring fits orders 1–2 only; out-of-range settings are refused by name.
TEST(AberrationMeasure, SettingsChecked) {
  TableauSettings ts;
  ts.rings = 1;
  ts.electrons_per_tilt = 0;
  Aberrations a;
  a.set("C10", 40);
  const TableauResult r = measure_tableau(optics_with(a), ts);
  EXPECT_NEAR(r.get("C1").xy_A[0], 40.0, 0.4);  // 1 %, as above
  EXPECT_THROW(r.get("C3"), std::invalid_argument);
  ts.tilt_mrad = 0.1;
  EXPECT_THROW(measure_tableau(optics_with(a), ts), std::invalid_argument);
  ts.tilt_mrad = 18;
  ts.azimuths = 4;
  EXPECT_THROW(measure_tableau(optics_with(a), ts), std::invalid_argument);
}
