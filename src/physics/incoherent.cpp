#include "stemtwin/physics/incoherent.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/fft.hpp"

namespace stemtwin {

double annular_cross_section_A2(int Z, double energy_eV, double inner_mrad, double outer_mrad, Parametrization p) {
  if (!(inner_mrad >= 0 && outer_mrad > inner_mrad))
    throw std::invalid_argument("annular_cross_section_A2: needs 0 <= inner < outer (got " + std::to_string(inner_mrad) + ", " +
                                std::to_string(outer_mrad) + " mrad)");
  const double lambda = wavelength_A(energy_eV);
  const double gamma = 1.0 + energy_eV / kElectronRestEnergy_eV;
  const double k0 = inner_mrad * 1e-3 / lambda, k1 = outer_mrad * 1e-3 / lambda;
  // Simpson's rule on k with 2000 intervals: f_e is smooth (rational in k²), so the error is
  // far below 1e-6 of the integral for any annulus inside 1 rad.
  const int n = 2000;
  const double h = (k1 - k0) / n;
  double sum = 0;
  for (int i = 0; i <= n; ++i) {
    const double k = k0 + h * i;
    const double f = scattering_factor(Z, k, p);
    const double w = (i == 0 || i == n) ? 1.0 : (i % 2 ? 4.0 : 2.0);
    sum += w * f * f * 2.0 * kPi * k;
  }
  return gamma * gamma * lambda * lambda * sum * h / 3.0;
}

double bright_field_share(const ProbeOptics& optics, const AnnularDetector& d) {
  const double alpha = optics.semiangle_mrad;
  auto clamp_a = [&](double t) { return std::clamp(t, 0.0, alpha); };
  return alpha > 0 ? (clamp_a(d.outer_mrad) * clamp_a(d.outer_mrad) - clamp_a(d.inner_mrad) * clamp_a(d.inner_mrad)) / (alpha * alpha) : 0.0;
}

double incoherent_weight_A2(int Z, const ProbeOptics& optics, const AnnularDetector& d, Parametrization p) {
  // Per element: weight = σ_annulus − D·σ_total (Å²), so the map is D + Σ weight·P: the
  // direct beam's share loses every scattered electron and the annulus gains those scattered
  // into it (for a BF detector over the whole disc: 1 − Σσ(beyond its edge)·P).
  constexpr double kOuterLimit_mrad = 1000;  // "all angles": f_e² has fallen by > 1e4 from 0 to 1 rad at 200 kV
  const double direct = bright_field_share(optics, d);
  double w = annular_cross_section_A2(Z, optics.energy_eV, d.inner_mrad, d.outer_mrad, p);
  if (direct > 0) w -= direct * annular_cross_section_A2(Z, optics.energy_eV, 0, kOuterLimit_mrad, p);
  return w;
}

double IncoherentMap::at(double x, double y) const {
  const double fx = x / grid.dx(), fy = y / grid.dy();
  const double x0 = std::floor(fx), y0 = std::floor(fy);
  const double tx = fx - x0, ty = fy - y0;
  auto wrap = [](double i, std::size_t n) {
    const long m = static_cast<long>(n);
    long v = static_cast<long>(i) % m;
    return static_cast<std::size_t>(v < 0 ? v + m : v);
  };
  const std::size_t ix0 = wrap(x0, grid.nx), ix1 = wrap(x0 + 1, grid.nx);
  const std::size_t iy0 = wrap(y0, grid.ny), iy1 = wrap(y0 + 1, grid.ny);
  const auto v = [&](std::size_t iy, std::size_t ix) { return values[iy * grid.nx + ix]; };
  return (1 - ty) * ((1 - tx) * v(iy0, ix0) + tx * v(iy0, ix1)) + ty * ((1 - tx) * v(iy1, ix0) + tx * v(iy1, ix1));
}

Image IncoherentMap::sample(const std::vector<Point2>& positions, std::size_t nx, std::size_t ny) const {
  if (positions.size() != nx * ny) throw std::invalid_argument("IncoherentMap::sample: positions do not match nx × ny");
  Image im(nx, ny);
  for (std::size_t i = 0; i < positions.size(); ++i) im.data[i] = at(positions[i].x, positions[i].y);
  return im;
}

namespace {

/// Probe intensity's Fourier coefficients at the cell grid's frequencies, with P(0) = 1.
/// The probe is formed on a field m times the cell (m·L ≥ min_probe_field_A) so that its
/// aperture is finely sampled; the cell's frequencies are every m-th of that grid's.
std::vector<std::complex<double>> probe_intensity_fourier(const Grid& cell, const ProbeOptics& optics, const IncoherentSettings& st) {
  const std::size_t mx = std::max<std::size_t>(1, std::size_t(std::ceil(st.min_probe_field_A / cell.lx)));
  const std::size_t my = std::max<std::size_t>(1, std::size_t(std::ceil(st.min_probe_field_A / cell.ly)));
  const Grid big(cell.lx * double(mx), cell.ly * double(my), cell.nx * mx, cell.ny * my);
  Fft2 fft(big, FftPlanning::Estimate);
  const FocalQuadrature q = focal_spread_quadrature(optics.focal_spread_A, optics.focal_spread_A > 0 ? optics.focal_spread_points : 1);
  std::vector<double> intensity(big.size(), 0.0);
  for (std::size_t i = 0; i < q.weight.size(); ++i) {
    ComplexBuffer psi = probe_fourier(big, optics, q.defocus_A[i]);
    fft.backward(psi.data());
    for (std::size_t j = 0; j < big.size(); ++j) intensity[j] += q.weight[i] * std::norm(psi[j]);
  }
  ComplexBuffer P(big.size());
  double total = 0;
  for (std::size_t j = 0; j < big.size(); ++j) total += intensity[j];
  for (std::size_t j = 0; j < big.size(); ++j) P[j] = cfloat(float(intensity[j] / total), 0.f);
  fft.forward(P.data());
  std::vector<std::complex<double>> out(cell.size());
  const double s2 = optics.source_size_A * optics.source_size_A;
  for (std::size_t iy = 0; iy < cell.ny; ++iy) {
    const long fy = iy <= cell.ny / 2 ? long(iy) : long(iy) - long(cell.ny);
    const std::size_t by = std::size_t((fy * long(my) + long(big.ny)) % long(big.ny));
    for (std::size_t ix = 0; ix < cell.nx; ++ix) {
      const long fx = ix <= cell.nx / 2 ? long(ix) : long(ix) - long(cell.nx);
      const std::size_t bx = std::size_t((fx * long(mx) + long(big.nx)) % long(big.nx));
      const double k2 = cell.kx(ix) * cell.kx(ix) + cell.ky(iy) * cell.ky(iy);
      // Source size: a Gaussian of 1σ = source_size_A in the specimen plane.
      out[iy * cell.nx + ix] = std::complex<double>(P[by * big.nx + bx]) * std::exp(-2.0 * kPi * kPi * s2 * k2);
    }
  }
  return out;
}

double sinc(double x) { return std::abs(x) < 1e-12 ? 1.0 : std::sin(x) / x; }

}  // namespace

IncoherentMap incoherent_map(const Structure& s, const ProbeOptics& optics, const AnnularDetector& d, double pixel_x_A,
                             double pixel_y_A, const IncoherentSettings& st) {
  if (!(s.cell.x > 0 && s.cell.y > 0)) throw std::invalid_argument("incoherent_map: the specimen cell must have positive x and y extent");
  if (!(d.inner_mrad >= 0 && d.outer_mrad > d.inner_mrad))
    throw std::invalid_argument("incoherent_map: detector '" + d.name + "' needs 0 <= inner < outer");
  if (!(st.sampling_A > 0)) throw std::invalid_argument("incoherent_map: sampling must be > 0 Å");
  IncoherentMap map;
  map.grid = Grid::from_sampling(s.cell.x, s.cell.y, st.sampling_A);
  const Grid& g = map.grid;
  const double direct = bright_field_share(optics, d);
  std::map<int, double> weight;
  for (const Atom& a : s.atoms)
    if (!weight.count(a.Z)) weight[a.Z] = incoherent_weight_A2(a.Z, optics, d, st.parametrization);
  // Cloud-in-cell deposit of each atom's weight (per Å² of the grid cell).
  ComplexBuffer rho(g.size());
  const double dx = g.dx(), dy = g.dy(), inv_area = 1.0 / (dx * dy);
  for (const Atom& a : s.atoms) {
    const double fx = a.x / dx, fy = a.y / dy;
    const double x0 = std::floor(fx), y0 = std::floor(fy), tx = fx - x0, ty = fy - y0;
    const double w = weight[a.Z] * a.occupancy * inv_area;
    auto idx = [](double i, std::size_t n) {
      long v = long(i) % long(n);
      return std::size_t(v < 0 ? v + long(n) : v);
    };
    const std::size_t ix0 = idx(x0, g.nx), ix1 = idx(x0 + 1, g.nx), iy0 = idx(y0, g.ny), iy1 = idx(y0 + 1, g.ny);
    rho[iy0 * g.nx + ix0] += cfloat(float(w * (1 - tx) * (1 - ty)), 0.f);
    rho[iy0 * g.nx + ix1] += cfloat(float(w * tx * (1 - ty)), 0.f);
    rho[iy1 * g.nx + ix0] += cfloat(float(w * (1 - tx) * ty), 0.f);
    rho[iy1 * g.nx + ix1] += cfloat(float(w * tx * ty), 0.f);
  }
  Fft2 fft(g, FftPlanning::Estimate);
  fft.forward(rho.data());
  const std::vector<std::complex<double>> P = probe_intensity_fourier(g, optics, st);
  const bool box = std::max(pixel_x_A, pixel_y_A) > st.box_above_A;
  for (std::size_t iy = 0; iy < g.ny; ++iy)
    for (std::size_t ix = 0; ix < g.nx; ++ix) {
      std::complex<double> v = std::complex<double>(rho[iy * g.nx + ix]) * P[iy * g.nx + ix];
      if (box) v *= sinc(kPi * g.kx(ix) * pixel_x_A) * sinc(kPi * g.ky(iy) * pixel_y_A);
      rho[iy * g.nx + ix] = cfloat(v);
    }
  fft.backward(rho.data());
  map.values.resize(g.size());
  // Unnormalised inverse FFT: divide by N. ρ is per Å² and the probe sums to 1 over the grid
  // points, so ρ ⊛ P is the signal: one atom of weight w gives a mean w/(cell area).
  const double norm = 1.0 / double(g.size());
  for (std::size_t j = 0; j < g.size(); ++j) map.values[j] = std::max(0.0, direct + double(rho[j].real()) * norm);
  return map;
}

IncoherentCalibration calibrate_incoherent(const Image& model, const Image& reference) {
  if (model.nx != reference.nx || model.ny != reference.ny || model.size() == 0)
    throw std::invalid_argument("calibrate_incoherent: the model (" + std::to_string(model.nx) + " × " + std::to_string(model.ny) +
                                ") and the reference (" + std::to_string(reference.nx) + " × " + std::to_string(reference.ny) +
                                ") must have the same non-empty shape");
  const double mm = model.mean(), mr = reference.mean();
  if (!(mm > 0)) throw std::invalid_argument("calibrate_incoherent: the model's mean must be > 0");
  IncoherentCalibration c;
  c.scale = mr / mm;
  double sxy = 0, sxx = 0, syy = 0, se = 0;
  for (std::size_t i = 0; i < model.size(); ++i) {
    const double a = model.data[i] - mm, b = reference.data[i] - mr;
    sxy += a * b, sxx += a * a, syy += b * b;
    const double e = c.scale * model.data[i] - reference.data[i];
    se += e * e;
  }
  c.correlation = (sxx > 0 && syy > 0) ? sxy / std::sqrt(sxx * syy) : 0.0;
  c.relative_rms = mr != 0 ? std::sqrt(se / double(model.size())) / std::abs(mr) : 0.0;
  return c;
}

}  // namespace stemtwin
