// One sample's simulation (scenario_run.hpp: simulate_sample): specimen and settings → the
// engine (method auto's uncalibrated choice run as multislice; frozen-phonon statistics kept
// per configuration where they apply) → the one read-out → parameters and labels.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

#include "stemtwin/scenario/scenario_run.hpp"
#include "sample_labels.hpp"
#include "sample_run_detail.hpp"
#include "scenario_spectra.hpp"
#include "stemtwin/acquisition/camera.hpp"
#include "stemtwin/acquisition/readout.hpp"
#include "stemtwin/dataset/label_masks.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/physics/phonon.hpp"

namespace stemtwin {
namespace {

/// Streams 4D patterns (blocks of one scan row) through the camera to the row sink.
struct RowSink : PatternSink {
  const DiffractionRowSink& rows;
  const AcquisitionSettings& acq;
  const DistortedScan& ds;
  bool noisy;
  std::uint64_t seed, sample;
  std::size_t nx, want_kx, want_ky;
  RowSink(const DiffractionRowSink& w, const AcquisitionSettings& a, const DistortedScan& d, bool n, std::uint64_t sd, std::uint64_t sm,
          std::size_t scan_nx, std::size_t kx, std::size_t ky)
      : rows(w), acq(a), ds(d), noisy(n), seed(sd), sample(sm), nx(scan_nx), want_kx(kx), want_ky(ky) {}
  void write(const std::string& name, std::size_t first, std::size_t count, std::size_t py, std::size_t px,
             const float* p) override {
    if (px != want_kx || py != want_ky)
      throw std::runtime_error("detector '" + name + "': this sample's pattern is " + std::to_string(px) + "×" +
                               std::to_string(py) + " but the dataset holds " + std::to_string(want_kx) + "×" +
                               std::to_string(want_ky) + " (4D-STEM needs the same lateral cell and sampling in every sample)");
    if (first % nx != 0 || count != nx) throw std::logic_error("pattern blocks must be whole scan rows");
    std::vector<float> row(p, p + count * py * px);
    const std::size_t y = first / nx;
    if (noisy) {
      const std::span<const double> mult(ds.dose_multiplier.data() + first, count);
      apply_camera(row, px, py, acq.electrons_per_position(), mult, acq.scan.dwell_us, acq.camera,
                   NoiseStream{seed, sample, 0x100000 + y});
    }
    rows(name, y, row.data());
  }
};

/// Frozen-phonon statistics are kept for multislice samples with ≥ 2 thermal configurations
/// and no 4D detector (whose patterns stream through the engine's own average).
bool phonon_statistics_apply(const SampledScenario& s) {
  if (!s.thermal || s.configurations < 2 || (s.method != Method::Multislice && s.method != Method::Auto)) return false;
  return std::none_of(s.detectors.begin(), s.detectors.end(),
                      [](const SampledDetector& d) { return d.type == DetectorType::Pixelated; });
}

/// What one sample simulates: its specimen, grid, acquisition, scan as it happened, engine
/// settings (one scan row per 4D block: written straight to the file), optics and detectors.
struct SampleSetup {
  Specimen sp;
  Grid grid;
  bool noisy = false;
  AcquisitionSettings acq;
  DistortedScan ds;
  StemSettings st;
  ProbeOptics optics;
  std::vector<Detector> dets;
  explicit SampleSetup(const SampledScenario& s)
      : sp(build_specimen(s)), grid(simulation_grid(s, sp.structure.cell)), acq(acquisition_settings(s, noisy)),
        ds(plan_scan(acq, s.seed, s.index)), st(stem_settings(s)), optics(probe_optics(s)), dets(physics_detectors(s)) {
    st.pattern_block = s.scan.nx;
  }
};

/// Method auto that its cost model sends to multislice without calibrating runs as multislice
/// here (so the per-configuration statistics apply to it too): its choice, to report.
/// Empty: simulate_stem calibrates and chooses.
std::optional<AutoChoice> uncalibrated_auto(const SampleSetup& u, bool has_4d, bool has_spectrometers) {
  if (u.st.method != Method::Auto) return std::nullopt;
  // Spectrometers' recorders read intensities from PRISM too (docs/spectroscopy.md §7a): every
  // candidate stays; simulate_stem calibrates on the recorded signal as well. Their recorders
  // ride on multislice too, which then reuses no symmetry class (translational_symmetry.hpp).
  const AutoPlan plan =
      plan_auto(u.sp.structure, u.grid, u.optics, u.ds.positions_A, u.dets, u.st, has_4d, false, has_spectrometers);
  if (!plan.calibrate) return plan.choice;
  return std::nullopt;
}

/// Frozen phonons with the configurations kept apart, to report how converged their average
/// is: the mean result, and per annular detector the standard error of its mean over the field.
StemResult simulate_per_configuration(const SampledScenario& s, const SampleSetup& u, std::map<std::string, double>& phonon_sem) {
  const Fft2 fft(u.grid, u.st.planning);
  const auto configs = frozen_phonon_transmissions(u.sp.structure, u.grid, u.optics.energy_eV, u.st, fft);
  const std::vector<StemResult> per = scan_multislice_per_configuration(configs, u.optics, u.ds.positions_A, u.dets, u.st, fft);
  PhononSummary summary = summarize_configurations(per);
  StemResult res = std::move(summary.mean);
  if (res.fft_plan.empty()) res.fft_plan = per.front().fft_plan;  // one plan for all configurations
  for (const SampledDetector& d : s.detectors) {
    if (d.type != DetectorType::Annular) continue;
    std::vector<double> field_means;
    for (const StemResult& r : per) {
      const std::vector<double>& v = r.signal(d.name).values;
      double sum = 0;
      for (double x : v) sum += x;
      field_means.push_back(v.empty() ? 0.0 : sum / double(v.size()));
    }
    phonon_sem[d.name] = mean_and_sem(field_means).sem;
  }
  return res;
}

/// Radial detectors' profiles, padded or cut to the layout's bins (pixelated: streamed by RowSink).
void record_radial(SampleRecord& rec, const StemResult& res, const SampledScenario& s, const DatasetLayout& layout) {
  const std::size_t nx = s.scan.nx, ny = s.scan.ny;
  for (const SampledDetector& d : s.detectors) {
    if (d.type != DetectorType::Radial) continue;
    const DetectorSignal& sig = res.signal(d.name);
    std::size_t nb = 0;
    for (const auto& r : layout.radial)
      if (r.name == d.name) nb = r.bins();
    std::vector<float> v(nx * ny * nb, 0.0f);
    for (std::size_t p = 0; p < nx * ny; ++p)
      for (std::size_t b = 0; b < std::min(nb, sig.bins); ++b) v[p * nb + b] = float(sig.values[p * sig.bins + b]);
    rec.radial[d.name] = std::move(v);
  }
}

/// Physical parameters every sample records (besides the sampled ones); a builder fact
/// missing in this sample is NaN.
void record_params(SampleRecord& rec, const StemResult& res, const SampledScenario& s, const SampleSetup& u,
                   const DatasetLayout& layout, const std::map<std::string, double>& phonon_sem) {
  rec.fft_plan = res.fft_plan;
  rec.params["thickness_A"] = u.sp.structure.cell.z;
  rec.params["electrons_per_position"] = u.acq.electrons_per_position();
  rec.params["dose_e_per_A2"] = dose_report(u.acq, u.ds).dose_e_per_A2;
  rec.params["atoms"] = double(u.sp.structure.atoms.size());
  rec.params["sampling_A"] = u.grid.dx();
  {
    const auto& cat = detail::kMethodCategories;
    const auto it = std::find(cat.begin(), cat.end(), res.method);
    rec.params["method"] = it == cat.end() ? std::nan("") : double(it - cat.begin());
    rec.params["interpolation"] = double(res.interpolation);
    rec.params["calibration_mean_error"] = res.auto_choice ? res.auto_choice->measured_mean_error : std::nan("");
    rec.params["calibration_correlation"] = res.auto_choice ? res.auto_choice->measured_correlation : std::nan("");
    // Positions simulated (translational-symmetry reuse, translational_symmetry.hpp); every one when not recorded.
    rec.params["symmetry_positions"] = double(res.positions_simulated ? res.positions_simulated : u.ds.positions_A.size());
  }
  for (const ParameterInfo& p : layout.params)
    if (p.name.size() > 11 && p.name.compare(p.name.size() - 11, 11, "_phonon_sem") == 0) {
      const auto it = phonon_sem.find(p.name.substr(0, p.name.size() - 11));
      rec.params[p.name] = it == phonon_sem.end() ? std::nan("") : it->second;  // NaN: static or one configuration
    }
  for (const ParameterInfo& p : layout.params)
    if (p.name.rfind("specimen.", 0) == 0 && !s.values.count(p.name)) {
      const auto it = u.sp.info.find(p.name.substr(9));
      rec.params[p.name] = it == u.sp.info.end() ? std::nan("") : it->second;
    }
}

/// Column labels and label masks, mapped through the scan as it happened.
void record_labels(SampleRecord& rec, const SampledScenario& s, const SampleSetup& u, const DatasetLayout& layout,
                   double mask_radius) {
  const std::vector<ColumnLabel> cols = detail::column_labels(u.sp, u.ds, u.acq.scan, layout);
  if (layout.columns) rec.columns = cols;
  if (layout.masks.empty()) return;
  const LabelMasks m = rasterize_label_masks(cols, s.scan.nx, s.scan.ny, mask_radius, s.scan.step_x, s.scan.step_y);
  for (const MaskLayout& ml : layout.masks) {
    if (ml.name == "columns") rec.masks[ml.name] = m.columns;
    else if (ml.name == "species") rec.masks[ml.name] = m.species;
    else if (ml.name == "region") rec.masks[ml.name] = detail::region_at_positions(u.sp, u.ds);
  }
}

}  // namespace

SampleRecord simulate_sample(const SampledScenario& s, const ScenarioSpec& spec, const DatasetLayout& layout,
                             const DiffractionRowSink& rows, const StemResult* precomputed) {
  // Testing aid (docs/cluster.md): STEMTWIN_FAIL_SAMPLE=N makes sample N fail as a sample
  // that cannot be foreseen before the run would (the MPI and runner failure tests use it).
  if (const char* fail = std::getenv("STEMTWIN_FAIL_SAMPLE"); fail && std::to_string(s.index) == fail)
    throw std::runtime_error("sample " + std::to_string(s.index) + ": failure injected by STEMTWIN_FAIL_SAMPLE (testing)");
  const SampleSetup u(s);
  std::size_t kx = 0, ky = 0;
  for (const auto& p : layout.diffraction) kx = p.kx, ky = p.ky;
  RowSink sink(rows, u.acq, u.ds, u.noisy, s.seed, s.index, s.scan.nx, kx, ky);
  // Spectrometers ride on the scan as a slice observer (the per-configuration path does not
  // take one: with spectrometers the phonon statistics are not kept).
  detail::SpectraRecorders spectra(spec, layout, u.sp, u.st.seed);
  const std::optional<AutoChoice> auto_uncalibrated = uncalibrated_auto(u, !layout.diffraction.empty(), !spectra.empty());
  StemResult res;
  std::map<std::string, double> phonon_sem;
  if (spectra.empty() && (u.st.method == Method::Multislice || auto_uncalibrated) && phonon_statistics_apply(s) &&
      std::any_of(u.sp.structure.atoms.begin(), u.sp.structure.atoms.end(), [](const Atom& a) { return a.rms > 0; })) {
    res = simulate_per_configuration(s, u, phonon_sem);
  } else if (precomputed) {
    if (u.st.method != Method::Prism || !spectra.empty())
      throw std::logic_error("sample " + std::to_string(s.index) + ": a precomputed result needs method prism, no spectrometer");
    res = *precomputed;  // a defocus-series member (series_reuse.hpp): the bytes simulate_stem gives
  } else {
    StemSettings run = u.st;
    if (auto_uncalibrated) run.method = Method::Multislice;  // the same bytes simulate_auto would give
    // The sink only takes 4D patterns: without them none is passed, so windowed multislice
    // (which streams none) can run, and auto can consider it.
    PatternSink* patterns = layout.diffraction.empty() ? nullptr : &sink;
    res = simulate_stem(u.sp.structure, u.grid, u.optics, u.ds.positions_A, u.dets, run, patterns, spectra.empty() ? nullptr : &spectra);
  }
  if (auto_uncalibrated) res.auto_choice = auto_uncalibrated;

  SampleRecord rec;
  // Image channels: the one read-out (acquisition/readout.hpp), noise streams keyed by the sample.
  ReadoutSettings ro;
  ro.nx = s.scan.nx, ro.ny = s.scan.ny, ro.step_x_A = s.scan.step_x, ro.step_y_A = s.scan.step_y;
  ro.source_size_A = u.optics.source_size_A;
  ro.acquire = bool(s.acquisition);
  ro.seed = s.seed, ro.sample = s.index;
  ReadOut out = readout(res, u.dets, ro, u.acq, u.ds);
  rec.images = std::move(out.images);
  rec.clean = std::move(out.clean);
  record_radial(rec, res, s, layout);
  record_params(rec, res, s, u, layout, phonon_sem);
  if (!spectra.empty())
    detail::read_spectra(rec, spec, s, u.sp, spectra, layout, u.acq.electrons_per_position(), u.noisy);
  record_labels(rec, s, u, layout, spec.labels.mask_radius);
  return rec;
}

}  // namespace stemtwin
