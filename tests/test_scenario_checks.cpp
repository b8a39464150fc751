// Issue #12: checks that need physics, before any work — band limit (sampling: auto,
// warnings, refusals), expected counts per pixel, thermal snapshot warnings — and the
// kinematic estimate behind the counts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stemtwin/apps/cli_commands.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/core/grid.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "stemtwin/scenario/scenario_checks.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {
fs::path scratch() {
  const fs::path d = fs::temp_directory_path() / ("stemtwin_test_checks_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

const char* kBase = R"(name: checks
seed: 1
specimen:
  builder: {type: perovskite, a: 3.905, A: {Sr: 1}, B: {Ti: 1}}
  repeat: [1, 1, 4]
THERMAL
microscope: {energy: ENERGY, convergence: 20, current: CURRENT}
scan: {start: [0, 0], fov: [3.905, 3.905], pixels: [3, 3], dwell: 2}
detectors:
  - {name: haadf, type: annular, inner: INNER, outer: 200}
  - {name: bf, type: annular, inner: 0, outer: 10}
SIMULATION
acquisition: {noise: true}
)";

std::string scenario(std::string thermal = "", std::string simulation = "", std::string energy = "300e3",
                     std::string inner = "70", std::string current = "500") {
  std::string t = kBase;
  auto put = [&](const std::string& key, const std::string& v) { t.replace(t.find(key), key.size(), v); };
  put("THERMAL", thermal);
  put("SIMULATION", simulation);
  put("ENERGY", energy);
  put("INNER", inner);
  put("CURRENT", current);
  return t;
}
}  // namespace

TEST(ScenarioChecks, AutoSamplingCoversEveryDetectorAndIsTheDefault) {
  for (const char* energy : {"80e3", "200e3", "300e3"}) {
    const ScenarioSpec spec = parse_scenario_text(scenario("", "", energy), "auto.yaml");
    ASSERT_TRUE(spec.simulation.auto_sampling);
    const SampledScenario s = sample_parameters(spec, 0);
    EXPECT_DOUBLE_EQ(required_angle_mrad(s), 200);  // the HAADF's outer angle (> 2 × 20 mrad)
    const Specimen sp = build_specimen(s);
    const Grid g = simulation_grid(s, sp.structure.cell);
    const double band_limit_mrad = g.k_max() * wavelength_A(s.energy) * 1e3;
    EXPECT_GE(band_limit_mrad, 200.0) << energy;          // the real grid reaches the detector
    EXPECT_LT(band_limit_mrad, 200.0 * 1.25) << energy;   // and is not needlessly fine (FFT sizes ≤ +10 %)
    EXPECT_TRUE(check_scenario_physics(spec).warnings.empty()) << energy;
  }
  // Without detectors beyond 2α the sampling is capped at 0.1 Å (atomic potentials).
  SampledScenario bf;
  bf.energy = 200e3, bf.convergence = 20;
  EXPECT_DOUBLE_EQ(auto_sampling_A(bf), 0.1);
}

TEST(ScenarioChecks, DetectorBeyondTheBandLimitIsWarnedOrRefusedWithFileAndLine) {
  // 0.06 Å at 300 kV: band limit 109 mrad < 200 mrad (the shipped oxide scenario's old case).
  const ScenarioSpec cut = parse_scenario_text(scenario("", "simulation: {sampling: 0.06}"), "cut.yaml");
  const ScenarioCheck c = check_scenario_physics(cut);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("detector 'haadf' reaches 200 mrad"), std::string::npos) << c.warnings[0];
  EXPECT_NE(c.warnings[0].find("sampling: auto"), std::string::npos);
  // Wholly beyond: refused, naming the detector's line.
  const ScenarioSpec empty = parse_scenario_text(scenario("", "simulation: {sampling: 0.06}", "300e3", "150"), "empty.yaml");
  try {
    check_scenario_physics(empty);
    FAIL() << "expected a refusal";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.line(), 10);
    EXPECT_NE(std::string(e.what()).find("wholly beyond the band limit"), std::string::npos) << e.what();
  }
}

TEST(ScenarioChecks, ValidateAndRunReportAndStoreTheWarnings) {
  const fs::path dir = scratch();
  const fs::path yaml = dir / "cut.yaml";
  std::ofstream(yaml) << scenario("", "simulation: {sampling: 0.06}", "300e3", "70", "0.05");
  std::ostringstream o, e;
  ASSERT_EQ(cmd_validate(yaml.string(), o, e), 0) << e.str();
  EXPECT_NE(e.str().find("warning: detector 'haadf' reaches 200 mrad"), std::string::npos) << e.str();
  EXPECT_NE(o.str().find("expected counts per pixel, haadf"), std::string::npos) << o.str();
  // 0.05 pA × 2 µs = 0.6 electrons per position: below one count anywhere.
  EXPECT_NE(e.str().find("detector 'haadf' expects about"), std::string::npos) << e.str();
  EXPECT_NE(e.str().find("detector 'bf' expects about"), std::string::npos) << e.str();

  RunCommand c;
  c.scenario = yaml.string();
  c.options.output = (dir / "cut.h5").string();
  c.options.force = true;
  c.options.progress = false;
  c.options.handle_sigint = false;
  std::ostringstream ro, re;
  ASSERT_EQ(cmd_run(c, ro, re), 0) << re.str();
  EXPECT_NE(re.str().find("warning: detector 'haadf' reaches 200 mrad"), std::string::npos) << re.str();
  const h5::Handle f = h5::open_file(c.options.output, false);
  const std::string stored = h5::read_attr_string(f, "warnings");
  EXPECT_NE(stored.find("detector 'haadf' reaches 200 mrad"), std::string::npos) << stored;
  EXPECT_NEAR(DatasetReader(c.options.output).param("sampling_A")[0], 0.06, 0.006);  // grid rounds finer
  fs::remove_all(dir);
}

TEST(ScenarioChecks, OneThermalConfigurationIsWarnedAsASnapshot) {
  const ScenarioSpec one = parse_scenario_text(scenario("  thermal: {rms: 0.08, configurations: 1}"), "one.yaml");
  const ScenarioCheck c = check_scenario_physics(one);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("not the thermal average"), std::string::npos) << c.warnings[0];
  const ScenarioSpec eight = parse_scenario_text(scenario("  thermal: {rms: 0.08}"), "eight.yaml");
  EXPECT_EQ(sample_parameters(eight, 0).configurations, 8);  // the default when thermal is on
  EXPECT_TRUE(check_scenario_physics(eight).warnings.empty());
  const ScenarioSpec none = parse_scenario_text(scenario("  thermal: {configurations: 4}"), "none.yaml");
  try {
    check_scenario_physics(none);  // a compound with no rms anywhere
    FAIL() << "expected a refusal";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.line(), 6);
    EXPECT_NE(std::string(e.what()).find("no rms displacement is known for O, Ti, Sr"), std::string::npos) << e.what();
  }
}

// The kinematic estimate: invariants and a hand-checked number.
TEST(ScenarioChecks, KinematicAnnularFractionInvariants) {
  const double E = 200e3, alpha = 20;
  // Vacuum: the bright-field disc is all in 0–α, none of it in the dark field.
  EXPECT_DOUBLE_EQ(estimate_annular_fraction({}, {}, 10, E, alpha, 0, alpha), 1.0);
  EXPECT_DOUBLE_EQ(estimate_annular_fraction({}, {}, 10, E, alpha, 0, alpha / 2), 0.25);  // area ∝ θ²
  EXPECT_DOUBLE_EQ(estimate_annular_fraction({}, {}, 10, E, alpha, 70, 200), 0.0);
  // Dark field grows linearly with the number of atoms (single scattering) and steeply with Z.
  const double one = estimate_annular_fraction({38}, {1}, 15.25, E, alpha, 70, 200);
  const double two = estimate_annular_fraction({38, 38}, {1, 1}, 15.25, E, alpha, 70, 200);
  EXPECT_NEAR(two / one, 2.0, 1e-12);
  const double au = estimate_annular_fraction({79}, {1}, 15.25, E, alpha, 70, 200);
  const double si = estimate_annular_fraction({14}, {1}, 15.25, E, alpha, 70, 200);
  // HAADF ∝ Z^n with n ≈ 1.6–2 (DESIGN.md §4): (79/14)^1.6 = 15.9, (79/14)^2 = 31.8.
  EXPECT_GT(au / si, 15.0);
  EXPECT_LT(au / si, 35.0);
  // Occupancy weights atoms.
  EXPECT_NEAR(estimate_annular_fraction({38}, {0.5}, 15.25, E, alpha, 70, 200), one / 2, 1e-15);
}
