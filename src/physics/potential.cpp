#include "stemtwin/physics/potential.hpp"

#include <fftw3.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <complex>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "stemtwin/core/parallel.hpp"
#include <string>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/rng.hpp"

namespace stemtwin {
namespace {

constexpr double kBoundaryTolerance_A = 1e-6;
// Gaussian gridding on a 2× oversampled grid: kernel σ = 1.5 fine pixels, truncated at
// ±8 fine pixels (truncation error e^{−8²/(2·1.5²)} ≈ 7e-7; aliasing into the coarse
// Nyquist band ≈ e^{−π²·1.5²} ≈ 2e-10).
constexpr double kSpreadSigma_px = 1.5;
constexpr int kSpreadHalfWidth_px = 8;

std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

struct FftwDoubleFree {
  void operator()(void* p) const { fftw_free(p); }
};
template <class T>
using fftw_ptr = std::unique_ptr<T, FftwDoubleFree>;
template <class T>
fftw_ptr<T> fftw_alloc(std::size_t n) {
  auto* p = static_cast<T*>(fftw_malloc(sizeof(T) * std::max<std::size_t>(n, 1)));
  if (!p) throw std::bad_alloc();
  return fftw_ptr<T>(p);
}

/// Double-precision real↔complex plans for the fine (spreading) and coarse (output) grids.
struct Plans {
  fftw_plan fine_r2c = nullptr, coarse_c2r = nullptr;
  Plans(std::size_t nfx, std::size_t nfy, std::size_t nx, std::size_t ny) {
    auto in = fftw_alloc<double>(nfx * nfy);
    auto out = fftw_alloc<fftw_complex>(nfy * (nfx / 2 + 1));
    auto cin = fftw_alloc<fftw_complex>(ny * (nx / 2 + 1));
    auto cout = fftw_alloc<double>(nx * ny);
    std::lock_guard<std::mutex> lock(planner_mutex());
    fine_r2c = fftw_plan_dft_r2c_2d(int(nfy), int(nfx), in.get(), out.get(), FFTW_ESTIMATE);
    coarse_c2r = fftw_plan_dft_c2r_2d(int(ny), int(nx), cin.get(), cout.get(), FFTW_ESTIMATE);
    if (!fine_r2c || !coarse_c2r) throw std::runtime_error("FFTW could not plan the potential transforms");
  }
  ~Plans() {
    std::lock_guard<std::mutex> lock(planner_mutex());
    fftw_destroy_plan(fine_r2c);
    fftw_destroy_plan(coarse_c2r);
  }
};

/// Closed-form z-integral G(k, u) = ∫₀^u g(k, z) dz of the mixed-representation potential
/// g(k, z) = C ∫ f_e(√(k² + q²)) e^{2πiqz} dq of one atom (V·Å², per unit of 1/A).
/// G(k, ±∞) = ±C f_e(k)/2.
double z_integral(int Z, double k, double u, Parametrization p);

#include "scattering_tables.inc"

double z_integral(int Z, double k, double u, Parametrization p) {
  const double C = kFeToPotential_VA2;
  const double s = u < 0 ? -1.0 : 1.0;
  const double au = std::fabs(u);
  const double k2 = k * k;
  double G = 0;
  if (p == Parametrization::Lobato) {
    // a(2 + b q²)/(1 + b q²)² = a[1/(1 + b q²) + 1/(1 + b q²)²]; with β² = (1 + b k²)/b the
    // q-transforms are (π/(bβ)) e^{−2πβ|z|} and (π/(2b²β³))(1 + 2πβ|z|) e^{−2πβ|z|}.
    const double* t = kLobato[Z - 1];
    for (int i = 0; i < 5; ++i) {
      const double a = t[i], b = t[5 + i];
      const double beta = std::sqrt((1.0 + b * k2) / b), c = 2.0 * kPi * beta;
      const double e = std::exp(-c * au);
      const double i1 = (1.0 - e) / c;                       // ∫₀^u e^{−cz}
      const double i2 = (2.0 - e * (2.0 + c * au)) / c;      // ∫₀^u (1 + cz) e^{−cz}
      G += a * (kPi / (b * beta) * i1 + kPi / (2.0 * b * b * beta * beta * beta) * i2);
    }
  } else {
    // a/(q² + k² + b): (π/β) e^{−2πβ|z|}, β = √(k² + b);  c e^{−d(k² + q²)}: c e^{−dk²} √(π/d) e^{−π²z²/d}.
    const double* t = kKirkland[Z - 1];
    for (int i = 0; i < 3; ++i) {
      const double beta = std::sqrt(k2 + t[3 + i]), c = 2.0 * kPi * beta;
      G += t[i] * kPi / beta * (1.0 - std::exp(-c * au)) / c;
      G += t[6 + i] * std::exp(-t[9 + i] * k2) * 0.5 * std::erf(kPi * au / std::sqrt(t[9 + i]));
    }
  }
  return s * C * G;
}

/// Separable z-weights for one element: w(k, u) ≈ Σ_m radial[m](k) · depth[m](u), tabulated
/// on |k| ∈ [0, kmax] and u ∈ [−R, R] and linearly interpolated.
struct ZWeights {
  double dk = 0, du = 0, R = 0;
  std::vector<std::vector<double>> radial;  // [m][ik]
  std::vector<std::vector<double>> depth;   // [m][iu]
  double radial_at(std::size_t m, double k) const {
    const double x = k / dk;
    const auto i = std::min<std::size_t>(static_cast<std::size_t>(x), radial[m].size() - 2);
    const double f = x - static_cast<double>(i);
    return radial[m][i] * (1 - f) + radial[m][i + 1] * f;
  }
  double depth_at(std::size_t m, double u) const {
    const double x = (std::clamp(u, -R, R) + R) / du;
    const auto i = std::min<std::size_t>(static_cast<std::size_t>(x), depth[m].size() - 2);
    const double f = x - static_cast<double>(i);
    return depth[m][i] * (1 - f) + depth[m][i + 1] * f;
  }
};

ZWeights make_zweights(int Z, double kmax, double R, Parametrization p) {
  const std::size_t nk = 384, nu = 1201;
  ZWeights w;
  w.R = R;
  w.dk = kmax / double(nk - 1);
  w.du = 2 * R / double(nu - 1);
  Eigen::MatrixXd M(nk, nu);
  for (std::size_t i = 0; i < nk; ++i)
    for (std::size_t j = 0; j < nu; ++j) M(i, j) = z_integral(Z, double(i) * w.dk, -R + double(j) * w.du, p);
  // SVD through the eigen-decomposition of the small Gram matrix M·Mᵀ (nk × nk): the left
  // singular vectors are its eigenvectors, σ² its eigenvalues, and V = Mᵀ U / σ. Squaring the
  // matrix costs digits only below σ/σ₀ ~ 1e-8, under the 1e-7 truncation used here.
  const Eigen::MatrixXd gram = M * M.transpose();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram);
  const Eigen::VectorXd& ev = eig.eigenvalues();  // ascending
  const long n = ev.size();
  const double s0 = std::sqrt(std::max(ev(n - 1), 0.0));
  for (long m = n - 1; m >= 0 && std::size_t(n - 1 - m) < 24; --m) {
    const double sm = std::sqrt(std::max(ev(m), 0.0));
    if (m < n - 1 && !(sm > 1e-7 * s0)) break;
    const Eigen::VectorXd u = eig.eigenvectors().col(m);
    const Eigen::VectorXd v = M.transpose() * u / sm;
    std::vector<double> r(nk), d(nu);
    for (std::size_t i = 0; i < nk; ++i) r[i] = u(long(i)) * sm;
    for (std::size_t j = 0; j < nu; ++j) d[j] = v(long(j));
    w.radial.push_back(std::move(r));
    w.depth.push_back(std::move(d));
  }
  return w;
}

/// One weighted point source to spread: fine-grid position and weight.
struct Source {
  double fx, fy;  // position in fine pixels
  double weight;
};

}  // namespace

double Potential::thickness_A() const {
  double t = 0;
  for (double d : slice_thickness_A) t += d;
  return t;
}

std::vector<double> Potential::projected() const {
  std::vector<double> p(grid.size(), 0.0);
  for (const auto& s : slices)
    for (std::size_t i = 0; i < s.size(); ++i) p[i] += s[i];
  return p;
}

std::vector<double> slice_boundaries(double lz, double dz) {
  if (!(dz > 0)) throw std::invalid_argument("slice thickness must be > 0 Å (got " + std::to_string(dz) + ")");
  if (!(lz > 0)) throw std::invalid_argument("specimen thickness must be > 0 Å (got " + std::to_string(lz) + ")");
  std::vector<double> b{0.0};
  for (std::size_t i = 1;; ++i) {
    const double z = double(i) * dz;
    if (z >= lz - kBoundaryTolerance_A) break;
    b.push_back(z);
  }
  b.push_back(lz);
  return b;
}

Structure displace_atoms(const Structure& structure, std::uint64_t seed, std::size_t configuration) {
  Structure out = structure;
  for (std::size_t i = 0; i < out.atoms.size(); ++i) {
    Atom& a = out.atoms[i];
    if (a.rms <= 0) continue;
    Rng rng(seed, RngPurpose::Phonon, configuration, i);
    a.x += a.rms * rng.normal();
    a.y += a.rms * rng.normal();
    a.z += a.rms * rng.normal();
  }
  return out;
}

namespace {

/// One atom's source in a slice: its fine-grid position and weight, and for finite
/// projection the slice's start and end minus the atom's z.
struct Entry {
  Source src;
  double u1, u2;
};
/// Per slice, per element: the sources to spread.
using SliceSources = std::vector<std::map<int, std::vector<Entry>>>;

/// Sorts the atoms into the slices between `bounds` (infinite projection: the slice holding
/// the atom; finite: every slice within R of it), wrapped into the cell.
SliceSources sort_into_slices(const Structure& structure, const Grid& grid, const std::vector<double>& bounds, bool finite,
                              double R) {
  const Cell& cell = structure.cell;
  const std::size_t ns = bounds.size() - 1;
  SliceSources per_slice(ns);
  const double fdx = grid.dx() / 2, fdy = grid.dy() / 2;
  for (const Atom& a : structure.atoms) {
    if (a.Z < 1 || a.Z > 103) throw std::invalid_argument("atom with atomic number " + std::to_string(a.Z) + " outside 1..103");
    if (a.occupancy <= 0) continue;
    const double x = a.x - std::floor(a.x / cell.x) * cell.x;
    const double y = a.y - std::floor(a.y / cell.y) * cell.y;
    const Source src{x / fdx, y / fdy, a.occupancy};
    if (!finite) {
      const auto up = std::upper_bound(bounds.begin(), bounds.end(), a.z + kBoundaryTolerance_A);
      long s = long(up - bounds.begin()) - 1;
      s = std::clamp<long>(s, 0, long(ns) - 1);
      per_slice[std::size_t(s)][a.Z].push_back({src, 0, 0});
    } else {
      for (std::size_t s = 0; s < ns; ++s) {
        if (bounds[s + 1] < a.z - R || bounds[s] > a.z + R) continue;
        per_slice[s][a.Z].push_back({src, bounds[s] - a.z, bounds[s + 1] - a.z});
      }
    }
  }
  return per_slice;
}

/// Coarse half-spectrum frequencies |k| and the per-frequency factor that turns the fine
/// grid's DFT of the spread sources into Σ e^{−2πik·r}/A: (fdx·fdy)/Ŵ(k)/A, Ŵ the Gaussian's
/// FT; fine_index: where each coarse frequency sits in the fine half spectrum.
struct SpectrumFactors {
  std::vector<double> kabs, deconv;
  std::vector<std::size_t> fine_index;
};

SpectrumFactors spectrum_factors(const Grid& grid) {
  const std::size_t nx = grid.nx, ny = grid.ny, nfx = 2 * nx;
  const std::size_t nhx = nx / 2 + 1, nfhx = nfx / 2 + 1;
  const double fdx = grid.dx() / 2, fdy = grid.dy() / 2;
  const double area = grid.lx * grid.ly;
  const double sx = kSpreadSigma_px * fdx, sy = kSpreadSigma_px * fdy;  // Å
  SpectrumFactors f{std::vector<double>(ny * nhx), std::vector<double>(ny * nhx), std::vector<std::size_t>(ny * nhx)};
  for (std::size_t j = 0; j < ny; ++j) {
    const double ky = grid.ky(j);
    const std::size_t jf = j < (ny + 1) / 2 ? j : j + ny;  // negative frequencies sit ny further on the fine grid
    for (std::size_t i = 0; i < nhx; ++i) {
      const double kx = double(i) / grid.lx;
      const std::size_t q = j * nhx + i;
      f.kabs[q] = std::sqrt(kx * kx + ky * ky);
      const double W = 2 * kPi * sx * sy * std::exp(-2 * kPi * kPi * (sx * sx * kx * kx + sy * sy * ky * ky));
      f.deconv[q] = fdx * fdy / W / area;
      f.fine_index[q] = jf * nfhx + i;
    }
  }
  return f;
}

/// One thread's buffers: the fine grid the sources are spread on and its half spectrum, the
/// coarse half spectrum a slice accumulates and the coarse slice.
struct SpreadWorkspace {
  std::size_t nfx, nfy;
  fftw_ptr<double> fine, coarse;
  fftw_ptr<fftw_complex> fine_k, coarse_k;
  std::vector<double> wx, wy;
  SpreadWorkspace(std::size_t nx, std::size_t ny)
      : nfx(2 * nx), nfy(2 * ny), fine(fftw_alloc<double>(nfx * nfy)), coarse(fftw_alloc<double>(nx * ny)),
        fine_k(fftw_alloc<fftw_complex>(nfy * (nfx / 2 + 1))), coarse_k(fftw_alloc<fftw_complex>(ny * (nx / 2 + 1))),
        wx(2 * kSpreadHalfWidth_px + 1), wy(2 * kSpreadHalfWidth_px + 1) {}

  /// Spreads the sources, each weighted by weight_of(entry), as Gaussians on the fine grid
  /// (periodic) and transforms it into fine_k.
  template <class WeightOf>
  void spread(const std::vector<Entry>& entries, WeightOf weight_of, const Plans& plans) {
    std::fill(fine.get(), fine.get() + nfx * nfy, 0.0);
    for (const Entry& e : entries) {
      const double w = weight_of(e);
      if (w == 0) continue;
      const long ix0 = long(std::floor(e.src.fx)), iy0 = long(std::floor(e.src.fy));
      for (int d = -kSpreadHalfWidth_px; d <= kSpreadHalfWidth_px; ++d) {
        const double ddx = double(ix0 + d) - e.src.fx, ddy = double(iy0 + d) - e.src.fy;
        wx[std::size_t(d + kSpreadHalfWidth_px)] = std::exp(-ddx * ddx / (2 * kSpreadSigma_px * kSpreadSigma_px));
        wy[std::size_t(d + kSpreadHalfWidth_px)] = w * std::exp(-ddy * ddy / (2 * kSpreadSigma_px * kSpreadSigma_px));
      }
      for (int dy = -kSpreadHalfWidth_px; dy <= kSpreadHalfWidth_px; ++dy) {
        const long jy = ((iy0 + dy) % long(nfy) + long(nfy)) % long(nfy);
        double* row = fine.get() + std::size_t(jy) * nfx;
        const double wyv = wy[std::size_t(dy + kSpreadHalfWidth_px)];
        for (int dx = -kSpreadHalfWidth_px; dx <= kSpreadHalfWidth_px; ++dx) {
          const long jx = ((ix0 + dx) % long(nfx) + long(nfx)) % long(nfx);
          row[jx] += wyv * wx[std::size_t(dx + kSpreadHalfWidth_px)];
        }
      }
    }
    fftw_execute_dft_r2c(plans.fine_r2c, fine.get(), fine_k.get());
  }

  /// coarse_k += g(q) · fine_k at each coarse frequency q.
  template <class Factor>
  void accumulate(const SpectrumFactors& f, Factor g_of) {
    for (std::size_t q = 0; q < f.kabs.size(); ++q) {
      const double g = g_of(q);
      coarse_k.get()[q][0] += g * fine_k.get()[f.fine_index[q]][0];
      coarse_k.get()[q][1] += g * fine_k.get()[f.fine_index[q]][1];
    }
  }
};

}  // namespace

Potential build_potential(const Structure& structure, const Grid& grid, const PotentialSettings& st) {
  const Cell& cell = structure.cell;
  if (std::fabs(cell.x - grid.lx) > 1e-6 * cell.x || std::fabs(cell.y - grid.ly) > 1e-6 * cell.y)
    throw std::invalid_argument("build_potential: grid extent (" + std::to_string(grid.lx) + " × " +
                                std::to_string(grid.ly) + " Å) differs from the cell (" + std::to_string(cell.x) +
                                " × " + std::to_string(cell.y) + " Å)");
  const std::vector<double> bounds = slice_boundaries(cell.z, st.slice_thickness_A);
  const std::size_t ns = bounds.size() - 1;
  const bool finite = st.projection == Projection::Finite;
  const double R = st.finite_range_A;
  if (finite && !(R > 0)) throw std::invalid_argument("finite projection range must be > 0 Å");
  const SliceSources per_slice = sort_into_slices(structure, grid, bounds, finite, R);

  // Elements present, and their z-weights for finite projection.
  std::map<int, ZWeights> zw;
  for (const auto& m : per_slice)
    for (const auto& [Z, v] : m) zw.emplace(Z, ZWeights{});
  const double kmax_fine = std::sqrt(std::pow(0.5 / grid.dx(), 2) + std::pow(0.5 / grid.dy(), 2)) * 1.001;
  if (finite)
    for (auto& [Z, w] : zw) w = make_zweights(Z, kmax_fine, R, st.parametrization);

  const std::size_t nx = grid.nx, ny = grid.ny;
  const std::size_t nhx = nx / 2 + 1;
  const Plans plans(2 * nx, 2 * ny, nx, ny);
  const SpectrumFactors f = spectrum_factors(grid);
  // Radial factor C f_e(k) per element on the coarse half spectrum (infinite projection).
  std::map<int, std::vector<double>> fe;
  if (!finite)
    for (const auto& [Z, w] : zw) {
      std::vector<double> v(ny * nhx);
      for (std::size_t q = 0; q < v.size(); ++q) v[q] = kFeToPotential_VA2 * scattering_factor(Z, f.kabs[q], st.parametrization);
      fe.emplace(Z, std::move(v));
    }

  Potential pot;
  pot.grid = grid;
  pot.slices.assign(ns, std::vector<float>(grid.size(), 0.0f));
  pot.slice_thickness_A.resize(ns);
  for (std::size_t s = 0; s < ns; ++s) pot.slice_thickness_A[s] = bounds[s + 1] - bounds[s];

  // Each slice is independent: threads over slices give thread-count independent results.
  ParallelErrors errors;
#pragma omp parallel
  {
    std::unique_ptr<SpreadWorkspace> ws;
    errors.run([&] { ws = std::make_unique<SpreadWorkspace>(nx, ny); });

#pragma omp for schedule(dynamic)
    for (long sl = 0; sl < long(ns); ++sl) errors.run([&] {
      const auto s = std::size_t(sl);
      if (!ws) throw std::bad_alloc();  // this thread's buffers failed (reported once by errors)
      std::fill(&ws->coarse_k.get()[0][0], &ws->coarse_k.get()[0][0] + 2 * ny * nhx, 0.0);
      for (const auto& [Z, entries] : per_slice[s]) {
        if (!finite) {
          ws->spread(entries, [](const Entry& e) { return e.src.weight; }, plans);
          const auto& fz = fe.at(Z);
          ws->accumulate(f, [&](std::size_t q) { return fz[q] * f.deconv[q]; });
        } else {
          const ZWeights& w = zw.at(Z);
          for (std::size_t m = 0; m < w.radial.size(); ++m) {
            ws->spread(entries, [&](const Entry& e) { return e.src.weight * (w.depth_at(m, e.u2) - w.depth_at(m, e.u1)); }, plans);
            ws->accumulate(f, [&](std::size_t q) { return w.radial_at(m, f.kabs[q]) * f.deconv[q]; });
          }
        }
      }
      fftw_execute_dft_c2r(plans.coarse_c2r, ws->coarse_k.get(), ws->coarse.get());
      std::vector<float>& out = pot.slices[s];
      for (std::size_t i = 0; i < nx * ny; ++i) out[i] = static_cast<float>(ws->coarse.get()[i]);
    });
  }
  errors.rethrow();
  return pot;
}

}  // namespace stemtwin
