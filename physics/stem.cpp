#include "stemtwin/stem.hpp"

#include <fftw3.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <stdexcept>

#include "stemtwin/constants.hpp"

namespace stemtwin {
namespace {

/// Detectors compiled for one grid and wavelength. Intensities are gathered into a compact
/// array of the in-band pixels; binned detectors are (compact index, bin) pairs.
struct Compiled {
  std::vector<std::uint32_t> band;  // grid indices of pixels inside the band limit
  struct Binned {
    std::size_t detector;  // index into the user's list
    std::size_t bins;
    std::size_t offset;  // into the accumulator array
    std::vector<std::uint32_t> q, bin;
  };
  std::vector<Binned> binned;
  struct Com {
    std::size_t detector, offset;  // accumulators: Σ I θx, Σ I θy, Σ I
  };
  std::vector<Com> com;
  std::vector<float> theta_x, theta_y;  // per compact pixel, mrad
  struct Pattern {
    std::size_t detector, ny, nx;
    std::vector<std::uint32_t> grid_index;  // per output pixel × bin² source pixels
    std::size_t per_pixel;
  };
  std::vector<Pattern> patterns;
  std::size_t accumulators = 0;
};

Compiled compile(const std::vector<Detector>& dets, const Grid& g, double lambda) {
  Compiled c;
  const double k2max = g.k_max() * g.k_max();
  std::vector<double> theta, phi;
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const double kx = g.kx(i), ky = g.ky(j);
      if (kx * kx + ky * ky > k2max) continue;
      c.band.push_back(std::uint32_t(j * g.nx + i));
      theta.push_back(lambda * std::sqrt(kx * kx + ky * ky) * 1e3);
      phi.push_back(std::atan2(ky, kx));
      c.theta_x.push_back(float(lambda * kx * 1e3));
      c.theta_y.push_back(float(lambda * ky * 1e3));
    }
  auto in_azimuth = [](double phi_rad, double from_deg, double to_deg) {
    double a = phi_rad * 180.0 / kPi - from_deg;
    double span = to_deg - from_deg;
    a -= 360.0 * std::floor(a / 360.0);
    span -= 360.0 * std::floor(span / 360.0);
    if (span == 0) span = 360.0;
    return a < span;
  };
  for (std::size_t d = 0; d < dets.size(); ++d) {
    const Detector& det = dets[d];
    if (const auto* a = std::get_if<AnnularDetector>(&det)) {
      if (!(a->outer_mrad > a->inner_mrad) || a->inner_mrad < 0)
        throw std::invalid_argument("annular detector '" + a->name + "': need 0 ≤ inner < outer");
      Compiled::Binned b{d, 1, c.accumulators, {}, {}};
      for (std::size_t q = 0; q < theta.size(); ++q)
        if (theta[q] >= a->inner_mrad && theta[q] < a->outer_mrad &&
            (!a->azimuth_deg || in_azimuth(phi[q], a->azimuth_deg->first, a->azimuth_deg->second))) {
          b.q.push_back(std::uint32_t(q));
          b.bin.push_back(0);
        }
      c.accumulators += 1;
      c.binned.push_back(std::move(b));
    } else if (const auto* r = std::get_if<RadialDetector>(&det)) {
      const std::vector<double> edges = radial_bin_edges(*r, g, lambda);
      const std::size_t nb = edges.size() - 1;
      Compiled::Binned b{d, nb, c.accumulators, {}, {}};
      for (std::size_t q = 0; q < theta.size(); ++q) {
        const auto bin = static_cast<std::size_t>(theta[q] / r->step_mrad);
        if (bin < nb) {
          b.q.push_back(std::uint32_t(q));
          b.bin.push_back(std::uint32_t(bin));
        }
      }
      c.accumulators += nb;
      c.binned.push_back(std::move(b));
    } else if (const auto* s = std::get_if<SegmentedDetector>(&det)) {
      const std::size_t nb = detector_bins(det, g, lambda);
      const auto& e = s->ring_edges_mrad;
      for (std::size_t i = 0; i + 1 < e.size(); ++i)
        if (!(e[i + 1] > e[i]) || e[i] < 0)
          throw std::invalid_argument("segmented detector '" + s->name + "': ring edges must increase from ≥ 0");
      Compiled::Binned b{d, nb, c.accumulators, {}, {}};
      for (std::size_t q = 0; q < theta.size(); ++q) {
        const auto it = std::upper_bound(e.begin(), e.end(), theta[q]);
        if (it == e.begin() || it == e.end()) continue;
        const std::size_t ring = std::size_t(it - e.begin()) - 1;
        double a = phi[q] * 180.0 / kPi - s->rotation_deg;
        a -= 360.0 * std::floor(a / 360.0);
        const auto seg = std::min<std::size_t>(static_cast<std::size_t>(a / (360.0 / double(s->segments))), s->segments - 1);
        b.q.push_back(std::uint32_t(q));
        b.bin.push_back(std::uint32_t(ring * s->segments + seg));
      }
      c.accumulators += nb;
      c.binned.push_back(std::move(b));
    } else if (std::holds_alternative<ComDetector>(det)) {
      c.com.push_back({d, c.accumulators});
      c.accumulators += 3;
    } else if (const auto* p = std::get_if<PixelatedDetector>(&det)) {
      const auto [pny, pnx] = pattern_shape(*p, g, lambda);
      const std::size_t my = (pny * p->bin - 1) / 2, mx = (pnx * p->bin - 1) / 2;
      Compiled::Pattern pat{d, pny, pnx, {}, p->bin * p->bin};
      pat.grid_index.resize(pny * pnx * p->bin * p->bin);
      for (std::size_t oy = 0; oy < pny; ++oy)
        for (std::size_t ox = 0; ox < pnx; ++ox)
          for (std::size_t by = 0; by < p->bin; ++by)
            for (std::size_t bx = 0; bx < p->bin; ++bx) {
              const long fy = long(oy * p->bin + by) - long(my), fx = long(ox * p->bin + bx) - long(mx);
              const std::size_t j = std::size_t((fy + long(g.ny)) % long(g.ny)), i = std::size_t((fx + long(g.nx)) % long(g.nx));
              pat.grid_index[((oy * pnx + ox) * p->bin + by) * p->bin + bx] = std::uint32_t(j * g.nx + i);
            }
      c.patterns.push_back(std::move(pat));
    }
  }
  return c;
}

/// Manual complex product: std::complex's operator* goes through a NaN-safe library call.
inline void cmul_inplace(cfloat* __restrict a, const cfloat* __restrict b, std::size_t n) {
  auto* x = reinterpret_cast<float*>(a);
  const auto* y = reinterpret_cast<const float*>(b);
  for (std::size_t i = 0; i < n; ++i) {
    const float xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = y[2 * i + 1];
    x[2 * i] = xr * yr - xi * yi;
    x[2 * i + 1] = xr * yi + xi * yr;
  }
}

}  // namespace

const DetectorSignal& StemResult::signal(const std::string& name, std::size_t depth_index) const {
  if (depth_index == SIZE_MAX) depth_index = depths_A.empty() ? 0 : depths_A.size() - 1;
  for (const auto& s : signals)
    if (s.name == name && s.depth_index == depth_index) return s;
  throw std::out_of_range("no signal for detector '" + name + "' at depth index " + std::to_string(depth_index));
}

Image StemResult::image(const std::string& name, std::size_t nx, std::size_t ny, std::size_t bin, std::size_t depth) const {
  const DetectorSignal& s = signal(name, depth);
  if (nx * ny * s.bins != s.values.size())
    throw std::invalid_argument("image '" + name + "': " + std::to_string(nx) + "×" + std::to_string(ny) +
                                " does not match the number of positions");
  if (bin >= s.bins) throw std::out_of_range("image '" + name + "': bin out of range");
  Image im(nx, ny);
  for (std::size_t p = 0; p < nx * ny; ++p) im.data[p] = s.values[p * s.bins + bin];
  return im;
}

std::vector<Transmission> frozen_phonon_transmissions(const Structure& structure, const Grid& grid, double energy_eV,
                                                      const StemSettings& st, const Fft2& fft) {
  const std::size_t n = std::max<std::size_t>(1, st.phonon_configurations);
  const bool thermal = std::any_of(structure.atoms.begin(), structure.atoms.end(), [](const Atom& a) { return a.rms > 0; });
  std::vector<Transmission> out;
  out.reserve(n);
  for (std::size_t c = 0; c < n; ++c) {
    const Potential pot =
        thermal ? build_potential(displace_atoms(structure, st.seed, c), grid, st.potential) : build_potential(structure, grid, st.potential);
    out.push_back(transmission_functions(pot, energy_eV, fft));
    if (!thermal) break;  // identical configurations: one is enough
  }
  return out;
}

StemResult scan_multislice(const std::vector<Transmission>& configs, const ProbeOptics& optics,
                           const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                           const StemSettings& st, const Fft2& fft, PatternSink* sink) {
  if (configs.empty()) throw std::invalid_argument("scan_multislice: no transmission functions");
  const Grid& g = configs.front().grid;
  for (const auto& t : configs)
    if (!(t.grid == g) || t.energy_eV != configs.front().energy_eV || t.num_slices() != configs.front().num_slices())
      throw std::invalid_argument("scan_multislice: configurations differ in grid, energy or slicing");
  if (std::fabs(configs.front().energy_eV - optics.energy_eV) > 1e-6 * optics.energy_eV)
    throw std::invalid_argument("scan_multislice: probe energy differs from the transmission functions' energy");
  if (!std::any_of(detectors.begin(), detectors.end(), [](const Detector&) { return true; }))
    throw std::invalid_argument("scan_multislice: no detectors");
  for (std::size_t i = 0; i < detectors.size(); ++i)
    for (std::size_t j = i + 1; j < detectors.size(); ++j)
      if (detector_name(detectors[i]) == detector_name(detectors[j]))
        throw std::invalid_argument("two detectors named '" + detector_name(detectors[i]) + "'");
  const double lambda = wavelength_A(optics.energy_eV);
  const std::size_t N = g.size(), ns = configs.front().num_slices(), npos = positions.size();
  const std::vector<double>& dz = configs.front().slice_thickness_A;

  // Recording depths → slice indices.
  StemResult res;
  res.warnings = check_detectors(detectors, g, lambda);
  std::vector<double> bounds(ns + 1, 0.0);
  for (std::size_t s = 0; s < ns; ++s) bounds[s + 1] = bounds[s] + dz[s];
  std::vector<std::size_t> depth_slice;
  if (st.depths_A.empty()) {
    depth_slice.push_back(ns - 1);
    res.depths_A.push_back(bounds[ns]);
  } else {
    for (double d : st.depths_A) {
      if (!(d > 0)) throw std::invalid_argument("recording depth must be > 0 Å");
      std::size_t best = 1;
      for (std::size_t b = 1; b <= ns; ++b)
        if (std::fabs(bounds[b] - d) < std::fabs(bounds[best] - d)) best = b;
      depth_slice.push_back(best - 1);
      res.depths_A.push_back(bounds[best]);
    }
  }
  const std::size_t ndepth = depth_slice.size();
  std::vector<std::vector<std::size_t>> record_at(ns);
  for (std::size_t d = 0; d < ndepth; ++d) record_at[depth_slice[d]].push_back(d);

  const Compiled comp = compile(detectors, g, lambda);
  const std::size_t nacc = comp.accumulators;

  // Probes for the focal-spread nodes and propagators (1/N of the inverse FFT folded in).
  const FocalQuadrature fq = focal_spread_quadrature(optics.focal_spread_A, optics.focal_spread_points);
  std::vector<ComplexBuffer> probes;
  for (double df : fq.defocus_A) probes.push_back(probe_fourier(g, optics, df));
  std::vector<ComplexBuffer> props(ns);
  for (std::size_t s = 0; s < ns; ++s) {
    if (s > 0 && dz[s] == dz[s - 1]) props[s] = props[s - 1];
    else props[s] = fresnel_propagator(g, lambda, dz[s], 1.0f / float(N));
  }
  // Share identical propagators instead of copying them per slice.
  std::vector<const ComplexBuffer*> prop_of(ns);
  for (std::size_t s = 0; s < ns; ++s) prop_of[s] = (s > 0 && dz[s] == dz[s - 1]) ? prop_of[s - 1] : &props[s];

  // Output arrays.
  for (std::size_t d = 0; d < ndepth; ++d)
    for (const auto& b : comp.binned) res.signals.push_back({detector_name(detectors[b.detector]), d, b.bins, std::vector<double>(npos * b.bins)});
  for (std::size_t d = 0; d < ndepth; ++d)
    for (const auto& cm : comp.com) res.signals.push_back({detector_name(detectors[cm.detector]), d, 2, std::vector<double>(npos * 2)});
  auto signal_index = [&](std::size_t kind_index, std::size_t d, bool com) {
    return com ? ndepth * comp.binned.size() + d * comp.com.size() + kind_index : d * comp.binned.size() + kind_index;
  };

  const std::size_t block = std::max<std::size_t>(1, st.pattern_block);
  std::vector<std::vector<float>> pattern_block(comp.patterns.size());
  for (std::size_t p = 0; p < comp.patterns.size(); ++p)
    pattern_block[p].assign(block * comp.patterns[p].ny * comp.patterns[p].nx, 0.0f);
  const double wconf = 1.0 / double(configs.size());
  const float inv_n = 1.0f / float(N);

#pragma omp parallel
  {
    ComplexBuffer psi(N);
    std::vector<float> inten(comp.band.size());
    std::vector<double> acc(ndepth * nacc);
    std::vector<std::vector<double>> pat(comp.patterns.size());
    for (std::size_t p = 0; p < comp.patterns.size(); ++p) pat[p].resize(comp.patterns[p].ny * comp.patterns[p].nx);

    for (std::size_t b0 = 0; b0 < npos; b0 += block) {
      const std::size_t b1 = std::min(npos, b0 + block);
#pragma omp for schedule(dynamic)
      for (long pl = long(b0); pl < long(b1); ++pl) {
        const auto pi = std::size_t(pl);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (auto& v : pat) std::fill(v.begin(), v.end(), 0.0);
        for (const Transmission& tr : configs)
          for (std::size_t f = 0; f < probes.size(); ++f) {
            const double w = wconf * fq.weight[f];
            shift_fourier(g, positions[pi], probes[f].data(), psi.data());
            fft.backward(psi.data());
            for (std::size_t s = 0; s < ns; ++s) {
              cmul_inplace(psi.data(), tr.slices[s].data(), N);
              fft.forward(psi.data());
              if (!record_at[s].empty()) {
                for (std::size_t q = 0; q < comp.band.size(); ++q) inten[q] = std::norm(psi[comp.band[q]]) * inv_n;
                for (std::size_t d : record_at[s]) {
                  double* a = acc.data() + d * nacc;
                  for (const auto& bd : comp.binned) {
                    double* ab = a + bd.offset;
                    for (std::size_t k = 0; k < bd.q.size(); ++k) ab[bd.bin[k]] += w * inten[bd.q[k]];
                  }
                  for (const auto& cm : comp.com) {
                    double sx = 0, sy = 0, si = 0;
                    for (std::size_t q = 0; q < inten.size(); ++q) {
                      sx += double(inten[q]) * comp.theta_x[q];
                      sy += double(inten[q]) * comp.theta_y[q];
                      si += inten[q];
                    }
                    a[cm.offset] += w * sx;
                    a[cm.offset + 1] += w * sy;
                    a[cm.offset + 2] += w * si;
                  }
                }
                if (s == ns - 1)
                  for (std::size_t p = 0; p < comp.patterns.size(); ++p) {
                    const auto& cp = comp.patterns[p];
                    for (std::size_t o = 0; o < pat[p].size(); ++o) {
                      double v = 0;
                      for (std::size_t k = 0; k < cp.per_pixel; ++k) v += std::norm(psi[cp.grid_index[o * cp.per_pixel + k]]);
                      pat[p][o] += w * v * inv_n;
                    }
                  }
              }
              if (s + 1 < ns) {
                cmul_inplace(psi.data(), prop_of[s]->data(), N);
                fft.backward(psi.data());
              }
            }
          }
        for (std::size_t d = 0; d < ndepth; ++d) {
          const double* a = acc.data() + d * nacc;
          for (std::size_t k = 0; k < comp.binned.size(); ++k) {
            const auto& bd = comp.binned[k];
            auto& out = res.signals[signal_index(k, d, false)].values;
            for (std::size_t b = 0; b < bd.bins; ++b) out[pi * bd.bins + b] = a[bd.offset + b];
          }
          for (std::size_t k = 0; k < comp.com.size(); ++k) {
            const auto& cm = comp.com[k];
            auto& out = res.signals[signal_index(k, d, true)].values;
            const double tot = a[cm.offset + 2];
            out[pi * 2] = tot > 0 ? a[cm.offset] / tot : 0.0;
            out[pi * 2 + 1] = tot > 0 ? a[cm.offset + 1] / tot : 0.0;
          }
        }
        for (std::size_t p = 0; p < comp.patterns.size(); ++p) {
          float* dst = pattern_block[p].data() + (pi - b0) * pat[p].size();
          for (std::size_t o = 0; o < pat[p].size(); ++o) dst[o] = float(pat[p][o]);
        }
      }  // implicit barrier
#pragma omp single
      {
        if (sink)
          for (std::size_t p = 0; p < comp.patterns.size(); ++p)
            sink->write(detector_name(detectors[comp.patterns[p].detector]), b0, b1 - b0, comp.patterns[p].ny,
                        comp.patterns[p].nx, pattern_block[p].data());
        if (st.progress) st.progress(b1, npos);
      }
    }
  }
  return res;
}

StemResult simulate_stem(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                         const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                         const StemSettings& settings, PatternSink* sink) {
  const Fft2 fft(grid, settings.planning);
  const auto configs = frozen_phonon_transmissions(structure, grid, optics.energy_eV, settings, fft);
  return scan_multislice(configs, optics, positions, detectors, settings, fft, sink);
}

namespace {
/// Periodic Fourier filtering of a raster image with a kernel given as a function of (kx, ky) in 1/Å.
template <class F>
Image fourier_filter(const Image& im, double step_x, double step_y, F kernel) {
  const Grid g(step_x * double(im.nx), step_y * double(im.ny), std::max<std::size_t>(im.nx, 2), std::max<std::size_t>(im.ny, 2));
  if (im.nx < 2 || im.ny < 2) return im;
  const Fft2 fft(g);
  ComplexBuffer b(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) b[i] = cfloat(float(im.data[i]), 0.0f);
  fft.forward(b.data());
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) b[j * g.nx + i] *= kernel(g.kx(i), g.ky(j)) / float(g.size());
  fft.backward(b.data());
  Image out(im.nx, im.ny);
  for (std::size_t i = 0; i < g.size(); ++i) out.data[i] = b[i].real();
  return out;
}
}  // namespace

Image apply_source_size(const Image& im, double sx, double sy, double sigma) {
  if (!(sigma > 0)) return im;
  return fourier_filter(im, sx, sy, [&](double kx, double ky) {
    return cfloat(float(std::exp(-2.0 * kPi * kPi * sigma * sigma * (kx * kx + ky * ky))), 0.0f);
  });
}

Image integrate_com(const Image& cx, const Image& cy, double sx, double sy) {
  if (cx.nx != cy.nx || cx.ny != cy.ny) throw std::invalid_argument("integrate_com: COM images differ in shape");
  const Grid g(sx * double(cx.nx), sy * double(cx.ny), cx.nx, cx.ny);
  const Fft2 fft(g);
  ComplexBuffer bx(g.size()), by(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    bx[i] = cfloat(float(cx.data[i]), 0.0f);
    by[i] = cfloat(float(cy.data[i]), 0.0f);
  }
  fft.forward(bx.data());
  fft.forward(by.data());
  for (std::size_t j = 0; j < g.ny; ++j)
    for (std::size_t i = 0; i < g.nx; ++i) {
      const double kx = g.kx(i), ky = g.ky(j), k2 = kx * kx + ky * ky;
      const std::size_t q = j * g.nx + i;
      if (k2 == 0) {
        bx[q] = 0;
        continue;
      }
      const std::complex<double> num = kx * std::complex<double>(bx[q]) + ky * std::complex<double>(by[q]);
      const std::complex<double> v = num / (std::complex<double>(0, 2 * kPi) * k2) / double(g.size());
      bx[q] = cfloat(float(v.real()), float(v.imag()));
    }
  fft.backward(bx.data());
  Image out(cx.nx, cx.ny);
  for (std::size_t i = 0; i < g.size(); ++i) out.data[i] = bx[i].real();
  return out;
}

}  // namespace stemtwin
