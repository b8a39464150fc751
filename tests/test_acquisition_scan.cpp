// Scan geometry, scan distortion and label mapping (issue 6).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "stemtwin/acquisition/acquisition.hpp"

using namespace stemtwin;

namespace {

// Synthetic "physics": a single Gaussian column of width 0.5 Å (σ) at c, in fractions.
double column(double x, double y, Point2 c) {
  const double dx = x - c.x, dy = y - c.y;
  return 0.5 * std::exp(-(dx * dx + dy * dy) / (2 * 0.5 * 0.5));
}

// Centroid of an image around its maximum (window ± half pixels), pixel coordinates.
Point2 peak_centroid(const Image& im, int half) {
  std::size_t imax = 0;
  for (std::size_t i = 0; i < im.size(); ++i)
    if (im.data[i] > im.data[imax]) imax = i;
  const long cx = static_cast<long>(imax % im.nx), cy = static_cast<long>(imax / im.nx);
  double sx = 0, sy = 0, s = 0;
  for (long y = cy - half; y <= cy + half; ++y)
    for (long x = cx - half; x <= cx + half; ++x) {
      if (x < 0 || y < 0 || x >= static_cast<long>(im.nx) || y >= static_cast<long>(im.ny)) continue;
      const double v = im(static_cast<std::size_t>(y), static_cast<std::size_t>(x));
      sx += v * x, sy += v * y, s += v;
    }
  return {sx / s, sy / s};
}

}  // namespace

TEST(AcquisitionDose, ElectronsPerPositionAndArealDose) {
  // 20 pA × 2 µs / 1.602176634e-19 C = 4e-17 × 6.241509074e18 = 249.660363 e⁻.
  EXPECT_NEAR(electrons_per_position(20, 2), 249.660363, 1e-6);
  const DoseReport r = dose_report(20, 2, 0.2, 0.25, 100);
  EXPECT_DOUBLE_EQ(r.pixel_area_A2, 0.05);
  EXPECT_NEAR(r.dose_e_per_A2, 249.660363 / 0.05, 1e-4);
  EXPECT_NEAR(r.frame_electrons, 24966.0363, 1e-3);
  const std::vector<double> m{0.5, 1.5};
  EXPECT_NEAR(dose_report(20, 2, 0.2, 0.2, 2, m).mean_dose_multiplier, 1.0, 1e-15);
  EXPECT_THROW(electrons_per_position(-1, 2), std::invalid_argument);
}

TEST(AcquisitionScan, PixelTimeIncludesFlyback) {
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 10, 10, 50, 40, 0, 3.0, 20.0);
  EXPECT_NEAR(g.pixel_time_s(7, 3), (3 * (50 * 3.0 + 20.0) + 7 * 3.0) * 1e-6, 1e-18);
  EXPECT_NEAR(g.frame_time_s(), 40 * (50 * 3.0 + 20.0) * 1e-6, 1e-15);
  EXPECT_NEAR(g.fov_x_A(), 10.0, 1e-12);
  EXPECT_NEAR(g.grid.step_y, 0.25, 1e-15);
}

TEST(AcquisitionScan, EverythingOffGivesTheCleanScanBitwise) {
  const ScanGeometry g = ScanGeometry::from_fov({1.3, -0.7}, 7.1, 5.3, 37, 23, 0, 2, 5);
  Distortion d;                        // all off
  d.current.relative_rms = 0.1;        // current noise does not move the probe
  const DistortedScan s = distort_scan(g, d, 42, 3);
  const auto clean = g.grid.positions();
  ASSERT_EQ(s.positions_A.size(), clean.size());
  EXPECT_EQ(0, std::memcmp(s.positions_A.data(), clean.data(), clean.size() * sizeof(Point2)));

  Distortion off;
  const DistortedScan s0 = distort_scan(g, off, 42, 3);
  for (double m : s0.dose_multiplier) ASSERT_EQ(m, 1.0);

  ScanGeometry rot = g;
  rot.rotation_deg = 30;
  const DistortedScan sr = distort_scan(rot, off, 42, 3);
  const auto nominal = rot.nominal_positions();
  EXPECT_EQ(0, std::memcmp(sr.positions_A.data(), nominal.data(), nominal.size() * sizeof(Point2)));
  // Rotation turns the raster about its centre: the centre pixel of an odd raster stays put.
  const Point2 c0 = g.nominal_position(18, 11), c1 = rot.nominal_position(18, 11);
  EXPECT_NEAR(c0.x, c1.x, 1e-12);
  EXPECT_NEAR(c0.y, c1.y, 1e-12);
  // Fast axis along (cos 30°, sin 30°).
  const Point2 a = rot.nominal_position(0, 0), b = rot.nominal_position(1, 0);
  EXPECT_NEAR((b.x - a.x) / g.grid.step_x, std::cos(M_PI / 6), 1e-12);
  EXPECT_NEAR((b.y - a.y) / g.grid.step_x, std::sin(M_PI / 6), 1e-12);
}

TEST(AcquisitionScan, LinearDriftShiftsByVelocityTimesTime) {
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 8, 8, 40, 40, 0, 10, 50);
  Distortion d;
  d.drift.velocity_x_A_per_s = 3.0;
  d.drift.velocity_y_A_per_s = -1.5;
  const DistortedScan s = distort_scan(g, d, 1);
  const auto clean = g.nominal_positions();
  for (std::size_t i = 0; i < clean.size(); ++i) {
    // The specimen moves by v·t, so the probe lands on p − v·t (1e-12 Å: rounding only).
    ASSERT_NEAR(s.positions_A[i].x, clean[i].x - 3.0 * s.time_s[i], 1e-12);
    ASSERT_NEAR(s.positions_A[i].y, clean[i].y + 1.5 * s.time_s[i], 1e-12);
  }
}

TEST(AcquisitionScan, RandomWalkGrowsAsDiffusionTimesRootTime) {
  // Var of the walk at the last pixel (time t) is D²·t per axis. 400 seeds × 2 axes = 800
  // samples: the sample variance has relative standard error √(2/799) = 5 %, so ±20 % is
  // 4 standard errors.
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 2, 2, 8, 8, 0, 100, 1000);
  Distortion d;
  d.drift.diffusion_A_per_sqrt_s = 2.0;
  const auto clean = g.nominal_positions();
  const std::size_t last = clean.size() - 1;
  double ss = 0;
  int n = 0;
  for (std::uint64_t seed = 0; seed < 400; ++seed) {
    const DistortedScan s = distort_scan(g, d, seed);
    const double dx = s.positions_A[last].x - clean[last].x, dy = s.positions_A[last].y - clean[last].y;
    ss += dx * dx + dy * dy;
    n += 2;
  }
  const double expected = 4.0 * g.pixel_time_s(7, 7);
  EXPECT_NEAR(ss / n / expected, 1.0, 0.2);
}

TEST(AcquisitionScan, JitterIsOneShiftPerLineAlongTheFastAxis) {
  ScanGeometry g = ScanGeometry::from_fov({0, 0}, 20, 40, 10, 2000, 25, 1, 0);
  Distortion d;
  d.jitter.rms_A = 0.3;
  const DistortedScan s = distort_scan(g, d, 9);
  const auto clean = g.nominal_positions();
  const double c = std::cos(25 * M_PI / 180), sn = std::sin(25 * M_PI / 180);
  double ss = 0;
  for (std::size_t iy = 0; iy < g.ny(); ++iy) {
    const std::size_t i0 = iy * g.nx();
    const double along = (s.positions_A[i0].x - clean[i0].x) * c + (s.positions_A[i0].y - clean[i0].y) * sn;
    const double across = -(s.positions_A[i0].x - clean[i0].x) * sn + (s.positions_A[i0].y - clean[i0].y) * c;
    ASSERT_NEAR(across, 0.0, 1e-12);
    for (std::size_t ix = 1; ix < g.nx(); ++ix) {
      const std::size_t i = i0 + ix;
      ASSERT_NEAR(s.positions_A[i].x - clean[i].x, along * c, 1e-12);
      ASSERT_NEAR(s.positions_A[i].y - clean[i].y, along * sn, 1e-12);
    }
    ss += along * along;
  }
  // 2000 lines: relative standard error of the variance √(2/2000) = 3.2 %; ±15 % ≈ 4.7 SE.
  EXPECT_NEAR(ss / g.ny() / (0.3 * 0.3), 1.0, 0.15);
}

TEST(AcquisitionScan, FlybackDisplacementDecaysFromLineStart) {
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 10, 10, 50, 5, 0, 2, 10);
  Distortion d;
  d.flyback.amplitude_A = -0.8;
  d.flyback.decay_us = 6;
  const DistortedScan s = distort_scan(g, d, 0);
  const auto clean = g.nominal_positions();
  for (std::size_t iy = 0; iy < 5; ++iy)
    for (std::size_t ix = 0; ix < 50; ++ix) {
      const std::size_t i = iy * 50 + ix;
      ASSERT_NEAR(s.positions_A[i].x - clean[i].x, -0.8 * std::exp(-2.0 * ix / 6.0), 1e-12);
      ASSERT_EQ(s.positions_A[i].y, clean[i].y);
    }
}

TEST(AcquisitionScan, ScanNoiseAndMainsHaveTheirAmplitudes) {
  // Frame 0.4 s long: the lowest frequency (37 Hz) has ≥ 14 periods, so the time-averaged
  // square of the sum of sinusoids is within ~3 % of rms² (finite-window cross terms
  // ~ 1/(2π·Δf·T) ≲ 1/(2π·14)); ±8 % leaves room.
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 20, 20, 200, 200, 0, 10, 0);
  Distortion d;
  d.scan_noise.frequencies_Hz = {37, 91, 143};
  d.scan_noise.rms_A = 0.25;
  const DistortedScan s = distort_scan(g, d, 5);
  const auto clean = g.nominal_positions();
  double sx = 0, sy = 0;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    sx += std::pow(s.positions_A[i].x - clean[i].x, 2);
    sy += std::pow(s.positions_A[i].y - clean[i].y, 2);
  }
  EXPECT_NEAR(std::sqrt(sx / clean.size()), 0.25, 0.25 * 0.08);
  EXPECT_NEAR(std::sqrt(sy / clean.size()), 0.25, 0.25 * 0.08);

  Distortion m;
  m.mains.frequency_Hz = 60;
  m.mains.amplitude_x_A = 0.4;
  const DistortedScan sm = distort_scan(g, m, 5);
  double mx = 0;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    mx = std::max(mx, std::fabs(sm.positions_A[i].x - clean[i].x));
    ASSERT_EQ(sm.positions_A[i].y, clean[i].y);
  }
  // 24 periods sampled every 10 µs (1/1667 of a period): the peak is reached to 1e-5.
  EXPECT_NEAR(mx, 0.4, 1e-4);
}

TEST(AcquisitionScan, ProbeCurrentFluctuationStatistics) {
  // OU process at dwell 1 µs, τ = 20 µs: lag-1 correlation e^{−1/20} = 0.951. 256² pixels
  // contain ~3300 correlation times, so the variance estimate has relative error
  // ~√(2·τ_int/T) ≈ √(2·2τ/T) = 3.5 %; ±15 % on the rms² ≈ 4 SE, ±0.02 on the correlation.
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 10, 10, 256, 256, 0, 1, 0);
  Distortion d;
  d.current.relative_rms = 0.05;
  d.current.correlation_time_us = 20;
  const DistortedScan s = distort_scan(g, d, 77);
  const auto& m = s.dose_multiplier;
  const double mean = std::accumulate(m.begin(), m.end(), 0.0) / m.size();
  double var = 0, cov = 0;
  for (std::size_t i = 0; i < m.size(); ++i) var += (m[i] - mean) * (m[i] - mean);
  for (std::size_t i = 1; i < m.size(); ++i) cov += (m[i] - mean) * (m[i - 1] - mean);
  var /= m.size();
  cov /= (m.size() - 1);
  EXPECT_NEAR(mean, 1.0, 0.01);
  EXPECT_NEAR(var / (0.05 * 0.05), 1.0, 0.15);
  EXPECT_NEAR(cov / var, std::exp(-1.0 / 20.0), 0.02);
}

TEST(AcquisitionLabels, MappingRoundTripsThroughTheDistortedField) {
  ScanGeometry g = ScanGeometry::from_fov({-1, 2}, 12, 10, 60, 50, 17, 5, 40);
  Distortion d;
  d.drift.velocity_x_A_per_s = 20;
  d.drift.velocity_y_A_per_s = 7;
  d.drift.diffusion_A_per_sqrt_s = 0.5;
  d.jitter.rms_A = 0.03;
  d.flyback.amplitude_A = 0.3;
  d.flyback.decay_us = 20;
  const DistortedScan s = distort_scan(g, d, 11);
  // Every pixel's true position maps back to that pixel (1e-6 px: Newton to 1e-9 Å).
  for (std::size_t iy = 0; iy < g.ny(); iy += 7)
    for (std::size_t ix = 0; ix < g.nx(); ix += 5) {
      const MappedPoint m = map_to_image(s, g, s.positions_A[iy * g.nx() + ix]);
      ASSERT_TRUE(m.found && m.inside);
      ASSERT_NEAR(m.image_px.x, static_cast<double>(ix), 1e-6);
      ASSERT_NEAR(m.image_px.y, static_cast<double>(iy), 1e-6);
    }
  // Arbitrary points: forward-mapping the answer gives the point back.
  Rng rng(3, RngPurpose::Scan, 99);
  std::vector<Point2> labels;
  for (int k = 0; k < 200; ++k) labels.push_back(image_to_specimen(s, {rng.uniform(2, 57), rng.uniform(2, 47)}));
  const auto mapped = map_to_image(s, g, labels);
  for (const MappedPoint& m : mapped) {
    ASSERT_TRUE(m.found);
    const Point2 back = image_to_specimen(s, m.image_px);
    ASSERT_NEAR(back.x, m.specimen_A.x, 1e-8);
    ASSERT_NEAR(back.y, m.specimen_A.y, 1e-8);
  }
}

TEST(AcquisitionLabels, BrightColumnWithDriftAppearsWhereItsLabelSays) {
  // 100 × 100 pixels of 0.1 Å, 10 µs dwell: the frame takes 0.1 s, during which a drift of
  // (15, 8) Å/s moves the specimen by ~ (15, 8) pixels. The column at (5, 5) Å would sit at
  // pixel (50, 50) without drift.
  AcquisitionSettings st;
  st.scan = ScanGeometry::from_fov({0, 0}, 10, 10, 100, 100, 0, 10, 0);
  st.distortion.drift.velocity_x_A_per_s = 15;
  st.distortion.drift.velocity_y_A_per_s = 8;
  st.distortion.drift.diffusion_A_per_sqrt_s = 0.3;
  const DistortedScan s = plan_scan(st, 2024);
  const Point2 col{5.0, 5.0};
  Image clean(100, 100);
  for (std::size_t i = 0; i < clean.size(); ++i) clean.data[i] = column(s.positions_A[i].x, s.positions_A[i].y, col);
  const MappedPoint label = map_to_image(s, st.scan, col);
  ASSERT_TRUE(label.inside);
  const Point2 seen = peak_centroid(clean, 4);
  std::printf("column label (%.3f, %.3f) px, image centroid (%.3f, %.3f) px, undrifted (50, 50)\n", label.image_px.x,
              label.image_px.y, seen.x, seen.y);
  // The mapped label must agree with where the column is seen to within a pixel...
  EXPECT_NEAR(seen.x, label.image_px.x, 1.0);
  EXPECT_NEAR(seen.y, label.image_px.y, 1.0);
  // ...and the drift must matter (else this test could not fail): > 3 px from nominal.
  EXPECT_GT(std::hypot(seen.x - 50, seen.y - 50), 3.0);

  // The same with a noisy read-out at high dose (peak ~ 0.5·2500 e⁻, shot-noise centroid
  // error ≪ 0.1 px).
  st.beam_current_pA = 200;
  const Image noisy = acquire_annular(clean, st, s, NoiseStream{2024, 0, 1});
  const Point2 seen_noisy = peak_centroid(noisy, 4);
  EXPECT_NEAR(seen_noisy.x, label.image_px.x, 1.0);
  EXPECT_NEAR(seen_noisy.y, label.image_px.y, 1.0);

  // A mask sampled at the true positions has its centre at the label too.
  const Image mask = sample_at_positions(s, [&](double x, double y) { return std::hypot(x - col.x, y - col.y) < 0.6 ? 1.0 : 0.0; });
  double mx = 0, my = 0, mn = 0;
  for (std::size_t iy = 0; iy < 100; ++iy)
    for (std::size_t ix = 0; ix < 100; ++ix) mx += mask(iy, ix) * ix, my += mask(iy, ix) * iy, mn += mask(iy, ix);
  ASSERT_GT(mn, 10);
  EXPECT_NEAR(mx / mn, label.image_px.x, 1.0);
  EXPECT_NEAR(my / mn, label.image_px.y, 1.0);
}

TEST(AcquisitionLabels, FoldedScanReportsEverySolution) {
  // One fast line that goes back on itself: x = 0, 1, 2, 1.5, 2.5, 3.5 (two rows, y = 0, 1).
  // x = 1.75 on row 0 is crossed three times: fx = 1.75, 2.5 and 3.25.
  ScanGeometry g = ScanGeometry::from_fov({0, 0}, 6, 2, 6, 2, 0, 1, 0);
  DistortedScan s;
  s.nx = 6, s.ny = 2;
  const double xs[6] = {0, 1, 2, 1.5, 2.5, 3.5};
  for (int iy = 0; iy < 2; ++iy)
    for (int ix = 0; ix < 6; ++ix) s.positions_A.push_back({xs[ix], static_cast<double>(iy)});
  s.dose_multiplier.assign(12, 1.0);
  s.time_s.assign(12, 0.0);
  const auto all = map_to_image_all(s, g, {1.75, 0.0});
  ASSERT_EQ(all.size(), 3u);
  std::vector<double> fx;
  for (const auto& m : all) {
    fx.push_back(m.image_px.x);
    EXPECT_NEAR(m.image_px.y, 0.0, 1e-9);
  }
  std::sort(fx.begin(), fx.end());
  EXPECT_NEAR(fx[0], 1.75, 1e-9);
  EXPECT_NEAR(fx[1], 2.5, 1e-9);
  EXPECT_NEAR(fx[2], 3.25, 1e-9);
  // A point far outside the frame: at best an extrapolated coordinate, never "inside".
  EXPECT_FALSE(map_to_image(s, g, {40.0, 40.0}).inside);
  EXPECT_TRUE(map_to_image_all(s, g, {40.0, 40.0}).empty());
  // Absurd coordinates are handled without overflow (UBSan checks the casts).
  EXPECT_FALSE(map_to_image(s, g, {1e300, -1e300}).inside);
  EXPECT_TRUE(map_to_image_all(s, g, {-1e300, 1e300}).empty());
}

TEST(AcquisitionSettingsTest, ValidateNamesTheKey) {
  AcquisitionSettings s;
  EXPECT_NO_THROW(s.validate());
  s.distortion.jitter.rms_A = -1;
  try {
    s.validate();
    FAIL() << "no throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("acquisition.jitter.rms_A"), std::string::npos) << e.what();
  }
}
