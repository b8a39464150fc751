#pragma once
// Detectors in reciprocal space (the diffraction plane). Angles in mrad: θ = λ|k|.
// Every detector reduces the diffracted intensity |ψ(k)|² of one probe position (a fraction
// of the incident beam) to a few numbers ("bins"):
//  - AnnularDetector: 1 bin, inner ≤ θ < outer, optionally only azimuths in [from, to) deg.
//    HAADF, ADF, ABF and BF are parameter sets of this one type.
//  - RadialDetector: one bin per `step` mrad from 0 to `max` (a flexible detector: any
//    annulus can be integrated later from the bins).
//  - SegmentedDetector: rings × segments (DPC); bin = ring·segments + segment, segment 0
//    starting at `rotation` deg, counter-clockwise (towards +y).
//  - ComDetector: 2 bins, the centre of mass of the pattern (COM x, y) in mrad,
//    Σ I θ / Σ I.
//  - PixelatedDetector: the whole pattern (4D-STEM) up to `max_angle`, centred (zero
//    frequency in the middle), binned `bin` × `bin`; streamed to a PatternSink; taken at
//    the deepest recording depth (the exit surface unless depths are given).
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "stemtwin/core/grid.hpp"

namespace stemtwin {

struct AnnularDetector {
  std::string name = "haadf";
  double inner_mrad = 70, outer_mrad = 200;
  std::optional<std::pair<double, double>> azimuth_deg;  ///< [from, to), deg, counter-clockwise from +x
  bool operator==(const AnnularDetector&) const = default;
};

struct RadialDetector {
  std::string name = "radial";
  double step_mrad = 1.0;
  double max_mrad = 0.0;  ///< 0: up to the band limit
  bool operator==(const RadialDetector&) const = default;
};

struct SegmentedDetector {
  std::string name = "dpc";
  std::vector<double> ring_edges_mrad = {10, 20};  ///< rings+1 edges
  std::size_t segments = 4;
  double rotation_deg = 0.0;
  bool operator==(const SegmentedDetector&) const = default;
};

struct ComDetector {
  std::string name = "com";
  bool operator==(const ComDetector&) const = default;
};

struct PixelatedDetector {
  std::string name = "pattern";
  double max_angle_mrad = 0.0;  ///< 0: up to the band limit
  std::size_t bin = 1;
  bool operator==(const PixelatedDetector&) const = default;
};

using Detector = std::variant<AnnularDetector, RadialDetector, SegmentedDetector, ComDetector, PixelatedDetector>;

const std::string& detector_name(const Detector& d);

/// Problems worth telling the user (outer angle beyond the band limit, empty detectors…),
/// one sentence each; empty when all is well.
std::vector<std::string> check_detectors(const std::vector<Detector>& detectors, const Grid& grid, double wavelength_A);

/// Number of bins a detector produces per position (pixelated: ky·kx of its pattern).
std::size_t detector_bins(const Detector& d, const Grid& grid, double wavelength_A);

/// Pattern shape (ny, nx) of a pixelated detector on a grid.
std::pair<std::size_t, std::size_t> pattern_shape(const PixelatedDetector& d, const Grid& grid, double wavelength_A);

/// Lower edges of radial bins, mrad (nbins + 1 values).
std::vector<double> radial_bin_edges(const RadialDetector& d, const Grid& grid, double wavelength_A);

/// Integrates radial-bin signals (one position) over [inner, outer) mrad, whole bins.
double integrate_radial(const std::vector<double>& bins, const std::vector<double>& edges_mrad, double inner_mrad,
                        double outer_mrad);

}  // namespace stemtwin
