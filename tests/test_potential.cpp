// Projected potentials: exact sub-pixel positions, slicing invariants, finite projection.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstdio>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/physics/potential.hpp"
#include "stemtwin/core/rng.hpp"

using namespace stemtwin;

namespace {
Structure random_atoms(std::size_t n, double lx, double ly, double lz, std::uint64_t seed) {
  Structure s;
  s.cell = {lx, ly, lz};
  Rng rng(seed, RngPurpose::Structure, 0);
  const int Zs[] = {8, 22, 38, 79};
  for (std::size_t i = 0; i < n; ++i)
    s.atoms.push_back({Zs[i % 4], rng.uniform(0, lx), rng.uniform(0, ly), rng.uniform(0.5, lz - 0.5), 1.0, 0.0});
  return s;
}

std::vector<std::complex<double>> dft(const std::vector<float>& v, const Grid& g) {
  ComplexBuffer b(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) b[i] = cfloat(v[i], 0.0f);
  Fft2(g).forward(b.data());
  std::vector<std::complex<double>> out(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) out[i] = std::complex<double>(b[i]);
  return out;
}
}  // namespace

TEST(Potential, MatchesDirectStructureFactorSum) {
  // The gridded (NUFFT) potential against the exact Fourier sum
  // v(k) = (C/A) Σ_j f_e(k) e^{−2πik·r_j}, evaluated directly for every k on a small grid.
  const Grid g(7.3, 6.1, 48, 40);
  const Structure s = random_atoms(12, g.lx, g.ly, 2.0, 1);
  PotentialSettings st;
  st.slice_thickness_A = 2.0;
  const Potential pot = build_potential(s, g, st);
  ASSERT_EQ(pot.num_slices(), 1u);
  const auto vk = dft(pot.slices[0], g);
  double err = 0, ref_max = 0;
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      if (2 * j == g.ny || 2 * i == g.nx) continue;  // Nyquist row/column: real-symmetrised by the real transform
      const double kx = g.kx(i), ky = g.ky(j), k = std::hypot(kx, ky);
      std::complex<double> ref = 0;
      for (const Atom& a : s.atoms)
        ref += scattering_factor(a.Z, k) * std::polar(1.0, -2 * kPi * (kx * a.x + ky * a.y));
      ref *= kFeToPotential_VA2 / (g.lx * g.ly) * double(g.size());  // DFT of samples = N × Fourier coefficient
      err = std::max(err, std::abs(vk[j * g.nx + i] - ref));
      ref_max = std::max(ref_max, std::abs(ref));
    }
  std::printf("max |gridded - direct| / max |direct| = %.3g\n", err / ref_max);
  // Gridding error < 1e-6 (potential.cpp); the float storage of v adds ~1e-7 × N-point sums.
  EXPECT_LT(err / ref_max, 2e-6);
}

TEST(Potential, SubPixelTranslationIsAFourierShift) {
  const Grid g(8.0, 8.0, 45, 45);  // odd: no Nyquist frequency, the shift theorem is exact
  const Structure s = random_atoms(10, g.lx, g.ly, 2.0, 2);
  Structure t = s;
  const double sx = 0.37 * g.dx(), sy = 0.81 * g.dy();
  for (Atom& a : t.atoms) a.x += sx, a.y += sy;
  PotentialSettings st;
  st.slice_thickness_A = 2.0;
  const auto v0 = dft(build_potential(s, g, st).slices[0], g);
  const auto v1 = dft(build_potential(t, g, st).slices[0], g);
  double err = 0, mx = 0;
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const auto shifted = v0[j * g.nx + i] * std::polar(1.0, -2 * kPi * (g.kx(i) * sx + g.ky(j) * sy));
      err = std::max(err, std::abs(shifted - v1[j * g.nx + i]));
      mx = std::max(mx, std::abs(v0[j * g.nx + i]));
    }
  EXPECT_LT(err / mx, 2e-6);  // float precision of the stored potentials, summed by the DFT
}

TEST(Potential, TotalProjectionIndependentOfSliceThickness) {
  const Grid g(6.0, 6.0, 36, 36);
  const Structure s = random_atoms(16, g.lx, g.ly, 10.0, 3);
  std::vector<std::vector<double>> proj;
  for (double dz : {0.7, 2.0, 5.0, 10.0}) {
    PotentialSettings st;
    st.slice_thickness_A = dz;
    proj.push_back(build_potential(s, g, st).projected());
  }
  double mx = 0;
  for (double v : proj[0]) mx = std::max(mx, std::fabs(v));
  for (std::size_t k = 1; k < proj.size(); ++k)
    for (std::size_t i = 0; i < proj[0].size(); ++i) EXPECT_NEAR(proj[k][i], proj[0][i], 1e-5 * mx);
}

TEST(Potential, FiniteAndInfiniteProjectionAgreeOnTotal) {
  // Atoms at least 4 Å (the finite range) from the specimen surfaces: nothing leaks out, so
  // the finite slabs sum to the full projected potential. SVD truncation at 1e-7 and the
  // linear interpolation of the tables leave < 1e-4 of the peak.
  const Grid g(6.0, 6.0, 36, 36);
  Structure s = random_atoms(12, g.lx, g.ly, 16.0, 4);
  for (Atom& a : s.atoms) a.z = 4.0 + std::fmod(a.z, 8.0);
  PotentialSettings inf, fin;
  inf.slice_thickness_A = fin.slice_thickness_A = 1.5;
  fin.projection = Projection::Finite;
  const auto pi = build_potential(s, g, inf).projected();
  const auto pf = build_potential(s, g, fin).projected();
  double mx = 0, err = 0;
  for (std::size_t i = 0; i < pi.size(); ++i) {
    mx = std::max(mx, std::fabs(pi[i]));
    err = std::max(err, std::fabs(pi[i] - pf[i]));
  }
  std::printf("finite vs infinite total: max diff / peak = %.3g\n", err / mx);
  EXPECT_LT(err / mx, 1e-4);
}

TEST(Potential, FiniteProjectionSplitsAnAtomOnABoundaryEvenly) {
  const Grid g(5.0, 5.0, 40, 40);
  Structure s;
  s.cell = {5.0, 5.0, 8.0};
  s.atoms.push_back({38, 2.5, 2.5, 4.0, 1.0, 0.0});  // exactly on the boundary between slices 1 and 2
  PotentialSettings st;
  st.slice_thickness_A = 2.0;
  st.projection = Projection::Finite;
  const Potential p = build_potential(s, g, st);
  ASSERT_EQ(p.num_slices(), 4u);
  const std::size_t c = 20 * 40 + 20;
  EXPECT_NEAR(p.slices[1][c], p.slices[2][c], 1e-4 * p.slices[1][c]);
  // And the slices further away hold the tail: much less, but not nothing.
  EXPECT_GT(p.slices[1][c], 5 * p.slices[0][c]);
  EXPECT_GT(p.slices[0][c], 0.0f);
}

TEST(Potential, InfiniteProjectionAssignsBoundaryAtomsToTheSliceStartingThere) {
  const Grid g(4.0, 4.0, 32, 32);
  Structure s;
  s.cell = {4.0, 4.0, 3 * 1.3};
  s.atoms.push_back({8, 2.0, 2.0, 1.3 * 2, 1.0, 0.0});  // 2·1.3 computed in floating point: slice 2
  PotentialSettings st;
  st.slice_thickness_A = 1.3;
  const Potential p = build_potential(s, g, st);
  ASSERT_EQ(p.num_slices(), 3u);
  EXPECT_EQ(p.slices[1][16 * 32 + 16], 0.0f);
  EXPECT_GT(p.slices[2][16 * 32 + 16], 0.0f);
}

TEST(Potential, IntegralEqualsForwardScatteringAndPeakValuesReported) {
  // Σ v·ΔA = C·f_e(0)·occupancy exactly (the k = 0 Fourier coefficient).
  const Grid g(8.0, 8.0, 160, 160);  // 0.05 Å sampling
  for (auto p : {Parametrization::Lobato, Parametrization::Kirkland})
    for (int Z : {8, 22, 38}) {
      Structure s;
      s.cell = {8.0, 8.0, 2.0};
      s.atoms.push_back({Z, 4.0, 4.0, 1.0, 1.0, 0.0});
      PotentialSettings st;
      st.slice_thickness_A = 2.0;
      st.parametrization = p;
      const Potential pot = build_potential(s, g, st);
      double sum = 0, peak = 0;
      for (float v : pot.slices[0]) sum += v, peak = std::max(peak, double(v));
      sum *= g.dx() * g.dy();
      std::printf("PEAK %s Z=%d: peak projected potential %.1f V·Å at 0.05 Å sampling; integral %.4f V·Å³\n",
                  to_string(p).c_str(), Z, peak, sum);
      EXPECT_NEAR(sum, kFeToPotential_VA2 * scattering_factor(Z, 0, p), 1e-4 * sum);
      // The peak (at the atom, on a grid point) is the grid's truncation of the divergent
      // v_z(r → 0): exactly the sum of all Fourier coefficients (C/A) Σ_k f_e(|k|) the grid holds.
      double fsum = 0;
      for (std::size_t j = 0; j < g.ny; ++j)
        for (std::size_t i = 0; i < g.nx; ++i) fsum += scattering_factor(Z, std::hypot(g.kx(i), g.ky(j)), p);
      fsum *= kFeToPotential_VA2 / (g.lx * g.ly);
      EXPECT_NEAR(peak, fsum, 1e-5 * fsum);
      EXPECT_GT(peak, projected_potential(Z, g.dx(), p));  // and it exceeds v_z one pixel away
    }
}

TEST(Potential, PartialOccupancyScales) {
  const Grid g(5.0, 5.0, 30, 30);
  Structure s;
  s.cell = {5.0, 5.0, 2.0};
  s.atoms.push_back({26, 2.2, 2.7, 1.0, 1.0, 0.0});
  Structure h = s;
  h.atoms[0].occupancy = 0.25;
  PotentialSettings st;
  const auto a = build_potential(s, g, st).projected(), b = build_potential(h, g, st).projected();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], 0.25 * a[i], 1e-5 * std::fabs(a[i]) + 1e-6);
}

TEST(Potential, PhononDisplacementsHaveTheRequestedRms) {
  Structure s;
  s.cell = {10, 10, 10};
  for (int i = 0; i < 20000; ++i) s.atoms.push_back({14, 5, 5, 5, 1.0, 0.1});
  const Structure d = displace_atoms(s, 9, 3);
  double sxx = 0, szz = 0;
  for (const Atom& a : d.atoms) sxx += (a.x - 5) * (a.x - 5), szz += (a.z - 5) * (a.z - 5);
  // rms estimate from n = 20000 samples: relative standard error 1/√(2n) = 0.5 %; 4σ bound.
  EXPECT_NEAR(std::sqrt(sxx / 20000), 0.1, 0.1 * 0.02);
  EXPECT_NEAR(std::sqrt(szz / 20000), 0.1, 0.1 * 0.02);
  const Structure again = displace_atoms(s, 9, 3), other = displace_atoms(s, 9, 4);
  EXPECT_EQ(again.atoms[123].x, d.atoms[123].x);
  EXPECT_NE(other.atoms[123].x, d.atoms[123].x);
}

TEST(Potential, RejectsBadInput) {
  const Grid g(5.0, 5.0, 30, 30);
  Structure s;
  s.cell = {6.0, 5.0, 2.0};
  PotentialSettings st;
  EXPECT_THROW(build_potential(s, g, st), std::invalid_argument);  // grid ≠ cell
  s.cell = {5.0, 5.0, 2.0};
  st.slice_thickness_A = -1;
  EXPECT_THROW(build_potential(s, g, st), std::invalid_argument);
}
