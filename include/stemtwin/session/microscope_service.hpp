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
//   super_x      EDS spectrometer: acquire_spectrum(_points) at the beam position(s);
//                settings size (channels), exposure (s), binning (recorded), energy_window (eV)
//   eels         EELS spectrometer (the twin's; the reference has none): settings size
//                (channels), exposure (s), energy_offset (eV), dispersion (eV/channel),
//                collection_angle (rad)
// Detector names (case-insensitive): HAADF, ADF (aliases DF, MAADF), ABF, BF, with the
// session's own default angles (the Microscope's initial detectors), overridable per name.
//
// Concurrency: the service's own state (device settings, beam position) is guarded by a
// mutex held only to read or change it, never across physics; the Microscope guards its
// state the same way and serialises acquisitions (one beam). So status, stage and settings
// calls answer at once while another connection's scan runs. An acquisition stops between
// blocks of positions when its client disconnects (rpc::caller_gone()) or when any client
// calls stemtwin.cancel, and is then answered -32000 "cancelled". Compute per call is bounded
// by ServiceLimits (a request beyond a limit is answered -32602 naming the limit).
//
// The methods are registered by group, one function each (microscope_service_*.cpp):
// devices and settings, stage and beam, acquisitions, status and optics, the STEM data
// server's verbs, and the native stemtwin.* methods.
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
  std::size_t max_scan_pixels = 512 * 512;  ///< nx·ny of one scan frame (512²: the reference client's default)
  /// nx·ny of a frame at atomic resolution (pixels ≤ the session's incoherent_above_A), where
  /// every pixel costs a full multislice.
  std::size_t max_physics_pixels = 256 * 256;
  /// Each side of a field of view at atomic resolution (the simulated window grows with it);
  /// coarser pixels (the incoherent model) may cover up to the session's 1 µm.
  double max_field_of_view_A = 100;
  std::size_t max_frames = 16;              ///< frames of acquire_image_stack
  std::size_t max_points = 1024;            ///< positions of one point list (stemtwin.probe_points)
  double max_dwell_s = 0.1;                 ///< scan exposure per pixel (0.1 s: the Twisted reference server's default)
  double max_exposure_s = 10;               ///< camera exposure
  std::size_t max_detectors = 8;            ///< detectors in one scan
  /// Spectra in one get_spectrum_image (size × size; each a multislice, each reply
  /// pixels × channels numbers: 1024 × 2048 ≈ 10 MB of JSON).
  std::size_t max_spectrum_pixels = 32 * 32;
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
  // Registration by group (one file each, microscope_service_*.cpp).
  void register_devices(RpcDispatcher& d);       // get_detectors, activate_device, (get_)device_settings, get_vacuum, close
  void register_stage_and_beam(RpcDispatcher& d);  // get_stage, set_stage, set/get_beam_position
  void register_acquisitions(RpcDispatcher& d);  // acquire_image(_stack)
  void register_spectra(RpcDispatcher& d);       // acquire_spectrum(_points) (microscope_service_spectra.cpp)
  void register_status(RpcDispatcher& d);        // get_microscope_status, aberration_correction
  void register_corrector(RpcDispatcher& d);     // acquireTableau, measureC1A1, correctAberration (+ snake_case)
  void register_data_server(RpcDispatcher& d);   // get_overview_image
  void register_spectrum_images(RpcDispatcher& d);  // get_spectrum_image(_e_axis), get_point_data
  void register_native(RpcDispatcher& d);          // the three below
  void register_native_state(RpcDispatcher& d);    // stemtwin.methods, status
  void register_native_scan(RpcDispatcher& d);     // stemtwin.scan, scan_lines
  void register_native_probe(RpcDispatcher& d);    // stemtwin.probe, probe_points
  void register_native_control(RpcDispatcher& d);  // stemtwin.dose_map, set_optics, move_stage, cancel

  // The helpers below marked "mutex held" expect mutex_ held; the others take no lock of the
  // service (the Microscope guards itself) and may run physics.
  std::string device_name(const nlohmann::json& v, const std::string& method) const;  // validated device name; mutex held
  AnnularDetector detector_locked(const std::string& name, const nlohmann::json& scan_settings) const;  // mutex held
  /// `base` with `changes` applied, each key validated against the device's settings and the limits (mutex held).
  nlohmann::json validated_settings(const std::string& device, const nlohmann::json& base,
                                    const nlohmann::json& changes) const;
  /// The scan a settings object asks for, checked against the limits of its level of detail (mutex held).
  ScanConfig scan_config(const nlohmann::json& settings) const;
  Point2 field_position_locked(double fx, double fy) const;  // mutex held
  /// The session's spectrometers with a spectrometer device's settings (super_x: size
  /// channels over energy_window; eels: size channels from energy_offset by dispersion,
  /// collection_angle) (mutex held).
  Spectrometers spectrometers_for(const std::string& device, const nlohmann::json& settings) const;
  /// One frame with the config's settings and detectors; the acquired image of each detector as float32.
  std::vector<std::vector<float>> scan_frame(const ScanConfig& c, ScanResult* keep = nullptr);
  /// A camera frame at specimen position `at`, binned and cropped/padded; sets its shape.
  std::vector<float> camera_frame(const nlohmann::json& settings, Point2 at, std::size_t& h, std::size_t& w);
  /// [x, y, z (m), a, b (rad)]
  nlohmann::json stage_si() const;
  /// The control of an acquisition made for an RPC call: it stops when the caller has gone.
  static AcquisitionControl call_control();

  Microscope& m_;
  ServiceLimits limits_;
  double incoherent_above_A_ = 0;  // the session's level-of-detail threshold (Å per pixel)
  mutable std::mutex mutex_;       // guards settings_, beam_ and measured_A_ only; never held across physics
  std::map<std::string, nlohmann::json> settings_;         // device → settings
  std::map<std::string, AnnularDetector> detector_table_;  // canonical upper-case name → angles
  std::array<double, 2> beam_{0.5, 0.5};                   // beam position, fractions of the field
  std::map<std::string, std::array<double, 2>> measured_A_;
  /// The last spectrum image per spectrometer, [x][y][channel] float32 and its shape (get_point_data).
  std::map<std::string, std::pair<std::vector<float>, std::vector<std::size_t>>> spectrum_images_;  // last measured CEOS coefficients (Å), for correctAberration
};

}  // namespace stemtwin
