#include "stemtwin/scenario/dataset_layout.hpp"

#include <algorithm>
#include <cmath>

#include "stemtwin/scenario/scenario_detectors.hpp"

namespace stemtwin {

std::vector<ReadoutChannel> image_channels(const SampledScenario& s) { return readout_channels(physics_detectors(s)); }

InstrumentSettings instrument_settings(const SampledScenario& s) {
  InstrumentSettings in;
  in.energy_eV = s.energy;
  in.convergence_mrad = s.convergence;
  in.current_pA = s.current;
  in.dwell_us = s.dwell_us;
  in.step_x_A = s.scan.step_x;
  in.step_y_A = s.scan.step_y;
  for (const SampledDetector& d : s.detectors) {
    DetectorSettings o{d.name, to_string(d.type)};
    if (const auto* a = std::get_if<AnnularDetector>(&d.detector)) o.inner_mrad = a->inner_mrad, o.outer_mrad = a->outer_mrad;
    if (const auto* p = std::get_if<PixelatedDetector>(&d.detector)) o.max_angle_mrad = p->max_angle_mrad;
    in.detectors.push_back(o);
  }
  return in;
}

InstrumentLayout instrument_layout(const SampledScenario& s0, const std::vector<ParameterInfo>& params) {
  InstrumentLayout l;
  l.stored = true;
  const bool energy_sampled = std::any_of(params.begin(), params.end(), [](const ParameterInfo& p) {
    return p.name.rfind("microscope.energy", 0) == 0;
  });
  if (!energy_sampled && s0.energy > 0) l.energy_eV = s0.energy;
  for (const SampledDetector& d : s0.detectors) l.detectors.push_back({d.name, to_string(d.type)});
  // Acquired read-outs are in ADU (detected electrons at the default gain, docs/acquisition.md);
  // without an acquisition section the images are the clean signals. Units: channel_units().
  for (const ReadoutChannel& ch : image_channels(s0)) {
    l.acquired_units[ch.name] = channel_units(ch.kind, bool(s0.acquisition));
    l.clean_units[ch.name] = channel_units(ch.kind, false);
  }
  return l;
}

DatasetLayout layout_for(const ScenarioSpec& spec, Shard shard) {
  DatasetLayout l;
  l.scenario_name = spec.name;
  l.seed = spec.seed;
  l.total_samples = spec.total_samples();
  l.shard = shard;
  const SampledScenario s0 = sample_parameters(spec, 0);
  l.nx = s0.scan.nx;
  l.ny = s0.scan.ny;
  for (const ReadoutChannel& c : image_channels(s0)) l.images.push_back(c.name);
  for (const auto& d : spec.detectors) {
    if (d.type == DetectorType::Radial) {
      RadialLayout r{d.name, {}};
      if (d.max > 0) {
        const auto n = static_cast<std::size_t>(std::ceil(d.max / d.step - 1e-9));
        for (std::size_t i = 0; i <= n; ++i) r.edges.push_back(static_cast<double>(i) * d.step);
      }
      l.radial.push_back(r);
    }
    if (d.type == DetectorType::Pixelated) l.diffraction.push_back({d.name, 0, 0, 0, 0});
  }
  l.store_clean = spec.output.clean;
  l.params = parameter_info(spec);
  l.instrument = instrument_layout(s0, l.params);
  l.has_class = !spec.labels.class_param.empty();
  l.class_names = spec.labels.class_names;
  for (const auto& m : spec.labels.masks) {
    if (m == "columns") l.masks.push_back({"columns", MaskType::UInt8, {"background", "column"}});
    else l.masks.push_back({m, MaskType::Int16, {}});
  }
  l.columns = spec.labels.columns;
  l.compression = spec.output.compression;
  return l;
}

}  // namespace stemtwin
