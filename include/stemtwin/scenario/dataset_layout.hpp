#pragma once
// What a scenario's dataset holds: its image channels and its layout (dataset.hpp), decided
// from the scenario alone (the runner completes what physics decides). Here rather than in
// dataset/ so that storage knows nothing of the YAML spec.
#include <string>
#include <vector>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin {

/// Image channels a detector produces: annular → {name}; com → {name_x, name_y};
/// segmented → {name_r<ring>s<segment>}; radial and pixelated → {} (own groups).
std::vector<std::string> image_channels(const DetectorSpec& detector);

/// A layout for a scenario: image size from the scan, channels from the detectors, params
/// from parameter_info(), class and masks from labels. The runner completes what physics
/// decides: radial bin edges when a radial detector has no `max` (edges are empty then),
/// and the pattern size of pixelated detectors (kx = ky = 0 then), plus `species`.
DatasetLayout layout_for(const ScenarioSpec& spec, Shard shard = {});

}  // namespace stemtwin
