#include "stemtwin/physics/absorptive.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <map>
#include <stdexcept>
#include <utility>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/physics/multislice.hpp"

namespace stemtwin {
namespace {

constexpr double kBoundaryTolerance_A = 1e-6;  // as the slicer (potential.cpp)
constexpr double kTableStep = 0.002;           // 1/Å, f_e tables (linear interpolation: < 1e-6 relative)
constexpr double kKernelStep = 0.05;           // 1/Å, F(Q) tables (linear interpolation: < 1e-3 relative)
constexpr double kPanel = 0.25;                // 1/Å, Gauss–Legendre panel width in |q| ...
constexpr double kWidePanel = 2.0;             // ... and beyond |q| = 20 1/Å, where f_e ∝ 1/q² is smooth
constexpr double kWideFrom = 20.0;
constexpr int kAzimuth = 256;                  // trapezoid intervals over [0, π] where |q+Q| can reach 0 ...
constexpr int kAzimuthSmooth = 32;             // ... and where |q+Q| ≥ ||q| − |Q|| ≥ 3 1/Å (smooth, periodic)
constexpr double kAbsorptionMaxQ = 50.0;       // 1/Å, all-angle absorption integral's upper limit

// 6-point Gauss–Legendre rule on [−1, 1].
constexpr double kGLx[6] = {-0.9324695142031521, -0.6612093864662645, -0.2386191860831909,
                            0.2386191860831909,  0.6612093864662645,  0.9324695142031521};
constexpr double kGLw[6] = {0.1713244923791704, 0.3607615730481386, 0.4679139345726910,
                            0.4679139345726910, 0.3607615730481386, 0.1713244923791704};

/// f_e(k) and its Debye–Waller-damped form g(k) = f_e(k)·e^{−2π²u²k²} on [0, kmax].
struct FeTables {
  std::vector<double> f, g;
  double at(const std::vector<double>& t, double k) const {
    const double x = k * (1.0 / kTableStep);
    const auto i = std::min<std::size_t>(std::size_t(x), t.size() - 2);
    const double w = x - double(i);
    return t[i] + w * (t[i + 1] - t[i]);
  }
};

FeTables fe_tables(int Z, double rms, double kmax, Parametrization p) {
  const auto n = std::size_t(std::ceil(kmax / kTableStep)) + 2;
  FeTables t;
  t.f.resize(n);
  t.g.resize(n);
  const double c = 2.0 * kPi * kPi * rms * rms;
  for (std::size_t i = 0; i < n; ++i) {
    const double k = double(i) * kTableStep;
    t.f[i] = scattering_factor(Z, k, p);
    t.g[i] = t.f[i] * std::exp(-c * k * k);
  }
  return t;
}

/// F(Q) of the header by polar quadrature over q_inner ≤ |q| < q_outer.
double form_factor(const FeTables& t, double rms, double Q, double q0, double q1) {
  if (!(q1 > q0)) return 0.0;
  const double eQ = std::exp(-2.0 * kPi * kPi * rms * rms * Q * Q);
  // Panel edges: kPanel wide up to kWideFrom, kWidePanel beyond.
  std::vector<double> edges{q0};
  while (edges.back() < q1 - 1e-12) {
    const double e = edges.back();
    const double next = e < kWideFrom ? std::min(e + kPanel, kWideFrom) : e + kWidePanel;
    edges.push_back(std::min(q1, next));
  }
  const auto cosines = [](int M) {
    std::vector<double> c(std::size_t(M) + 1);
    for (int j = 0; j <= M; ++j) c[std::size_t(j)] = std::cos(double(j) * kPi / M);
    return c;
  };
  const std::vector<double> cos_sharp = cosines(kAzimuth), cos_smooth = cosines(kAzimuthSmooth);
  double sum = 0;
  for (std::size_t pnl = 0; pnl + 1 < edges.size(); ++pnl) {
    const double a = edges[pnl], h = edges[pnl + 1] - edges[pnl];
    for (int n = 0; n < 6; ++n) {
      const double q = a + 0.5 * h * (kGLx[n] + 1.0);
      const double fq = t.at(t.f, q), gq = t.at(t.g, q);
      // The integrand is sharp in the azimuth only where |q + Q| passes near 0 (f_e's width
      // there is ~0.1 1/Å); elsewhere it is smooth and periodic, where the trapezoid rule
      // converges exponentially.
      const bool sharp = std::fabs(q - Q) < 3.0;
      const int M = sharp ? kAzimuth : kAzimuthSmooth;
      const std::vector<double>& cs = sharp ? cos_sharp : cos_smooth;
      const double dphi = kPi / M, qq = q * q + Q * Q, q2 = 2.0 * q * Q;
      double az = 0;
      for (int j = 0; j <= M; ++j) {
        const double pp = std::sqrt(std::max(0.0, qq + q2 * cs[std::size_t(j)]));
        const double v = fq * t.at(t.f, pp) * eQ - gq * t.at(t.g, pp);
        az += (j == 0 || j == M) ? 0.5 * v : v;
      }
      // ∫₀^{2π} dφ = 2 ∫₀^π dφ (even in φ); polar Jacobian q.
      sum += 0.5 * h * kGLw[n] * q * 2.0 * az * dphi;
    }
  }
  return sum;
}

/// F(Q) tabulated on [0, Qmax] in steps of kKernelStep.
struct KernelTable {
  std::vector<double> v;
  double at(double Q) const {
    const double x = Q / kKernelStep;
    if (x >= double(v.size() - 1)) return v.back();
    const auto i = std::size_t(x);
    const double w = x - double(i);
    return v[i] + w * (v[i + 1] - v[i]);
  }
};

KernelTable kernel_table(const FeTables& t, double rms, double Qmax, double q0, double q1) {
  KernelTable k;
  const auto n = std::size_t(std::ceil(Qmax / kKernelStep)) + 2;
  k.v.resize(n);
#pragma omp parallel for schedule(dynamic)
  for (long i = 0; i < long(n); ++i) k.v[std::size_t(i)] = form_factor(t, rms, double(i) * kKernelStep, q0, q1);
  return k;
}

/// Σ_atoms occ·e^{−2πi k·τ} on a grid of frequencies (FFT order) for the atoms listed, in
/// double precision, separably in x and y.
std::vector<std::complex<double>> structure_factor(const Grid& g, const std::vector<std::pair<Point2, double>>& atoms) {
  std::vector<std::complex<double>> s(g.size(), 0.0), ex(g.nx), ey(g.ny);
  for (const auto& [r, occ] : atoms) {
    for (std::size_t i = 0; i < g.nx; ++i) ex[i] = std::polar(1.0, -2.0 * kPi * g.kx(i) * r.x);
    for (std::size_t j = 0; j < g.ny; ++j) ey[j] = occ * std::polar(1.0, -2.0 * kPi * g.ky(j) * r.y);
    for (std::size_t j = 0; j < g.ny; ++j)
      for (std::size_t i = 0; i < g.nx; ++i) s[j * g.nx + i] += ey[j] * ex[i];
  }
  return s;
}

/// Real field from Fourier coefficients (FFT order): the unnormalised inverse transform with
/// the engine's single-precision plan (relative error ~1e-7, as the engine's own potentials);
/// the imaginary part vanishes because every kernel is real and even.
std::vector<double> to_real_space(const Grid& g, const std::vector<std::complex<double>>& c, const Fft2& fft) {
  ComplexBuffer b(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) b[i] = cfloat(float(c[i].real()), float(c[i].imag()));
  fft.backward(b.data());
  std::vector<double> out(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) out[i] = b[i].real();
  return out;
}

}  // namespace

double tds_form_factor(int Z, double rms, double Q, double q0, double q1, Parametrization p) {
  if (!(rms >= 0)) throw std::invalid_argument("tds_form_factor: rms must be ≥ 0 Å");
  if (!(q1 > q0) || q0 < 0) throw std::invalid_argument("tds_form_factor: need 0 ≤ q_inner < q_outer");
  if (rms == 0) return 0.0;
  const FeTables t = fe_tables(Z, rms, q1 + std::fabs(Q) + 1.0, p);
  return form_factor(t, rms, std::fabs(Q), q0, q1);
}

std::vector<double> AbsorptiveAdfResult::total() const {
  std::vector<double> t(elastic.size());
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = elastic[i] + tds[i];
  return t;
}

namespace {

/// Refuses inputs the absorptive model does not cover, before any work.
void check_absorptive_inputs(const Cell& cell, const Grid& grid, const AnnularDetector& det, const PotentialSettings& ps) {
  if (std::fabs(cell.x - grid.lx) > 1e-6 * cell.x || std::fabs(cell.y - grid.ly) > 1e-6 * cell.y)
    throw std::invalid_argument("absorptive_adf_signal: grid extent differs from the cell");
  if (ps.projection != Projection::Infinite)
    throw std::invalid_argument("absorptive_adf_signal: only infinite projection is supported");
  if (det.azimuth_deg) throw std::invalid_argument("absorptive_adf_signal: azimuthal detectors are not supported");
  if (!(det.outer_mrad > det.inner_mrad) || det.inner_mrad < 0)
    throw std::invalid_argument("absorptive_adf_signal: need 0 ≤ inner < outer");
}

/// Atoms grouped by (Z, rms DW displacement).
using AtomKey = std::pair<int, double>;
/// Per slice: each group's atoms as (position, occupancy).
using SliceAtoms = std::vector<std::map<AtomKey, std::vector<std::pair<Point2, double>>>>;

/// The atoms of each slice (bounds as slice_boundaries), grouped by (Z, rms); empty sites skipped.
SliceAtoms atoms_per_slice(const Structure& structure, const std::vector<double>& bounds) {
  const std::size_t ns = bounds.size() - 1;
  SliceAtoms per_slice(ns);
  for (const Atom& a : structure.atoms) {
    if (a.Z < 1 || a.Z > 103) throw std::invalid_argument("absorptive_adf_signal: atomic number outside 1..103");
    if (!(a.rms >= 0)) throw std::invalid_argument("absorptive_adf_signal: rms must be ≥ 0 Å");
    if (a.occupancy <= 0) continue;
    const auto up = std::upper_bound(bounds.begin(), bounds.end(), a.z + kBoundaryTolerance_A);
    const auto s = std::size_t(std::clamp<long>(long(up - bounds.begin()) - 1, 0, long(ns) - 1));
    per_slice[s][{a.Z, a.rms}].push_back({{a.x, a.y}, a.occupancy});
  }
  return per_slice;
}

/// A group's f_e tables and its detector (F_D) and absorption (F_abs) kernels.
struct Kernels {
  FeTables fe;
  KernelTable det, abs;
};

/// Kernels per group: the detector's F_D on frequencies up to 2 k_max (all |ψ|² holds), the
/// absorption F_abs up to Qmax (the grid's corner frequency or 2 k_max, whichever is larger).
std::map<AtomKey, Kernels> group_kernels(const SliceAtoms& per_slice, double kmax, double Qmax, double q0, double q1,
                                         Parametrization p) {
  std::map<AtomKey, Kernels> kernels;
  for (const auto& slice : per_slice)
    for (const auto& [key, atoms] : slice) {
      if (kernels.count(key)) continue;
      Kernels k;
      k.fe = fe_tables(key.first, key.second, kAbsorptionMaxQ + Qmax + 1.0, p);
      if (key.second > 0) {
        k.det = kernel_table(k.fe, key.second, 2.0 * kmax, q0, q1);
        k.abs = kernel_table(k.fe, key.second, Qmax, 0.0, kAbsorptionMaxQ);
      }
      kernels.emplace(key, std::move(k));
    }
  return kernels;
}

/// One slice's fields: the transmission function t = exp(iσ v_DW − ½ w_abs) band-limited as
/// in multislice.cpp, and the TDS field w_D on the fine grid (dimensionless).
struct SliceFields {
  ComplexBuffer trans;
  std::vector<double> wdet;
};

SliceFields slice_fields(const std::map<AtomKey, std::vector<std::pair<Point2, double>>>& groups,
                         const std::map<AtomKey, Kernels>& kernels, const Grid& grid, const Grid& fine, double kmax,
                         double sigma, const std::vector<float>& mask, const Fft2& fft, const Fft2& fft_fine) {
  const double sC = sigma * kFeToPotential_VA2;  // σC = γλ (Å)
  const double area = grid.lx * grid.ly;
  std::vector<std::complex<double>> v(grid.size(), 0.0), wa(grid.size(), 0.0), wd(fine.size(), 0.0);
  for (const auto& [key, atoms] : groups) {
    const Kernels& k = kernels.at(key);
    const double rms = key.second;
    const auto S = structure_factor(grid, atoms);
    for (std::size_t j = 0; j < grid.ny; ++j)
      for (std::size_t i = 0; i < grid.nx; ++i) {
        const double kk = std::hypot(grid.kx(i), grid.ky(j));
        const std::size_t q = j * grid.nx + i;
        v[q] += S[q] * (kFeToPotential_VA2 * k.fe.at(k.fe.g, kk) / area);
        if (rms > 0) wa[q] += S[q] * (sC * sC * k.abs.at(kk) / area);
      }
    if (rms > 0) {
      const auto Sf = structure_factor(fine, atoms);
      for (std::size_t j = 0; j < fine.ny; ++j)
        for (std::size_t i = 0; i < fine.nx; ++i) {
          const double kk = std::hypot(fine.kx(i), fine.ky(j));
          if (kk > 2.0 * kmax) continue;  // |ψ|² has nothing beyond 2 k_max
          wd[j * fine.nx + i] += Sf[j * fine.nx + i] * (sC * sC * k.det.at(kk) / area);
        }
    }
  }
  SliceFields out;
  const std::vector<double> vr = to_real_space(grid, v, fft), war = to_real_space(grid, wa, fft);
  out.wdet = to_real_space(fine, wd, fft_fine);
  ComplexBuffer t(grid.size());
  for (std::size_t i = 0; i < grid.size(); ++i)
    t[i] = cfloat(std::polar(std::exp(-0.5 * war[i]), sigma * vr[i]));
  fft.forward(t.data());
  const float inv_n = 1.0f / float(grid.size());
  for (std::size_t i = 0; i < grid.size(); ++i) t[i] *= mask[i] * inv_n;
  fft.backward(t.data());
  out.trans = std::move(t);
  return out;
}

/// Detector pixels (as the engine's annular detector: inside the band, inner ≤ θ < outer).
std::vector<std::uint32_t> annular_pixels(const Grid& grid, double lambda, double kmax, const AnnularDetector& det) {
  std::vector<std::uint32_t> det_pixels;
  for (std::size_t j = 0; j < grid.ny; ++j)
    for (std::size_t i = 0; i < grid.nx; ++i) {
      const double kx = grid.kx(i), ky = grid.ky(j), k2 = kx * kx + ky * ky;
      if (k2 > kmax * kmax) continue;
      const double th = lambda * std::sqrt(k2) * 1e3;
      if (th >= det.inner_mrad && th < det.outer_mrad) det_pixels.push_back(std::uint32_t(j * grid.nx + i));
    }
  return det_pixels;
}

/// Everything the positions share.
struct AbsorptiveKernel {
  const Grid& grid;
  const Grid& fine;
  const Fft2& fft;
  const Fft2& fft_fine;
  const std::vector<ComplexBuffer>& probes;  // per focal node
  const std::vector<double>& focal_weight;
  const std::vector<ComplexBuffer>& props;   // per slice
  const std::vector<SliceFields>& slices;
  const std::vector<std::uint32_t>& det_pixels;
};

/// The elastic and TDS signals of one probe position; psi and big are scratch buffers of the
/// grid's and the fine grid's size.
std::pair<double, double> position_signal(const AbsorptiveKernel& k, const Point2& position, ComplexBuffer& psi,
                                          ComplexBuffer& big) {
  const Grid& grid = k.grid;
  const Grid& fine = k.fine;
  const std::size_t N = grid.size(), ns = k.slices.size();
  double el = 0, tds = 0;
  for (std::size_t f = 0; f < k.probes.size(); ++f) {
    shift_fourier(grid, position, k.probes[f].data(), psi.data());
    double tds_f = 0;
    for (std::size_t s = 0; s < ns; ++s) {
      // |ψ|² on the fine grid: zero-pad the (band-limited) spectrum, inverse FFT.
      // Σ_fine |ψ_fine|² = 4 Σ|ψ|² = 4, so ∫|ψ|² W d²r = ¼ Σ_fine |ψ_fine|² w_D.
      std::fill(big.data(), big.data() + fine.size(), cfloat(0, 0));
      for (std::size_t j = 0; j < grid.ny; ++j) {
        const std::size_t jf = j < (grid.ny + 1) / 2 ? j : j + grid.ny;
        for (std::size_t i = 0; i < grid.nx; ++i) {
          const std::size_t iff = i < (grid.nx + 1) / 2 ? i : i + grid.nx;
          big[jf * fine.nx + iff] = psi[j * grid.nx + i];
        }
      }
      k.fft_fine.backward(big.data());
      const std::vector<double>& w = k.slices[s].wdet;
      double acc = 0;
      for (std::size_t i = 0; i < fine.size(); ++i) acc += double(std::norm(big[i])) * w[i];
      tds_f += 0.25 * acc;
      // Through the slice: ψ → t·ψ, then propagate (ψ stays in reciprocal space between slices).
      k.fft.backward(psi.data());
      const ComplexBuffer& t = k.slices[s].trans;
      for (std::size_t i = 0; i < N; ++i) psi[i] *= t[i];
      k.fft.forward(psi.data());
      if (s + 1 < ns)
        for (std::size_t i = 0; i < N; ++i) psi[i] *= k.props[s][i];  // 1/N folded in: back to Σ|ψ_k|² = 1/N
    }
    // ψ is now the exit wave in reciprocal space with Σ|ψ_k|² = N·Σ|ψ_r|².
    double e = 0;
    for (std::uint32_t q : k.det_pixels) e += double(std::norm(psi[q]));
    el += k.focal_weight[f] * e / double(N);
    tds += k.focal_weight[f] * tds_f;
  }
  return {el, tds};
}

}  // namespace

AbsorptiveAdfResult absorptive_adf_signal(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                                          const std::vector<Point2>& positions, const AnnularDetector& det,
                                          const PotentialSettings& ps) {
  const Cell& cell = structure.cell;
  check_absorptive_inputs(cell, grid, det, ps);
  const double lambda = wavelength_A(optics.energy_eV);
  const double sigma = interaction_parameter(optics.energy_eV);
  const double kmax = grid.k_max();
  const double q0 = det.inner_mrad * 1e-3 / lambda, q1 = det.outer_mrad * 1e-3 / lambda;
  if (q1 > kmax * (1 + 1e-9))
    throw std::invalid_argument("absorptive_adf_signal: detector outer angle beyond the grid's band limit");

  const std::vector<double> bounds = slice_boundaries(cell.z, ps.slice_thickness_A);
  const std::size_t ns = bounds.size() - 1;
  const SliceAtoms per_slice = atoms_per_slice(structure, bounds);

  // The detector's kernel lives on the fine grid's frequencies up to 2 k_max, the absorption's
  // on the grid's up to its corner frequency.
  const Grid fine(grid.lx, grid.ly, 2 * grid.nx, 2 * grid.ny);
  const double knyq = std::hypot(0.5 / grid.dx(), 0.5 / grid.dy());
  const double Qmax = std::max(2.0 * kmax, knyq);
  const std::map<AtomKey, Kernels> kernels = group_kernels(per_slice, kmax, Qmax, q0, q1, ps.parametrization);

  const Fft2 fft(grid), fft_fine(fine);
  const std::vector<float> mask = grid.band_limit_mask();
  std::vector<SliceFields> slices;
  for (std::size_t s = 0; s < ns; ++s)
    slices.push_back(slice_fields(per_slice[s], kernels, grid, fine, kmax, sigma, mask, fft, fft_fine));

  const std::vector<std::uint32_t> det_pixels = annular_pixels(grid, lambda, kmax, det);
  const FocalQuadrature fq = focal_spread_quadrature(optics.focal_spread_A, optics.focal_spread_points);
  std::vector<ComplexBuffer> probes;
  for (double df : fq.defocus_A) probes.push_back(probe_fourier(grid, optics, df));
  std::vector<ComplexBuffer> props;
  for (std::size_t s = 0; s < ns; ++s) props.push_back(fresnel_propagator(grid, lambda, bounds[s + 1] - bounds[s], 1.0f / float(grid.size())));
  const AbsorptiveKernel kernel{grid, fine, fft, fft_fine, probes, fq.weight, props, slices, det_pixels};

  AbsorptiveAdfResult res;
  res.elastic.assign(positions.size(), 0.0);
  res.tds.assign(positions.size(), 0.0);
#pragma omp parallel
  {
    ComplexBuffer psi(grid.size()), big(fine.size());
#pragma omp for schedule(dynamic)
    for (long pl = 0; pl < long(positions.size()); ++pl) {
      const auto p = std::size_t(pl);
      const auto [el, tds] = position_signal(kernel, positions[p], psi, big);
      res.elastic[p] = el;
      res.tds[p] = tds;
    }
  }
  return res;
}

}  // namespace stemtwin
