#pragma once
// Translational symmetry of a static specimen: one probe position per class of positions
// that differ by a lattice translation, the others copy its signals (as muSTEM users scan
// one unit cell of a tiled crystal).
//
// Why it is exact. Let the atoms of a static structure (no thermal displacement) be invariant
// under t = (Lx/nx, 0) — or (0, Ly/ny) — of the periodic cell, with t a whole number of
// grid pixels (Nx divisible by nx). The sampled potential of every slice is then the same
// array rolled by t/dx pixels (it is built periodically on the grid: potential.hpp), so are
// the transmission functions. The probe at p + t is the probe at p rolled by the same pixels
// (its phase ramp exp(−2πi k·t) on the FFT grid is an exact roll), and the whole multislice
// stays a roll: the wave in reciprocal space differs only by a phase. Every detector
// (annular, segmented, radial, COM, pixelated) integrates |Ψ(k)|², which a phase does not
// change: the probe at p and at p + t gives the same signals.
//
// Error budget: exact up to floating-point rounding — the phase ramp exp(−2πi k·p) and the
// potential's Gaussian spreading and summation (over atoms in their input order) are computed
// in different order for the two positions. Measured against plain multislice
// (tests/test_translational_symmetry.cpp; single-precision waves; difference relative to the
// signal's largest value): SrTiO3 [001] 3×3×4 ≤ 2.5e-6 (HAADF, a 1e-4 fraction of the beam),
// Si [110] ≤ 5.3e-6 (COM, a ratio of sums), a rectangular SrTiO3 cell ≤ 0.9e-6; BF, DPC
// segments and radial bins ≤ 7e-7 everywhere.
//
// Where it applies: multislice (Method::Multislice, and Method::Auto where it chooses
// multislice; the cost model counts only the representatives, auto_method.hpp) when
// StemSettings::symmetry_reuse is on (the default), every atom's rms is 0 (frozen-phonon
// configurations break the symmetry) and no SliceObserver (spectroscopy) rides on the scan
// (it records per position inside the specimen; the reuse is switched off for it). A 4D
// PatternSink still receives every position, in order, in blocks of pattern_block: the
// representatives' patterns are kept (at most kSymmetryMaxKeptPatternBytes, else no reuse)
// and replayed as copies after their scan. Windowed multislice and PRISM do not use it
// (PRISM's per-position cost is already small; windowed builds its windows per tile).
#include <cstddef>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/physics/slice_observer.hpp"
#include "stemtwin/physics/stem_result.hpp"
#include "stemtwin/physics/stem_settings.hpp"

namespace stemtwin {

/// Two atoms are the same site when their positions agree within this (Å, per axis, modulo
/// the cell). Structures tiled from one cell (builders, CIF files, zone-axis rotation) agree
/// to double rounding, ~1e-12 Å at 100 Å; 1e-6 Å is far above that and far below anything
/// physical (thermal rms ~0.05–0.1 Å, sampling ≥ 0.01 Å): an atom moved by 1e-6 Å changes
/// its sampled potential by ≲ 1e-6/0.05 relative, the order of the float rounding of the waves.
inline constexpr double kSymmetryAtomTolerance_A = 1e-6;
/// Occupancy (fraction) and rms (Å) must agree within this: the same number from the same
/// source, rounded at most in double.
inline constexpr double kSymmetryPropertyTolerance = 1e-9;
/// Two probe positions are equivalent when their difference is a lattice translation within
/// this fraction of the sampling: the probe's phase ramp then differs by ≤ π·1e-6 rad at
/// the Nyquist frequency, below the float rounding of the ramp itself.
inline constexpr double kSymmetryPositionTolerance_px = 1e-6;

/// The most memory the representatives' 4D patterns may take to be replayed to a PatternSink
/// (bounded by the grid's size per pattern); beyond it every position is simulated and streamed.
inline constexpr std::size_t kSymmetryMaxKeptPatternBytes = std::size_t(512) << 20;

/// Sub-periods of a structure on a grid: its atoms are invariant under (Lx/nx, 0) and
/// (0, Ly/ny), each a whole number of pixels (nx divides grid.nx). 1 = no symmetry found.
struct SubPeriods {
  std::size_t nx = 1, ny = 1;
  bool any() const { return nx > 1 || ny > 1; }
};

/// The smallest whole-pixel sub-periods of the structure's atoms (the largest nx, ny): same
/// Z, occupancy and rms, positions equal modulo the cell within `tolerance_A`, as a multiset
/// (a doubled atom counts). Hashing: O(atoms · divisors of the grid's point counts).
/// The grid must span the cell (grid.lx = cell.x, grid.ly = cell.y, as build_potential needs).
SubPeriods structure_subperiods(const Structure& structure, const Grid& grid, double tolerance_A = kSymmetryAtomTolerance_A);

/// Probe positions grouped by the lattice of `periods`: p ≡ q when p − q is a whole number of
/// sub-period vectors (modulo the cell), within kSymmetryPositionTolerance_px of the sampling.
struct PositionClasses {
  std::vector<std::size_t> representatives;  ///< the first position of each class, ascending
  std::vector<std::size_t> class_of;         ///< per position: its class (index into representatives)
  bool reduces() const { return representatives.size() < class_of.size(); }
};
PositionClasses position_classes(const std::vector<Point2>& positions, const Grid& grid, const SubPeriods& periods);

/// The classes the multislice scan of `structure` may use: every position its own class when
/// settings.symmetry_reuse is off, any atom has rms > 0, `observed` (a slice observer rides on
/// the scan), the structure has no whole-pixel sub-period, or the representatives'
/// patterns of `streamed_patterns` pixelated detectors (each ≤ the grid's points, floats)
/// would exceed kSymmetryMaxKeptPatternBytes.
PositionClasses multislice_classes(const Structure& structure, const Grid& grid, const std::vector<Point2>& positions,
                                   const StemSettings& settings, bool observed, std::size_t streamed_patterns = 0);

/// A result over the representatives → the result over every position (each copies its
/// class's signals); sets positions_simulated to the number of representatives.
StemResult expand_classes(StemResult representatives, const PositionClasses& classes);

/// scan_multislice (engine.hpp) of the transmission functions of `structure` over the
/// representatives of multislice_classes(), expanded to every position; a `sink` receives
/// every position's patterns (its class's), in position order. Without a reduction it is
/// scan_multislice itself, to the byte.
StemResult scan_multislice_symmetric(const Structure& structure, const std::vector<Transmission>& configurations,
                                     const ProbeOptics& optics, const std::vector<Point2>& positions,
                                     const std::vector<Detector>& detectors, const StemSettings& settings, const Fft2& fft,
                                     PatternSink* sink = nullptr, SliceObserver* observer = nullptr);

}  // namespace stemtwin
