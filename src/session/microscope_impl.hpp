#pragma once
// Internal to src/: the Microscope's state and caches (Microscope::Impl), shared by
// microscope.cpp (acquisitions) and microscope_state.cpp (setters, status, dose).
// Locking rules: microscope.hpp, "Threads".
#include "stemtwin/session/microscope.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <omp.h>
#include <list>
#include <mutex>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/incoherent.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/physics/windowed.hpp"
#include "stemtwin/acquisition/ranges.hpp"
#include "stemtwin/core/rng.hpp"
#include "microscope_spectra.hpp"

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
  Window& window_for(const Snapshot& sn, const std::vector<Point2>& pos, bool& hit) {
    double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
    for (const Point2& p : pos) {
      xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x);
      ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
    }
    const double m = margin(sn), snap = std::max(1.0, settings.window_snap_A);
    Window w;
    w.x0 = std::floor((xmin - m) / snap) * snap;
    w.y0 = std::floor((ymin - m) / snap) * snap;
    w.wx = std::ceil((xmax + m - w.x0) / snap) * snap;
    w.wy = std::ceil((ymax + m - w.y0) / snap) * snap;
    // Grow small windows symmetrically (in whole snaps) to the minimum side.
    const double minw = std::ceil(settings.min_window_A / snap) * snap;
    if (w.wx < minw) w.x0 -= std::floor((minw - w.wx) / 2 / snap) * snap, w.wx = minw;
    if (w.wy < minw) w.y0 -= std::floor((minw - w.wy) / 2 / snap) * snap, w.wy = minw;
    w.alpha = sn.stage.alpha_rad;
    w.beta = sn.stage.beta_rad;
    w.energy_eV = sn.optics.probe.energy_eV;
    w.specimen_version = specimen_version;
    for (auto it = cache.begin(); it != cache.end(); ++it)
      if (it->same(w)) {
        cache.splice(cache.begin(), cache, it);  // most recently used first
        hit = true;
        ++hits;
        cached_windows.store(cache.size());
        return cache.front();
      }
    hit = false;
    ++misses;
    {
      // Refuse, before allocating, a window whose transmission functions (complex float per
      // point, per slice, per configuration) would not fit in the memory budget.
      const double points = std::ceil(w.wx / settings.sampling_A) * std::ceil(w.wy / settings.sampling_A);
      const double slices = std::ceil(specimen.structure.cell.z / std::max(settings.potential.slice_thickness_A, 1e-3));
      const double configs = settings.thermal.enabled ? double(std::max<std::size_t>(1, settings.thermal.configurations)) : 1.0;
      const double bytes = points * slices * configs * 8.0;
      const double budget = double(default_memory_budget());
      if (!(bytes <= budget))
        throw std::invalid_argument("the field of view needs a " + std::to_string(int(w.wx)) + " × " + std::to_string(int(w.wy)) +
                                    " Å window: " + std::to_string(int(bytes / (1 << 20))) + " MiB of transmission functions, more than the " +
                                    std::to_string(int(budget / (1 << 20))) + " MiB available; use a smaller field of view or a coarser sampling");
    }
    w.grid = make_grid(w.wx, w.wy, settings.sampling_A, settings.method, settings.prism_interpolation);
    {
      // How many phonon configurations the window's transmission functions hold; they are
      // built on first use (transmissions()).
      const Structure base = world ? thermal_atoms(world_structure(w)) : Structure{};
      const Structure& s = world ? base : specimen.structure;
      w.thermal = std::any_of(s.atoms.begin(), s.atoms.end(), [](const Atom& a) { return a.rms > 0; });
      w.configurations = w.thermal ? std::max<std::size_t>(1, settings.thermal.configurations) : 1;
    }
    cache.push_front(std::move(w));
    trim_cache();
    return cache.front();
  }

  /// A world window's atoms with the session's thermal vibration applied (the first such
  /// window sets the thermal note).
  Structure thermal_atoms(Structure base) {
    apply_thermal_vibration(base, settings.thermal);
    if (thermal_note.empty()) thermal_note = thermal_warning(base, settings.thermal.configurations);
    return base;
  }

  /// At most cache_entries windows, and (thick specimens: a 100 Å world's window is ~0.4 GB
  /// at 0.05 Å) no more than the memory budget in all; the newest (front) is always kept.
  void trim_cache() {
    auto cached_bytes = [&] {
      double b = 0;
      for (const Window& c : cache) b += c.bytes;
      return b;
    };
    while (cache.size() > std::max<std::size_t>(1, settings.cache_entries) ||
           (cache.size() > 1 && cached_bytes() > double(default_memory_budget()))) {
      const void* gone = &cache.back();
      clean_cache.remove_if([&](const CleanEntry& e) { return e.window == gone; });
      cache.pop_back();
    }
    cached_windows.store(cache.size());
  }

  /// The window's transmission functions (one per phonon configuration) and its FFT, built on
  /// first use: windowed multislice builds its own per tile and never needs them (a 40 Å
  /// window of the 100 Å world at 0.05 Å takes ~15–25 s on 2 cores). `w` is the cache's
  /// front (just returned by window_for). Beam lock held.
  void transmissions(Window& w) {
    if (!w.configs.empty()) return;
    if (!w.fft) w.fft = std::make_unique<Fft2>(w.grid, FftPlanning::Wisdom);  // measured once per machine and size, reproducible
    // Thermal displacements belong to the specimen's atoms, not to the window: displace the
    // whole specimen per configuration (stream keyed by the atom's index in the specimen),
    // then cut the window, so every window and every periodic image agree on each atom.
    // A world's window: its atoms, made now (world.hpp); thermal displacements are keyed by
    // the atom's index in the window, so they are reproducible per window.
    const bool thermal = w.thermal;
    const Structure base = world ? thermal_atoms(world_structure(w)) : Structure{};
    for (std::size_t c = 0; c < w.configurations; ++c) {
      const Structure local = world ? (thermal ? displace_atoms(base, settings.seed, c) : base)
                                    : extract(w, thermal ? displace_atoms(specimen.structure, settings.seed, c) : specimen.structure);
      w.configs.push_back(transmission_functions(build_potential(local, w.grid, settings.potential), w.energy_eV, *w.fft));
    }
    w.bytes = double(w.grid.size()) * double(w.configs.front().slices.size()) * double(w.configs.size()) * 8.0;
    trim_cache();
  }

  /// Atoms of the (periodic) specimen `s` inside the window, shifted to the window's origin.
  static Structure extract(const Window& w, const Structure& s) {
    Structure out;
    out.cell = {w.wx, w.wy, s.cell.z};
    for (const Atom& a : s.atoms) {
      // Every periodic image of the atom that falls inside the window.
      const double fx0 = std::ceil((w.x0 - a.x) / s.cell.x), fy0 = std::ceil((w.y0 - a.y) / s.cell.y);
      for (double ix = fx0; a.x + ix * s.cell.x < w.x0 + w.wx; ++ix)
        for (double iy = fy0; a.y + iy * s.cell.y < w.y0 + w.wy; ++iy) {
          Atom b = a;
          b.x = a.x + ix * s.cell.x - w.x0;
          b.y = a.y + iy * s.cell.y - w.y0;
          out.atoms.push_back(b);
        }
    }
    if (w.alpha != 0 || w.beta != 0) tilt(out, w.beta * 1e3, w.alpha * 1e3);  // about x: alpha tilts y
    return out;
  }

  /// The static atoms of a window, shifted to its origin: the world's atoms when the session
  /// has a world, else the periodic specimen's. Every path that needs the window's atoms
  /// (windowed multislice, spectra) takes them here, so none can read the wrong specimen.
  Structure window_atoms_of(const Window& w) const { return world ? world_structure(w) : extract(w, specimen.structure); }

  /// The atoms the spectrometer models read their composition and thickness from, before a
  /// window exists (settings checks): the specimen, or on a world the atoms of a 20 Å square at
  /// `near` (at the world's centre where that is vacuum).
  Structure spectra_check_specimen(Point2 near) const;

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
                             const AcquisitionControl& ctl, std::size_t& simulated) {
    const std::string key = physics_key(sn.effective_probe(), dets);
    for (auto it = clean_cache.begin(); it != clean_cache.end(); ++it)
      if (it->window == &w && it->specimen_version == specimen_version && it->key == key && it->positions.size() == pos.size() &&
          std::equal(pos.begin(), pos.end(), it->positions.begin(), [](Point2 a, Point2 b) { return a.x == b.x && a.y == b.y; })) {
        clean_cache.splice(clean_cache.begin(), clean_cache, it);
        hit = true;
        simulated = pos.size();
        return clean_cache.front().result;
      }
    hit = false;
    StemResult r = simulate(sn, w, pos, dets, nullptr, ctl, simulated);
    clean_cache.push_front({&w, specimen_version, key, pos, r});
    while (clean_cache.size() > 4) clean_cache.pop_back();
    return r;
  }

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
                                    const std::vector<Detector>& dets, FrameMethod& frame) {
    Structure cell_only;  // plan_auto reads the thickness (and the cell for its window plan)
    cell_only.cell = {w.wx, w.wy, specimen.structure.cell.z};
    StemSettings ast;
    ast.potential = settings.potential;
    ast.budget = settings.budget;
    ast.phonon_configurations = w.configs.size();
    const AutoPlan plan = plan_auto(cell_only, w.grid, probe, local, dets, ast, /*no windowed candidate*/ true);
    AutoChoice c = plan.choice;
    std::vector<SMatrix>* S = nullptr;
    if (plan.calibrate) {
      const std::string key = physics_key(probe, dets);
      auto it = w.auto_choices.find(key);
      if (it == w.auto_choices.end()) {
        std::vector<SMatrix> accepted;
        std::optional<StemResult> reference;
        calibrate_prism(w.configs, *w.fft, probe, local, dets, ast, plan.prism_factors, false, c, accepted, reference);
        if (c.method == Method::Prism) w.auto_smatrices[key] = std::move(accepted);
        it = w.auto_choices.emplace(key, c).first;
      } else {
        c = it->second;
        c.from_cache = true;
      }
      if (c.method == Method::Prism) S = &w.auto_smatrices[key];
    }
    frame.method = c.method == Method::Prism ? "prism" : "multislice";
    frame.interpolation = c.method == Method::Prism ? c.interpolation : 1;
    frame.calibrated = c.calibrated;
    frame.mean_error = c.measured_mean_error;
    frame.correlation = c.measured_correlation;
    return S;
  }

  /// Clean signals at `pos`, simulated in blocks of positions (each position's signals do not
  /// depend on the others, and the engines are bit-identical for any split, so blocks change
  /// nothing but how often cancellation is looked at). `simulated` counts positions done;
  /// throws AcquisitionCancelled between blocks when asked to stop. With `inelastic`, the
  /// probe intensity at the atoms (spectra) is recorded too, by multislice (microscope_spectra.cpp).
  /// Beam lock held.
  StemResult simulate(const Snapshot& sn, Window& w, const std::vector<Point2>& pos, const std::vector<Detector>& dets,
                      PatternSink* sink, const AcquisitionControl& ctl, std::size_t& simulated,
                      ElementIntensity* inelastic = nullptr) {
    std::vector<Point2> local(pos.size());
    for (std::size_t i = 0; i < pos.size(); ++i) local[i] = {pos[i].x - w.x0, pos[i].y - w.y0};
    StemSettings st;
    st.potential = settings.potential;
    st.pattern_block = 64;
    const ProbeOptics probe = sn.effective_probe();
    std::vector<SMatrix>* S = nullptr;
    std::optional<SpectraRecording> rec;
    if (inelastic) {
      Structure atoms = static_atoms(window_atoms_of(w));
      const std::vector<int> elements = elements_of(atoms);
      rec.emplace(std::move(atoms), settings.seed, inelastic_settings(sn.spectrometers, elements), *inelastic);
    }
    // Method::Windowed (windowed.hpp): each tile of positions on a window of its own around the
    // probe instead of the whole simulated window — for a static specimen and detectors that
    // are not pixelated (no pattern stream, no spectra); its potentials are built per tile, so
    // the window's own transmission functions are never built. Every other path needs them.
    const bool windowed = settings.method == Method::Windowed && !sink && !inelastic && w.configurations == 1 &&
                          std::none_of(dets.begin(), dets.end(), [](const Detector& d) { return std::holds_alternative<PixelatedDetector>(d); });
    if (!windowed) transmissions(w);
    // Spectra need the wave inside the specimen: whole-window multislice whatever the method.
    FrameMethod frame;
    if (settings.method == Method::Prism && !inelastic) {
      const std::size_t f = std::max<std::size_t>(1, settings.prism_interpolation);
      S = &w.smatrices[probe.semiangle_mrad];
      if (S->empty())
        for (const Transmission& t : w.configs) S->push_back(build_smatrix(t, probe.semiangle_mrad, f, f, {}, *w.fft));
      frame.method = "prism";
      frame.interpolation = f;
    } else if (settings.method == Method::Auto && !inelastic) {
      S = auto_method(w, probe, local, dets, frame);
    }
    if (windowed) frame.method = "windowed";
    {
      std::lock_guard<std::mutex> lock(state);
      last_frame = frame;
    }
    std::optional<Structure> window_atoms;
    if (windowed) window_atoms = window_atoms_of(w);
    // Blocks of 4 positions per thread: ~1 s of work each for a default window at 0.05 Å.
    // Windowed: blocks of whole tiles of the frame's own tiling (the tile side planned for
    // all its positions, then fixed for every block), at least 256 positions each and
    // independent of the thread count (the same bytes on any); so every tile's window and
    // potential is built once per frame (tiles over 1024 positions in parts of 1024, so a
    // cancelled scan stops after at most ~1024 positions). Blocks cut in scan order split
    // each tile into strips of rows that each built the tile's potential again.
    const std::size_t block = std::max<std::size_t>(8, 4 * std::size_t(omp_get_max_threads()));
    std::vector<std::size_t> order, starts;  // positions in simulation order; where each block starts
    if (windowed) {
      st.window.tile_A = plan_window(w.grid, probe, window_atoms->cell.z, local, st).tile_A;
      for (const auto& tile : window_tiles(w.grid, local, st.window.tile_A))
        for (std::size_t i = 0; i < tile.size(); ++i) {  // a tile over 1024 positions in parts (cancellation)
          if (starts.empty() || (i == 0 && order.size() - starts.back() >= 256) || (i > 0 && i % 1024 == 0))
            starts.push_back(order.size());
          order.push_back(tile[i]);
        }
    } else {
      for (std::size_t i = 0; i < local.size(); ++i) order.push_back(i);
      for (std::size_t first = 0; first < local.size(); first += block) starts.push_back(first);
    }
    StemResult all;
    simulated = 0;
    total_positions.store(pos.size());
    for (std::size_t b = 0; b < starts.size(); ++b) {
      const std::size_t first = starts[b], last = b + 1 < starts.size() ? starts[b + 1] : local.size();
      if (stop_requested(sn, ctl)) throw AcquisitionCancelled("acquisition cancelled after " + std::to_string(first) + " of " +
                                                              std::to_string(local.size()) + " positions");
      std::vector<Point2> part;
      for (std::size_t i = first; i < last; ++i) part.push_back(local[order[i]]);
      // Windowed blocks are large (whole tiles): progress every 64 positions inside them (the
      // engine calls this on one thread; an exception stops it after those positions).
      if (windowed)
        st.progress = [&, first](std::size_t k, std::size_t) {
          simulated = first + k;  // visited, whatever happens next (dose on a cancel)
          done_positions.store(simulated);
          if (stop_requested(sn, ctl)) throw AcquisitionCancelled("acquisition cancelled after " + std::to_string(first + k) + " of " +
                                                                  std::to_string(local.size()) + " positions");
        };
      OffsetSink os;
      os.inner = sink;
      os.offset = first;
      PatternSink* s = sink ? &os : nullptr;
      StemResult r = S ? scan_prism(*S, probe, part, dets, st, s)
                       : window_atoms ? simulate_windowed(*window_atoms, w.grid, probe, part, dets, st)
                       : rec ? rec->scan(w.configs, probe, part, dets, st, *w.fft, s)
                             : scan_multislice(w.configs, probe, part, dets, st, *w.fft, s);
      if (first == 0) {
        all = std::move(r);
      } else {
        for (std::size_t k = 0; k < all.signals.size(); ++k)
          all.signals[k].values.insert(all.signals[k].values.end(), r.signals[k].values.begin(), r.signals[k].values.end());
      }
      simulated = last;
      done_positions.store(simulated);
      if (ctl.progress) ctl.progress(simulated, local.size());
    }
    if (windowed)  // back to the positions' order
      for (DetectorSignal& sig : all.signals) {
        const std::size_t b = sig.values.size() / local.size();
        std::vector<double> v(sig.values.size());
        for (std::size_t i = 0; i < local.size(); ++i) std::copy_n(sig.values.begin() + long(i * b), b, v.begin() + long(order[i] * b));
        sig.values = std::move(v);
      }
    return all;
  }

  /// Incoherent clean images of the annular detectors at `pos` (an nx × ny raster); maps are
  /// cached per detector, probe, pixel footprint and specimen version. Beam lock held.
  std::map<std::string, Image> incoherent_images(const Snapshot& sn, const std::vector<Point2>& pos, double px, double py) {
    if (world) return world_incoherent_images(sn, pos, px, py);
    std::map<std::string, Image> out;
    const ProbeOptics probe = sn.effective_probe();
    for (const Detector& d : sn.detectors) {
      const auto& a = std::get<AnnularDetector>(d);
      char buf[64];
      std::snprintf(buf, sizeof buf, "|%a,%a,%a", px, py, probe.source_size_A);
      const std::string key = physics_key(probe, {d}) + buf;
      auto it = std::find_if(maps.begin(), maps.end(), [&](const MapEntry& e) { return e.key == key && e.specimen_version == specimen_version; });
      if (it == maps.end()) {
        maps.push_front({key, specimen_version, incoherent_map(specimen.structure, probe, a, px, py)});
        while (maps.size() > 16) maps.pop_back();
        it = maps.begin();
      }
      out[a.name] = it->map.sample(pos, sn.scan.nx, sn.scan.ny);
    }
    return out;
  }

  static std::string detector_key(const AnnularDetector& a) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s|%a|%a", a.name.c_str(), a.inner_mrad, a.outer_mrad);
    return buf;
  }

  /// After a full-physics frame: the incoherent model at the same positions against its clean
  /// annular signals gives the model's scale for this specimen region and thickness
  /// (calibrate_incoherent), used by later overviews so that zooming out keeps the contrast.
  /// Beam lock held.
  void learn_incoherent_scale(const Snapshot& sn, const std::vector<Point2>& pos, const StemResult& res, double px, double py) {
    if (settings.incoherent_above_A <= 0) return;
    for (const Detector& d : sn.detectors) {
      const auto* a = std::get_if<AnnularDetector>(&d);
      if (!a || a->azimuth_deg) continue;
      Snapshot one = sn;
      one.detectors = {d};
      const Image model = incoherent_images(one, pos, px, py).at(a->name);
      const Image reference = res.image(a->name, sn.scan.nx, sn.scan.ny);
      if (!(model.mean() > 0) || !(reference.mean() > 0)) continue;
      incoherent_scale[detector_key(*a)] = {calibrate_incoherent(model, reference).scale, sn.call};
    }
  }

  /// Books the electrons of each position (N·multiplier) into the dose map and applies beam damage.
  /// Beam lock held; takes the state lock.
  void deposit(const std::vector<Point2>& pos, const std::vector<double>& electrons, std::uint64_t call) {
    std::lock_guard<std::mutex> lock(state);
    const Cell& c = specimen.structure.cell;
    double sum = 0;
    if (world) {  // not periodic: electrons outside the world count in the total only
      const double fx = double(world_dose.nx) / c.x, fy = double(world_dose.ny) / c.y;
      for (std::size_t i = 0; i < pos.size(); ++i) {
        sum += electrons[i];
        const double X = pos[i].x * fx, Y = pos[i].y * fy;
        if (X >= 0 && Y >= 0 && X < double(world_dose.nx) && Y < double(world_dose.ny)) world_dose(std::size_t(Y), std::size_t(X)) += electrons[i];
      }
    }
    for (std::size_t i = 0; i < pos.size() && !world; ++i) {
      const double x = pos[i].x - std::floor(pos[i].x / c.x) * c.x, y = pos[i].y - std::floor(pos[i].y / c.y) * c.y;
      const auto ix = std::min(dose.nx - 1, std::size_t(x / kDoseMapPixel_A));
      const auto iy = std::min(dose.ny - 1, std::size_t(y / kDoseMapPixel_A));
      dose(iy, ix) += electrons[i];
      sum += electrons[i];
    }
    total_electrons += sum;
    if (optics.current_pA > 0) beam_time_s += sum / (optics.current_pA * 1e-12 / kElementaryCharge_C);
    if (settings.damage.enabled) damage(pos, electrons, call);
  }

  /// Both locks held.
  void damage(const std::vector<Point2>& pos, const std::vector<double>& electrons, std::uint64_t call) {
    const DamageSettings& d = settings.damage;
    Structure& s = specimen.structure;
    const double r2 = d.radius_A * d.radius_A, area = kPi * r2;
    std::vector<double> local_dose(s.atoms.size(), 0.0);
    for (std::size_t i = 0; i < pos.size(); ++i)
      for (std::size_t a = 0; a < s.atoms.size(); ++a) {
        double dx = s.atoms[a].x - pos[i].x, dy = s.atoms[a].y - pos[i].y;
        dx -= std::round(dx / s.cell.x) * s.cell.x;
        dy -= std::round(dy / s.cell.y) * s.cell.y;
        if (dx * dx + dy * dy <= r2) local_dose[a] += electrons[i] / area;
      }
    bool changed = false;
    std::vector<Atom> kept;
    std::vector<int> kept_class;
    for (std::size_t a = 0; a < s.atoms.size(); ++a) {
      Atom atom = s.atoms[a];
      bool keep = true;
      if (local_dose[a] > 0) {
        const double sigma = d.cross_section_A2 * std::pow(double(d.Z_ref) / double(atom.Z), d.exponent);
        Rng rng(settings.seed, RngPurpose::Damage, call + 1, a);  // call + 1: the counter after this call, as before
        if (rng.uniform() < 1.0 - std::exp(-sigma * local_dose[a])) {
          changed = true;
          if (rng.uniform() < d.removal_fraction) {
            keep = false;
            specimen.vacancies.push_back(atom);
            ++removed;
          } else {
            atom.x += d.displacement_A * rng.normal();
            atom.y += d.displacement_A * rng.normal();
            ++displaced;
          }
        }
      }
      if (keep) {
        kept.push_back(atom);
        kept_class.push_back(specimen.atom_class[a]);
      }
    }
    if (changed) {
      s.atoms = std::move(kept);
      specimen.atom_class = std::move(kept_class);
      ++specimen_version;
      cache.clear();  // every window may hold a changed atom
      cached_windows.store(0);
      clean_cache.clear();
      maps.clear();
    }
  }
};

}  // namespace stemtwin
