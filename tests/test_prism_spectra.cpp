// EDS/EELS on PRISM (prism.hpp, SliceObserver::read_pixels / observe_intensities,
// docs/spectroscopy.md §7a): the S-matrix keeps every plane wave at the pixels of the atoms'
// footprints, slice by slice, and each position's intensities there are the same beam sum
// as its exit wave.
//
// Error budget. At f = 1 PRISM is multislice (the beam sum over every plane wave in the
// aperture is the probe, the window is the whole cell): the recorder's values may differ only
// by float round-off of two different orders of summation (multislice: FFTs of the probe; PRISM:
// a sum of ~300 single-precision plane-wave products per pixel): at most ~√300·ε ≈ 1e-6
// relative per pixel, less once averaged over footprints and atoms. Bound: 1e-5 of each
// element's largest value (measured ≤ 4e-8; tests/test_prism.cpp holds the f = 1 detector
// signals to 1e-4 for the same reason). At f = 2 the probe is cut to a window
// of half the cell: the recorded intensities are the window's wave inside the specimen, the
// same wave (and the same cut) that PRISM's detectors read at the exit. So they are held to
// the error budget PRISM's images are held to (ErrorBudget's defaults, the budget of method
// auto: mean within 1 %, correlation ≥ 0.995 over the positions), which the images of the case
// are first checked to meet (measured: BF 0.91 %, HAADF 0.36 %; spectra Sr 0.51 %, Ti 0.51 %,
// O 0.80 %, correlations 1.000000). The spectra are not always better than the images: they
// sum the probe's tails over every atom of the cell, which the window cuts (0 outside) and
// aliases (its periodic images inside), so on a thin specimen where the tails matter more
// they can be the worse measure (AutoCalibratesPrismOnTheRecorder: detectors 4.2 %, recorder
// 5.5 % at f = 2), which is why auto measures both.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "auto_fixtures.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/spectroscopy.hpp"
#include "stemtwin/specimen/builders.hpp"

using namespace stemtwin;

namespace {

const std::vector<Detector> kDetectors = {AnnularDetector{"bf", 0, 10}, AnnularDetector{"haadf", 50, 80}};

/// SrTiO3 [001], n × n × nz cells, every atom vibrating with rms 0.08 Å.
Structure hot_srtio3(int n, int nz) {
  Structure s = test::srtio3(n, nz);
  for (Atom& a : s.atoms) a.rms = 0.08;
  return s;
}

StemSettings settings(Method m, std::size_t f) {
  StemSettings st;
  st.method = m;
  st.planning = FftPlanning::Estimate;
  st.potential.slice_thickness_A = 1.9525;
  st.phonon_configurations = 2;
  st.seed = 5;
  st.interpolation_x = st.interpolation_y = f;
  return st;
}

/// A footprint of 0.2 Å for every element but O, which is read as a δ (bilinear): both
/// kinds of footprint go through PRISM's pixel lists.
InelasticSettings footprints() {
  InelasticSettings in;
  in.width_A = 0.2;
  in.element_width_A = {{8, 0.0}};
  return in;
}

using test::mean;
using test::pearson;

}  // namespace

TEST(PrismSpectra, FactorOneEqualsMultislice) {
  // Frozen phonons (2 configurations) and focal spread (3 nodes): every pass's weight and
  // every configuration's displaced atoms must line up with multislice's.
  const Structure s = hot_srtio3(3, 4);
  const Grid g(s.cell.x, s.cell.y, 120, 120);
  ProbeOptics o;  // 200 kV, 20 mrad
  o.focal_spread_A = 30;
  o.focal_spread_points = 3;
  const auto pos = ScanGrid::from_fov({0, 0}, 3.905, 3.905, 3, 3).positions();
  InelasticRecorder ms(s, 5, footprints()), pr(s, 5, footprints());
  simulate_stem(s, g, o, pos, kDetectors, settings(Method::Multislice, 1), nullptr, &ms);
  const StemResult r = simulate_stem(s, g, o, pos, kDetectors, settings(Method::Prism, 1), nullptr, &pr);
  EXPECT_EQ(r.method, "prism");
  const ElementIntensity &a = ms.result(), &b = pr.result();
  ASSERT_EQ(a.elements, b.elements);
  ASSERT_EQ(a.values.size(), b.values.size());
  for (int Z : a.elements) {
    double top = 0, worst = 0;
    for (std::size_t p = 0; p < pos.size(); ++p) top = std::max(top, a.at(p, Z));
    for (std::size_t p = 0; p < pos.size(); ++p) worst = std::max(worst, std::fabs(b.at(p, Z) - a.at(p, Z)));
    std::printf("Z=%d PRISM f=1 vs multislice: worst |Δ| %.2e of the element's largest value %.4f /Å²\n", Z, worst / top, top);
    EXPECT_GT(top, 0) << Z;
    EXPECT_LT(worst, 1e-5 * top) << Z;
  }
}

TEST(PrismSpectra, FactorTwoWithinPrismsImageBudget) {
  // A case unlike the one above (not used to tune anything): 300 kV, 25 mrad, in focus, a static 6 × 6 × 4-cell SrTiO3 (15.6 Å), 16 positions over a unit cell away
  // from the origin, δ footprints for O and 0.2 Å for Sr and Ti.
  const Structure s = test::srtio3(6, 4);
  const Grid g(s.cell.x, s.cell.y, 240, 240);
  ProbeOptics o;
  o.energy_eV = 300e3;
  o.semiangle_mrad = 25;
  const auto pos = ScanGrid::from_fov({5.0, 6.0}, 3.905, 3.905, 4, 4).positions();
  InelasticRecorder ms(s, 5, footprints()), pr(s, 5, footprints());
  const StemResult ref = simulate_stem(s, g, o, pos, kDetectors, settings(Method::Multislice, 1), nullptr, &ms);
  const StemResult two = simulate_stem(s, g, o, pos, kDetectors, settings(Method::Prism, 2), nullptr, &pr);
  const ErrorBudget budget;
  for (const char* d : {"bf", "haadf"}) {
    const auto &x = ref.signal(d).values, &y = two.signal(d).values;
    const double rel = std::fabs(mean(y) / mean(x) - 1), c = pearson(x, y);
    std::printf("%s PRISM f=2 vs multislice: mean %.3f %%, correlation %.6f\n", d, 100 * rel, c);
    ASSERT_LT(rel, budget.mean_rel) << d << ": the case is outside PRISM's budget at f = 2";
    ASSERT_GT(c, budget.min_correlation) << d;
  }
  const ElementIntensity &a = ms.result(), &b = pr.result();
  ASSERT_EQ(a.elements, b.elements);
  for (int Z : a.elements) {
    std::vector<double> x, y;
    for (std::size_t p = 0; p < pos.size(); ++p) x.push_back(a.at(p, Z)), y.push_back(b.at(p, Z));
    const double rel = std::fabs(mean(y) / mean(x) - 1), c = pearson(x, y);
    std::printf("Z=%d spectra PRISM f=2 vs multislice: mean %.3f %%, correlation %.6f\n", Z, 100 * rel, c);
    EXPECT_LT(rel, budget.mean_rel) << Z;
    EXPECT_GT(c, budget.min_correlation) << Z;
    EXPECT_GT(rel, 0) << Z;  // f = 2 is not multislice: the comparison measures something
  }
}

TEST(PrismSpectra, SameBytesOnAnyThreadCount) {
  // f = 2 (windows that wrap around the cell), grouped positions, 2 configurations, 3 focal nodes.
  const Structure s = hot_srtio3(4, 2);
  const Grid g(s.cell.x, s.cell.y, 160, 160);
  ProbeOptics o;
  o.focal_spread_A = 20;
  o.focal_spread_points = 3;
  const auto pos = ScanGrid::from_fov({-0.6, -0.6}, 3.905, 3.905, 4, 4).positions();
  std::vector<std::vector<double>> out;
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    InelasticRecorder rec(s, 5, footprints());
    simulate_stem(s, g, o, pos, kDetectors, settings(Method::Prism, 2), nullptr, &rec);
    out.push_back(rec.result().values);
  }
  omp_set_num_threads(saved);
  ASSERT_EQ(out[0].size(), out[1].size());
  EXPECT_EQ(0, std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(double)));
}

TEST(PrismSpectra, ObserverLeavesTheImagesAndRefusesWhatItCannotServe) {
  const Structure s = test::srtio3(2, 2);
  const Grid g(s.cell.x, s.cell.y, 80, 80);
  const auto pos = ScanGrid::from_fov({0, 0}, 3.905, 3.905, 2, 2).positions();
  StemSettings st = settings(Method::Prism, 2);
  InelasticRecorder rec(s, 5, footprints());
  const StemResult with = simulate_stem(s, g, ProbeOptics{}, pos, kDetectors, st, nullptr, &rec);
  const StemResult without = simulate_stem(s, g, ProbeOptics{}, pos, kDetectors, st);
  for (const char* d : {"bf", "haadf"}) EXPECT_EQ(with.signal(d).values, without.signal(d).values) << d;
  // The storage crop moves only the exit waves to a coarser grid: the samples stay on the full
  // grid with the full grid's windows, so the recorder holds the same bytes.
  StemSettings cropped = st;
  cropped.prism_band_limit_crop = true;
  InelasticRecorder rec_cropped(s, 5, footprints());
  simulate_stem(s, g, ProbeOptics{}, pos, kDetectors, cropped, nullptr, &rec_cropped);
  EXPECT_EQ(rec_cropped.result().values, rec.result().values);
  // Partitioned PRISM forms its beamlets at the recording depths only.
  st.prism_partitioned = true;
  EXPECT_THROW(simulate_stem(s, g, ProbeOptics{}, pos, kDetectors, st, nullptr, &rec), std::invalid_argument);
  // An observer that reads only whole waves.
  struct WholeWaves : SliceObserver {
    void begin(const Grid&, const std::vector<double>&, std::size_t, std::size_t) override {}
    void observe(std::size_t, std::size_t, std::size_t, double, const cfloat*) override {}
  } whole;
  st.prism_partitioned = false;
  EXPECT_THROW(simulate_stem(s, g, ProbeOptics{}, pos, kDetectors, st, nullptr, &whole), std::invalid_argument);
  // S-matrices built without the observer's pixels.
  const Fft2 fft(g, FftPlanning::Estimate);
  const auto tr = frozen_phonon_transmissions(s, g, 200e3, st, fft);
  const std::vector<SMatrix> bare{build_smatrix(tr.front(), 20, 2, 2, {}, fft)};
  EXPECT_THROW(scan_prism(bare, ProbeOptics{}, pos, kDetectors, st, nullptr, &rec), std::invalid_argument);
}

TEST(PrismSpectra, AutoCalibratesPrismOnTheRecorder) {
  // With a recorder auto now tries PRISM first; its trial is measured on the annular
  // detectors and on the recorder's signals, and the recorder of the chosen PRISM scan holds
  // the same bytes as a plain PRISM run at that factor. A static 8 × 8 × 2-cell SrTiO3 at a
  // coarse 0.156 Å sampling (band limit 53 mrad: detectors below it) keeps the test short.
  const Structure s = test::srtio3(8, 2);
  const Grid g(s.cell.x, s.cell.y, 200, 200);
  const std::vector<Detector> dets = {AnnularDetector{"bf", 0, 10}, AnnularDetector{"adf", 30, 50}};
  StemSettings st = settings(Method::Auto, 1);
  st.budget.always_calibrate = true;
  st.budget.calibration_positions = 4;
  st.budget.mean_rel = 0.10;  // generous: PRISM f = 2 is accepted (measured below: a few per cent)
  st.budget.min_correlation = 0.9;
  const auto pos = ScanGrid::from_fov({-0.6, -0.6}, 3.905, 3.905, 3, 3).positions();
  InelasticRecorder rec(s, 5, footprints());
  const StemResult r = simulate_stem(s, g, ProbeOptics{}, pos, dets, st, nullptr, &rec);
  ASSERT_TRUE(r.auto_choice);
  for (const auto& t : r.auto_choice->trials)
    std::printf("auto's PRISM trial f = %zu: mean error %.4f %%, correlation %.6f\n", t.interpolation, 100 * t.mean_error, t.correlation);
  ASSERT_EQ(r.auto_choice->method, Method::Prism);
  const std::size_t f = r.auto_choice->interpolation;
  EXPECT_GT(f, 1u);
  InelasticRecorder plain(s, 5, footprints()), ms(s, 5, footprints());
  const StemResult pr = simulate_stem(s, g, ProbeOptics{}, pos, dets, settings(Method::Prism, f), nullptr, &plain);
  EXPECT_EQ(rec.result().values, plain.result().values);
  // The accepted trial's error is the worst of the detectors' and the recorder's on the
  // calibration positions (each position's values do not depend on the others').
  const StemResult ref = simulate_stem(s, g, ProbeOptics{}, pos, dets, settings(Method::Multislice, 1), nullptr, &ms);
  const std::vector<std::size_t> idx = calibration_subset(pos.size(), st.budget.calibration_positions);
  auto subset = [&](const std::vector<double>& v) {
    std::vector<double> out;
    for (std::size_t i : idx) out.push_back(v[i]);
    return out;
  };
  double worst_det = 0, worst_rec = 0;
  for (const char* d : {"bf", "adf"})
    worst_det = std::max(worst_det, std::fabs(mean(subset(pr.signal(d).values)) / mean(subset(ref.signal(d).values)) - 1));
  const auto x = plain.recorded_signals(), y = ms.recorded_signals();
  for (std::size_t k = 0; k < y.size(); ++k) worst_rec = std::max(worst_rec, std::fabs(mean(subset(x[k])) / mean(subset(y[k])) - 1));
  std::printf("auto's PRISM trial (f = %zu): mean error %.4f %% (detectors %.4f %%, recorder %.4f %%)\n", f,
              100 * r.auto_choice->measured_mean_error, 100 * worst_det, 100 * worst_rec);
  EXPECT_GT(worst_rec, 0.0);
  EXPECT_NEAR(r.auto_choice->measured_mean_error, std::max(worst_det, worst_rec), 1e-9);
}
