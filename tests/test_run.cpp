// End to end: scenario → physics → read-out → labels → HDF5, through `stemtwin run`'s function.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stemtwin/dataset.hpp"
#include "stemtwin/scenario_run.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {
fs::path scratch() {
  const fs::path d = fs::temp_directory_path() / ("stemtwin_test_run_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// Tiny but complete: builder with defects, thickness sweep, every detector type, noise and drift.
const char* kScenario = R"(name: tiny
seed: 5
samples: 1
specimen:
  builder:
    type: defects
    a: 3.905
    A: {Sr: 1}
    B: {Ti: 1}
    vacancies: [{element: Sr, fraction: 0.25}]
  repeat: [2, 2, {sweep: [1, 2]}]
  thermal: {rms: 0.08, configurations: 2}
microscope:
  energy: 200e3
  convergence: 20
  aberrations: {defocus: {uniform: [-10, 10]}}
  current: 20
scan:
  start: [0, 0]
  fov: [7.81, 7.81]
  pixels: [6, 6]
  dwell: 2
detectors:
  - {name: adf, type: annular, inner: 40, outer: 80}
  - {name: radial, type: radial, step: 5}
  - {name: dpc, type: segmented, rings: [5, 20], segments: 4}
  - {name: com, type: com}
  - {name: cam, type: pixelated, max_angle: 30}
simulation:
  sampling: 0.1
  slice_thickness: 1.9525
acquisition:
  noise: true
  drift: {velocity_A_per_s: [200, 0]}
labels:
  columns: true
  masks: [columns, region]
output:
  file: tiny.h5
)";

std::string write_scenario(const fs::path& dir, const std::string& text, const std::string& name = "tiny.yaml") {
  const fs::path p = dir / name;
  std::ofstream(p) << text;
  return p.string();
}

int run(const std::string& yaml, const std::string& out, bool resume = false, std::size_t max_samples = SIZE_MAX,
        std::string* errors = nullptr) {
  RunCommand c;
  c.scenario = yaml;
  c.options.output = out;
  c.options.resume = resume;
  c.options.force = !resume;
  c.options.max_samples = max_samples;
  c.options.progress = false;
  c.options.handle_sigint = false;
  std::ostringstream o, e;
  const int code = cmd_run(c, o, e);
  if (errors) *errors = e.str();
  return code;
}
}  // namespace

TEST(Run, WritesACompleteDatasetThatPythonReads) {
  const fs::path dir = scratch();
  const std::string yaml = write_scenario(dir, kScenario), out = (dir / "tiny.h5").string();
  std::string err;
  ASSERT_EQ(run(yaml, out, false, SIZE_MAX, &err), 0) << err;
  DatasetReader r(out);
  ASSERT_EQ(r.size(), 2u);
  const auto channels = r.detectors();
  for (const char* ch : {"adf", "com_x", "com_y", "dpc_r0s0", "dpc_r0s3"})
    EXPECT_NE(std::find(channels.begin(), channels.end(), ch), channels.end()) << ch;
  const Image adf = r.image("adf", 1), clean = r.clean("adf", 1);
  EXPECT_EQ(adf.nx, 6u);
  EXPECT_EQ(adf.ny, 6u);
  // Noisy read-out in detected electrons ≈ 250 e⁻ × clean fraction on average (Poisson).
  double sn = 0, sc = 0;
  for (std::size_t i = 0; i < adf.size(); ++i) sn += adf.data[i], sc += clean.data[i];
  EXPECT_GT(sc, 0.0);
  EXPECT_NEAR(sn / (249.66 * sc), 1.0, 4.0 / std::sqrt(249.66 * sc));  // 4 Poisson standard errors
  const auto thick = r.param("thickness_A");
  EXPECT_NEAR(thick[0], 3.905, 1e-9);
  EXPECT_NEAR(thick[1], 7.81, 1e-9);
  EXPECT_GT(r.columns(0).size(), 0u);
  EXPECT_EQ(r.mask("region", 0).nx, 6u);
  EXPECT_EQ(r.radial("radial", 0).size() % 36u, 0u);
  EXPECT_EQ(r.diffraction_row("cam", 0, 5).size() % 6u, 0u);
  // Opens without stemtwin (Debian's h5py).
  const std::string py = "/usr/bin/python3 -c \"import h5py,numpy as np; f=h5py.File('" + out +
                         "','r'); a=f['images/adf'][()]; assert a.shape==(2,6,6), a.shape; "
                         "d=f['diffraction/cam']; assert d.shape[:3]==(2,6,6), d.shape; "
                         "c=f['labels/columns/x_px'][()]; assert len(c)>0; "
                         "assert np.isfinite(f['params/dose_e_per_A2'][()]).all()\"";
  EXPECT_EQ(std::system(py.c_str()), 0);
  fs::remove_all(dir);
}

TEST(Run, ResumeGivesTheSameDataset) {
  const fs::path dir = scratch();
  const std::string yaml = write_scenario(dir, kScenario);
  const std::string a = (dir / "a.h5").string(), b = (dir / "b.h5").string();
  ASSERT_EQ(run(yaml, a), 0);
  ASSERT_EQ(run(yaml, b, false, 1), 0);  // stops after one sample (as a kill between samples)
  EXPECT_EQ(DatasetReader(b).size(), 1u);
  ASSERT_EQ(run(yaml, b, true), 0);
  DatasetReader ra(a), rb(b);
  ASSERT_EQ(rb.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(ra.image("adf", i).data, rb.image("adf", i).data);
    EXPECT_EQ(ra.clean("dpc_r0s1", i).data, rb.clean("dpc_r0s1", i).data);
    EXPECT_EQ(ra.diffraction_row("cam", i, 3), rb.diffraction_row("cam", i, 3));
  }
  EXPECT_EQ(ra.param("microscope.aberrations.defocus"), rb.param("microscope.aberrations.defocus"));
  fs::remove_all(dir);
}

TEST(Run, SameBytesOnOneAndTwoThreads) {
  const fs::path dir = scratch();
  const std::string yaml = write_scenario(dir, kScenario);
  RunCommand c;
  c.scenario = yaml;
  c.options.force = true;
  c.options.progress = false;
  c.options.handle_sigint = false;
  std::ostringstream o, e;
  c.threads = 1;
  c.options.output = (dir / "t1.h5").string();
  ASSERT_EQ(cmd_run(c, o, e), 0) << e.str();
  c.threads = 2;
  c.options.output = (dir / "t2.h5").string();
  ASSERT_EQ(cmd_run(c, o, e), 0) << e.str();
  omp_set_num_threads(2);
  DatasetReader r1((dir / "t1.h5").string()), r2((dir / "t2.h5").string());
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r1.image("adf", i).data, r2.image("adf", i).data);
    EXPECT_EQ(r1.image("com_x", i).data, r2.image("com_x", i).data);
  }
  fs::remove_all(dir);
}

TEST(Run, BadBuilderAndAcquisitionKeysAreRejectedWithLineAndKey) {
  const fs::path dir = scratch();
  struct Case {
    std::string from, to, expect;
  };
  const Case cases[] = {
      {"    B: {Ti: 1}\n", "    B: {Ti: 1}\n    colour: red\n", "specimen.builder.colour"},
      {"A: {Sr: 1}", "A: {Xx: 1}", "unknown element symbol 'Xx'"},
      {"  drift: {velocity_A_per_s: [200, 0]}", "  drift: {speed: 3}", "acquisition.drift.speed"},
      {"  noise: true\n", "  noise: true\n  jitter: {rms_A: -1}\n", "acquisition.jitter.rms_A"},
  };
  for (const Case& c : cases) {
    std::string text = kScenario;
    const auto pos = text.find(c.from);
    ASSERT_NE(pos, std::string::npos) << c.from;
    text.replace(pos, c.from.size(), c.to);
    const std::string yaml = write_scenario(dir, text, "bad.yaml");
    std::string err;
    EXPECT_EQ(run(yaml, (dir / "bad.h5").string(), false, SIZE_MAX, &err), 1);
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
    EXPECT_NE(err.find("bad.yaml:"), std::string::npos) << err;  // file:line in the message
    EXPECT_FALSE(fs::exists(dir / "bad.h5"));                    // rejected before any work
  }
  fs::remove_all(dir);
}

// A sample that fails mid-simulation (here: its 4D patterns cannot have the file's size,
// thrown from inside the OpenMP loop over positions) is an error naming why; the samples
// before it stay complete. (Before: std::terminate from the parallel region.)
TEST(Run, SampleFailingInsideThePositionLoopIsAnErrorAndKeepsTheFile) {
  const fs::path dir = scratch();
  const std::string yaml = std::string(STEMTWIN_SOURCE_DIR) + "/tests/mpi/bad.yaml";
  std::string err;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    EXPECT_EQ(run(yaml, (dir / "bad.h5").string(), true, SIZE_MAX, &err), 1);
    EXPECT_NE(err.find("4D-STEM needs the same lateral cell"), std::string::npos) << err;
    const DatasetReader r((dir / "bad.h5").string());
    EXPECT_EQ(r.size(), 3u);
  }
  fs::remove_all(dir);
}

TEST(Run, DryRunPrintsTheParameterTableAndEstimates) {
  const fs::path dir = scratch();
  RunCommand c;
  c.scenario = write_scenario(dir, kScenario);
  c.dry_run = true;
  c.options.output = (dir / "none.h5").string();
  std::ostringstream o, e;
  ASSERT_EQ(cmd_run(c, o, e), 0) << e.str();
  EXPECT_NE(o.str().find("microscope.aberrations.defocus"), std::string::npos);
  EXPECT_NE(o.str().find("estimate"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "none.h5"));
  fs::remove_all(dir);
}

TEST(Run, BuiltInQuickstartParses) {
  // The compiled-in text is scenarios/quickstart.yaml and validates (the README's command).
  std::ifstream in(std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/quickstart.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(builtin_quickstart_scenario(), ss.str());
  EXPECT_NO_THROW(check_physics_keys(parse_scenario_text(builtin_quickstart_scenario(), "quickstart.yaml")));
}
