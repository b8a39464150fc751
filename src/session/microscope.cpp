#include "stemtwin/session/microscope.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <list>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/acquisition/ranges.hpp"
#include "stemtwin/core/rng.hpp"

namespace stemtwin {
namespace {

constexpr double kDoseMapPixel_A = 0.5;  // resolution of the stored dose map

/// A cached window: the specimen region it covers and its transmission functions (one per
/// phonon configuration), plus PRISM S-matrices keyed by convergence angle.
struct Window {
  double x0 = 0, y0 = 0, wx = 0, wy = 0;  // Å, specimen frame
  double alpha = 0, beta = 0;
  double energy_eV = 0;
  std::uint64_t specimen_version = 0;
  Grid grid;
  std::unique_ptr<Fft2> fft;
  std::vector<Transmission> configs;
  std::map<double, std::vector<SMatrix>> smatrices;
  bool same(const Window& o) const {
    return x0 == o.x0 && y0 == o.y0 && wx == o.wx && wy == o.wy && alpha == o.alpha && beta == o.beta &&
           energy_eV == o.energy_eV && specimen_version == o.specimen_version;
  }
};

double specimen_thickness(const Structure& s) { return s.cell.z; }

/// Exact textual key of everything the clean signals depend on besides the window and the
/// positions: probe optics and detectors (hex floats, so equal keys mean equal numbers).
std::string physics_key(const ProbeOptics& p, const std::vector<Detector>& dets) {
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

}  // namespace

struct Microscope::Impl {
  Specimen specimen;
  MicroscopeSettings settings;
  StagePosition stage;
  Optics optics;
  std::vector<Detector> detectors = {AnnularDetector{"HAADF", 70, 160}, AnnularDetector{"ADF", 30, 70},
                                     AnnularDetector{"ABF", 10, 20}, AnnularDetector{"BF", 0, 10}};
  ScanSettings scan;
  AcquisitionSettings acq;
  std::uint64_t calls = 0;
  std::uint64_t specimen_version = 0;
  double total_electrons = 0;
  Image dose;  // electrons per dose-map pixel over the specimen cell
  std::list<Window> cache;
  std::list<CleanEntry> clean_cache;
  std::size_t hits = 0, misses = 0, removed = 0, displaced = 0;
  std::string thermal_note;  // thermal_warning() of the settings ("" when none)

  Impl(Specimen s, MicroscopeSettings st) : specimen(std::move(s)), settings(st) {
    check_specimen(specimen);
    apply_thermal_vibration(specimen.structure, settings.thermal);
    thermal_note = thermal_warning(specimen.structure, settings.thermal.configurations);
    const Cell& c = specimen.structure.cell;
    if (!(c.x > 0 && c.y > 0 && c.z > 0)) throw std::invalid_argument("Microscope: the specimen needs a cell with positive extent");
    if (!(settings.sampling_A > 0)) throw std::invalid_argument("Microscope: sampling must be > 0 Å");
    dose = Image(std::max<std::size_t>(1, std::size_t(std::ceil(c.x / kDoseMapPixel_A))),
                 std::max<std::size_t>(1, std::size_t(std::ceil(c.y / kDoseMapPixel_A))));
    stage.x_A = c.x / 2;
    stage.y_A = c.y / 2;
    scan.fov_x_A = std::min(scan.fov_x_A, c.x);
    scan.fov_y_A = std::min(scan.fov_y_A, c.y);
  }

  double margin() const {
    if (settings.window_margin_A > 0) return settings.window_margin_A;
    // Probe spread: the geometric cone over the thickness plus a few probe widths.
    const double alpha = optics.probe.semiangle_mrad * 1e-3;
    return 4.0 + specimen_thickness(specimen.structure) * std::tan(alpha);
  }

  ProbeOptics effective_probe() const {
    ProbeOptics p = optics.probe;
    p.aberrations.C[0] -= stage.z_A;  // defocus = −C10: raising the specimen by z puts the fixed crossover z deeper
    return p;
  }

  /// The window covering the given positions (plus margin), snapped to the cache lattice.
  Window& window_for(const std::vector<Point2>& pos, bool& hit) {
    double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
    for (const Point2& p : pos) {
      xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x);
      ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
    }
    const double m = margin(), snap = std::max(1.0, settings.window_snap_A);
    Window w;
    w.x0 = std::floor((xmin - m) / snap) * snap;
    w.y0 = std::floor((ymin - m) / snap) * snap;
    w.wx = std::ceil((xmax + m - w.x0) / snap) * snap;
    w.wy = std::ceil((ymax + m - w.y0) / snap) * snap;
    // Grow small windows symmetrically (in whole snaps) to the minimum side.
    const double minw = std::ceil(settings.min_window_A / snap) * snap;
    if (w.wx < minw) w.x0 -= std::floor((minw - w.wx) / 2 / snap) * snap, w.wx = minw;
    if (w.wy < minw) w.y0 -= std::floor((minw - w.wy) / 2 / snap) * snap, w.wy = minw;
    w.alpha = stage.alpha_rad;
    w.beta = stage.beta_rad;
    w.energy_eV = optics.probe.energy_eV;
    w.specimen_version = specimen_version;
    for (auto it = cache.begin(); it != cache.end(); ++it)
      if (it->same(w)) {
        cache.splice(cache.begin(), cache, it);  // most recently used first
        hit = true;
        ++hits;
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
    w.fft = std::make_unique<Fft2>(w.grid, FftPlanning::Wisdom);  // measured once per machine and size, reproducible
    // Thermal displacements belong to the specimen's atoms, not to the window: displace the
    // whole specimen per configuration (stream keyed by the atom's index in the specimen),
    // then cut the window, so every window and every periodic image agree on each atom.
    const Structure& s = specimen.structure;
    const bool thermal = std::any_of(s.atoms.begin(), s.atoms.end(), [](const Atom& a) { return a.rms > 0; });
    const std::size_t nconf = thermal ? std::max<std::size_t>(1, settings.thermal.configurations) : 1;
    for (std::size_t c = 0; c < nconf; ++c) {
      const Structure local = extract(w, thermal ? displace_atoms(s, settings.seed, c) : s);
      w.configs.push_back(transmission_functions(build_potential(local, w.grid, settings.potential), w.energy_eV, *w.fft));
    }
    cache.push_front(std::move(w));
    while (cache.size() > std::max<std::size_t>(1, settings.cache_entries)) {
      const void* gone = &cache.back();
      clean_cache.remove_if([&](const CleanEntry& e) { return e.window == gone; });
      cache.pop_back();
    }
    return cache.front();
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

  void check_work(std::size_t positions) const {
    if (positions == 0) throw std::invalid_argument("nothing to acquire: zero positions");
    if (positions > settings.max_positions_per_call)
      throw std::invalid_argument("acquisition of " + std::to_string(positions) + " positions exceeds the limit of " +
                                  std::to_string(settings.max_positions_per_call) + " per call");
  }

  /// Clean signals for the positions: from the clean cache when the same acquisition was
  /// simulated before (no 4D sink involved), else computed.
  StemResult simulate_cached(Window& w, const std::vector<Point2>& pos, const std::vector<Detector>& dets, bool& hit) {
    const std::string key = physics_key(effective_probe(), dets);
    for (auto it = clean_cache.begin(); it != clean_cache.end(); ++it)
      if (it->window == &w && it->specimen_version == specimen_version && it->key == key && it->positions.size() == pos.size() &&
          std::equal(pos.begin(), pos.end(), it->positions.begin(), [](Point2 a, Point2 b) { return a.x == b.x && a.y == b.y; })) {
        clean_cache.splice(clean_cache.begin(), clean_cache, it);
        hit = true;
        return clean_cache.front().result;
      }
    hit = false;
    StemResult r = simulate(w, pos, dets, nullptr);
    clean_cache.push_front({&w, specimen_version, key, pos, r});
    while (clean_cache.size() > 4) clean_cache.pop_back();
    return r;
  }

  StemResult simulate(Window& w, const std::vector<Point2>& pos, const std::vector<Detector>& dets, PatternSink* sink) {
    std::vector<Point2> local(pos.size());
    for (std::size_t i = 0; i < pos.size(); ++i) local[i] = {pos[i].x - w.x0, pos[i].y - w.y0};
    StemSettings st;
    st.potential = settings.potential;
    st.pattern_block = 64;
    const ProbeOptics probe = effective_probe();
    if (settings.method == Method::Prism) {
      const std::size_t f = std::max<std::size_t>(1, settings.prism_interpolation);
      auto& S = w.smatrices[probe.semiangle_mrad];
      if (S.empty())
        for (const Transmission& t : w.configs) S.push_back(build_smatrix(t, probe.semiangle_mrad, f, f, {}, *w.fft));
      return scan_prism(S, probe, local, dets, st, sink);
    }
    return scan_multislice(w.configs, probe, local, dets, st, *w.fft, sink);
  }

  /// Books the electrons of each position (N·multiplier) into the dose map and applies beam damage.
  void deposit(const std::vector<Point2>& pos, const std::vector<double>& electrons) {
    const Cell& c = specimen.structure.cell;
    double sum = 0;
    for (std::size_t i = 0; i < pos.size(); ++i) {
      const double x = pos[i].x - std::floor(pos[i].x / c.x) * c.x, y = pos[i].y - std::floor(pos[i].y / c.y) * c.y;
      const auto ix = std::min(dose.nx - 1, std::size_t(x / kDoseMapPixel_A));
      const auto iy = std::min(dose.ny - 1, std::size_t(y / kDoseMapPixel_A));
      dose(iy, ix) += electrons[i];
      sum += electrons[i];
    }
    total_electrons += sum;
    if (settings.damage.enabled) damage(pos, electrons);
  }

  void damage(const std::vector<Point2>& pos, const std::vector<double>& electrons) {
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
        Rng rng(settings.seed, RngPurpose::Damage, calls, a);
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
      clean_cache.clear();
    }
  }
};

Microscope::Microscope(Specimen specimen, MicroscopeSettings settings)
    : impl_(std::make_unique<Impl>(std::move(specimen), settings)) {}
Microscope::~Microscope() = default;
Microscope::Microscope(Microscope&&) noexcept = default;
Microscope& Microscope::operator=(Microscope&&) noexcept = default;

void Microscope::move_stage(const StagePosition& p) {
  check_range(ranges::kStageX, p.x_A);
  check_range(ranges::kStageY, p.y_A);
  check_range(ranges::kStageZ, p.z_A);
  check_range(ranges::kStageTiltAlpha, p.alpha_rad);
  check_range(ranges::kStageTiltBeta, p.beta_rad);
  impl_->stage = p;
}
void Microscope::move_stage_relative(double dx, double dy, double dz, double da, double db) {
  StagePosition p = impl_->stage;
  p.x_A += dx, p.y_A += dy, p.z_A += dz, p.alpha_rad += da, p.beta_rad += db;
  move_stage(p);
}
const StagePosition& Microscope::stage() const { return impl_->stage; }

void Microscope::set_optics(const Optics& o) {
  const ProbeOptics& p = o.probe;
  check_range(ranges::kEnergy, p.energy_eV);
  check_range(ranges::kConvergence, p.semiangle_mrad);
  check_range(ranges::kCurrent, o.current_pA);
  check_range(ranges::kFocalSpread, p.focal_spread_A);
  check_range(ranges::kFocalSpreadPoints, double(p.focal_spread_points));
  check_range(ranges::kSourceSize, p.source_size_A);
  for (std::size_t i = 0; i < Aberrations::kOrders.size(); ++i) {
    const std::string nm = std::to_string(Aberrations::kOrders[i][0]) + std::to_string(Aberrations::kOrders[i][1]);
    check_range(ranges::kAberration, p.aberrations.C[i], "aberration C" + nm + (nm == "10" ? " (−defocus)" : ""));
    if (Aberrations::kOrders[i][1] != 0) check_range(ranges::kAberrationAngle, p.aberrations.phi[i], "aberration angle phi" + nm);
  }
  impl_->optics = o;
}
const Optics& Microscope::optics() const { return impl_->optics; }
void Microscope::set_aberration(const std::string& name, double value) {
  Optics o = impl_->optics;
  o.probe.aberrations.set(name, value);
  set_optics(o);  // the same ranges as every other way in
}
void Microscope::set_defocus(double d) { set_aberration("defocus", d); }
void Microscope::set_current(double pA) {
  Optics o = impl_->optics;
  o.current_pA = pA;
  set_optics(o);
}
void Microscope::set_convergence(double mrad) {
  Optics o = impl_->optics;
  o.probe.semiangle_mrad = mrad;
  set_optics(o);
}

void Microscope::set_detectors(std::vector<Detector> d) {
  if (d.empty()) throw std::invalid_argument("at least one detector is needed");
  impl_->detectors = std::move(d);
}
const std::vector<Detector>& Microscope::detectors() const { return impl_->detectors; }

void Microscope::set_scan(const ScanSettings& s) {
  check_range(ranges::kFieldOfView, s.fov_x_A, "field of view x (fov_x_A)");
  check_range(ranges::kFieldOfView, s.fov_y_A, "field of view y (fov_y_A)");
  // Each side is bounded before the product, which could otherwise wrap around.
  const std::size_t max = impl_->settings.max_positions_per_call;
  if (s.nx == 0 || s.ny == 0 || s.nx > max || s.ny > max || s.nx * s.ny > max)
    throw std::invalid_argument("scan of " + std::to_string(s.nx) + " × " + std::to_string(s.ny) +
                                " pixels: needs at least 1 × 1 and at most " + std::to_string(max) +
                                " pixels in all (max_positions_per_call)");
  check_range(ranges::kScanRotation, s.rotation_deg);
  check_range(ranges::kDwell, s.dwell_us);
  check_range(ranges::kFlyback, s.flyback_us);
  impl_->scan = s;
}
const ScanSettings& Microscope::scan_settings() const { return impl_->scan; }

void Microscope::set_acquisition(const AcquisitionSettings& a) {
  a.validate();
  impl_->acq = a;
}
const AcquisitionSettings& Microscope::acquisition() const { return impl_->acq; }

ScanResult Microscope::scan() {
  Impl& m = *impl_;
  const auto t0 = std::chrono::steady_clock::now();
  const ScanSettings& sc = m.scan;
  m.check_work(sc.nx * sc.ny);
  AcquisitionSettings acq = m.acq;
  const double sx = sc.fov_x_A / double(sc.nx), sy = sc.fov_y_A / double(sc.ny);
  const Point2 start{m.stage.x_A - 0.5 * double(sc.nx - 1) * sx, m.stage.y_A - 0.5 * double(sc.ny - 1) * sy};
  acq.scan = ScanGeometry::from_fov(start, sc.fov_x_A, sc.fov_y_A, sc.nx, sc.ny, sc.rotation_deg, sc.dwell_us, sc.flyback_us);
  acq.beam_current_pA = m.optics.current_pA;
  const std::uint64_t call = m.calls++;
  const DistortedScan ds = plan_scan(acq, m.settings.seed, call);

  ScanResult r;
  Window& w = m.window_for(ds.positions_A, r.window_cache_hit);
  const StemResult res = m.simulate_cached(w, ds.positions_A, m.detectors, r.signal_cache_hit);
  r.warnings = res.warnings;
  if (!m.thermal_note.empty()) r.warnings.push_back(m.thermal_note);
  const NoiseStream base{m.settings.seed, call, 0};
  std::uint64_t channel = 0;
  auto add = [&](const std::string& name, Image clean, bool acquire) {
    if (m.optics.probe.source_size_A > 0) clean = apply_source_size(clean, sx, sy, m.optics.probe.source_size_A);
    NoiseStream ns = base;
    ns.channel = channel++;
    r.images[name] = acquire ? acquire_annular(clean, acq, ds, ns) : clean;
    r.clean[name] = std::move(clean);
  };
  for (const Detector& d : m.detectors) {
    const std::string& name = detector_name(d);
    if (std::holds_alternative<AnnularDetector>(d)) add(name, res.image(name, sc.nx, sc.ny), true);
    else if (std::holds_alternative<SegmentedDetector>(d))
      for (std::size_t b = 0; b < res.signal(name).bins; ++b) add(name + "_" + std::to_string(b), res.image(name, sc.nx, sc.ny, b), true);
    else if (std::holds_alternative<ComDetector>(d)) {
      // COM images are clean (mrad); their integral gives iDPC.
      Image cx = res.image(name, sc.nx, sc.ny, 0), cy = res.image(name, sc.nx, sc.ny, 1);
      add(name + "_idpc", integrate_com(cx, cy, sx, sy), false);
      add(name + "_x", std::move(cx), false);
      add(name + "_y", std::move(cy), false);
    }
  }
  r.scan = sc;
  r.stage = m.stage;
  r.optics = m.optics;
  r.positions_A = ds.positions_A;
  r.electrons_per_position = acq.electrons_per_position();
  r.dose_e_per_A2 = dose_report(acq, ds).dose_e_per_A2;
  r.call = call;
  std::vector<double> electrons(ds.positions_A.size());
  for (std::size_t i = 0; i < electrons.size(); ++i) electrons[i] = r.electrons_per_position * ds.dose_multiplier[i];
  m.deposit(ds.positions_A, electrons);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

namespace {
struct CaptureSink : PatternSink {
  std::vector<float> data;
  std::size_t ny = 0, nx = 0;
  void write(const std::string&, std::size_t, std::size_t count, std::size_t py, std::size_t px, const float* p) override {
    ny = py, nx = px;
    data.insert(data.end(), p, p + count * py * px);
  }
};
}  // namespace

std::vector<ProbeResult> Microscope::scan_points(const std::vector<Point2>& points, double dwell_us) {
  Impl& m = *impl_;
  m.check_work(points.size());
  check_range(ranges::kDwell, dwell_us);
  for (const Point2& p : points) check_range(ranges::kProbeX, p.x), check_range(ranges::kProbeY, p.y);
  const std::uint64_t call = m.calls++;
  // One pattern detector: the user's pixelated detector if any, else the whole pattern.
  std::vector<Detector> dets;
  const PixelatedDetector* pix = nullptr;
  for (const Detector& d : m.detectors) {
    if (const auto* p = std::get_if<PixelatedDetector>(&d)) {
      if (!pix) pix = p, dets.push_back(d);
    } else {
      dets.push_back(d);
    }
  }
  if (!pix) dets.push_back(PixelatedDetector{"diffraction", 0.0, 1});
  bool hit = false;
  Window& w = m.window_for(points, hit);
  CaptureSink sink;
  const StemResult res = m.simulate(w, points, dets, &sink);
  const double lambda = wavelength_A(m.optics.probe.energy_eV);
  const std::size_t bin = pix ? pix->bin : 1;
  const double electrons = electrons_per_position(m.optics.current_pA, dwell_us);
  // The pattern's read-out through the camera model, one "scan" of the points.
  AcquisitionSettings acq = m.acq;
  acq.beam_current_pA = m.optics.current_pA;
  acq.scan = ScanGeometry::from_fov({0, 0}, 1.0, 1.0, points.size(), 1, 0, dwell_us, 0);
  DistortedScan ds;
  ds.nx = points.size();
  ds.ny = 1;
  ds.positions_A = points;
  ds.dose_multiplier.assign(points.size(), 1.0);
  ds.time_s.assign(points.size(), 0.0);
  for (std::size_t i = 0; i < points.size(); ++i) ds.time_s[i] = double(i) * dwell_us * 1e-6;
  acquire_4d(sink.data, sink.nx, sink.ny, acq, ds, NoiseStream{m.settings.seed, call, 1000});
  std::vector<ProbeResult> out(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    ProbeResult& p = out[i];
    p.position_A = points[i];
    p.call = call;
    p.electrons = electrons;
    p.pattern_nx = sink.nx;
    p.pattern_ny = sink.ny;
    p.pattern_pixel_mrad_x = double(bin) * lambda / w.grid.lx * 1e3;
    p.pattern_pixel_mrad_y = double(bin) * lambda / w.grid.ly * 1e3;
    p.pattern.assign(sink.data.begin() + long(i * sink.nx * sink.ny), sink.data.begin() + long((i + 1) * sink.nx * sink.ny));
    for (const auto& s : res.signals) {
      if (s.bins == 1) p.signals[s.name] = s.values[i];
      else if (s.bins == 2 && s.name.size()) {
        p.signals[s.name + "_x"] = s.values[2 * i];
        p.signals[s.name + "_y"] = s.values[2 * i + 1];
      }
    }
  }
  m.deposit(points, std::vector<double>(points.size(), electrons));
  return out;
}

ProbeResult Microscope::probe_at(double x, double y, double dwell_us) { return scan_points({{x, y}}, dwell_us).front(); }

MicroscopeStatus Microscope::status() const {
  const Impl& m = *impl_;
  MicroscopeStatus s;
  s.stage = m.stage;
  s.optics = m.optics;
  s.scan = m.scan;
  for (const Detector& d : m.detectors) s.detectors.push_back(detector_name(d));
  s.total_electrons = m.total_electrons;
  s.calls = m.calls;
  s.atoms = m.specimen.structure.atoms.size();
  s.specimen_cell = m.specimen.structure.cell;
  s.cached_windows = m.cache.size();
  s.cache_hits = m.hits;
  s.cache_misses = m.misses;
  s.atoms_removed = m.removed;
  s.atoms_displaced = m.displaced;
  return s;
}

DoseMap Microscope::dose_map(double pixel_A) const {
  const Impl& m = *impl_;
  if (!(pixel_A > 0)) throw std::invalid_argument("dose map pixel must be > 0 Å");
  const Cell& c = m.specimen.structure.cell;
  DoseMap d;
  d.pixel_A = pixel_A;
  d.total_electrons = m.total_electrons;
  d.dose_e_per_A2 = Image(std::max<std::size_t>(1, std::size_t(std::ceil(c.x / pixel_A))),
                          std::max<std::size_t>(1, std::size_t(std::ceil(c.y / pixel_A))));
  for (std::size_t iy = 0; iy < m.dose.ny; ++iy)
    for (std::size_t ix = 0; ix < m.dose.nx; ++ix) {
      const auto X = std::min(d.dose_e_per_A2.nx - 1, std::size_t((double(ix) + 0.5) * kDoseMapPixel_A / pixel_A));
      const auto Y = std::min(d.dose_e_per_A2.ny - 1, std::size_t((double(iy) + 0.5) * kDoseMapPixel_A / pixel_A));
      d.dose_e_per_A2(Y, X) += m.dose(iy, ix) / (pixel_A * pixel_A);
    }
  return d;
}

const Specimen& Microscope::specimen() const { return impl_->specimen; }

}  // namespace stemtwin
