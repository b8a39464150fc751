#include "stemtwin/acquisition/ranges.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace stemtwin {

std::string format_quantity(double value, std::string_view unit) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  std::string out = buf;
  if (!unit.empty()) {
    out += ' ';
    out += unit;
  }
  return out;
}

double check_range(const Range& r, double value, std::string_view name) {
  if (r.contains(value)) return value;
  const std::string what = name.empty() ? std::string(r.name) : std::string(name);
  std::string bounds;
  if (r.lo == -r.hi)
    bounds = "±" + format_quantity(r.hi, r.unit);
  else
    bounds = format_quantity(r.lo, "") + (r.lo_open ? " < x ≤ " : " … ") + format_quantity(r.hi, r.unit);
  throw std::invalid_argument(what + " = " + format_quantity(value, r.unit) +
                              (std::isfinite(value) ? "" : " (not a finite number)") + " is outside " + bounds + " (" +
                              r.why + ")");
}

}  // namespace stemtwin
