#include "stemtwin/scenario/series_reuse.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/physics/prism_series.hpp"
#include "stemtwin/scenario/scenario_detectors.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

namespace stemtwin {
namespace {

/// What the engine is given for one sample, derived as simulate_sample derives it.
struct EngineInputs {
  SampledScenario s;
  Structure structure;
  Grid grid;
  ProbeOptics optics;
  std::vector<Point2> positions;
};

/// The inputs of sample `index` when it may join a defocus series (header: eligibility);
/// nullopt otherwise, or when its draw or specimen fails (the one-by-one path reports that).
std::optional<EngineInputs> series_inputs(const ScenarioSpec& spec, std::size_t index) {
  if (!spec.spectrometers.empty()) return std::nullopt;
  try {
    SampledScenario s = sample_parameters(spec, index);
    if (s.method != Method::Prism) return std::nullopt;
    if (std::any_of(s.detectors.begin(), s.detectors.end(),
                    [](const SampledDetector& d) { return d.type == DetectorType::Pixelated; }))
      return std::nullopt;
    Specimen sp = build_specimen(s);
    if (std::any_of(sp.structure.atoms.begin(), sp.structure.atoms.end(), [](const Atom& a) { return a.rms > 0; }))
      return std::nullopt;
    EngineInputs in;
    in.grid = simulation_grid(s, sp.structure.cell);
    bool noisy = false;
    const AcquisitionSettings acq = acquisition_settings(s, noisy);
    in.positions = plan_scan(acq, s.seed, s.index).positions_A;
    in.optics = probe_optics(s);
    in.structure = std::move(sp.structure);
    in.s = std::move(s);
    return in;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool same_atoms(const Structure& a, const Structure& b) {
  if (a.cell.x != b.cell.x || a.cell.y != b.cell.y || a.cell.z != b.cell.z || a.atoms.size() != b.atoms.size()) return false;
  for (std::size_t i = 0; i < a.atoms.size(); ++i) {
    const Atom &p = a.atoms[i], &q = b.atoms[i];
    if (p.Z != q.Z || p.x != q.x || p.y != q.y || p.z != q.z || p.occupancy != q.occupancy || p.rms != q.rms) return false;
  }
  return true;
}

bool same_detectors(const std::vector<SampledDetector>& a, const std::vector<SampledDetector>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const SampledDetector &p = a[i], &q = b[i];
    if (p.name != q.name || p.type != q.type || p.detector != q.detector || p.com_max_angle_mrad != q.com_max_angle_mrad)
      return false;
  }
  return true;
}

/// Equal engine inputs except C10 (Aberrations::kOrders[0]): the same S-matrix serves both.
bool same_but_defocus(const EngineInputs& a, const EngineInputs& b) {
  const ProbeOptics &o = a.optics, &p = b.optics;
  if (o.energy_eV != p.energy_eV || o.semiangle_mrad != p.semiangle_mrad || o.focal_spread_A != p.focal_spread_A ||
      o.focal_spread_points != p.focal_spread_points || o.source_size_A != p.source_size_A)
    return false;
  for (std::size_t i = 1; i < o.aberrations.C.size(); ++i)
    if (o.aberrations.C[i] != p.aberrations.C[i] || o.aberrations.phi[i] != p.aberrations.phi[i]) return false;
  if (a.grid.nx != b.grid.nx || a.grid.ny != b.grid.ny || a.grid.lx != b.grid.lx || a.grid.ly != b.grid.ly) return false;
  if (a.positions.size() != b.positions.size()) return false;
  for (std::size_t i = 0; i < a.positions.size(); ++i)
    if (a.positions[i].x != b.positions[i].x || a.positions[i].y != b.positions[i].y) return false;
  // Everything stem_settings() reads except the seed (unused on a static lattice).
  const SampledScenario &s = a.s, &t = b.s;
  if (s.method != t.method || s.interpolation != t.interpolation || s.slice_thickness != t.slice_thickness ||
      s.parametrization != t.parametrization || s.projection != t.projection || s.configurations != t.configurations ||
      s.budget_mean_rel != t.budget_mean_rel || s.budget_min_correlation != t.budget_min_correlation ||
      s.budget_calibration_positions != t.budget_calibration_positions || s.symmetry != t.symmetry)
    return false;
  return same_detectors(s.detectors, t.detectors) && same_atoms(a.structure, b.structure);
}

/// The group starting at pending[k] (at least that sample), and the inputs of its first
/// sample when it has more than one.
std::pair<std::size_t, std::optional<EngineInputs>> next_group(const ScenarioSpec& spec, std::span<const std::size_t> pending,
                                                               std::size_t k, std::size_t max_group) {
  std::optional<EngineInputs> first = series_inputs(spec, pending[k]);
  if (!first) return {1, std::nullopt};
  std::size_t n = 1;
  while (k + n < pending.size() && n < max_group) {
    const std::optional<EngineInputs> next = series_inputs(spec, pending[k + n]);
    if (!next || !same_but_defocus(*first, *next)) break;
    ++n;
  }
  if (n == 1) first.reset();
  return {n, std::move(first)};
}

}  // namespace

std::vector<std::vector<std::size_t>> defocus_series_groups(const ScenarioSpec& spec, std::span<const std::size_t> pending,
                                                            std::size_t max_group) {
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t k = 0; k < pending.size();) {
    const std::size_t n = next_group(spec, pending, k, std::max<std::size_t>(1, max_group)).first;
    groups.emplace_back(pending.begin() + std::ptrdiff_t(k), pending.begin() + std::ptrdiff_t(k + n));
    k += n;
  }
  return groups;
}

SampleLoop series_sample_loop(const ScenarioSpec& spec) {
  return [&spec](std::span<const std::size_t> pending, DatasetWriter& writer, const std::function<bool()>& appended) {
    const DiffractionRowSink to_file = [&](const std::string& name, std::size_t y, const float* row) {
      writer.write_diffraction_row(name, y, row);
    };
    for (std::size_t k = 0; k < pending.size();) {
      auto [n, first] = next_group(spec, pending, k, 64);
      std::vector<StemResult> members;
      if (first) {
        // One S-matrix for the group: each member is simulate_prism at its own defocus.
        std::vector<double> defocus_A;
        for (std::size_t m = 0; m < n; ++m) defocus_A.push_back(-probe_optics(sample_parameters(spec, pending[k + m])).aberrations.C[0]);
        StemSettings st = stem_settings(first->s);
        st.pattern_block = first->s.scan.nx;  // as simulate_sample
        members = simulate_prism_defocus_series(first->structure, first->grid, first->optics, defocus_A, first->positions,
                                                physics_detectors(first->s), st);
      }
      for (std::size_t m = 0; m < n; ++m) {
        const StemResult* pre = members.empty() ? nullptr : &members[m];
        const SimulateSample simulate = [&](const SampledScenario& s, const DatasetLayout& L, const DiffractionRowSink& rows) {
          return simulate_sample(s, spec, L, rows, pre);
        };
        writer.append_sample(compute_sample(spec, writer.layout(), pending[k + m], simulate, to_file));
        if (appended()) return;
      }
      k += n;
    }
  };
}

}  // namespace stemtwin
