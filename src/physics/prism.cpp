#include "stemtwin/physics/prism.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "prism_partitioned.hpp"
#include "recorder.hpp"

#include <Eigen/Core>
#include <map>
#include <omp.h>
#include <optional>

#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/core/parallel.hpp"
#include "stemtwin/core/constants.hpp"

namespace stemtwin {

using prism_detail::signed_index;
using prism_detail::wrap_index;
using prism_detail::BeamCoefficients;
using prism_detail::beam_coefficients;
namespace {

void check_factors(const Grid& g, std::size_t fx, std::size_t fy) {
  if (fx == 0 || fy == 0) throw std::invalid_argument("PRISM interpolation factors must be ≥ 1");
  if (g.nx % fx != 0 || g.ny % fy != 0)
    throw std::invalid_argument("PRISM: grid " + std::to_string(g.nx) + "×" + std::to_string(g.ny) +
                                " points is not divisible by the interpolation factors " + std::to_string(fx) + "×" +
                                std::to_string(fy) + " (Grid::from_sampling with multiples chooses such a grid)");
}

}  // namespace

prism_detail::BeamCoefficients prism_detail::beam_coefficients(const SMatrix& S, const ProbeOptics& o, double defocus_offset) {
  const Grid& g = S.grid;
  const double lambda = wavelength_A(S.energy_eV);
  const double dkx = double(S.fx) / g.lx, dky = double(S.fy) / g.ly;
  const double cutoff = o.semiangle_mrad * 1e-3;
  Aberrations ab = o.aberrations;
  ab.C[0] -= defocus_offset;
  BeamCoefficients b;
  double norm = 0;
  for (const auto& m : S.beams) {
    const double kx = m[0] * dkx, ky = m[1] * dky;
    const double alpha = lambda * std::hypot(kx, ky), phi = std::atan2(ky, kx);
    const double a = aperture(alpha, phi, cutoff, lambda * dkx, lambda * dky);
    const double chi = ab.chi(alpha, phi, lambda);
    b.kx.push_back(kx);
    b.ky.push_back(ky);
    b.c0.push_back(cfloat(float(a * std::cos(-chi)), float(a * std::sin(-chi))));
    norm += a * a;
  }
  const double nwin = double(g.nx / S.fx) * double(g.ny / S.fy);
  const float s = float(1.0 / std::sqrt(norm * nwin));
  for (auto& c : b.c0) c *= s;
  return b;
}

std::size_t SMatrix::bytes() const {
  std::size_t sampled = 0;
  for (const auto& v : samples.values) sampled += v.size();
  return (waves.size() * beams.size() * stored.size() + sampled) * sizeof(cfloat);
}

namespace {

std::size_t storage_points(std::size_t n, double length_A, double k_max, std::size_t f) {
  // Band pixels have |i| ≤ floor(k_max·L); an n'-point axis holds signed indices up to
  // ⌈n'/2⌉ − 1, so n' ≥ 2·imax + 2 (either parity) holds them all.
  const std::size_t imax = std::size_t(std::floor(k_max * length_A + 1e-9));
  for (std::size_t m = 2 * imax + 2; m < n; ++m)
    if (m % f == 0 && fft_friendly_size(m / f) == m / f) return m;
  return n;
}
}  // namespace

Grid smatrix_storage_grid(const Grid& g, std::size_t fx, std::size_t fy, bool crop) {
  if (!crop) return g;
  const double km = g.k_max();
  return Grid(g.lx, g.ly, storage_points(g.nx, g.lx, km, fx), storage_points(g.ny, g.ly, km, fy));
}

std::vector<std::array<int, 2>> prism_beams(const Grid& g, double energy_eV, double semiangle_mrad, std::size_t fx,
                                            std::size_t fy) {
  check_factors(g, fx, fy);
  const double lambda = wavelength_A(energy_eV);
  const double dkx = double(fx) / g.lx, dky = double(fy) / g.ly;
  const double cutoff = semiangle_mrad * 1e-3;
  // Beams must be frequencies of the full grid (within its band limit) and inside the
  // aperture's soft edge.
  const int mx = int((g.nx - 1) / 2 / fx), my = int((g.ny - 1) / 2 / fy);
  std::vector<std::array<int, 2>> beams;
  for (int j = -my; j <= my; ++j)
    for (int i = -mx; i <= mx; ++i) {
      const double kx = i * dkx, ky = j * dky;
      if (std::hypot(kx, ky) > g.k_max()) continue;
      if (aperture(lambda * std::hypot(kx, ky), std::atan2(ky, kx), cutoff, lambda * dkx, lambda * dky) > 0)
        beams.push_back({i, j});
    }
  if (beams.empty()) throw std::invalid_argument("PRISM: no plane wave falls inside the probe aperture: lower the interpolation factor");
  return beams;
}

std::size_t smatrix_bytes(const Grid& g, double energy_eV, double semiangle_mrad, std::size_t fx, std::size_t fy,
                          std::size_t depths, bool crop) {
  return prism_beams(g, energy_eV, semiangle_mrad, fx, fy).size() * smatrix_storage_grid(g, fx, fy, crop).size() *
         sizeof(cfloat) * std::max<std::size_t>(1, depths);
}

double partitioned_semiangle_mrad(const Grid& g, double energy_eV, double semiangle_mrad, std::size_t fx, std::size_t fy) {
  // Every coarse point within one tent diagonal (plus the aperture's one-pixel soft edge)
  // of the aperture is the parent of some fine beam inside it.
  const double lambda = wavelength_A(energy_eV);
  const double reach = std::hypot(double(fx) / g.lx, double(fy) / g.ly) + std::hypot(1.0 / g.lx, 1.0 / g.ly);
  return semiangle_mrad + reach * lambda * 1e3;
}

std::size_t default_memory_budget() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  std::size_t value;
  while (in >> key >> value >> unit)
    if (key == "MemAvailable:") return value * 1024 / 10 * 6;
  return std::size_t(4) << 30;
}

SMatrix build_smatrix(const Transmission& t, double semiangle_mrad, std::size_t fx, std::size_t fy,
                      const std::vector<double>& depths, const Fft2& fft, bool crop,
                      const std::vector<std::vector<std::uint32_t>>* sample_pixels) {
  const Grid& g = t.grid;
  SMatrix S;
  S.grid = g;
  S.stored = smatrix_storage_grid(g, fx, fy, crop);
  const Grid& gs = S.stored;
  const bool cropped = !(gs == g);
  // Fourier crop: full-grid FFT index of every stored-grid frequency, and the stored grid's plan.
  std::vector<std::size_t> crop_from;
  std::optional<Fft2> small_fft;
  if (cropped) {
    crop_from.resize(gs.size());
    for (std::size_t j = 0; j < gs.ny; ++j)
      for (std::size_t i = 0; i < gs.nx; ++i)
        crop_from[j * gs.nx + i] = wrap_index(signed_index(j, gs.ny), g.ny) * g.nx + wrap_index(signed_index(i, gs.nx), g.nx);
    small_fft.emplace(gs, fft.planning(), fft.wisdom_file());
  }
  S.energy_eV = t.energy_eV;
  S.fx = fx;
  S.fy = fy;
  S.beams = prism_beams(g, t.energy_eV, semiangle_mrad, fx, fy);
  const std::size_t ns = t.num_slices(), N = g.size();
  const std::vector<std::size_t> depth_slice = detail::depth_slices(t.slice_thickness_A, depths, S.depths_A);
  std::vector<std::vector<std::size_t>> record_at(ns);
  for (std::size_t d = 0; d < depth_slice.size(); ++d) record_at[depth_slice[d]].push_back(d);
  const double lambda = wavelength_A(t.energy_eV);
  std::vector<ComplexBuffer> props;
  std::vector<std::size_t> prop_of(ns);
  for (std::size_t s = 0; s < ns; ++s) {
    if (s == 0 || t.slice_thickness_A[s] != t.slice_thickness_A[s - 1])
      props.push_back(fresnel_propagator(g, lambda, t.slice_thickness_A[s], 1.0f / float(N)));
    prop_of[s] = props.size() - 1;
  }
  std::vector<detail::BandRows> prop_rows;
  for (const ComplexBuffer& p : props) prop_rows.push_back(detail::band_rows(p.data(), g.nx, g.ny));
  S.waves.assign(depth_slice.size(), std::vector<ComplexBuffer>(S.beams.size()));
  S.propagated_A.assign(depth_slice.size(), 0.0);
  {
    double z = 0;
    for (std::size_t s = 0; s < ns; ++s) {
      for (std::size_t d : record_at[s]) S.propagated_A[d] = z;
      z += t.slice_thickness_A[s];
    }
  }
  SMatrixSamples& samples = S.samples;
  if (sample_pixels) prism_detail::prepare_samples(t, *sample_pixels, S.beams.size(), samples);
  const bool sample_exit = sample_pixels && !samples.pixels[ns].empty();
  ParallelErrors errors;
#pragma omp parallel
  {
    std::optional<ComplexBuffer> buffer, spectrum;
    errors.run([&] {
      buffer.emplace(N);
      if (cropped) spectrum.emplace(N);
    });
#pragma omp for schedule(dynamic)
    for (long bl = 0; bl < long(S.beams.size()); ++bl) errors.run([&] {
      ComplexBuffer& psi = *buffer;
      const auto b = std::size_t(bl);
      const double kx = S.beams[b][0] * double(fx) / g.lx, ky = S.beams[b][1] * double(fy) / g.ly;
      for (std::size_t j = 0; j < g.ny; ++j)
        for (std::size_t i = 0; i < g.nx; ++i) {
          const double a = 2 * kPi * (kx * double(i) * g.dx() + ky * double(j) * g.dy());
          psi[j * g.nx + i] = cfloat(float(std::cos(a)), float(std::sin(a)));
        }
      for (std::size_t s = 0; s < ns; ++s) {
        if (sample_pixels) prism_detail::keep_samples(psi.data(), b, s, samples);
        detail::cmul_inplace(psi.data(), t.slices[s].data(), N);
        // Keep ψ·t of this slice: the multislice engine records right after this product
        // (the propagator is a pure phase in the band), so f = 1 matches it exactly.
        if (!record_at[s].empty() && cropped) {
          ComplexBuffer& sp = *spectrum;
          std::copy(psi.data(), psi.data() + N, sp.data());
          fft.forward(sp.data());
          ComplexBuffer small(gs.size());
          const float inv = 1.0f / float(N);
          for (std::size_t q = 0; q < gs.size(); ++q) small[q] = sp[crop_from[q]] * inv;
          small_fft->backward(small.data());
          for (std::size_t d : record_at[s]) S.waves[d][b] = small;
        } else {
          for (std::size_t d : record_at[s]) S.waves[d][b] = psi;
        }
        // The observer's exit wave: the last slice's thickness propagated too (as multislice).
        if (s + 1 < ns || sample_exit) {
          fft.forward(psi.data());
          detail::cmul_band_rows(psi.data(), props[prop_of[s]].data(), prop_rows[prop_of[s]]);
          fft.backward(psi.data());
        }
      }
      if (sample_pixels) prism_detail::keep_samples(psi.data(), b, ns, samples);
    });
  }
  errors.rethrow();
  return S;
}

namespace {

/// Positions grouped by proximity share one window (centred on the group's cell): the
/// window waves of a group are then one complex matrix product C = A·W, A the P × beams
/// coefficients and W the beams × window pixels of the S-matrix, which reads each S-matrix
/// element once per group instead of once per position. Used when no 4D detector streams
/// patterns (those need position order). A window off-centre by up to half a group cell is
/// exact for f = 1 (a cyclic shift) and a negligible change for f > 1 when the cell is small
/// against the window.
void scan_grouped(const std::vector<SMatrix>& configs, const std::vector<BeamCoefficients>& coef, const FocalQuadrature& fq,
                  const std::vector<Point2>& positions, const detail::Compiled& comp, std::size_t ndepth,
                  const StemSettings& st, const Grid& window, const Fft2& fft, float inv_n, StemResult& res) {
  using Mat = Eigen::Matrix<std::complex<float>, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const SMatrix& S0 = configs.front();
  const Grid& g = S0.stored;
  const std::size_t nwx = window.nx, nwy = window.ny, nw = nwx * nwy, nb = S0.beams.size();
  const double cell = st.prism_block_A;
  std::map<std::pair<long, long>, std::vector<std::size_t>> by_cell;
  for (std::size_t i = 0; i < positions.size(); ++i)
    by_cell[{long(std::floor(positions[i].x / cell)), long(std::floor(positions[i].y / cell))}].push_back(i);
  const std::vector<std::pair<std::pair<long, long>, std::vector<std::size_t>>> groups(by_cell.begin(), by_cell.end());
  std::size_t max_group = 0;
  for (const auto& gr : groups) max_group = std::max(max_group, gr.second.size());
  const double wconf = 1.0 / double(configs.size());
  std::size_t done = 0;
  ParallelErrors errors;
#pragma omp parallel
  {
    struct Workspace {
      std::vector<detail::Recorder> rec;
      Mat W, A, C;
      ComplexBuffer psi;
    };
    std::optional<Workspace> workspace;
    errors.run([&] {
      workspace.emplace(Workspace{std::vector<detail::Recorder>(max_group, detail::Recorder(comp, ndepth)), Mat(nb, nw),
                                  Mat(max_group, nb), Mat(max_group, nw), ComplexBuffer(nw)});
    });
    std::vector<std::size_t> depth_list(1);
#pragma omp for schedule(dynamic)
    for (long gl = 0; gl < long(groups.size()); ++gl) errors.run([&] {
      auto& [rec, W, A, C, psi] = *workspace;
      const auto& [key, members] = groups[std::size_t(gl)];
      const std::size_t P = members.size();
      for (std::size_t k = 0; k < P; ++k) rec[k].clear();
      const double gx = (double(key.first) + 0.5) * cell, gy = (double(key.second) + 0.5) * cell;
      const long cx = std::lround(gx / g.dx()) - long(nwx / 2), cy = std::lround(gy / g.dy()) - long(nwy / 2);
      const std::size_t x0 = std::size_t(((cx % long(g.nx)) + long(g.nx)) % long(g.nx)), run1 = std::min(nwx, g.nx - x0);
      for (std::size_t d = 0; d < ndepth; ++d) {
        depth_list[0] = d;
        for (const SMatrix& S : configs) {
          // Gather the window of every beam (rows wrap around the periodic cell).
          for (std::size_t m = 0; m < nb; ++m) {
            const cfloat* sm = S.waves[d][m].data();
            std::complex<float>* wrow = W.row(long(m)).data();
            for (std::size_t j = 0; j < nwy; ++j) {
              const std::size_t sy = std::size_t((((cy + long(j)) % long(g.ny)) + long(g.ny)) % long(g.ny));
              const cfloat* src = sm + sy * g.nx;
              std::copy(src + x0, src + x0 + run1, wrow + j * nwx);
              if (run1 < nwx) std::copy(src, src + (nwx - run1), wrow + j * nwx + run1);
            }
          }
          for (std::size_t f = 0; f < coef.size(); ++f) {
            const BeamCoefficients& bc = coef[f];
            for (std::size_t k = 0; k < P; ++k) {
              const Point2 r0 = positions[members[k]];
              for (std::size_t m = 0; m < nb; ++m) {
                const double a = -2 * kPi * (bc.kx[m] * r0.x + bc.ky[m] * r0.y);
                A(long(k), long(m)) = bc.c0[m] * cfloat(float(std::cos(a)), float(std::sin(a)));
              }
            }
            C.topRows(long(P)).noalias() = A.topRows(long(P)) * W;
            for (std::size_t k = 0; k < P; ++k) {
              std::copy(C.row(long(k)).data(), C.row(long(k)).data() + nw, psi.data());
              fft.forward(psi.data());
              rec[k].record(psi.data(), inv_n, wconf * fq.weight[f], depth_list, false);
            }
          }
        }
      }
      for (std::size_t k = 0; k < P; ++k) rec[k].store(members[k], res);
      if (st.progress) {
#pragma omp critical(stemtwin_prism_progress)
        {
          done += P;
          if (omp_get_thread_num() == 0) st.progress(done, positions.size());
        }
      }
    });
  }
  errors.rethrow();
  if (st.progress) st.progress(positions.size(), positions.size());
}

}  // namespace

prism_detail::ScanSetup prism_detail::scan_setup(const SMatrix& S0, const ProbeOptics& optics,
                                                const std::vector<Detector>& detectors, const Grid& window,
                                                const Grid& window_full, std::size_t positions) {
  const double lambda = wavelength_A(optics.energy_eV);
  ScanSetup s{StemResult{}, {}, focal_spread_quadrature(optics.focal_spread_A, optics.focal_spread_points), S0.waves.size()};
  s.res.depths_A = S0.depths_A;
  s.res.method = "prism";
  s.res.interpolation = std::max(S0.fx, S0.fy);
  s.res.warnings = check_detectors(detectors, window_full, lambda);
  s.comp = detail::compile(detectors, window_full, lambda);
  if (!(window == window_full) && !s.comp.patterns.empty())
    throw std::invalid_argument("scan_prism: 4D (pixelated) detectors need an S-matrix built with crop = false");
  detail::init_signals(s.res, s.comp, detectors, s.ndepth, positions);
  return s;
}

StemResult scan_prism(const std::vector<SMatrix>& configs, const ProbeOptics& optics, const std::vector<Point2>& positions,
                      const std::vector<Detector>& detectors, const StemSettings& st, PatternSink* sink, SliceObserver* observer) {
  if (configs.empty()) throw std::invalid_argument("scan_prism: no S-matrices");
  const SMatrix& S0 = configs.front();
  for (const auto& S : configs)
    if (!(S.grid == S0.grid) || !(S.stored == S0.stored) || S.fx != S0.fx || S.fy != S0.fy || S.beams != S0.beams || S.waves.size() != S0.waves.size())
      throw std::invalid_argument("scan_prism: S-matrices differ in grid, interpolation, beams or depths");
  if (std::fabs(S0.energy_eV - optics.energy_eV) > 1e-6 * optics.energy_eV)
    throw std::invalid_argument("scan_prism: probe energy differs from the S-matrix energy");
  detail::check_detector_names(detectors);
  if (observer && st.prism_partitioned)
    throw std::invalid_argument("scan_prism: spectroscopy (EDS/EELS) does not ride on partitioned PRISM (its beamlets are "
                                "formed at the recording depths only); use plain PRISM, multislice or windowed");
  if (observer) prism_detail::begin_observer(configs, positions.size(), *observer);
  if (st.prism_partitioned) {
    const double thickness = S0.depths_A.empty() ? 0.0 : S0.depths_A.back();
    return scan_partitioned(configs, optics, positions, detectors, st, sink,
                            st.prism_window_A > 0 ? st.prism_window_A : prism_window_needed_A(optics, thickness));
  }
  const Grid& g = S0.stored;  // the waves' grid
  const Grid& gf = S0.grid;   // the simulation grid
  // The window on the stored grid, and the same window at the simulation grid's sampling:
  // detectors are compiled on the latter (its band limit), then their in-band pixels are
  // re-indexed into the stored window's spectrum, which holds every one of them.
  const std::size_t nwx = g.nx / S0.fx, nwy = g.ny / S0.fy, nw = nwx * nwy;
  const Grid window(g.lx / double(S0.fx), g.ly / double(S0.fy), nwx, nwy);
  const Grid window_full(gf.lx / double(S0.fx), gf.ly / double(S0.fy), gf.nx / S0.fx, gf.ny / S0.fy);
  const std::size_t nb = S0.beams.size();
  prism_detail::ScanSetup setup = prism_detail::scan_setup(S0, optics, detectors, window, window_full, positions.size());
  StemResult& res = setup.res;
  detail::Compiled& comp = setup.comp;
  const FocalQuadrature& fq = setup.fq;
  const std::size_t ndepth = setup.ndepth;
  if (!(window == window_full))
    for (auto& q : comp.band) {
      const std::size_t i = q % window_full.nx, j = q / window_full.nx;
      q = std::uint32_t(wrap_index(signed_index(j, window_full.ny), nwy) * nwx + wrap_index(signed_index(i, window_full.nx), nwx));
    }
  std::vector<BeamCoefficients> coef;
  for (double df : fq.defocus_A) coef.push_back(beam_coefficients(S0, optics, df));
  const Fft2 fft(window, st.planning, st.fftw_wisdom_file);
  res.fft_plan = fft.plan_id();
  res.warnings.insert(res.warnings.end(), fft.warnings().begin(), fft.warnings().end());
  const double wconf = 1.0 / double(configs.size());
  // |FFT|² scale: the window FFT of the n'-point stored samples of a band-limited wave is
  // n'/n times that of its n full-grid samples, so 1/n of the full grid becomes n/n'².
  const float inv_n = float(double(window_full.size()) / (double(nw) * double(nw)));

  const bool grouped = comp.patterns.empty() && st.prism_block_A > 0;
  // The observer's intensities: the same beam sums, on the same windows (prism_observe.cpp).
  auto observe = [&] {
    if (observer) prism_detail::observe_prism(configs, coef, fq.weight, positions, grouped ? st.prism_block_A : 0, *observer);
  };
  if (grouped) {
    scan_grouped(configs, coef, fq, positions, comp, ndepth, st, window, fft, inv_n, res);
    observe();
    return res;
  }

  struct Workspace {
    ComplexBuffer psi;
    std::vector<cfloat> c;
    std::vector<std::size_t> col, row;
  };
  detail::drive_positions<Workspace>(
      positions.size(), comp, detectors, ndepth, st, sink, res,
      [&] { return Workspace{ComplexBuffer(nw), std::vector<cfloat>(nb), std::vector<std::size_t>(nwx), std::vector<std::size_t>(nwy)}; },
      [&](std::size_t pi, detail::Recorder& rec, Workspace& ws) {
        const Point2 r0 = positions[pi];
        // Window of nwx × nwy pixels centred on the probe, wrapped periodically.
        const long cx = std::lround(r0.x / g.dx()) - long(nwx / 2), cy = std::lround(r0.y / g.dy()) - long(nwy / 2);
        for (std::size_t i = 0; i < nwx; ++i) ws.col[i] = std::size_t(((cx + long(i)) % long(g.nx) + long(g.nx)) % long(g.nx));
        for (std::size_t j = 0; j < nwy; ++j) ws.row[j] = std::size_t(((cy + long(j)) % long(g.ny) + long(g.ny)) % long(g.ny));
        std::vector<std::size_t> depth_list(1);
        for (std::size_t d = 0; d < ndepth; ++d) {
          depth_list[0] = d;
          for (const SMatrix& S : configs)
            for (std::size_t f = 0; f < coef.size(); ++f) {
              const BeamCoefficients& bc = coef[f];
              for (std::size_t m = 0; m < nb; ++m) {
                const double a = -2 * kPi * (bc.kx[m] * r0.x + bc.ky[m] * r0.y);
                ws.c[m] = bc.c0[m] * cfloat(float(std::cos(a)), float(std::sin(a)));
              }
              std::fill(ws.psi.data(), ws.psi.data() + nw, cfloat(0, 0));
              // Σ_m c_m S_m over the window: per window row at most two contiguous runs of the
              // source row (the window may wrap around the cell), each a complex axpy.
              const std::size_t x0 = ws.col[0], run1 = std::min(nwx, g.nx - x0);
              for (std::size_t m = 0; m < nb; ++m) {
                const cfloat* sm = S.waves[d][m].data();
                const float cr = ws.c[m].real(), ci = ws.c[m].imag();
                auto* out = reinterpret_cast<float*>(ws.psi.data());
                for (std::size_t j = 0; j < nwy; ++j) {
                  const float* src = reinterpret_cast<const float*>(sm + ws.row[j] * g.nx);
                  float* orow = out + 2 * j * nwx;
                  auto axpy = [&](const float* __restrict a, float* __restrict o, std::size_t n) {
                    for (std::size_t i = 0; i < n; ++i) {
                      const float vr = a[2 * i], vi = a[2 * i + 1];
                      o[2 * i] += cr * vr - ci * vi;
                      o[2 * i + 1] += cr * vi + ci * vr;
                    }
                  };
                  axpy(src + 2 * x0, orow, run1);
                  if (run1 < nwx) axpy(src, orow + 2 * run1, nwx - run1);
                }
              }
              fft.forward(ws.psi.data());
              rec.record(ws.psi.data(), inv_n, wconf * fq.weight[f], depth_list, d + 1 == ndepth);
            }
        }
      });
  observe();
  return res;
}

namespace {
struct PrismPlan {
  std::size_t fx, fy, nconf;
  bool thermal, crop;
  double semiangle;
};
/// The S-matrix layout simulate_prism builds for these settings, after the memory check
/// (std::runtime_error naming sizes): called before any plan or potential is made.
PrismPlan plan_prism(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                     const std::vector<Detector>& detectors, const StemSettings& st) {
  const std::size_t fx = std::max<std::size_t>(1, st.interpolation_x), fy = std::max<std::size_t>(1, st.interpolation_y);
  const bool thermal = std::any_of(structure.atoms.begin(), structure.atoms.end(), [](const Atom& a) { return a.rms > 0; });
  const std::size_t nconf = thermal ? std::max<std::size_t>(1, st.phonon_configurations) : 1;
  const std::size_t ndepth = std::max<std::size_t>(1, st.depths_A.size());
  // 4D patterns are indexed on the full window: keep the full grid for them.
  const bool crop = st.prism_band_limit_crop && std::none_of(detectors.begin(), detectors.end(), [](const Detector& d) {
                      return std::holds_alternative<PixelatedDetector>(d);
                    });
  const double semiangle = st.prism_partitioned ? partitioned_semiangle_mrad(grid, optics.energy_eV, optics.semiangle_mrad, fx, fy)
                                                : optics.semiangle_mrad;
  const std::size_t need = nconf * smatrix_bytes(grid, optics.energy_eV, semiangle, fx, fy, ndepth, crop);
  const std::size_t budget = st.max_memory_bytes ? st.max_memory_bytes : default_memory_budget();
  if (need > budget) {
    std::ostringstream m;
    m << "PRISM S-matrices would need " << double(need) / (1 << 20) << " MiB (" << nconf << " configuration(s) × "
      << ndepth << " depth(s)) but the memory budget is " << double(budget) / (1 << 20)
      << " MiB: raise the interpolation factor, use fewer phonon configurations or depths, or use multislice";
    throw std::runtime_error(m.str());
  }
  return {fx, fy, nconf, thermal, crop, semiangle};
}

/// The observer's samples on top of the S-matrices, against the same budget (std::runtime_error).
void check_sample_memory(const std::vector<std::vector<std::vector<std::uint32_t>>>& pixels, const Grid& grid,
                         const ProbeOptics& optics, const PrismPlan& p, const StemSettings& st) {
  std::size_t points = 0;
  for (const auto& conf : pixels)
    for (const auto& read : conf) points += read.size();
  const std::size_t beams = prism_beams(grid, optics.energy_eV, p.semiangle, p.fx, p.fy).size();
  const std::size_t samples = beams * points * sizeof(cfloat);
  const std::size_t need = p.nconf * smatrix_bytes(grid, optics.energy_eV, p.semiangle, p.fx, p.fy,
                                                   std::max<std::size_t>(1, st.depths_A.size()), p.crop) + samples;
  const std::size_t budget = st.max_memory_bytes ? st.max_memory_bytes : default_memory_budget();
  if (need > budget) {
    std::ostringstream m;
    m << "PRISM with spectroscopy: the S-matrices and their samples at the atoms' footprints (" << beams << " beams × "
      << points << " pixels, " << double(samples) / (1 << 20) << " MiB) would need " << double(need) / (1 << 20)
      << " MiB but the memory budget is " << double(budget) / (1 << 20)
      << " MiB: raise the interpolation factor, narrow the footprints (width), or use multislice";
    throw std::runtime_error(m.str());
  }
}
}  // namespace

std::vector<SMatrix> build_prism_smatrices(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                                           const std::vector<Detector>& detectors, const StemSettings& st, const Fft2& fft,
                                           SliceObserver* observer) {
  const PrismPlan p = plan_prism(structure, grid, optics, detectors, st);
  const std::size_t fx = p.fx, fy = p.fy, nconf = p.nconf;
  const bool thermal = p.thermal, crop = p.crop;
  const double semiangle = p.semiangle;
  if (observer && st.prism_partitioned)
    throw std::invalid_argument("PRISM: spectroscopy (EDS/EELS) does not ride on partitioned PRISM; use plain PRISM");
  std::vector<SMatrix> smats;
  std::vector<std::vector<std::vector<std::uint32_t>>> pixels;
  for (std::size_t c = 0; c < nconf; ++c) {
    const Potential pot = thermal ? build_potential(displace_atoms(structure, st.seed, c), grid, st.potential)
                                  : build_potential(structure, grid, st.potential);
    const Transmission t = transmission_functions(pot, optics.energy_eV, fft);
    if (observer && c == 0) {
      pixels = prism_observed_pixels(*observer, grid, t.slice_thickness_A, nconf);
      check_sample_memory(pixels, grid, optics, p, st);
    }
    smats.push_back(build_smatrix(t, semiangle, fx, fy, st.depths_A, fft, crop, observer ? &pixels[c] : nullptr));
  }
  return smats;
}

StemResult simulate_prism(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                          const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                          const StemSettings& st, PatternSink* sink, SliceObserver* observer) {
  plan_prism(structure, grid, optics, detectors, st);  // refuses before any plan is made
  const Fft2 fft(grid, st.planning, st.fftw_wisdom_file);
  const std::vector<SMatrix> smats = build_prism_smatrices(structure, grid, optics, detectors, st, fft, observer);
  StemResult r = scan_prism(smats, optics, positions, detectors, st, sink, observer);
  r.fft_plan = fft.plan_id() + "/" + r.fft_plan;  // S-matrix plan / window plan
  r.warnings.insert(r.warnings.end(), fft.warnings().begin(), fft.warnings().end());
  return r;
}

}  // namespace stemtwin
