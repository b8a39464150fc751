#pragma once
// The microscope behind `stemtwin serve`: JSON-RPC methods that map the DTMicroscope TEM
// client's API (pycroscopy/DTMicroscope, its server for AutoScript-like Thermo Fisher
// microscopes) onto one Microscope session, plus native "stemtwin.*" methods with binary
// array transfer. The full protocol (every method, parameter, unit, return value and
// error) is in docs/server.md; this header is its index.
//
// Units. The DTMicroscope-compatible methods speak the client's SI units: metres for stage
// x, y, z and fields of view, radians for stage tilts a, b, scan rotation and collection
// angles, seconds for exposures (for `scan`: the dwell per pixel), amperes for the beam
// current. Native methods speak the twin's units (Å, mrad, µs, pA), with the unit in
// every key name.
//
// Devices (names as the DTMicroscope server's defaults):
//   scan         STEM detectors; settings size (pixels, n or [nx, ny]), exposure (s per
//                pixel), field_of_view (m, w or [w, h]), detectors (["HAADF", ...]),
//                rotation (rad), camera_length (m, recorded), collection_angles
//                ({"HAADF": [inner, outer]} rad)
//   ceta_camera  the diffraction pattern (Ronchigram) with the probe parked at the beam
//                position; settings size (0 = native, else centre crop/zero pad to
//                size × size after binning), exposure (s), binning
//   flu_camera   the same pattern as seen by the screen camera (defaults: binning 2)
//   super_x      EDS spectrometer: settings are kept, but acquisitions answer -32000
//                "spectroscopy is not simulated" until spectroscopy exists
// Detector names (case-insensitive): HAADF, ADF (aliases DF, MAADF), ABF, BF, with the
// session's own default angles (the Microscope's initial detectors), overridable per name.
//
// Concurrency: all methods lock one mutex, so calls from several connections are
// serialised on the single Microscope. Compute per call is bounded by ServiceLimits
// (a request beyond a limit is answered -32602 naming the limit).
#include <array>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/session/json_rpc.hpp"
#include "stemtwin/session/microscope.hpp"

namespace stemtwin {

struct ServiceLimits {
  std::size_t max_scan_pixels = 256 * 256;  ///< nx·ny of one scan frame
  double max_field_of_view_A = 100;         ///< each side of a scan's field of view (the simulated window grows with it)
  std::size_t max_frames = 16;              ///< frames of acquire_image_stack
  std::size_t max_points = 1024;            ///< positions of one point list (stemtwin.probe_points)
  double max_dwell_s = 1e-3;                ///< scan exposure per pixel
  double max_exposure_s = 10;               ///< camera exposure
  std::size_t max_detectors = 8;            ///< detectors in one scan
};

class MicroscopeService {
 public:
  /// `microscope` must outlive the service; the service owns no other state than the device
  /// settings and the beam position.
  explicit MicroscopeService(Microscope& microscope, ServiceLimits limits = {});

  /// Registers every method (DTMicroscope-compatible and stemtwin.*) on `dispatcher`.
  void register_methods(RpcDispatcher& dispatcher);

  /// The annular detector a name stands for (case-insensitive, aliases resolved), with the
  /// session's default angles or the override set through collection_angles; throws
  /// RpcError(-32602) listing the known names otherwise.
  AnnularDetector detector_for(const std::string& name) const;

  /// Specimen position (Å) of a point of the scan field given as fractions (0..1; (0.5, 0.5)
  /// is the field's centre, the stage position; pixel (ix, iy) of an nx × ny scan is at
  /// ((ix + 0.5)/nx, (iy + 0.5)/ny)), for the current stage, field of view and rotation.
  Point2 field_position(double fx, double fy) const;

  const ServiceLimits& limits() const { return limits_; }

 private:
  struct ScanConfig {
    std::size_t nx = 0, ny = 0;
    double dwell_s = 0, fov_x_m = 0, fov_y_m = 0, rotation_rad = 0;
    std::vector<AnnularDetector> detectors;  // canonical names, angles resolved
  };
  // The helpers below expect mutex_ held.
  std::string device_name(const nlohmann::json& v, const std::string& method) const;  // validated device name
  AnnularDetector detector_locked(const std::string& name, const nlohmann::json& scan_settings) const;
  /// `base` with `changes` applied, each key validated against the device's settings and the limits.
  nlohmann::json validated_settings(const std::string& device, const nlohmann::json& base,
                                    const nlohmann::json& changes) const;
  ScanConfig scan_config(const nlohmann::json& settings) const;
  Point2 field_position_locked(double fx, double fy) const;
  void apply_scan(const ScanConfig& c);
  /// One frame; the acquired image of each requested detector as float32 (and the whole result).
  std::vector<std::vector<float>> scan_frame(const ScanConfig& c, ScanResult* keep = nullptr);
  /// A camera frame at the beam position, binned and cropped/padded; sets its shape.
  std::vector<float> camera_frame(const nlohmann::json& settings, std::size_t& h, std::size_t& w);

  Microscope& m_;
  ServiceLimits limits_;
  mutable std::mutex mutex_;
  std::map<std::string, nlohmann::json> settings_;         // device → settings
  std::map<std::string, AnnularDetector> detector_table_;  // canonical upper-case name → angles
  std::array<double, 2> beam_{0.5, 0.5};                   // beam position, fractions of the field
};

}  // namespace stemtwin
