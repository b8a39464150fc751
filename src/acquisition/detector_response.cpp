#include "stemtwin/acquisition/detector_response.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "noise_keys.hpp"
#include "stemtwin/core/parallel.hpp"

namespace stemtwin {
namespace {

constexpr double kPi = 3.14159265358979323846;

void check_multipliers(std::span<const double> m, std::size_t n, const char* who) {
  if (!m.empty() && m.size() != n)
    throw std::invalid_argument(std::string(who) + ": " + std::to_string(m.size()) + " dose multipliers for " +
                                std::to_string(n) + " pixels");
}

}  // namespace

Image count_electrons(const Image& clean, double electrons_per_position, std::span<const double> dose_multiplier,
                      double detection_efficiency, bool shot_noise, const NoiseStream& st) {
  check_multipliers(dose_multiplier, clean.size(), "count_electrons");
  if (!(electrons_per_position >= 0) || !(detection_efficiency >= 0))
    throw std::invalid_argument("count_electrons: electrons per position and efficiency must be ≥ 0");
  Image out(clean.nx, clean.ny);
  const long ny = static_cast<long>(clean.ny);
  const std::size_t nx = clean.nx;
  ParallelErrors errors;
#pragma omp parallel for schedule(static)
  for (long iy = 0; iy < ny; ++iy) errors.run([&] {
    Rng rng = detail::noise_rng(st.seed, st.sample, st.channel, detail::kStageCount, static_cast<std::uint64_t>(iy));
    for (std::size_t ix = 0; ix < nx; ++ix) {
      const std::size_t i = static_cast<std::size_t>(iy) * nx + ix;
      const double m = dose_multiplier.empty() ? 1.0 : dose_multiplier[i];
      const double lambda = std::max(0.0, detection_efficiency * electrons_per_position * m * clean.data[i]);
      out.data[i] = shot_noise ? static_cast<double>(rng.poisson(lambda)) : lambda;
    }
  });
  errors.rethrow();
  return out;
}

Image apply_gain(const Image& electrons, double g, double k, const NoiseStream& st) {
  if (!(g >= 0)) throw std::invalid_argument("apply_gain: gain must be ≥ 0 ADU per electron");
  Image out(electrons.nx, electrons.ny);
  const long ny = static_cast<long>(electrons.ny);
  const std::size_t nx = electrons.nx;
  ParallelErrors errors;
#pragma omp parallel for schedule(static)
  for (long iy = 0; iy < ny; ++iy) errors.run([&] {
    Rng rng = detail::noise_rng(st.seed, st.sample, st.channel, detail::kStageGain, static_cast<std::uint64_t>(iy));
    for (std::size_t ix = 0; ix < nx; ++ix) {
      const std::size_t i = static_cast<std::size_t>(iy) * nx + ix;
      const double n = std::max(0.0, std::round(electrons.data[i]));
      // Sum of n Gamma(k, g/k) pulse heights is Gamma(n·k, g/k): one draw per pixel.
      out.data[i] = (k > 0 && n > 0) ? rng.gamma(n * k, g / k) : g * n;
    }
  });
  errors.rethrow();
  return out;
}

AfterglowBudget apply_afterglow(Image& signal, const ScanGeometry& geometry, const AfterglowParams& p) {
  AfterglowBudget b;
  for (double v : signal.data) b.input += v;
  if (!(p.time_constant_us > 0) || !(p.delayed_fraction > 0)) {
    b.recorded = b.input;
    return b;
  }
  if (signal.nx != geometry.nx() || signal.ny != geometry.ny())
    throw std::invalid_argument("apply_afterglow: image and scan geometry differ in size");
  if (p.delayed_fraction > 1) throw std::invalid_argument("afterglow delayed_fraction must be in [0, 1]");
  // Light from a pixel's delayed part is deposited uniformly over the dwell T and leaves
  // with rate 1/τ. Stored light L (still to be emitted) evolves exactly between pixels:
  //   within a pixel: emitted L(1 − e^{−T/τ}) + f·s·(1 − (τ/T)(1 − e^{−T/τ})),
  //                   L ← L·e^{−T/τ} + f·s·(τ/T)(1 − e^{−T/τ});
  //   during flyback F: L(1 − e^{−F/τ}) is lost, L ← L·e^{−F/τ}.
  const double tau = p.time_constant_us, T = geometry.dwell_us, F = geometry.flyback_us, f = p.delayed_fraction;
  const double eT = std::exp(-T / tau), eF = std::exp(-F / tau);
  const double stored_share = (tau / T) * (1.0 - eT);
  double L = 0;
  for (std::size_t iy = 0; iy < signal.ny; ++iy) {
    if (iy > 0) {
      b.lost_in_flyback += L * (1.0 - eF);
      L *= eF;
    }
    for (std::size_t ix = 0; ix < signal.nx; ++ix) {
      double& v = signal(iy, ix);
      const double s = v;
      const double from_store = L * (1.0 - eT);
      L = L * eT + f * s * stored_share;
      v = (1.0 - f) * s + f * s * (1.0 - stored_share) + from_store;
      b.recorded += v;
    }
  }
  b.remaining_after_frame = L;
  return b;
}

void apply_readout(Image& signal, double dark, double read_noise, int adc_bits, const NoiseStream& st) {
  if (!(read_noise >= 0)) throw std::invalid_argument("apply_readout: read noise must be ≥ 0 ADU");
  if (adc_bits < 0 || adc_bits > 52) throw std::invalid_argument("apply_readout: adc_bits must be in [0, 52]");
  const double full = adc_bits > 0 ? std::ldexp(1.0, adc_bits) - 1.0 : 0.0;
  const long ny = static_cast<long>(signal.ny);
  const std::size_t nx = signal.nx;
  ParallelErrors errors;
#pragma omp parallel for schedule(static)
  for (long iy = 0; iy < ny; ++iy) errors.run([&] {
    Rng rng = detail::noise_rng(st.seed, st.sample, st.channel, detail::kStageReadout, static_cast<std::uint64_t>(iy));
    for (std::size_t ix = 0; ix < nx; ++ix) {
      double& v = signal.data[static_cast<std::size_t>(iy) * nx + ix];
      v += dark;
      if (read_noise > 0) v += read_noise * rng.normal();
      if (adc_bits > 0) v = std::clamp(std::floor(v + 0.5), 0.0, full);
    }
  });
  errors.rethrow();
}

Image acquire_annular(const Image& clean, double electrons_per_position, std::span<const double> dose_multiplier,
                      const AnnularResponse& r, const ScanGeometry& geometry, const NoiseStream& st) {
  if (clean.nx != geometry.nx() || clean.ny != geometry.ny())
    throw std::invalid_argument("acquire_annular: clean image is " + std::to_string(clean.nx) + "×" +
                                std::to_string(clean.ny) + ", scan is " + std::to_string(geometry.nx()) + "×" +
                                std::to_string(geometry.ny()));
  Image n = count_electrons(clean, electrons_per_position, dose_multiplier, r.detection_efficiency, r.shot_noise, st);
  Image s = r.shot_noise ? apply_gain(n, r.gain_ADU_per_electron, r.gain_shape, st) : n;
  if (!r.shot_noise)  // mean counts: no pulse-height noise either, just the mean gain
    for (double& v : s.data) v *= r.gain_ADU_per_electron;
  apply_afterglow(s, geometry, r.afterglow);
  apply_readout(s, r.dark_offset_ADU, r.read_noise_ADU, r.adc_bits, st);
  return s;
}

double annular_expected_mean(double lambda, const AnnularResponse& r) {
  return lambda * r.gain_ADU_per_electron + r.dark_offset_ADU;
}

double annular_expected_variance(double lambda, const AnnularResponse& r) {
  const double g = r.gain_ADU_per_electron;
  const double spread = r.gain_shape > 0 ? 1.0 / r.gain_shape : 0.0;
  double v = r.shot_noise ? lambda * g * g * (1.0 + spread) : 0.0;
  v += r.read_noise_ADU * r.read_noise_ADU;
  if (r.adc_bits > 0) v += 1.0 / 12.0;  // Sheppard's correction; exact only when the input is smooth on 1 ADU
  return v;
}

double to_electrons(double value, const AnnularResponse& r) {
  if (!(r.gain_ADU_per_electron > 0)) throw std::invalid_argument("to_electrons: gain must be > 0");
  return (value - r.dark_offset_ADU) / r.gain_ADU_per_electron;
}

// ------------------------------------------------------------ sensitivity ----------------

double RadialSensitivity::at(double a) const {
  if (angle_mrad.empty()) return 1.0;
  if (angle_mrad.size() != sensitivity.size())
    throw std::invalid_argument("RadialSensitivity: angle and sensitivity lists differ in length");
  if (a <= angle_mrad.front()) return sensitivity.front();
  if (a >= angle_mrad.back()) return sensitivity.back();
  const auto it = std::upper_bound(angle_mrad.begin(), angle_mrad.end(), a);
  const std::size_t j = static_cast<std::size_t>(it - angle_mrad.begin());
  const double a0 = angle_mrad[j - 1], a1 = angle_mrad[j];
  const double t = a1 > a0 ? (a - a0) / (a1 - a0) : 0.0;
  return sensitivity[j - 1] + t * (sensitivity[j] - sensitivity[j - 1]);
}

Image annular_from_radial_bins(std::span<const double> bins, std::span<const double> edges, std::size_t nx,
                               std::size_t ny, double inner, double outer, const RadialSensitivity& sens) {
  if (edges.size() < 2) throw std::invalid_argument("annular_from_radial_bins: need at least 2 bin edges");
  const std::size_t nb = edges.size() - 1;
  if (bins.size() != nx * ny * nb)
    throw std::invalid_argument("annular_from_radial_bins: " + std::to_string(bins.size()) + " values for " +
                                std::to_string(nx * ny) + " positions × " + std::to_string(nb) + " bins");
  if (!(outer > inner)) throw std::invalid_argument("annular_from_radial_bins: outer angle must exceed inner");
  std::vector<double> w(nb, 0.0);
  for (std::size_t j = 0; j < nb; ++j) {
    const double a = edges[j], b = edges[j + 1];
    if (!(b > a)) throw std::invalid_argument("annular_from_radial_bins: bin edges must increase");
    const double lo = std::max(a, inner), hi = std::min(b, outer);
    if (hi > lo) w[j] = (hi - lo) / (b - a) * sens.at(0.5 * (lo + hi));
  }
  Image out(nx, ny);
  for (std::size_t i = 0; i < nx * ny; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < nb; ++j) s += w[j] * bins[i * nb + j];
    out.data[i] = s;
  }
  return out;
}

// ------------------------------------------------------------ segmented ------------------

Point2 SegmentLayout::centroid_mrad(std::size_t ring, std::size_t segment) const {
  if (ring >= rings() || segment >= segments) throw std::out_of_range("SegmentLayout: no such ring/segment");
  const double r1 = ring_edges_mrad[ring], r2 = ring_edges_mrad[ring + 1];
  const double dphi = 2.0 * kPi / static_cast<double>(segments);
  const double phi = rotation_deg * kPi / 180.0 + (static_cast<double>(segment) + 0.5) * dphi;
  const double rc = (2.0 / 3.0) * (r2 * r2 * r2 - r1 * r1 * r1) / (r2 * r2 - r1 * r1);
  const double h = 0.5 * dphi;
  const double sinc = segments == 1 ? 0.0 : std::sin(h) / h;  // a full ring has its centroid at 0
  return {rc * sinc * std::cos(phi), rc * sinc * std::sin(phi)};
}

std::vector<double> acquire_segmented(std::span<const double> clean, const SegmentLayout& layout,
                                      double electrons_per_position, std::span<const double> dose_multiplier,
                                      const AnnularResponse& response, const ScanGeometry& geometry,
                                      const NoiseStream& st) {
  const std::size_t nc = layout.channels(), np = geometry.size();
  if (nc == 0) throw std::invalid_argument("acquire_segmented: layout has no segments");
  if (clean.size() != np * nc)
    throw std::invalid_argument("acquire_segmented: " + std::to_string(clean.size()) + " values for " +
                                std::to_string(np) + " positions × " + std::to_string(nc) + " segments");
  if (st.channel >= 4096 || nc >= 4095) throw std::out_of_range("acquire_segmented: channel < 4096, < 4095 segments");
  std::vector<double> out(clean.size());
  for (std::size_t c = 0; c < nc; ++c) {
    Image img(geometry.nx(), geometry.ny());
    for (std::size_t i = 0; i < np; ++i) img.data[i] = clean[i * nc + c];
    NoiseStream sub = st;
    sub.channel = st.channel * 4096 + 1 + c;  // segment streams never collide with another detector's
    const Image noisy = acquire_annular(img, electrons_per_position, dose_multiplier, response, geometry, sub);
    for (std::size_t i = 0; i < np; ++i) out[i * nc + c] = noisy.data[i];
  }
  return out;
}

ComImages com_from_segments(std::span<const double> signals, const SegmentLayout& layout, std::size_t nx,
                            std::size_t ny, const AnnularResponse& response) {
  const std::size_t nc = layout.channels();
  if (nc == 0 || signals.size() != nx * ny * nc) throw std::invalid_argument("com_from_segments: size mismatch");
  std::vector<Point2> c(nc);
  for (std::size_t r = 0; r < layout.rings(); ++r)
    for (std::size_t s = 0; s < layout.segments; ++s) c[r * layout.segments + s] = layout.centroid_mrad(r, s);
  ComImages out{Image(nx, ny), Image(nx, ny)};
  for (std::size_t i = 0; i < nx * ny; ++i) {
    double sx = 0, sy = 0, sn = 0;
    for (std::size_t e = 0; e < nc; ++e) {
      const double n = to_electrons(signals[i * nc + e], response);
      sx += c[e].x * n;
      sy += c[e].y * n;
      sn += n;
    }
    if (sn > 0) out.x_mrad.data[i] = sx / sn, out.y_mrad.data[i] = sy / sn;
  }
  return out;
}

}  // namespace stemtwin
