// Annular detector response: Poisson counting, gain spread, afterglow, readout, radial
// sensitivity, segmented/COM and thread-count independence (issue 6).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "stemtwin/acquisition/acquisition.hpp"

using namespace stemtwin;

namespace {

struct Moments {
  double mean = 0, var = 0, m4 = 0;
  std::size_t n = 0;
  /// Standard errors: of the mean √(var/n); of the (biased) sample variance √((m4 − var²)/n).
  double se_mean() const { return std::sqrt(var / n); }
  double se_var() const { return std::sqrt((m4 - var * var) / n); }
};

Moments moments(const std::vector<double>& v) {
  Moments m;
  m.n = v.size();
  for (double x : v) m.mean += x;
  m.mean /= m.n;
  for (double x : v) {
    const double d = (x - m.mean) * (x - m.mean);
    m.var += d;
    m.m4 += d * d;
  }
  m.var /= m.n;
  m.m4 /= m.n;
  return m;
}

bool bitwise_equal(const Image& a, const Image& b) {
  return a.nx == b.nx && a.ny == b.ny && std::memcmp(a.data.data(), b.data.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

TEST(AcquisitionNoise, PoissonMeanEqualsVarianceEqualsDoseTimesSignal) {
  // λ = N·s = 249.66 × 0.04 = 9.986 over 256² pixels. Tolerance: 5 standard errors, with
  // SE(mean) = √(λ/n) = 0.012 and SE(var) = √((λ + 2λ²)/n) = 0.056 for a Poisson variable
  // (4th central moment λ(1 + 3λ)).
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 25.6, 25.6, 256, 256);
  const Image clean(256, 256, 0.04);
  const double N = electrons_per_position(20, 2);
  const Image n = count_electrons(clean, N, {}, 1.0, true, NoiseStream{7, 0, 0});
  const Moments m = moments(n.data);
  const double lambda = N * 0.04, se_mean = std::sqrt(lambda / m.n), se_var = std::sqrt((lambda + 2 * lambda * lambda) / m.n);
  std::printf("lambda %.4f: mean %.4f (SE %.4f), variance %.4f (SE %.4f)\n", lambda, m.mean, se_mean, m.var, se_var);
  EXPECT_NEAR(m.mean, lambda, 5 * se_mean);
  EXPECT_NEAR(m.var, lambda, 5 * se_var);
  for (double v : n.data) ASSERT_EQ(v, std::floor(v));  // whole electrons

  // The full chain with the default response is exactly this count (no gain, no readout).
  AnnularResponse ideal;
  EXPECT_TRUE(bitwise_equal(acquire_annular(clean, N, {}, ideal, g, NoiseStream{7, 0, 0}), n));
}

TEST(AcquisitionNoise, DoseMultiplierScalesTheMean) {
  // Half the pixels at multiplier 0.5, half at 2: means λ/2 and 2λ (λ = 50), each over
  // 32768 pixels; 5 SE tolerances with SE = √(mean/n).
  const std::size_t nx = 256, ny = 256;
  const Image clean(nx, ny, 0.2);
  std::vector<double> mult(nx * ny);
  for (std::size_t i = 0; i < mult.size(); ++i) mult[i] = (i % 2) ? 2.0 : 0.5;
  const Image n = count_electrons(clean, 250, mult, 1.0, true, NoiseStream{1, 2, 3});
  double s0 = 0, s1 = 0;
  for (std::size_t i = 0; i < n.size(); ++i) ((i % 2) ? s1 : s0) += n.data[i];
  const double k = n.size() / 2.0;
  EXPECT_NEAR(s0 / k, 25.0, 5 * std::sqrt(25.0 / k));
  EXPECT_NEAR(s1 / k, 100.0, 5 * std::sqrt(100.0 / k));
}

TEST(AcquisitionNoise, GainSpreadChainMatchesCompoundPoisson) {
  // n ~ Poisson(λ), pulse heights Gamma(k, g/k) (mean g, variance g²/k), S = Σ heights:
  //   E[S] = E[n]·g = λg,  Var[S] = E[n]·Var[h] + Var[n]·E[h]² = λg²/k + λg² = λg²(1 + 1/k).
  // Readout adds the dark offset to the mean and σ_read² (+ 1/12 ADU² for rounding, valid
  // as σ_read = 3 ADU ≫ 1 ADU) to the variance.
  AnnularResponse r;
  r.gain_ADU_per_electron = 8;
  r.gain_shape = 2;
  r.dark_offset_ADU = 100;
  r.read_noise_ADU = 3;
  r.adc_bits = 16;
  const std::size_t nx = 256, ny = 256;
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 25.6, 25.6, nx, ny);
  const Image clean(nx, ny, 0.08);
  const double N = 250, lambda = N * 0.08;  // λ = 20
  const Image out = acquire_annular(clean, N, {}, r, g, NoiseStream{11, 0, 2});
  const Moments m = moments(out.data);
  const double mean = annular_expected_mean(lambda, r), var = annular_expected_variance(lambda, r);
  EXPECT_DOUBLE_EQ(mean, 260.0);
  EXPECT_NEAR(var, 20 * 64 * 1.5 + 9 + 1.0 / 12, 1e-9);
  std::printf("gain chain: mean %.3f (expected %.3f, SE %.3f), variance %.2f (expected %.2f, SE %.2f)\n", m.mean,
              mean, m.se_mean(), m.var, var, m.se_var());
  // 5 standard errors (the variance's SE from the sample's own 4th moment).
  EXPECT_NEAR(m.mean, mean, 5 * m.se_mean());
  EXPECT_NEAR(m.var, var, 5 * m.se_var());
  // The spread term λg²/k = 640 ADU² is > 5 SE, so a chain without it would fail here.
  ASSERT_GT(lambda * 64 / 2, 5 * m.se_var());
  for (double v : out.data) ASSERT_EQ(v, std::floor(v));
}

TEST(AcquisitionNoise, AdcClipsAtFullScale) {
  AnnularResponse r;
  r.gain_ADU_per_electron = 100;
  r.adc_bits = 8;  // full scale 255
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 1, 1, 16, 16);
  Image clean(16, 16, 0.0);
  clean.data[5] = 1.0;  // 250 e⁻ × 100 ADU ≫ 255
  const Image out = acquire_annular(clean, 250, {}, r, g, NoiseStream{});
  EXPECT_EQ(out.data[5], 255.0);
  EXPECT_EQ(out.data[6], 0.0);
}

TEST(AcquisitionNoise, AfterglowConservesSignalAndDecaysWithItsTimeConstant) {
  // Impulse in pixel (30, 5) of a 40 × 6 scan (last line, so a sizeable tail is left), dwell 2 µs, τ = 5 µs, flyback 0: pixels
  // after it in acquisition order fall by e^{−T/τ} each; nothing is lost except the tail
  // still stored when the frame ends, which must equal the analytic remainder.
  const ScanGeometry g = ScanGeometry::from_fov({0, 0}, 8, 1.2, 40, 6, 0, 2, 0);
  AfterglowParams p;
  p.time_constant_us = 5;
  Image im(40, 6, 0.0);
  im(5, 30) = 1000.0;
  const AfterglowBudget b = apply_afterglow(im, g, p);
  const double ratio = std::exp(-2.0 / 5.0);
  for (std::size_t i = 5 * 40 + 32; i < im.size(); ++i)
    ASSERT_NEAR(im.data[i] / im.data[i - 1], ratio, 1e-12) << i;
  for (std::size_t i = 0; i < 5 * 40 + 30; ++i) ASSERT_EQ(im.data[i], 0.0);
  const double stored = 1000.0 * (5.0 / 2.0) * (1 - ratio);  // delayed light left after the impulse pixel
  const std::size_t after = im.size() - (5 * 40 + 31);
  EXPECT_NEAR(b.remaining_after_frame, stored * std::pow(ratio, static_cast<double>(after)), 1e-9);
  EXPECT_GT(b.remaining_after_frame, 10.0);  // the tail is really there
  // The impulse pixel keeps the part of its own delayed light emitted within its dwell.
  EXPECT_NEAR(im(5, 30), 1000.0 - stored, 1e-9);
  EXPECT_EQ(b.lost_in_flyback, 0.0);
  EXPECT_NEAR(b.recorded + b.remaining_after_frame, b.input, 1e-9);
  double sum = 0;
  for (double v : im.data) sum += v;
  EXPECT_NEAR(sum, b.recorded, 1e-9);
  std::printf("afterglow: input %.3f, recorded %.6f, tail %.6f, neighbour ratio %.6f (e^{-T/tau} %.6f)\n", b.input,
              b.recorded, b.remaining_after_frame, im(5, 32) / im(5, 31), ratio);

  // With flyback the light emitted between lines is lost, and the budget still closes.
  const ScanGeometry gf = ScanGeometry::from_fov({0, 0}, 8, 1.2, 40, 6, 0, 2, 7);
  Image flat(40, 6, 3.0);
  p.delayed_fraction = 0.4;
  const AfterglowBudget bf = apply_afterglow(flat, gf, p);
  EXPECT_GT(bf.lost_in_flyback, 0.0);
  EXPECT_NEAR(bf.recorded + bf.lost_in_flyback + bf.remaining_after_frame, bf.input, 1e-9);
  // Off is the identity (bitwise).
  Image same(40, 6, 1.25), copy = same;
  apply_afterglow(same, g, AfterglowParams{});
  EXPECT_TRUE(bitwise_equal(same, copy));
}

TEST(AcquisitionNoise, SameSeedSameFrameOnAnyThreadCount) {
  AcquisitionSettings s;
  s.scan = ScanGeometry::from_fov({0, 0}, 12.8, 9.6, 64, 48, 10, 2, 4);
  s.distortion.drift.velocity_x_A_per_s = 5;
  s.distortion.drift.diffusion_A_per_sqrt_s = 0.2;
  s.distortion.jitter.rms_A = 0.05;
  s.distortion.current.relative_rms = 0.05;
  s.distortion.current.correlation_time_us = 30;
  s.annular.gain_ADU_per_electron = 4;
  s.annular.gain_shape = 3;
  s.annular.dark_offset_ADU = 50;
  s.annular.read_noise_ADU = 2;
  s.annular.adc_bits = 14;
  s.annular.afterglow.time_constant_us = 3;
  const DistortedScan scan = plan_scan(s, 5, 1);
  Image clean(64, 48);
  for (std::size_t i = 0; i < clean.size(); ++i)
    clean.data[i] = 0.1 + 0.05 * std::sin(scan.positions_A[i].x) * std::cos(scan.positions_A[i].y);
  std::vector<float> stack(64 * 48 * 8 * 8, 1.0f / 64);
  s.camera.mode = CameraMode::Integrating;
  s.camera.integrating.psf_sigma_px = 0.7;
  s.camera.integrating.read_noise_ADU = 1;
  s.camera.integrating.gain_shape = 2;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const Image a1 = acquire_annular(clean, s, scan, NoiseStream{5, 1, 0});
  std::vector<float> c1 = stack;
  acquire_4d(c1, 8, 8, s, scan, NoiseStream{5, 1, 1});
  omp_set_num_threads(2);
  ASSERT_EQ(omp_get_max_threads(), 2);
  const Image a2 = acquire_annular(clean, s, scan, NoiseStream{5, 1, 0});
  std::vector<float> c2 = stack;
  acquire_4d(c2, 8, 8, s, scan, NoiseStream{5, 1, 1});
  omp_set_num_threads(saved);
  EXPECT_TRUE(bitwise_equal(a1, a2));
  EXPECT_EQ(0, std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)));
  // Order of processing: another channel acquired first changes nothing (keyed streams,
  // no shared state).
  const Image other = acquire_annular(clean, s, scan, NoiseStream{5, 1, 3});
  EXPECT_TRUE(bitwise_equal(a1, acquire_annular(clean, s, scan, NoiseStream{5, 1, 0})));
  EXPECT_FALSE(bitwise_equal(a1, other));
  // Another seed, sample or channel gives another frame.
  EXPECT_FALSE(bitwise_equal(a1, acquire_annular(clean, s, scan, NoiseStream{6, 1, 0})));
  EXPECT_FALSE(bitwise_equal(a1, acquire_annular(clean, s, scan, NoiseStream{5, 2, 0})));
  EXPECT_FALSE(bitwise_equal(a1, acquire_annular(clean, s, scan, NoiseStream{5, 1, 9})));
  // The stages applied one by one give the same bytes as the chain.
  Image st = apply_gain(count_electrons(clean, s.electrons_per_position(), scan.dose_multiplier, 1.0, true,
                                        NoiseStream{5, 1, 0}),
                        4, 3, NoiseStream{5, 1, 0});
  apply_afterglow(st, s.scan, s.annular.afterglow);
  apply_readout(st, 50, 2, 14, NoiseStream{5, 1, 0});
  EXPECT_TRUE(bitwise_equal(st, a1));
}

TEST(AcquisitionNoise, RadialBinsThroughSensitivityGiveTheAnnularSignal) {
  // 3 positions × 4 bins with edges 0, 20, 40, 80, 160 mrad.
  const std::vector<double> edges{0, 20, 40, 80, 160};
  const std::vector<double> bins{1, 2, 3, 4, 0.5, 0.5, 0.5, 0.5, 0, 0, 1, 0};
  const Image full = annular_from_radial_bins(bins, edges, 3, 1, 40, 160);
  EXPECT_DOUBLE_EQ(full.data[0], 7.0);
  EXPECT_DOUBLE_EQ(full.data[1], 1.0);
  // 60–120 mrad takes half of bin 2 and half of bin 3.
  const Image part = annular_from_radial_bins(bins, edges, 3, 1, 60, 120);
  EXPECT_DOUBLE_EQ(part.data[0], 0.5 * 3 + 0.5 * 4);
  // Sensitivity rising linearly 0.5 → 1 between 40 and 160 mrad, read at overlap centres
  // (60 and 120 mrad: 0.5833…, 0.8333…).
  RadialSensitivity sens{{40, 160}, {0.5, 1.0}};
  const Image weighted = annular_from_radial_bins(bins, edges, 3, 1, 40, 160, sens);
  EXPECT_NEAR(weighted.data[2], 0.5 + 0.5 * 20.0 / 120.0, 1e-12);
  EXPECT_NEAR(weighted.data[0], 3 * (0.5 + 0.5 * 20.0 / 120.0) + 4 * (0.5 + 0.5 * 80.0 / 120.0), 1e-12);

  // Through the settings: the noise-free read-out is N × the weighted signal.
  AcquisitionSettings st;
  st.scan = ScanGeometry::from_fov({0, 0}, 0.6, 0.2, 3, 1);
  st.sensitivity = sens;
  st.annular.shot_noise = false;
  const DistortedScan scan = plan_scan(st, 0);
  const Image ro = acquire_annular_from_bins(bins, edges, 40, 160, st, scan, NoiseStream{});
  for (std::size_t i = 0; i < 3; ++i) EXPECT_NEAR(ro.data[i], st.electrons_per_position() * weighted.data[i], 1e-9);
}

TEST(AcquisitionNoise, SegmentedComFromNoisyCountsIsConsistent) {
  // 1 ring (10–20 mrad) × 4 segments; clean signal 0.1·(1 + 0.5·cos(φ_s − 30°)). The COM
  // of the noisy segment counts must average to the clean COM (5 SE of the mean over 4096
  // positions) and scatter as first-order error propagation of independent Poisson counts
  // predicts (variance within 15 %: relative SE of a variance over 4096 samples is 2.2 %,
  // plus the ~1/λ_total bias of the ratio estimator, ~1 %).
  SegmentLayout layout{{10, 20}, 4, 0};
  const std::size_t nx = 64, ny = 64, nc = 4;
  std::vector<double> clean(nx * ny * nc);
  std::vector<double> f(nc);
  for (std::size_t s = 0; s < nc; ++s) {
    const double phi = (s + 0.5) * M_PI / 2;
    f[s] = 0.1 * (1 + 0.5 * std::cos(phi - M_PI / 6));
  }
  for (std::size_t i = 0; i < nx * ny; ++i)
    for (std::size_t s = 0; s < nc; ++s) clean[i * nc + s] = f[s];
  AcquisitionSettings st;
  st.scan = ScanGeometry::from_fov({0, 0}, 6.4, 6.4, nx, ny);
  st.annular.gain_ADU_per_electron = 5;
  st.annular.dark_offset_ADU = 20;
  const DistortedScan scan = plan_scan(st, 1);
  AcquisitionSettings ideal = st;
  ideal.annular.shot_noise = false;
  const ComImages ref = com_from_segments(acquire_segmented(clean, layout, ideal, scan, NoiseStream{}), layout, nx, ny,
                                          ideal.annular);
  const ComImages com = com_from_segments(acquire_segmented(clean, layout, st, scan, NoiseStream{3, 0, 4}), layout, nx,
                                          ny, st.annular);
  // Clean COM by hand: Σ c_s f_s / Σ f_s.
  double cx = 0, cy = 0, cs = 0;
  for (std::size_t s = 0; s < nc; ++s) {
    const Point2 c = layout.centroid_mrad(0, s);
    cx += c.x * f[s], cy += c.y * f[s], cs += f[s];
  }
  EXPECT_NEAR(ref.x_mrad.data[0], cx / cs, 1e-12);
  EXPECT_NEAR(ref.y_mrad.data[0], cy / cs, 1e-12);
  const Moments mx = moments(com.x_mrad.data), my = moments(com.y_mrad.data);
  EXPECT_NEAR(mx.mean, cx / cs, 5 * mx.se_mean());
  EXPECT_NEAR(my.mean, cy / cs, 5 * my.se_mean());
  // Var(COM_x) ≈ Σ_s (∂COM_x/∂n_s)² λ_s = Σ_s ((c_s,x − COM_x)/Λ)² λ_s, λ_s = N f_s, Λ = Σ λ_s.
  const double N = st.electrons_per_position();
  double vx = 0, L = N * cs;
  for (std::size_t s = 0; s < nc; ++s) {
    const Point2 c = layout.centroid_mrad(0, s);
    vx += std::pow((c.x - cx / cs) / L, 2) * N * f[s];
  }
  std::printf("segmented COM_x: mean %.4f mrad (clean %.4f), variance %.5f (predicted %.5f)\n", mx.mean, cx / cs,
              mx.var, vx);
  EXPECT_NEAR(mx.var / vx, 1.0, 0.15);
}
