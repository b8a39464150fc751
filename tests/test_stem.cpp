// Scanning multislice: detector invariants, Z contrast, determinism, thickness series, 4D, COM;
// errors out of the parallel regions.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <new>
#include <numeric>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/parallel.hpp"
#include "stemtwin/physics/engine.hpp"

using namespace stemtwin;

namespace {
/// A single column of one element along z at the cell centre.
Structure column(int Z, double l = 8.0, double lz = 12.0, double spacing = 2.0, double rms = 0.0) {
  Structure s;
  s.cell = {l, l, lz};
  for (double z = spacing / 2; z < lz; z += spacing) s.atoms.push_back({Z, l / 2, l / 2, z, 1.0, rms});
  return s;
}
StemSettings settings(double dz = 2.0) {
  StemSettings st;
  st.potential.slice_thickness_A = dz;
  return st;
}
const Grid kGrid(8.0, 8.0, 160, 160);  // 0.05 Å: band limit 167 mrad at 200 kV
}  // namespace

TEST(Stem, VacuumPutsEverythingInTheBrightFieldDisc) {
  Structure vac;
  vac.cell = {8, 8, 10};
  ProbeOptics o;  // 20 mrad
  // The soft aperture edge reaches half an angular pixel (λ/L = 3.1 mrad here) beyond 20 mrad.
  const std::vector<Detector> d = {AnnularDetector{"bf", 0, 21.6}, AnnularDetector{"df", 21.6, 160},
                                   RadialDetector{"radial", 1.0, 0.0}};
  const StemResult r = simulate_stem(vac, kGrid, o, {{1.0, 2.0}, {4.3, 4.7}}, d, settings());
  for (std::size_t p = 0; p < 2; ++p) {
    EXPECT_NEAR(r.signal("bf").values[p], 1.0, 1e-5);
    EXPECT_NEAR(r.signal("df").values[p], 0.0, 1e-7);
    const auto& rad = r.signal("radial");
    double sum = 0;
    for (std::size_t b = 0; b < rad.bins; ++b) sum += rad.values[p * rad.bins + b];
    EXPECT_NEAR(sum, 1.0, 1e-5);  // no band-limit loss in vacuum
  }
}

TEST(Stem, DetectorSignalsSumToOneMinusBandLimitLoss) {
  // Radial bins cover every angle up to the band limit: their sum is the transmitted
  // intensity, 1 − (band-limit loss). For a Si column at its [110] spacing (3.84 Å) the loss
  // is of the order of the Si [110] reference case's (0.17 %): bound 1 %. (test_multislice
  // checks the loss bookkeeping exactly.) Segments of a ring add up to the matching annulus.
  ProbeOptics o;
  const std::vector<Detector> d = {RadialDetector{"radial", 1.0, 0.0}, AnnularDetector{"ring", 10, 30},
                                   SegmentedDetector{"dpc", {10, 30}, 4, 15.0}};
  const StemResult r = simulate_stem(column(14, 8.0, 12.0, 3.84), kGrid, o, {{4.2, 4.1}, {1, 1}}, d, settings(3.84));
  for (std::size_t p = 0; p < 2; ++p) {
    const auto& rad = r.signal("radial");
    const double sum = std::accumulate(rad.values.begin() + long(p * rad.bins), rad.values.begin() + long((p + 1) * rad.bins), 0.0);
    EXPECT_LT(sum, 1.0);
    EXPECT_GT(sum, 0.99);
    const auto& seg = r.signal("dpc");
    ASSERT_EQ(seg.bins, 4u);
    EXPECT_NEAR(seg.values[p * 4] + seg.values[p * 4 + 1] + seg.values[p * 4 + 2] + seg.values[p * 4 + 3],
                r.signal("ring").values[p], 1e-9);
  }
}

TEST(Stem, HaadfRisesWithAtomicNumber) {
  // Same geometry, probe on the column: HAADF(C) < HAADF(Si) < HAADF(Cu) < HAADF(Au), and
  // roughly as Z^1.5–2 (DESIGN §4): check the Au/Si ratio lies between (79/14)^1.2 and ^2.2.
  ProbeOptics o;
  const std::vector<Detector> d = {AnnularDetector{"haadf", 70, 160}};
  double prev = 0, si = 0, au = 0;
  for (int Z : {6, 14, 29, 79}) {
    const double h = simulate_stem(column(Z), kGrid, o, {{4.0, 4.0}}, d, settings()).signal("haadf").values[0];
    std::printf("HAADF Z=%d: %.5f\n", Z, h);
    EXPECT_GT(h, prev) << "Z=" << Z;
    prev = h;
    if (Z == 14) si = h;
    if (Z == 79) au = h;
  }
  EXPECT_GT(au / si, std::pow(79.0 / 14.0, 1.2));
  EXPECT_LT(au / si, std::pow(79.0 / 14.0, 2.2));
}

TEST(Stem, ThreadCountIndependentAndPhononsDeterministic) {
  ProbeOptics o;
  o.focal_spread_A = 20;
  o.focal_spread_points = 3;
  StemSettings st = settings();
  st.phonon_configurations = 3;
  st.seed = 11;
  st.pattern_block = 5;
  const std::vector<Detector> d = {AnnularDetector{"haadf", 60, 160}, ComDetector{"com"}};
  std::vector<Point2> pos;
  for (int i = 0; i < 12; ++i) pos.push_back({3.0 + 0.17 * i, 4.0 - 0.05 * i});
  const Structure s = column(29, 8.0, 8.0, 2.0, 0.1);
  omp_set_num_threads(1);
  const StemResult a = simulate_stem(s, kGrid, o, pos, d, st);
  omp_set_num_threads(2);
  const StemResult b = simulate_stem(s, kGrid, o, pos, d, st);
  EXPECT_EQ(a.signal("haadf").values, b.signal("haadf").values);  // bitwise
  EXPECT_EQ(a.signal("com").values, b.signal("com").values);
  st.seed = 12;
  const StemResult c = simulate_stem(s, kGrid, o, pos, d, st);
  EXPECT_NE(a.signal("haadf").values, c.signal("haadf").values);  // another seed, other displacements
}

TEST(Stem, ThicknessSeriesEqualsThinnerSpecimens) {
  // Recording at 4 Å and 8 Å in one pass must equal separate runs of 4 Å and 8 Å specimens
  // (same slices, same arithmetic: bitwise).
  ProbeOptics o;
  const std::vector<Detector> d = {AnnularDetector{"adf", 30, 160}};
  StemSettings st = settings();
  st.depths_A = {4.0, 8.0, 12.0};
  const std::vector<Point2> pos = {{4.0, 4.0}, {3.5, 4.2}};
  const StemResult series = simulate_stem(column(38, 8, 12), kGrid, o, pos, d, st);
  ASSERT_EQ(series.depths_A.size(), 3u);
  EXPECT_DOUBLE_EQ(series.depths_A[0], 4.0);
  for (std::size_t k = 0; k < 2; ++k) {
    const double t = series.depths_A[k];
    const StemResult thin = simulate_stem(column(38, 8, t), kGrid, o, pos, d, settings());
    EXPECT_EQ(series.signal("adf", k).values, thin.signal("adf").values) << "depth " << t;
  }
  EXPECT_LT(series.signal("adf", 0).values[0], series.signal("adf", 2).values[0]);  // thicker scatters more
}

namespace {
struct CollectSink : PatternSink {
  std::vector<float> data;
  std::size_t next = 0, ny = 0, nx = 0;
  void write(const std::string&, std::size_t first, std::size_t count, std::size_t py, std::size_t px, const float* p) override {
    EXPECT_EQ(first, next);  // blocks arrive in position order
    next = first + count;
    ny = py, nx = px;
    data.insert(data.end(), p, p + count * py * px);
  }
};
}  // namespace

TEST(Stem, PixelatedPatternsStreamInOrderAndAgreeWithAnnular) {
  ProbeOptics o;
  StemSettings st = settings();
  st.pattern_block = 2;
  const std::vector<Detector> d = {PixelatedDetector{"cam", 60.0, 1}, AnnularDetector{"bf", 0, 25}};
  std::vector<Point2> pos = {{4, 4}, {3, 4}, {5, 5}, {2, 2}, {4.5, 3.3}};
  CollectSink sink;
  const StemResult r = simulate_stem(column(29), kGrid, o, pos, d, st, &sink);
  ASSERT_EQ(sink.next, pos.size());
  const double lambda = wavelength_A(o.energy_eV);
  // Pattern pixel (iy, ix) is the frequency (iy − cy, ix − cx)/L; sum those within 25 mrad.
  const std::size_t cy = sink.ny / 2, cx = sink.nx / 2;
  for (std::size_t p = 0; p < pos.size(); ++p) {
    double bf = 0;
    for (std::size_t iy = 0; iy < sink.ny; ++iy)
      for (std::size_t ix = 0; ix < sink.nx; ++ix) {
        const double kx = (double(ix) - double(cx)) / kGrid.lx, ky = (double(iy) - double(cy)) / kGrid.ly;
        if (lambda * std::hypot(kx, ky) * 1e3 < 25) bf += sink.data[(p * sink.ny + iy) * sink.nx + ix];
      }
    EXPECT_NEAR(bf, r.signal("bf").values[p], 1e-5);  // float patterns vs double accumulation
  }
}

TEST(Stem, CentreOfMassPointsTowardsTheColumn) {
  // A positive potential attracts the electrons: a probe to the +x side of a column is
  // deflected towards −x (COM x < 0), and symmetric positions give opposite COM.
  ProbeOptics o;
  const std::vector<Detector> d = {ComDetector{"com"}};
  const StemResult r = simulate_stem(column(79, 8, 6), kGrid, o, {{4.3, 4.0}, {3.7, 4.0}, {4.0, 4.0}}, d, settings());
  const auto& v = r.signal("com").values;
  EXPECT_LT(v[0], 0.0);
  EXPECT_GT(v[2], 0.0);
  EXPECT_NEAR(v[0], -v[2], 1e-3 * std::fabs(v[0]));
  EXPECT_NEAR(v[4], 0.0, 1e-3 * std::fabs(v[0]));  // on the column: no deflection
  EXPECT_NEAR(v[1], 0.0, 1e-3 * std::fabs(v[0]));  // no y deflection on the x line
}

TEST(Stem, IntegratedComRecoversAPotential) {
  // A field φ = cos(2πx/L) + 0.5 sin(4πy/L): its gradient integrates back to φ (zero mean).
  const std::size_t n = 32;
  const double step = 0.25, L = step * double(n);
  Image gx(n, n), gy(n, n), phi(n, n);
  for (std::size_t y = 0; y < n; ++y)
    for (std::size_t x = 0; x < n; ++x) {
      const double X = double(x) * step, Y = double(y) * step;
      phi(y, x) = std::cos(2 * kPi * X / L) + 0.5 * std::sin(4 * kPi * Y / L);
      gx(y, x) = -2 * kPi / L * std::sin(2 * kPi * X / L);
      gy(y, x) = 0.5 * 4 * kPi / L * std::cos(4 * kPi * Y / L);
    }
  const Image r = integrate_com(gx, gy, step, step);
  for (std::size_t i = 0; i < r.size(); ++i) EXPECT_NEAR(r.data[i], phi.data[i], 1e-5);
}

TEST(Stem, SourceSizeBlursButKeepsTheMean) {
  Image im(16, 16);
  im(8, 8) = 1.0;
  const Image b = apply_source_size(im, 0.2, 0.2, 0.4);
  EXPECT_NEAR(b.mean(), im.mean(), 1e-7);
  EXPECT_LT(b(8, 8), 0.5);
  EXPECT_GT(b(8, 9), 0.0);
  // 1σ = 0.4 Å = 2 pixels: the ratio of neighbours follows the Gaussian exp(−1/(2·2²)).
  EXPECT_NEAR(b(8, 9) / b(8, 8), std::exp(-1.0 / 8.0), 1e-3);
}

TEST(Stem, WarnsWhenDetectorExceedsBandLimit) {
  ProbeOptics o;
  const std::vector<Detector> d = {AnnularDetector{"haadf", 70, 250}};
  const StemResult r = simulate_stem(column(6, 8, 2), kGrid, o, {{4, 4}}, d, settings());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("band limit"), std::string::npos);
  EXPECT_THROW(simulate_stem(column(6, 8, 2), kGrid, o, {{4, 4}}, {AnnularDetector{"x", 50, 40}}, settings()),
               std::invalid_argument);
}

// Issue #12: an exception inside an OpenMP parallel region must reach the caller as that
// exception; before ParallelErrors it called std::terminate and the whole process aborted.
TEST(Stem, ParallelErrorsCarryTheFirstExceptionOutOfARegion) {
  ParallelErrors errors;
  int ran = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : ran)
  for (long i = 0; i < 64; ++i)
    errors.run([&] {
      ++ran;
      if (i % 5 == 3) throw std::bad_alloc();
    });
  EXPECT_TRUE(errors.failed());
  EXPECT_THROW(errors.rethrow(), std::bad_alloc);
  EXPECT_LE(ran, 64);  // every item at most once; items after the first error may be skipped
  ParallelErrors none;
  EXPECT_NO_THROW(none.rethrow());
}

TEST(Stem, ASinkThatThrowsStopsTheScanWithItsError) {
  // Both engines stream 4D patterns from inside their parallel region; a sink that refuses a
  // block (a full disk, a pattern of the wrong shape) or runs out of memory must surface here.
  struct Refusing : PatternSink {
    bool out_of_memory;
    explicit Refusing(bool oom) : out_of_memory(oom) {}
    void write(const std::string&, std::size_t first, std::size_t, std::size_t, std::size_t, const float*) override {
      if (first == 0) return;  // the first block goes through, the second fails
      if (out_of_memory) throw std::bad_alloc();
      throw std::runtime_error("disk full");
    }
  };
  const std::vector<Detector> d = {PixelatedDetector{"cam", 20, 1}, AnnularDetector{"adf", 40, 100}};
  std::vector<Point2> pos;
  for (int i = 0; i < 8; ++i) pos.push_back({0.5 * i, 1.0});
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  for (const Method m : {Method::Multislice, Method::Prism}) {
    StemSettings st = settings();
    st.method = m;
    st.pattern_block = 2;
    Refusing disk(false), memory(true);
    try {
      simulate_stem(column(14, 8.0, 4.0), kGrid, ProbeOptics{}, pos, d, st, &disk);
      ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "disk full");
    }
    EXPECT_THROW(simulate_stem(column(14, 8.0, 4.0), kGrid, ProbeOptics{}, pos, d, st, &memory), std::bad_alloc);
  }
  omp_set_num_threads(threads);
}
