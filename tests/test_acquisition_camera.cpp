// Pixelated cameras: counting (dead time), integrating (gain, PSF, read noise) and COM
// from noisy patterns (issue 6).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>

#include "stemtwin/acquisition/acquisition.hpp"

using namespace stemtwin;

namespace {

struct Stats {
  double mean = 0, var = 0;
  std::size_t n = 0;
};

template <class V>
Stats stats(const V& v) {
  Stats s;
  s.n = v.size();
  for (auto x : v) s.mean += x;
  s.mean /= s.n;
  for (auto x : v) s.var += (x - s.mean) * (x - s.mean);
  s.var /= (s.n - 1);
  return s;
}

}  // namespace

TEST(AcquisitionCamera, CountingWithoutDeadTimeIsPoisson) {
  // 512 positions × 8×8 pixels of fraction 1/64 at N = 640: λ = 10 per pixel, 32768
  // samples; 5 SE with SE(mean) = √(λ/n) = 0.017, SE(var) ≈ √((λ + 2λ²)/n) = 0.08.
  std::vector<float> stack(512 * 64, 1.0f / 64);
  CameraResponse cam;
  apply_camera(stack, 8, 8, 640, {}, 2, cam, NoiseStream{3, 0, 0});
  const Stats s = stats(stack);
  const double se_m = std::sqrt(10.0 / s.n), se_v = std::sqrt((10.0 + 200.0) / s.n);
  EXPECT_NEAR(s.mean, 10.0, 5 * se_m);
  EXPECT_NEAR(s.var, 10.0, 5 * se_v);
}

TEST(AcquisitionCamera, DeadTimeSaturationCurve) {
  // Dwell T = 200 τ_d; incident rates rτ from 0.05 to 5. The simulated mean over 1000 pixels
  // must match the exact mean of the live-start model (5 SE, SE = sample sd/√n), and that
  // mean must lie near the stationary curves rT/(1+rτ) and rT·e^{−rτ}: the start edge adds
  // at most one count (stated bound, checked).
  const double td = 50e-9, T = 200 * td;
  std::printf("   r·tau   nonparalyzable: sim / exact / stationary     paralyzable: sim / exact / stationary\n");
  for (double rt : {0.05, 0.3, 1.0, 2.0, 5.0}) {
    const double lambda = rt / td * T;
    double line[2][3];
    for (int model = 0; model < 2; ++model) {
      CountingParams p;
      p.dead_time_s = td;
      p.model = model == 0 ? DeadTimeModel::NonParalyzable : DeadTimeModel::Paralyzable;
      Rng rng(17, RngPurpose::Noise, 100 + model, static_cast<std::uint64_t>(rt * 1000));
      std::vector<double> counts(1000);
      for (double& c : counts) c = static_cast<double>(count_with_dead_time(lambda, T, p, rng));
      const Stats s = stats(counts);
      const double exact = counting_mean_counts(lambda, T, td, p.model);
      const double stationary = counting_expected_counts(lambda, T, td, p.model);
      EXPECT_NEAR(s.mean, exact, 5 * std::sqrt(s.var / s.n) + 1e-9) << "rτ " << rt << " model " << model;
      EXPECT_LE(std::fabs(exact - stationary), 1.0) << "rτ " << rt << " model " << model;
      line[model][0] = s.mean, line[model][1] = exact, line[model][2] = stationary;
    }
    std::printf("   %5.2f   %8.2f %8.2f %8.2f        %8.2f %8.2f %8.2f\n", rt, line[0][0], line[0][1], line[0][2],
                line[1][0], line[1][1], line[1][2]);
  }
  // Saturation: non-paralyzable approaches T/τ (= 200); paralyzable falls back to the one
  // count the live start always gives (stationary: 0).
  EXPECT_GT(counting_mean_counts(1e6, T, td, DeadTimeModel::NonParalyzable), 199.0);
  EXPECT_NEAR(counting_mean_counts(1e4, T, td, DeadTimeModel::Paralyzable), 1.0, 1e-9);
  EXPECT_LT(counting_expected_counts(1e4, T, td, DeadTimeModel::Paralyzable), 1e-9);
  // A 12-bit counter stops at 4095.
  CountingParams clip;
  clip.counter_max = 4095;
  Rng rng(1);
  EXPECT_EQ(count_with_dead_time(1e5, T, clip, rng), 4095u);
}

TEST(AcquisitionCamera, IntegratingModeMomentsAndPsf) {
  // Without PSF: mean λg + dark, variance λg²(1 + 1/k) + σ_read² (compound Poisson, see
  // test_acquisition_noise). λ = 5, g = 20, k = 4, dark 10, σ = 2: var = 2504.
  // SE(var) ≈ var·√(2/n)·√(1 + excess/2); with n = 32768 and modest excess kurtosis
  // (< 1 for λ = 5), 6 % is > 5 SE.
  CameraResponse cam;
  cam.mode = CameraMode::Integrating;
  cam.integrating.gain_ADU_per_electron = 20;
  cam.integrating.gain_shape = 4;
  cam.integrating.dark_offset_ADU = 10;
  cam.integrating.read_noise_ADU = 2;
  std::vector<float> stack(512 * 64, 1.0f / 64);
  apply_camera(stack, 8, 8, 320, {}, 2, cam, NoiseStream{4, 0, 0});
  const Stats s = stats(stack);
  const double var = 5 * 400 * 1.25 + 4;
  std::printf("integrating: mean %.3f (expected 110), variance %.1f (expected %.1f)\n", s.mean, s.var, var);
  EXPECT_NEAR(s.mean, 110.0, 5 * std::sqrt(var / s.n));
  EXPECT_NEAR(s.var / var, 1.0, 0.06);

  // With a Gaussian PSF of σ = 1 px on a 32×32 uniform pattern: the total per pattern is
  // unchanged (charge conserved, edges folded) and the shot noise is blurred, so the
  // per-pixel variance falls by Σ K² = (Σ_j k_j²)² (1-D kernel k, ~1/(4πσ²) = 0.08).
  // Interior pixels only (≥ 5 px from the edges, where folding changes the kernel).
  CameraResponse blur;
  blur.mode = CameraMode::Integrating;
  blur.integrating.psf_sigma_px = 1.0;
  CameraResponse sharp = blur;
  sharp.integrating.psf_sigma_px = 0;
  std::vector<float> a(64 * 1024, 1.0f / 1024), b = a;
  apply_camera(a, 32, 32, 10240, {}, 2, sharp, NoiseStream{8, 0, 0});
  apply_camera(b, 32, 32, 10240, {}, 2, blur, NoiseStream{8, 0, 0});
  std::vector<double> inner;
  for (std::size_t p = 0; p < 64; ++p) {
    double ta = 0, tb = 0;
    for (std::size_t j = 0; j < 1024; ++j) ta += a[p * 1024 + j], tb += b[p * 1024 + j];
    ASSERT_NEAR(ta, tb, 1e-3 * ta);  // float accumulation in the pattern: 1e-3 relative
    for (std::size_t y = 5; y < 27; ++y)
      for (std::size_t x = 5; x < 27; ++x) inner.push_back(b[p * 1024 + y * 32 + x]);
  }
  double k2 = 0, ks = 0;
  for (int j = -4; j <= 4; ++j) ks += std::exp(-0.5 * j * j);
  for (int j = -4; j <= 4; ++j) k2 += std::pow(std::exp(-0.5 * j * j) / ks, 2);
  const Stats sb = stats(inner);
  // 30976 correlated samples (~1/0.08 ≈ 12 px per independent one): ~2500 effective, so
  // the relative SE of the variance is ≈ √(2/2500) = 2.8 %; ±15 %.
  std::printf("PSF: blurred variance %.3f, expected λ·ΣK² = %.3f\n", sb.var, 10.0 * k2 * k2);
  EXPECT_NEAR(sb.mean, 10.0, 0.1);
  EXPECT_NEAR(sb.var / (10.0 * k2 * k2), 1.0, 0.15);
}

TEST(AcquisitionCamera, PatternElectronsFollowTheDoseMultiplier) {
  // Total counts per pattern have mean N·m_p·Σf: alternate positions at m = 0.5 and 1.5.
  const std::size_t np = 2000, npx = 16;
  std::vector<float> stack(np * npx, 1.0f / npx);
  std::vector<double> m(np);
  for (std::size_t p = 0; p < np; ++p) m[p] = p % 2 ? 1.5 : 0.5;
  CameraResponse cam;
  apply_camera(stack, 4, 4, 200, m, 2, cam, NoiseStream{2, 0, 0});
  double t[2] = {0, 0};
  for (std::size_t p = 0; p < np; ++p)
    for (std::size_t j = 0; j < npx; ++j) t[p % 2] += stack[p * npx + j];
  // Means 100 and 300 over 1000 patterns each: SE √(100/1000) = 0.32, √(300/1000) = 0.55.
  EXPECT_NEAR(t[0] / 1000, 100.0, 5 * 0.32);
  EXPECT_NEAR(t[1] / 1000, 300.0, 5 * 0.55);
}

TEST(AcquisitionCamera, ComFromNoisyPatternsIsUnbiasedWithCountingNoise) {
  // A 16×16 pattern: a disc of radius 4 px centred at (8.6, 7.3) px; sampling 2 mrad/px,
  // centre (8, 8) → clean COM ≈ (1.2, −1.4) mrad (computed from the pattern itself).
  const std::size_t pn = 16, np = 4096;
  std::vector<float> pattern(pn * pn, 0.0f);
  double tot = 0;
  for (std::size_t y = 0; y < pn; ++y)
    for (std::size_t x = 0; x < pn; ++x)
      if (std::hypot(x - 8.6, y - 7.3) < 4.0) pattern[y * pn + x] = 1.0f, tot += 1;
  for (float& v : pattern) v = static_cast<float>(v / tot);
  std::vector<float> stack;
  for (std::size_t p = 0; p < np; ++p) stack.insert(stack.end(), pattern.begin(), pattern.end());
  const PatternSampling smp{2, 2, 8, 8};
  const ComImages clean = com_from_patterns(stack, 64, 64, pn, pn, smp);
  CameraResponse cam;
  apply_camera(stack, pn, pn, 250, {}, 2, cam, NoiseStream{6, 0, 0});
  const ComImages noisy = com_from_patterns(stack, 64, 64, pn, pn, smp);
  const Stats sx = stats(noisy.x_mrad.data), sy = stats(noisy.y_mrad.data);
  // Expected variance of a COM from Λ = 250 Poisson electrons: Var(k)/Λ per axis
  // (first order), Var(k) the clean pattern's angular variance.
  double vk = 0;
  for (std::size_t y = 0; y < pn; ++y)
    for (std::size_t x = 0; x < pn; ++x)
      vk += pattern[y * pn + x] * std::pow((x - 8.0) * 2 - clean.x_mrad.data[0], 2);
  std::printf("pattern COM_x: mean %.4f (clean %.4f), variance %.5f (predicted %.5f)\n", sx.mean, clean.x_mrad.data[0],
              sx.var, vk / 250);
  EXPECT_NEAR(sx.mean, clean.x_mrad.data[0], 5 * std::sqrt(sx.var / np));
  EXPECT_NEAR(sy.mean, clean.y_mrad.data[0], 5 * std::sqrt(sy.var / np));
  // 4096 samples: relative SE of the variance 2.2 %; ±12 % allows the first-order
  // approximation (~1/Λ = 0.4 %) with > 5 SE.
  EXPECT_NEAR(sx.var / (vk / 250), 1.0, 0.12);
}
