// Microscope: acquisitions (scan, scan_points, probe_at). Each takes the beam lock for its
// whole run, copies the state under the state lock, simulates without it and books its dose
// under it at the end (microscope.hpp, "Threads").
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <stdexcept>

#include "microscope_impl.hpp"
#include "stemtwin/acquisition/readout.hpp"

namespace stemtwin {

namespace {
/// Electrons delivered at each of the first n positions of a scan: the nominal count times
/// the position's dose multiplier.
std::vector<double> electrons_at(const DistortedScan& ds, double electrons_each, std::size_t n) {
  std::vector<double> e(n);
  for (std::size_t i = 0; i < n; ++i) e[i] = electrons_each * ds.dose_multiplier[i];
  return e;
}
}  // namespace

Microscope::Microscope(Specimen specimen, MicroscopeSettings settings)
    : impl_(std::make_unique<Impl>(std::move(specimen), settings)) {}
Microscope::~Microscope() = default;
Microscope::Microscope(Microscope&&) noexcept = default;
Microscope& Microscope::operator=(Microscope&&) noexcept = default;

void Microscope::cancel() { impl_->cancel_epoch.fetch_add(1); }

ScanLines Microscope::scan_lines(std::size_t from_row) const { return impl_->lines.since(from_row); }

ScanResult Microscope::scan(const ScanSettings& s, std::vector<Detector> detectors, const AcquisitionControl& control) {
  check_scan(s, impl_->settings.max_positions_per_call);
  if (detectors.empty()) throw std::invalid_argument("at least one detector is needed");
  const std::uint64_t epoch = impl_->cancel_epoch.load();
  std::unique_lock<std::mutex> beam(impl_->beam);
  {
    std::lock_guard<std::mutex> lock(impl_->state);
    impl_->scan = s;
    impl_->detectors = std::move(detectors);
  }
  return scan_locked(epoch, control);
}

ScanResult Microscope::scan(const ScanSettings& s, std::vector<Detector> detectors, const Spectrometers& sp,
                            const AcquisitionControl& control) {
  check_scan(s, impl_->settings.max_positions_per_call);
  if (detectors.empty()) throw std::invalid_argument("at least one detector is needed");
  const std::uint64_t epoch = impl_->cancel_epoch.load();
  std::unique_lock<std::mutex> beam(impl_->beam);
  impl_->check_spectrometers_here(sp);
  {
    std::lock_guard<std::mutex> lock(impl_->state);
    impl_->scan = s;
    impl_->detectors = std::move(detectors);
  }
  // The spectra belong to this call (the server's get_spectrum_image): later scans record none.
  auto clear = [&] {
    std::lock_guard<std::mutex> lock(impl_->state);
    impl_->scan.eds = impl_->scan.eels = false;
  };
  try {
    ScanResult r = scan_locked(epoch, control, &sp);
    clear();
    return r;
  } catch (...) {
    clear();
    throw;
  }
}

ScanResult Microscope::scan(const AcquisitionControl& control) {
  const std::uint64_t epoch = impl_->cancel_epoch.load();
  std::unique_lock<std::mutex> beam(impl_->beam);
  return scan_locked(epoch, control);
}

ScanResult Microscope::scan_locked(std::uint64_t epoch, const AcquisitionControl& control, const Spectrometers* sp) {
  Impl& m = *impl_;
  Impl::Running running(m);
  const auto t0 = std::chrono::steady_clock::now();
  Snapshot sn = m.snapshot();
  sn.cancel_epoch = epoch;
  if (sp) sn.spectrometers = *sp;
  const ScanSettings& sc = sn.scan;
  m.check_work(sc.nx * sc.ny);
  m.total_positions.store(sc.nx * sc.ny);  // status() shows the size of the frame from the start
  AcquisitionSettings acq = sn.acq;
  const double sx = sc.fov_x_A / double(sc.nx), sy = sc.fov_y_A / double(sc.ny);
  const Point2 start{sn.stage.x_A - 0.5 * double(sc.nx - 1) * sx, sn.stage.y_A - 0.5 * double(sc.ny - 1) * sy};
  acq.scan = ScanGeometry::from_fov(start, sc.fov_x_A, sc.fov_y_A, sc.nx, sc.ny, sc.rotation_deg, sc.dwell_us, sc.flyback_us);
  acq.beam_current_pA = sn.optics.current_pA;
  const std::uint64_t call = sn.call;
  const DistortedScan ds = plan_scan(acq, m.settings.seed, call);
  const double electrons_each = acq.electrons_per_position();

  ScanResult r;
  const bool all_annular = std::all_of(sn.detectors.begin(), sn.detectors.end(),
                                       [](const Detector& d) { return std::holds_alternative<AnnularDetector>(d); });
  const bool spectra = sc.eds || sc.eels;  // spectrum images need the wave inside the specimen (microscope_spectra.cpp)
  r.incoherent = !spectra && all_annular && m.settings.incoherent_above_A > 0 && std::max(sx, sy) > m.settings.incoherent_above_A;
  // The one read-out (acquisition/readout.hpp): the call number keys the noise streams as a
  // dataset's sample index does. The incoherent maps already include the source size.
  ReadoutSettings ro;
  ro.nx = sc.nx, ro.ny = sc.ny, ro.step_x_A = sx, ro.step_y_A = sy;
  ro.source_size_A = r.incoherent ? 0.0 : sn.optics.probe.source_size_A;
  ro.seed = m.settings.seed, ro.sample = call;
  // The progressive image (microscope_lines.hpp): the rows each block completes, read out with
  // these same settings, for scan_lines() and control.lines.
  RowStream rows(m.lines, sn.detectors, ro, acq, ds, control.lines);
  ReadOut out;
  try {
    const StemResult res = m.frame_signals(sn, ds, electrons_each, control, rows.hook(), r);
    out = readout(res, sn.detectors, ro, acq, ds);
  } catch (const AcquisitionCancelled&) {
    m.lines.stop("cancelled");
    throw;
  } catch (...) {
    m.lines.stop("failed");
    throw;
  }
  r.images = std::move(out.images);
  r.clean = std::move(out.clean);
  r.channels = std::move(out.channels);
  r.scan = sc;
  r.stage = sn.stage;
  r.optics = sn.optics;
  r.positions_A = ds.positions_A;
  r.electrons_per_position = electrons_each;
  r.dose_e_per_A2 = dose_report(acq, ds).dose_e_per_A2;
  r.call = call;
  m.deposit(ds.positions_A, electrons_at(ds, electrons_each, ds.positions_A.size()), call);
  rows.finish(r.images);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

StemResult Microscope::Impl::frame_signals(const Snapshot& sn, const DistortedScan& ds, double electrons_each,
                                           const AcquisitionControl& control, const BlockHook& on_block, ScanResult& r) {
  Impl& m = *this;
  const ScanSettings& sc = sn.scan;
  const std::uint64_t call = sn.call;
  const double sx = sc.fov_x_A / double(sc.nx), sy = sc.fov_y_A / double(sc.ny);
  const bool all_annular = std::all_of(sn.detectors.begin(), sn.detectors.end(),
                                       [](const Detector& d) { return std::holds_alternative<AnnularDetector>(d); });
  const bool spectra = sc.eds || sc.eels;
  auto electrons_of = [&](std::size_t n) { return electrons_at(ds, electrons_each, n); };
  StemResult res;
  ElementIntensity intensity;  // probe intensity at the atoms, when spectra are asked for
  std::map<std::string, Image> incoherent;
  if (r.incoherent) {
    if (m.stop_requested(sn, control)) throw AcquisitionCancelled("acquisition cancelled before it started");
    incoherent = m.incoherent_images(sn, ds.positions_A, sx, sy);
    r.warnings.push_back("incoherent model: scan pixels of " + std::to_string(std::max(sx, sy)) + " Å are coarser than " +
                         std::to_string(m.settings.incoherent_above_A) +
                         " Å (incoherent_above_A); tilt is ignored and columns add linearly (docs/physics.md)");
    for (const Detector& d : sn.detectors) {
      const auto& a = std::get<AnnularDetector>(d);
      const auto it = m.incoherent_scale.find(Impl::detector_key(a));
      if (it == m.incoherent_scale.end()) continue;
      for (double& v : incoherent.at(a.name).data) v *= it->second.first;
      r.warnings.push_back("incoherent model: " + a.name + " scaled by " + std::to_string(it->second.first) +
                           ", calibrated against the full-physics frame of call " + std::to_string(it->second.second));
    }
  } else {
    Window& w = m.window_for(sn, ds.positions_A, r.window_cache_hit);
    Visited visited;
    try {
      res = spectra ? m.simulate(sn, w, ds.positions_A, sn.detectors, nullptr, control, visited, &intensity, on_block)
                    : m.simulate_cached(sn, w, ds.positions_A, sn.detectors, r.signal_cache_hit, control, visited, on_block);
    } catch (const AcquisitionCancelled&) {
      // The beam did visit the positions simulated before the stop (in tile order for
      // windowed multislice, not the first ones in scan order): their dose is real.
      m.deposit_visited(ds.positions_A, electrons_of(ds.positions_A.size()), visited, call);
      throw;
    }
    r.warnings = res.warnings;
    if (!m.thermal_note.empty()) r.warnings.push_back(m.thermal_note);
    if (all_annular && !r.signal_cache_hit) m.learn_incoherent_scale(sn, ds.positions_A, res, sx, sy);
    const Structure composition = m.world && (sc.eds || sc.eels) ? m.window_atoms_of(w) : Structure{};
    const Structure& spectra_specimen = m.world ? composition : m.specimen.structure;
    if (sc.eds) r.eds = make_spectra(spectra_specimen, sn.optics.probe.energy_eV, sn.spectrometers, SpectrumKind::Eds, intensity,
                                     electrons_of(ds.positions_A.size()), m.settings.seed, call, ds.positions_A);
    if (sc.eels) r.eels = make_spectra(spectra_specimen, sn.optics.probe.energy_eV, sn.spectrometers, SpectrumKind::Eels, intensity,
                                       electrons_of(ds.positions_A.size()), m.settings.seed, call, ds.positions_A);
  }
  if (r.incoherent) {
    // The incoherent maps as the read-out's input: one bin per annular detector.
    res = StemResult{};
    for (auto& [name, image] : incoherent) res.signals.push_back({name, 0, 1, std::move(image.data)});
  }
  return res;
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

std::vector<ProbeResult> Microscope::scan_points(const std::vector<Point2>& points, double dwell_us, const AcquisitionControl& control) {
  Impl& m = *impl_;
  m.check_work(points.size());
  check_range(ranges::kDwell, dwell_us);
  for (const Point2& p : points) check_range(ranges::kProbeX, p.x), check_range(ranges::kProbeY, p.y);
  const std::uint64_t epoch = m.cancel_epoch.load();
  std::unique_lock<std::mutex> beam(m.beam);
  Impl::Running running(m);
  Snapshot sn = m.snapshot();
  sn.cancel_epoch = epoch;
  m.total_positions.store(points.size());
  const std::uint64_t call = sn.call;
  // One pattern detector: the user's pixelated detector if any, else the whole pattern.
  std::vector<Detector> dets;
  const PixelatedDetector* pix = nullptr;
  for (const Detector& d : sn.detectors) {
    if (const auto* p = std::get_if<PixelatedDetector>(&d)) {
      if (!pix) pix = p, dets.push_back(d);
    } else {
      dets.push_back(d);
    }
  }
  if (!pix) dets.push_back(PixelatedDetector{"diffraction", 0.0, 1});
  bool hit = false;
  Window& w = m.window_for(sn, points, hit);
  CaptureSink sink;
  const double electrons = electrons_per_position(sn.optics.current_pA, dwell_us);
  Visited visited;
  StemResult res;
  try {
    res = m.simulate(sn, w, points, dets, &sink, control, visited);
  } catch (const AcquisitionCancelled&) {
    m.deposit_visited(points, std::vector<double>(points.size(), electrons), visited, call);
    throw;
  }
  const double lambda = wavelength_A(sn.optics.probe.energy_eV);
  const std::size_t bin = pix ? pix->bin : 1;
  // The pattern's read-out through the camera model, one "scan" of the points.
  AcquisitionSettings acq = sn.acq;
  acq.beam_current_pA = sn.optics.current_pA;
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
  m.deposit(points, std::vector<double>(points.size(), electrons), call);
  return out;
}

ProbeResult Microscope::probe_at(double x, double y, double dwell_us, const AcquisitionControl& control) {
  return scan_points({{x, y}}, dwell_us, control).front();
}

}  // namespace stemtwin
