// Scenario YAML: parsing, validation messages (file:line: key), distributions' statistics,
// sweep grids, determinism, shards.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>

#include "stemtwin/scenario/scenario_detectors.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

using namespace stemtwin;

namespace {

// The issue's example, verbatim (structure paths are not checked by parse_scenario_text).
const char* kExample = R"(name: srtio3-haadf
seed: 7
samples: 100
specimen:
  structure: structures/SrTiO3.cif
  zone_axis: [0, 0, 1]
  repeat: [4, 4, 20]
  thermal: {rms: 0.08, configurations: 8}
microscope:
  energy: 200e3
  convergence: 20
  aberrations: {defocus: 0, C30: 0}
  focal_spread: 0
  source_size: 0
  current: 20
scan:
  start: [0, 0]
  end: [3.905, 3.905]
  step: 0.2
  dwell: 2
detectors:
  - {name: haadf, type: annular, inner: 70, outer: 200}
  - {name: bf, type: annular, inner: 0, outer: 10}
  - {name: radial, type: radial, step: 1}
simulation:
  method: multislice
  sampling: 0.05
  slice_thickness: 1.9525
  parametrization: lobato
  projection: infinite
acquisition:
  noise: true
)";

// Replaces the first occurrence of `from` in the example.
std::string edit(const std::string& from, const std::string& to, std::string text = kExample) {
  const auto p = text.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) text.replace(p, from.size(), to);
  return text;
}

int line_of(const std::string& text, const std::string& needle) {
  const auto p = text.find(needle);
  return static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(p), '\n')) + 1;
}

// Expects a ScenarioError at `line` naming `key`, whose message contains `what`.
void expect_error(const std::string& text, int line, const std::string& key, const std::string& what) {
  try {
    parse_scenario_text(text, "bad.yaml");
    ADD_FAILURE() << "no error; expected " << key << ": " << what;
  } catch (const ScenarioError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.line(), line) << msg;
    EXPECT_EQ(e.key(), key) << msg;
    EXPECT_NE(msg.find("bad.yaml:" + std::to_string(line) + ":"), std::string::npos) << msg;
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

struct Stats {
  double mean = 0, sd = 0;
};
Stats stats(const std::vector<double>& v) {
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = std::sqrt(s.sd / static_cast<double>(v.size() - 1));
  return s;
}

}  // namespace

TEST(Scenario, ParsesTheIssueExample) {
  const ScenarioSpec s = parse_scenario_text(kExample, "scenarios/example.yaml");
  EXPECT_EQ(s.name, "srtio3-haadf");
  EXPECT_EQ(s.seed, 7u);
  EXPECT_EQ(s.total_samples(), 100u);
  EXPECT_EQ(s.grid_size(), 1u);
  EXPECT_EQ(s.specimen.structure, "scenarios/structures/SrTiO3.cif");  // relative to the YAML file
  ASSERT_EQ(s.detectors.size(), 3u);
  EXPECT_EQ(s.detectors[2].type, DetectorType::Radial);
  ASSERT_TRUE(s.acquisition.has_value());
  EXPECT_TRUE(s.sampled().empty());

  const SampledScenario x = sample_parameters(s, 42);
  EXPECT_EQ(x.index, 42u);
  EXPECT_DOUBLE_EQ(x.energy, 200e3);
  EXPECT_EQ(x.repeat, (std::array<int, 3>{4, 4, 20}));
  EXPECT_EQ(x.configurations, 8);
  ASSERT_TRUE(x.thermal);
  EXPECT_DOUBLE_EQ(*x.thermal_rms, 0.08);
  EXPECT_EQ(x.scan.nx, 20u);  // ceil(3.905 / 0.2), end excluded
  EXPECT_EQ(x.scan.ny, 20u);
  EXPECT_DOUBLE_EQ(std::get<AnnularDetector>(x.detectors[0].detector).outer_mrad, 200);
  EXPECT_TRUE(x.acquisition->flag("noise", false));
  EXPECT_EQ(x.aberrations.at("C10"), -0.0);
  EXPECT_EQ(x.aberrations.count("C30"), 1u);
  EXPECT_NEAR(x.electrons_per_position(), 249.7, 0.1);  // 20 pA × 2 µs / e
  EXPECT_TRUE(x.values.empty());
}

TEST(Scenario, UnknownKeyNamesFileLineAndKey) {
  const std::string t = edit("  current: 20\n", "  current: 20\n  voltage: 300e3\n");
  expect_error(t, line_of(t, "voltage"), "microscope.voltage", "unknown key");
  const std::string t2 = edit("name: srtio3-haadf\n", "name: srtio3-haadf\nsampels: 3\n");
  expect_error(t2, 2, "sampels", "unknown key");
  const std::string t3 = edit("{name: bf, type: annular, inner: 0, outer: 10}",
                              "{name: bf, type: annular, inner: 0, outer: 10, azimut: [0, 90]}");
  expect_error(t3, line_of(t3, "name: bf"), "detectors.bf.azimut", "unknown key");
}

TEST(Scenario, WrongTypeIsRejected) {
  const std::string t = edit("convergence: 20", "convergence: twenty");
  expect_error(t, line_of(t, "twenty"), "microscope.convergence", "expected a number, got 'twenty'");
  const std::string t2 = edit("repeat: [4, 4, 20]", "repeat: 4");
  expect_error(t2, line_of(t2, "repeat: 4"), "specimen.repeat", "expected a list of 3 values");
  const std::string t3 = edit("samples: 100", "samples: 2.5");
  expect_error(t3, 3, "samples", "whole number");
}

TEST(Scenario, OuterBelowInnerIsRejected) {
  const std::string t = edit("inner: 70, outer: 200", "inner: 70, outer: 50");
  expect_error(t, line_of(t, "outer: 50"), "detectors.haadf.outer", "outer angle must exceed inner");
  // a distribution whose draws could invert the annulus is rejected too
  const std::string t2 = edit("inner: 70, outer: 200", "inner: 70, outer: {uniform: [60, 200]}");
  expect_error(t2, line_of(t2, "outer: {"), "detectors.haadf.outer", "for some draw");
}

TEST(Scenario, ZeroEnergyIsRejected) {
  const std::string t = edit("energy: 200e3", "energy: 0");
  expect_error(t, line_of(t, "energy: 0"), "microscope.energy", "must be ≥ 1000 and ≤ 3000000 eV (got 0)");
  const std::string t2 = edit("energy: 200e3", "energy: {uniform: [-10, 300e3]}");
  expect_error(t2, line_of(t2, "energy: {"), "microscope.energy", "for every draw");
}

TEST(Scenario, NegativeThicknessIsRejected) {
  const std::string t = edit("repeat: [4, 4, 20]", "repeat: [4, 4, -3]");
  expect_error(t, line_of(t, "repeat:"), "specimen.repeat[2]", "must be > 0.5 and ≤ 200 cells (got -3)");
  // builder parameters: a key named thickness must be positive
  const std::string t2 = edit("structure: structures/SrTiO3.cif", "builder: {type: film, thickness: -12}");
  expect_error(t2, line_of(t2, "builder:"), "specimen.builder.thickness", "must be > 0");
}

TEST(Scenario, OtherImpossibleValues) {
  // each edit's line is found by the replacement text, so the expected line is where it is
  auto bad = [](const std::string& from, const std::string& to, const std::string& key, const std::string& what) {
    const std::string t = edit(from, to);
    expect_error(t, line_of(t, to), key, what);
  };
  bad("step: 0.2", "step: 0", "scan.step", "must be ≥ 0.001 and ≤ 10000 Å (got 0)");
  bad("end: [3.905, 3.905]", "end: [3.905, 0]", "scan.end[1]", "end must exceed start");
  bad("rms: 0.08", "rms: -0.1", "specimen.thermal.rms", "must be ≥ 0");
  bad("convergence: 20", "convergence: {uniform: [2, 1]}", "microscope.convergence.uniform", "needs a < b");
  bad("convergence: 20", "convergence: {loguniform: [0, 1]}", "microscope.convergence.loguniform", "needs 0 < a < b");
  bad("convergence: 20", "convergence: {normal: [20, -1]}", "microscope.convergence.normal", "sd ≥ 0");
  bad("convergence: 20", "convergence: {choice: []}", "microscope.convergence.choice", "non-empty list");
  bad("type: radial", "type: ring", "detectors.radial.type", "unknown detector type 'ring'");
  bad("C30: 0", "C31: 0", "microscope.aberrations.C31", "unknown aberration");
  bad("C30: 0", "C10: 5", "microscope.aberrations.C10", "given twice");
  bad("parametrization: lobato", "parametrization: doyle", "simulation.parametrization", "unknown value 'doyle'");
  bad("step: 0.2", "step: {uniform: [0.1, 0.2]}", "scan.step", "image size");
  bad("{name: bf, type: annular, inner: 0", "{name: haadf, type: annular, inner: 0", "detectors[1].name", "used twice");
  bad("zone_axis: [0, 0, 1]", "zone_axis: [0, 0, 0]", "specimen.zone_axis", "[0, 0, 0]");
  bad("energy: 200e3", "energy: {gauss: [1, 2]}", "microscope.energy.gauss", "unknown distribution");
  bad("seed: 7", "seed: -1", "seed", "must be ≥ 0");
  bad("seed: 7", "seed: 1e30", "seed", "must be ≤ 2^53");
  bad("samples: 100", "samples: 0", "samples", "must be ≥ 1");
  bad("focal_spread: 0", "focal_spread: -3", "microscope.focal_spread", "must be ≥ 0");
}

TEST(Scenario, SyntaxErrorHasALine) {
  try {
    parse_scenario_text("name: x\nseed: [1, 2\nsamples: 3\n", "broken.yaml");
    FAIL() << "no error";
  } catch (const ScenarioError& e) {
    EXPECT_GT(e.line(), 1) << e.what();
    EXPECT_NE(std::string(e.what()).find("broken.yaml:"), std::string::npos) << e.what();
  }
}

TEST(Scenario, FileParsingChecksTheStructureFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("stemtwin_test_scenario_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "s.yaml").string();
  std::ofstream(path) << kExample;
  try {
    parse_scenario_file(path);
    FAIL() << "missing structure accepted";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.key(), "specimen.structure");
    EXPECT_EQ(e.line(), 5);
    EXPECT_NE(std::string(e.what()).find("file not found"), std::string::npos) << e.what();
  }
  std::filesystem::create_directories(dir / "structures");
  std::ofstream((dir / "structures" / "SrTiO3.cif").string()) << "data_x\n";
  EXPECT_NO_THROW(parse_scenario_file(path));
  std::filesystem::remove_all(dir);
}

// N = 4000 draws per key. Tolerances are 4 standard errors of the estimator (a fixed seed
// makes the test deterministic; 4 SE means a correct sampler passes for ~99.99% of seeds):
//   SE(mean) = sd/√N; SE(sd) ≈ sd·√((κ−1)/(4N)), κ = kurtosis (uniform 1.8, normal 3).
TEST(Scenario, DistributionsHaveTheirStatedStatistics) {
  std::string t = edit("samples: 100", "samples: 4000");
  t = edit("energy: 200e3", "energy: {uniform: [100e3, 300e3]}", t);
  t = edit("defocus: 0", "defocus: {normal: [10, 5]}", t);
  t = edit("current: 20", "current: {loguniform: [1, 100]}", t);
  t = edit("rms: 0.08", "rms: {choice: [0.05, 0.08, 0.1]}", t);
  t = edit("convergence: 20", "convergence: {uniform: [10, 30]}", t);
  const ScenarioSpec s = parse_scenario_text(t, "stats.yaml");
  ASSERT_EQ(s.sampled().size(), 5u);
  const std::size_t N = s.total_samples();
  ASSERT_EQ(N, 4000u);
  std::vector<double> e, d, logc, conv;
  std::map<double, int> rms;
  for (std::size_t i = 0; i < N; ++i) {
    const SampledScenario x = sample_parameters(s, i);
    ASSERT_GE(x.energy, 100e3);
    ASSERT_LT(x.energy, 300e3);
    ASSERT_GE(x.current, 1);
    ASSERT_LT(x.current, 100);
    e.push_back(x.energy);
    d.push_back(x.values.at("microscope.aberrations.defocus"));
    EXPECT_DOUBLE_EQ(x.aberrations.at("C10"), -d.back());  // defocus = −C10
    logc.push_back(std::log(x.current));
    conv.push_back(x.convergence);
    ++rms[x.thermal_rms.value_or(-1)];
  }
  const double n = static_cast<double>(N);
  // uniform [100e3, 300e3]: mean 200e3, sd 2e5/√12 = 57735
  const Stats se = stats(e);
  const double sd_u = 2e5 / std::sqrt(12.0);
  EXPECT_NEAR(se.mean, 200e3, 4 * sd_u / std::sqrt(n));
  EXPECT_NEAR(se.sd, sd_u, 4 * sd_u * std::sqrt(0.8 / (4 * n)));
  // normal (10, 5)
  const Stats sd = stats(d);
  EXPECT_NEAR(sd.mean, 10, 4 * 5 / std::sqrt(n));
  EXPECT_NEAR(sd.sd, 5, 4 * 5 * std::sqrt(2.0 / (4 * n)));
  // loguniform [1, 100]: ln x uniform on [0, ln 100]
  const Stats sl = stats(logc);
  const double L = std::log(100.0), sd_l = L / std::sqrt(12.0);
  EXPECT_NEAR(sl.mean, L / 2, 4 * sd_l / std::sqrt(n));
  EXPECT_NEAR(sl.sd, sd_l, 4 * sd_l * std::sqrt(0.8 / (4 * n)));
  // choice of 3: each p = 1/3, binomial SE √(p(1−p)/N)
  ASSERT_EQ(rms.size(), 3u);
  for (const auto& [v, c] : rms) EXPECT_NEAR(c / n, 1.0 / 3, 4 * std::sqrt((1.0 / 3) * (2.0 / 3) / n)) << v;
  // independent keys are uncorrelated: |r| < 4/√N
  const Stats sc = stats(conv);
  double cov = 0;
  for (std::size_t i = 0; i < N; ++i) cov += (e[i] - se.mean) * (conv[i] - sc.mean);
  EXPECT_LT(std::abs(cov / (n - 1) / (se.sd * sc.sd)), 4 / std::sqrt(n));
}

TEST(Scenario, SweepGridCardinalityAndOrder) {
  std::string t = edit("samples: 100", "samples: 2");
  t = edit("defocus: 0, C30: 0", "defocus: {sweep: [-50, 0, 50]}, C30: {sweep: [0, 1e4]}", t);
  t = edit("energy: 200e3", "energy: {uniform: [199e3, 201e3]}", t);
  const ScenarioSpec s = parse_scenario_text(t, "sweep.yaml");
  EXPECT_EQ(s.grid_size(), 6u);
  EXPECT_EQ(s.total_samples(), 12u);
  // first sweep (defocus) slowest, then C30, replicates innermost
  const double want_def[6] = {-50, -50, 0, 0, 50, 50}, want_c30[6] = {0, 1e4, 0, 1e4, 0, 1e4};
  std::set<double> energies;
  for (std::size_t i = 0; i < 12; ++i) {
    const SampledScenario x = sample_parameters(s, i);
    EXPECT_EQ(x.grid_point, i / 2);
    EXPECT_EQ(x.replicate, i % 2);
    EXPECT_EQ(x.values.at("microscope.aberrations.defocus"), want_def[i / 2]) << i;
    EXPECT_EQ(x.aberrations.at("C30"), want_c30[i / 2]) << i;
    energies.insert(x.energy);
  }
  EXPECT_EQ(energies.size(), 12u);  // random keys are drawn afresh for every sample
  EXPECT_THROW(sample_parameters(s, 12), std::out_of_range);
}

TEST(Scenario, SweepsInListsAndIntegerRounding) {
  std::string t = edit("repeat: [4, 4, 20]", "repeat: [4, 4, {sweep: [5, 10, 20]}]");
  t = edit("samples: 100", "samples: 3", t);
  t = edit("configurations: 8", "configurations: {uniform: [2, 6]}", t);
  const ScenarioSpec s = parse_scenario_text(t, "list.yaml");
  EXPECT_EQ(s.total_samples(), 9u);
  for (std::size_t i = 0; i < 9; ++i) {
    const SampledScenario x = sample_parameters(s, i);
    const int want[3] = {5, 10, 20};
    EXPECT_EQ(x.repeat[2], want[i / 3]);
    EXPECT_GE(x.configurations, 2);
    EXPECT_LE(x.configurations, 6);
    EXPECT_EQ(x.values.count("specimen.repeat[2]"), 1u);
  }
}

TEST(Scenario, DrawsDependOnlyOnSeedSampleAndKey) {
  std::string t = edit("energy: 200e3", "energy: {uniform: [100e3, 300e3]}");
  const ScenarioSpec a = parse_scenario_text(t, "a.yaml");
  // another distribution added elsewhere does not change this key's draws
  const ScenarioSpec b = parse_scenario_text(edit("current: 20", "current: {normal: [20, 1]}", t), "b.yaml");
  const ScenarioSpec c = parse_scenario_text(edit("seed: 7", "seed: 8", t), "c.yaml");
  int differ = 0;
  for (std::size_t i : {0, 5, 99, 50, 0}) {
    EXPECT_EQ(sample_parameters(a, i).energy, sample_parameters(b, i).energy);
    EXPECT_EQ(sample_parameters(a, i).energy, sample_parameters(a, i).energy);
    differ += sample_parameters(a, i).energy != sample_parameters(c, i).energy;
  }
  EXPECT_EQ(differ, 5);
  EXPECT_NE(sample_parameters(a, 1).energy, sample_parameters(a, 2).energy);
}

TEST(Scenario, BuilderAcquisitionAndClassLabels) {
  std::string t = edit("structure: structures/SrTiO3.cif",
                       "builder: {type: perovskite, a: {normal: [3.905, 0.01]}, ordering: {choice: [ordered, disordered]},"
                       " vacancies: [{element: O, fraction: {uniform: [0, 0.1]}}]}");
  t = edit("  noise: true\n",
           "  noise: true\n  drift: {rate: {uniform: [0, 0.5]}, angle: 30}\n  gain: {detector: 1.0}\nlabels:\n"
           "  class: specimen.builder.ordering\n  masks: [columns, species]\n",
           t);
  const ScenarioSpec s = parse_scenario_text(t, "builder.yaml");
  EXPECT_EQ(s.specimen.builder_type, "perovskite");
  EXPECT_EQ(s.labels.class_names, (std::vector<std::string>{"ordered", "disordered"}));
  const auto info = parameter_info(s);
  ASSERT_EQ(info.size(), 4u);
  EXPECT_EQ(info[0].name, "specimen.builder.a");
  EXPECT_EQ(info[1].name, "specimen.builder.ordering");
  EXPECT_EQ(info[1].categories, s.labels.class_names);
  EXPECT_EQ(info[2].name, "specimen.builder.vacancies[0].fraction");
  EXPECT_EQ(info[3].name, "acquisition.drift.rate");
  int seen[2] = {0, 0};
  for (std::size_t i = 0; i < 40; ++i) {
    const SampledScenario x = sample_parameters(s, i);
    const std::string ord = x.builder->text("ordering");
    EXPECT_EQ(x.class_id, ord == "ordered" ? 0 : 1);
    EXPECT_EQ(x.values.at("specimen.builder.ordering"), x.class_id);
    ++seen[x.class_id];
    const double f = x.builder->at("vacancies").list.at(0).number("fraction");
    EXPECT_GE(f, 0);
    EXPECT_LT(f, 0.1);
    EXPECT_DOUBLE_EQ(x.acquisition->at("drift").number("angle"), 30);
    EXPECT_EQ(x.acquisition->at("drift").number("rate"), x.values.at("acquisition.drift.rate"));
  }
  // a missing key in a sampled tree names the file, line and key path
  try {
    (void)sample_parameters(s, 0).acquisition->at("drift").number("jitter");
    ADD_FAILURE() << "no error";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.key(), "acquisition.drift.jitter");
    EXPECT_EQ(e.file(), "builder.yaml");
    EXPECT_EQ(e.line(), line_of(t, "drift:"));
  }
  EXPECT_GT(seen[0], 5);
  EXPECT_GT(seen[1], 5);
  // a fraction outside [0, 1] in a builder is rejected
  expect_error(edit("[0, 0.1]", "[0, 1.5]", t), 5, "specimen.builder.vacancies[0].fraction", "≤ 1 for every draw");
  // class must name a key of the scenario
  expect_error(edit("class: specimen.builder.ordering", "class: specimen.builder.order", t), line_of(t, "class:"),
               "labels.class", "no key");
}

TEST(Scenario, FovScanAndDetectorKinds) {
  std::string t = edit("  end: [3.905, 3.905]\n  step: 0.2\n", "  fov: [8, 4]\n  pixels: [16, 8]\n");
  t = edit("  - {name: radial, type: radial, step: 1}\n",
           "  - {name: radial, type: radial, step: 1, max: 50}\n"
           "  - {name: dpc, type: segmented, rings: [5, 10, 20], segments: 4, rotation: 45}\n"
           "  - {name: cam, type: pixelated, max_angle: 40, bin: 2}\n"
           "  - {name: com, type: com}\n"
           "  - {name: sector, type: annular, inner: 10, outer: 20, azimuth: [0, 90]}\n",
           t);
  t = edit("start: [0, 0]", "start: [{uniform: [0, 1]}, 0]", t);
  const ScenarioSpec s = parse_scenario_text(t, "fov.yaml");
  const SampledScenario x = sample_parameters(s, 3);
  EXPECT_EQ(x.scan.nx, 16u);
  EXPECT_EQ(x.scan.ny, 8u);
  EXPECT_DOUBLE_EQ(x.scan.step_x, 0.5);
  EXPECT_GE(x.scan.start.x, 0);
  EXPECT_LT(x.scan.start.x, 1);
  ASSERT_EQ(x.detectors.size(), 7u);
  EXPECT_EQ(std::get<SegmentedDetector>(x.detectors[3].detector).ring_edges_mrad, (std::vector<double>{5, 10, 20}));
  EXPECT_EQ(std::get<PixelatedDetector>(x.detectors[4].detector).bin, 2u);
  const auto& az = std::get<AnnularDetector>(x.detectors[6].detector).azimuth_deg;
  ASSERT_TRUE(az);
  EXPECT_DOUBLE_EQ(az->second, 90);
  for (const SampledDetector& d : x.detectors) {  // name and kind mirror the physics detector
    EXPECT_EQ(d.name, detector_name(d.detector));
    EXPECT_EQ(d.type, detector_type(d.detector));
  }
  expect_error(edit("pixels: [16, 8]", "pixels: [16, {uniform: [8, 9]}]", t), line_of(t, "pixels"), "scan.pixels[1]",
               "image size");
  expect_error(edit("rings: [5, 10, 20]", "rings: [5, 30, 20]", t), line_of(t, "rings"), "detectors.dpc.rings[2]",
               "must increase");
}

TEST(Scenario, Shards) {
  EXPECT_EQ(parse_shard("1/4").index, 1u);
  EXPECT_EQ(parse_shard("1/4").count, 4u);
  EXPECT_THROW(parse_shard("4/4"), std::invalid_argument);
  EXPECT_THROW(parse_shard("a/4"), std::invalid_argument);
  EXPECT_THROW(parse_shard("1"), std::invalid_argument);
  EXPECT_EQ(shard_samples(10, {1, 4}), (std::vector<std::size_t>{1, 5, 9}));
  // shards partition the samples
  std::vector<int> hit(23, 0);
  for (std::size_t k = 0; k < 5; ++k)
    for (std::size_t i : shard_samples(23, {k, 5})) ++hit[i];
  EXPECT_TRUE(std::all_of(hit.begin(), hit.end(), [](int h) { return h == 1; }));
}

TEST(Scenario, QuickstartScenarioParses) {
  const std::string path = std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/quickstart.yaml";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  const ScenarioSpec s = parse_scenario_text(ss.str(), path);  // structure file checked by `validate`
  EXPECT_EQ(s.total_samples(), 8u);
  EXPECT_TRUE(s.acquisition.has_value());
  for (std::size_t i = 0; i < s.total_samples(); ++i) EXPECT_NO_THROW(sample_parameters(s, i));
}

TEST(Scenario, PerElementThermalRms) {
  const std::string t = edit("rms: 0.08", "rms: {Sr: 0.08, Ti: {uniform: [0.05, 0.07]}, O: 0.09}");
  const ScenarioSpec s = parse_scenario_text(t, "rms.yaml");
  ASSERT_EQ(s.specimen.thermal.rms_by_element.size(), 3u);
  const SampledScenario x = sample_parameters(s, 0);
  EXPECT_DOUBLE_EQ(x.thermal_rms_by_element.at("Sr"), 0.08);
  EXPECT_GE(x.thermal_rms_by_element.at("Ti"), 0.05);
  EXPECT_LT(x.thermal_rms_by_element.at("Ti"), 0.07);
  EXPECT_EQ(x.values.count("specimen.thermal.rms.Ti"), 1u);
  const std::string bad = edit("rms: 0.08", "rms: {Sr: 0.08, Xx: 0.1}");
  expect_error(bad, line_of(bad, "rms:"), "specimen.thermal.rms.Xx", "unknown element symbol");
  const std::string neg = edit("rms: 0.08", "rms: {Sr: 0.08, O: -0.1}");
  expect_error(neg, line_of(neg, "rms:"), "specimen.thermal.rms.O", "must be ≥ 0");
}

// --- inputs that can never hurt (issue #12) -------------------------------------------

namespace {
// Expects a ScenarioError at `line` (any key) whose message contains `what`.
void expect_yaml_error(const std::string& text, int line, const std::string& what) {
  try {
    parse_scenario_text(text, "bad.yaml");
    ADD_FAILURE() << "no error; expected " << what;
  } catch (const ScenarioError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.line(), line) << msg;
    EXPECT_EQ(msg.rfind("bad.yaml:" + std::to_string(line) + ":", 0), 0u) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}
}  // namespace

TEST(ScenarioHardening, SelfReferencingAliasIsACycleNotACrash) {
  // Before: the parser's walk recursed through the cycle until the stack overflowed.
  expect_yaml_error("x: &a [*a]\n", 1, "cycle");
  const std::string t = edit("acquisition:\n  noise: true\n", "acquisition: &acq\n  noise: true\n  jitter: [*acq]\n");
  expect_yaml_error(t, line_of(t, "jitter"), "cycle");
}

TEST(ScenarioHardening, AliasBombIsRefusedQuickly) {
  // 10 levels of 10 aliases: 10^10 nodes once expanded (before: > 6 GB and > 60 s).
  std::string bomb = "acquisition:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 10; ++i) {
    bomb += "  l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", *l" : "*l") + std::to_string(i - 1);
    bomb += "]\n";
  }
  const std::string t = edit("acquisition:\n  noise: true\n", bomb);
  const auto t0 = std::chrono::steady_clock::now();
  expect_yaml_error(t, line_of(t, "l4:"), "more than 100000 nodes");
  // Generous for a loaded CI machine: the refusal itself takes about a millisecond.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
}

TEST(ScenarioHardening, DeepNestingIsRefused) {
  std::string deep = "acquisition: {x: " + std::string(100, '[') + std::string(100, ']') + "}\n";
  const std::string t = edit("acquisition:\n  noise: true\n", deep);
  expect_yaml_error(t, line_of(t, "acquisition"), "deeper than 64 levels");
}

TEST(ScenarioHardening, SecondDocumentIsAnError) {
  const std::string t = std::string(kExample) + "---\nname: other\n";
  expect_yaml_error(t, line_of(t, "---"), "second YAML document");
}

TEST(ScenarioHardening, MapAsAKeyNamesTheLine) {
  const std::string t = edit("  current: 20\n", "  current: 20\n  {a: 1}: 2\n");
  expect_yaml_error(t, line_of(t, "{a: 1}"), "");
}

TEST(ScenarioHardening, AbsurdValuesAreRefusedWithTheirRange) {
  auto bad = [](const std::string& from, const std::string& to, const std::string& key, const std::string& what) {
    const std::string t = edit(from, to);
    expect_error(t, line_of(t, to), key, what);
  };
  // Each of these was accepted before (all-zero images, hangs, or huge allocations).
  bad("dwell: 2", "dwell: 1e300", "scan.dwell", "must be ≥ 0.01 and ≤ 10000000 µs (got 1e+300)");
  bad("current: 20", "current: 1e300", "microscope.current", "≤ 1000000 pA");
  bad("energy: 200e3", "energy: 5e6", "microscope.energy", "≤ 3000000 eV");
  bad("slice_thickness: 1.9525", "slice_thickness: 1e-9", "simulation.slice_thickness", "≥ 0.2 and ≤ 50 Å");
  bad("sampling: 0.05", "sampling: {uniform: [1e-6, 0.1]}", "simulation.sampling", "for every draw");
  bad("{name: radial, type: radial, step: 1}", "{name: radial, type: radial, step: 1e-9}", "detectors.radial.step",
      "≥ 0.01 and ≤ 1000 mrad");
  bad("repeat: [4, 4, 20]", "repeat: [4, 4, 1e6]", "specimen.repeat[2]", "≤ 200 cells");
  bad("samples: 100", "samples: 1e9", "samples", "≤ 10000000");
  bad("configurations: 8", "configurations: 1e9", "specimen.thermal.configurations", "≤ 1000");
  bad("C30: 0", "C30: 1e300", "microscope.aberrations.C30", "≤ 100000000 Å");
  const std::string wide = edit("end: [3.905, 3.905]", "end: [3.905, 1000]");  // 5000 rows of 0.2 Å
  expect_error(wide, line_of(wide, "step: 0.2"), "scan.step", "at most 4096 per axis");
  bad("inner: 70, outer: 200", "inner: 70, outer: 1e9", "detectors.haadf.outer", "≤ 1000 mrad");
  // builder and acquisition keys (read by name from a free-form tree)
  const std::string builder = edit("structure: structures/SrTiO3.cif",
                                   "builder: {type: defects, interstitials: [{element: O, count: 1e9}]}");
  expect_error(builder, line_of(builder, "builder:"), "specimen.builder.interstitials[0].count", "≤ 10000 atoms");
  const std::string acq = edit("  noise: true\n", "  noise: true\n  annular: {detection_efficiency: 3}\n");
  expect_error(acq, line_of(acq, "annular: {"), "acquisition.annular.detection_efficiency", "≤ 1");
  const std::string beam = edit("  noise: true\n", "  noise: true\n  beam_current_pA: {uniform: [1, 1e300]}\n");
  expect_error(beam, line_of(beam, "beam_current"), "acquisition.beam_current_pA", "for every draw");
}

TEST(ScenarioHardening, LongListsAreRefused) {
  std::string rings = "rings: [";
  for (int i = 0; i < 1000; ++i) rings += (i ? ", " : "") + std::to_string(i + 1);
  rings += "]";
  const std::string t = edit("{name: radial, type: radial, step: 1}", "{name: dpc, type: segmented, " + rings + "}");
  expect_error(t, line_of(t, "dpc"), "detectors.dpc.rings", "holds 1000 entries");
  std::string seg = edit("{name: radial, type: radial, step: 1}", "{name: dpc, type: segmented, rings: [1, 2], segments: 100000}");
  expect_error(seg, line_of(seg, "dpc"), "detectors.dpc.segments", "≤ 64");
}

TEST(ScenarioHardening, EveryShippedScenarioIsWithinRange) {
  // The ranges must not refuse what the project itself ships.
  for (const auto& e : std::filesystem::directory_iterator(std::string(STEMTWIN_SOURCE_DIR) + "/scenarios"))
    if (e.path().extension() == ".yaml") EXPECT_NO_THROW(parse_scenario_file(e.path().string())) << e.path();
}

TEST(Scenario, MethodAutoIsAcceptedAndReachesTheEngine) {
  std::string text = kExample;
  const auto at = text.find("method: multislice");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, std::string("method: multislice").size(), "method: auto");
  const ScenarioSpec s = parse_scenario_text(text, "auto.yaml");
  EXPECT_EQ(stem_settings(sample_parameters(s, 1)).method, Method::Auto);
  text.replace(at, std::string("method: auto").size(), "method: automatic");
  EXPECT_THROW(parse_scenario_text(text, "auto.yaml"), std::exception);
}
