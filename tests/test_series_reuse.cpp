// Defocus series in the dataset runner (series_reuse.hpp, issue #14): samples that differ only
// in defocus share one PRISM S-matrix, and the file is byte for byte the one a sample-by-sample
// run writes, also when the run is interrupted and resumed inside a series.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <numeric>
#include <sstream>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/scenario/series_reuse.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  const fs::path d = fs::temp_directory_path() / ("stemtwin_test_series_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// SrTiO3 2×2×2 cells, 4×4 positions, PRISM f = 2: a defocus sweep of 3 values × 2 replicates,
// with noise (keyed by the sample index, so replicates differ) and every non-4D detector.
std::string scenario(const std::string& extra_specimen = "", const std::string& method = "prism") {
  return "name: series\nseed: 11\nsamples: 2\nspecimen:\n  builder: {type: perovskite, a: 3.905}\n  repeat: [2, 2, 2]\n" +
         extra_specimen +
         "microscope:\n  energy: 200e3\n  convergence: 20\n  current: 20\n"
         "  aberrations: {defocus: {sweep: [-40, 0, 25]}, C30: 1000}\n"
         "scan: {start: [0, 0], fov: [3.905, 3.905], pixels: [4, 4], dwell: 2}\n"
         "detectors:\n  - {name: haadf, type: annular, inner: 60, outer: 150}\n"
         "  - {name: radial, type: radial, step: 10}\n  - {name: dpc, type: segmented, rings: [5, 20], segments: 4}\n"
         "  - {name: com, type: com}\n"
         "simulation: {sampling: 0.1, slice_thickness: 1.9525, method: " + method +
         (method == "prism" ? ", interpolation: 2}\n" : "}\n") + "acquisition: {noise: true}\nlabels: {columns: true, masks: [columns]}\noutput: {file: series.h5}\n";
}

int run(const std::string& yaml, const std::string& out, bool reuse, bool resume = false, std::size_t max_samples = SIZE_MAX) {
  RunCommand c;
  c.scenario = yaml;
  c.series_reuse = reuse;
  c.options.output = out;
  c.options.force = !resume;
  c.options.resume = resume;
  c.options.max_samples = max_samples;
  c.options.progress = false;
  c.options.handle_sigint = false;
  std::ostringstream o, e;
  const int code = cmd_run(c, o, e);
  EXPECT_EQ(code, 0) << e.str();
  return code;
}

/// Every image, clean image, radial profile and parameter of every sample, and the fft_plan.
void expect_same_bytes(const std::string& a, const std::string& b) {
  const DatasetReader ra(a), rb(b);
  ASSERT_EQ(ra.size(), rb.size());
  ASSERT_GT(ra.size(), 0u);
  for (std::size_t i = 0; i < ra.size(); ++i) {
    for (const std::string& ch : ra.detectors()) {
      EXPECT_EQ(ra.image(ch, i).data, rb.image(ch, i).data) << ch << " sample " << i;
      EXPECT_EQ(ra.clean(ch, i).data, rb.clean(ch, i).data) << ch << " sample " << i;
    }
    EXPECT_EQ(ra.radial("radial", i), rb.radial("radial", i)) << i;
  }
  for (const std::string& p : ra.param_names()) {
    const std::vector<double> pa = ra.param(p), pb = rb.param(p);
    ASSERT_EQ(pa.size(), pb.size()) << p;
    for (std::size_t i = 0; i < pa.size(); ++i)  // bitwise, NaN included
      EXPECT_EQ(std::memcmp(&pa[i], &pb[i], sizeof(double)), 0) << p << " sample " << i;
  }
  EXPECT_EQ(h5::read_attr_string(h5::open_file(a, false), "fft_plan"),
            h5::read_attr_string(h5::open_file(b, false), "fft_plan"));
}

}  // namespace

TEST(SeriesReuse, GroupsOnlySamplesThatDifferInDefocus) {
  const fs::path dir = scratch();
  const std::string yaml = (dir / "s.yaml").string();
  std::vector<std::size_t> all(6);
  std::iota(all.begin(), all.end(), 0);
  // Replicates and sweep values alike: one S-matrix for all six (a cap splits them).
  std::ofstream(yaml) << scenario();
  const ScenarioSpec spec = parse_scenario_file(yaml);
  EXPECT_EQ(defocus_series_groups(spec, all), (std::vector<std::vector<std::size_t>>{{0, 1, 2, 3, 4, 5}}));
  EXPECT_EQ(defocus_series_groups(spec, all, 4), (std::vector<std::vector<std::size_t>>{{0, 1, 2, 3}, {4, 5}}));
  // A shard's or a resumed run's pending list is grouped as given.
  const std::vector<std::size_t> odd = {1, 3, 5};
  EXPECT_EQ(defocus_series_groups(spec, odd), (std::vector<std::vector<std::size_t>>{{1, 3, 5}}));
  // Not grouped: displaced atoms (the phonon stream is the sample's), method auto, and a
  // convergence angle that varies with the defocus.
  const std::vector<std::vector<std::size_t>> singles = {{0}, {1}, {2}, {3}, {4}, {5}};
  for (const std::string& text :
       {scenario("  thermal: {rms: 0.08, configurations: 1}\n"), scenario("", "auto"),
        [] {
          std::string t = scenario();
          t.replace(t.find("convergence: 20"), 15, "convergence: {uniform: [19, 21]}");
          return t;
        }()}) {
    std::ofstream(yaml) << text;
    EXPECT_EQ(defocus_series_groups(parse_scenario_file(yaml), all), singles) << text;
  }
  fs::remove_all(dir);
}

TEST(SeriesReuse, SameBytesAsSampleBySampleAlsoAfterResume) {
  const fs::path dir = scratch();
  const std::string yaml = (dir / "s.yaml").string();
  std::ofstream(yaml) << scenario();
  const std::string one = (dir / "one_by_one.h5").string(), reused = (dir / "reused.h5").string(),
                    resumed = (dir / "resumed.h5").string();
  ASSERT_EQ(run(yaml, one, false), 0);
  ASSERT_EQ(run(yaml, reused, true), 0);
  expect_same_bytes(one, reused);
  // Interrupted inside the series (after 2 of 6) and resumed: the rest is a new group.
  ASSERT_EQ(run(yaml, resumed, true, false, 2), 0);
  EXPECT_EQ(DatasetReader(resumed).size(), 2u);
  ASSERT_EQ(run(yaml, resumed, true, true), 0);
  expect_same_bytes(one, resumed);
  // The comparison can fail: the defocus changes the images.
  const DatasetReader r(one);
  EXPECT_NE(r.clean("haadf", 0).data, r.clean("haadf", 2).data);
  fs::remove_all(dir);
}

TEST(ResumeFftPlan, RefusesAFileWrittenWithAnotherPlanNamingBoth) {
  const fs::path dir = scratch();
  const std::string yaml = (dir / "s.yaml").string();
  std::ofstream(yaml) << scenario();
  const std::string out = (dir / "p.h5").string();
  ASSERT_EQ(run(yaml, out, true, false, 2), 0);
  {  // as if written on a machine whose FFTW chose another plan
    h5::Handle f = h5::open_file(out, true);
    h5::write_attr(f, "fft_plan", std::string("00000000deadbeef/00000000deadbeef"));
  }
  RunCommand c;
  c.scenario = yaml;
  c.options.output = out;
  c.options.resume = true;
  c.options.progress = false;
  c.options.handle_sigint = false;
  std::ostringstream o, e;
  EXPECT_EQ(cmd_run(c, o, e), 1);
  const std::string msg = e.str();
  EXPECT_NE(msg.find("00000000deadbeef/00000000deadbeef"), std::string::npos) << msg;
  EXPECT_NE(msg.find("this machine plans "), std::string::npos) << msg;
  EXPECT_EQ(DatasetReader(out).size(), 2u);  // the file is left as it was
  // With the plan it was written with, the same file resumes.
  const std::string good = (dir / "good.h5").string();
  ASSERT_EQ(run(yaml, good, true, false, 2), 0);
  ASSERT_EQ(run(yaml, good, true, true), 0);
  EXPECT_EQ(DatasetReader(good).size(), 6u);
  fs::remove_all(dir);
}
