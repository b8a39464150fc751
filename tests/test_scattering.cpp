// Scattering factors and single-atom projected potentials.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/scattering.hpp"

using namespace stemtwin;

TEST(Scattering, HydrogenForwardScatteringIsBohrRadius) {
  // Mott–Bethe for neutral H: f_e(0) = a₀ (shared/data/README.md); the fits reproduce it
  // to their fitting accuracy (0.5 %).
  EXPECT_NEAR(scattering_factor(1, 0, Parametrization::Lobato), kBohrRadius_A, 0.005 * kBohrRadius_A);
  EXPECT_NEAR(scattering_factor(1, 0, Parametrization::Kirkland), kBohrRadius_A, 0.005 * kBohrRadius_A);
}

TEST(Scattering, ParametrisationsAgreeForCommonElements) {
  // Both are fits to the same Hartree–Fock scattering factors; over k = 0..2 1/Å they agree
  // to a few per cent (Lobato & Van Dyck 2014, Fig. 3 show < 1 % fit errors for each).
  // Worst case measured here: printed below; bound 5 %.
  for (int Z : {6, 8, 14, 22, 26, 29, 38, 57, 79}) {
    double worst = 0;
    for (double k = 0; k <= 2.0; k += 0.05) {
      const double l = scattering_factor(Z, k, Parametrization::Lobato), kk = scattering_factor(Z, k, Parametrization::Kirkland);
      worst = std::max(worst, std::fabs(l / kk - 1));
    }
    std::printf("Z=%d max |Lobato/Kirkland - 1| over k=0..2: %.4f\n", Z, worst);
    EXPECT_LT(worst, 0.05) << "Z=" << Z;
  }
}

TEST(Scattering, ScatteringFactorDecreasesWithAngleAndGrowsWithZ) {
  for (auto p : {Parametrization::Lobato, Parametrization::Kirkland}) {
    for (int Z = 1; Z <= 103; ++Z)
      for (double k = 0; k < 4; k += 0.25) EXPECT_GT(scattering_factor(Z, k, p), scattering_factor(Z, k + 0.25, p));
    // At high angle (k = 2 1/Å, Rutherford-like) the factor rises with Z.
    EXPECT_LT(scattering_factor(6, 2, p), scattering_factor(14, 2, p));
    EXPECT_LT(scattering_factor(14, 2, p), scattering_factor(79, 2, p));
  }
}

TEST(Scattering, ProjectedPotentialIntegratesToForwardScatteringFactor) {
  // ∫ v_z d²r = 2π ∫ v_z(r) r dr = C·f_e(0), C = h²/(2π m₀ e) = 47.8776 V·Å²: the k = 0 value of
  // the 2-D Fourier transform. Quadrature in t = ln r from 1e-8 Å to 40 Å (the tail beyond is
  // below 1e-12 of the total); Simpson's rule, 8000 intervals: relative error < 1e-6.
  for (auto p : {Parametrization::Lobato, Parametrization::Kirkland})
    for (int Z : {1, 8, 22, 38, 79}) {
      const double t0 = std::log(1e-8), t1 = std::log(40.0);
      const int n = 8000;
      const double h = (t1 - t0) / n;
      double s = 0;
      for (int i = 0; i <= n; ++i) {
        const double r = std::exp(t0 + i * h);
        const double f = 2 * kPi * projected_potential(Z, r, p) * r * r;
        s += f * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
      }
      s *= h / 3;
      EXPECT_NEAR(s / (kFeToPotential_VA2 * scattering_factor(Z, 0, p)), 1.0, 1e-5) << "Z=" << Z << " " << to_string(p);
    }
}

TEST(Scattering, CutoffPotentialHasNoStep) {
  // The cut-off form goes to zero with zero slope at rc: the value just inside rc is of
  // second order in the distance (|v(rc−h)| ≲ ½ v''·h²), far below the peak.
  for (int Z : {8, 38, 79}) {
    const double rc = 3.0, h = 1e-3;
    const double inside = projected_potential_cutoff(Z, rc - h, rc);
    const double peak = projected_potential_cutoff(Z, 0.01, rc);
    EXPECT_EQ(projected_potential_cutoff(Z, rc, rc), 0.0);
    EXPECT_LT(std::fabs(inside), 1e-6 * peak) << "Z=" << Z;
    // Monotonic decrease towards the cut-off (no bump from the correction).
    double prev = peak;
    for (double r = 0.05; r < rc; r += 0.05) {
      const double v = projected_potential_cutoff(Z, r, rc);
      EXPECT_LE(v, prev);
      prev = v;
    }
  }
}

TEST(Scattering, ParsesNamesAndSymbols) {
  EXPECT_EQ(parse_parametrization("Kirkland"), Parametrization::Kirkland);
  EXPECT_THROW(parse_parametrization("doyle-turner"), std::invalid_argument);
  EXPECT_EQ(atomic_number("Sr"), 38);
  EXPECT_EQ(atomic_number("sr"), 38);
  EXPECT_EQ(element_symbol(79), "Au");
  EXPECT_THROW(atomic_number("Xx"), std::invalid_argument);
  EXPECT_THROW(scattering_factor(0, 0), std::invalid_argument);
}
