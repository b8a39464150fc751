#pragma once
// Internal to physics/: detectors compiled for a grid, per-thread accumulation of detector
// signals from reciprocal-space waves, and the parallel driver over probe positions shared
// by the multislice and PRISM engines (so both record exactly the same way).
#include <omp.h>

#include <exception>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <vector>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/core/parallel.hpp"
#include "stemtwin/physics/engine.hpp"

namespace stemtwin::detail {

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

inline Compiled compile(const std::vector<Detector>& dets, const Grid& g, double lambda) {
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

/// a[i] *= b[i] for i < n, as the plain IEEE formula (xr·yr − xi·yi, xr·yi + xi·yr), never
/// fused: std::complex's operator* goes through a NaN-safe library call. Defined in
/// multislice.cpp with an AVX2 clone chosen at run time (3× faster than the SSE2 baseline on
/// 320²); both clones compute every lane with the same separate multiplies and adds, so the
/// bytes do not depend on the CPU's vector width (test Multislice.ComplexProductIsPlainIeee).
void cmul_inplace(cfloat* __restrict a, const cfloat* __restrict b, std::size_t n);

/// Where a Fourier-space factor (a propagator) is non-zero, row by row: in row j the pixels
/// i < lo[j] and i ≥ hi[j] (the band-limit circle in FFT order is two runs per row, at the
/// row's start and end). A row the factor does not fit that way keeps lo = hi = nx (whole row).
struct BandRows {
  std::size_t nx = 0, ny = 0;
  std::vector<std::uint32_t> lo, hi;
};
/// The runs of `factor` (nx × ny, [y][x]); exact: every pixel outside them is exactly 0.
BandRows band_rows(const cfloat* factor, std::size_t nx, std::size_t ny);

/// a *= b inside the runs and a = 0 outside (b is 0 there): the propagator pass, fused with
/// the band limit. Inside the runs every element is cmul_inplace's product (same bits);
/// outside, where cmul_inplace would give ±0, it writes +0 (no FFT sum can tell them apart
/// unless all its terms are zero). Saves the products and the reads of the ~65 % of pixels
/// outside the 2/3-Nyquist circle.
void cmul_band_rows(cfloat* __restrict a, const cfloat* __restrict b, const BandRows& rows);

/// One thread's accumulators for the position it is working on.
class Recorder {
 public:
  Recorder(const Compiled& c, std::size_t ndepth) : c_(c), ndepth_(ndepth), inten_(c.band.size()), acc_(ndepth * c.accumulators) {
    for (const auto& p : c.patterns) pat_.emplace_back(p.ny * p.nx, 0.0);
  }
  void clear() {
    std::fill(acc_.begin(), acc_.end(), 0.0);
    for (auto& v : pat_) std::fill(v.begin(), v.end(), 0.0);
  }
  /// Adds weight × |psi_k|² · scale (a fraction of the incident beam per pixel) to the
  /// detectors recorded at `depths`, and to the 4D patterns when `patterns` is set.
  void record(const cfloat* psi_k, float scale, double weight, const std::vector<std::size_t>& depths, bool patterns) {
    for (std::size_t q = 0; q < c_.band.size(); ++q) inten_[q] = std::norm(psi_k[c_.band[q]]) * scale;
    for (std::size_t d : depths) {
      double* a = acc_.data() + d * c_.accumulators;
      for (const auto& bd : c_.binned) {
        double* ab = a + bd.offset;
        for (std::size_t k = 0; k < bd.q.size(); ++k) ab[bd.bin[k]] += weight * inten_[bd.q[k]];
      }
      for (const auto& cm : c_.com) {
        double sx = 0, sy = 0, si = 0;
        for (std::size_t q = 0; q < inten_.size(); ++q) {
          sx += double(inten_[q]) * c_.theta_x[q];
          sy += double(inten_[q]) * c_.theta_y[q];
          si += inten_[q];
        }
        a[cm.offset] += weight * sx;
        a[cm.offset + 1] += weight * sy;
        a[cm.offset + 2] += weight * si;
      }
    }
    if (patterns)
      for (std::size_t p = 0; p < c_.patterns.size(); ++p) {
        const auto& cp = c_.patterns[p];
        for (std::size_t o = 0; o < pat_[p].size(); ++o) {
          double v = 0;
          for (std::size_t k = 0; k < cp.per_pixel; ++k) v += std::norm(psi_k[cp.grid_index[o * cp.per_pixel + k]]);
          pat_[p][o] += weight * v * scale;
        }
      }
  }
  /// Writes this position's signals into the result (laid out by init_signals).
  void store(std::size_t pos, StemResult& res) const {
    const std::size_t nb = c_.binned.size(), nc = c_.com.size();
    for (std::size_t d = 0; d < ndepth_; ++d) {
      const double* a = acc_.data() + d * c_.accumulators;
      for (std::size_t k = 0; k < nb; ++k) {
        const auto& bd = c_.binned[k];
        auto& out = res.signals[d * nb + k].values;
        for (std::size_t b = 0; b < bd.bins; ++b) out[pos * bd.bins + b] = a[bd.offset + b];
      }
      for (std::size_t k = 0; k < nc; ++k) {
        const auto& cm = c_.com[k];
        auto& out = res.signals[ndepth_ * nb + d * nc + k].values;
        const double tot = a[cm.offset + 2];
        out[pos * 2] = tot > 0 ? a[cm.offset] / tot : 0.0;
        out[pos * 2 + 1] = tot > 0 ? a[cm.offset + 1] / tot : 0.0;
      }
    }
  }
  void store_pattern(std::size_t p, float* dst) const {
    for (std::size_t o = 0; o < pat_[p].size(); ++o) dst[o] = float(pat_[p][o]);
  }

 private:
  const Compiled& c_;
  std::size_t ndepth_;
  std::vector<float> inten_;
  std::vector<double> acc_;
  std::vector<std::vector<double>> pat_;
};

/// Allocates the result's signal arrays in the order Recorder::store writes them.
inline void init_signals(StemResult& res, const Compiled& c, const std::vector<Detector>& dets, std::size_t ndepth,
                         std::size_t npos) {
  for (std::size_t d = 0; d < ndepth; ++d)
    for (const auto& b : c.binned) res.signals.push_back({detector_name(dets[b.detector]), d, b.bins, std::vector<double>(npos * b.bins)});
  for (std::size_t d = 0; d < ndepth; ++d)
    for (const auto& cm : c.com) res.signals.push_back({detector_name(dets[cm.detector]), d, 2, std::vector<double>(npos * 2)});
}

/// Runs body(position, recorder, workspace) for every position, OpenMP threads over
/// positions in blocks; after each block the 4D patterns go to the sink and progress is
/// reported, both on the calling thread. Each thread makes its workspace once. An exception
/// (from the body, the sink or progress) stops the positions after the current block and is
/// rethrown here: it must not leave the parallel region, which would end the program.
template <class Workspace>
void drive_positions(std::size_t npos, const Compiled& c, const std::vector<Detector>& dets, std::size_t ndepth,
                     const StemSettings& st, PatternSink* sink, StemResult& res,
                     const std::function<Workspace()>& make_workspace,
                     const std::function<void(std::size_t, Recorder&, Workspace&)>& body) {
  const std::size_t block = std::max<std::size_t>(1, st.pattern_block);
  std::vector<std::vector<float>> pattern_block(c.patterns.size());
  for (std::size_t p = 0; p < c.patterns.size(); ++p) pattern_block[p].assign(block * c.patterns[p].ny * c.patterns[p].nx, 0.0f);
  // Errors (a failed allocation, a sink refusing a block) are carried out of the region;
  // every thread keeps reaching the barriers until the region ends.
  ParallelErrors errors;
#pragma omp parallel
  {
    std::optional<Recorder> rec;
    std::optional<Workspace> ws;
    errors.run([&] {
      rec.emplace(c, ndepth);
      ws.emplace(make_workspace());
    });
    // No early exit from this loop: every thread must meet the same barriers (after an
    // error the remaining blocks cost only a check each).
    for (std::size_t b0 = 0; b0 < npos; b0 += block) {
      const std::size_t b1 = std::min(npos, b0 + block);
#pragma omp for schedule(dynamic)
      for (long pl = long(b0); pl < long(b1); ++pl)
        errors.run([&] {
          const auto pi = std::size_t(pl);
          rec->clear();
          body(pi, *rec, *ws);
          rec->store(pi, res);
          for (std::size_t p = 0; p < c.patterns.size(); ++p)
            rec->store_pattern(p, pattern_block[p].data() + (pi - b0) * c.patterns[p].ny * c.patterns[p].nx);
        });  // implicit barrier
#pragma omp single
      errors.run([&] {
        if (sink)
          for (std::size_t p = 0; p < c.patterns.size(); ++p)
            sink->write(detector_name(dets[c.patterns[p].detector]), b0, b1 - b0, c.patterns[p].ny, c.patterns[p].nx,
                        pattern_block[p].data());
        if (st.progress) st.progress(b1, npos);
      });  // implicit barrier
    }
  }
  errors.rethrow();
}

/// Maps requested recording depths to slice indices (after which to record).
inline std::vector<std::size_t> depth_slices(const std::vector<double>& slice_thickness, const std::vector<double>& depths,
                                            std::vector<double>& actual) {
  const std::size_t ns = slice_thickness.size();
  std::vector<double> bounds(ns + 1, 0.0);
  for (std::size_t s = 0; s < ns; ++s) bounds[s + 1] = bounds[s] + slice_thickness[s];
  std::vector<std::size_t> out;
  actual.clear();
  if (depths.empty()) {
    out.push_back(ns - 1);
    actual.push_back(bounds[ns]);
    return out;
  }
  for (double d : depths) {
    if (!(d > 0)) throw std::invalid_argument("recording depth must be > 0 Å");
    std::size_t best = 1;
    for (std::size_t b = 1; b <= ns; ++b)
      if (std::fabs(bounds[b] - d) < std::fabs(bounds[best] - d)) best = b;
    out.push_back(best - 1);
    actual.push_back(bounds[best]);
  }
  return out;
}

/// Rejects empty or duplicate-named detector lists.
inline void check_detector_names(const std::vector<Detector>& dets) {
  if (dets.empty()) throw std::invalid_argument("no detectors");
  for (std::size_t i = 0; i < dets.size(); ++i)
    for (std::size_t j = i + 1; j < dets.size(); ++j)
      if (detector_name(dets[i]) == detector_name(dets[j]))
        throw std::invalid_argument("two detectors named '" + detector_name(dets[i]) + "'");
}

}  // namespace stemtwin::detail
