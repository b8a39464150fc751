#pragma once
// Internal to src/session: the value types and checks of the Microscope's implementation
// (microscope_impl.hpp): cached windows and clean signals, the snapshot of the state an
// acquisition works from, incoherent map entries, and the range checks of optics and scans.
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "stemtwin/acquisition/ranges.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/physics/incoherent.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/session/microscope.hpp"

namespace stemtwin {
namespace microscope_detail {

constexpr double kDoseMapPixel_A = 0.5;  // resolution of the stored dose map
constexpr std::size_t kWorldDosePixels = 1024;  // a world's dose map: 1024 × 1024 over its extent (8 MiB)

/// A cached window: the specimen region it covers and its transmission functions (one per
/// phonon configuration), plus PRISM S-matrices keyed by convergence angle.
struct Window {
  double x0 = 0, y0 = 0, wx = 0, wy = 0;  // Å, specimen frame
  double alpha = 0, beta = 0;
  double energy_eV = 0;
  std::uint64_t specimen_version = 0;
  Grid grid;
  std::unique_ptr<Fft2> fft;
  std::vector<Transmission> configs;  ///< built on first use (Impl::transmissions): windowed multislice needs none
  bool thermal = false;               ///< its atoms vibrate (rms > 0): each configuration displaces them
  std::size_t configurations = 1;     ///< phonon configurations its transmission functions hold (or will)
  std::map<double, std::vector<SMatrix>> smatrices;
  double bytes = 0;  ///< estimated size of the transmission functions (0 until built)
  /// Method auto: the calibrated choice per physics_key (probe, detectors) and, where it is
  /// PRISM, its S-matrices.
  std::map<std::string, AutoChoice> auto_choices;
  std::map<std::string, std::vector<SMatrix>> auto_smatrices;
  bool same(const Window& o) const {
    return x0 == o.x0 && y0 == o.y0 && wx == o.wx && wy == o.wy && alpha == o.alpha && beta == o.beta &&
           energy_eV == o.energy_eV && specimen_version == o.specimen_version;
  }
};

inline double specimen_thickness(const Structure& s) { return s.cell.z; }

/// Exact textual key of everything the clean signals depend on besides the window and the
/// positions: probe optics and detectors (hex floats, so equal keys mean equal numbers).
inline std::string physics_key(const ProbeOptics& p, const std::vector<Detector>& dets) {
  std::string k;
  char buf[64];
  auto num = [&](double v) {
    std::snprintf(buf, sizeof buf, "%a,", v);
    k += buf;
  };
  num(p.energy_eV), num(p.semiangle_mrad), num(p.focal_spread_A), num(double(p.focal_spread_points));
  for (double c : p.aberrations.C) num(c);
  for (double c : p.aberrations.phi) num(c);
  for (const Detector& d : dets) {
    k += "|" + detector_name(d) + ":" + std::to_string(d.index()) + ":";
    if (const auto* a = std::get_if<AnnularDetector>(&d)) {
      num(a->inner_mrad), num(a->outer_mrad);
      if (a->azimuth_deg) num(a->azimuth_deg->first), num(a->azimuth_deg->second);
    } else if (const auto* r = std::get_if<RadialDetector>(&d)) {
      num(r->step_mrad), num(r->max_mrad);
    } else if (const auto* sg = std::get_if<SegmentedDetector>(&d)) {
      for (double e : sg->ring_edges_mrad) num(e);
      num(double(sg->segments)), num(sg->rotation_deg);
    } else if (const auto* px = std::get_if<PixelatedDetector>(&d)) {
      num(px->max_angle_mrad), num(double(px->bin));
    }
  }
  return k;
}

/// Clean signals of a finished acquisition, re-used when the same window, positions, probe
/// and detectors come again (repeated frames without drift): only the read-out is redone.
struct CleanEntry {
  const void* window = nullptr;
  std::uint64_t specimen_version = 0;
  std::string key;
  std::vector<Point2> positions;
  StemResult result;
};

/// What an acquisition needs of the instrument's state, copied under the state lock.
struct Snapshot {
  StagePosition stage;
  Optics optics;
  Aberrations residual;  ///< the column's residual aberrations (hidden; see MicroscopeSettings)
  std::vector<Detector> detectors;
  ScanSettings scan;
  AcquisitionSettings acq;
  Spectrometers spectrometers;
  std::uint64_t call = 0;
  std::uint64_t cancel_epoch = 0;

  ProbeOptics effective_probe() const {
    ProbeOptics p = optics.probe;
    p.aberrations = add_aberrations(residual, p.aberrations);  // column residuals + corrector setting
    p.aberrations.C[0] -= stage.z_A;  // defocus = −C10: raising the specimen by z puts the fixed crossover z deeper
    return p;
  }
};

/// A cached incoherent map: one detector, one probe, one pixel footprint, one specimen version.
struct MapEntry {
  std::string key;
  std::uint64_t specimen_version = 0;
  IncoherentMap map;
};

/// The positions an acquisition has exposed so far, by their index in its positions: the
/// first `count` of its simulation order, which is scan order for multislice and PRISM and
/// tile order for windowed multislice (windowed.hpp; then `order` holds it). A cancelled
/// acquisition books its dose on exactly these (Impl::deposit_visited).
struct Visited {
  std::vector<std::size_t> order;  ///< simulation order; empty: scan order
  std::size_t count = 0;           ///< positions exposed: the first `count` in simulation order
  std::size_t index(std::size_t k) const { return order.empty() ? k : order[k]; }
};

/// Offsets the first position of a block's patterns (blocks are simulated one after another).
struct OffsetSink : PatternSink {
  PatternSink* inner = nullptr;
  std::size_t offset = 0;
  void write(const std::string& d, std::size_t first, std::size_t count, std::size_t ny, std::size_t nx, const float* p) override {
    inner->write(d, first + offset, count, ny, nx, p);
  }
};

inline void check_optics(const Optics& o) {
  const ProbeOptics& p = o.probe;
  check_range(ranges::kEnergy, p.energy_eV);
  check_range(ranges::kConvergence, p.semiangle_mrad);
  check_range(ranges::kCurrent, o.current_pA);
  check_range(ranges::kFocalSpread, p.focal_spread_A);
  check_range(ranges::kFocalSpreadPoints, double(p.focal_spread_points));
  check_range(ranges::kSourceSize, p.source_size_A);
  for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i) {
    const std::string nm = std::to_string(Aberrations::kOrders[i][0]) + std::to_string(Aberrations::kOrders[i][1]);
    check_range(ranges::aberration_range(Aberrations::kOrders[i][0]), p.aberrations.C[i], "aberration C" + nm + (nm == "10" ? " (−defocus)" : ""));
    if (Aberrations::kOrders[i][1] != 0) check_range(ranges::kAberrationAngle, p.aberrations.phi[i], "aberration angle phi" + nm);
  }
}

inline void check_scan(const ScanSettings& s, std::size_t max) {
  check_range(ranges::kFieldOfView, s.fov_x_A, "field of view x (fov_x_A)");
  check_range(ranges::kFieldOfView, s.fov_y_A, "field of view y (fov_y_A)");
  // Each side is bounded before the product, which could otherwise wrap around.
  if (s.nx == 0 || s.ny == 0 || s.nx > max || s.ny > max || s.nx * s.ny > max)
    throw std::invalid_argument("scan of " + std::to_string(s.nx) + " × " + std::to_string(s.ny) +
                                " pixels: needs at least 1 × 1 and at most " + std::to_string(max) +
                                " pixels in all (max_positions_per_call)");
  check_range(ranges::kScanRotation, s.rotation_deg);
  check_range(ranges::kDwell, s.dwell_us);
  check_range(ranges::kFlyback, s.flyback_us);
}

}  // namespace microscope_detail

}  // namespace stemtwin
