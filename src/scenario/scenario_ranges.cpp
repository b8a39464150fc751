#include "scenario_ranges.hpp"

#include <cmath>
#include <sstream>

namespace stemtwin::scenario_ranges {

namespace {

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

}  // namespace

std::string describe_range(const Range& r) {
  std::string s = std::string("must be ") + (r.lo_open ? "> " : "≥ ") + fmt(r.lo) + " and ≤ " + fmt(r.hi);
  if (*r.unit) s += std::string(" ") + r.unit;
  return s;
}

/// "" when every value in [lo, hi] is allowed at `path`, else the message.
std::string range_problem(const std::string& path, double lo, double hi, bool fixed) {
  const Range* r = range_for(path);
  if (!r) return "";
  const bool low_ok = r->lo_open ? lo > r->lo : lo >= r->lo;
  if (!low_ok || !(hi <= r->hi))
    return describe_range(*r) + (fixed ? " (got " + fmt(lo) + ")"
                                       : " for every draw (draws span " + fmt(lo) + " to " + fmt(hi) + ")");
  if (r->whole && fixed && lo != std::floor(lo)) return "expected a whole number, got " + fmt(lo);
  return "";
}

}  // namespace stemtwin::scenario_ranges
