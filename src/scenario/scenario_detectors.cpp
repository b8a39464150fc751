#include "stemtwin/scenario/scenario_detectors.hpp"

#include <algorithm>
#include <utility>
#include <variant>

namespace stemtwin {

DetectorType detector_type(const Detector& d) {
  if (std::holds_alternative<AnnularDetector>(d)) return DetectorType::Annular;
  if (std::holds_alternative<RadialDetector>(d)) return DetectorType::Radial;
  if (std::holds_alternative<SegmentedDetector>(d)) return DetectorType::Segmented;
  if (std::holds_alternative<PixelatedDetector>(d)) return DetectorType::Pixelated;
  return DetectorType::Com;
}

SampledDetector SampledDetector::of(Detector detector, double com_max_angle_mrad) {
  SampledDetector s;
  s.name = detector_name(detector);
  s.type = detector_type(detector);
  s.detector = std::move(detector);
  s.com_max_angle_mrad = s.type == DetectorType::Com ? com_max_angle_mrad : 0;
  return s;
}

Detector physics_detector(const SampledDetector& x) { return x.detector; }

CollectionRange collection_range(const SampledDetector& x) {
  if (const auto* a = std::get_if<AnnularDetector>(&x.detector)) return {a->inner_mrad, a->outer_mrad};
  if (const auto* s = std::get_if<SegmentedDetector>(&x.detector))
    return s->ring_edges_mrad.empty() ? CollectionRange{} : CollectionRange{s->ring_edges_mrad.front(), s->ring_edges_mrad.back()};
  if (const auto* r = std::get_if<RadialDetector>(&x.detector)) return {0, r->max_mrad};
  if (const auto* p = std::get_if<PixelatedDetector>(&x.detector)) return {0, p->max_angle_mrad};
  return {0, x.com_max_angle_mrad};
}

std::vector<Detector> physics_detectors(const SampledScenario& s) {
  std::vector<Detector> d;
  for (const SampledDetector& x : s.detectors) d.push_back(physics_detector(x));
  return d;
}

}  // namespace stemtwin
