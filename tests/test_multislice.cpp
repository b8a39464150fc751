// Plane-wave multislice: vacuum, flux conservation, weak-phase limit, thread independence.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/probe.hpp"

using namespace stemtwin;

namespace {
Structure si_like(double lx, double ly, double lz) {
  // A few heavy-ish columns on a lattice: strong scattering to exercise the band limit.
  Structure s;
  s.cell = {lx, ly, lz};
  for (double z = 1.0; z < lz; z += 2.0)
    for (double x = 0.5; x < lx; x += 2.7)
      for (double y = 0.4; y < ly; y += 2.7) s.atoms.push_back({(int(x + y) % 2) ? 79 : 14, x, y, z, 1.0, 0.0});
  return s;
}
double total(const ComplexBuffer& b) {
  double s = 0;
  for (std::size_t i = 0; i < b.size(); ++i) s += std::norm(b[i]);
  return s;
}
}  // namespace

TEST(Multislice, VacuumLeavesPlaneWaveUnchanged) {
  const Grid g(10, 10, 64, 64);
  Structure empty;
  empty.cell = {10, 10, 20};
  PotentialSettings st;
  const Fft2 fft(g);
  const Transmission t = transmission_functions(build_potential(empty, g, st), 200e3, fft);
  const ComplexBuffer psi = plane_wave_exit_wave(t, fft);
  for (std::size_t i = 0; i < psi.size(); ++i) {
    EXPECT_NEAR(psi[i].real(), 1.0f, 1e-5f);  // float round-off over 10 slices × 2 FFTs
    EXPECT_NEAR(psi[i].imag(), 0.0f, 1e-5f);
  }
}

TEST(Multislice, FluxIsConservedUpToTheBandLimitLoss) {
  // Step a probe through a strongly scattering specimen by hand and measure, per slice, the
  // intensity the band limit removes: (1) the band-limited transmission function is not quite
  // unimodular (|t_BL| < 1 where exp(iσv) had frequencies beyond the limit), and (2) the
  // mask in the propagator removes what the product scattered beyond the limit. The final
  // intensity must equal 1 minus these losses: nothing else gains or loses (P is a pure phase).
  const Grid g(10.8, 10.8, 108, 108);
  const Fft2 fft(g);
  PotentialSettings st;
  st.slice_thickness_A = 2.0;
  const Transmission t = transmission_functions(build_potential(si_like(10.8, 10.8, 40), g, st), 200e3, fft);
  ProbeOptics o;
  ComplexBuffer psi = probe_real_space(g, o, {5.0, 5.0}, fft);
  EXPECT_NEAR(total(psi), 1.0, 1e-6);
  const std::vector<float> mask = g.band_limit_mask();
  const ComplexBuffer prop = fresnel_propagator(g, wavelength_A(200e3), 2.0, 1.0f / float(g.size()));
  double loss_t = 0, loss_mask = 0;
  for (std::size_t s = 0; s < t.num_slices(); ++s) {
    const double before = total(psi);
    for (std::size_t i = 0; i < g.size(); ++i) psi[i] *= t.slices[s][i];
    loss_t += before - total(psi);
    fft.forward(psi.data());
    for (std::size_t i = 0; i < g.size(); ++i)
      if (mask[i] == 0) loss_mask += std::norm(psi[i]) / double(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) psi[i] *= prop[i];
    fft.backward(psi.data());
  }
  const double final_total = total(psi);
  std::printf("FLUX: after %zu slices (40 Å, Si/Au columns, 0.1 Å sampling): loss in band-limited t %.3e, "
              "beyond the band limit %.3e; final intensity %.7f\n",
              t.num_slices(), loss_t, loss_mask, final_total);
  EXPECT_NEAR(final_total, 1.0 - loss_t - loss_mask, 1e-5);  // float accumulation over 40 FFTs
  EXPECT_GT(loss_mask, 0.0);   // the heavy columns do scatter beyond 2/3 Nyquist
  EXPECT_LT(loss_t + loss_mask, 0.03);  // … but little: the sampling resolves the potential
}

TEST(Multislice, WeakPhaseObject) {
  // One thin slice with a single light atom: ψ = exp(iσv)·(band limit) ≈ 1 + iσv_BL.
  // The error is the second-order term (σv)²/2 ≤ ½ max(σv)².
  const Grid g(8, 8, 80, 80);
  Structure s;
  s.cell = {8, 8, 1};
  s.atoms.push_back({6, 4.0, 4.0, 0.5, 0.02, 0.0});  // 2 % occupancy: a weak object
  PotentialSettings st;
  st.slice_thickness_A = 1;
  const Fft2 fft(g);
  const Potential pot = build_potential(s, g, st);
  const Transmission t = transmission_functions(pot, 200e3, fft);
  const double sigma = interaction_parameter(200e3);
  // Band-limited σv for comparison.
  ComplexBuffer v(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) v[i] = cfloat(float(sigma * pot.slices[0][i]), 0.0f);
  fft.forward(v.data());
  const auto mask = g.band_limit_mask();
  for (std::size_t i = 0; i < g.size(); ++i) v[i] *= mask[i] / float(g.size());
  fft.backward(v.data());
  double maxphase = 0;
  for (float x : pot.slices[0]) maxphase = std::max(maxphase, sigma * x);
  ASSERT_LT(maxphase, 0.05);
  for (std::size_t i = 0; i < g.size(); ++i) {
    EXPECT_NEAR(t.slices[0][i].imag(), v[i].real(), 0.5 * maxphase * maxphase + 1e-6);
    EXPECT_NEAR(t.slices[0][i].real(), 1.0, 0.5 * maxphase * maxphase + 1e-6);
  }
}

TEST(Multislice, BitIdenticalForOneAndTwoThreads) {
  const Grid g(10.8, 10.8, 72, 72);
  PotentialSettings st;
  const Structure s = si_like(10.8, 10.8, 20);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    const Fft2 fft(g);
    const Transmission t = transmission_functions(build_potential(s, g, st), 200e3, fft);
    return plane_wave_exit_wave(t, fft);
  };
  const ComplexBuffer a = run(1), b = run(2);
  omp_set_num_threads(2);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(cfloat)));
}

#include "../src/physics/recorder.hpp"

TEST(Multislice, ComplexProductIsPlainIeee) {
  // The engine's element-wise pass has an AVX2 clone chosen at run time. Whichever clone runs,
  // every element must equal the scalar IEEE formula with separately rounded products (no
  // fused multiply-add), so the bytes never depend on the CPU's vector width. Exact equality:
  // any contraction or reordering would change the last bit of some of these 1027 products.
  const std::size_t n = 1027;  // not a multiple of any vector width: the tail is tested too
  ComplexBuffer a(n), b(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = cfloat(std::sin(0.37f * float(i)) * 3.1f, std::cos(1.3f * float(i)) / 7.0f);
    b[i] = cfloat(std::cos(0.011f * float(i * i)), std::sin(0.011f * float(i * i)) * 1.0001f);
  }
  const ComplexBuffer a0 = a;
  detail::cmul_inplace(a.data(), b.data(), n);
  for (std::size_t i = 0; i < n; ++i) {
    volatile float rr = a0[i].real() * b[i].real(), ii = a0[i].imag() * b[i].imag();
    volatile float ri = a0[i].real() * b[i].imag(), ir = a0[i].imag() * b[i].real();
    const float re = rr - ii, im = ri + ir;
    EXPECT_EQ(std::memcmp(&a[i], &re, 4), 0) << i;
    EXPECT_EQ(std::memcmp(reinterpret_cast<const char*>(&a[i]) + 4, &im, 4), 0) << i;
  }
}

TEST(Multislice, BandRowPropagatorPassGivesTheSameBytes) {
  // The engine's propagator pass multiplies only inside the band-limit runs of each row and
  // writes 0 outside (cmul_band_rows). Through a whole multislice (probe, 8 strong slices,
  // 16 FFTs) the wave must be byte-identical to the plain product over every pixel, and the
  // runs must really skip the outside (else the test could not fail in the way that matters).
  const Structure s = si_like(10.8, 10.8, 16);
  const Grid g(10.8, 10.8, 96, 96);
  PotentialSettings ps;
  ps.slice_thickness_A = 2.0;
  const Fft2 fft(g);
  const Transmission t = transmission_functions(build_potential(s, g, ps), 200e3, fft);
  ASSERT_EQ(t.num_slices(), 8u);
  const ComplexBuffer prop = fresnel_propagator(g, wavelength_A(200e3), 2.0, 1.0f / float(g.size()));
  const detail::BandRows rows = detail::band_rows(prop.data(), g.nx, g.ny);
  std::size_t kept = 0;
  for (std::size_t j = 0; j < g.ny; ++j) kept += rows.lo[j] + (g.nx - rows.hi[j]);
  // The 2/3-Nyquist circle holds π/9 ≈ 35 % of the pixels (plus its edge rows' rounding).
  EXPECT_LT(double(kept) / double(g.size()), 0.40);
  EXPECT_GT(double(kept) / double(g.size()), 0.30);
  ProbeOptics o;
  ComplexBuffer a = probe_fourier(g, o);
  fft.backward(a.data());
  ComplexBuffer b = a;
  for (std::size_t k = 0; k < t.num_slices(); ++k) {
    detail::cmul_inplace(a.data(), t.slices[k].data(), g.size());
    detail::cmul_inplace(b.data(), t.slices[k].data(), g.size());
    fft.forward(a.data());
    fft.forward(b.data());
    detail::cmul_inplace(a.data(), prop.data(), g.size());
    detail::cmul_band_rows(b.data(), prop.data(), rows);
    fft.backward(a.data());
    fft.backward(b.data());
  }
  EXPECT_EQ(std::memcmp(a.data(), b.data(), g.size() * sizeof(cfloat)), 0);
  EXPECT_GT(total(a), 0.5);  // the probe is still there
}
