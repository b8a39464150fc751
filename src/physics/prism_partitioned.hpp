#pragma once
// Internal to src/physics/: partitioned PRISM's scan (prism_partitioned.cpp), called by
// scan_prism (prism.cpp) when StemSettings::prism_partitioned is set.
#include <cstddef>
#include <vector>

#include "recorder.hpp"
#include "stemtwin/physics/prism.hpp"

namespace stemtwin {

namespace prism_detail {
/// Signed frequency index of grid index i on an n-point axis (as Grid::kx).
inline long signed_index(std::size_t i, std::size_t n) { return long(i) < long(n + 1) / 2 ? long(i) : long(i) - long(n); }
/// Grid index of signed frequency index s on an n-point axis.
inline std::size_t wrap_index(long s, std::size_t n) { return std::size_t(((s % long(n)) + long(n)) % long(n)); }

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
