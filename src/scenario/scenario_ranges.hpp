#pragma once
// Internal to src/scenario/: the scenario's messages about a key's physical range. The ranges
// themselves are the one table of acquisition/ranges.hpp (`key_ranges()`, listed again in
// docs/scenario.md "Ranges"), checked by the parser as soon as a value or a distribution's
// support is read.
#include <string>

#include "stemtwin/acquisition/ranges.hpp"

namespace stemtwin::scenario_ranges {

using stemtwin::Range;

/// The table's range for a key path ("detectors.haadf.inner", "scan.pixels[1]"), or null.
inline const Range* range_for(const std::string& path) { return range_for_key(path); }
/// "must be ≥ lo and ≤ hi unit".
std::string describe_range(const Range& r);
/// "" when every value in [lo, hi] is allowed at `path`, else the message.
std::string range_problem(const std::string& path, double lo, double hi, bool fixed);

}  // namespace stemtwin::scenario_ranges
