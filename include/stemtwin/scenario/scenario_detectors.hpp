#pragma once
// The one conversion of a scenario's sampled detector (a flat record, one field per kind,
// as the YAML spells it) to the physics Detector variant. Everything downstream — the
// simulation, the read-out's channel names (acquisition/readout.hpp), the dataset layout,
// radial bin edges and 4D pattern shapes — works on the physics detector.
#include <vector>

#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin {

/// The physics detector of one sampled detector (angles in mrad; pixelated bin ≥ 1).
Detector physics_detector(const SampledDetector& detector);
/// Every detector of a sample, in the scenario's order.
std::vector<Detector> physics_detectors(const SampledScenario& s);

}  // namespace stemtwin
