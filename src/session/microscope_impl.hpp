#pragma once
// Internal to src/session: the Microscope's state and caches (Microscope::Impl), shared by
// microscope.cpp (acquisitions), microscope_state.cpp (setters, status, dose map),
// microscope_spectra.cpp (spectra) and microscope_world.cpp (a session on a World). The
// members that do the work are defined by concept: the window cache in microscope_windows.cpp,
// the blockwise simulation and method choice in microscope_simulate.cpp, the incoherent model
// in microscope_incoherent.cpp, dose and beam damage in microscope_dose.cpp.
// Locking rules: microscope.hpp, "Threads".
#include "stemtwin/session/microscope.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/rng.hpp"
#include "stemtwin/physics/windowed.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "microscope_detail.hpp"
#include "microscope_lines.hpp"
#include "microscope_spectra.hpp"

namespace stemtwin {
using namespace microscope_detail;

struct Microscope::Impl {
  Specimen specimen;  ///< with a world: no atoms, the world's extent as its cell
  std::shared_ptr<const World> world;  ///< the session's world (null: the explicit, periodic specimen)
  Image world_dose;  ///< with a world: electrons per pixel of a kWorldDosePixels² grid over its extent
  MicroscopeSettings settings;
  StagePosition stage;
  Optics optics;
  Aberrations residual;  // the column's residual aberrations (MicroscopeSettings::residual_aberrations)
  double beam_time_s = 0;             // beam-on time: Σ electrons / (current / e) (the drift's clock)
  std::uint64_t drift_steps = 0;      // 1 s steps of the drift taken so far
  std::array<double, 3> drift_A{};    // C1, A1 x, A1 y (CEOS Cartesian, Å) walked so far

  /// The residuals at the current beam-on time (state lock held): the drift walked up to it.
  Aberrations current_residual() {
    const double c1 = settings.c1_drift_A_per_sqrt_min, a1 = settings.a1_drift_A_per_sqrt_min;
    if (!settings.residual_aberrations || (c1 == 0 && a1 == 0)) return residual;
    const double per_step = 1.0 / std::sqrt(60.0);  // rms of a 1 s step, per unit rate per √min
    while (double(drift_steps + 1) <= beam_time_s) {
      Rng rng(settings.seed, {kCorrectorRngKey, 2, drift_steps++});
      drift_A[0] += c1 * per_step * rng.normal();
      drift_A[1] += a1 * per_step * rng.normal();
      drift_A[2] += a1 * per_step * rng.normal();
    }
    Aberrations r = residual;
    const auto c1now = ceos_get(r, ceos_coefficient("C1")), a1now = ceos_get(r, ceos_coefficient("A1"));
    ceos_set(r, ceos_coefficient("C1"), {c1now[0] + drift_A[0], 0.0});
    ceos_set(r, ceos_coefficient("A1"), {a1now[0] + drift_A[1], a1now[1] + drift_A[2]});
    return r;
  }
  std::vector<Detector> detectors = {AnnularDetector{"HAADF", 70, 160}, AnnularDetector{"ADF", 30, 70},
                                     AnnularDetector{"ABF", 10, 20}, AnnularDetector{"BF", 0, 10}};
  ScanSettings scan;
  AcquisitionSettings acq;
  Spectrometers spectrometers;
  std::uint64_t calls = 0;
  std::uint64_t specimen_version = 0;
  double total_electrons = 0;
  Image dose;  // electrons per dose-map pixel over the specimen cell
  std::list<Window> cache;
  std::list<CleanEntry> clean_cache;
  std::atomic<std::size_t> hits{0}, misses{0}, cached_windows{0};  // read by status() without the beam lock
  std::size_t removed = 0, displaced = 0;
  FrameMethod last_frame;    // what produced the last full-physics frame (method auto's choice)
  std::string thermal_note;  // thermal_warning() of the settings ("" when none)
  std::list<MapEntry> maps;  // incoherent maps (beam lock)
  /// Scale of the incoherent model per annular detector (name and angles), learnt from the
  /// last full-physics frame with that detector (beam lock); absent: uncalibrated (1).
  std::map<std::string, std::pair<double, std::uint64_t>> incoherent_scale;  // key → (scale, call)

  // Locks (see microscope.hpp, "Threads"): `state` guards everything above but the caches and
  // is never held across physics; `beam` serialises acquisitions and guards cache,
  // clean_cache and maps. The specimen changes (beam damage) only with both held.
  mutable std::mutex state;
  std::mutex beam;
  std::atomic<std::uint64_t> cancel_epoch{0};
  std::atomic<bool> acquiring{false};
  std::atomic<std::size_t> done_positions{0}, total_positions{0};
  LineBuffer lines;  // the running or last scan's rows (a lock of its own; Microscope::scan_lines)

  Snapshot snapshot() {
    std::lock_guard<std::mutex> lock(state);
    Snapshot s;
    s.stage = stage;
    s.optics = optics;
    s.residual = current_residual();
    s.detectors = detectors;
    s.scan = scan;
    s.acq = acq;
    s.spectrometers = spectrometers;
    s.call = calls++;
    return s;
  }

  /// Marks an acquisition as running for status() for the lifetime of the guard.
  struct Running {
    Impl& m;
    explicit Running(Impl& i) : m(i) {
      m.done_positions.store(0);
      m.total_positions.store(0);
      m.acquiring.store(true);
    }
    ~Running() { m.acquiring.store(false); }
  };

  Impl(Specimen s, MicroscopeSettings st, std::shared_ptr<const World> w = nullptr)
      : specimen(std::move(s)), world(std::move(w)), settings(st) {
    if (world) {
      if (settings.damage.enabled)
        throw std::invalid_argument("Microscope: beam damage needs an explicit specimen (a world's atoms are regenerated for each window)");
      specimen = Specimen{};
      specimen.structure.cell = world->extent();
    } else {
      check_specimen(specimen);
      apply_thermal_vibration(specimen.structure, settings.thermal);
      thermal_note = thermal_warning(specimen.structure, settings.thermal.configurations);
    }
    if (settings.residual_aberrations) residual = draw_residual_aberrations(settings.seed);
    if (!(settings.c1_drift_A_per_sqrt_min >= 0 && settings.c1_drift_A_per_sqrt_min <= 1e4) ||
        !(settings.a1_drift_A_per_sqrt_min >= 0 && settings.a1_drift_A_per_sqrt_min <= 1e4))
      throw std::invalid_argument("Microscope: aberration drift rates (c1/a1_drift_A_per_sqrt_min) must be in [0, 1e4] Å/√min");
    const Cell& c = specimen.structure.cell;
    if (!(c.x > 0 && c.y > 0 && c.z > 0)) throw std::invalid_argument("Microscope: the specimen needs a cell with positive extent");
    if (!(settings.sampling_A > 0)) throw std::invalid_argument("Microscope: sampling must be > 0 Å");
    if (world) world_dose = Image(kWorldDosePixels, kWorldDosePixels);
    else
      dose = Image(std::max<std::size_t>(1, std::size_t(std::ceil(c.x / kDoseMapPixel_A))),
                   std::max<std::size_t>(1, std::size_t(std::ceil(c.y / kDoseMapPixel_A))));
    stage.x_A = c.x / 2;
    stage.y_A = c.y / 2;
    scan.fov_x_A = std::min(scan.fov_x_A, c.x);
    scan.fov_y_A = std::min(scan.fov_y_A, c.y);
  }

  double margin(const Snapshot& sn) const {
    if (settings.window_margin_A > 0) return settings.window_margin_A;
    // Probe spread: the geometric cone over the thickness plus a few probe widths.
    const double alpha = sn.optics.probe.semiangle_mrad * 1e-3;
    return 4.0 + specimen_thickness(specimen.structure) * std::tan(alpha);
  }

  /// The window covering the given positions (plus margin), snapped to the cache lattice.
  /// Beam lock held.
  Window& window_for(const Snapshot& sn, const std::vector<Point2>& pos, bool& hit);
  /// A world window's atoms with the session's thermal vibration applied (the first such
  /// window sets the thermal note).
  Structure thermal_atoms(Structure base);
  /// At most cache_entries windows, and (thick specimens: a 100 Å world's window is ~0.4 GB
  /// at 0.05 Å) no more than the memory budget in all; the newest (front) is always kept.
  void trim_cache();
  /// The window's transmission functions (one per phonon configuration) and its FFT, built on
  /// first use: windowed multislice builds its own per tile and never needs them (a 40 Å
  /// window of the 100 Å world at 0.05 Å takes ~15–25 s on 2 cores). `w` is the cache's
  /// front (just returned by window_for). Beam lock held.
  void transmissions(Window& w);

  /// Atoms of the (periodic) specimen `s` inside the window, shifted to the window's origin.
  static Structure extract(const Window& w, const Structure& s);

  /// The static atoms of a window, shifted to its origin: the world's atoms when the session
  /// has a world, else the periodic specimen's. Every path that needs the window's atoms
  /// (windowed multislice, spectra) takes them here, so none can read the wrong specimen.
  Structure window_atoms_of(const Window& w) const { return world ? world_structure(w) : extract(w, specimen.structure); }

  /// The atoms the spectrometer models read their composition and thickness from, before a
  /// window exists (settings checks): the specimen, or on a world the atoms of a 20 Å square at
  /// `near` (at the world's centre where that is vacuum).
  Structure spectra_check_specimen(Point2 near) const;
  /// Refuses spectrometers the EDS/EELS models refuse at the current beam energy for the
  /// specimen near `near` (default: the stage position), naming why. Beam lock held (the
  /// composition changes only under it); takes the state lock just to read energy and stage.
  void check_spectrometers_here(const Spectrometers& sp, std::optional<Point2> near = std::nullopt) {
    double energy_eV = 0;
    Point2 stage_A;
    {
      std::lock_guard<std::mutex> lock(state);
      energy_eV = optics.probe.energy_eV;
      stage_A = {stage.x_A, stage.y_A};
    }
    check_spectrometers(spectra_check_specimen(near.value_or(stage_A)), energy_eV, sp);
  }

  // With a world (src/session/microscope_world.cpp):
  /// The world's atoms in the window, shifted to its origin, tilted like extract().
  Structure world_structure(const Window& w) const;
  /// Incoherent images of a world: the atoms' map for small fields, the projected composition
  /// averaged over each pixel for large ones (MicroscopeSettings::world_atoms_fov_A). Beam lock held.
  std::map<std::string, Image> world_incoherent_images(const Snapshot& sn, const std::vector<Point2>& pos, double px, double py);
  /// The dose map over the world (state lock held).
  DoseMap world_dose_map(double pixel_A) const;

  void check_work(std::size_t positions) const {
    if (positions == 0) throw std::invalid_argument("nothing to acquire: zero positions");
    if (positions > settings.max_positions_per_call)
      throw std::invalid_argument("acquisition of " + std::to_string(positions) + " positions exceeds the limit of " +
                                  std::to_string(settings.max_positions_per_call) + " per call");
  }

  /// Clean signals for the positions: from the clean cache when the same acquisition was
  /// simulated before (no 4D sink involved), else computed.
  StemResult simulate_cached(const Snapshot& sn, Window& w, const std::vector<Point2>& pos, const std::vector<Detector>& dets, bool& hit,
                             const AcquisitionControl& ctl, Visited& visited, const BlockHook& on_block = {});

  /// The clean signals of a scan frame at the planned positions `ds` (simulated, from the
  /// clean-signal cache, or the incoherent model's maps as one bin per annular detector), with
  /// `r`'s warnings, cache flags and spectrum images filled; `on_block` sees the signals as
  /// blocks complete. A cancelled frame books the dose of the positions simulated and throws
  /// AcquisitionCancelled (microscope.cpp). Beam lock held.
  StemResult frame_signals(const Snapshot& sn, const DistortedScan& ds, double electrons_each, const AcquisitionControl& control,
                           const BlockHook& on_block, ScanResult& r);

  /// True when this acquisition is to stop: cancel() was called since it started, or its
  /// control says so.
  bool stop_requested(const Snapshot& sn, const AcquisitionControl& ctl) const {
    return cancel_epoch.load() != sn.cancel_epoch || (ctl.cancelled && ctl.cancelled());
  }

  /// Method auto in a window (auto_method.hpp): the cost model decides whether calibrating can
  /// pay for these positions; if so the calibrated choice is kept per window and probe
  /// (physics_key) and re-used by later frames. The window is the session's own windowing,
  /// so windowed multislice is never a candidate here. Returns PRISM's S-matrices or nullptr
  /// (multislice); `frame` records the choice. Beam lock held.
  std::vector<SMatrix>* auto_method(Window& w, const ProbeOptics& probe, const std::vector<Point2>& local,
                                    const std::vector<Detector>& dets, FrameMethod& frame);

  /// Clean signals at `pos`, simulated in blocks of positions (each position's signals do not
  /// depend on the others, and the engines are bit-identical for any split, so blocks change
  /// nothing but how often cancellation is looked at). `visited` tells the positions done;
  /// `on_block` (may be empty) sees the signals so far after each block (progressive rows);
  /// throws AcquisitionCancelled between blocks when asked to stop. With `inelastic`, the
  /// probe intensity at the atoms (spectra) is recorded too, by windowed multislice or by
  /// multislice over the window (microscope_spectra.cpp).
  /// Beam lock held.
  StemResult simulate(const Snapshot& sn, Window& w, const std::vector<Point2>& pos, const std::vector<Detector>& dets,
                      PatternSink* sink, const AcquisitionControl& ctl, Visited& visited,
                      ElementIntensity* inelastic = nullptr, const BlockHook& on_block = {});

  /// Incoherent clean images of the annular detectors at `pos` (an nx × ny raster); maps are
  /// cached per detector, probe, pixel footprint and specimen version. Beam lock held.
  std::map<std::string, Image> incoherent_images(const Snapshot& sn, const std::vector<Point2>& pos, double px, double py);

  static std::string detector_key(const AnnularDetector& a) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s|%a|%a", a.name.c_str(), a.inner_mrad, a.outer_mrad);
    return buf;
  }

  /// After a full-physics frame: the incoherent model at the same positions against its clean
  /// annular signals gives the model's scale for this specimen region and thickness
  /// (calibrate_incoherent), used by later overviews so that zooming out keeps the contrast.
  /// Beam lock held.
  void learn_incoherent_scale(const Snapshot& sn, const std::vector<Point2>& pos, const StemResult& res, double px, double py);

  /// Books the electrons of each position (N·multiplier) into the dose map and applies beam damage.
  /// Beam lock held; takes the state lock.
  void deposit(const std::vector<Point2>& pos, const std::vector<double>& electrons, std::uint64_t call);
  /// A stopped acquisition: deposit() for the positions it exposed (`visited`) only; `pos` and
  /// `electrons` are all of its positions. Beam lock held; takes the state lock.
  void deposit_visited(const std::vector<Point2>& pos, const std::vector<double>& electrons, const Visited& visited, std::uint64_t call);

  /// Both locks held.
  void damage(const std::vector<Point2>& pos, const std::vector<double>& electrons, std::uint64_t call);
};

}  // namespace stemtwin
