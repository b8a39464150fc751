#include "scenario_ranges.hpp"

#include <cctype>
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

// Physical ranges: the one table of what every numeric scenario key may hold, checked by
// the parser as soon as a value (or the support of a distribution) is read, before any
// work. Paths are key paths with list indices written "[]" and '*' matching one path
// component (a detector's name, an aberration's suffix, an element symbol); the first
// matching row applies. A "#" suffix limits the length of a list.
//
// The bounds are what a microscopist would still recognise as an experiment (10–1000 kV,
// dwell 10 ns–1 s, at most 1 µA of beam current, slices of 0.2–50 Å, …), wide enough for
// every scenario in scenarios/ and the tests, narrow enough that no accepted value turns
// the simulation into an all-zero image, an hours-long loop or a multi-GB allocation
// (pixels ≤ 4096 per axis, ≤ 10^4 interstitials, ≤ 32 segmented rings …). docs/scenario.md
// lists the same table ("Ranges").


constexpr double kTwoPi = 6.2832;  // angles in rad: one turn (rounded up)

// clang-format off
constexpr Range kRanges[] = {
    // top level
    {"samples", 1, 1e7, false, true, ""},
    // specimen
    {"specimen.zone_axis[]", -20, 20, false, true, ""},
    {"specimen.repeat[]", 0.5, 200, true, true, "cells"},
    {"specimen.repeat (x·y·z)", 1, 1e6, false, true, "cells"},  // ~5·10^6 atoms of a perovskite
    {"specimen.thermal.rms", 0, 1, false, false, "Å"},
    {"specimen.thermal.rms.*", 0, 1, false, false, "Å"},
    {"specimen.thermal.configurations", 0.5, 1000, true, true, ""},
    // specimen.builder (free-form keys; which keys a builder takes: check_physics_keys)
    {"specimen.builder.a", 2, 20, false, false, "Å"},
    {"specimen.builder.*.a", 2, 20, false, false, "Å"},
    {"specimen.builder.A.*", 0, 1e3, false, false, "(relative fraction)"},
    {"specimen.builder.B.*", 0, 1e3, false, false, "(relative fraction)"},
    {"specimen.builder.*.A.*", 0, 1e3, false, false, "(relative fraction)"},
    {"specimen.builder.*.B.*", 0, 1e3, false, false, "(relative fraction)"},
    {"specimen.builder.layer_axis", 0, 2, false, true, ""},
    {"specimen.builder.*.layer_axis", 0, 2, false, true, ""},
    {"specimen.builder.vacancy_axis", 0, 2, false, true, ""},
    {"specimen.builder.*.vacancy_axis", 0, 2, false, true, ""},
    {"specimen.builder.correlation_length", 0, 1e4, false, false, "Å"},
    {"specimen.builder.*.correlation_length", 0, 1e4, false, false, "Å"},
    {"specimen.builder.substrate_cells", 0, 1000, false, true, "cells"},
    {"specimen.builder.film_cells", 0, 1000, false, true, "cells"},
    {"specimen.builder.poisson", -1, 0.5, false, false, ""},
    {"specimen.builder.vacuum", 0, 1e4, false, false, "Å"},
    {"specimen.builder.amorphous.fraction", 0, 1, false, false, ""},
    {"specimen.builder.amorphous.axis", 0, 2, false, true, ""},
    {"specimen.builder.amorphous.amplitude", 0, 1e4, false, false, "Å"},
    {"specimen.builder.amorphous.wavelength", 0, 1e5, true, false, "Å"},
    {"specimen.builder.amorphous.min_distance", 0, 10, false, false, "Å"},
    {"specimen.builder.amorphous.displacement_rms", 0, 5, false, false, "Å"},
    {"specimen.builder.vacancies#", 0, 100, false, true, "entries"},
    {"specimen.builder.vacancies[].fraction", 0, 1, false, false, ""},
    {"specimen.builder.dopants#", 0, 100, false, true, "entries"},
    {"specimen.builder.dopants[].fraction", 0, 1, false, false, ""},
    {"specimen.builder.interstitials#", 0, 100, false, true, "entries"},
    {"specimen.builder.interstitials[].count", 0, 1e4, false, true, "atoms"},
    {"specimen.builder.interstitials[].min_distance", 0, 10, false, false, "Å"},
    {"specimen.builder.antiphase_boundary.position", -1e4, 1e4, false, false, "Å"},
    {"specimen.builder.radius", 0, 500, true, false, "Å"},
    {"specimen.builder.cell#", 2, 2, false, true, "entries"},
    {"specimen.builder.cell[]", 0, 2000, true, false, "Å"},
    {"specimen.builder.support_thickness", 0, 1e4, false, false, "Å"},
    {"specimen.builder.support_density", 0, 30, true, false, "g/cm³"},
    {"specimen.builder.gap", 0, 1e4, false, false, "Å"},
    // microscope
    {"microscope.energy", 10e3, 1000e3, false, false, "eV"},
    {"microscope.convergence", 0, 200, true, false, "mrad"},
    {"microscope.aberrations.*_angle", -kTwoPi, kTwoPi, false, false, "rad"},
    {"microscope.aberrations.phi*", -kTwoPi, kTwoPi, false, false, "rad"},
    {"microscope.aberrations.defocus", -1e5, 1e5, false, false, "Å"},
    {"microscope.aberrations.astigmatism", -1e5, 1e5, false, false, "Å"},
    {"microscope.aberrations.C1*", -1e5, 1e5, false, false, "Å"},
    {"microscope.aberrations.coma", -1e6, 1e6, false, false, "Å"},
    {"microscope.aberrations.trefoil", -1e6, 1e6, false, false, "Å"},
    {"microscope.aberrations.C2*", -1e6, 1e6, false, false, "Å"},
    {"microscope.aberrations.Cs", -1e8, 1e8, false, false, "Å"},
    {"microscope.aberrations.C3*", -1e8, 1e8, false, false, "Å"},
    {"microscope.aberrations.C4*", -1e9, 1e9, false, false, "Å"},
    {"microscope.aberrations.C5", -1e10, 1e10, false, false, "Å"},
    {"microscope.aberrations.C5*", -1e10, 1e10, false, false, "Å"},
    {"microscope.focal_spread", 0, 1000, false, false, "Å"},
    {"microscope.source_size", 0, 10, false, false, "Å"},
    {"microscope.current", 0, 1e6, false, false, "pA"},
    // scan
    {"scan.start[]", -1e5, 1e5, false, false, "Å"},
    {"scan.end[]", -1e5, 1e5, false, false, "Å"},
    {"scan.step", 1e-3, 1e4, false, false, "Å"},
    {"scan.step[]", 1e-3, 1e4, false, false, "Å"},
    {"scan.fov[]", 0, 1e5, true, false, "Å"},
    {"scan.pixels[]", 1, 4096, false, true, "pixels"},
    {"scan.dwell", 0.01, 1e6, false, false, "µs"},
    // detectors (by name)
    {"detectors#", 1, 64, false, true, "detectors"},
    {"detectors.*.inner", 0, 1000, false, false, "mrad"},
    {"detectors.*.outer", 0, 1000, false, false, "mrad"},
    {"detectors.*.azimuth[]", -360, 720, false, false, "deg"},
    {"detectors.*.step", 0.01, 1000, false, false, "mrad"},
    {"detectors.*.max", 0, 1000, false, false, "mrad"},
    {"detectors.*.rings#", 2, 33, false, true, "ring edges"},
    {"detectors.*.rings[]", 0, 1000, false, false, "mrad"},
    {"detectors.*.segments", 1, 64, false, true, ""},
    {"detectors.*.rotation", -360, 360, false, false, "deg"},
    {"detectors.*.max_angle", 0, 1000, false, false, "mrad"},
    {"detectors.*.bin", 1, 64, false, true, ""},
    // simulation
    {"simulation.interpolation", 1, 64, false, true, ""},
    {"simulation.sampling", 0.005, 2, false, false, "Å"},
    {"simulation.slice_thickness", 0.2, 50, false, false, "Å"},
    // acquisition (free-form keys; which keys exist: check_physics_keys)
    {"acquisition.beam_current_pA", 0, 1e6, false, false, "pA"},
    {"acquisition.scan.rotation_deg", -360, 360, false, false, "deg"},
    {"acquisition.scan.flyback_us", 0, 1e6, false, false, "µs"},
    {"acquisition.drift.velocity_A_per_s", -1e3, 1e3, false, false, "Å/s"},
    {"acquisition.drift.velocity_A_per_s[]", -1e3, 1e3, false, false, "Å/s"},
    {"acquisition.drift.diffusion_A_per_sqrt_s", 0, 1e3, false, false, "Å/√s"},
    {"acquisition.jitter.rms_A", 0, 100, false, false, "Å"},
    {"acquisition.flyback.amplitude_A", -1e3, 1e3, false, false, "Å"},
    {"acquisition.flyback.decay_us", 0, 1e6, false, false, "µs"},
    {"acquisition.scan_noise.frequencies_Hz#", 0, 100, false, true, "frequencies"},
    {"acquisition.scan_noise.frequencies_Hz[]", 0, 1e7, false, false, "Hz"},
    {"acquisition.scan_noise.rms_A", 0, 100, false, false, "Å"},
    {"acquisition.mains.frequency_Hz", 0, 1e4, false, false, "Hz"},
    {"acquisition.mains.amplitude_A", -1e3, 1e3, false, false, "Å"},
    {"acquisition.mains.amplitude_A[]", -1e3, 1e3, false, false, "Å"},
    {"acquisition.current.relative_rms", 0, 1, false, false, ""},
    {"acquisition.current.correlation_time_us", 0, 1e9, false, false, "µs"},
    {"acquisition.*.detection_efficiency", 0, 1, false, false, ""},
    {"acquisition.*.gain_ADU_per_electron", 0, 1e6, true, false, "ADU/e"},
    {"acquisition.*.gain_shape", 0, 1e6, false, false, ""},
    {"acquisition.*.dark_offset_ADU", -1e9, 1e9, false, false, "ADU"},
    {"acquisition.*.read_noise_ADU", 0, 1e6, false, false, "ADU"},
    {"acquisition.*.adc_bits", 0, 32, false, true, "bits"},
    {"acquisition.annular.afterglow.time_constant_us", 0, 1e6, false, false, "µs"},
    {"acquisition.annular.afterglow.delayed_fraction", 0, 1, false, false, ""},
    {"acquisition.camera.dead_time_s", 0, 1, false, false, "s"},
    {"acquisition.camera.counter_max", 1, 9007199254740992.0, false, true, "counts"},
    {"acquisition.camera.psf_sigma_px", 0, 100, false, false, "px"},
    // labels, output
    {"labels.mask_radius", 0, 10, true, false, "Å"},
    {"labels.class_names#", 1, 1000, false, true, "names"},
    {"output.compression", 0, 9, false, true, ""},
    {"output.preview_samples", 1, 1000, false, true, "samples"},
};
// clang-format on

namespace {

/// `pattern` matches `path` when equal, '*' standing for any run of characters but '.'.
bool path_matches(const char* pattern, const char* path) {
  if (*pattern == '\0') return *path == '\0';
  if (*pattern == '*') {
    for (const char* p = path;; ++p) {
      if (path_matches(pattern + 1, p)) return true;
      if (*p == '\0' || *p == '.') return false;
    }
  }
  return *pattern == *path && path_matches(pattern + 1, path + 1);
}

}  // namespace

/// The table's row for a key path ("detectors.haadf.inner", "scan.pixels[1]"), or null.
const Range* range_for(const std::string& path) {
  std::string key;  // list indices → "[]"
  for (std::size_t i = 0; i < path.size(); ++i) {
    key += path[i];
    if (path[i] == '[') {
      std::size_t j = i + 1;
      while (j < path.size() && std::isdigit(static_cast<unsigned char>(path[j]))) ++j;
      if (j < path.size() && path[j] == ']' && j > i + 1) i = j - 1;
    }
  }
  for (const Range& r : kRanges)
    if (path_matches(r.path, key.c_str())) return &r;
  return nullptr;
}

std::string describe_range(const Range& r) {
  std::string s = std::string("must be ") + (r.lo_strict ? "> " : "≥ ") + fmt(r.lo) + " and ≤ " + fmt(r.hi);
  if (*r.unit) s += std::string(" ") + r.unit;
  return s;
}

/// "" when every value in [lo, hi] is allowed at `path`, else the message.
std::string range_problem(const std::string& path, double lo, double hi, bool fixed) {
  const Range* r = range_for(path);
  if (!r) return "";
  const bool low_ok = r->lo_strict ? lo > r->lo : lo >= r->lo;
  if (!low_ok || !(hi <= r->hi))
    return describe_range(*r) + (fixed ? " (got " + fmt(lo) + ")"
                                       : " for every draw (draws span " + fmt(lo) + " to " + fmt(hi) + ")");
  if (r->whole && fixed && lo != std::floor(lo)) return "expected a whole number, got " + fmt(lo);
  return "";
}

}  // namespace stemtwin::scenario_ranges
