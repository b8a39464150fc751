#pragma once
// Acquisition settings in one aggregate (what a scenario's `acquisition:` section fills,
// field by field; YAML key names in docs/acquisition.md) and the pipeline around physics:
//
//   settings ─► plan_scan ─► DistortedScan.positions_A ─► physics (clean signals per position)
//                                  │ dose_multiplier, time_s
//                                  ▼
//   clean signals ─► acquire_annular / acquire_segmented / acquire_4d ─► detector read-out
//   labels (Å) ─► map_to_image(scan, settings.scan, …) ─► image pixel coordinates
//
// Everything is off / ideal by default except shot noise: default settings give a 64 × 64
// scan of 0.2 Å pixels at 20 pA, 2 µs (≈ 250 e⁻ per position), no distortion.
#include <cstdint>
#include <span>
#include <vector>

#include "stemtwin/acquisition/camera.hpp"
#include "stemtwin/acquisition/detector_response.hpp"
#include "stemtwin/acquisition/dose.hpp"
#include "stemtwin/acquisition/scan_distortion.hpp"

namespace stemtwin {

struct AcquisitionSettings {
  ScanGeometry scan = ScanGeometry::from_fov({0, 0}, 12.8, 12.8, 64, 64);  ///< acquisition.scan.*
  double beam_current_pA = 20;        ///< acquisition.beam_current_pA
  Distortion distortion;              ///< acquisition.drift / jitter / flyback / scan_noise / mains / current
  AnnularResponse annular;            ///< acquisition.annular.* (afterglow: acquisition.annular.afterglow.*)
  RadialSensitivity sensitivity;      ///< acquisition.annular.sensitivity (for radial-bin detectors)
  CameraResponse camera;              ///< acquisition.camera.*

  /// Throws std::invalid_argument naming the YAML key of the first bad value.
  void validate() const;
  /// N = I·t/e at nominal current.
  double electrons_per_position() const { return stemtwin::electrons_per_position(beam_current_pA, scan.dwell_us); }
};

/// The scan as it happens (validate()s first): positions for the physics, dose multipliers, times.
DistortedScan plan_scan(const AcquisitionSettings& settings, std::uint64_t seed, std::uint64_t sample = 0);

/// Dose of the frame, including the scan's dose multipliers.
DoseReport dose_report(const AcquisitionSettings& settings, const DistortedScan& scan);

/// Annular read-out (ADU; detected electrons with the default response) from the clean image
/// of fractions computed at scan.positions_A.
Image acquire_annular(const Image& clean_fraction, const AcquisitionSettings& settings, const DistortedScan& scan,
                      const NoiseStream& stream);

/// Annular read-out from radial-bin signals through the angle-dependent sensitivity.
Image acquire_annular_from_bins(std::span<const double> bins, std::span<const double> bin_edges_mrad,
                                double inner_mrad, double outer_mrad, const AcquisitionSettings& settings,
                                const DistortedScan& scan, const NoiseStream& stream);

/// Segmented read-out, [position][ring][segment] (ADU), through the annular chain per segment.
std::vector<double> acquire_segmented(std::span<const double> clean_fraction, const SegmentLayout& layout,
                                      const AcquisitionSettings& settings, const DistortedScan& scan,
                                      const NoiseStream& stream);

/// 4D stack in place (clean fractions → camera read-out), dose following the scan's multipliers.
void acquire_4d(std::span<float> stack, std::size_t pattern_nx, std::size_t pattern_ny,
                const AcquisitionSettings& settings, const DistortedScan& scan, const NoiseStream& stream);

}  // namespace stemtwin
