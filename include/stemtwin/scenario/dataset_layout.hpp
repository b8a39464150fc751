#pragma once
// What a scenario's dataset holds: its image channels and its layout (dataset.hpp), decided
// from the scenario alone (the runner completes what physics decides). Here rather than in
// dataset/ so that storage knows nothing of the YAML spec.
#include <string>
#include <vector>

#include "stemtwin/acquisition/readout.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/scenario/scenario.hpp"

namespace stemtwin {

/// The image channels of a sample's dataset row, in order: readout_channels() of its
/// detectors (acquisition/readout.hpp: annular → {name}; segmented → {name_r<ring>s<segment>};
/// com → {name_x, name_y, name_idpc}; radial and pixelated → none, they have groups of their
/// own). Names, rings and segment counts are fixed in a scenario, so sample 0 speaks for all.
std::vector<ReadoutChannel> image_channels(const SampledScenario& s);

/// The microscope and detector settings of one sample as its dataset row stores them
/// (/instrument, dataset/instrument.hpp): what previews, axes and exports read instead of the
/// scenario text.
InstrumentSettings instrument_settings(const SampledScenario& s);

/// The layout's instrument part: the detectors (names, types; fixed in a scenario), the beam
/// energy when no /params column samples it, and each image channel's units (acquired: as the
/// acquisition section says; clean: fraction of the probe, or mrad for COM).
InstrumentLayout instrument_layout(const SampledScenario& s0, const std::vector<ParameterInfo>& params);

/// A layout for a scenario: image size from the scan, channels from the detectors, params
/// from parameter_info(), class and masks from labels, the instrument from instrument_layout(). The runner completes what physics
/// decides: radial bin edges when a radial detector has no `max` (edges are empty then),
/// and the pattern size of pixelated detectors (kx = ky = 0 then), plus `species`.
DatasetLayout layout_for(const ScenarioSpec& spec, Shard shard = {});

}  // namespace stemtwin
