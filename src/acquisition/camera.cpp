#include "stemtwin/acquisition/camera.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "noise_keys.hpp"
#include "stemtwin/core/parallel.hpp"

namespace stemtwin {
namespace {

double exponential(Rng& rng, double rate) {
  double u = rng.uniform();
  while (u <= 0.0) u = rng.uniform();
  return -std::log(u) / rate;
}

std::size_t reflect(long i, std::size_t n) {
  // Half-sample symmetric: −1 → 0, n → n − 1; repeated for kernels wider than the pattern.
  const long m = static_cast<long>(n);
  for (;;) {
    if (i < 0) i = -i - 1;
    else if (i >= m) i = 2 * m - i - 1;
    else return static_cast<std::size_t>(i);
  }
}

}  // namespace

std::uint64_t count_with_dead_time(double lambda, double dwell_s, const CountingParams& p, Rng& rng) {
  std::uint64_t n = 0;
  if (!(lambda > 0)) return 0;
  if (!(p.dead_time_s > 0)) {
    n = rng.poisson(lambda);
  } else {
    if (!(dwell_s > 0)) throw std::invalid_argument("counting camera: dwell must be > 0 with dead time");
    const double r = lambda / dwell_s, td = p.dead_time_s;
    if (p.model == DeadTimeModel::NonParalyzable) {
      // Recorded events form a renewal process with intervals τ_d + Exp(r).
      for (double t = exponential(rng, r); t < dwell_s; t += td + exponential(rng, r)) ++n;
    } else {
      // Every arrival restarts the dead time; an arrival counts if the gap before it ≥ τ_d.
      double prev = -std::numeric_limits<double>::infinity();
      for (double t = exponential(rng, r); t < dwell_s; t += exponential(rng, r)) {
        if (t - prev >= td) ++n;
        prev = t;
      }
    }
  }
  if (p.counter_max > 0) n = std::min(n, p.counter_max);
  return n;
}

double counting_expected_counts(double lambda, double dwell_s, double td, DeadTimeModel model) {
  if (!(lambda > 0)) return 0;
  if (!(td > 0)) return lambda;
  const double r = lambda / dwell_s;
  return model == DeadTimeModel::NonParalyzable ? lambda / (1.0 + r * td) : lambda * std::exp(-r * td);
}

void blur_gaussian(std::span<float> pattern, std::size_t nx, std::size_t ny, double sigma) {
  if (!(sigma > 0)) return;
  if (pattern.size() != nx * ny) throw std::invalid_argument("blur_gaussian: size mismatch");
  const long R = static_cast<long>(std::ceil(4.0 * sigma));
  std::vector<double> k(static_cast<std::size_t>(2 * R + 1));
  double ks = 0;
  for (long j = -R; j <= R; ++j) ks += k[static_cast<std::size_t>(j + R)] = std::exp(-0.5 * double(j * j) / (sigma * sigma));
  for (double& v : k) v /= ks;
  // Scatter (each pixel spreads its charge; what falls off an edge is folded back), rows
  // then columns; scattering keeps the total exactly (up to rounding).
  std::vector<double> tmp(nx * ny, 0.0), out(nx * ny, 0.0);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      const double v = pattern[y * nx + x];
      if (v == 0) continue;
      for (long j = -R; j <= R; ++j) tmp[y * nx + reflect(static_cast<long>(x) + j, nx)] += k[static_cast<std::size_t>(j + R)] * v;
    }
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      const double v = tmp[y * nx + x];
      if (v == 0) continue;
      for (long j = -R; j <= R; ++j) out[reflect(static_cast<long>(y) + j, ny) * nx + x] += k[static_cast<std::size_t>(j + R)] * v;
    }
  for (std::size_t i = 0; i < nx * ny; ++i) pattern[i] = static_cast<float>(out[i]);
}

void apply_camera(std::span<float> stack, std::size_t pnx, std::size_t pny, double electrons_per_position,
                  std::span<const double> dose_multiplier, double dwell_us, const CameraResponse& cam,
                  const NoiseStream& st) {
  const std::size_t npx = pnx * pny;
  if (npx == 0 || stack.size() % npx != 0)
    throw std::invalid_argument("apply_camera: stack of " + std::to_string(stack.size()) + " values is not a whole number of " +
                                std::to_string(pnx) + "×" + std::to_string(pny) + " patterns");
  const std::size_t np = stack.size() / npx;
  if (!dose_multiplier.empty() && dose_multiplier.size() != np)
    throw std::invalid_argument("apply_camera: " + std::to_string(dose_multiplier.size()) + " dose multipliers for " +
                                std::to_string(np) + " positions");
  if (!(electrons_per_position >= 0) || !(cam.detection_efficiency >= 0))
    throw std::invalid_argument("apply_camera: electrons per position and efficiency must be ≥ 0");
  const IntegratingParams& ip = cam.integrating;
  if (cam.mode == CameraMode::Integrating && (ip.adc_bits < 0 || ip.adc_bits > 52 || !(ip.read_noise_ADU >= 0)))
    throw std::invalid_argument("apply_camera: adc_bits must be in [0, 52] and read noise ≥ 0");
  const double dwell_s = dwell_us * 1e-6;
  const double full = ip.adc_bits > 0 ? std::ldexp(1.0, ip.adc_bits) - 1.0 : 0.0;
  const long lnp = static_cast<long>(np);
  ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 16)
  for (long lp = 0; lp < lnp; ++lp) errors.run([&] {
    const std::size_t p = static_cast<std::size_t>(lp);
    Rng rng = detail::noise_rng(st.seed, st.sample, st.channel, detail::kStageCamera, p);
    const double e = cam.detection_efficiency * electrons_per_position * (dose_multiplier.empty() ? 1.0 : dose_multiplier[p]);
    std::span<float> pat = stack.subspan(p * npx, npx);
    if (cam.mode == CameraMode::Counting) {
      for (float& v : pat) {
        const double lambda = std::max(0.0, e * static_cast<double>(v));
        if (!cam.shot_noise) {
          v = static_cast<float>(counting_expected_counts(lambda, dwell_s, cam.counting.dead_time_s, cam.counting.model));
          if (cam.counting.counter_max > 0) v = std::min(v, static_cast<float>(cam.counting.counter_max));
        } else {
          v = static_cast<float>(count_with_dead_time(lambda, dwell_s, cam.counting, rng));
        }
      }
    } else {
      for (float& v : pat) {
        const double lambda = std::max(0.0, e * static_cast<double>(v));
        if (!cam.shot_noise) {
          v = static_cast<float>(lambda * ip.gain_ADU_per_electron);
          continue;
        }
        const double n = static_cast<double>(rng.poisson(lambda));
        const double s = (ip.gain_shape > 0 && n > 0) ? rng.gamma(n * ip.gain_shape, ip.gain_ADU_per_electron / ip.gain_shape)
                                                      : ip.gain_ADU_per_electron * n;
        v = static_cast<float>(s);
      }
      blur_gaussian(pat, pnx, pny, ip.psf_sigma_px);
      for (float& v : pat) {
        double s = static_cast<double>(v) + ip.dark_offset_ADU;
        if (cam.shot_noise && ip.read_noise_ADU > 0) s += ip.read_noise_ADU * rng.normal();
        if (ip.adc_bits > 0) s = std::clamp(std::floor(s + 0.5), 0.0, full);
        v = static_cast<float>(s);
      }
    }
  });
  errors.rethrow();
}

ComImages com_from_patterns(std::span<const float> stack, std::size_t nx, std::size_t ny, std::size_t pnx,
                            std::size_t pny, const PatternSampling& s, double offset) {
  const std::size_t npx = pnx * pny;
  if (stack.size() != nx * ny * npx) throw std::invalid_argument("com_from_patterns: stack size does not match scan × pattern");
  ComImages out{Image(nx, ny), Image(nx, ny)};
  for (std::size_t p = 0; p < nx * ny; ++p) {
    double sx = 0, sy = 0, sn = 0;
    for (std::size_t ky = 0; ky < pny; ++ky)
      for (std::size_t kx = 0; kx < pnx; ++kx) {
        const double v = static_cast<double>(stack[p * npx + ky * pnx + kx]) - offset;
        sx += v * (static_cast<double>(kx) - s.center_x_px) * s.mrad_per_px_x;
        sy += v * (static_cast<double>(ky) - s.center_y_px) * s.mrad_per_px_y;
        sn += v;
      }
    if (sn > 0) out.x_mrad.data[p] = sx / sn, out.y_mrad.data[p] = sy / sn;
  }
  return out;
}

}  // namespace stemtwin

namespace stemtwin {

double counting_mean_counts(double lambda, double T, double td, DeadTimeModel model) {
  if (!(lambda > 0)) return 0;
  if (!(td > 0)) return lambda;
  const double r = lambda / T;
  if (model == DeadTimeModel::Paralyzable) {
    if (T < td) return 1.0 - std::exp(-r * T);
    return (1.0 - std::exp(-r * td)) + r * (T - td) * std::exp(-r * td);
  }
  // Σ_k P(Gamma(k,1) < x_k), x_k = r(T − (k−1)τ); P(Gamma(k,1) < x) = 1 − Σ_{j<k} e^{−x}x^j/j!.
  // Poisson(j; x) is below 1e-40 beyond 15√x + 30 from its mean, so a term is 1 (k far
  // below x) or 0 (k far above x, and every later one too) except in a band of width ~√x.
  double mean = 0;
  for (std::size_t k = 1;; ++k) {
    const double x = r * (T - static_cast<double>(k - 1) * td);
    if (!(x > 0)) break;
    const double band = 15.0 * std::sqrt(x) + 30.0, kd = static_cast<double>(k);
    if (kd > x + band) break;
    if (kd < x - band) {
      mean += 1.0;
      continue;
    }
    double tail = 0;  // Σ_{j<k} Poisson(j; x)
    const double lx = std::log(x);
    const std::size_t j0 = x - band > 0 ? static_cast<std::size_t>(x - band) : 0;
    for (std::size_t j = j0; j < k; ++j)
      tail += std::exp(-x + static_cast<double>(j) * lx - std::lgamma(static_cast<double>(j) + 1.0));
    mean += std::max(0.0, 1.0 - tail);
  }
  return mean;
}

}  // namespace stemtwin
