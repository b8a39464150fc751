#include "stemtwin/physics/engine.hpp"

#include <fftw3.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "recorder.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/physics/translational_symmetry.hpp"
#include "stemtwin/physics/windowed.hpp"

namespace stemtwin {

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
                           const StemSettings& st, const Fft2& fft, PatternSink* sink, SliceObserver* observer) {
  if (configs.empty()) throw std::invalid_argument("scan_multislice: no transmission functions");
  const Grid& g = configs.front().grid;
  for (const auto& t : configs)
    if (!(t.grid == g) || t.energy_eV != configs.front().energy_eV || t.num_slices() != configs.front().num_slices())
      throw std::invalid_argument("scan_multislice: configurations differ in grid, energy or slicing");
  if (std::fabs(configs.front().energy_eV - optics.energy_eV) > 1e-6 * optics.energy_eV)
    throw std::invalid_argument("scan_multislice: probe energy differs from the transmission functions' energy");
  detail::check_detector_names(detectors);
  const double lambda = wavelength_A(optics.energy_eV);
  const std::size_t N = g.size(), ns = configs.front().num_slices();
  const std::vector<double>& dz = configs.front().slice_thickness_A;

  StemResult res;
  res.positions_simulated = positions.size();
  res.warnings = check_detectors(detectors, g, lambda);
  res.fft_plan = fft.plan_id();
  const std::vector<std::size_t> depth_slice = detail::depth_slices(dz, st.depths_A, res.depths_A);
  std::vector<std::vector<std::size_t>> record_at(ns);
  for (std::size_t d = 0; d < depth_slice.size(); ++d) record_at[depth_slice[d]].push_back(d);
  const std::size_t pattern_slice = *std::max_element(depth_slice.begin(), depth_slice.end());
  const detail::Compiled comp = detail::compile(detectors, g, lambda);
  detail::init_signals(res, comp, detectors, depth_slice.size(), positions.size());

  // Probes for the focal-spread nodes; propagators with the 1/N of the inverse FFT folded in,
  // one per distinct slice thickness.
  const FocalQuadrature fq = focal_spread_quadrature(optics.focal_spread_A, optics.focal_spread_points);
  std::vector<ComplexBuffer> probes;
  for (double df : fq.defocus_A) probes.push_back(probe_fourier(g, optics, df));
  std::vector<ComplexBuffer> props;
  std::vector<std::size_t> prop_of(ns);
  for (std::size_t s = 0; s < ns; ++s) {
    if (s == 0 || dz[s] != dz[s - 1]) props.push_back(fresnel_propagator(g, lambda, dz[s], 1.0f / float(N)));
    prop_of[s] = props.size() - 1;
  }
  std::vector<detail::BandRows> prop_rows;
  for (const ComplexBuffer& p : props) prop_rows.push_back(detail::band_rows(p.data(), g.nx, g.ny));
  const double wconf = 1.0 / double(configs.size());
  if (observer) observer->begin(g, dz, configs.size(), positions.size());
  const float inv_n = 1.0f / float(N);

  detail::drive_positions<ComplexBuffer>(
      positions.size(), comp, detectors, depth_slice.size(), st, sink, res, [&] { return ComplexBuffer(N); },
      [&](std::size_t pi, detail::Recorder& rec, ComplexBuffer& psi) {
        for (std::size_t c = 0; c < configs.size(); ++c)
          for (std::size_t f = 0; f < probes.size(); ++f) {
            const Transmission& tr = configs[c];
            const double w = wconf * fq.weight[f];
            shift_fourier(g, positions[pi], probes[f].data(), psi.data());
            fft.backward(psi.data());
            for (std::size_t s = 0; s < ns; ++s) {
              if (observer) observer->observe(pi, c, s, w, psi.data());
              detail::cmul_inplace(psi.data(), tr.slices[s].data(), N);
              fft.forward(psi.data());
              // The propagator is a pure phase inside the band: intensities can be read before it.
              // 4D patterns are taken at the deepest recording depth (the exit surface by default).
              if (!record_at[s].empty()) rec.record(psi.data(), inv_n, w, record_at[s], s == pattern_slice);
              // The observer also reads the exit wave (slice_observer.hpp); the detectors
              // above have been read, so the last propagation changes nothing else.
              if (s + 1 < ns || observer) {
                detail::cmul_band_rows(psi.data(), props[prop_of[s]].data(), prop_rows[prop_of[s]]);
                fft.backward(psi.data());
              }
            }
            if (observer) observer->observe(pi, c, ns, w, psi.data());
          }
      });
  return res;
}

StemResult simulate_stem(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                         const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                         const StemSettings& settings, PatternSink* sink, SliceObserver* observer) {
  StemResult r;
  if (settings.method == Method::Auto) {
    r = simulate_auto(structure, grid, optics, positions, detectors, settings, sink, observer);
  } else if (settings.method == Method::Prism) {
    r = simulate_prism(structure, grid, optics, positions, detectors, settings, sink, observer);
  } else if (settings.method == Method::Windowed) {
    if (sink) throw std::invalid_argument("windowed multislice does not stream 4D-STEM patterns; use multislice or PRISM");
    r = simulate_windowed(structure, grid, optics, positions, detectors, settings, observer);
    r.method = "windowed";
  } else {
    const Fft2 fft(grid, settings.planning, settings.fftw_wisdom_file);
    const auto configs = frozen_phonon_transmissions(structure, grid, optics.energy_eV, settings, fft);
    r = scan_multislice_symmetric(structure, configs, optics, positions, detectors, settings, fft, sink, observer);
    r.warnings.insert(r.warnings.end(), fft.warnings().begin(), fft.warnings().end());
  }
  const bool displaced = std::any_of(structure.atoms.begin(), structure.atoms.end(), [](const Atom& a) { return a.rms > 0; });
  if (displaced && settings.phonon_configurations <= 1)
    r.warnings.push_back("1 frozen-phonon configuration of displaced atoms: the result is one random thermal snapshot, "
                         "not the thermal average");
  return r;
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
