// Partitioned PRISM (after Brown et al., Phys. Rev. Research 2 (2020) 023088; prism.hpp):
// the scan over a window of bilinear beamlets. The S-matrix and plain PRISM: prism.cpp.
#include "prism_partitioned.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

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

namespace {

/// A parent beam's beamlet envelopes b_m (partitioned PRISM, prism.hpp).
struct Beamlet {
  std::size_t beam;
  std::vector<std::vector<cfloat>> env;  // [depth × focal nodes + node][by × bx]
};

/// Beamlet envelopes b_m on the window (nwx × nwy stored pixels) plus one pixel each side
/// (for the bilinear shift), centred at ρ = 0 (window pixel nwx/2 + 1), per recording depth
/// and focal node; beams with no aperture in their tent are skipped.
std::vector<Beamlet> beamlet_envelopes(const SMatrix& S0, const ProbeOptics& optics, const FocalQuadrature& fq,
                                       const Fft2& cell_fft, std::size_t nwx, std::size_t nwy) {
  const Grid& gs = S0.stored;
  const Grid& gf = S0.grid;
  const double lambda = wavelength_A(optics.energy_eV);
  const double dkx = double(S0.fx) / gf.lx, dky = double(S0.fy) / gf.ly;
  const std::size_t bx = nwx + 2, by = nwy + 2, nb = S0.beams.size();
  std::vector<Beamlet> beamlets;
  std::vector<ComplexBuffer> probes;
  for (double df : fq.defocus_A) probes.push_back(probe_fourier(gf, optics, df));
  const long tx = long(S0.fx), ty = long(S0.fy);
  ComplexBuffer buf(gs.size());
  for (std::size_t m = 0; m < nb; ++m) {
    Beamlet bl{m, {}};
    bool any = false;
    const double km2 = std::pow(double(S0.beams[m][0]) * dkx, 2) + std::pow(double(S0.beams[m][1]) * dky, 2);
    for (std::size_t d = 0; d < S0.waves.size(); ++d)
    for (const ComplexBuffer& P : probes) {
      std::fill(buf.data(), buf.data() + gs.size(), cfloat(0, 0));
      const double z = S0.propagated_A[d];
      bool nonzero = false;
      for (long qy = -ty + 1; qy < ty; ++qy)
        for (long qx = -tx + 1; qx < tx; ++qx) {
          const long kx = long(S0.beams[m][0]) * tx + qx, ky = long(S0.beams[m][1]) * ty + qy;
          if (std::labs(kx) > long(gf.nx - 1) / 2 || std::labs(ky) > long(gf.ny - 1) / 2) continue;
          const cfloat v = P[wrap_index(ky, gf.ny) * gf.nx + wrap_index(kx, gf.nx)];
          if (v == cfloat(0, 0)) continue;
          const double w = (1.0 - double(std::labs(qx)) / double(tx)) * (1.0 - double(std::labs(qy)) / double(ty));
          const double k2 = std::pow(double(kx) / gf.lx, 2) + std::pow(double(ky) / gf.ly, 2);
          const double ph = -kPi * lambda * z * (k2 - km2);
          // Stored at q (the envelope); the carrier e^{2πik_m·r} is the parent wave's own.
          buf[wrap_index(qy, gs.ny) * gs.nx + wrap_index(qx, gs.nx)] =
              v * cfloat(float(w * std::cos(ph)), float(w * std::sin(ph)));
          nonzero = true;
        }
      any = any || nonzero;
      cell_fft.backward(buf.data());
      std::vector<cfloat> env(bx * by);
      for (std::size_t j = 0; j < by; ++j)
        for (std::size_t i = 0; i < bx; ++i)
          env[j * bx + i] = buf[wrap_index(long(j) - long(nwy / 2) - 1, gs.ny) * gs.nx + wrap_index(long(i) - long(nwx / 2) - 1, gs.nx)];
      bl.env.push_back(std::move(env));
    }
    if (any) beamlets.push_back(std::move(bl));
  }
  return beamlets;
}

}  // namespace

/// Partitioned PRISM (prism.hpp): per position Σ_m e^{−2πik_m·r₀} S_m(r) b_m(r − r₀) over a
/// window of nwx × nwy stored pixels centred on the probe's pixel.
StemResult scan_partitioned(const std::vector<SMatrix>& configs, const ProbeOptics& optics,
                            const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                            const StemSettings& st, PatternSink* sink, double window_A) {
  const SMatrix& S0 = configs.front();
  const Grid& gs = S0.stored;
  const Grid& gf = S0.grid;
  // Window side: FFT-friendly and even, the whole cell when the window would reach it.
  auto side = [](double w, double d, std::size_t n) {
    std::size_t m = fft_friendly_size(std::max<std::size_t>(2, std::size_t(std::ceil(w / d))));
    if (m % 2) m = fft_friendly_size(m + 1);
    return m >= n ? n : m;
  };
  const std::size_t nwx = side(window_A, gs.dx(), gs.nx), nwy = side(window_A, gs.dy(), gs.ny), nw = nwx * nwy;
  const Grid window(double(nwx) * gs.dx(), double(nwy) * gs.dy(), nwx, nwy);
  // The same window at the simulation grid's sampling, for the detectors' band.
  const Grid window_full(window.lx, window.ly, std::size_t(std::lround(double(nwx) * double(gf.nx) / double(gs.nx))),
                         std::size_t(std::lround(double(nwy) * double(gf.ny) / double(gs.ny))));
  prism_detail::ScanSetup setup = prism_detail::scan_setup(S0, optics, detectors, window, window_full, positions.size());
  StemResult& res = setup.res;
  detail::Compiled& comp = setup.comp;
  if (!(window == window_full)) {
    // Re-index the band into the stored window; a band-edge pixel the coarser window
    // cannot hold (at most a ring one pixel wide) is dropped and said so.
    std::size_t dropped = 0;
    std::vector<std::uint32_t> keep_band;
    std::vector<std::uint32_t> new_index(comp.band.size(), UINT32_MAX);
    for (std::size_t q = 0; q < comp.band.size(); ++q) {
      const std::size_t i = comp.band[q] % window_full.nx, j = comp.band[q] / window_full.nx;
      const long si = signed_index(i, window_full.nx), sj = signed_index(j, window_full.ny);
      if (std::labs(si) > long(nwx - 1) / 2 || std::labs(sj) > long(nwy - 1) / 2) {
        ++dropped;
        continue;
      }
      new_index[q] = std::uint32_t(wrap_index(sj, nwy) * nwx + wrap_index(si, nwx));
    }
    if (dropped)  // they read a zero slot after the window's spectrum (said, not hidden)
      res.warnings.push_back("partitioned PRISM: " + std::to_string(dropped) +
                             " band-edge pixel(s) outside the stored window's frequencies read as 0");
    for (std::size_t q = 0; q < comp.band.size(); ++q) comp.band[q] = new_index[q] == UINT32_MAX ? std::uint32_t(nw) : new_index[q];
  }
  const float inv_n = float(double(gf.size()) / (double(nw) * double(gs.size())));
  const std::size_t ndepth = setup.ndepth;
  const FocalQuadrature& fq = setup.fq;
  const double dkx = double(S0.fx) / gf.lx, dky = double(S0.fy) / gf.ly;

  // Beamlet envelopes b_m on the window plus one pixel each side (for the bilinear shift),
  // centred at ρ = 0 (window pixel nwx/2 + 1), per focal node; beams with no aperture in
  // their tent are skipped.
  // Beamlet envelopes b_m on the window plus one pixel each side, per depth and focal node.
  const std::size_t bx = nwx + 2;
  const Fft2 cell_fft(gs, st.planning, st.fftw_wisdom_file);
  const std::vector<Beamlet> beamlets = beamlet_envelopes(S0, optics, fq, cell_fft, nwx, nwy);
  const Fft2 fft(window, st.planning, st.fftw_wisdom_file);
  res.fft_plan = cell_fft.plan_id() + "/" + fft.plan_id();
  const double wconf = 1.0 / double(configs.size());

  struct Workspace {
    ComplexBuffer psi;
    std::vector<std::size_t> col, row;
  };
  detail::drive_positions<Workspace>(
      positions.size(), comp, detectors, ndepth, st, sink, res,
      [&] { return Workspace{ComplexBuffer(nw + 1), std::vector<std::size_t>(nwx), std::vector<std::size_t>(nwy)}; },
      [&](std::size_t pi, detail::Recorder& rec, Workspace& ws) {
        const Point2 r0 = positions[pi];
        const long px = std::lround(r0.x / gs.dx()), py = std::lround(r0.y / gs.dy());
        const long cx = px - long(nwx / 2), cy = py - long(nwy / 2);
        for (std::size_t i = 0; i < nwx; ++i) ws.col[i] = wrap_index(cx + long(i), gs.nx);
        for (std::size_t j = 0; j < nwy; ++j) ws.row[j] = wrap_index(cy + long(j), gs.ny);
        // Sub-pixel offset of the probe from its pixel: b_m(ρ − δ) by bilinear interpolation
        // (b_m is band-limited to f/L, far below the pixel's Nyquist).
        const double ux = r0.x / gs.dx() - double(px), uy = r0.y / gs.dy() - double(py);
        const long ox = long(std::floor(-ux)), oy = long(std::floor(-uy));
        const float ax = float(-ux - double(ox)), ay = float(-uy - double(oy));
        const float w00 = (1 - ax) * (1 - ay), w10 = ax * (1 - ay), w01 = (1 - ax) * ay, w11 = ax * ay;
        std::vector<std::size_t> depth_list(1);
        for (std::size_t d = 0; d < ndepth; ++d) {
          depth_list[0] = d;
          for (const SMatrix& S : configs)
            for (std::size_t f = 0; f < fq.defocus_A.size(); ++f) {
              std::fill(ws.psi.data(), ws.psi.data() + nw + 1, cfloat(0, 0));
              for (const Beamlet& bl : beamlets) {
                const std::size_t m = bl.beam;
                const double a = -2 * kPi * (double(S.beams[m][0]) * dkx * r0.x + double(S.beams[m][1]) * dky * r0.y);
                const cfloat c(float(std::cos(a)), float(std::sin(a)));
                // The carrier phase folded into the bilinear weights.
                const cfloat c00 = c * w00, c10 = c * w10, c01 = c * w01, c11 = c * w11;
                const cfloat* sm = S.waves[d][m].data();
                const cfloat* env = bl.env[d * fq.defocus_A.size() + f].data();
                for (std::size_t j = 0; j < nwy; ++j) {
                  const cfloat* srow = sm + ws.row[j] * gs.nx;
                  // Envelope rows j + 1 + oy and the next (window pixel j ↔ envelope row j + 1).
                  const cfloat* e0 = env + std::size_t(long(j) + 1 + oy) * bx + std::size_t(1 + ox);
                  const cfloat* e1 = e0 + bx;
                  cfloat* out = ws.psi.data() + j * nwx;
                  for (std::size_t i = 0; i < nwx; ++i) {
                    const cfloat b = c00 * e0[i] + c10 * e0[i + 1] + c01 * e1[i] + c11 * e1[i + 1];
                    out[i] += srow[ws.col[i]] * b;
                  }
                }
              }
              fft.forward(ws.psi.data());
              ws.psi[nw] = cfloat(0, 0);  // the slot dropped band pixels read
              rec.record(ws.psi.data(), inv_n, wconf * fq.weight[f], depth_list, d + 1 == ndepth);
            }
        }
      });
  return res;
}

}  // namespace stemtwin
