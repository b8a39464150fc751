// Microscope: the instrument's state (stage, optics, detectors, scan, read-out chain),
// bookkeeping (status, dose map) and cancel. Every function here takes the state lock only.
#include <cmath>
#include <mutex>
#include <stdexcept>

#include "microscope_impl.hpp"

namespace stemtwin {


void Microscope::move_stage(const StagePosition& p) {
  check_range(ranges::kStageX, p.x_A);
  check_range(ranges::kStageY, p.y_A);
  check_range(ranges::kStageZ, p.z_A);
  check_range(ranges::kStageTiltAlpha, p.alpha_rad);
  check_range(ranges::kStageTiltBeta, p.beta_rad);
  std::lock_guard<std::mutex> lock(impl_->state);
  impl_->stage = p;
}
void Microscope::move_stage_relative(double dx, double dy, double dz, double da, double db) {
  std::lock_guard<std::mutex> lock(impl_->state);  // read, check and write as one step
  StagePosition p = impl_->stage;
  p.x_A += dx, p.y_A += dy, p.z_A += dz, p.alpha_rad += da, p.beta_rad += db;
  check_range(ranges::kStageX, p.x_A);
  check_range(ranges::kStageY, p.y_A);
  check_range(ranges::kStageZ, p.z_A);
  check_range(ranges::kStageTiltAlpha, p.alpha_rad);
  check_range(ranges::kStageTiltBeta, p.beta_rad);
  impl_->stage = p;
}
StagePosition Microscope::stage() const {
  std::lock_guard<std::mutex> lock(impl_->state);
  return impl_->stage;
}


void Microscope::set_optics(const Optics& o) {
  check_optics(o);
  std::lock_guard<std::mutex> lock(impl_->state);
  impl_->optics = o;
}
Optics Microscope::optics() const {
  std::lock_guard<std::mutex> lock(impl_->state);
  return impl_->optics;
}
namespace {
/// Changes the optics as one locked read-modify-write, with the same range checks as set_optics.
template <class F>
void change_optics(std::mutex& mu, Optics& optics, F&& f) {
  std::lock_guard<std::mutex> lock(mu);
  Optics o = optics;
  f(o);
  check_optics(o);
  optics = o;
}
}  // namespace
void Microscope::set_aberration(const std::string& name, double value) {
  change_optics(impl_->state, impl_->optics, [&](Optics& o) { o.probe.aberrations.set(name, value); });
}
void Microscope::set_defocus(double d) { set_aberration("defocus", d); }
void Microscope::adjust_aberration(const std::string& ceos_name, std::array<double, 2> delta_A) {
  const CeosCoefficient& c = ceos_coefficient(ceos_name);
  if (!std::isfinite(delta_A[0]) || !std::isfinite(delta_A[1]))
    throw std::invalid_argument("aberration " + ceos_name + ": the change must be finite");
  change_optics(impl_->state, impl_->optics, [&](Optics& o) {
    const auto now = ceos_get(o.probe.aberrations, c);
    ceos_set(o.probe.aberrations, c, {now[0] + delta_A[0], now[1] + delta_A[1]});
  });
}
Aberrations Microscope::residual_aberrations() const {
  std::lock_guard<std::mutex> lock(impl_->state);
  return impl_->current_residual();
}
TableauResult Microscope::measure_tableau(const TableauSettings& s) {
  const Snapshot sn = impl_->snapshot();
  TableauSettings t = s;
  t.seed = impl_->settings.seed;
  t.stream = sn.call;
  return stemtwin::measure_tableau(sn.effective_probe(), t);
}
void Microscope::set_current(double pA) {
  change_optics(impl_->state, impl_->optics, [&](Optics& o) { o.current_pA = pA; });
}
void Microscope::set_convergence(double mrad) {
  change_optics(impl_->state, impl_->optics, [&](Optics& o) { o.probe.semiangle_mrad = mrad; });
}

void Microscope::set_detectors(std::vector<Detector> d) {
  if (d.empty()) throw std::invalid_argument("at least one detector is needed");
  std::lock_guard<std::mutex> lock(impl_->state);
  impl_->detectors = std::move(d);
}
std::vector<Detector> Microscope::detectors() const {
  std::lock_guard<std::mutex> lock(impl_->state);
  return impl_->detectors;
}


void Microscope::set_scan(const ScanSettings& s) {
  check_scan(s, impl_->settings.max_positions_per_call);
  std::lock_guard<std::mutex> lock(impl_->state);
  impl_->scan = s;
}
ScanSettings Microscope::scan_settings() const {
  std::lock_guard<std::mutex> lock(impl_->state);
  return impl_->scan;
}

void Microscope::set_acquisition(const AcquisitionSettings& a) {
  a.validate();
  std::lock_guard<std::mutex> lock(impl_->state);
  impl_->acq = a;
}
AcquisitionSettings Microscope::acquisition() const {
  std::lock_guard<std::mutex> lock(impl_->state);
  return impl_->acq;
}

MicroscopeStatus Microscope::status() const {
  const Impl& m = *impl_;
  MicroscopeStatus s;
  const ScanLines rows = m.lines.summary();  // its own lock, taken before (never inside) the state lock
  s.scan_state = rows.state;
  s.rows_done = rows.rows_done;
  s.total_rows = rows.ny;
  std::lock_guard<std::mutex> lock(m.state);
  s.stage = m.stage;
  s.optics = m.optics;
  s.scan = m.scan;
  for (const Detector& d : m.detectors) s.detectors.push_back(detector_name(d));
  s.total_electrons = m.total_electrons;
  s.calls = m.calls;
  s.atoms = m.specimen.structure.atoms.size();
  s.specimen_cell = m.specimen.structure.cell;
  s.cached_windows = m.cached_windows.load();
  s.cache_hits = m.hits.load();
  s.cache_misses = m.misses.load();
  s.atoms_removed = m.removed;
  s.atoms_displaced = m.displaced;
  s.acquiring = m.acquiring.load();
  s.positions_done = m.done_positions.load();
  s.positions_total = m.total_positions.load();
  s.last_frame = m.last_frame;
  return s;
}

DoseMap Microscope::dose_map(double pixel_A) const {
  const Impl& m = *impl_;
  if (!(pixel_A > 0)) throw std::invalid_argument("dose map pixel must be > 0 Å");
  std::lock_guard<std::mutex> lock(m.state);
  if (m.world) return m.world_dose_map(pixel_A);
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

const MicroscopeSettings& Microscope::settings() const { return impl_->settings; }

Specimen Microscope::specimen() const {
  std::lock_guard<std::mutex> lock(impl_->state);
  return impl_->specimen;
}

}  // namespace stemtwin
