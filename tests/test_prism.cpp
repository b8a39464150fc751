// PRISM against multislice: f = 1 must agree to float precision; f > 1 is reported.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/engine.hpp"

using namespace stemtwin;

namespace {
/// SrTiO3 [001]: n × n × m cells, a = 3.905 Å.
Structure srtio3(int n, int m, double rms = 0) {
  PerovskiteParams p;
  p.repeats = {n, n, m};
  Structure s = build_perovskite(p, 0).structure;
  for (Atom& a : s.atoms) a.rms = rms;
  return s;
}
double max_rel(const std::vector<double>& a, const std::vector<double>& b) {
  double e = 0, m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(a[i] - b[i])), m = std::max(m, std::fabs(b[i]));
  return e / m;
}
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}
}  // namespace

TEST(Prism, InterpolationOneEqualsMultislice) {
  const Structure s = srtio3(2, 3, 0.08);
  const Grid g(s.cell.x, s.cell.y, 96, 96);  // 0.081 Å
  ProbeOptics o;
  o.aberrations.set("defocus", 20);
  StemSettings st;
  st.potential.slice_thickness_A = 3.905 / 2;
  st.phonon_configurations = 2;
  st.seed = 5;
  st.depths_A = {3.905, 3 * 3.905};
  std::vector<Point2> pos;
  for (int i = 0; i < 6; ++i) pos.push_back({0.3 + 0.61 * i, 1.1 + 0.23 * i});
  const std::vector<Detector> d = {AnnularDetector{"haadf", 50, 120}, AnnularDetector{"bf", 0, 20}, ComDetector{"com"},
                                   RadialDetector{"radial", 2, 0}};
  const StemResult ms = simulate_stem(s, g, o, pos, d, st);
  st.method = Method::Prism;
  const StemResult pr = simulate_stem(s, g, o, pos, d, st);
  ASSERT_EQ(pr.depths_A, ms.depths_A);
  for (std::size_t k = 0; k < 2; ++k)
    for (const char* name : {"haadf", "bf", "radial"}) {
      const double e = max_rel(pr.signal(name, k).values, ms.signal(name, k).values);
      std::printf("PRISM f=1 vs multislice %s depth %zu: max rel diff %.2e\n", name, k, e);
      // Same arithmetic in another order (a sum over ~100 beams instead of one wave): float
      // round-off, ~1e-6 of the largest value in each signal.
      EXPECT_LT(e, 2e-6) << name;
    }
  // COM (mrad) compared against its own magnitude.
  EXPECT_LT(max_rel(pr.signal("com").values, ms.signal("com").values), 1e-4);
}

TEST(Prism, InterpolationTwoIsCloseOnALargerCell) {
  // f = 2 crops the probe to half the cell: accurate when the cell is several probe widths
  // wide. Measured error reported; bound 5 % of the mean signal here (6 × 6 cells, thin).
  const Structure s = srtio3(6, 2);
  const Grid g(s.cell.x, s.cell.y, 240, 240);  // 0.098 Å
  ProbeOptics o;
  StemSettings st;
  st.potential.slice_thickness_A = 3.905 / 2;
  std::vector<Point2> pos;
  for (int i = 0; i < 5; ++i) pos.push_back({8.0 + 0.4 * i, 8.1 + 0.3 * i});
  const std::vector<Detector> d = {AnnularDetector{"haadf", 50, 110}, AnnularDetector{"bf", 0, 15}};
  const StemResult ms = simulate_stem(s, g, o, pos, d, st);
  st.method = Method::Prism;
  st.interpolation_x = st.interpolation_y = 2;
  const StemResult pr = simulate_stem(s, g, o, pos, d, st);
  for (const char* name : {"haadf", "bf"}) {
    const double rel = std::fabs(mean(pr.signal(name).values) / mean(ms.signal(name).values) - 1);
    std::printf("PRISM f=2 vs multislice %s: mean rel error %.3f%%\n", name, 100 * rel);
    EXPECT_LT(rel, 0.05) << name;
  }
}

TEST(Prism, RefusesWhenTheSMatrixWouldNotFit) {
  const Structure s = srtio3(2, 1);
  const Grid g(s.cell.x, s.cell.y, 96, 96);
  ProbeOptics o;
  StemSettings st;
  st.method = Method::Prism;
  st.max_memory_bytes = 1 << 20;  // 1 MiB: far too little
  try {
    simulate_stem(s, g, o, {{1, 1}}, {AnnularDetector{"bf", 0, 20}}, st);
    FAIL() << "expected a refusal";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("MiB"), std::string::npos);
  }
  st.max_memory_bytes = 0;
  st.interpolation_x = 5;  // 96 is not divisible by 5
  EXPECT_THROW(simulate_stem(s, g, o, {{1, 1}}, {AnnularDetector{"bf", 0, 20}}, st), std::invalid_argument);
}

TEST(Prism, DefocusSeriesReusesTheSMatrix) {
  // The same S-matrix gives different images for different defocus, and defocus 0 again
  // reproduces the first result exactly.
  const Structure s = srtio3(2, 2);
  const Grid g(s.cell.x, s.cell.y, 96, 96);
  const Fft2 fft(g);
  StemSettings st;
  st.potential.slice_thickness_A = 3.905 / 2;
  const Transmission t = transmission_functions(build_potential(s, g, st.potential), 200e3, fft);
  const std::vector<SMatrix> S = {build_smatrix(t, 20, 1, 1, {}, fft)};
  ProbeOptics o;
  const std::vector<Detector> d = {AnnularDetector{"haadf", 50, 120}};
  const auto a = scan_prism(S, o, {{0.1, 0.1}, {1.9, 1.9}}, d, st).signal("haadf").values;
  o.aberrations.set("defocus", 80);
  const auto b = scan_prism(S, o, {{0.1, 0.1}, {1.9, 1.9}}, d, st).signal("haadf").values;
  o.aberrations.set("defocus", 0);
  const auto c = scan_prism(S, o, {{0.1, 0.1}, {1.9, 1.9}}, d, st).signal("haadf").values;
  EXPECT_NE(a, b);
  EXPECT_EQ(a, c);
}

TEST(Prism, GroupedWindowsAgreeWithCentredWindows) {
  // Positions sharing one window per 0.5 Å cell (one matrix product per group) against a
  // window centred on every position: the probe built from the coarse beams repeats with the
  // window's period, so an off-centre crop only moves what wraps around — measured ~1e-6 here;
  // bound 1e-4, far below PRISM's own interpolation error (0.7 %, test above).
  const Structure s = srtio3(6, 1);
  const Grid g(s.cell.x, s.cell.y, 240, 240);
  ProbeOptics o;
  StemSettings st;
  st.potential.slice_thickness_A = 3.905 / 2;
  st.method = Method::Prism;
  st.interpolation_x = st.interpolation_y = 2;
  std::vector<Point2> pos;
  for (int i = 0; i < 12; ++i) pos.push_back({8.0 + 0.13 * i, 8.1 + 0.07 * i});
  const std::vector<Detector> d = {AnnularDetector{"haadf", 50, 110}, AnnularDetector{"bf", 0, 15}};
  const StemResult grouped = simulate_stem(s, g, o, pos, d, st);
  st.prism_block_A = 0;
  const StemResult centred = simulate_stem(s, g, o, pos, d, st);
  for (const char* name : {"haadf", "bf"}) {
    const double e = max_rel(grouped.signal(name).values, centred.signal(name).values);
    std::printf("PRISM grouped vs centred windows %s: max rel diff %.2e\n", name, e);
    EXPECT_LT(e, 1e-4) << name;
  }
}
