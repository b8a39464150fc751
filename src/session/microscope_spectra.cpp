// Microscope: EDS and EELS spectra (spectrum_at, spectra_at, the spectrum images of scan()).
// The probe's intensity at every atom of the window is recorded in the multislice loop
// (InelasticRecorder, spectroscopy.hpp) and turned into counts by the EDS/EELS models
// (eds.hpp, eels.hpp) at the dose of the dwell; docs/spectroscopy.md has the physics.
#include <optional>
#include <algorithm>
#include <mutex>
#include <set>
#include <stdexcept>

#include "microscope_impl.hpp"
#include "stemtwin/acquisition/spectrometer.hpp"
#include "stemtwin/physics/windowed.hpp"

namespace stemtwin {
namespace microscope_detail {

std::vector<int> elements_of(const Structure& s) {
  std::set<int> z;
  for (const Atom& a : s.atoms) z.insert(a.Z);
  return {z.begin(), z.end()};
}

Structure static_atoms(Structure s) {
  for (Atom& a : s.atoms) a.rms = 0;
  return s;
}

InelasticSettings inelastic_settings(const Spectrometers& sp, std::vector<int> elements) {
  InelasticSettings in;
  in.width_A = sp.ionisation_width_A;
  in.elements = std::move(elements);
  return in;
}

void check_spectrometers(const Structure& specimen, double beam_energy_eV, const Spectrometers& sp) {
  if (!(sp.ionisation_width_A >= 0 && sp.ionisation_width_A <= 5))
    throw std::invalid_argument("spectrometers: ionisation_width_A = " + std::to_string(sp.ionisation_width_A) +
                                " Å must lie in [0, 5] Å (the 1σ footprint of an ionisation)");
  // The models check their own settings (channels, resolution above the Fano limit, …).
  eds_model(specimen, beam_energy_eV, sp.eds);
  eels_model(specimen, beam_energy_eV, sp.eels);
}

SpectraRecording::SpectraRecording(Structure window_atoms, std::uint64_t seed_, InelasticSettings settings_, ElementIntensity& out_)
    : atoms(std::move(window_atoms)), seed(seed_), settings(std::move(settings_)), out(out_) {
  out = ElementIntensity{};
}

StemResult SpectraRecording::scan(const std::vector<Transmission>& configs, const ProbeOptics& probe, const std::vector<Point2>& part,
                                  const std::vector<Detector>& dets, const StemSettings& st, const Fft2& fft, PatternSink* sink) {
  InelasticRecorder rec(atoms, seed, settings);
  StemResult r = scan_multislice(configs, probe, part, dets, st, fft, sink, &rec);
  append(rec.result());
  return r;
}

StemResult SpectraRecording::scan_windowed(const Structure& structure, const Grid& grid, const ProbeOptics& probe,
                                           const std::vector<Point2>& part, const std::vector<Detector>& dets, const StemSettings& st) {
  InelasticRecorder rec(atoms, seed, settings);
  StemResult r = simulate_windowed(structure, grid, probe, part, dets, st, &rec);
  append(rec.result());
  return r;
}

void SpectraRecording::append(const ElementIntensity& I) {
  if (I.depths_A.size() != 1) throw std::logic_error("session spectra: the recorder must record one depth (the whole specimen)");
  if (out.positions == 0) {
    out.elements = I.elements;
    out.depths_A = I.depths_A;
  }
  out.values.insert(out.values.end(), I.values.begin(), I.values.end());
  out.positions += I.positions;
}

void SpectraRecording::reorder(const std::vector<std::size_t>& slot) {
  const std::size_t ne = out.elements.size();
  if (slot.size() != out.positions) throw std::logic_error("session spectra: reorder of a recording that is not complete");
  std::vector<double> v(out.values.size());
  for (std::size_t j = 0; j < slot.size(); ++j) std::copy_n(out.values.begin() + long(slot[j] * ne), ne, v.begin() + long(j * ne));
  out.values = std::move(v);
}

SpectrumResult make_spectra(const Structure& specimen, double beam_energy_eV, const Spectrometers& sp, SpectrumKind kind,
                            const ElementIntensity& intensity, const std::vector<double>& electrons, std::uint64_t seed,
                            std::uint64_t call, const std::vector<Point2>& positions) {
  // The one read-out (acquisition/spectrometer.hpp), as the dataset runner's: the session's
  // noise stream is (seed, Spectra, 2·call + kind, position).
  SpectrometerSpec spec;
  spec.name = kind == SpectrumKind::Eds ? "eds" : "eels";
  spec.kind = kind == SpectrumKind::Eds ? SpectrometerKind::Eds : SpectrometerKind::Eels;
  spec.eds = sp.eds;
  spec.eels = sp.eels;
  spec.width_A = sp.ionisation_width_A;
  SpectrometerSpectra s = spectrometer_spectra(spec, specimen, beam_energy_eV, intensity, electrons, seed,
                                               2 * call + (kind == SpectrumKind::Eels ? 1 : 0), 0);
  SpectrumResult r;
  r.kind = kind;
  r.energy_start_eV = s.expected.energy_start_eV;
  r.channel_width_eV = s.expected.channel_width_eV;
  r.channels = s.expected.channels;
  r.positions = s.expected.positions;
  r.positions_A = positions;
  r.expected = std::move(s.expected.values);
  r.counts = std::move(s.counts.values);
  r.electrons_per_position = electrons.empty() ? 0.0 : electrons.front();
  r.call = call;
  return r;
}

}  // namespace microscope_detail

void Microscope::set_spectrometers(const Spectrometers& s) {
  // The specimen's composition only changes with both locks held (beam damage); the beam
  // lock keeps it still while the models are checked, without blocking status calls.
  {
    std::lock_guard<std::mutex> beam(impl_->beam);
    impl_->check_spectrometers_here(s);
  }
  std::lock_guard<std::mutex> lock(impl_->state);
  impl_->spectrometers = s;
}

Spectrometers Microscope::spectrometers() const {
  std::lock_guard<std::mutex> lock(impl_->state);
  return impl_->spectrometers;
}

SpectrumResult Microscope::spectrum_at(double x, double y, double dwell_us, SpectrumKind kind, const AcquisitionControl& control) {
  return spectra_at({{x, y}}, dwell_us, kind, control);
}

SpectrumResult Microscope::spectra_at(const std::vector<Point2>& points, double dwell_us, SpectrumKind kind,
                                      const AcquisitionControl& control) {
  return spectra_at(points, dwell_us, kind, spectrometers(), control);
}

SpectrumResult Microscope::spectra_at(const std::vector<Point2>& points, double dwell_us, SpectrumKind kind,
                                      const Spectrometers& sp, const AcquisitionControl& control) {
  Impl& m = *impl_;
  m.check_work(points.size());
  check_range(ranges::kDwell, dwell_us);
  for (const Point2& p : points) check_range(ranges::kProbeX, p.x), check_range(ranges::kProbeY, p.y);
  const std::uint64_t epoch = m.cancel_epoch.load();
  std::unique_lock<std::mutex> beam(m.beam);
  // Bad spectrometers are refused before the call is counted or any dose is booked.
  m.check_spectrometers_here(sp, points.front());
  Impl::Running running(m);
  Snapshot sn = m.snapshot();
  sn.cancel_epoch = epoch;
  sn.spectrometers = sp;
  m.total_positions.store(points.size());
  // The session's annular detectors ride along (their signals are not returned): a pixelated
  // one would stream patterns nobody reads.
  std::vector<Detector> dets;
  for (const Detector& d : sn.detectors)
    if (std::holds_alternative<AnnularDetector>(d)) dets.push_back(d);
  if (dets.empty()) dets.push_back(AnnularDetector{"HAADF", 70, 160});
  const double electrons = electrons_per_position(sn.optics.current_pA, dwell_us);
  // Points close together share one window; points spread wider than a minimum window (e.g.
  // across a 1 µm field) are simulated one window each, so the window never grows with the spread.
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (const Point2& p : points) xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x), ymin = std::min(ymin, p.y), ymax = std::max(ymax, p.y);
  const bool together = std::max(xmax - xmin, ymax - ymin) <= m.settings.min_window_A;
  ElementIntensity intensity;
  Visited visited;  // spread points: one window each, in order
  // The models' composition and thickness: the (first) simulated window's atoms. On a world,
  // points spread over several windows share the first one's (docs/server.md, "Spectra").
  std::optional<Structure> composition;
  try {
    if (together) {
      bool hit = false;
      Window& w = m.window_for(sn, points, hit);
      composition = m.window_atoms_of(w);
      m.simulate(sn, w, points, dets, nullptr, control, visited, &intensity);
    } else {
      for (std::size_t i = 0; i < points.size(); ++i) {
        bool hit = false;
        ElementIntensity one;
        Visited done;
        Window& w = m.window_for(sn, {points[i]}, hit);
        if (i == 0) composition = m.window_atoms_of(w);
        m.simulate(sn, w, {points[i]}, dets, nullptr, control, done, &one);
        if (i == 0) intensity = one;
        else intensity.values.insert(intensity.values.end(), one.values.begin(), one.values.end()), intensity.positions += one.positions;
        visited.count = i + 1;
      }
    }
  } catch (const AcquisitionCancelled&) {
    m.deposit_visited(points, std::vector<double>(points.size(), electrons), visited, sn.call);
    throw;
  }
  SpectrumResult r = make_spectra(m.world ? *composition : m.specimen.structure, sn.optics.probe.energy_eV, sp, kind, intensity,
                                  std::vector<double>(points.size(), electrons), m.settings.seed, sn.call, points);
  m.deposit(points, std::vector<double>(points.size(), electrons), sn.call);
  return r;
}

}  // namespace stemtwin
