#pragma once
// Internal to src/physics/: partitioned PRISM's scan (prism_partitioned.cpp), called by
// scan_prism (prism.cpp) when StemSettings::prism_partitioned is set.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "recorder.hpp"
#include "stemtwin/physics/prism.hpp"

namespace stemtwin {

namespace prism_detail {
/// Signed frequency index of grid index i on an n-point axis (as Grid::kx).
inline long signed_index(std::size_t i, std::size_t n) { return long(i) < long(n + 1) / 2 ? long(i) : long(i) - long(n); }
/// Grid index of signed frequency index s on an n-point axis.
inline std::size_t wrap_index(long s, std::size_t n) { return std::size_t(((s % long(n)) + long(n)) % long(n)); }

/// Coefficient of each beam for a probe at r0: A(k) e^{−iχ(k)} e^{−2πik·r0}, normalised so
/// the probe in the window holds intensity 1: Σ_window |Σ_m c_m e^{2πik_m·r}|² = n_window Σ|c_m|².
struct BeamCoefficients {
  std::vector<double> kx, ky;        // 1/Å
  std::vector<cfloat> c0;            // at r0 = 0
};
/// The coefficients of S's beams for the optics with the defocus offset `defocus_offset` (Å, a focal node).
BeamCoefficients beam_coefficients(const SMatrix& S, const ProbeOptics& optics, double defocus_offset);

// Spectroscopy on PRISM (prism_observe.cpp).
/// Sizes `samples` for `beams` beams at `pixels` ([wave read 0 … ns]) of t's slicing;
/// refuses pixel lists of the wrong length or outside the grid (std::invalid_argument).
void prepare_samples(const Transmission& t, const std::vector<std::vector<std::uint32_t>>& pixels, std::size_t beams,
                     SMatrixSamples& samples);
/// Keeps beam `beam`'s real-space wave `psi` (full grid) at the pixels of wave read `read`.
inline void keep_samples(const cfloat* psi, std::size_t beam, std::size_t read, SMatrixSamples& samples) {
  const std::vector<std::uint32_t>& px = samples.pixels[read];
  cfloat* out = samples.values[read].data() + beam * px.size();
  for (std::size_t k = 0; k < px.size(); ++k) out[k] = psi[px[k]];
}
/// begin()s the observer for the scan and checks that every configuration's samples are at
/// the pixels it reads (std::invalid_argument otherwise: S-matrices built for another observer).
void begin_observer(const std::vector<SMatrix>& configs, std::size_t positions, SliceObserver& observer);
/// Per position (threads over groups of positions sharing a window: one matrix product per
/// group and wave read), configuration, focal node (`coef`, weights
/// `focal_weight`) and wave read: |Σ_b c_b S_b|² at the observer's pixels inside the
/// position's window (as the exit waves': centred on the position, or with block_A > 0 on its
/// group's cell, scan_grouped), 0 outside, handed to observe_intensities().
void observe_prism(const std::vector<SMatrix>& configs, const std::vector<BeamCoefficients>& coef,
                   const std::vector<double>& focal_weight, const std::vector<Point2>& positions, double block_A,
                   SliceObserver& observer);

/// What plain and partitioned PRISM scans set up alike.
struct ScanSetup {
  StemResult res;         ///< depths, method "prism", interpolation, detector warnings, empty signals
  detail::Compiled comp;  ///< detectors compiled on `window_full`; the caller re-indexes comp.band
  FocalQuadrature fq;     ///< the optics' focal-spread nodes
  std::size_t ndepth;     ///< recording depths of the S-matrix
};
/// The result's header and signals for `positions` positions, the detectors compiled on the
/// window at the simulation grid's sampling (`window_full`: its band limit), refusing 4D
/// detectors when the stored window differs from it (a cropped S-matrix).
ScanSetup scan_setup(const SMatrix& S0, const ProbeOptics& optics, const std::vector<Detector>& detectors,
                     const Grid& window, const Grid& window_full, std::size_t positions);
}  // namespace prism_detail

/// Partitioned PRISM (prism.hpp): per position Σ_m e^{−2πik_m·r₀} S_m(r) b_m(r − r₀) over a
/// window of nwx × nwy stored pixels centred on the probe's pixel.
StemResult scan_partitioned(const std::vector<SMatrix>& configs, const ProbeOptics& optics,
                            const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                            const StemSettings& st, PatternSink* sink, double window_A);

}  // namespace stemtwin
