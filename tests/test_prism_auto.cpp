// PRISM's interpolation error and Method::Auto (issue 14).
//  - The error model: PRISM at factor f on a crystal is exactly multislice on the L/f-wide
//    supercell (the probe built from the coarse beams repeats every L/f).
//  - The band-limit crop of the stored S-matrix changes no signal.
//  - Method::Auto holds its error budget against plain multislice on specimens its model
//    constant was not tuned on, records its choice, caches it, and is thread-count exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <omp.h>

#include <cmath>
#include <cstdio>

#include "auto_fixtures.hpp"
#include "reference_case.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/engine.hpp"

using namespace stemtwin;

namespace {
using test::mean;
using test::pearson;
using test::si110;
using test::srtio3;
double max_rel(const std::vector<double>& a, const std::vector<double>& b) {
  double e = 0, m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(a[i] - b[i])), m = std::max(m, std::fabs(b[i]));
  return e / m;
}
/// Fcc [001]: n × n × m cubic cells of lattice parameter a.
Structure fcc001(int Z, double a, int n, int m) {
  Structure s;
  s.cell = {a * n, a * n, a * m};
  const double basis[4][3] = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};
  for (int k = 0; k < m; ++k)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i)
        for (const auto& b : basis) s.atoms.push_back(Atom{Z, a * (i + b[0]), a * (j + b[1]), a * (k + b[2] + 0.25)});
  return s;
}
std::vector<Point2> raster(double x0, double y0, double w, double h, std::size_t n) {
  return ScanGrid::from_fov({x0, y0}, w, h, n, n).positions();
}
}  // namespace

TEST(PrismError, FactorFIsMultisliceOnTheSupercellOfWidthLOverF) {
  // The error model of docs/physics.md: beams on the f-coarsened lattice make a probe that
  // repeats every L/f, so on a crystal PRISM(f, L) = multislice(L/f). Compared here at
  // the same positions: SrTiO3 4×4×2 cells with f = 2 against 2×2×2 cells, same sampling.
  const Structure big = srtio3(4, 2), small = srtio3(2, 2);
  const Grid gb(big.cell.x, big.cell.y, 160, 160), gs(small.cell.x, small.cell.y, 80, 80);  // 0.098 Å both
  ProbeOptics o;
  o.aberrations.set("defocus", 30);
  StemSettings st;
  st.potential.slice_thickness_A = 3.905 / 2;
  std::vector<Point2> pos;
  for (int i = 0; i < 6; ++i) pos.push_back({0.4 + 0.57 * i, 1.2 + 0.31 * i});
  const std::vector<Detector> d = {AnnularDetector{"haadf", 50, 100}, AnnularDetector{"bf", 0, 20}};
  const StemResult ms = simulate_stem(small, gs, o, pos, d, st);
  st.method = Method::Prism;
  st.interpolation_x = st.interpolation_y = 2;
  st.prism_block_A = 0;  // a window centred on every position
  const StemResult pr = simulate_stem(big, gb, o, pos, d, st);
  for (const char* name : {"haadf", "bf"}) {
    const double e = max_rel(pr.signal(name).values, ms.signal(name).values);
    std::printf("PRISM f=2 on 4x4 cells vs multislice on 2x2 cells %s: max rel diff %.2e\n", name, e);
    // Same waves summed in another order, on grids whose potentials are the same Fourier
    // coefficients: float round-off (~1e-6 of the largest value) — not PRISM's % error.
    EXPECT_LT(e, 2e-5) << name;
  }
}

TEST(PrismError, BandLimitCropChangesNoSignal) {
  // The stored S-matrix Fourier-cropped to the band limit against the full grid, f = 2:
  // the detectors read the same in-band spectrum (float round-off of other FFT sizes).
  const Structure s = srtio3(4, 2);
  const Grid g(s.cell.x, s.cell.y, 160, 160);
  const Fft2 fft(g);
  StemSettings st;
  st.potential.slice_thickness_A = 3.905 / 2;
  const Transmission t = transmission_functions(build_potential(s, g, st.potential), 200e3, fft);
  const std::vector<SMatrix> cropped = {build_smatrix(t, 20, 2, 2, {3.905, 7.81}, fft, true)};
  const std::vector<SMatrix> full = {build_smatrix(t, 20, 2, 2, {3.905, 7.81}, fft, false)};
  EXPECT_LT(cropped.front().stored.nx, g.nx);
  // 2/3 of the points per axis plus rounding to an FFT-friendly window: ≤ half the memory.
  EXPECT_LE(2 * cropped.front().bytes(), full.front().bytes());
  ProbeOptics o;
  const std::vector<Detector> d = {AnnularDetector{"haadf", 50, 100}, AnnularDetector{"bf", 0, 20}, ComDetector{"com"}};
  const auto pos = raster(1, 1, 4, 4, 4);
  const StemResult a = scan_prism(cropped, o, pos, d, st), b = scan_prism(full, o, pos, d, st);
  for (std::size_t k = 0; k < 2; ++k)
    for (const char* name : {"haadf", "bf"}) {
      const double e = max_rel(a.signal(name, k).values, b.signal(name, k).values);
      std::printf("cropped vs full S-matrix %s depth %zu: max rel diff %.2e\n", name, k, e);
      EXPECT_LT(e, 2e-6) << name;  // float round-off, as PRISM f = 1 vs multislice
    }
  EXPECT_LT(max_rel(a.signal("com").values, b.signal("com").values), 1e-4);
  // 4D patterns are indexed on the full window: a cropped S-matrix refuses them.
  EXPECT_THROW(scan_prism(cropped, o, pos, {PixelatedDetector{}}, st), std::invalid_argument);
}

TEST(AutoMethod, ModelPredictsFromCellSizeConvergenceAndThickness) {
  ProbeOptics o;  // 200 kV, 20 mrad: λ/α = 1.25 Å
  const double w0 = prism_window_needed_A(o, 0);
  EXPECT_NEAR(w0, kAutoTailFactor * wavelength_A(200e3) / 0.02, 1e-9);
  EXPECT_NEAR(prism_window_needed_A(o, 100) - w0, 2 * 0.02 * 100, 1e-9);  // cone spread 2αt
  ProbeOptics d = o;
  d.aberrations.set("defocus", 50);  // ray displacement at the aperture edge: 50 Å × 20 mrad
  EXPECT_NEAR(prism_window_needed_A(d, 0) - w0, 2 * 50 * 0.02, 0.05);
  const Grid g(64, 64, 640, 640);
  const std::size_t f = predict_interpolation(g, o, 40);
  EXPECT_GE(64.0 / double(f), prism_window_needed_A(o, 40));
  for (std::size_t larger = f + 1; larger <= 8; ++larger)  // the largest dividing factor that fits
    if (640 % larger == 0) EXPECT_LT(64.0 / double(larger), prism_window_needed_A(o, 40)) << larger;
  EXPECT_EQ(predict_interpolation(Grid(8, 8, 80, 80), o, 40), 1u);  // a small cell: multislice
  EXPECT_THROW(prism_window_needed_A(ProbeOptics{200e3, 0}, 10), std::invalid_argument);
}

namespace {
struct AutoCase {
  const char* name;
  Structure s;
  Grid g;
  double slice;
};
/// Runs Auto and plain multislice on the whole scan; checks the budget on all positions.
AutoChoice check_auto(const AutoCase& c, std::size_t side, ErrorBudget budget = {}) {
  ProbeOptics o;
  StemSettings st;
  st.budget = budget;
  // These 36–64-position scans are too small to pay for a calibration (auto_cost): these tests
  // are about the calibration itself, so they ask for it.
  st.budget.always_calibrate = true;
  st.potential.slice_thickness_A = c.slice;
  const auto pos = raster(0, 0, c.s.cell.x, c.s.cell.y, side);
  const std::vector<Detector> d = {AnnularDetector{"haadf", 50, 80}, AnnularDetector{"bf", 0, 10}};
  const StemResult ms = simulate_stem(c.s, c.g, o, pos, d, st);
  st.method = Method::Auto;
  AutoCalibrationCache cache;
  st.auto_cache = &cache;
  const StemResult au = simulate_stem(c.s, c.g, o, pos, d, st);
  EXPECT_TRUE(au.auto_choice.has_value());
  const AutoChoice ch = *au.auto_choice;
  EXPECT_EQ(au.interpolation, ch.interpolation);
  EXPECT_EQ(au.method, ch.method == Method::Prism ? "prism" : ch.method == Method::Windowed ? "windowed" : "multislice");
  for (const auto& t : ch.trials)
    std::printf("auto %s: trial f=%zu calibration mean error %.4f corr %.5f\n", c.name, t.interpolation, t.mean_error, t.correlation);
  if (ch.windowed_trial)
    std::printf("auto %s: windowed trial calibration mean error %.4f corr %.5f\n", c.name, ch.windowed_trial->mean_error,
                ch.windowed_trial->correlation);
  for (const char* name : {"haadf", "bf"}) {
    const double err = std::fabs(mean(au.signal(name).values) / mean(ms.signal(name).values) - 1);
    const double r = pearson(au.signal(name).values, ms.signal(name).values);
    std::printf("auto %s: %s f=%zu (predicted %zu, window %.1f Å; calibration error %.4f corr %.5f) %s: "
                "whole-scan mean error %.4f corr %.5f\n",
                c.name, au.method.c_str(), au.interpolation, ch.predicted_interpolation, ch.window_needed_A,
                ch.measured_mean_error, ch.measured_correlation, name, err, r);
    // The budget holds on the calibration positions. On the whole scan allow the
    // calibration subset's sampling error: 1.5 × the mean budget, correlation 0.005 lower
    // (8 of 64 positions).
    EXPECT_LT(err, 1.5 * budget.mean_rel) << c.name << " " << name;
    // A scan whose positions are all one lattice class (au001: one position per cell) gives a
    // reference that is exactly flat (multislice simulates one of them: translational_symmetry.hpp);
    // its correlation is undefined, as in auto's own measure (auto_method.cpp, flat to 1e-6),
    // and the mean criterion alone applies.
    const auto [lo, hi] = std::minmax_element(ms.signal(name).values.begin(), ms.signal(name).values.end());
    if (*hi - *lo > 1e-6 * std::fabs(mean(ms.signal(name).values)))
      EXPECT_GT(r, budget.min_correlation - 0.005) << c.name << " " << name;
  }
  if (!ch.calibrated) {  // no candidate besides multislice: nothing measured (NaN), nothing cached
    EXPECT_EQ(ch.method, Method::Multislice);
    EXPECT_TRUE(std::isnan(ch.measured_mean_error));
    return ch;
  }
  EXPECT_LE(ch.measured_mean_error, budget.mean_rel);
  EXPECT_GE(ch.measured_correlation, budget.min_correlation);
  // The cache: a second call takes the same choice without calibrating, same bytes.
  EXPECT_EQ(cache.entries.size(), 1u);
  const StemResult again = simulate_stem(c.s, c.g, o, pos, d, st);
  EXPECT_TRUE(again.auto_choice->from_cache);
  EXPECT_EQ(again.signal("haadf").values, au.signal("haadf").values);
  return ch;
}
}  // namespace

TEST(AutoMethod, HoldsTheBudgetOnSpecimensItWasNotTunedOn) {
  // Fields of ~31 Å (the model predicts f = 2 there) and a small cell (it predicts
  // multislice): Si [110], Cu [001], Au [001] and a small SrTiO3 film. With the default
  // 1 % budget the calibration must catch what the model misses: measured f = 2 errs 3–8 %
  // on these thin crystals (ADF 50–80 mrad), so auto falls back to multislice, and the
  // rejected trial must be on record.
  {
    const Structure s = si110(7.7);
    const AutoChoice c = check_auto({"si110", s, Grid(s.cell.x, s.cell.y, 320, 300), 1.9201485}, 8);
    EXPECT_EQ(c.predicted_interpolation, 2u);
    EXPECT_EQ(c.trials.size(), 1u);
  }
  {
    const Structure s = fcc001(29, 3.615, 9, 2);
    const AutoChoice c = check_auto({"cu001", s, Grid(s.cell.x, s.cell.y, 320, 320), 3.615 / 2}, 8);
    EXPECT_EQ(c.trials.size(), 1u);
  }
  {
    const Structure s = fcc001(79, 4.078, 8, 2);
    check_auto({"au001", s, Grid(s.cell.x, s.cell.y, 320, 320), 4.078 / 2}, 8);
  }
  {
    const Structure s = srtio3(3, 2);
    const AutoChoice c = check_auto({"srtio3_3x3x2", s, Grid(s.cell.x, s.cell.y, 120, 120), 3.905 / 2}, 6);
    EXPECT_EQ(c.method, Method::Multislice);  // 11.7 Å: no f > 1 leaves the probe its window
    EXPECT_TRUE(c.trials.empty());            // nothing worth calibrating
  }
}

TEST(AutoMethod, MeasuresWindowedMultisliceOnAFieldWiderThanTheProbeNeeds) {
  // Cu [001], 14 × 14 × 2 cells (50.6 Å wide, 7.2 Å thick): the probe needs a window of
  // ~17 Å + a tile, so windowed multislice (windowed.hpp) is a candidate once PRISM f = 2
  // fails the 1 % budget. Auto must measure it on the calibration positions and keep it only
  // if it holds the budget; either way check_auto checks the whole scan against multislice.
  // Neither Cu nor this field was used to choose the window margin (tuned on an LSFO-like
  // perovskite). Measured when written: the window errs 2.7 % here (ADF 50–80 mrad), so
  // auto falls back to multislice — the default margin does not hold 1 % on every specimen,
  // which is exactly what the calibration is for.
  const Structure s = fcc001(29, 3.615, 14, 2);
  const AutoChoice c = check_auto({"cu001_wide", s, Grid(s.cell.x, s.cell.y, 512, 512), 3.615 / 2}, 6);
  ASSERT_TRUE(c.windowed_trial.has_value());
  const bool holds = c.windowed_trial->mean_error <= ErrorBudget{}.mean_rel &&
                     c.windowed_trial->correlation >= ErrorBudget{}.min_correlation;
  EXPECT_EQ(c.method == Method::Windowed, holds);
  EXPECT_EQ(c.method == Method::Multislice, !holds);
}

TEST(AutoMethod, ChoosesPrismWhenTheBudgetAllowsAndHoldsItOnTheWholeScan) {
  // A 5 % budget on Si [110] (measured f = 2 error ≈ 3 % on the calibration positions):
  // PRISM f = 2 is chosen, and the whole scan is checked against multislice within it.
  const Structure s = si110(7.7);
  ErrorBudget b;
  b.mean_rel = 0.05;
  b.min_correlation = 0.99;
  const AutoChoice c = check_auto({"si110_5pc", s, Grid(s.cell.x, s.cell.y, 320, 300), 1.9201485}, 8, b);
  EXPECT_EQ(c.method, Method::Prism);
  EXPECT_EQ(c.interpolation, 2u);
}

TEST(AutoMethod, SameBytesOnOneAndTwoThreads) {
  // A loose budget so that the PRISM path (calibration, S-matrix, scan) is what runs.
  const Structure s = si110(3.85);
  const Grid g(s.cell.x, s.cell.y, 320, 300);
  ProbeOptics o;
  StemSettings st;
  st.potential.slice_thickness_A = 1.9201485;
  st.method = Method::Auto;
  st.budget.mean_rel = 0.2;
  st.budget.min_correlation = 0.9;
  st.budget.always_calibrate = true;  // 25 positions: the cost model alone would run multislice
  const auto pos = raster(0, 0, 6, 6, 5);
  const std::vector<Detector> d = {AnnularDetector{"haadf", 50, 80}, AnnularDetector{"bf", 0, 10}};
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const StemResult one = simulate_stem(s, g, o, pos, d, st);
  omp_set_num_threads(2);
  const StemResult two = simulate_stem(s, g, o, pos, d, st);
  omp_set_num_threads(threads);
  EXPECT_EQ(one.method, "prism");
  EXPECT_EQ(one.interpolation, two.interpolation);
  EXPECT_EQ(one.signal("haadf").values, two.signal("haadf").values);
  EXPECT_EQ(one.signal("bf").values, two.signal("bf").values);
  EXPECT_EQ(one.auto_choice->measured_mean_error, two.auto_choice->measured_mean_error);
}

TEST(AutoMethod, RefusesABudgetThatCannotBeMet) {
  const Structure s = srtio3(2, 1);
  StemSettings st;
  st.method = Method::Auto;
  st.budget.mean_rel = 0;
  EXPECT_THROW(simulate_stem(s, Grid(s.cell.x, s.cell.y, 64, 64), ProbeOptics{}, {{1, 1}}, {AnnularDetector{}}, st),
               std::invalid_argument);
}

TEST(PartitionedPrism, FactorOneOnTheWholeCellIsMultislice) {
  // f = 1: every tent is one fine beam, b_m = ψ₀(k_m) constant: plain PRISM, exact.
  const Structure s = srtio3(2, 2);
  const Grid g(s.cell.x, s.cell.y, 96, 96);
  ProbeOptics o;
  o.aberrations.set("defocus", 20);
  StemSettings st;
  st.potential.slice_thickness_A = 3.905 / 2;
  std::vector<Point2> pos;
  for (int i = 0; i < 5; ++i) pos.push_back({0.3 + 0.61 * i, 1.1 + 0.23 * i});
  const std::vector<Detector> d = {AnnularDetector{"haadf", 50, 100}, AnnularDetector{"bf", 0, 20}};
  const StemResult ms = simulate_stem(s, g, o, pos, d, st);
  st.method = Method::Prism;
  st.prism_partitioned = true;
  st.prism_window_A = 100;  // ≥ the cell: the whole cell
  const StemResult pr = simulate_stem(s, g, o, pos, d, st);
  for (const char* name : {"haadf", "bf"}) {
    const double e = max_rel(pr.signal(name).values, ms.signal(name).values);
    std::printf("partitioned PRISM f=1 vs multislice %s: max rel diff %.2e\n", name, e);
    EXPECT_LT(e, 2e-6) << name;  // float round-off, as plain PRISM f = 1
  }
}

TEST(PartitionedPrism, BrightFieldBeatsPlainPrismAtTheSameFactor) {
  const Structure s = srtio3(4, 4);
  const Grid g(s.cell.x, s.cell.y, 200, 200);  // 0.078 Å
  ProbeOptics o;
  StemSettings st;
  st.potential.slice_thickness_A = 3.905 / 2;
  const auto pos = raster(2 * 3.905, 2 * 3.905, 3.905, 3.905, 6);
  const std::vector<Detector> d = {AnnularDetector{"haadf", 60, 130}, AnnularDetector{"bf", 0, 10}};
  const StemResult ms = simulate_stem(s, g, o, pos, d, st);
  st.method = Method::Prism;
  for (std::size_t f : {2, 4}) {
    st.interpolation_x = st.interpolation_y = f;
    st.prism_partitioned = false;
    const StemResult plain = simulate_stem(s, g, o, pos, d, st);
    st.prism_partitioned = true;
    st.prism_window_A = 100;
    const StemResult part = simulate_stem(s, g, o, pos, d, st);
    double ep[2], eq[2];
    for (int k = 0; k < 2; ++k) {
      const char* name = k ? "bf" : "haadf";
      ep[k] = std::fabs(mean(plain.signal(name).values) / mean(ms.signal(name).values) - 1);
      eq[k] = std::fabs(mean(part.signal(name).values) / mean(ms.signal(name).values) - 1);
      std::printf("f=%zu %s: plain PRISM mean error %.4f corr %.5f; partitioned %.4f corr %.5f\n", f, name, ep[k],
                  pearson(plain.signal(name).values, ms.signal(name).values), eq[k],
                  pearson(part.signal(name).values, ms.signal(name).values));
      EXPECT_GT(pearson(part.signal(name).values, ms.signal(name).values), 0.999) << name;
    }
    // BF: the probe's periodic images gone, within 0.5 % (measured 0.04 % at f = 2,
    // 0.17 % at f = 4, where plain PRISM errs 1.1 % and 32 %).
    EXPECT_LT(eq[1], 0.005);
    EXPECT_LT(eq[1], ep[1] / 5);
    // HAADF is NOT improved: the tilt interpolation misses the lateral walk λzΔk of the
    // high-angle beams (docs/physics.md); measured 3.4 % (f = 2), 10 % (f = 4). Kept as a
    // recorded limitation: partitioned PRISM is for bright-field-like signals here.
    EXPECT_LT(eq[0], 0.2);
  }
}
TEST(PartitionedPrism, ExactThroughOneSliceUpToTheSubPixelShift) {
  // One slice: the exit wave of every tilted plane wave IS its parent's times the tilt
  // (a transmission is a product), so partitioned PRISM has no interpolation error left
  // but the bilinear sub-pixel shift of the envelopes: relative (π·(f/L)·dx)²/2 ≈ 4e-3 for
  // f = 4 here (L = 15.6 Å, stored dx ≈ 0.12 Å); measured 2e-3 – 2e-4.
  const Structure s = srtio3(4, 1);
  const Grid g(s.cell.x, s.cell.y, 200, 200);
  ProbeOptics o;
  StemSettings st;
  st.potential.slice_thickness_A = 3.905;
  const auto pos = raster(2 * 3.905, 2 * 3.905, 3.905, 3.905, 6);
  const std::vector<Detector> d = {AnnularDetector{"haadf", 60, 130}, AnnularDetector{"bf", 0, 10}};
  const StemResult ms = simulate_stem(s, g, o, pos, d, st);
  st.method = Method::Prism;
  st.prism_partitioned = true;
  st.prism_window_A = 100;
  for (std::size_t f : {2, 4}) {
    st.interpolation_x = st.interpolation_y = f;
    const StemResult part = simulate_stem(s, g, o, pos, d, st);
    for (const char* name : {"haadf", "bf"}) {
      const double e = max_rel(part.signal(name).values, ms.signal(name).values);
      std::printf("one slice, partitioned f=%zu %s: max rel diff %.2e\n", f, name, e);
      EXPECT_LT(e, 5e-3) << name;
    }
  }
}
