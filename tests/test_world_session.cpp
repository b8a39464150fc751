// A Microscope on a World (world.hpp, microscope.hpp): stage moves show other places, the
// overview never materialises the world, zooming is continuous in contrast across the
// switch-over between the models, and the default exposure shows a lattice while the dose
// map counts every electron.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include <omp.h>

#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_checks.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/session/microscope.hpp"
#include "stemtwin/specimen/world.hpp"

using namespace stemtwin;

namespace {

ScanSettings frame(double fov_A, std::size_t n) {
  ScanSettings s;
  s.fov_x_A = s.fov_y_A = fov_A;
  s.nx = s.ny = n;
  return s;
}
/// Mean of rows [y0, y1) over the columns [0, x1).
double mean_rows(const Image& im, std::size_t y0, std::size_t y1, std::size_t x1) {
  double s = 0;
  for (std::size_t y = y0; y < y1; ++y)
    for (std::size_t x = 0; x < x1; ++x) s += im(y, x);
  return s / double((y1 - y0) * x1);
}

}  // namespace

TEST(WorldSession, OverviewShowsTheRegionsAndStageMovesShowOtherPlaces) {
  WorldParams wp;
  wp.max_atoms = 200000;  // any attempt to materialise a large window would throw
  Microscope m(World(wp, 1));
  const std::vector<Detector> haadf{AnnularDetector{"HAADF", 70, 160}};
  // 1 µm around the centre: the edge (vacuum below it), substrate, film, cap.
  const ScanResult r = m.scan(frame(1e4, 100), haadf);
  ASSERT_TRUE(r.incoherent);
  EXPECT_EQ(m.status().cached_windows, 0u) << "an overview simulates no window";
  const Image& im = r.clean.at("HAADF");
  // Pixel (ix, iy) at 5000 + (i + 0.5)·100 Å; the lamella is left of x = 13000 (ix < 80).
  // Rows: vacuum below the edge (~6000), substrate 7000–10400, the film 10400–10800
  // (La/Fe-rich: brighter than SrTiO3), the carbon cap above (darker: Σ n·Z^1.9 per volume is
  // ~8× lower than SrTiO3's).
  const double vac = mean_rows(im, 0, 8, 80), sub = mean_rows(im, 25, 50, 80), cap = mean_rows(im, 62, 78, 80);
  const double film = mean_rows(im, 54, 58, 80);
  EXPECT_EQ(vac, 0.0);
  EXPECT_GT(sub, 4 * cap) << "SrTiO3 against carbon";
  EXPECT_GT(film, 1.05 * sub) << "La/Fe film against SrTiO3";
  // A stage move of 1 µm to the right: the carbon support with Au particles, not the lamella.
  m.move_stage_relative(1e4, 0);
  const Image im2 = m.scan(frame(1e4, 100), haadf).clean.at("HAADF");
  double s = 0, mx = 0;
  for (std::size_t i = 0; i < im2.size(); ++i) s += std::abs(im2.data[i] - im.data[i]), mx = std::max(mx, im2.data[i]);
  EXPECT_GT(s / double(im.size()), 0.2 * sub) << "another place, another image";
  std::vector<double> lit;  // non-vacuum pixels: mostly bare carbon (the median); Au particles far brighter
  for (double v : im2.data)
    if (v > 0) lit.push_back(v);
  ASSERT_GT(lit.size(), im2.size() / 4);
  std::nth_element(lit.begin(), lit.begin() + long(lit.size() / 2), lit.end());
  EXPECT_GT(mx, 5 * lit[lit.size() / 2]) << "Au particles on the carbon support";
}

TEST(WorldSession, AtomModelAndProjectedCompositionAgreeInTheMean) {
  // The same frame of 25 cells (97.6 Å, so the pixels sample whole periods of the lattice)
  // with the atoms' map (world_atoms_fov_A = 128) and with the projected composition (0):
  // both weight the same cross-sections, so the means differ only by the realisation of
  // dopants/vacancies against their expectation (~16 000 A sites: 0.1 % of the signal) and
  // the window's edges: 2 % bounds both (measured 0.03 %). Over 100 Å, not whole periods,
  // the atoms' mean is ~1 % high: the lattice sampled by 1.56 Å pixels, a real moiré.
  MicroscopeSettings a, b;
  b.world_atoms_fov_A = 0;
  Microscope ma(World({}, 2), a), mb(World({}, 2), b);
  const std::vector<Detector> dets{AnnularDetector{"HAADF", 70, 160}, AnnularDetector{"ADF", 30, 70}};
  for (Microscope* m : {&ma, &mb}) m->move_stage({8000, 8000, 0, 0, 0});
  const double fov = 25 * WorldParams{}.substrate_a_A;
  const ScanResult ra = ma.scan(frame(fov, 64), dets), rb = mb.scan(frame(fov, 64), dets);
  for (const char* d : {"HAADF", "ADF"}) {
    const double A = ra.clean.at(d).mean(), B = rb.clean.at(d).mean();
    EXPECT_NEAR(A / B, 1.0, 0.02) << d << ": atoms " << A << ", composition " << B;
    std::printf("%s: atoms' map / projected composition = %.4f\n", d, A / B);
  }
}

TEST(WorldSession, ZoomIsContinuousAcrossTheSwitchToFullPhysics) {
  // A thin world (20 Å) on a coarse grid so the full-physics frame is quick. One substrate
  // unit cell (3.905 Å) at 14 pixels (0.279 Å: multislice) and then at 12 (0.325 Å:
  // incoherent, calibrated by the first). The two frames sample the same periodic cell, so
  // their means differ only by the aliasing of the image's harmonics of order ≥ 12 (columns
  // ~1 Å wide: < 1 %): 3 % bounds it.
  WorldParams wp;
  wp.thickness_A = 20, wp.support_thickness_A = 8, wp.particle_radius_min_A = 3, wp.particle_radius_max_A = 6, wp.particle_tile_A = 40;
  MicroscopeSettings st;
  st.sampling_A = 0.1;
  st.min_window_A = 20;
  Microscope m(World(wp, 4), st);
  const double a = wp.substrate_a_A;
  m.move_stage({8000, 8000, 0, 0, 0});
  const std::vector<Detector> haadf{AnnularDetector{"HAADF", 70, 160}};
  const ScanResult full = m.scan(frame(a, 14), haadf);
  ASSERT_FALSE(full.incoherent);
  const ScanResult inc = m.scan(frame(a, 12), haadf);
  ASSERT_TRUE(inc.incoherent);
  const double F = full.clean.at("HAADF").mean(), I = inc.clean.at("HAADF").mean();
  EXPECT_NEAR(I / F, 1.0, 0.03) << "multislice " << F << ", incoherent " << I;
  std::printf("switch-over: incoherent / multislice mean HAADF = %.4f\n", I / F);
  // And the overview at 1 µm keeps the calibration's scale (reported in the warnings).
  const ScanResult over = m.scan(frame(1e4, 64), haadf);
  bool scaled = false;
  for (const std::string& w : over.warnings) scaled = scaled || w.find("scaled by") != std::string::npos;
  EXPECT_TRUE(scaled);
}

TEST(WorldSession, DefaultExposureShowsTheLatticeAndTheDoseMapCountsEveryElectron) {
  // Session defaults (20 pA, 2 µs: ~250 e⁻ per pixel) on the default world (100 Å SrTiO3):
  // a 64 × 64 frame of 0.35 Å pixels (22 Å, the atoms' incoherent map) read out with shot
  // noise. The lattice is visible when the noisy image follows the clean one: correlation
  // > 0.7; and the counts are no longer a fraction of an electron per pixel (the 7.8 Å crystal
  // gave ~0.2): more than 1.
  Microscope m(World({}, 0));
  m.move_stage({8000, 8000, 0, 0, 0});
  const ScanResult r = m.scan(frame(22.4, 64), {AnnularDetector{"HAADF", 70, 160}});
  ASSERT_TRUE(r.incoherent);
  const Image &noisy = r.images.at("HAADF"), &clean = r.clean.at("HAADF");
  const double mn = noisy.mean(), mc = clean.mean();
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < noisy.size(); ++i) {
    const double a = noisy.data[i] - mn, b = clean.data[i] - mc;
    sxy += a * b, sxx += a * a, syy += b * b;
  }
  const double corr = sxy / std::sqrt(sxx * syy);
  EXPECT_GT(corr, 0.7) << "mean counts " << mn;
  EXPECT_GT(mn, 1.0) << "counts per pixel";
  std::printf("default exposure: %.2f counts per pixel, noisy/clean correlation %.3f\n", mn, corr);
  // Dose: every electron of the frame is in the map (the frame lies inside the world).
  const DoseMap d = m.dose_map(1.0);
  double sum = 0;
  for (double v : d.dose_e_per_A2.data) sum += v * d.pixel_A * d.pixel_A;
  const double expected = r.electrons_per_position * 64 * 64;
  EXPECT_NEAR(d.total_electrons, expected, 1e-9 * expected);
  EXPECT_NEAR(sum, expected, 1e-9 * expected);
  EXPECT_GE(d.pixel_A, 20000.0 / 1024) << "the world's dose map is bounded";
}

TEST(WorldSession, BeamDamageNeedsAnExplicitSpecimen) {
  MicroscopeSettings st;
  st.damage.enabled = true;
  EXPECT_THROW(Microscope(World({}, 0), st), std::invalid_argument);
}

TEST(WorldSession, ScenarioBuilderDescribesTheWorld) {
  // scenarios/world.yaml: the serve path (world_params from the builder's keys) and the
  // dataset path (the atoms of one window, shifted to the origin).
  const ScenarioSpec spec = parse_scenario_file(std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/world.yaml");
  check_physics_keys(spec);
  const SampledScenario s = sample_parameters(spec, 0);
  ASSERT_EQ(s.builder_type, "world");
  const WorldParams p = world_params(*s.builder);
  EXPECT_EQ(p.thickness_A, 150);
  EXPECT_EQ(p.film_A, 500);
  EXPECT_EQ(p.particle_probability, 0.8);
  EXPECT_EQ(p.width_A, WorldParams{}.width_A) << "keys not given keep their defaults";
  const Specimen sp = build_specimen(s);  // a window in the substrate or the film (x, y drawn)
  ASSERT_GT(sp.structure.atoms.size(), 1000u);
  EXPECT_EQ(sp.structure.cell.x, 40);
  EXPECT_EQ(sp.structure.cell.z, 150);
  for (const Atom& a : sp.structure.atoms) ASSERT_TRUE(a.x >= 0 && a.x < 40 && a.y >= 0 && a.y < 40);
  // A key that is not the world's is refused, naming it.
  ScenarioSpec bad = parse_scenario_text(
      "name: w\nseed: 1\nspecimen:\n  builder: {type: world, thicknes: 100}\nmicroscope: {energy: 200e3, convergence: 20}\n"
      "scan: {start: [0, 0], end: [1, 1], step: 0.5}\ndetectors:\n  - {name: HAADF, type: annular, inner: 70, outer: 160}\n",
      "bad.yaml");
  try {
    check_physics_keys(bad);
    FAIL() << "a misspelt world key was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("thicknes"), std::string::npos) << e.what();
  }
}

TEST(WorldSession, OverviewIsTheSameOnAnyThreadCount) {
  const std::vector<Detector> haadf{AnnularDetector{"HAADF", 70, 160}};
  std::vector<std::vector<double>> images;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    Microscope m(World({}, 9));
    images.push_back(m.scan(frame(1e4, 64), haadf).images.at("HAADF").data);
  }
  omp_set_num_threads(omp_get_num_procs());
  EXPECT_EQ(images[0], images[1]);
}

// Every path that simulates a world's window reads the world's atoms (Impl::window_atoms_of):
// windowed multislice on a world agrees with plain multislice within windowed's own error
// (docs/physics.md: ≤ 1 % of the means on its tests; 2 % here for one 8 × 8 frame on a grain
// of the film, whose few positions make the mean noisier than a whole field's), and the
// film's ADF signal is far from zero.
TEST(WorldSession, WindowedAndMultisliceSeeTheSameWorldAtoms) {
  WorldParams wp;
  wp.thickness_A = 40, wp.support_thickness_A = 12, wp.particle_radius_max_A = 12;
  std::map<std::string, double> mean;
  for (const Method method : {Method::Windowed, Method::Multislice}) {
    MicroscopeSettings st;
    st.method = method;
    st.sampling_A = 0.1;  // band limit 84 mrad: an ADF of 40–80 mrad is inside it
    Microscope m(World(wp, 3), st);
    m.move_stage({7223, 10734, 0, 0, 0});  // the film (interface 10400, 400 Å thick)
    const ScanResult r = m.scan(frame(2.0, 8), {AnnularDetector{"ADF", 40, 80}, AnnularDetector{"BF", 0, 10}});
    ASSERT_FALSE(r.incoherent);
    for (const char* d : {"ADF", "BF"}) mean[std::string(d) + (method == Method::Windowed ? "_w" : "_m")] = r.clean.at(d).mean();
  }
  EXPECT_GT(mean["ADF_m"], 1e-3) << "the film scatters into the ADF";
  EXPECT_NEAR(mean["ADF_w"], mean["ADF_m"], 0.02 * mean["ADF_m"]);
  EXPECT_NEAR(mean["BF_w"], mean["BF_m"], 0.02 * mean["BF_m"]);
}

TEST(WorldSession, WindowedFrameInTileOrderIsPutBackInScanOrder) {
  // The session simulates a windowed frame tile by tile (blocks of whole tiles, each tile's
  // potential built once) and puts the signals back in scan order; the window's own
  // transmission functions are not built for it. Pixel by pixel the image must match
  // multislice's (a position mixed up would break the correlation, not the mean). Budget as
  // the windowed engine's (tests/test_windowed.cpp): correlation ≥ 0.995, means within 2 %
  // as in the test above.
  WorldParams wp;
  wp.thickness_A = 40, wp.support_thickness_A = 12, wp.particle_radius_max_A = 12;
  std::map<Method, Image> adf;
  for (const Method method : {Method::Windowed, Method::Multislice}) {
    MicroscopeSettings st;
    st.method = method;
    st.sampling_A = 0.1;
    Microscope m(World(wp, 3), st);
    m.move_stage({7223, 10734, 0, 0, 0});
    const ScanResult r = m.scan(frame(3.0, 12), {AnnularDetector{"ADF", 40, 80}});
    ASSERT_FALSE(r.incoherent);
    adf[method] = r.clean.at("ADF");
  }
  const Image& a = adf[Method::Multislice];
  const Image& b = adf[Method::Windowed];
  const double ma = a.mean(), mb = b.mean();
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a.data[i] - ma) * (b.data[i] - mb);
    saa += (a.data[i] - ma) * (a.data[i] - ma);
    sbb += (b.data[i] - mb) * (b.data[i] - mb);
  }
  const double r = sab / std::sqrt(saa * sbb);
  std::printf("windowed vs multislice session frame: mean %.6f vs %.6f, correlation %.5f\n", mb, ma, r);
  EXPECT_NEAR(mb, ma, 0.02 * ma);
  EXPECT_GT(r, 0.995);
}
