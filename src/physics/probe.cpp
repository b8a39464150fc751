#include "stemtwin/physics/probe.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"

namespace stemtwin {
double aperture(double alpha, double phi, double cutoff, double sx, double sy) {
  const double denom = std::sqrt(std::pow(std::cos(phi) * sx, 2) + std::pow(std::sin(phi) * sy, 2));
  return std::clamp((cutoff - alpha) / denom + 0.5, 0.0, 1.0);
}

ComplexBuffer probe_fourier(const Grid& g, const ProbeOptics& o, double defocus_offset) {
  if (!(o.semiangle_mrad > 0)) throw std::invalid_argument("probe semi-angle must be > 0 mrad");
  const double lambda = wavelength_A(o.energy_eV);
  const double cutoff = o.semiangle_mrad * 1e-3;
  if (cutoff / lambda > g.k_max())
    throw std::invalid_argument("probe semi-angle " + std::to_string(o.semiangle_mrad) + " mrad exceeds the grid's band limit (" +
                                std::to_string(g.k_max() * lambda * 1e3) + " mrad): use a finer sampling");
  const double sx = lambda / g.lx, sy = lambda / g.ly;  // angular sampling, rad
  Aberrations ab = o.aberrations;
  ab.C[0] -= defocus_offset;  // defocus = −C10
  ComplexBuffer psi(g.size());
  double norm = 0;
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const double kx = g.kx(i), ky = g.ky(j);
      const double alpha = lambda * std::sqrt(kx * kx + ky * ky);
      const double phi = std::atan2(ky, kx);
      const double a = aperture(alpha, phi, cutoff, sx, sy);
      if (a <= 0) continue;
      const double chi = ab.chi(alpha, phi, lambda);
      psi[j * g.nx + i] = cfloat(static_cast<float>(a * std::cos(-chi)), static_cast<float>(a * std::sin(-chi)));
      norm += a * a;
    }
  // Unnormalised inverse FFT of x has Σ|ψ(r)|² = N Σ|x|²; scale so that equals 1.
  const auto s = static_cast<float>(1.0 / std::sqrt(norm * static_cast<double>(g.size())));
  for (std::size_t i = 0; i < g.size(); ++i) psi[i] *= s;
  return psi;
}

void shift_fourier(const Grid& g, Point2 r0, const cfloat* in, cfloat* out) {
  // exp(−2πi(kx x0 + ky y0)) = ex(kx)·ey(ky): nx + ny sincos instead of nx·ny.
  thread_local std::vector<cfloat> ex, ey;
  ex.resize(g.nx);
  ey.resize(g.ny);
  for (std::size_t i = 0; i < g.nx; ++i) {
    const double a = -2.0 * kPi * g.kx(i) * r0.x;
    ex[i] = cfloat(static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a)));
  }
  for (std::size_t j = 0; j < g.ny; ++j) {
    const double a = -2.0 * kPi * g.ky(j) * r0.y;
    ey[j] = cfloat(static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a)));
  }
  for (std::size_t j = 0; j < g.ny; ++j) {
    const cfloat e = ey[j];
    const cfloat* src = in + j * g.nx;
    cfloat* dst = out + j * g.nx;
    for (std::size_t i = 0; i < g.nx; ++i) dst[i] = src[i] * (ex[i] * e);
  }
}

ComplexBuffer probe_real_space(const Grid& g, const ProbeOptics& o, Point2 position, const Fft2& fft) {
  const ComplexBuffer k = probe_fourier(g, o);
  ComplexBuffer psi(g.size());
  shift_fourier(g, position, k.data(), psi.data());
  fft.backward(psi.data());
  return psi;
}

FocalQuadrature focal_spread_quadrature(double sigma, std::size_t n) {
  FocalQuadrature q;
  if (!(sigma > 0) || n <= 1) {
    q.defocus_A = {0.0};
    q.weight = {1.0};
    return q;
  }
  if (n > 64) throw std::invalid_argument("focal spread quadrature: at most 64 points");
  // Nodes and weights of the probabilists' Gauss–Hermite rule (weight e^{−x²/2}) from the
  // eigen-decomposition of its Jacobi matrix (Golub–Welsch), by symmetric QR iteration on
  // a small dense matrix.
  std::vector<double> a(n * n, 0.0);
  for (std::size_t i = 0; i + 1 < n; ++i) a[i * n + i + 1] = a[(i + 1) * n + i] = std::sqrt(double(i + 1));
  std::vector<double> v(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
  // Jacobi eigenvalue sweeps (n ≤ 64: cheap and robust).
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (std::size_t p = 0; p < n; ++p)
      for (std::size_t r = p + 1; r < n; ++r) off += a[p * n + r] * a[p * n + r];
    if (off < 1e-30) break;
    for (std::size_t p = 0; p < n; ++p)
      for (std::size_t r = p + 1; r < n; ++r) {
        const double apr = a[p * n + r];
        if (std::fabs(apr) < 1e-300) continue;
        const double theta = (a[r * n + r] - a[p * n + p]) / (2 * apr);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (std::size_t k = 0; k < n; ++k) {
          const double akp = a[k * n + p], akr = a[k * n + r];
          a[k * n + p] = c * akp - s * akr;
          a[k * n + r] = s * akp + c * akr;
        }
        for (std::size_t k = 0; k < n; ++k) {
          const double apk = a[p * n + k], ark = a[r * n + k];
          a[p * n + k] = c * apk - s * ark;
          a[r * n + k] = s * apk + c * ark;
        }
        for (std::size_t k = 0; k < n; ++k) {
          const double vkp = v[k * n + p], vkr = v[k * n + r];
          v[k * n + p] = c * vkp - s * vkr;
          v[k * n + r] = s * vkp + c * vkr;
        }
      }
  }
  std::vector<std::pair<double, double>> nw;
  for (std::size_t i = 0; i < n; ++i) nw.emplace_back(a[i * n + i], v[i] * v[i]);  // weight = first component²
  std::sort(nw.begin(), nw.end());
  double wsum = 0;
  for (auto& p : nw) wsum += p.second;
  for (auto& p : nw) {
    q.defocus_A.push_back(sigma * p.first);
    q.weight.push_back(p.second / wsum);
  }
  return q;
}

std::vector<double> chi_on_aperture(const Grid& g, const ProbeOptics& o) {
  const double lambda = wavelength_A(o.energy_eV);
  std::vector<double> chi(g.size(), 0.0);
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const double kx = g.kx(i), ky = g.ky(j);
      const double alpha = lambda * std::sqrt(kx * kx + ky * ky);
      if (alpha > o.semiangle_mrad * 1e-3) continue;
      chi[j * g.nx + i] = o.aberrations.chi(alpha, std::atan2(ky, kx), lambda);
    }
  return chi;
}

std::vector<std::array<double, 2>> probe_profile(const Grid& g, const ProbeOptics& o, const Fft2& fft) {
  const Point2 centre{g.lx / 2, g.ly / 2};
  const ComplexBuffer psi = probe_real_space(g, o, centre, fft);
  const double dr = std::min(g.dx(), g.dy());
  const std::size_t nb = static_cast<std::size_t>(std::min(g.lx, g.ly) / 2 / dr);
  std::vector<double> sum(nb, 0.0), cnt(nb, 0.0);
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const double r = std::hypot(double(i) * g.dx() - centre.x, double(j) * g.dy() - centre.y);
      const auto b = static_cast<std::size_t>(r / dr);
      if (b >= nb) continue;
      sum[b] += std::norm(psi[j * g.nx + i]);
      cnt[b] += 1;
    }
  std::vector<std::array<double, 2>> out;
  for (std::size_t b = 0; b < nb; ++b)
    if (cnt[b] > 0) out.push_back({(double(b) + 0.5) * dr, sum[b] / cnt[b]});
  return out;
}

double scherzer_defocus_A(double Cs, double energy_eV) {
  return (Cs >= 0 ? 1.0 : -1.0) * std::sqrt(1.5 * std::fabs(Cs) * wavelength_A(energy_eV));
}

double probe_fwhm_A(const Grid& g, const ComplexBuffer& psi) {
  std::size_t peak = 0;
  for (std::size_t i = 1; i < g.size(); ++i)
    if (std::norm(psi[i]) > std::norm(psi[peak])) peak = i;
  const std::size_t py = peak / g.nx, px = peak % g.nx;
  const double half = std::norm(psi[peak]) / 2;
  auto at = [&](long i) { return double(std::norm(psi[py * g.nx + std::size_t((i % long(g.nx) + long(g.nx)) % long(g.nx))])); };
  // Walk left and right to the half-maximum crossings, interpolating linearly.
  double width = 0;
  for (int dir : {-1, 1}) {
    long i = long(px);
    while (at(i + dir) > half && std::labs(i - long(px)) < long(g.nx / 2)) i += dir;
    const double a = at(i), b = at(i + dir);
    width += (std::labs(i - long(px)) + (a - half) / (a - b)) * g.dx();
  }
  return width;
}

}  // namespace stemtwin
