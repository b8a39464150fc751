// FFT planning from stored FFTW wisdom: the plan is measured once per grid and wisdom file,
// later plans are rebuilt from the file alone, so the same file gives the same plan and the
// same bytes; a bad or unwritable file is reported, never fatal; concurrent processes merge.
// Every test uses its own temporary wisdom file (never the user's cache).
#include <gtest/gtest.h>
#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "stemtwin/core/fft.hpp"
#include "stemtwin/physics/engine.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {
/// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() /
           ("stemtwin-wisdom-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name = "wisdom") const { return (path / name).string(); }
};

std::string slurp(const std::string& f) {
  std::ifstream in(f);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A small SrTiO3-like column pair (Sr and Ti) in a 7.8 Å cell on 96² (an FFT size that few
/// other tests use, so the wisdom really is measured here).
Structure specimen() {
  Structure s;
  s.cell = {7.8, 7.8, 12.0};
  for (double z = 1.0; z < 12.0; z += 3.9) {
    s.atoms.push_back({38, 1.95, 1.95, z, 1.0, 0.0});
    s.atoms.push_back({22, 5.85, 5.85, z + 1.95, 1.0, 0.0});
  }
  return s;
}
const Grid kGrid(7.8, 7.8, 96, 96);
const std::vector<Detector> kDets = {AnnularDetector{"haadf", 60, 150}, AnnularDetector{"bf", 0, 10}};

StemResult run(const std::string& wisdom, FftPlanning planning = FftPlanning::Wisdom) {
  StemSettings st;
  st.potential.slice_thickness_A = 1.95;
  st.planning = planning;
  st.fftw_wisdom_file = wisdom;
  std::vector<Point2> pos;
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 4; ++i) pos.push_back({1.0 + 1.3 * i, 1.0 + 1.3 * j});
  return simulate_stem(specimen(), kGrid, ProbeOptics{}, pos, kDets, st);
}

void expect_bitwise_equal(const StemResult& a, const StemResult& b) {
  ASSERT_EQ(a.signals.size(), b.signals.size());
  for (std::size_t s = 0; s < a.signals.size(); ++s) {
    ASSERT_EQ(a.signals[s].values.size(), b.signals[s].values.size());
    for (std::size_t i = 0; i < a.signals[s].values.size(); ++i)
      EXPECT_EQ(a.signals[s].values[i], b.signals[s].values[i]) << a.signals[s].name << " " << i;  // exact
  }
}
}  // namespace

TEST(FftWisdom, PathPrecedenceSettingThenEnvironmentThenCache) {
  EXPECT_EQ(wisdom_file_path("/x/y"), "/x/y");
  const char* old = std::getenv("STEMTWIN_FFTW_WISDOM");
  const std::string saved = old ? old : "";
  ::setenv("STEMTWIN_FFTW_WISDOM", "/tmp/from-env", 1);
  EXPECT_EQ(wisdom_file_path(), "/tmp/from-env");
  ::unsetenv("STEMTWIN_FFTW_WISDOM");
  const std::string def = wisdom_file_path();
  EXPECT_NE(def.find("stemtwin/fftw-wisdom-fftw-3"), std::string::npos) << def;  // version and CPU in the name
  if (old) ::setenv("STEMTWIN_FFTW_WISDOM", saved.c_str(), 1);
}

TEST(FftWisdom, FirstPlanIsStoredAndLaterPlansComeFromTheFile) {
  const TempDir d;
  const std::string f = d.file("sub/dir/wisdom");  // directories are created
  std::string id1, text;
  {
    const Fft2 a(kGrid, FftPlanning::Wisdom, f);
    EXPECT_TRUE(a.warnings().empty()) << a.warnings().front();
    EXPECT_EQ(a.wisdom_file(), f);
    id1 = a.plan_id();
    EXPECT_EQ(id1.size(), 16u);
    text = slurp(f);
    EXPECT_NE(text.find("fftwf_wisdom"), std::string::npos);
  }
  const Fft2 b(kGrid, FftPlanning::Wisdom, f);
  EXPECT_EQ(b.plan_id(), id1);
  EXPECT_EQ(slurp(f), text) << "the second plan must not measure again";
  // No temporaries left behind by the atomic write.
  for (const auto& e : fs::recursive_directory_iterator(d.path))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(FftWisdom, SameWisdomGivesSameBytesAcrossRunsAndThreadCounts) {
  const TempDir d;
  const std::string f = d.file();
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const StemResult first = run(f);  // measures and stores the plan, then rebuilds it from the file
  omp_set_num_threads(1);
  const StemResult again = run(f);  // plan from the file only, as a later process would
  omp_set_num_threads(threads);
  EXPECT_FALSE(first.fft_plan.empty());
  EXPECT_EQ(first.fft_plan, again.fft_plan);
  expect_bitwise_equal(first, again);
}

TEST(FftWisdom, AgreesWithEstimatePlansWithinFloatRounding) {
  const TempDir d;
  const StemResult w = run(d.file());
  const StemResult e = run("", FftPlanning::Estimate);
  // Different FFT algorithms round differently in single precision; over 7 slices (14 FFTs of
  // 96²) the detector sums must still agree to float accuracy. Measured: max relative
  // difference 6.1e-6 over HAADF and BF here (AMD EPYC, FFTW 3.3.10). The bound 1e-4 is 16×
  // that, while a wrong plan or normalisation would be off by O(1).
  double worst = 0;
  for (std::size_t s = 0; s < w.signals.size(); ++s)
    for (std::size_t i = 0; i < w.signals[s].values.size(); ++i) {
      const double a = w.signals[s].values[i], b = e.signals[s].values[i];
      EXPECT_NEAR(a, b, 1e-4 * std::fabs(b)) << w.signals[s].name << " " << i;
      worst = std::max(worst, std::fabs(a - b) / std::fabs(b));
    }
  std::printf("max relative difference wisdom vs estimate: %.3g\n", worst);
}

TEST(FftWisdom, CorruptOrUnreadableFileIsIgnoredWithAWarningAndRewritten) {
  const TempDir d;
  const std::string f = d.file();
  std::ofstream(f) << "(fftw-3.3.10 fftwf_wisdom #x1234 garbage (((";
  const Fft2 a(kGrid, FftPlanning::Wisdom, f);
  ASSERT_FALSE(a.warnings().empty());
  EXPECT_NE(a.warnings().front().find("corrupt"), std::string::npos) << a.warnings().front();
  // Rewritten with valid wisdom: the next plan reads it without a warning, same plan.
  const Fft2 b(kGrid, FftPlanning::Wisdom, f);
  EXPECT_TRUE(b.warnings().empty());
  EXPECT_EQ(a.plan_id(), b.plan_id());
  // A truncated file (as a crash in another program might leave) is also only a warning.
  const std::string text = slurp(f);
  std::ofstream(f, std::ios::trunc) << text.substr(0, text.size() / 2);
  const Fft2 c(kGrid, FftPlanning::Wisdom, f);
  EXPECT_FALSE(c.warnings().empty());
  ComplexBuffer buf(kGrid.size());
  buf[3] = cfloat(1, 0);
  c.forward(buf.data());
  EXPECT_NEAR(std::abs(buf[5]), 1.0f, 1e-6f);  // a working transform
}

TEST(FftWisdom, UnwritableLocationStillPlansWithAWarning) {
  const TempDir d;
  std::ofstream(d.file("a-file")) << "x";
  const std::string f = d.file("a-file") + "/wisdom";  // a directory that cannot exist
  const Fft2 a(kGrid, FftPlanning::Wisdom, f);
  ASSERT_FALSE(a.warnings().empty());
  EXPECT_NE(a.warnings().back().find("could not"), std::string::npos) << a.warnings().back();
  EXPECT_EQ(a.plan_id().size(), 16u);
}

TEST(FftWisdom, ConcurrentProcessesMergeTheirWisdom) {
  const TempDir d;
  const std::string f = d.file();
  const Grid g1(7.8, 7.8, 100, 100), g2(7.8, 7.8, 108, 108);
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = ::fork();
    ASSERT_GE(kids[k], 0);
    if (kids[k] == 0) {  // child: plan one size, then leave without running test teardown
      const Fft2 a(k == 0 ? g1 : g2, FftPlanning::Wisdom, f);
      std::_Exit(a.warnings().empty() ? 0 : 1);
    }
  }
  for (pid_t k : kids) {
    int status = 0;
    ::waitpid(k, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  // Both sizes are in the file: planning them again reads it and writes nothing.
  const std::string text = slurp(f);
  const Fft2 a(g1, FftPlanning::Wisdom, f), b(g2, FftPlanning::Wisdom, f);
  EXPECT_TRUE(a.warnings().empty() && b.warnings().empty());
  EXPECT_EQ(slurp(f), text);
}

TEST(FftWisdom, EstimatePlansIgnoreWisdomInMemory) {
  // FFTW would serve an FFTW_ESTIMATE request from measured wisdom already in memory; the
  // Estimate mode must give the same plan whatever was planned before it in the process.
  const TempDir d;
  const Grid g(7.8, 7.8, 160, 160);
  const std::string before = Fft2(g, FftPlanning::Estimate).plan_id();
  const Fft2 w(g, FftPlanning::Wisdom, d.file());
  EXPECT_EQ(Fft2(g, FftPlanning::Estimate).plan_id(), before);
}
