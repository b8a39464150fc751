#pragma once
// A scenario's sampled detector carries the physics Detector (scenario.hpp: SampledDetector;
// made when a sample is drawn, scenario_sampling.cpp). Everything downstream — the
// simulation, the read-out's channel names (acquisition/readout.hpp), the dataset layout,
// radial bin edges and 4D pattern shapes — works on the physics detector.
#include <vector>

#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin {

/// The physics detector of one sampled detector (angles in mrad; pixelated bin ≥ 1).
Detector physics_detector(const SampledDetector& detector);
/// The scenario's word for a physics detector's kind.
DetectorType detector_type(const Detector& detector);

/// The angles (mrad) a detector collects, [inner, outer]: annular its annulus, segmented its
/// first and last ring edges, radial [0, max], pixelated [0, max_angle], com [0,
/// com_max_angle_mrad]; an outer 0 means up to the band limit. What the band-limit checks
/// and `sampling: auto` compare with the simulated angles.
struct CollectionRange {
  double inner_mrad = 0, outer_mrad = 0;
};
CollectionRange collection_range(const SampledDetector& detector);
/// Every detector of a sample, in the scenario's order.
std::vector<Detector> physics_detectors(const SampledScenario& s);

}  // namespace stemtwin
