// PRISM defocus series from one S-matrix build: every member equals a separate run.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "stemtwin/physics/prism_series.hpp"
#include "stemtwin/specimen/builders.hpp"

using namespace stemtwin;

namespace {
Structure srtio3(int n, int m, double rms) {
  PerovskiteParams p;
  p.repeats = {n, n, m};
  Structure s = build_perovskite(p, 0).structure;
  for (Atom& a : s.atoms) a.rms = rms;
  return s;
}
}  // namespace

TEST(PrismSeries, EveryDefocusEqualsASeparateRun) {
  // Exact, not approximate: the defocus enters only the beam coefficients, so the series'
  // members must be the same bytes as separate simulate_prism runs (which each rebuild the
  // S-matrices, with the same seeds and plan). Two phonon configurations and two depths
  // exercise every loop; the members must also differ (else defocus would be ignored).
  const Structure s = srtio3(2, 2, 0.08);
  const Grid g(s.cell.x, s.cell.y, 80, 80);  // f = 2 divides 80
  ProbeOptics o;
  o.aberrations.set("Cs", 1e4);
  StemSettings st;
  st.method = Method::Prism;
  st.interpolation_x = st.interpolation_y = 2;
  st.potential.slice_thickness_A = 3.905 / 2;
  st.phonon_configurations = 2;
  st.seed = 11;
  st.depths_A = {3.905, 2 * 3.905};
  st.planning = FftPlanning::Estimate;
  const std::vector<Point2> pos = {{0.2, 0.3}, {1.0, 1.9}, {2.7, 0.8}, {3.4, 3.1}};
  const std::vector<Detector> d = {AnnularDetector{"adf", 40, 100}, AnnularDetector{"bf", 0, 10}, ComDetector{"com"}};
  const std::vector<double> defoci = {-40, 0, 60};
  const std::vector<StemResult> series = simulate_prism_defocus_series(s, g, o, defoci, pos, d, st);
  ASSERT_EQ(series.size(), defoci.size());
  for (std::size_t i = 0; i < defoci.size(); ++i) {
    ProbeOptics oi = o;
    oi.aberrations.set("defocus", defoci[i]);
    const StemResult one = simulate_prism(s, g, oi, pos, d, st);
    EXPECT_EQ(series[i].fft_plan, one.fft_plan);
    for (std::size_t k = 0; k < 2; ++k)
      for (const char* name : {"adf", "bf", "com"})
        EXPECT_EQ(series[i].signal(name, k).values, one.signal(name, k).values) << name << " defocus " << defoci[i];
  }
  EXPECT_NE(series[0].signal("bf").values, series[2].signal("bf").values);
  EXPECT_NE(series[1].signal("adf").values, series[2].signal("adf").values);
}

TEST(PrismSeries, PartitionedMembersEqualSeparateRunsToo) {
  const Structure s = srtio3(2, 1, 0);
  const Grid g(s.cell.x, s.cell.y, 80, 80);
  ProbeOptics o;
  StemSettings st;
  st.method = Method::Prism;
  st.prism_partitioned = true;
  st.interpolation_x = st.interpolation_y = 2;
  st.potential.slice_thickness_A = 3.905 / 2;
  st.planning = FftPlanning::Estimate;
  const std::vector<Point2> pos = {{0.2, 0.3}, {2.7, 0.8}};
  const std::vector<Detector> d = {AnnularDetector{"adf", 40, 100}};
  const std::vector<double> defoci = {0, 50};
  const std::vector<StemResult> series = simulate_prism_defocus_series(s, g, o, defoci, pos, d, st);
  for (std::size_t i = 0; i < defoci.size(); ++i) {
    ProbeOptics oi = o;
    oi.aberrations.set("defocus", defoci[i]);
    EXPECT_EQ(series[i].signal("adf").values, simulate_prism(s, g, oi, pos, d, st).signal("adf").values) << defoci[i];
  }
  EXPECT_NE(series[0].signal("adf").values, series[1].signal("adf").values);
}

TEST(PrismSeries, RefusesBadListsBeforeAnyWork) {
  const Structure s = srtio3(1, 1, 0);
  const Grid g(s.cell.x, s.cell.y, 40, 40);
  StemSettings st;
  const std::vector<Detector> d = {AnnularDetector{"adf", 40, 100}};
  EXPECT_THROW(simulate_prism_defocus_series(s, g, ProbeOptics{}, {}, {{0, 0}}, d, st), std::invalid_argument);
  try {
    simulate_prism_defocus_series(s, g, ProbeOptics{}, {0, std::numeric_limits<double>::quiet_NaN()}, {{0, 0}}, d, st);
    FAIL() << "a NaN defocus was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("defocus[1]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(simulate_prism_defocus_series(s, g, ProbeOptics{}, {0}, {{0, 0}}, {PixelatedDetector{"cam", 30, 1}}, st),
               std::invalid_argument);
}
