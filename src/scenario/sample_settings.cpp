// One sample's instrument settings (scenario_run.hpp): the simulation grid, the acquisition
// (scan, distortions, detector response, camera), the engine's settings and the probe optics.
#include <algorithm>
#include <cstdint>

#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/scenario/key_reader.hpp"

namespace stemtwin {

Grid simulation_grid(const SampledScenario& s, const Cell& cell) {
  return make_grid(cell.x, cell.y, s.sampling, s.method, std::size_t(std::max(1, s.interpolation)));
}

AcquisitionSettings acquisition_settings(const SampledScenario& s, bool& noisy) {
  AcquisitionKeys a;
  a.beam_current_pA = s.current;
  a.scan = ScanGeometry::from_fov(s.scan.start, s.scan.step_x * double(s.scan.nx), s.scan.step_y * double(s.scan.ny), s.scan.nx,
                                  s.scan.ny, 0, s.dwell_us, 0);
  noisy = false;
  if (!s.acquisition) return a;
  read_keys(*s.acquisition, acquisition_rows(), a, "acquisition");  // every key of key_tables.hpp's acquisition table
  noisy = a.noise;
  if (!noisy) {
    a.annular.shot_noise = false;
    a.camera.shot_noise = false;
  }
  return a;
}

StemSettings stem_settings(const SampledScenario& s) {
  StemSettings st;
  st.method = s.method;
  st.interpolation_x = st.interpolation_y = std::size_t(std::max(1, s.interpolation));
  if (s.budget_mean_rel) st.budget.mean_rel = *s.budget_mean_rel;
  if (s.budget_min_correlation) st.budget.min_correlation = *s.budget_min_correlation;
  if (s.budget_calibration_positions) st.budget.calibration_positions = std::size_t(*s.budget_calibration_positions);
  st.potential.slice_thickness_A = s.slice_thickness;
  st.potential.parametrization = s.parametrization;
  st.potential.projection = s.projection;
  st.symmetry_reuse = s.symmetry;
  st.phonon_configurations = std::size_t(std::max(1, s.configurations));
  // Phonon displacements per sample: the stream (scenario seed, sample index).
  st.seed = s.seed * 0x9E3779B97F4A7C15ull + s.index;
  return st;
}

ProbeOptics probe_optics(const SampledScenario& s) {
  ProbeOptics o;
  o.energy_eV = s.energy;
  o.semiangle_mrad = s.convergence;
  for (const auto& [k, v] : s.aberrations) o.aberrations.set(k, v);
  o.focal_spread_A = s.focal_spread;
  o.source_size_A = s.source_size;
  return o;
}
}  // namespace stemtwin
