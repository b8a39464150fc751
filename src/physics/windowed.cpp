#include "stemtwin/physics/windowed.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "recorder.hpp"
#include "stemtwin/core/constants.hpp"

namespace stemtwin {

namespace {

/// Every periodic image (period = the full cell) of the atoms that falls in the region
/// [x0, x0 + wx) × [y0, y0 + wy), shifted to the region's origin; cell wx × wy × z.
Structure extract_region(const Structure& s, double x0, double y0, double wx, double wy) {
  Structure out;
  out.cell = {wx, wy, s.cell.z};
  for (const Atom& a : s.atoms) {
    const double fx0 = std::ceil((x0 - a.x) / s.cell.x), fy0 = std::ceil((y0 - a.y) / s.cell.y);
    for (double ix = fx0; a.x + ix * s.cell.x < x0 + wx; ++ix)
      for (double iy = fy0; a.y + iy * s.cell.y < y0 + wy; ++iy) {
        Atom b = a;
        b.x = a.x + ix * s.cell.x - x0;
        b.y = a.y + iy * s.cell.y - y0;
        out.atoms.push_back(b);
      }
  }
  return out;
}

/// Slice thicknesses of a specimen lz thick (as build_potential slices it).
std::vector<double> slice_thickness_of(double lz, double dz) {
  const std::vector<double> b = slice_boundaries(lz, dz);
  std::vector<double> t(b.size() - 1);
  for (std::size_t k = 0; k + 1 < b.size(); ++k) t[k] = b[k + 1] - b[k];
  return t;
}

double wrap(double v, double period) { return v - std::floor(v / period) * period; }

/// Window points along one axis for a tile of side T and radius R at sampling d, capped at
/// the full grid's n (then the axis is the whole periodic cell).
std::size_t window_points(double tile, double radius, double d, std::size_t n) {
  const auto need = std::size_t(std::ceil((tile + 2 * radius) / d)) + 1;
  if (need >= n) return n;
  const std::size_t w = fft_friendly_size(need);
  return w >= n ? n : w;
}

double fft_cost(std::size_t nx, std::size_t ny) {
  const double n = double(nx) * double(ny);
  return n * std::log2(std::max(2.0, n));
}

std::size_t padded_points(std::size_t w, double d, std::size_t n) {
  if (w >= n) return n;
  const std::size_t p = fft_friendly_size(w + 2 * std::size_t(std::ceil(kWindowPotentialPad_A / d)));
  return p >= n ? n : p;
}

/// Sub-pixels per window pixel and axis for the detectors' area weights (odd: each pixel
/// gets the s × s sub-pixels centred on it).
constexpr std::size_t kDetectorSubpixels = 5;

/// Detectors compiled for the window's grid with area weights: every pixel is split into
/// s × s sub-pixels, classified at their own k by compile() on the s× finer reciprocal grid,
/// and each sub-pixel inside a detector adds its pixel once (so record with 1/(N·s²)). The
/// window's reciprocal pixel is 1/window: plain pixel counting would put a 10 mrad BF disc
/// of 1.6 mrad pixels 2.7 % off in area; with 5 × 5 sub-pixels the edge error is second
/// order in the intensity's variation across a pixel. Band and COM angles are the window's.
detail::Compiled compile_area_weighted(const std::vector<Detector>& dets, const Grid& wg, double lambda) {
  const std::size_t s = kDetectorSubpixels;
  const Grid fg(wg.lx * double(s), wg.ly * double(s), wg.nx * s, wg.ny * s);
  const detail::Compiled fine = detail::compile(dets, fg, lambda);
  detail::Compiled out = detail::compile(dets, wg, lambda);
  std::vector<long> compact(wg.size(), -1);
  for (std::size_t q = 0; q < out.band.size(); ++q) compact[out.band[q]] = long(q);
  auto nearest = [&](std::size_t i_f, std::size_t nf, std::size_t n) {
    const long m = i_f < (nf + 1) / 2 ? long(i_f) : long(i_f) - long(nf);  // fine frequency index
    const long mc = long(std::floor(double(m) / double(s) + 0.5));
    return std::size_t((mc % long(n) + long(n)) % long(n));
  };
  std::vector<long> f2c(fine.band.size());
  for (std::size_t q = 0; q < fine.band.size(); ++q) {
    const std::size_t jf = fine.band[q] / fg.nx, i_f = fine.band[q] % fg.nx;
    f2c[q] = compact[nearest(jf, fg.ny, wg.ny) * wg.nx + nearest(i_f, fg.nx, wg.nx)];
  }
  if (fine.binned.size() != out.binned.size()) throw std::logic_error("windowed multislice: detector compilation differs");
  for (std::size_t d = 0; d < out.binned.size(); ++d) {
    auto& b = out.binned[d];
    const auto& f = fine.binned[d];
    if (f.bins != b.bins || f.offset != b.offset) throw std::logic_error("windowed multislice: detector bins differ");
    b.q.clear();
    b.bin.clear();
    for (std::size_t k = 0; k < f.q.size(); ++k)
      if (f2c[f.q[k]] >= 0) {
        b.q.push_back(std::uint32_t(f2c[f.q[k]]));
        b.bin.push_back(f.bin[k]);
      }
  }
  return out;
}

}  // namespace

std::vector<std::vector<std::size_t>> window_tiles(const Grid& g, const std::vector<Point2>& pos, double tile) {
  const auto ntx = std::size_t(std::ceil(g.lx / tile)), nty = std::size_t(std::ceil(g.ly / tile));
  std::map<std::size_t, std::size_t> index;  // tile key → slot
  std::vector<std::vector<std::size_t>> tiles;
  for (std::size_t p = 0; p < pos.size(); ++p) {
    const auto ix = std::min(ntx - 1, std::size_t(wrap(pos[p].x, g.lx) / tile));
    const auto iy = std::min(nty - 1, std::size_t(wrap(pos[p].y, g.ly) / tile));
    const auto [it, fresh] = index.emplace(iy * ntx + ix, tiles.size());
    if (fresh) tiles.emplace_back();
    tiles[it->second].push_back(p);
  }
  return tiles;
}

double probe_spread_radius_A(const ProbeOptics& o, double t) {
  if (!(o.semiangle_mrad > 0)) throw std::invalid_argument("windowed multislice: the probe's semi-angle must be > 0 mrad");
  if (!(t >= 0)) throw std::invalid_argument("windowed multislice: thickness must be ≥ 0 Å");
  const double lambda = wavelength_A(o.energy_eV), amax = o.semiangle_mrad * 1e-3;
  const FocalQuadrature fq = focal_spread_quadrature(o.focal_spread_A, o.focal_spread_points);
  // Ray displacement at depth z of the ray at (α, φ): λ/2π·∇χ + z·α (radial), with ∇χ from
  // central differences; 64 × 72 samples of the aperture resolve every aberration up to 5th
  // order (χ is a polynomial of degree ≤ 6 in α and ≤ 6 in φ's harmonics).
  const int na = 64, nphi = 72;
  const double h = 1e-7;
  double r = 0;
  for (double df : fq.defocus_A) {
    Aberrations ab = o.aberrations;
    ab.C[0] -= df;  // defocus = −C10
    for (int ia = 1; ia <= na; ++ia) {
      const double a = amax * double(ia) / na;
      for (int ip = 0; ip < nphi; ++ip) {
        const double phi = 2 * kPi * ip / nphi;
        const double da = (ab.chi(a + h, phi, lambda) - ab.chi(a - h, phi, lambda)) / (2 * h);
        const double dp = (ab.chi(a, phi + h, lambda) - ab.chi(a, phi - h, lambda)) / (2 * h);
        const double radial = lambda / (2 * kPi) * da, tangential = lambda / (2 * kPi) * dp / a;
        for (double z : {0.0, t}) r = std::max(r, std::hypot(radial + z * a, tangential));
      }
    }
  }
  return r;
}

WindowPlan plan_window(const Grid& g, const ProbeOptics& o, double t, const std::vector<Point2>& pos, const StemSettings& st) {
  if (pos.empty()) throw std::invalid_argument("windowed multislice: no positions");
  const double lambda = wavelength_A(o.energy_eV);
  const double margin = st.window.margin_A >= 0
                            ? st.window.margin_A
                            : kDefaultWindowMargin_A + kDefaultWindowMarginLambdas * lambda / (o.semiangle_mrad * 1e-3);
  if (!std::isfinite(margin)) throw std::invalid_argument("windowed multislice: window margin must be finite");
  if (st.window.tile_A < 0 || !std::isfinite(st.window.tile_A))
    throw std::invalid_argument("windowed multislice: window tile_A must be ≥ 0 Å (0 = automatic)");
  WindowPlan w;
  w.margin_A = margin;
  w.radius_A = probe_spread_radius_A(o, t) + margin;
  const double d = std::max(g.dx(), g.dy());
  std::vector<double> candidates;
  if (st.window.tile_A > 0)
    candidates = {st.window.tile_A};
  else
    candidates = {0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24};
  // Cost model, per configuration and slice, in units of n·log2(n) FFT work: each position
  // costs 2 FFTs of the window per focal node; each tile builds a potential (per element a
  // real FFT of the padded region on a 2× finer grid ≈ 4 window FFTs) and a transmission
  // function (2 FFTs). Exact constants do not matter: it only picks T among candidates.
  const FocalQuadrature fq = focal_spread_quadrature(o.focal_spread_A, o.focal_spread_points);
  const double elements = 4;  // a typical oxide; the choice is insensitive to this
  double best = 1e300;
  for (double T : candidates) {
    if (T < d) T = d;
    const std::size_t wx = window_points(T, w.radius_A, g.dx(), g.nx), wy = window_points(T, w.radius_A, g.dy(), g.ny);
    const std::size_t ntiles = window_tiles(g, pos, T).size();
    const double per_pos = 2.0 * double(fq.defocus_A.size()) * fft_cost(wx, wy);
    const double per_tile = elements * 4.0 * fft_cost(padded_points(wx, g.dx(), g.nx), padded_points(wy, g.dy(), g.ny)) +
                            2.0 * fft_cost(wx, wy);
    const double cost = double(pos.size()) * per_pos + double(ntiles) * per_tile;
    if (cost < best * (1 - 1e-9)) {
      best = cost;
      w.tile_A = T;
      w.nx = wx, w.ny = wy, w.tiles = ntiles;
    }
  }
  w.lx_A = double(w.nx) * g.dx();
  w.ly_A = double(w.ny) * g.dy();
  w.full = w.nx == g.nx && w.ny == g.ny;
  return w;
}

namespace {

/// Refuses, before any work, detectors and grids the windowed engine cannot serve.
void check_windowed_inputs(const Structure& s, const Grid& g, const std::vector<Detector>& dets) {
  for (const Detector& d : dets)
    if (std::holds_alternative<PixelatedDetector>(d))
      throw std::invalid_argument("windowed multislice: pixelated detector '" + detector_name(d) +
                                  "' is not supported (4D-STEM needs multislice or PRISM)");
  if (std::fabs(s.cell.x - g.lx) > 1e-6 * s.cell.x || std::fabs(s.cell.y - g.ly) > 1e-6 * s.cell.y)
    throw std::invalid_argument("windowed multislice: the grid's extent differs from the cell's");
}

/// Copies the plan's window geometry into a result.
void fill_plan(StemResult& r, const WindowPlan& plan) {
  r.window_nx = plan.nx, r.window_ny = plan.ny;
  r.window_x_A = plan.lx_A, r.window_y_A = plan.ly_A;
  r.window_radius_A = plan.radius_A, r.window_tile_A = plan.tile_A;
}

/// Detectors split by how they are recorded (docs/physics.md "Windowed multislice"):
///  - dark field (every angle ≥ kDarkFieldInner·α): on the window's own periodic grid, with
///    area-weighted pixels. High-angle electrons leave the probe's cone (100 mrad over 20 nm
///    is 20 Å) and wrap around the periodic window keeping their k: their intensity is kept.
///  - bright field and everything reaching into the disc (BF, ABF, radial, COM): the wave
///    is tapered to 0 over the window's outer kWindowTaper_A, zero-padded onto the cell's
///    grid (at most 4× the window per axis) and recorded there with the cell's pixels, as
///    multislice does. The probe's Airy tails (aperture-edge angles) that wrapped around the
///    window would otherwise interfere with the probe (+1.7 % BF on Si [110] recorded
///    periodically; +0.3 % this way).
struct DetectorGroups {
  std::vector<Detector> dark, bright;
};

DetectorGroups split_dark_field(const std::vector<Detector>& dets, double alpha_mrad) {
  DetectorGroups out;
  for (const Detector& d : dets) {
    bool dark = false;
    if (const auto* a = std::get_if<AnnularDetector>(&d)) dark = a->inner_mrad >= kDarkFieldInner * alpha_mrad;
    if (const auto* sg = std::get_if<SegmentedDetector>(&d))
      dark = !sg->ring_edges_mrad.empty() && sg->ring_edges_mrad.front() >= kDarkFieldInner * alpha_mrad;
    (dark ? out.dark : out.bright).push_back(d);
  }
  return out;
}

/// Raised-cosine weights falling to 0 over the outer kWindowTaper_A of a window of n pixels
/// of size d; all ones when the window is the whole cell along this axis (periodic, exact).
std::vector<float> edge_taper(std::size_t n, std::size_t nfull, double d) {
  std::vector<float> w(n, 1.0f);
  if (n == nfull) return w;
  for (std::size_t i = 0; i < n; ++i) {
    const double e = std::min(double(i) + 0.5, double(n - i) - 0.5) * d;
    if (e < kWindowTaper_A) w[i] = float(0.5 * (1 - std::cos(kPi * e / kWindowTaper_A)));
  }
  return w;
}

/// Thermal configurations of the whole specimen (so every window agrees on each atom).
std::vector<Structure> thermal_configurations(const Structure& s, const StemSettings& st) {
  const bool thermal = std::any_of(s.atoms.begin(), s.atoms.end(), [](const Atom& a) { return a.rms > 0; });
  const std::size_t nconf = thermal ? std::max<std::size_t>(1, st.phonon_configurations) : 1;
  std::vector<Structure> configs;
  for (std::size_t c = 0; c < nconf; ++c) configs.push_back(thermal ? displace_atoms(s, st.seed, c) : s);
  return configs;
}

/// One Fresnel propagator per run of equal slice thicknesses; prop_of[k] names slice k's.
std::vector<ComplexBuffer> slice_propagators(const Grid& wg, double lambda, const std::vector<double>& dz,
                                             std::vector<std::size_t>& prop_of) {
  std::vector<ComplexBuffer> props;
  prop_of.assign(dz.size(), 0);
  for (std::size_t k = 0; k < dz.size(); ++k) {
    if (k == 0 || dz[k] != dz[k - 1]) props.push_back(fresnel_propagator(wg, lambda, dz[k], 1.0f / float(wg.size())));
    prop_of[k] = props.size() - 1;
  }
  return props;
}

/// What every position of every tile shares: grids, transforms, probes, propagators, the
/// recording depths and weights.
struct WindowedKernel {
  const Grid& wg;
  const Grid& dg;
  const WindowPlan& plan;
  const Fft2& fft;
  const Fft2* dfft;  // the detector grid's transform; only with bright-field detectors
  const std::vector<float>& taper_x;
  const std::vector<float>& taper_y;
  const std::vector<std::vector<std::size_t>>& record_at;  // slice → depth indices recorded after it
  const std::vector<ComplexBuffer>& probes;                // per focal node
  const std::vector<double>& focal_weight;
  const std::vector<ComplexBuffer>& props;
  const std::vector<std::size_t>& prop_of;
  double wconf;
  float scale_df, scale_bf;
  SliceObserver* observer;
};

/// A recorder's scratch: the wave, the detector grid's buffer and, when dark field is the
/// primary group, the bright-field group's own recorder.
struct Work {
  ComplexBuffer psi, det;
  std::optional<detail::Recorder> bf;
};

/// The window of one tile: its origin on the cell's grid (pixels) and the transmission
/// functions of every thermal configuration cut from a padded region centred on it.
struct TileWindow {
  long ox = 0, oy = 0;
  std::vector<Transmission> trans;
};

TileWindow tile_window(const std::vector<std::size_t>& tile, const std::vector<Point2>& pos, const Grid& g,
                       const WindowPlan& plan, const Grid& pg, const Grid& wg, const std::vector<Structure>& configs,
                       std::size_t ns, const StemSettings& st, double energy_eV, const Fft2& fft) {
  const std::size_t px = pg.nx, py = pg.ny;
  TileWindow out;
  // The window: centred on the tile's positions' bounding box, on the full grid's pixels.
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (std::size_t p : tile) {
    const double x = wrap(pos[p].x, g.lx), y = wrap(pos[p].y, g.ly);
    x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  const long ox = plan.nx == g.nx ? 0 : std::lround(((x0 + x1) / 2 - plan.lx_A / 2) / g.dx());
  const long oy = plan.ny == g.ny ? 0 : std::lround(((y0 + y1) / 2 - plan.ly_A / 2) / g.dy());
  out.ox = ox, out.oy = oy;
  // The padded region the potential is built on, centred on the window.
  const long pox = ox - long(px - plan.nx) / 2, poy = oy - long(py - plan.ny) / 2;
  for (const Structure& c : configs) {
    const Structure region = extract_region(c, double(pox) * g.dx(), double(poy) * g.dy(), pg.lx, pg.ly);
    const Potential full = build_potential(region, pg, st.potential);
    if (full.num_slices() != ns) throw std::logic_error("windowed multislice: slicing differs between windows");
    Potential win;
    win.grid = wg;
    win.slice_thickness_A = full.slice_thickness_A;
    win.slices.assign(full.num_slices(), std::vector<float>(wg.size()));
    for (std::size_t k = 0; k < full.num_slices(); ++k)
      for (std::size_t j = 0; j < plan.ny; ++j) {
        const auto rj = std::size_t(((oy + long(j) - poy) % long(py) + long(py)) % long(py));
        for (std::size_t i = 0; i < plan.nx; ++i) {
          const auto ri = std::size_t(((ox + long(i) - pox) % long(px) + long(px)) % long(px));
          win.slices[k][j * plan.nx + i] = full.slices[k][rj * px + ri];
        }
      }
    out.trans.push_back(transmission_functions(win, energy_eV, fft));
  }
  return out;
}

/// One position through every configuration and focal node of its tile's window: records
/// dark field into rdf on the window's grid and bright field into rbf on the detector grid
/// (either may be null), and hands each slice's wave to the observer.
void propagate_position(const WindowedKernel& k, const std::vector<Transmission>& trans, const Point2& local,
                        std::size_t global_index, detail::Recorder* rdf, detail::Recorder* rbf, Work& w) {
  const Grid& wg = k.wg;
  const std::size_t ns = k.record_at.size(), dnx = k.dg.nx;
  cfloat* psi = w.psi.data();
  for (std::size_t c = 0; c < trans.size(); ++c)
    for (std::size_t f = 0; f < k.probes.size(); ++f) {
      const Transmission& t = trans[c];
      const double weight = k.wconf * k.focal_weight[f];
      shift_fourier(wg, local, k.probes[f].data(), psi);
      k.fft.backward(psi);
      for (std::size_t s = 0; s < ns; ++s) {
        if (k.observer) k.observer->observe(global_index, c, s, weight, psi);
        detail::cmul_inplace(psi, t.slices[s].data(), wg.size());
        if (rbf && !k.record_at[s].empty()) {
          // ψ·t tapered in the window, zero elsewhere on the detector grid; |FFT|²
          // does not depend on where the window sits, so it goes at the origin.
          std::fill(w.det.data(), w.det.data() + k.dg.size(), cfloat(0.0f, 0.0f));
          for (std::size_t j = 0; j < k.plan.ny; ++j)
            for (std::size_t i = 0; i < k.plan.nx; ++i)
              w.det[j * dnx + i] = psi[j * k.plan.nx + i] * (k.taper_y[j] * k.taper_x[i]);
          k.dfft->forward(w.det.data());
          rbf->record(w.det.data(), k.scale_bf, weight, k.record_at[s], false);
        }
        if (!rdf && s + 1 == ns && !k.observer) break;
        k.fft.forward(psi);
        if (rdf && !k.record_at[s].empty()) rdf->record(psi, k.scale_df, weight, k.record_at[s], false);
        // The observer also reads the exit wave (slice_observer.hpp), as in scan_multislice.
        if (s + 1 < ns || k.observer) {
          detail::cmul_inplace(psi, k.props[k.prop_of[s]].data(), wg.size());
          k.fft.backward(psi);
        }
      }
      if (k.observer) k.observer->observe(global_index, c, ns, weight, psi);
    }
}

/// Copies a tile's signals (both recorder groups) into the whole scan's, at the tile's
/// positions' indices; slot maps (detector, depth) to the scan's signal.
void merge_tile(StemResult& res, const std::map<std::pair<std::string, std::size_t>, std::size_t>& slot,
                const std::vector<std::size_t>& tile, const StemResult& tr, const StemResult& tr_bf) {
  for (const StemResult* part : {&tr, &tr_bf})
    for (const DetectorSignal& sig : part->signals) {
      auto& out = res.signals[slot.at({sig.name, sig.depth_index})].values;
      const std::size_t b = sig.bins;
      for (std::size_t q = 0; q < tile.size(); ++q)
        std::copy_n(sig.values.begin() + long(q * b), b, out.begin() + long(tile[q] * b));
    }
}

}  // namespace

StemResult simulate_windowed(const Structure& s, const Grid& g, const ProbeOptics& o, const std::vector<Point2>& pos,
                             const std::vector<Detector>& dets, const StemSettings& st, SliceObserver* observer) {
  check_windowed_inputs(s, g, dets);
  const WindowPlan plan = plan_window(g, o, s.cell.z, pos, st);
  if (plan.full) {  // the window would be the whole cell: plain multislice, exactly
    const Fft2 fft(g, st.planning, st.fftw_wisdom_file);
    StemResult r = scan_multislice(frozen_phonon_transmissions(s, g, o.energy_eV, st, fft), o, pos, dets, st, fft, nullptr, observer);
    r.warnings.insert(r.warnings.end(), fft.warnings().begin(), fft.warnings().end());
    fill_plan(r, plan);
    return r;
  }

  const Grid wg(plan.lx_A, plan.ly_A, plan.nx, plan.ny);
  const std::size_t px = padded_points(plan.nx, g.dx(), g.nx), py = padded_points(plan.ny, g.dy(), g.ny);
  const Grid pg(double(px) * g.dx(), double(py) * g.dy(), px, py);
  const Fft2 fft(wg, st.planning, st.fftw_wisdom_file);
  const double lambda = wavelength_A(o.energy_eV);
  detail::check_detector_names(dets);
  const DetectorGroups groups = split_dark_field(dets, o.semiangle_mrad);
  const std::vector<Detector>& df_dets = groups.dark;
  const std::vector<Detector>& bf_dets = groups.bright;
  const bool has_df = !df_dets.empty(), has_bf = !bf_dets.empty();
  const std::size_t dnx = std::min(g.nx, fft_friendly_size(4 * plan.nx)), dny = std::min(g.ny, fft_friendly_size(4 * plan.ny));
  const Grid dg(double(dnx) * g.dx(), double(dny) * g.dy(), dnx, dny);
  std::unique_ptr<Fft2> dfft;
  if (has_bf) dfft = std::make_unique<Fft2>(dg, st.planning, st.fftw_wisdom_file);
  const detail::Compiled comp_df = has_df ? compile_area_weighted(df_dets, wg, lambda) : detail::Compiled{};
  const detail::Compiled comp_bf = has_bf ? detail::compile(bf_dets, dg, lambda) : detail::Compiled{};
  // The primary group goes through drive_positions' recorder, the other through a second one.
  const detail::Compiled& comp = has_df ? comp_df : comp_bf;
  const std::vector<Detector>& prim_dets = has_df ? df_dets : bf_dets;
  const detail::Compiled layout = detail::compile(dets, wg, lambda);
  const std::vector<float> taper_x = edge_taper(plan.nx, g.nx, g.dx()), taper_y = edge_taper(plan.ny, g.ny, g.dy());
  const std::vector<Structure> configs = thermal_configurations(s, st);

  // Slicing, recording depths, probes and propagators on the window's grid, as scan_multislice.
  const std::vector<double> dz = slice_thickness_of(s.cell.z, st.potential.slice_thickness_A);
  const std::size_t ns = dz.size();
  StemResult res;
  res.warnings = check_detectors(dets, g, lambda);
  res.fft_plan = dfft ? fft.plan_id() + "+" + dfft->plan_id() : fft.plan_id();
  const std::vector<std::size_t> depth_slice = detail::depth_slices(dz, st.depths_A, res.depths_A);
  std::vector<std::vector<std::size_t>> record_at(ns);
  for (std::size_t d = 0; d < depth_slice.size(); ++d) record_at[depth_slice[d]].push_back(d);
  const std::size_t ndepth = depth_slice.size();
  detail::init_signals(res, layout, dets, ndepth, pos.size());
  std::map<std::pair<std::string, std::size_t>, std::size_t> slot;  // (detector, depth) → signal
  for (std::size_t k = 0; k < res.signals.size(); ++k) slot[{res.signals[k].name, res.signals[k].depth_index}] = k;
  const FocalQuadrature fq = focal_spread_quadrature(o.focal_spread_A, o.focal_spread_points);
  std::vector<ComplexBuffer> probes;
  for (double df : fq.defocus_A) probes.push_back(probe_fourier(wg, o, df));
  std::vector<std::size_t> prop_of;
  const std::vector<ComplexBuffer> props = slice_propagators(wg, lambda, dz, prop_of);
  if (observer) {
    observer->begin(g, dz, configs.size(), pos.size());
    observer->set_window(0, 0, g.nx, g.ny);  // refuses here, before any tile's work, an observer that cannot read windows
  }
  const WindowedKernel kernel{wg,
                              dg,
                              plan,
                              fft,
                              dfft.get(),
                              taper_x,
                              taper_y,
                              record_at,
                              probes,
                              fq.weight,
                              props,
                              prop_of,
                              1.0 / double(configs.size()),
                              1.0f / (float(wg.size()) * float(kDetectorSubpixels * kDetectorSubpixels)),
                              1.0f / float(dg.size()),
                              observer};

  const auto tiles = window_tiles(g, pos, plan.tile_A);
  std::size_t done = 0;
  for (const auto& tile : tiles) {
    const TileWindow win = tile_window(tile, pos, g, plan, pg, wg, configs, ns, st, o.energy_eV, fft);
    const long ox = win.ox, oy = win.oy;
    // The window's pixel (0, 0) on the cell's grid, for the observer.
    if (observer)
      observer->set_window(plan.nx == g.nx ? 0 : std::size_t(((ox % long(g.nx)) + long(g.nx)) % long(g.nx)),
                           plan.ny == g.ny ? 0 : std::size_t(((oy % long(g.ny)) + long(g.ny)) % long(g.ny)), plan.nx, plan.ny);
    std::vector<Point2> local(tile.size());
    for (std::size_t k = 0; k < tile.size(); ++k)
      local[k] = {wrap(pos[tile[k]].x, g.lx) - double(ox) * g.dx(), wrap(pos[tile[k]].y, g.ly) - double(oy) * g.dy()};

    StemSettings ts = st;
    ts.progress = nullptr;
    if (st.progress) ts.progress = [&](std::size_t k, std::size_t) { st.progress(done + k, pos.size()); };
    StemResult tr, tr_bf;
    detail::init_signals(tr, comp, prim_dets, ndepth, tile.size());
    if (has_df && has_bf) detail::init_signals(tr_bf, comp_bf, bf_dets, ndepth, tile.size());
    detail::drive_positions<Work>(
        tile.size(), comp, prim_dets, ndepth, ts, nullptr, tr,
        [&] {
          Work w{ComplexBuffer(wg.size()), has_bf ? ComplexBuffer(dg.size()) : ComplexBuffer(), std::nullopt};
          if (has_df && has_bf) w.bf.emplace(comp_bf, ndepth);
          return w;
        },
        [&](std::size_t pi, detail::Recorder& rec, Work& w) {
          detail::Recorder* rdf = has_df ? &rec : nullptr;
          detail::Recorder* rbf = has_bf ? (has_df ? &*w.bf : &rec) : nullptr;
          if (rbf && rbf != &rec) rbf->clear();
          propagate_position(kernel, win.trans, local[pi], tile[pi], rdf, rbf, w);
          if (rbf && rbf != &rec) rbf->store(pi, tr_bf);
        });
    merge_tile(res, slot, tile, tr, tr_bf);
    done += tile.size();
  }
  res.warnings.insert(res.warnings.end(), fft.warnings().begin(), fft.warnings().end());
  if (dfft) res.warnings.insert(res.warnings.end(), dfft->warnings().begin(), dfft->warnings().end());
  fill_plan(res, plan);
  return res;
}

}  // namespace stemtwin
