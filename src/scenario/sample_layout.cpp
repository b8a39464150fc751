// What physics decides in a dataset's layout (scenario_run.hpp: complete_layout): derived
// parameters, radial bin edges and 4D pattern shapes from sample 0, species and the method's
// attributes.
#include <algorithm>
#include <sstream>

#include "stemtwin/scenario/scenario_run.hpp"
#include "sample_run_detail.hpp"
#include "scenario_spectra.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/dataset/label_masks.hpp"
#include "stemtwin/physics/names.hpp"

namespace stemtwin {
namespace {

/// The grid the detectors see: PRISM records the waves on its window (the cell and grid
/// divided by the interpolation factor), multislice on the whole grid.
Grid detector_simulation_grid(const SampledScenario& s, const Grid& g) {
  if (s.method != Method::Prism || s.interpolation <= 1) return g;
  const auto f = std::size_t(s.interpolation);
  return Grid(g.lx / double(f), g.ly / double(f), g.nx / f, g.ny / f);
}

}  // namespace

void complete_layout(DatasetLayout& layout, const ScenarioSpec& spec) {
  for (MaskLayout& m : layout.masks)
    if (m.name == "region") m.values = default_class_names();
  layout.species.assign(1, "");
  for (int Z = 1; Z <= 103; ++Z) layout.species.push_back(element_symbol(Z));  // species id = Z
  // The scan step, when fixed, as the dataset's pixel size (evaluate converts Å ↔ pixels with it).
  {
    const auto fixed = [](const Distribution& d) { return d.is_fixed(); };
    const bool fixed_step = spec.scan.use_fov ? fixed(spec.scan.fov[0]) && fixed(spec.scan.fov[1])
                                              : fixed(spec.scan.step[0]) && fixed(spec.scan.step[1]);
    if (fixed_step) {
      const SampledScenario s0 = sample_parameters(spec, 0);
      layout.pixel_size_A = {s0.scan.step_x, s0.scan.step_y};
    }
  }
  // Derived physical parameters every sample records, and the builder's facts (sample 0's keys).
  for (const char* k : detail::kDerivedParams) layout.params.push_back({k, {}});
  layout.params.push_back({"method", detail::kMethodCategories});
  for (const char* k : detail::kMethodParams) layout.params.push_back({k, {}});
  {
    // The method asked for and auto's budget, as root attributes.
    const SampledScenario s0 = sample_parameters(spec, 0);
    const StemSettings st0 = stem_settings(s0);
    layout.attributes["method"] = spec.simulation.method;
    if (parse_method(spec.simulation.method) == Method::Auto) {
      std::ostringstream b;
      b << "mean_rel=" << st0.budget.mean_rel << " min_correlation=" << st0.budget.min_correlation
        << " calibration_positions=" << st0.budget.calibration_positions;
      layout.attributes["error_budget"] = b.str();
    }
  }
  const Method asked = parse_method(spec.simulation.method);
  if (spec.specimen.thermal.enabled && (asked == Method::Multislice || asked == Method::Auto))
    for (const DetectorSpec& d : spec.detectors)
      if (d.type == DetectorType::Annular) layout.params.push_back({d.name + "_phonon_sem", {}});
  {
    const SampledScenario s0 = sample_parameters(spec, 0);
    for (const auto& [k, v] : build_specimen(s0).info) layout.params.push_back({"specimen." + k, {}});
  }
  {
    const SampledScenario s0 = sample_parameters(spec, 0);
    detail::complete_spectra_layout(layout, spec, s0, build_specimen(s0));
  }
  bool need_grid = false;
  for (const auto& r : layout.radial) need_grid |= r.edges.empty();
  need_grid |= !layout.diffraction.empty();
  if (!need_grid) return;
  // Shapes that physics decides come from sample 0 (its cell, sampling and energy).
  const SampledScenario s = sample_parameters(spec, 0);
  const Specimen sp = build_specimen(s);
  const Grid g = detector_simulation_grid(s, simulation_grid(s, sp.structure.cell));
  const double lambda = wavelength_A(s.energy);
  for (auto& r : layout.radial)
    if (r.edges.empty())
      for (const SampledDetector& d : s.detectors)
        if (d.name == r.name) r.edges = radial_bin_edges(std::get<RadialDetector>(physics_detector(d)), g, lambda);
  for (auto& p : layout.diffraction)
    for (const SampledDetector& d : s.detectors)
      if (d.name == p.name) {
        const auto pix = std::get<PixelatedDetector>(physics_detector(d));
        const auto [ny, nx] = pattern_shape(pix, g, lambda);
        p.kx = nx;
        p.ky = ny;
        p.sampling_x = double(pix.bin) * lambda / g.lx * 1e3;
        p.sampling_y = double(pix.bin) * lambda / g.ly * 1e3;
      }
}
}  // namespace stemtwin
