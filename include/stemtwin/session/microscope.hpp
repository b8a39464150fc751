#pragma once
// The twin in an agent loop: a STEM session with a state (specimen, stage, optics,
// detectors, scan, acquisition chain, dose delivered) and the verbs an operator or an agent
// uses at a real instrument. The physics, detectors and noise are the datasets' own (stem.hpp,
// prism.hpp, acquisition.hpp); this class only keeps state, caches and bookkeeping.
//
// Coordinates: specimen coordinates in Å (the specimen's own frame). The stage position
// (x, y) is the specimen point at the centre of the field of view; `scan()` covers the field
// of view around it. `probe_at(x, y)` takes specimen coordinates. Stage z (Å) raises the
// specimen towards the probe-forming lens; the crossover stays where the lens puts it, so it
// lies z deeper below the entrance surface: the effective defocus is defocus + z.
// Tilt angles alpha/beta (rad) rotate the specimen about x and y (small tilts; periodicity
// at the window edges is broken, as documented in docs/specimens.md).
//
// Large specimens: each acquisition simulates a window of the specimen around what it
// touches (the field of view plus a margin sized from the probe's spread over the specimen
// thickness), treated as periodic; the window's potential (per phonon configuration) is
// cached, so a second scan of the same region re-uses it. Windows are snapped to a coarse
// lattice so that nearby fields of view share one. Clean signals are cached too: a repeated
// frame with the same positions, probe and detectors (no drift) only redoes the read-out.
//
// Every call is seeded: the n-th acquisition of a session uses the stream (seed, Session, n),
// so a session replayed with the same calls gives the same bytes.
//
// Threads. A Microscope may be shared by any number of threads. Two locks, never held the
// other way round: the *state* lock guards the instrument's state (stage, optics, detectors,
// scan, read-out chain, dose, counters) and is held only for copies and bookkeeping, never
// across physics; the *beam* lock serialises acquisitions (one beam: a second acquisition
// waits for the first) and guards the caches. An acquisition copies the state under the state
// lock when it starts, simulates without it, and books its dose under it at the end, so status,
// stage and optics calls answer at once while a scan runs, and a stage move during a scan
// applies to the next one. Acquisitions run in blocks of positions and stop between blocks
// when cancelled (cancel(), or AcquisitionControl::cancelled); a cancelled acquisition books
// the dose of the positions it did simulate and throws AcquisitionCancelled. A third lock, the
// *rows* lock, guards only the progressive image (scan_lines(): the rows of the running scan
// read out so far) and is held just to copy rows in or out.
//
// Level of detail. A scan whose pixels are larger than MicroscopeSettings::incoherent_above_A
// (0.3 Å) and whose detectors are all annular is computed with the incoherent model
// (incoherent.hpp: probe intensity ⊗ per-atom annular cross-sections; milliseconds instead of
// minutes); finer pixels get full multislice/PRISM. The dose and the read-out (noise) are the
// same either way: every electron is counted.
//
// The setters (and the positions and dwell of probe_at/scan_points) check the physical
// ranges of ranges.hpp and throw std::invalid_argument naming the value and its range; a
// refused call changes nothing.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/core/image.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/specimen/specimen.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/aberration_measure.hpp"
#include "stemtwin/physics/eds.hpp"
#include "stemtwin/physics/eels.hpp"
#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/core/image.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/specimen/specimen.hpp"
#include "stemtwin/specimen/world.hpp"
#include "stemtwin/physics/engine.hpp"

namespace stemtwin {

/// Knock-on style beam damage (off by default). Each atom within `radius_A` of a probe
/// position is displaced or removed with probability p = 1 − exp(−σ_Z · D), D the local dose
/// (e⁻/Å²) delivered by that acquisition and σ_Z = cross_section_A2 · (Z_ref/Z)^exponent
/// (light atoms are knocked on more easily). Of the atoms hit, `removal_fraction` are removed,
/// the others displaced by a Gaussian of `displacement_A`.
struct DamageSettings {
  bool enabled = false;
  double cross_section_A2 = 1e-6;  ///< σ for Z = Z_ref, Å² (1e-6 Å² = 100 barn)
  int Z_ref = 8;
  double exponent = 1.0;
  double removal_fraction = 0.5;
  double displacement_A = 0.5;
  double radius_A = 1.0;  ///< dose is counted over a disc of this radius around each probe
};

/// What does not change during a session (changing it means a new Microscope).
struct MicroscopeSettings {
  double sampling_A = 0.05;               ///< simulation grid sampling (FFT-friendly sizes chosen)
  PotentialSettings potential;            ///< slicing, parametrisation, projection
  /// Thermal vibration (frozen phonons): off by default, a static lattice. When on, each
  /// atom's rms comes from `thermal` (per element or for all), else from the structure
  /// file (U/B), else from the elemental-crystal table; see apply_thermal_vibration.
  ThermalVibration thermal;
  /// The engine (the one session default; `stemtwin serve --method` and Python's `method` set
  /// it): auto chooses PRISM where it holds `budget` on calibration positions of the frame,
  /// else multislice, and skips calibrating when its cost model says multislice is cheap
  /// (auto_method.hpp). Status reports what produced the last frame (FrameMethod).
  Method method = Method::Auto;
  /// Method auto's accuracy promise against multislice (default: annular means within 1 %,
  /// correlation ≥ 0.995, 8 calibration positions).
  ErrorBudget budget;
  std::size_t prism_interpolation = 4;    ///< PRISM f (when method == Prism)
  double window_margin_A = 0;             ///< 0: automatic, 3 Å + thickness·tan(α) + probe FWHM
  double window_snap_A = 10;              ///< window origins snap to multiples of this
  /// Smallest window side (Å): a window of side L samples the diffraction plane every λ/L,
  /// and detector edges (BF at 10 mrad…) need that fine: 40 Å gives 0.63 mrad at 200 kV.
  double min_window_A = 40;
  std::size_t max_positions_per_call = 1u << 18;  ///< bound on the work one call may ask for
  std::size_t cache_entries = 8;          ///< cached windows (least recently used dropped first)
  std::uint64_t seed = 0;
  DamageSettings damage;
  /// Scan pixels larger than this (Å, the larger of the two steps) use the incoherent model
  /// when every detector is annular; 0 = always full physics.
  double incoherent_above_A = 0.3;
  /// With a World: incoherent frames whose field (the larger side) is at most this use the
  /// world's atoms (incoherent_map over the window, the lattice visible); larger fields use
  /// the world's projected composition (World::areal_density), averaged over each pixel, so a
  /// 1 µm overview never materialises atoms. Both weight the same cross-sections.
  double world_atoms_fov_A = 128;
  /// The column's residual aberrations (an aberration-corrected STEM after tuning; see
  /// aberration_measure.hpp and docs/corrector.md), drawn from `seed`. The probe's effective
  /// aberrations are these plus the optics' (the corrector's setting, what optics() and
  /// status report); only measure_tableau() sees them. Off: an ideal column.
  bool residual_aberrations = false;
  /// Drift of the residual C1 and A1: a random walk (each Cartesian component a Wiener
  /// process) of this rms per √minute, in the session's beam-on time (electrons delivered /
  /// beam current: the twin has no wall clock, so a session replays exactly), stepped every
  /// second of it from stream (seed, 8, 2, step). 0 = no drift (default). Applies with
  /// residual_aberrations only.
  double c1_drift_A_per_sqrt_min = 0;
  double a1_drift_A_per_sqrt_min = 0;
};

/// Thrown by an acquisition that was cancelled (Microscope::cancel() or
/// AcquisitionControl::cancelled); the dose of the positions simulated before is booked.
class AcquisitionCancelled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Rows of a scan frame read out as they complete (the progressive image): from
/// Microscope::scan_lines (any thread) or AcquisitionControl::lines (the scanning thread).
/// A row is handed out only once it is final: its bytes are exactly the finished frame's
/// (acquisition/readout_rows.hpp). Channels whose read-out needs the whole frame — iDPC, and
/// every channel when a source size blurs the frame — are `whole_frame`: they have no rows
/// until the frame is done. A frame computed at once (the incoherent model, a frame from the
/// clean-signal cache) has its rows all at the end.
struct ScanLines {
  std::uint64_t call = 0;          ///< the acquisition (ScanResult::call) the rows belong to
  /// "idle" (no scan yet), "running", "done", "cancelled" (the rows before the stop stay), "failed"
  std::string state = "idle";
  std::size_t nx = 0, ny = 0;      ///< the frame's raster (ny = the total rows)
  std::size_t rows_done = 0;       ///< rows read out so far (ny when done)
  std::size_t first_row = 0;       ///< the first row held in `rows`
  std::vector<std::string> channels;     ///< the frame's channels in read-out order
  std::vector<std::string> whole_frame;  ///< channels that arrive only with the whole frame
  /// Rows [first_row, rows_done) of each channel not in whole_frame: nx × (rows_done −
  /// first_row) images of the acquired read-out (ScanResult::images).
  std::map<std::string, Image> rows;
  /// The whole_frame channels' full nx × ny images, once the state is "done".
  std::map<std::string, Image> whole;
};

/// Optional hooks of one acquisition, called on the calling thread between blocks of positions.
struct AcquisitionControl {
  std::function<bool()> cancelled;                                      ///< true: stop and throw AcquisitionCancelled
  std::function<void(std::size_t done, std::size_t total)> progress;  ///< positions simulated so far
  /// A scan's new rows as they complete (first_row = the rows handed out before), and once
  /// more with state "done", the rows left and the whole-frame channels; scans only.
  std::function<void(const ScanLines&)> lines;
};

struct StagePosition {
  double x_A = 0, y_A = 0, z_A = 0;  ///< Å
  double alpha_rad = 0, beta_rad = 0;
};

/// Beam and lenses: probe optics (energy, convergence, aberrations, focal spread, source
/// size) plus the beam current.
struct Optics {
  ProbeOptics probe;
  double current_pA = 20;
};

/// Scan settings: field of view around the stage position, pixels, rotation, dwell.
struct ScanSettings {
  double fov_x_A = 25.6, fov_y_A = 25.6;
  std::size_t nx = 128, ny = 128;
  double rotation_deg = 0;
  double dwell_us = 2;
  double flyback_us = 0;
  /// Spectrum images riding on the scan (microscope_spectra.cpp): an EDS and/or EELS spectrum
  /// per pixel from the same multislice pass. They need the wave inside the specimen, so a
  /// scan asking for them is always full physics (never the incoherent model) and windowed
  /// multislice (method windowed, static specimens) or multislice over the session window
  /// (never PRISM), and its clean signals are not taken from the cache.
  bool eds = false;
  bool eels = false;
};

/// The session's spectrometers (docs/spectroscopy.md for the models).
struct Spectrometers {
  EdsDetector eds;    ///< default: 0–20.48 keV in 2048 channels, 130 eV at Mn Kα, 0.7 sr
  EelsSettings eels;  ///< default: −10…1014 eV in 2048 channels of 0.5 eV, β = 50 mrad
  /// 1σ (Å) of the ionisation footprint (InelasticSettings::width_A): the docs recommend at
  /// least two grid pixels; 0.3 Å suits K shells at the session's 0.05 Å sampling.
  double ionisation_width_A = 0.3;
};

enum class SpectrumKind { Eds, Eels };

/// Spectra at a list of probe positions (one position for spectrum_at, every pixel of a
/// scan for spectrum images): counts per channel, [position][channel].
struct SpectrumResult {
  SpectrumKind kind = SpectrumKind::Eds;
  double energy_start_eV = 0, channel_width_eV = 0;  ///< left edge of channel 0, channel width
  std::size_t channels = 0, positions = 0;
  std::vector<Point2> positions_A;
  std::vector<double> counts;    ///< Poisson counts at the dose, stream (seed, Spectra, 2·call + kind, position)
  std::vector<double> expected;  ///< the ideal (noise-free) spectrum: the Poisson means
  double electrons_per_position = 0;
  std::uint64_t call = 0;
  double channel_energy_eV(std::size_t c) const { return energy_start_eV + (double(c) + 0.5) * channel_width_eV; }
};

struct ScanResult {
  /// Image channels, named, ordered and noise-keyed by the one read-out
  /// (acquisition/readout.hpp, as in a dataset): annular <name>, segmented <name>_r<ring>s<seg>,
  /// COM <name>_x, <name>_y, <name>_idpc. Noise streams are keyed (seed, call, channel): this
  /// session's n-th acquisition reads out as a dataset's sample n would.
  std::map<std::string, Image> images;  ///< acquired read-out per channel (ADU; noisy if configured)
  std::map<std::string, Image> clean;   ///< clean signals (fractions of the beam; COM mrad, iDPC mrad·Å)
  std::vector<std::string> channels;    ///< the channel names in the read-out's order
  ScanSettings scan;
  StagePosition stage;
  Optics optics;
  std::vector<Point2> positions_A;      ///< where the probe really was, per pixel [iy][ix]
  double electrons_per_position = 0;
  double dose_e_per_A2 = 0;             ///< this frame's dose
  std::uint64_t call = 0;               ///< index of this acquisition in the session
  std::vector<std::string> warnings;
  double seconds = 0;                   ///< wall time spent
  bool window_cache_hit = false;  ///< the window's potentials were re-used
  bool signal_cache_hit = false;  ///< the clean signals were re-used (same positions, probe, detectors)
  bool incoherent = false;        ///< computed with the incoherent model (pixels > incoherent_above_A)
  std::optional<SpectrumResult> eds, eels;  ///< spectrum images when ScanSettings::eds / eels asked for them
};

struct ProbeResult {
  Point2 position_A;
  std::map<std::string, double> signals;  ///< clean detector signals (fractions; COM: mrad)
  std::vector<float> pattern;             ///< diffraction pattern (fractions; noisy counts if a camera is configured)
  std::size_t pattern_nx = 0, pattern_ny = 0;
  double pattern_pixel_mrad_x = 0, pattern_pixel_mrad_y = 0;
  double electrons = 0;
  std::uint64_t call = 0;
};

struct DoseMap {
  Image dose_e_per_A2;  ///< [y][x] over the specimen cell
  double pixel_A = 1;
  double total_electrons = 0;
};

/// What produced the last full-physics frame: "multislice", "prism" or "windowed" (method auto's choice
/// or the method set), PRISM's factor, and auto's error measured on its calibration positions
/// against multislice (worst annular mean error and correlation; NaN when auto did not
/// calibrate, or the method was not auto). method "" before the first frame.
struct FrameMethod {
  std::string method;
  std::size_t interpolation = 1;
  bool calibrated = false;
  double mean_error = std::nan("");
  double correlation = std::nan("");
};

struct MicroscopeStatus {
  StagePosition stage;
  Optics optics;
  ScanSettings scan;
  std::vector<std::string> detectors;
  double total_electrons = 0;
  std::uint64_t calls = 0;
  std::size_t atoms = 0;
  Cell specimen_cell;
  std::size_t cached_windows = 0;
  std::size_t cache_hits = 0, cache_misses = 0;
  std::size_t atoms_removed = 0, atoms_displaced = 0;
  bool acquiring = false;                          ///< an acquisition is running
  std::size_t positions_done = 0, positions_total = 0;  ///< its progress
  /// The running or last scan frame's progressive image (scan_lines(), without the rows):
  /// its state ("idle", "running", "done", "cancelled", "failed"), the rows read out so far
  /// and the frame's rows, so a client polling status sees a scan's progress in rows.
  std::string scan_state = "idle";
  std::size_t rows_done = 0, total_rows = 0;
  FrameMethod last_frame;                          ///< what produced the last full-physics frame
};

class Microscope {
 public:
  explicit Microscope(Specimen specimen, MicroscopeSettings settings = {});
  /// A session on a World (world.hpp): atoms are made only for the windows simulated at
  /// atomic resolution; overviews use its projected composition. The stage starts at the
  /// world's centre. Beam damage is refused (the world's atoms are regenerated per window).
  /// The dose map covers the world with pixels of at least extent/1024.
  explicit Microscope(World world, MicroscopeSettings settings = {});
  /// The session's world, or null when it was given an explicit specimen.
  const World* world() const;
  ~Microscope();
  Microscope(Microscope&&) noexcept;
  Microscope& operator=(Microscope&&) noexcept;

  // --- stage
  void move_stage(const StagePosition& p);
  void move_stage_relative(double dx_A, double dy_A, double dz_A = 0, double dalpha_rad = 0, double dbeta_rad = 0);
  StagePosition stage() const;

  // --- optics
  void set_optics(const Optics& o);
  Optics optics() const;
  void set_aberration(const std::string& name, double value);  ///< Krivanek names and aliases
  void set_defocus(double defocus_A);
  void set_current(double current_pA);
  void set_convergence(double semiangle_mrad);

  // --- aberration corrector (aberration_measure.hpp)
  /// Measures the effective aberrations (residuals + corrector setting, with stage z as
  /// defocus) by a beam-tilt tableau of the vacuum probe. Counted as an acquisition: its
  /// noise stream is (seed, corrector, call); `s.seed` and `s.stream` are ignored. No dose
  /// reaches the specimen (the tilts are made off it).
  TableauResult measure_tableau(const TableauSettings& s);
  /// Adds `delta_A` (CEOS Cartesian, Å; see ceos_set) to the corrector's coefficient `ceos_name`
  /// (C1, A1, B2, A2, C3, S3, A3), with the range checks of set_optics.
  void adjust_aberration(const std::string& ceos_name, std::array<double, 2> delta_A);
  /// The column's residual aberrations: the hidden truth, for tests and evaluation only
  /// (never reported by the server). Zero unless settings().residual_aberrations.
  Aberrations residual_aberrations() const;

  // --- detectors, scan, read-out chain
  void set_detectors(std::vector<Detector> detectors);
  std::vector<Detector> detectors() const;
  void set_scan(const ScanSettings& s);
  ScanSettings scan_settings() const;
  /// Noise, detector response, distortions (its scan geometry is ignored: set_scan sets it).
  void set_acquisition(const AcquisitionSettings& a);
  AcquisitionSettings acquisition() const;

  // --- acquisitions (each one counted, seeded and dosed)
  ScanResult scan(const AcquisitionControl& control = {});
  /// Sets the scan settings and detectors and scans with them, in one step (no other
  /// thread's settings can come in between).
  ScanResult scan(const ScanSettings& s, std::vector<Detector> detectors, const AcquisitionControl& control = {});
  /// As above, with these spectrometers for this scan's spectrum images only (the session's
  /// stay); the scan settings' eds/eels flags are cleared afterwards (spectra of this call only).
  ScanResult scan(const ScanSettings& s, std::vector<Detector> detectors, const Spectrometers& spectrometers,
                  const AcquisitionControl& control = {});
  /// Parks the probe at a specimen position for dwell_us; a PixelatedDetector (if any) gives
  /// the pattern, else the pattern is the whole band-limited diffraction pattern.
  ProbeResult probe_at(double x_A, double y_A, double dwell_us = 1000, const AcquisitionControl& control = {});
  std::vector<ProbeResult> scan_points(const std::vector<Point2>& points_A, double dwell_us = 2,
                                       const AcquisitionControl& control = {});
  /// An EDS (or EELS) point spectrum with the probe parked at specimen position (x, y) Å for
  /// dwell_us: the dose is the beam current × dwell; Poisson counts and the ideal spectrum.
  /// The probe's intensity at every atom comes from multislice through the window around the
  /// point (windowed multislice with method windowed; docs/spectroscopy.md). Counted, seeded
  /// and dosed like every acquisition.
  SpectrumResult spectrum_at(double x_A, double y_A, double dwell_us = 1e5, SpectrumKind kind = SpectrumKind::Eds,
                             const AcquisitionControl& control = {});
  /// Spectra at several positions (Å) in one acquisition, with the session's spectrometers
  /// or with `spectrometers` given for this call only (the session's are left alone).
  SpectrumResult spectra_at(const std::vector<Point2>& points_A, double dwell_us, SpectrumKind kind,
                            const AcquisitionControl& control = {});
  SpectrumResult spectra_at(const std::vector<Point2>& points_A, double dwell_us, SpectrumKind kind,
                            const Spectrometers& spectrometers, const AcquisitionControl& control = {});
  /// The EDS detector, the EELS spectrometer and the ionisation footprint; checked against the
  /// specimen (a detector the models refuse is refused here, naming why).
  void set_spectrometers(const Spectrometers& s);
  Spectrometers spectrometers() const;
  /// Cancels every acquisition running or waiting for the beam now (later ones run); returns at once.
  void cancel();
  /// The running or last scan's rows from `from_row` on, as read out so far (progressive
  /// image; ScanLines). Takes no lock an acquisition holds across physics: answers at once.
  ScanLines scan_lines(std::size_t from_row = 0) const;

  // --- bookkeeping
  MicroscopeStatus status() const;
  DoseMap dose_map(double pixel_A = 1.0) const;
  /// The session's fixed settings.
  const MicroscopeSettings& settings() const;
  /// A copy of the specimen as it is now (beam damage may change it).
  Specimen specimen() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ScanResult scan_locked(std::uint64_t cancel_epoch, const AcquisitionControl& control,
                         const Spectrometers* spectrometers = nullptr);  // beam lock held
};

}  // namespace stemtwin
