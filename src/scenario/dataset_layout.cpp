#include "stemtwin/scenario/dataset_layout.hpp"

#include <cmath>

#include "stemtwin/scenario/scenario_detectors.hpp"

namespace stemtwin {

std::vector<ReadoutChannel> image_channels(const SampledScenario& s) { return readout_channels(physics_detectors(s)); }

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
