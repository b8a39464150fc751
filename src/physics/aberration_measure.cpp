// Residual aberrations and the beam-tilt tableau; see aberration_measure.hpp.
#include "stemtwin/physics/aberration_measure.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/core/grid.hpp"
#include "stemtwin/core/rng.hpp"

namespace stemtwin {

namespace {

std::size_t index_of(int n, int m) {
  for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i)
    if (Aberrations::kOrders[i][0] == n && Aberrations::kOrders[i][1] == m) return i;
  throw std::logic_error("no aberration C" + std::to_string(n) + std::to_string(m));
}

/// ∇_α of f = α^{n+1}/(n+1)·cos(mφ) (trig = 0) or ·sin(mφ) (trig = 1), at (ax, ay).
std::array<double, 2> grad_basis(int n, int m, int trig, double ax, double ay) {
  const double a = std::hypot(ax, ay);
  if (a == 0) return {0, 0};
  const double phi = std::atan2(ay, ax);
  const double an = std::pow(a, n);
  const double c = trig == 0 ? std::cos(m * phi) : std::sin(m * phi);
  const double dc = trig == 0 ? -m * std::sin(m * phi) : m * std::cos(m * phi);  // d/dφ
  const double dr = an * c;                    // ∂f/∂α
  const double dp = an / (n + 1) * dc;         // (1/α)∂f/∂φ
  return {dr * std::cos(phi) - dp * std::sin(phi), dr * std::sin(phi) + dp * std::cos(phi)};
}

/// Solves the symmetric positive-definite system M x = b in place (Cholesky); returns M⁻¹.
std::vector<double> spd_inverse(std::vector<double> M, std::size_t n) {
  // Cholesky M = L Lᵀ.
  std::vector<double> L(n * n, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    double s = M[j * n + j];
    for (std::size_t k = 0; k < j; ++k) s -= L[j * n + k] * L[j * n + k];
    if (!(s > 0)) throw std::runtime_error("tableau fit is singular: the tilts do not determine the coefficients");
    L[j * n + j] = std::sqrt(s);
    for (std::size_t i = j + 1; i < n; ++i) {
      double t = M[i * n + j];
      for (std::size_t k = 0; k < j; ++k) t -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = t / L[j * n + j];
    }
  }
  std::vector<double> inv(n * n, 0.0);
  for (std::size_t c = 0; c < n; ++c) {
    std::vector<double> y(n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      double t = i == c ? 1.0 : 0.0;
      for (std::size_t k = 0; k < i; ++k) t -= L[i * n + k] * y[k];
      y[i] = t / L[i * n + i];
    }
    for (std::size_t ii = n; ii-- > 0;) {
      double t = y[ii];
      for (std::size_t k = ii + 1; k < n; ++k) t -= L[k * n + ii] * inv[k * n + c];
      inv[ii * n + c] = t / L[ii * n + ii];
    }
  }
  return inv;
}
}  // namespace

const std::vector<CeosCoefficient>& ceos_coefficients() {
  static const std::vector<CeosCoefficient> t = {{"C1", 1, 0, 1.0}, {"A1", 1, 2, 1.0}, {"B2", 2, 1, 3.0}, {"A2", 2, 3, 1.0},
                                                 {"C3", 3, 0, 1.0}, {"S3", 3, 2, 4.0}, {"A3", 3, 4, 1.0}};
  return t;
}

const CeosCoefficient& ceos_coefficient(const std::string& name) {
  for (const auto& c : ceos_coefficients())
    if (name == c.name) return c;
  throw std::invalid_argument("unknown aberration \"" + name + "\" (known: C1, A1, B2, A2, C3, S3, A3)");
}

std::array<double, 2> ceos_get(const Aberrations& a, const CeosCoefficient& c) {
  const std::size_t i = index_of(c.n, c.m);
  const double mag = a.C[i] / c.krivanek_per_ceos;
  if (c.m == 0) return {mag, 0.0};
  return {mag * std::cos(c.m * a.phi[i]), mag * std::sin(c.m * a.phi[i])};
}

void ceos_set(Aberrations& a, const CeosCoefficient& c, std::array<double, 2> xy) {
  const std::size_t i = index_of(c.n, c.m);
  if (c.m == 0) {
    a.C[i] = xy[0] * c.krivanek_per_ceos;
    a.phi[i] = 0;
    return;
  }
  a.C[i] = std::hypot(xy[0], xy[1]) * c.krivanek_per_ceos;
  a.phi[i] = a.C[i] == 0 ? 0.0 : std::atan2(xy[1], xy[0]) / c.m;
}

Aberrations add_aberrations(const Aberrations& a, const Aberrations& b) {
  Aberrations s;
  for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i) {
    const int m = Aberrations::kOrders[i][1];
    if (m == 0) {
      s.C[i] = a.C[i] + b.C[i];
      continue;
    }
    const std::complex<double> z = std::polar(a.C[i], m * a.phi[i]) + std::polar(b.C[i], m * b.phi[i]);
    s.C[i] = std::abs(z);
    s.phi[i] = s.C[i] == 0 ? 0.0 : std::arg(z) / m;
  }
  return s;
}

Aberrations draw_residual_aberrations(std::uint64_t seed, const ResidualScales& sc) {
  Rng rng(seed, {kCorrectorRngKey, 0});
  const double scale[] = {sc.C1_A, sc.A1_A, sc.B2_A, sc.A2_A, sc.C3_A, sc.S3_A, sc.A3_A};
  Aberrations a;
  const auto& cs = ceos_coefficients();
  for (std::size_t j = 0; j < cs.size(); ++j) {
    const double mag = scale[j] * rng.uniform(0.5, 1.0);
    const double arg = rng.uniform(-kPi, kPi);
    // m = 0 (C1, C3): the angle only chooses the sign.
    ceos_set(a, cs[j], cs[j].m == 0 ? std::array<double, 2>{arg < 0 ? -mag : mag, 0.0}
                                    : std::array<double, 2>{mag * std::cos(arg), mag * std::sin(arg)});
  }
  return a;
}

const MeasuredCoefficient& TableauResult::get(const std::string& name) const {
  for (const auto& c : coefficients)
    if (c.name == name) return c;
  throw std::invalid_argument("aberration " + name + " was not fitted by this tableau (one ring fits orders 1–2 only)");
}

Aberrations TableauResult::aberrations() const {
  Aberrations a;
  for (const auto& c : coefficients) ceos_set(a, ceos_coefficient(c.name), c.xy_A);
  return a;
}

namespace {

void check_tableau(const ProbeOptics& optics, const TableauSettings& s) {
  if (!(s.tilt_mrad >= 1 && s.tilt_mrad <= 100))
    throw std::invalid_argument("tableau tilt " + std::to_string(s.tilt_mrad) + " mrad out of range [1, 100] mrad");
  if (s.rings < 1 || s.rings > 4) throw std::invalid_argument("tableau rings " + std::to_string(s.rings) + " out of range [1, 4]");
  if (s.azimuths < 8 || s.azimuths > 64)
    throw std::invalid_argument("tableau azimuths " + std::to_string(s.azimuths) + " out of range [8, 64]");
  if (!(s.electrons_per_tilt >= 0 && s.electrons_per_tilt <= 1e12))
    throw std::invalid_argument("tableau electrons_per_tilt " + std::to_string(s.electrons_per_tilt) + " out of range [0, 1e12]");
  if (!(optics.semiangle_mrad > 0)) throw std::invalid_argument("tableau: probe semi-angle must be > 0 mrad");
}

/// The box the tilted probes are formed in: it must hold the probe at every tilt, i.e. the
/// geometric blur bound Σ|∇f| over the tilted cone (all 14 coefficients) plus a few
/// diffraction-limited widths λ/α, sampled so that the band limit holds the tilted cone.
Grid tableau_grid(const ProbeOptics& optics, const TableauSettings& s) {
  const double lambda = wavelength_A(optics.energy_eV);
  const double alpha_ap = optics.semiangle_mrad * 1e-3;
  const double alpha_max = s.tilt_mrad * 1e-3 + alpha_ap;
  double blur = 0;
  for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i)
    blur += std::abs(optics.aberrations.C[i]) * std::pow(alpha_max, Aberrations::kOrders[i][0]) *
            (1.0 + double(Aberrations::kOrders[i][1]) / (Aberrations::kOrders[i][0] + 1));
  const double L = std::max(32.0, 4.0 * blur + 16.0 * lambda / alpha_ap);
  const double dx = lambda / (3.0 * alpha_max);  // k_max = 1/(3dx) ≥ α_max/λ: the band limit holds the tilted cone
  if (L / dx > 1024)
    throw std::invalid_argument("tableau: the tilted probes (blur ~" + std::to_string(blur) +
                                " Å) need a box over 1024 pixels; reduce the tilt or the aberrations (is Cs uncorrected?)");
  return Grid::from_sampling(L, L, dx);
}

/// A fitted unknown: a Cartesian component (trig 0: x/cos, 1: y/sin) of a CEOS coefficient.
struct Unknown {
  std::size_t coef;
  int trig;
};

/// The unknowns a tableau fits besides the offset: orders up to 2 with one ring, 3 with more.
std::vector<Unknown> tableau_unknowns(const TableauSettings& s) {
  const int max_order = s.rings == 1 ? 2 : 3;
  std::vector<Unknown> unknowns;
  const auto& cs = ceos_coefficients();
  for (std::size_t j = 0; j < cs.size(); ++j) {
    if (cs[j].n > max_order) continue;
    unknowns.push_back({j, 0});
    if (cs[j].m != 0) unknowns.push_back({j, 1});
  }
  return unknowns;
}

/// The beam tilts (mrad): untilted, then `rings` rings of `azimuths` tilts out to tilt_mrad.
std::vector<std::array<double, 2>> tableau_tilts(const TableauSettings& s) {
  std::vector<std::array<double, 2>> tilts = {{0, 0}};
  for (std::size_t r = 1; r <= s.rings; ++r)
    for (std::size_t q = 0; q < s.azimuths; ++q) {
      const double t = s.tilt_mrad * double(r) / double(s.rings), az = 2 * kPi * double(q) / double(s.azimuths);
      tilts.push_back({t * std::cos(az), t * std::sin(az)});
    }
  return tilts;
}

/// One tilted probe image: its measured shift (centroid, Å) and standard error, and the
/// model's aperture-weighted basis gradients (their sum over the aperture and the weight sum).
struct TiltObservation {
  double cx = 0, cy = 0, sx = 0, sy = 0;
  std::vector<double> gx, gy;
  double wsum = 0;
};

/// The tilted probe and, with the same aperture weights, the model's basis gradients; `psi`
/// is the grid-sized work buffer.
void form_tilted_probe(const ProbeOptics& optics, const Grid& g, const std::vector<Unknown>& unknowns, double tx, double ty,
                       ComplexBuffer& psi, TiltObservation& o) {
  const auto& cs = ceos_coefficients();
  const double lambda = wavelength_A(optics.energy_eV);
  const double alpha_ap = optics.semiangle_mrad * 1e-3;
  const double sax = lambda / g.lx, say = lambda / g.ly;  // angular sampling
  o.gx.assign(unknowns.size(), 0.0);
  o.gy.assign(unknowns.size(), 0.0);
  o.wsum = 0;
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const double ax = g.kx(i) * lambda, ay = g.ky(j) * lambda;
      const double dxa = ax - tx, dya = ay - ty;
      const double A = aperture(std::hypot(dxa, dya), std::atan2(dya, dxa), alpha_ap, sax, say);
      cfloat v{0, 0};
      if (A > 0) {
        const double chi = optics.aberrations.chi(std::hypot(ax, ay), std::atan2(ay, ax), lambda);
        v = cfloat(float(A * std::cos(chi)), float(-A * std::sin(chi)));
        const double w2 = A * A;
        o.wsum += w2;
        for (std::size_t u = 0; u < unknowns.size(); ++u) {
          const auto& c = cs[unknowns[u].coef];
          const auto gr = grad_basis(c.n, c.m, unknowns[u].trig, ax, ay);
          // f's coefficient is the Krivanek C (= factor · CEOS), so the CEOS unknown's
          // column carries the factor.
          o.gx[u] += w2 * gr[0] * c.krivanek_per_ceos;
          o.gy[u] += w2 * gr[1] * c.krivanek_per_ceos;
        }
      }
      psi[j * g.nx + i] = v;
    }
  if (!(o.wsum > 0)) throw std::invalid_argument("tableau: the aperture falls between grid points");
}

/// The probe image of tilt `it` (in real space in `psi`) with Poisson counts, its centroid
/// (circular mean along x and y) and the centroid's standard error from the spread about it.
void measure_shift(const Grid& g, const ComplexBuffer& psi, const TableauSettings& s, std::size_t it, TiltObservation& o) {
  Rng rng(s.seed, {kCorrectorRngKey, 1, s.stream, it});
  std::vector<double> I(g.size());
  double tot = 0;
  for (std::size_t p = 0; p < g.size(); ++p) tot += (I[p] = std::norm(psi[p]));
  for (std::size_t p = 0; p < g.size(); ++p) {
    I[p] /= tot;
    if (s.electrons_per_tilt > 0) I[p] = double(rng.poisson(I[p] * s.electrons_per_tilt));
  }
  std::complex<double> zx{0, 0}, zy{0, 0};
  double n = 0;
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const double v = I[j * g.nx + i];
      n += v;
      zx += v * std::polar(1.0, 2 * kPi * double(i) / double(g.nx));
      zy += v * std::polar(1.0, 2 * kPi * double(j) / double(g.ny));
    }
  if (!(n > 0)) throw std::invalid_argument("tableau: no electrons counted at a tilt (electrons_per_tilt too small)");
  o.cx = std::arg(zx) / (2 * kPi) * g.lx, o.cy = std::arg(zy) / (2 * kPi) * g.ly;
  double vx = 0, vy = 0;
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const double v = I[j * g.nx + i];
      double ddx = std::remainder(double(i) * g.dx() - o.cx, g.lx), ddy = std::remainder(double(j) * g.dy() - o.cy, g.ly);
      vx += v * ddx * ddx;
      vy += v * ddy * ddy;
    }
  // Noiseless: a nominal 1e-6 Å weight floor (the fit is then exact up to the grid).
  o.sx = s.electrons_per_tilt > 0 ? std::sqrt(vx / n / n) : 1e-6;
  o.sy = s.electrons_per_tilt > 0 ? std::sqrt(vy / n / n) : 1e-6;
}

/// The weighted least-squares problem: 2 rows per tilt (x and y shift), np columns.
struct TableauSystem {
  std::size_t np = 0;
  std::vector<double> rows, obs, w;
};

/// Weighted least squares (AᵀWA) p = AᵀW y: the parameters, their covariance and χ².
struct TableauFit {
  std::vector<double> p, cov;
  double chi2 = 0;
};

TableauFit solve(const TableauSystem& sys) {
  const std::size_t np = sys.np, ne = sys.obs.size();
  const std::vector<double>& rows = sys.rows;
  std::vector<double> M(np * np, 0.0), b(np, 0.0);
  for (std::size_t e = 0; e < ne; ++e)
    for (std::size_t i = 0; i < np; ++i) {
      b[i] += rows[e * np + i] * sys.w[e] * sys.obs[e];
      for (std::size_t j = 0; j < np; ++j) M[i * np + j] += rows[e * np + i] * sys.w[e] * rows[e * np + j];
    }
  TableauFit f;
  f.cov = spd_inverse(M, np);
  f.p.assign(np, 0.0);
  for (std::size_t i = 0; i < np; ++i)
    for (std::size_t j = 0; j < np; ++j) f.p[i] += f.cov[i * np + j] * b[j];
  for (std::size_t e = 0; e < ne; ++e) {
    double pred = 0;
    for (std::size_t i = 0; i < np; ++i) pred += rows[e * np + i] * f.p[i];
    f.chi2 += sys.w[e] * (sys.obs[e] - pred) * (sys.obs[e] - pred);
  }
  return f;
}

/// The fitted coefficients (CEOS Cartesian with errors, and Krivanek magnitude and angle),
/// errors scaled by √χ²_red when the counts are noisy.
std::vector<MeasuredCoefficient> coefficients_of(const TableauFit& f, const std::vector<Unknown>& unknowns, double scale) {
  const auto& cs = ceos_coefficients();
  const std::size_t np = f.p.size();
  auto sd = [&](std::size_t i) { return std::sqrt(f.cov[i * np + i] * scale); };
  std::vector<MeasuredCoefficient> out;
  for (std::size_t u = 0; u < unknowns.size();) {
    const auto& c = cs[unknowns[u].coef];
    MeasuredCoefficient mc;
    mc.name = c.name;
    mc.xy_A[0] = f.p[2 + u];
    mc.sigma_xy_A[0] = sd(2 + u);
    if (c.m != 0) {
      mc.xy_A[1] = f.p[3 + u];
      mc.sigma_xy_A[1] = sd(3 + u);
      const double mag = std::hypot(mc.xy_A[0], mc.xy_A[1]);
      mc.magnitude_A = mag * c.krivanek_per_ceos;
      mc.angle_rad = std::atan2(mc.xy_A[1], mc.xy_A[0]) / c.m;
      // Linear propagation: radial and tangential errors (the larger component bound).
      const double sr = std::max(mc.sigma_xy_A[0], mc.sigma_xy_A[1]);
      mc.sigma_magnitude_A = sr * c.krivanek_per_ceos;
      mc.sigma_angle_rad = mag > 0 ? std::min(kPi / c.m, sr / mag / c.m) : kPi / c.m;
      u += 2;
    } else {
      mc.magnitude_A = mc.xy_A[0];
      mc.sigma_magnitude_A = mc.sigma_xy_A[0];
      u += 1;
    }
    out.push_back(mc);
  }
  return out;
}

}  // namespace

TableauResult measure_tableau(const ProbeOptics& optics, const TableauSettings& s) {
  check_tableau(optics, s);
  const Grid g = tableau_grid(optics, s);
  const Fft2 fft(g);
  // Fitted unknowns: offset (x, y), then Cartesian components of the coefficients.
  const std::vector<Unknown> unknowns = tableau_unknowns(s);
  TableauSystem sys;
  sys.np = 2 + unknowns.size();
  TableauResult out;
  const std::vector<std::array<double, 2>> tilts = tableau_tilts(s);
  ComplexBuffer psi(g.size());
  TiltObservation o;
  for (std::size_t it = 0; it < tilts.size(); ++it) {
    form_tilted_probe(optics, g, unknowns, tilts[it][0] * 1e-3, tilts[it][1] * 1e-3, psi, o);
    fft.backward(psi.data());
    measure_shift(g, psi, s, it, o);
    out.tilts_mrad.push_back(tilts[it]);
    out.shifts_A.push_back({o.cx, o.cy});
    out.sigma_shifts_A.push_back({o.sx, o.sy});
    for (int axis = 0; axis < 2; ++axis) {
      std::vector<double> row(sys.np, 0.0);
      row[axis] = 1.0;
      for (std::size_t u = 0; u < unknowns.size(); ++u) row[2 + u] = (axis == 0 ? o.gx[u] : o.gy[u]) / o.wsum;
      sys.rows.insert(sys.rows.end(), row.begin(), row.end());
      sys.obs.push_back(axis == 0 ? o.cx : o.cy);
      sys.w.push_back(1.0 / std::pow(axis == 0 ? o.sx : o.sy, 2));
    }
  }
  const TableauFit fit = solve(sys);
  out.tilts = tilts.size();
  out.reduced_chi2 = fit.chi2 / double(sys.obs.size() - sys.np);
  const double scale = s.electrons_per_tilt > 0 ? std::max(1.0, out.reduced_chi2) : 1.0;
  out.offset_A = {fit.p[0], fit.p[1]};
  out.coefficients = coefficients_of(fit, unknowns, scale);
  return out;
}

}  // namespace stemtwin
