// End to end: scenario → physics → read-out → labels → HDF5, through `stemtwin run`'s function.
#include <gtest/gtest.h>
#include <omp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

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

/// Runs `yaml` into dir/t1.h5 on 1 thread and dir/t2.h5 on 2 threads (OpenMP left at 2).
void run_on_one_and_two_threads(const std::string& yaml, const fs::path& dir) {
  RunCommand c;
  c.scenario = yaml;
  c.options.force = true;
  c.options.progress = false;
  c.options.handle_sigint = false;
  for (int threads : {1, 2}) {
    std::ostringstream o, e;
    c.threads = threads;
    c.options.output = (dir / ("t" + std::to_string(threads) + ".h5")).string();
    ASSERT_EQ(cmd_run(c, o, e), 0) << e.str();
  }
  omp_set_num_threads(2);
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
  // Both files name the FFT plan that made their bytes (root attribute fft_plan): the same
  // one (both samples share the lateral grid), 16 hex digits, also after the resume.
  const std::string pa = h5::read_attr_string(h5::open_file(a, false), "fft_plan");
  const std::string pb = h5::read_attr_string(h5::open_file(b, false), "fft_plan");
  EXPECT_EQ(pa, pb);
  EXPECT_EQ(pa.size(), 16u) << pa;
  EXPECT_EQ(pa.find_first_not_of("0123456789abcdef"), std::string::npos) << pa;
  fs::remove_all(dir);
}

TEST(Run, SameBytesOnOneAndTwoThreads) {
  const fs::path dir = scratch();
  run_on_one_and_two_threads(write_scenario(dir, kScenario), dir);
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
// A sample that fails while it is computed (here injected: the checks before a run refuse
// every failure they can foresee) ends the run with its reason; the samples before it stay
// in the file, on 1 and 2 threads (errors inside the parallel position loop are carried out
// of it: Stem.ASinkThatThrowsStopsTheScanWithItsError).
TEST(Run, SampleFailingMidRunIsAnErrorAndKeepsTheFile) {
  const fs::path dir = scratch();
  const std::string yaml = std::string(STEMTWIN_SOURCE_DIR) + "/tests/mpi/bad.yaml";
  ::setenv("STEMTWIN_FAIL_SAMPLE", "3", 1);
  std::string err;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    fs::remove(dir / "bad.h5");
    EXPECT_EQ(run(yaml, (dir / "bad.h5").string(), false, SIZE_MAX, &err), 1);
    EXPECT_NE(err.find("sample 3: failure injected"), std::string::npos) << err;
    const DatasetReader r((dir / "bad.h5").string());
    EXPECT_EQ(r.size(), 3u);
  }
  ::unsetenv("STEMTWIN_FAIL_SAMPLE");
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

// Issue #12: a structure file without displacement parameters, simulated with the defaults,
// is a static lattice — bit-identical to the physics run on the same atoms with rms = 0 —
// and a file's own rms column is ignored unless thermal vibration is asked for. With a
// `thermal` block the same file gives another (thermal) image.
TEST(Run, StaticLatticeUnlessThermalIsAsked) {
  const fs::path dir = scratch();
  // SrTiO3 [001], 2×2×3 cells, as XYZ without and with an rms column.
  Structure st;
  const double a = 3.905;
  st.cell = {2 * a, 2 * a, 3 * a};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) {
        st.atoms.push_back({38, i * a, j * a, k * a, 1, 0});
        st.atoms.push_back({22, (i + .5) * a, (j + .5) * a, (k + .5) * a, 1, 0});
        st.atoms.push_back({8, (i + .5) * a, (j + .5) * a, k * a, 1, 0});
        st.atoms.push_back({8, (i + .5) * a, j * a, (k + .5) * a, 1, 0});
        st.atoms.push_back({8, i * a, (j + .5) * a, (k + .5) * a, 1, 0});
      }
  auto write_xyz = [&](const std::string& name, bool with_rms) {
    std::ofstream f(dir / name);
    f << st.atoms.size() << "\nLattice=\"" << st.cell.x << " 0 0 0 " << st.cell.y << " 0 0 0 " << st.cell.z
      << "\" Properties=species:S:1:pos:R:3" << (with_rms ? ":rms:R:1" : "") << "\n";
    for (const Atom& at : st.atoms) {
      f << element_symbol(at.Z) << " " << at.x << " " << at.y << " " << at.z;
      if (with_rms) f << " 0.1";
      f << "\n";
    }
  };
  write_xyz("sto.xyz", false);
  write_xyz("sto_rms.xyz", true);
  const std::string base = R"(name: static
seed: 3
specimen:
  structure: STRUCTURE
THERMAL
microscope: {energy: 200e3, convergence: 20}
scan: {start: [0, 0], fov: [3.905, 3.905], pixels: [4, 4], dwell: 2}
detectors:
  - {name: haadf, type: annular, inner: 70, outer: 160}
  - {name: bf, type: annular, inner: 0, outer: 10}
simulation: {sampling: 0.08, slice_thickness: 1.9525}
)";
  auto scenario = [&](const std::string& file, const std::string& thermal) {
    std::string t = base;
    t.replace(t.find("STRUCTURE"), 9, file);
    t.replace(t.find("THERMAL"), 7, thermal);
    return t;
  };
  auto haadf = [&](const std::string& text, const std::string& name) {
    const std::string out = (dir / (name + ".h5")).string();
    std::string err;
    EXPECT_EQ(run(write_scenario(dir, text, name + ".yaml"), out, false, SIZE_MAX, &err), 0) << err;
    return DatasetReader(out).clean("haadf", 0).data;
  };
  // The same physics called directly on the static atoms.
  const SampledScenario s0 = sample_parameters(parse_scenario_text(scenario("sto.xyz", ""), (dir / "x.yaml").string()), 0);
  const StemResult direct = simulate_stem(st, simulation_grid(s0, st.cell), probe_optics(s0), s0.scan.positions(),
                                          physics_detectors(s0), stem_settings(s0));
  const Image want = direct.image("haadf", 4, 4);
  std::vector<double> want_f;  // as stored: float32
  for (double v : want.data) want_f.push_back(double(float(v)));

  EXPECT_EQ(haadf(scenario("sto.xyz", ""), "plain"), want_f);                  // default: static
  EXPECT_EQ(haadf(scenario("sto_rms.xyz", ""), "file_rms"), want_f);           // file rms unused by default
  EXPECT_EQ(haadf(scenario("sto.xyz", "  thermal: {rms: 0}"), "zero"), want_f);  // rms 0 = static
  const auto thermal = haadf(scenario("sto_rms.xyz", "  thermal: {configurations: 2}"), "thermal");
  EXPECT_NE(thermal, want_f);  // the file's rms, now asked for, displaces the atoms
  // Without any rms known for a compound, thermal vibration is refused with the element named.
  std::string err;
  EXPECT_EQ(run(write_scenario(dir, scenario("sto.xyz", "  thermal: {configurations: 2}"), "none.yaml"),
                (dir / "none.h5").string(), false, SIZE_MAX, &err),
            1);
  EXPECT_NE(err.find("no rms displacement is known for O, Ti, Sr"), std::string::npos) << err;
  fs::remove_all(dir);
}

namespace {
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  if (pos == std::string::npos) throw std::logic_error("test scenario has no '" + from + "'");
  return text.replace(pos, from.size(), to);
}
}  // namespace

// Windowed multislice streams no 4D patterns: a scenario asking for both is refused by
// `validate` and `run` before any file exists, naming the detector (issue #14).
TEST(Run, WindowedWithAPixelatedDetectorIsRefusedBeforeTheRun) {
  const fs::path dir = scratch();
  const std::string text = replaced(kScenario, "  slice_thickness: 1.9525\n", "  slice_thickness: 1.9525\n  method: windowed\n");
  const std::string yaml = write_scenario(dir, text, "windowed.yaml");
  try {
    check_run(parse_scenario_file(yaml));
    ADD_FAILURE() << "windowed + pixelated accepted";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.key(), "detectors.cam") << e.what();
    EXPECT_NE(std::string(e.what()).find("windowed"), std::string::npos) << e.what();
  }
  std::string err;
  EXPECT_EQ(run(yaml, (dir / "windowed.h5").string(), false, SIZE_MAX, &err), 1);
  EXPECT_FALSE(fs::exists(dir / "windowed.h5"));
  // Without the pixelated detector the windowed method is accepted.
  EXPECT_NO_THROW(check_run(parse_scenario_text(replaced(text, "  - {name: cam, type: pixelated, max_angle: 30}\n", ""), "w.yaml")));
  fs::remove_all(dir);
}

// Issue #12: PRISM with interpolation > 1 records on its window (L/f): the dataset's 4D
// shape must be the window's. Before, the first pattern block did not match the layout, the
// sink threw inside the parallel region and the process aborted.
TEST(Run, PrismWithInterpolationAndAPixelatedDetectorWorks) {
  const fs::path dir = scratch();
  const std::string text = replaced(kScenario, "  slice_thickness: 1.9525\n",
                                    "  slice_thickness: 1.9525\n  method: prism\n  interpolation: 2\n");
  const std::string yaml = write_scenario(dir, text), out = (dir / "prism.h5").string();
  std::string err;
  ASSERT_EQ(run(yaml, out, false, SIZE_MAX, &err), 0) << err;
  DatasetReader r(out);
  ASSERT_EQ(r.size(), 2u);
  const DiffractionLayout& d = r.layout().diffraction.at(0);
  EXPECT_EQ(r.diffraction_row("cam", 1, 5).size(), 6u * d.kx * d.ky);
  // 30 mrad on the 3.905 Å window at 200 kV: λ/L = 6.4 mrad per pixel, frequencies −4..4.
  EXPECT_EQ(d.kx, 9u);
  EXPECT_NEAR(d.sampling_x, 0.025079 / (7.81 / 2) * 1e3, 1e-3);
  fs::remove_all(dir);
}

// Issue #12: a 4D dataset holds one pattern shape; keys that change the lateral cell, the
// grid or the wavelength between samples are refused by validate (and run) naming the key,
// not found after sample 0 with the file half written.
TEST(Run, PixelatedDetectorRefusesVaryingLateralCellAtValidation) {
  const fs::path dir = scratch();
  struct Case {
    std::string from, to, key;
  };
  const Case cases[] = {
      {"repeat: [2, 2, {sweep: [1, 2]}]", "repeat: [{sweep: [1, 2]}, 2, 1]", "specimen.repeat[0]"},
      {"repeat: [2, 2, {sweep: [1, 2]}]", "repeat: [2, {choice: [1, 2]}, 1]", "specimen.repeat[1]"},
      {"  energy: 200e3\n", "  energy: {uniform: [190e3, 210e3]}\n", "microscope.energy"},
      {"    a: 3.905\n", "    a: {uniform: [3.9, 4.0]}\n", "specimen.builder.a"},
  };
  for (const Case& c : cases) {
    const std::string yaml = write_scenario(dir, replaced(kScenario, c.from, c.to), "varying.yaml");
    const ScenarioSpec spec = parse_scenario_file(yaml);
    EXPECT_NO_THROW(check_physics_keys(spec));  // a session, which uses sample 0 only, may
    try {
      check_run(spec);  // what `validate` and `run` call
      ADD_FAILURE() << c.key << " accepted";
    } catch (const ScenarioError& e) {
      EXPECT_EQ(e.key(), c.key) << e.what();
      EXPECT_NE(std::string(e.what()).find("pixelated detector 'cam'"), std::string::npos) << e.what();
      EXPECT_GT(e.line(), 0) << e.what();
    }
    std::string err;
    EXPECT_EQ(run(yaml, (dir / "varying.h5").string(), false, SIZE_MAX, &err), 1);
    EXPECT_NE(err.find(c.key), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(dir / "varying.h5"));
    const std::string cli = std::string(STEMTWIN_BINARY_DIR) + "/stemtwin";
    if (fs::exists(cli))  // the command itself: `stemtwin validate` exits 1
      EXPECT_NE(std::system((cli + " validate " + yaml + " >/dev/null 2>&1").c_str()), 0) << c.key;
  }
  // Without the pixelated detector the same sweep is fine.
  const std::string no4d = replaced(replaced(kScenario, "repeat: [2, 2, {sweep: [1, 2]}]", "repeat: [{sweep: [1, 2]}, 2, 1]"),
                                    "  - {name: cam, type: pixelated, max_angle: 30}\n", "");
  EXPECT_NO_THROW(check_run(parse_scenario_text(no4d, "no4d.yaml")));
  fs::remove_all(dir);
}

// Issue #12: every draw is checked before the file is created; a later sample's impossible
// acquisition setting used to fail the run after the file was made.
TEST(Run, EveryDrawIsCheckedBeforeTheFileIsCreated) {
  // A distribution some of whose draws are impossible (a negative jitter) is refused before
  // any sample is computed and before the file exists: every value a distribution can draw
  // is checked against the key's range when the file is read (before, only sample 0 was).
  const fs::path dir = scratch();
  std::string text = replaced(kScenario, "samples: 1\n", "samples: 8\n");
  text = replaced(text, "  noise: true\n", "  noise: true\n  jitter: {rms_A: {uniform: [-0.5, 1]}}\n");
  const std::string yaml = write_scenario(dir, text, "draws.yaml");
  std::string err;
  EXPECT_EQ(run(yaml, (dir / "draws.h5").string(), false, SIZE_MAX, &err), 1);
  EXPECT_NE(err.find("acquisition.jitter.rms_A"), std::string::npos) << err;
  EXPECT_NE(err.find("draws.yaml:"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir / "draws.h5"));
  fs::remove_all(dir);
}

// Issue #12: sizes are estimated arithmetically before anything of that size is allocated,
// and a run that cannot fit is refused with the numbers before any file is touched. Each
// case runs in a child limited to 2 GiB of address space (the test binary and its threads
// need a few hundred MiB): before, the pre-check or the layout itself allocated gigabytes
// (slice boundaries, radial bin edges, atoms, images) and the run ended in std::bad_alloc.
TEST(Run, OversizedRunsAreRefusedWithTheNumbersBeforeAnyAllocation) {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer's shadow memory and quarantine change resident and address-space sizes
  // by hundreds of MiB: measured peaks and rlimits mean nothing there. The Release pass runs it.
  GTEST_SKIP() << "memory measurements under AddressSanitizer";
#endif
  const fs::path dir = scratch();
  struct Case {
    std::string from, to, expect;
  };
  // Every value is inside its range (the range table refuses 1e-9 Å slices, 1e5 rings or
  // 1e5 pixels by key before this: ScenarioHardening.AbsurdValuesAreRefusedWithTheirRange);
  // together they still need far more memory than 512 MiB.
  const Case cases[] = {
      {"repeat: [2, 2, {sweep: [1, 2]}]", "repeat: [10, 10, {sweep: [100, 200]}]", "needs about"},
      {"repeat: [2, 2, {sweep: [1, 2]}]", "repeat: [60, 60, {sweep: [50, 100]}]", "needs about"},
      {"  pixels: [6, 6]\n", "  pixels: [4096, 4096]\n", "detector signals"},
  };
  // Without the pixelated detector: the repeat and pixel cases must reach the estimate (a 4D
  // dataset would refuse nothing here, but its rows of 100000 patterns are a case of their own).
  const std::string base = replaced(kScenario, "  - {name: cam, type: pixelated, max_angle: 30}\n", "");
  for (const Case& c : cases) {
    const std::string yaml = write_scenario(dir, replaced(base, c.from, c.to), "huge.yaml");
    const std::string out = (dir / "huge.h5").string();
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(120);  // a run that was not refused would take for ever: end it
      const rlimit limit{std::size_t(2) << 30, std::size_t(2) << 30};
      setrlimit(RLIMIT_AS, &limit);
      RunCommand cmd;
      cmd.scenario = yaml;
      cmd.options.output = out;
      cmd.options.progress = false;
      cmd.options.handle_sigint = false;
      cmd.threads = 2;
      cmd.memory_budget_bytes = std::size_t(512) << 20;  // the same refusal on any machine
      std::ostringstream o, e;
      const int code = cmd_run(cmd, o, e);
      const std::string msg = e.str();
      const bool ok = code == 1 && msg.find("needs about") != std::string::npos &&
                      msg.find("MiB are available") != std::string::npos && msg.find(c.expect) != std::string::npos &&
                      !fs::exists(out);
      if (!ok) std::fprintf(stderr, "[%s] code %d: %s\n", c.to.substr(0, 60).c_str(), code, msg.substr(0, 600).c_str());
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << c.to.substr(0, 60);
  }
  fs::remove_all(dir);
}

// Issue #12: `bench_engine --help` ran the whole benchmark (minutes); both benchmarks now
// print their usage and exit, and refuse arguments they do not know.
TEST(Run, BenchmarksPrintUsageForHelp) {
  for (const char* name : {"bench_engine", "bench_dataset", "bench_series"}) {
    const std::string bin = std::string(STEMTWIN_BINARY_DIR) + "/" + name;
    if (!fs::exists(bin)) GTEST_SKIP() << name << " not built (STEMTWIN_BENCH=OFF)";
    // 30 s: usage is instant; the benchmark itself takes minutes, so a timeout means it ran.
    FILE* p = popen(("timeout 30 " + bin + " --help 2>&1").c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string text;
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) text += buf;
    const int status = pclose(p);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << name << ": " << text;
    EXPECT_EQ(text.rfind(std::string("usage: ") + name, 0), 0u) << text;
    EXPECT_EQ(text.find("\nBENCH "), std::string::npos) << text;  // no measurement ran
    EXPECT_EQ(WEXITSTATUS(std::system(("timeout 30 " + bin + " --frobnicate >/dev/null 2>&1").c_str())), 2) << name;
  }
}

// Issue #12: with thermal vibration a dataset stores how converged the frozen-phonon average
// is: /params/<annular detector>_phonon_sem, the standard error of the detector's field mean
// across configurations; identical on 1 and 2 threads; the images are that same average.
TEST(Run, PhononStandardErrorIsStoredPerSample) {
  const fs::path dir = scratch();
  const std::string text = R"(name: sem
seed: 2
samples: 2
specimen:
  builder: {type: perovskite, a: 3.905, A: {Sr: 1}, B: {Ti: 1}}
  repeat: [1, 1, 3]
  thermal: {rms: {Sr: 0.08, Ti: 0.065, O: 0.085}, configurations: 6}
microscope: {energy: 200e3, convergence: 20}
scan: {start: [0, 0], fov: [3.905, 3.905], pixels: [4, 4], dwell: 2}
detectors:
  - {name: haadf, type: annular, inner: 60, outer: 80}
  - {name: bf, type: annular, inner: 0, outer: 10}
simulation: {sampling: 0.1, slice_thickness: 1.9525}
)";
  run_on_one_and_two_threads(write_scenario(dir, text, "sem.yaml"), dir);
  const DatasetReader r1((dir / "t1.h5").string()), r2((dir / "t2.h5").string());
  const auto sem = r1.param("haadf_phonon_sem");
  ASSERT_EQ(sem.size(), 2u);
  EXPECT_EQ(sem, r2.param("haadf_phonon_sem"));
  EXPECT_EQ(r1.clean("haadf", 1).data, r2.clean("haadf", 1).data);
  for (std::size_t i = 0; i < 2; ++i) {
    const Image h = r1.clean("haadf", i);
    double mean = 0;
    for (double v : h.data) mean += v / double(h.size());
    // Six configurations of 0.065–0.085 Å displacements: a spread of a few per cent of the
    // mean (SEM > 0), far below the mean itself.
    EXPECT_GT(sem[i], 0.0);
    EXPECT_LT(sem[i], 0.2 * mean);
  }
  EXPECT_GT(r1.param("bf_phonon_sem")[0], 0.0);
  fs::remove_all(dir);
}
