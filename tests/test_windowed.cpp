// Windowed multislice (windowed.hpp) against plain multislice on the full cell.
//
// The error budget is the one the issue states for every speed path (and that method `auto`
// promises): detector means within 1 % and image correlation ≥ 0.995 against multislice.
// 1 % is below the frozen-phonon sampling noise of a typical 10-configuration image (~1–2 %)
// and the spread between established simulators on the same case (tests/data/reference);
// 0.995 keeps atomic-column contrast visually and quantitatively identical.
// The default margin was chosen on an LSFO-like random perovskite (bench/bench_windowed.cpp);
// these cases were not used to tune it: SrTiO3 [001] with the crossover inside the specimen,
// and Si [110] (the reference structure, 2×2 cells laterally).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "auto_fixtures.hpp"
#include "reference_case.hpp"
#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/windowed.hpp"

using namespace stemtwin;

namespace {

// 200 kV; at 0.08 Å the band limit is 104 mrad, so ADF stops at 100 mrad.
const std::vector<Detector> kDetectors = {AnnularDetector{"bf", 0, 10}, AnnularDetector{"abf", 10, 20},
                                          AnnularDetector{"adf", 40, 100}};

using test::mean;
using test::pearson;

/// Runs both methods and checks every detector against the budget; returns the windowed result.
StemResult expect_within_budget(const Structure& s, const Grid& g, const ProbeOptics& o, const std::vector<Point2>& pos,
                                StemSettings st) {
  st.planning = FftPlanning::Estimate;
  st.method = Method::Multislice;
  const StemResult full = simulate_stem(s, g, o, pos, kDetectors, st);
  st.method = Method::Windowed;
  const StemResult win = simulate_stem(s, g, o, pos, kDetectors, st);
  EXPECT_LT(win.window_nx, g.nx);  // a real window, not the whole cell
  EXPECT_LT(win.window_ny, g.ny);
  for (const char* d : {"bf", "abf", "adf"}) {
    const auto& a = full.signal(d).values;
    const auto& b = win.signal(d).values;
    const double rel = std::fabs(mean(b) - mean(a)) / mean(a), r = pearson(a, b);
    std::printf("windowed vs full %s: mean %.6f vs %.6f (%.3f %%), correlation %.5f, window %zux%zu of %zux%zu\n", d, mean(b),
                mean(a), 100 * rel, r, win.window_nx, win.window_ny, g.nx, g.ny);
    EXPECT_LT(rel, 0.01) << d;
    EXPECT_GT(r, 0.995) << d;
  }
  return win;
}

std::vector<Point2> cell_raster(double x0, double y0, double ax, double ay, std::size_t n) {
  return ScanGrid::from_fov({x0, y0}, ax, ay, n, n).positions();
}

Structure srtio3(int n, int nz) {
  PerovskiteParams p;  // SrTiO3, a = 3.905 Å
  p.repeats = {n, n, nz};
  return build_perovskite(p, 0).structure;
}

}  // namespace

TEST(Windowed, SpreadRadiusIsTheConesWidestSection) {
  // A pure defocus Δf: rays at angle α cross depth z at (z − Δf)·α, so the widest section
  // over [0, t] is α·max(|Δf|, |t − Δf|).
  ProbeOptics o;
  o.semiangle_mrad = 25;
  for (double df : {0.0, 30.0, -40.0, 120.0}) {
    o.aberrations.set("defocus", df);
    EXPECT_NEAR(probe_spread_radius_A(o, 100.0), 0.025 * std::max(std::fabs(df), std::fabs(100.0 - df)), 1e-6) << df;
  }
  // Cs adds its ray displacement Cs·α³ (1 mm at 25 mrad: 15.6 Å) at the entrance surface.
  o.aberrations.set("defocus", 0);
  o.aberrations.set("Cs", 1e7);
  EXPECT_NEAR(probe_spread_radius_A(o, 0.0), 1e7 * std::pow(0.025, 3), 1e-3);
}

TEST(Windowed, WindowIsCappedAtTheCellAndThenIsMultisliceExactly) {
  // A cell smaller than the window: the plan takes the whole cell and the result is the
  // multislice result to the byte.
  const Structure s = srtio3(2, 3);
  const Grid g(s.cell.x, s.cell.y, 98, 98);
  ProbeOptics o;
  StemSettings st;
  st.planning = FftPlanning::Estimate;
  st.potential.slice_thickness_A = 1.9525;
  const auto pos = cell_raster(0, 0, 3.905, 3.905, 3);
  const StemResult full = simulate_stem(s, g, o, pos, kDetectors, st);
  st.method = Method::Windowed;
  const StemResult win = simulate_stem(s, g, o, pos, kDetectors, st);
  EXPECT_EQ(win.window_nx, g.nx);
  for (const char* d : {"bf", "adf"})
    EXPECT_EQ(0, std::memcmp(full.signal(d).values.data(), win.signal(d).values.data(), pos.size() * sizeof(double))) << d;
}

TEST(Windowed, SrTiO3WithCrossoverInsideMatchesMultislice) {
  // SrTiO3 [001] 8×8×12 cells (31 × 31 × 47 Å), 0.08 Å, focused 20 Å below the entrance
  // surface; the scan covers one unit cell at the cell's corner, so windows wrap across the
  // periodic boundary.
  const Structure s = srtio3(8, 12);
  const Grid g(s.cell.x, s.cell.y, 392, 392);
  ProbeOptics o;
  o.aberrations.set("defocus", 20.0);
  StemSettings st;
  st.potential.slice_thickness_A = 1.9525;
  const StemResult w = expect_within_budget(s, g, o, cell_raster(-0.5, -0.5, 3.905, 3.905, 5), st);
  // The window keeps R = r_geom + margin around every position: r_geom = 20 mrad × max(20, 27) Å.
  const double lambda = wavelength_A(o.energy_eV);
  EXPECT_NEAR(w.window_radius_A, 0.02 * (46.86 - 20.0) + kDefaultWindowMargin_A + kDefaultWindowMarginLambdas * lambda / 0.02, 1e-3);
  EXPECT_GE(std::min(w.window_x_A, w.window_y_A), 2 * w.window_radius_A + w.window_tile_A);
}

TEST(Windowed, Si110MatchesMultislice) {
  // The Si [110] reference structure (tests/data/reference), 2×2 cells laterally
  // (32.6 × 30.7 Å), its first 26 slices (50 Å), 0.08 Å, in focus at the entrance surface.
  const Structure one = test::read_reference_xyz();
  const double dz = 1.9201484643120699, lz = 26 * dz;
  Structure s;
  s.cell = {2 * one.cell.x, 2 * one.cell.y, lz};
  for (const Atom& a : one.atoms)
    if (a.z < lz)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) s.atoms.push_back({a.Z, a.x + i * one.cell.x, a.y + j * one.cell.y, a.z, 1.0, 0.0});
  const Grid g(s.cell.x, s.cell.y, 408, 384);
  ProbeOptics o;
  StemSettings st;
  st.potential.slice_thickness_A = dz;
  expect_within_budget(s, g, o, cell_raster(10.0, 10.0, 5.431, 3.8403, 5), st);
}

TEST(Windowed, TooSmallAMarginIsCaught) {
  // The budget check is sensitive: with no margin (the window just holds the geometric cone)
  // the probe's tails wrap around the window and BF moves by more than the budget.
  const Structure s = srtio3(8, 12);
  const Grid g(s.cell.x, s.cell.y, 392, 392);
  ProbeOptics o;
  StemSettings st;
  st.planning = FftPlanning::Estimate;
  st.potential.slice_thickness_A = 1.9525;
  const auto pos = cell_raster(0, 0, 3.905, 3.905, 4);
  const StemResult full = simulate_stem(s, g, o, pos, kDetectors, st);
  st.method = Method::Windowed;
  st.window.margin_A = 0;
  st.window.tile_A = 0.5;
  const StemResult win = simulate_stem(s, g, o, pos, kDetectors, st);
  double worst = 0;
  for (const char* d : {"bf", "abf", "adf"})
    worst = std::max(worst, std::fabs(mean(win.signal(d).values) / mean(full.signal(d).values) - 1));
  std::printf("margin 0: worst mean error %.3f %%\n", 100 * worst);
  EXPECT_GT(worst, 0.01);
}

TEST(Windowed, SameBytesOnAnyThreadCount) {
  const Structure s = srtio3(6, 4);
  const Grid g(s.cell.x, s.cell.y, 294, 294);
  ProbeOptics o;
  o.focal_spread_A = 20;
  o.focal_spread_points = 3;
  StemSettings st;
  st.planning = FftPlanning::Estimate;
  st.method = Method::Windowed;
  st.window.margin_A = 2.0;  // a small window inside this 23 Å cell (accuracy is not the point here)
  st.potential.slice_thickness_A = 1.9525;
  Structure hot = s;
  for (Atom& a : hot.atoms) a.rms = 0.08;
  st.phonon_configurations = 2;
  st.seed = 7;
  const auto pos = cell_raster(0, 0, 6.0, 6.0, 5);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const StemResult a = simulate_stem(hot, g, o, pos, kDetectors, st);
  omp_set_num_threads(2);
  const StemResult b = simulate_stem(hot, g, o, pos, kDetectors, st);
  omp_set_num_threads(saved);
  EXPECT_LT(a.window_nx, g.nx);
  ASSERT_EQ(a.signals.size(), b.signals.size());
  for (std::size_t k = 0; k < a.signals.size(); ++k)
    EXPECT_EQ(0, std::memcmp(a.signals[k].values.data(), b.signals[k].values.data(), a.signals[k].values.size() * sizeof(double)));
}

TEST(Windowed, RefusesPixelatedDetectorsNamingThem) {
  const Structure s = srtio3(2, 1);
  StemSettings st;
  st.method = Method::Windowed;
  try {
    simulate_stem(s, Grid(s.cell.x, s.cell.y, 64, 64), ProbeOptics{}, {{1, 1}}, {PixelatedDetector{"cam"}}, st);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'cam'"), std::string::npos) << e.what();
  }
  st.window.tile_A = -1;
  EXPECT_THROW(simulate_stem(s, Grid(s.cell.x, s.cell.y, 64, 64), ProbeOptics{}, {{1, 1}}, kDetectors, st), std::invalid_argument);
}
