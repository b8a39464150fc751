// Method auto as the default (issue 14).
//  - The cost rule: auto runs multislice without calibrating where a calibration cannot pay
//    for itself (auto_cost), with the same bytes as plain multislice, and calibrates where it can.
//  - The error budget auto promises holds against full multislice on the probe positions it
//    did NOT calibrate on, on specimens of different kinds: SrTiO3 [001], Si [110], a Cu/Au
//    alloy and an amorphous film.
//  - What auto chose is recorded: dataset /params columns and root attributes, session status.
//  - The scenario key `simulation.error_budget` and its checks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "auto_fixtures.hpp"
#include "reference_case.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/session/microscope.hpp"
#include "stemtwin/specimen/builders.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {
using test::mean;
using test::pearson;
using test::si110;
using test::srtio3;
/// Fcc [001], n × n × m cubic cells; each site Au with probability `au` (seeded), else Cu.
Structure cuau001(double a, int n, int m, double au, unsigned seed) {
  Structure s;
  s.cell = {a * n, a * n, a * m};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  const double basis[4][3] = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};
  for (int k = 0; k < m; ++k)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i)
        for (const auto& b : basis) s.atoms.push_back(Atom{u(rng) < au ? 79 : 29, a * (i + b[0]), a * (j + b[1]), a * (k + b[2] + 0.25)});
  return s;
}
/// Amorphous silicon: random positions at a-Si's density (0.05 atoms/Å³) with no two atoms
/// closer than 2.0 Å (seeded rejection sampling).
Structure amorphous_si(double lx, double ly, double lz, unsigned seed) {
  Structure s;
  s.cell = {lx, ly, lz};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> ux(0, lx), uy(0, ly), uz(0, lz);
  const std::size_t n = std::size_t(0.05 * lx * ly * lz);
  for (std::size_t tries = 0; s.atoms.size() < n && tries < 200 * n; ++tries) {
    const Atom a{14, ux(rng), uy(rng), uz(rng)};
    bool ok = true;
    for (const Atom& b : s.atoms) {
      double dx = std::fabs(a.x - b.x), dy = std::fabs(a.y - b.y);
      dx = std::min(dx, lx - dx), dy = std::min(dy, ly - dy);
      if (dx * dx + dy * dy + (a.z - b.z) * (a.z - b.z) < 4.0) {
        ok = false;
        break;
      }
    }
    if (ok) s.atoms.push_back(a);
  }
  return s;
}
std::vector<Point2> raster(double w, double h, std::size_t n) { return ScanGrid::from_fov({0, 0}, w, h, n, n).positions(); }
}  // namespace

TEST(AutoDefault, CostModelSkipsTheCalibrationOfATinyScan) {
  // Si [110], 32.6 × 30.7 Å: the model predicts PRISM f = 2 (a 16 Å window), whose S-matrix
  // holds B ≈ 480 beams. 64 positions by multislice cost 64 propagations; auto could not cost
  // less than 8 (reference) + B: multislice without calibrating. 4096 positions: calibrate.
  const Structure s = si110(3.85);
  const Grid g(s.cell.x, s.cell.y, 320, 300);
  ProbeOptics o;
  StemSettings st;
  st.potential.slice_thickness_A = 1.9201485;
  ASSERT_EQ(predict_interpolation(g, o, s.cell.z), 2u);
  const double beams = double(prism_beams(g, o.energy_eV, o.semiangle_mrad, 2, 2).size());
  const AutoCost small = auto_cost(g, o, 64, 2, 0, st);
  EXPECT_DOUBLE_EQ(small.multislice, 64);
  EXPECT_DOUBLE_EQ(small.reference, 8);
  EXPECT_DOUBLE_EQ(small.prism, beams);
  EXPECT_DOUBLE_EQ(small.least, 8 + beams);
  EXPECT_TRUE(small.multislice_cheap);
  const AutoCost large = auto_cost(g, o, 4096, 2, 0, st);
  EXPECT_FALSE(large.multislice_cheap);  // 8 + B ≈ 490 < 0.5 × 4096
  // The threshold is kAutoWorthwhile × the multislice cost: just below and just above it.
  const auto at = [&](double positions) { return auto_cost(g, o, std::size_t(positions), 2, 0, st).multislice_cheap; };
  const double threshold = std::ceil((8 + beams) / kAutoWorthwhile);  // least ≤ ½ P from here on
  EXPECT_TRUE(at(threshold - 1));
  EXPECT_FALSE(at(threshold));
  // Focal spread multiplies the multislice work (one propagation per node), not the S-matrix's.
  ProbeOptics spread = o;
  spread.focal_spread_A = 30;
  spread.focal_spread_points = 7;
  EXPECT_DOUBLE_EQ(auto_cost(g, spread, 64, 2, 0, st).multislice, 64 * 7);
  // No candidate (f = 1, no window): nothing to calibrate for.
  EXPECT_TRUE(auto_cost(g, o, 1u << 20, 1, 0, st).multislice_cheap);

  // Through simulate_stem: the tiny scan runs multislice, uncalibrated, to the byte.
  const auto pos = raster(6, 6, 8);
  const std::vector<Detector> d = {AnnularDetector{"adf", 50, 80}, AnnularDetector{"bf", 0, 10}};
  const StemResult ms = simulate_stem(s, g, o, pos, d, st);
  st.method = Method::Auto;
  const StemResult au = simulate_stem(s, g, o, pos, d, st);
  ASSERT_TRUE(au.auto_choice.has_value());
  EXPECT_EQ(au.method, "multislice");
  EXPECT_FALSE(au.auto_choice->calibrated);
  EXPECT_TRUE(au.auto_choice->trials.empty());
  EXPECT_TRUE(std::isnan(au.auto_choice->measured_mean_error));
  EXPECT_EQ(au.auto_choice->predicted_interpolation, 2u);
  EXPECT_EQ(au.signal("adf").values, ms.signal("adf").values);
  EXPECT_EQ(au.signal("bf").values, ms.signal("bf").values);
  // ErrorBudget::always_calibrate overrides the cost rule (studies of the calibration).
  st.budget.always_calibrate = true;
  const StemResult forced = simulate_stem(s, g, o, pos, d, st);
  EXPECT_TRUE(forced.auto_choice->calibrated);
  EXPECT_EQ(forced.auto_choice->trials.size(), 1u);
}

TEST(AutoDefault, BudgetHoldsOnPositionsItDidNotCalibrateOn) {
  // Four kinds of specimen (none used to set the model's K = 12, which came from SrTiO3
  // 8×8×10 at HAADF 70–200 mrad): SrTiO3 [001] 8×8×2 cells, Si [110], a random Cu/Au alloy
  // and amorphous Si, all 31–34 Å wide (the model's f = 2) and ~8 Å thick, ADF 50–80 mrad and BF at 0.1 Å sampling.
  // For each budget — the default (1 %, 0.995; Si [110] only, to keep the test short) and a
  // looser 5 % / 0.99 — auto calibrates on 8
  // of 81 positions (forced: the scan is small) and its result is compared with full
  // multislice on the 73 others only. The mean may move with the subset's sampling: held
  // within 1.5 × the budget (as AutoMethod.* does); correlation within 0.005 of it.
  struct Case {
    const char* name;
    Structure s;
    std::size_t nx, ny;
    double slice;
  };
  std::vector<Case> cases;
  cases.push_back({"srtio3_8x8x2", srtio3(8, 2), 320, 320, 3.905 / 2});
  {
    Structure s = si110(7.7);
    cases.push_back({"si110", s, 320, 300, 1.9201485});
  }
  cases.push_back({"cuau_9x9x2", cuau001(3.75, 9, 2, 0.5, 7), 360, 360, 3.75 / 2});
  cases.push_back({"amorphous_si", amorphous_si(32, 32, 8, 11), 320, 320, 2.0});
  std::size_t accepted = 0;
  for (const Case& c : cases) {
    const Grid g(c.s.cell.x, c.s.cell.y, c.nx, c.ny);
    ProbeOptics o;
    StemSettings st;
    st.potential.slice_thickness_A = c.slice;
    // 9 × 9 positions over the field: steps of 3.5–3.8 Å, commensurate with none of the
    // lattices (an 8 × 8 raster over 8 SrTiO3 cells would put every position on the same site
    // and leave nothing for a correlation to measure).
    const auto pos = raster(c.s.cell.x, c.s.cell.y, 9);
    const std::vector<Detector> d = {AnnularDetector{"adf", 50, 80}, AnnularDetector{"bf", 0, 10}};
    ASSERT_EQ(predict_interpolation(g, o, c.s.cell.z), 2u) << c.name;
    const StemResult ms = simulate_stem(c.s, g, o, pos, d, st);
    // The default budget on one specimen (on these thin crystals f = 2 errs 1.4–3 % in BF, so
    // it falls back to multislice: measured when written), 5 % on all (PRISM f = 2 accepted).
    const std::vector<double> budgets = std::string(c.name) == "si110" ? std::vector<double>{0.01, 0.05} : std::vector<double>{0.05};
    for (const double budget : budgets) {
      StemSettings a = st;
      a.method = Method::Auto;
      a.budget.mean_rel = budget;
      a.budget.min_correlation = budget == 0.01 ? 0.995 : 0.99;
      a.budget.always_calibrate = true;
      const StemResult au = simulate_stem(c.s, g, o, pos, d, a);
      const AutoChoice& ch = *au.auto_choice;
      std::vector<bool> calibrated(pos.size(), false);
      for (std::size_t i : calibration_subset(pos.size(), a.budget.calibration_positions)) calibrated[i] = true;
      for (const char* name : {"adf", "bf"}) {
        std::vector<double> x, y;
        for (std::size_t i = 0; i < pos.size(); ++i)
          if (!calibrated[i]) x.push_back(au.signal(name).values[i]), y.push_back(ms.signal(name).values[i]);
        ASSERT_EQ(x.size(), 73u);
        const double err = std::fabs(mean(x) / mean(y) - 1), r = pearson(x, y);
        std::printf("AUTO_BUDGET %s budget=%.2f %s f=%zu predicted=%zu window_needed_A=%.1f calibration_error=%.4f "
                    "calibration_corr=%.5f %s held_out_error=%.4f held_out_corr=%.5f\n",
                    c.name, budget, au.method.c_str(), au.interpolation, ch.predicted_interpolation, ch.window_needed_A,
                    ch.measured_mean_error, ch.measured_correlation, name, err, r);
        EXPECT_LT(err, 1.5 * budget) << c.name << " " << name << " budget " << budget;
        EXPECT_GT(r, a.budget.min_correlation - 0.005) << c.name << " " << name << " budget " << budget;
      }
      if (au.method != "multislice") ++accepted;
    }
  }
  // Not all fall-backs: somewhere a faster method held its budget (else the test above
  // compared multislice with itself only).
  EXPECT_GT(accepted, 0u);
}

namespace {
fs::path scratch() {
  const fs::path d = fs::temp_directory_path() / ("stemtwin_test_auto_default_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}
const char* kTiny = R"(name: autotiny
seed: 3
samples: 2
specimen:
  builder: {type: perovskite, a: 3.905, A: {Sr: 1}, B: {Ti: 1}}
  repeat: [2, 2, 2]
microscope: {energy: 200e3, convergence: 20}
scan: {start: [0, 0], fov: [7.81, 7.81], pixels: [6, 6], dwell: 2}
detectors:
  - {name: adf, type: annular, inner: 40, outer: 80}
simulation: {sampling: 0.1, slice_thickness: 1.9525 BUDGET}
)";
std::string tiny(const std::string& budget) {
  std::string t = kTiny;
  t.replace(t.find(" BUDGET"), 7, budget);
  return t;
}
}  // namespace

TEST(AutoDefault, ScenariosDefaultToAutoAndRecordItsChoice) {
  const ScenarioSpec spec = parse_scenario_text(tiny(""), "tiny.yaml");
  EXPECT_EQ(spec.simulation.method, "auto");
  EXPECT_FALSE(spec.simulation.budget_mean_rel.has_value());
  const ScenarioSpec b = parse_scenario_text(tiny(", error_budget: {mean: 0.02, correlation: 0.99, positions: 12}"), "tiny.yaml");
  EXPECT_DOUBLE_EQ(*b.simulation.budget_mean_rel, 0.02);
  EXPECT_DOUBLE_EQ(*b.simulation.budget_min_correlation, 0.99);
  EXPECT_EQ(*b.simulation.budget_calibration_positions, 12);
  const StemSettings st = stem_settings(sample_parameters(b, 0));
  EXPECT_EQ(st.method, Method::Auto);
  EXPECT_DOUBLE_EQ(st.budget.mean_rel, 0.02);
  EXPECT_EQ(st.budget.calibration_positions, 12u);
  // Bad budgets are refused at parse time, naming the key.
  const auto refused = [](const std::string& text, const std::string& key) {
    try {
      parse_scenario_text(text, "tiny.yaml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ScenarioError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  refused(tiny(", error_budget: {mean: 0}"), "simulation.error_budget.mean");
  refused(tiny(", error_budget: {correlation: 1.5}"), "simulation.error_budget.correlation");
  refused(tiny(", error_budget: {meen: 0.01}"), "meen");
  refused(tiny(", method: multislice, error_budget: {mean: 0.01}"), "simulation.error_budget");

  // A run: /params records the method (categories), f and the calibration's error (NaN:
  // this 36-position scan is decided by the cost model), root attributes the request.
  const fs::path dir = scratch();
  const fs::path yaml = dir / "tiny.yaml";
  std::ofstream(yaml) << tiny(", error_budget: {mean: 0.02}");
  RunCommand c;
  c.scenario = yaml.string();
  c.options.output = (dir / "tiny.h5").string();
  c.options.force = true;
  c.options.progress = false;
  c.options.handle_sigint = false;
  std::ostringstream o, e;
  ASSERT_EQ(cmd_run(c, o, e), 0) << e.str();
  const DatasetReader r(c.options.output);
  ASSERT_EQ(r.param("method").size(), 2u);
  EXPECT_EQ(r.param("method")[0], 0.0);  // index of "multislice"
  EXPECT_EQ(r.param("interpolation")[1], 1.0);
  EXPECT_TRUE(std::isnan(r.param("calibration_mean_error")[0]));
  EXPECT_TRUE(std::isnan(r.param("calibration_correlation")[1]));
  // Static SrTiO3, 2 × 2 cells on 80 points (a cell: 40), 6 × 6 positions a third of a cell
  // apart: multislice simulated one position per class of the lattice, 9 of 36
  // (translational_symmetry.hpp).
  EXPECT_EQ(r.param("symmetry_positions")[0], 9.0);
  EXPECT_EQ(r.param("symmetry_positions")[1], 9.0);
  const std::string py = "/usr/bin/python3 -c \"import h5py; f=h5py.File('" + c.options.output +
                         "','r'); a=f.attrs; m=a['method']; m=m.decode() if isinstance(m,bytes) else m; assert m=='auto', m; "
                         "b=a['error_budget']; b=b.decode() if isinstance(b,bytes) else b; assert 'mean_rel=0.02' in b, b; "
                         "c=list(f['params/method'].attrs['categories']); "
                         "c=[x.decode() if isinstance(x,bytes) else x for x in c]; assert c==['multislice','prism','windowed'], c\"";
  EXPECT_EQ(std::system(py.c_str()), 0);
  fs::remove_all(dir);
}

TEST(AutoDefault, SessionDefaultsToAutoAndReportsTheLastFrame) {
  MicroscopeSettings ms;
  EXPECT_EQ(ms.method, Method::Auto);
  ms.sampling_A = 0.1;
  ms.potential.slice_thickness_A = 3.905 / 2;
  ms.incoherent_above_A = 0;
  PerovskiteParams p;
  p.repeats = {12, 12, 2};
  Microscope m(build_perovskite(p, 0), ms);
  EXPECT_EQ(m.status().last_frame.method, "");  // no frame yet
  m.set_detectors({AnnularDetector{"ADF", 40, 80}});
  ScanSettings sc;
  sc.fov_x_A = sc.fov_y_A = 7.81;
  sc.nx = sc.ny = 8;
  m.set_scan(sc);
  m.scan();
  // 64 positions in a 40 Å window: PRISM's S-matrix would cost far more than the frame, so
  // auto runs multislice without calibrating, and says so.
  const FrameMethod f = m.status().last_frame;
  EXPECT_EQ(f.method, "multislice");
  EXPECT_EQ(f.interpolation, 1u);
  EXPECT_FALSE(f.calibrated);
  EXPECT_TRUE(std::isnan(f.mean_error));
}
