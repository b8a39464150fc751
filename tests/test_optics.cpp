// Relativistic electron optics against published numbers.
#include <gtest/gtest.h>

#include "stemtwin/core/constants.hpp"

using namespace stemtwin;

// Published values (Kirkland 2010, Table 2.1 / DESIGN.md): λ to the 6 digits given.
TEST(Optics, WavelengthMatchesPublishedValues) {
  EXPECT_NEAR(wavelength_A(200e3), 0.025079, 0.5e-6);
  EXPECT_NEAR(wavelength_A(300e3), 0.019687, 0.5e-6);
  EXPECT_NEAR(wavelength_A(100e3), 0.037014, 0.5e-6);  // 3.7014 pm at 100 kV (Kirkland Table 2.1)
}

TEST(Optics, InteractionParameterMatchesPublishedValue) {
  EXPECT_NEAR(interaction_parameter(200e3), 7.2884e-4, 0.00005e-4);
  // σ falls with energy; σ(300 kV) = 6.5262e-4 rad/(V·Å) is the fourth published value
  // (Kirkland 2010, Table 5.1 lists σ per voltage).
  EXPECT_GT(interaction_parameter(100e3), interaction_parameter(200e3));
  EXPECT_GT(interaction_parameter(200e3), interaction_parameter(300e3));
  EXPECT_NEAR(interaction_parameter(300e3), 6.5262e-4, 0.0002e-4);
}

TEST(Optics, RejectsNonPositiveEnergy) {
  EXPECT_THROW(wavelength_A(0), std::invalid_argument);
  EXPECT_THROW(interaction_parameter(-5), std::invalid_argument);
}

TEST(Optics, PotentialConversionConstant) {
  // h²/(2π m₀ e) = 2π a₀ e = 47.8776 V·Å² (shared/data/README.md).
  EXPECT_NEAR(kFeToPotential_VA2, 47.8776, 0.0001);
}

#include "stemtwin/core/grid.hpp"

TEST(Grid, FftFriendlySizesPreferFactorsOfTwo) {
  EXPECT_EQ(fft_friendly_size(313), 320u);  // not 315 = 3²·5·7 (2.2× slower per FFT here)
  EXPECT_EQ(fft_friendly_size(157), 160u);
  EXPECT_EQ(fft_friendly_size(64), 64u);
  for (std::size_t n = 2; n < 3000; n += 7) {
    const std::size_t m = fft_friendly_size(n);
    EXPECT_GE(m, n);
    EXPECT_LE(m, n + n / 10 + 1);
    std::size_t r = m;
    for (std::size_t p : {2u, 3u, 5u, 7u})
      while (r % p == 0) r /= p;
    EXPECT_EQ(r, 1u) << m;
  }
  // The band limit is 2/3 of the smaller Nyquist frequency.
  const Grid g(10.0, 12.0, 100, 100);
  EXPECT_NEAR(g.k_max(), 2.0 / 3.0 * 0.5 / 0.12, 1e-12);
  EXPECT_DOUBLE_EQ(g.kx(99), -1.0 / 10.0);
}
