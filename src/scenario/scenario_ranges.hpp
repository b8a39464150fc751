#pragma once
// Internal to src/scenario/: the physical range of every numeric scenario key (the table
// kRanges in scenario_ranges.cpp, listed again in docs/scenario.md "Ranges"), checked by the
// parser (scenario.cpp) as soon as a value or a distribution's support is read.
#include <string>

namespace stemtwin::scenario_ranges {

struct Range {
  const char* path;
  double lo, hi;
  bool lo_strict;  ///< lo itself is excluded (e.g. a convergence angle > 0)
  bool whole;      ///< fixed values must be integers (draws are rounded)
  const char* unit;
};

/// The table's row for a key path ("detectors.haadf.inner", "scan.pixels[1]"), or null.
const Range* range_for(const std::string& path);
/// "must be ≥ lo and ≤ hi unit".
std::string describe_range(const Range& r);
/// "" when every value in [lo, hi] is allowed at `path`, else the message.
std::string range_problem(const std::string& path, double lo, double hi, bool fixed);

}  // namespace stemtwin::scenario_ranges
