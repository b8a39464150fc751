#pragma once
// Internal to src/acquisition: the one read-out (readout.hpp) restricted to some channels, so
// that readout_rows (readout_rows.hpp) reads out exactly as readout() does for the channels it
// streams and never computes the others (iDPC needs at least 2 × 2 pixels).
#include <functional>
#include <vector>

#include "stemtwin/acquisition/readout.hpp"

namespace stemtwin::detail {

/// readout() for the channels `wanted` accepts (in the canonical order, with their own noise
/// streams); iDPC needs its detector's COM x and y wanted too.
ReadOut readout_where(const StemResult& result, const std::vector<Detector>& detectors, const ReadoutSettings& settings,
                      const AcquisitionSettings& acquisition, const DistortedScan& scan,
                      const std::function<bool(const ReadoutChannel&)>& wanted);

}  // namespace stemtwin::detail
