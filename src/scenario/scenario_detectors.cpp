#include "stemtwin/scenario/scenario_detectors.hpp"

#include <algorithm>

namespace stemtwin {

Detector physics_detector(const SampledDetector& x) {
  switch (x.type) {
    case DetectorType::Annular: {
      AnnularDetector a{x.name, x.inner, x.outer, std::nullopt};
      if (x.has_azimuth) a.azimuth_deg = std::make_pair(x.azimuth_from, x.azimuth_to);
      return a;
    }
    case DetectorType::Radial: return RadialDetector{x.name, x.step, x.max};
    case DetectorType::Segmented: return SegmentedDetector{x.name, x.rings, std::size_t(x.segments), x.rotation};
    case DetectorType::Com: return ComDetector{x.name};
    case DetectorType::Pixelated: return PixelatedDetector{x.name, x.max_angle, std::size_t(std::max(1, x.bin))};
  }
  return ComDetector{x.name};  // not reached: every DetectorType is handled above
}

std::vector<Detector> physics_detectors(const SampledScenario& s) {
  std::vector<Detector> d;
  for (const SampledDetector& x : s.detectors) d.push_back(physics_detector(x));
  return d;
}

}  // namespace stemtwin
