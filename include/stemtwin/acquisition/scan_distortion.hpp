#pragma once
// Scan geometry and scan instabilities: where the probe really lands on the specimen, pixel
// by pixel, and how a specimen coordinate maps back into the image (labels follow the image).
//
// Conventions
// - Pixel (ix, iy) has its centre at image coordinates (ix, iy); x is the fast axis, rows
//   are acquired top to bottom. A fractional image coordinate (fx, fy) interpolates.
// - Time: pixel (ix, iy) is visited at t = iy·(nx·dwell + flyback) + ix·dwell (s, from the
//   start of the frame); every time-dependent effect is evaluated at that instant.
// - Rotation: the fast axis points along (cos θ, sin θ) in specimen coordinates, the slow
//   axis along (−sin θ, cos θ); the raster turns about its centre. θ = 0 gives exactly
//   ScanGrid::positions() (bitwise).
// - Scan-coil errors (line jitter, flyback nonlinearity, low-frequency scan noise) act in
//   the scan frame (rotate with the scan); specimen drift and mains pickup act in the
//   specimen frame.
// - Drift moves the specimen by d(t) = v·t + W(t) (W a random walk); the probe at nominal
//   point p then lands on specimen point p − d(t), so features move by +d(t) in the image.
// - All random parameters come from Rng(seed, RngPurpose::Scan, sample, component): the
//   same seed gives the same positions on any machine and thread count.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "stemtwin/core/image.hpp"
#include "stemtwin/core/scan.hpp"

namespace stemtwin {

/// Where and when the probe is nominally put: a raster (ScanGrid: origin = pixel (0,0) at
/// θ = 0, step, pixels), a scan rotation and the timing.
struct ScanGeometry {
  ScanGrid grid;              ///< nominal raster before rotation (Å)
  double rotation_deg = 0;    ///< scan rotation θ, degrees, counter-clockwise from +x towards +y
  double dwell_us = 2;        ///< time per pixel, µs
  double flyback_us = 0;      ///< extra time per line for the flyback, µs

  /// Field of view fov_x × fov_y (Å) in nx × ny pixels starting at origin (step = fov/n).
  static ScanGeometry from_fov(Point2 origin_A, double fov_x_A, double fov_y_A, std::size_t nx, std::size_t ny,
                               double rotation_deg = 0, double dwell_us = 2, double flyback_us = 0);

  std::size_t nx() const { return grid.nx; }
  std::size_t ny() const { return grid.ny; }
  std::size_t size() const { return grid.size(); }
  double fov_x_A() const { return grid.step_x * static_cast<double>(grid.nx); }  ///< field of view, Å
  double fov_y_A() const { return grid.step_y * static_cast<double>(grid.ny); }
  double line_time_s() const;   ///< nx·dwell + flyback, s
  double frame_time_s() const;  ///< ny·line time, s
  /// Acquisition start time of pixel (ix, iy), s: iy·(nx·dwell + flyback) + ix·dwell.
  double pixel_time_s(std::size_t ix, std::size_t iy) const;
  /// Nominal specimen position (Å) of fractional image coordinate (fx, fy), rotation included.
  Point2 nominal_position(double fx, double fy) const;
  /// Inverse of nominal_position: fractional image coordinate of a specimen point.
  Point2 nominal_pixel(Point2 specimen_A) const;
  /// Nominal positions of all pixels, row-major [iy][ix] (the clean scan).
  std::vector<Point2> nominal_positions() const;
};

/// Specimen drift (specimen frame): linear velocity plus an isotropic random walk whose
/// displacement after time t has standard deviation diffusion·√t along each axis.
struct DriftParams {
  double velocity_x_A_per_s = 0;
  double velocity_y_A_per_s = 0;
  double diffusion_A_per_sqrt_s = 0;
};

/// Per-line jitter along the fast axis (scan frame): each line is offset by an independent
/// normal shift of this rms.
struct LineJitterParams {
  double rms_A = 0;
};

/// Flyback nonlinearity: at the start of each line the probe is displaced along the fast
/// axis by amplitude·exp(−t_line/decay), t_line = ix·dwell the time since the line started
/// (positive amplitude: towards +fast; a scan coil that lags behind has a negative one).
struct FlybackParams {
  double amplitude_A = 0;
  double decay_us = 0;  ///< ≤ 0: off
};

/// Low-frequency scan noise (scan frame): along each axis a sum of sinusoids at the given
/// frequencies with seeded random phases and equal amplitudes, total rms per axis rms_A
/// (each amplitude is rms·√(2/M) for M frequencies).
struct ScanNoiseParams {
  std::vector<double> frequencies_Hz;
  double rms_A = 0;
};

/// Mains pickup (specimen frame): a stray field at the mains frequency deflecting the probe
/// by amplitude·sin(2πft + φ), φ a seeded random phase (frames are not mains-locked).
struct MainsParams {
  double frequency_Hz = 50;
  double amplitude_x_A = 0;
  double amplitude_y_A = 0;
};

/// Probe-current fluctuation: the current is I·(1 + δ(t)) with δ an Ornstein–Uhlenbeck
/// process of standard deviation relative_rms and correlation time correlation_time_us
/// (≤ 0: independent from pixel to pixel). The multiplier is clipped at 0.
struct CurrentFluctuationParams {
  double relative_rms = 0;
  double correlation_time_us = 0;
};

/// All scan instabilities; every one is off by default.
struct Distortion {
  DriftParams drift;
  LineJitterParams jitter;
  FlybackParams flyback;
  ScanNoiseParams scan_noise;
  MainsParams mains;
  CurrentFluctuationParams current;
  /// True when some effect would move a probe position (rotation is geometry, not here).
  bool moves_probe() const;
};

/// The scan as it really happened: per pixel (row-major [iy][ix]) the specimen position the
/// probe landed on (feed these to the physics), the dose multiplier (probe current relative
/// to nominal) and the acquisition time.
struct DistortedScan {
  std::size_t nx = 0, ny = 0;
  std::vector<Point2> positions_A;       ///< true specimen positions, Å
  std::vector<double> dose_multiplier;   ///< current relative to nominal, ≥ 0
  std::vector<double> time_s;            ///< acquisition start time of each pixel, s
};

/// Computes the distorted scan. With every effect off the positions equal
/// geometry.nominal_positions() bitwise and every multiplier is exactly 1.
DistortedScan distort_scan(const ScanGeometry& geometry, const Distortion& distortion, std::uint64_t seed,
                           std::uint64_t sample = 0);

/// A specimen point and where it appears in the image.
struct MappedPoint {
  Point2 specimen_A;      ///< the point, specimen coordinates (Å)
  Point2 image_px;        ///< fractional image coordinate (pixel centres at integers)
  bool found = false;     ///< a solution was found (Newton may extrapolate the edge cells linearly)
  bool inside = false;    ///< found and within the frame (−0.5 ≤ f ≤ n − 0.5 on both axes)
};

/// Maps a specimen point into the image by inverting the distorted position field: finds
/// (fx, fy) such that the bilinear interpolation of the true positions equals the point
/// (Newton from the nominal guess; if that does not converge, a cell-by-cell search in a
/// window around the guess as wide as the largest displacement, taking the solution nearest
/// the guess). Where the map folds (e.g. large jitter images a point twice) only one
/// solution is returned; map_to_image_all gives every one within the frame. A point
/// outside the frame may still get an extrapolated coordinate (found, not inside); when
/// nothing converges, found is false and image_px holds the nominal guess. The frame
/// reaches half a pixel beyond the outer pixel centres (edge cells extended). Needs nx, ny ≥ 2.
MappedPoint map_to_image(const DistortedScan& scan, const ScanGeometry& geometry, Point2 specimen_A);
std::vector<MappedPoint> map_to_image_all(const DistortedScan& scan, const ScanGeometry& geometry, Point2 specimen_A);
/// Batch form for label tables (e.g. atom columns); same order as the input.
std::vector<MappedPoint> map_to_image(const DistortedScan& scan, const ScanGeometry& geometry,
                                      const std::vector<Point2>& specimen_A);

/// Forward map: specimen position (Å) at a fractional image coordinate, by bilinear
/// interpolation of the true positions (edges extended linearly).
Point2 image_to_specimen(const DistortedScan& scan, Point2 image_px);

/// Per-pixel label/mask sampled at each pixel's true specimen position: the honest way to
/// give a mask the image's distortion. label(x_Å, y_Å) → value.
Image sample_at_positions(const DistortedScan& scan, const std::function<double(double, double)>& label);

}  // namespace stemtwin
