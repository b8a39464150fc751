#include "stemtwin/acquisition/ranges.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace stemtwin {

namespace {

/// A row of a quantity only scenarios set (specimen builders, detector geometry, simulation
/// and acquisition-model settings): the scenario's messages name the key path, not `name`.
constexpr Range key(double lo, double hi, const char* unit, bool lo_open = false) {
  return Range{"", lo, hi, unit, "", lo_open, false};
}
/// The same for a whole number (fixed values must be integers; draws are rounded).
constexpr Range whole(double lo, double hi, const char* unit, bool lo_open = false) {
  return Range{"", lo, hi, unit, "", lo_open, true};
}

// The scenario keys' ranges: what every numeric scenario key may hold, checked by the parser
// as soon as a value (or the support of a distribution) is read, before any work. Paths are
// key paths with list indices written "[]" and '*' matching one path component (a detector's
// name, an aberration's suffix, an element symbol); the first matching row applies. A "#"
// suffix limits the length of a list. Rows for what the session sets too are the session's
// named entries (ranges.hpp), so both drivers refuse the same values.
//
// The bounds are what a microscopist would still recognise as an experiment, wide enough for
// every scenario in scenarios/ and the tests, narrow enough that no accepted value turns the
// simulation into an all-zero image, an hours-long loop or a multi-GB allocation (pixels ≤
// 4096 per axis, ≤ 10^4 interstitials, ≤ 32 segmented rings …). docs/scenario.md lists the
// same table ("Ranges"; tests/malformed_inputs.py checks both name the same keys).
// clang-format off
const KeyRange kKeyRanges[] = {
    // top level
    {"samples", whole(1, 1e7, "")},
    // specimen
    {"specimen.zone_axis[]", whole(-20, 20, "")},
    {"specimen.repeat[]", whole(0.5, 200, "cells", true)},
    {"specimen.repeat (x·y·z)", whole(1, 1e6, "cells")},  // ~5·10^6 atoms of a perovskite
    {"specimen.thermal.rms", key(0, 1, "Å")},
    {"specimen.thermal.rms.*", key(0, 1, "Å")},
    {"specimen.thermal.configurations", whole(0.5, 1000, "", true)},
    // specimen.builder (free-form keys; which keys a builder takes: check_physics_keys)
    {"specimen.builder.a", key(2, 20, "Å")},
    {"specimen.builder.*.a", key(2, 20, "Å")},
    {"specimen.builder.A.*", key(0, 1e3, "(relative fraction)")},
    {"specimen.builder.B.*", key(0, 1e3, "(relative fraction)")},
    {"specimen.builder.*.A.*", key(0, 1e3, "(relative fraction)")},
    {"specimen.builder.*.B.*", key(0, 1e3, "(relative fraction)")},
    {"specimen.builder.layer_axis", whole(0, 2, "")},
    {"specimen.builder.*.layer_axis", whole(0, 2, "")},
    {"specimen.builder.vacancy_axis", whole(0, 2, "")},
    {"specimen.builder.*.vacancy_axis", whole(0, 2, "")},
    {"specimen.builder.correlation_length", key(0, 1e4, "Å")},
    {"specimen.builder.*.correlation_length", key(0, 1e4, "Å")},
    {"specimen.builder.substrate_cells", whole(0, 1000, "cells")},
    {"specimen.builder.film_cells", whole(0, 1000, "cells")},
    {"specimen.builder.poisson", key(-1, 0.5, "")},
    {"specimen.builder.vacuum", key(0, 1e4, "Å")},
    {"specimen.builder.amorphous.fraction", key(0, 1, "")},
    {"specimen.builder.amorphous.axis", whole(0, 2, "")},
    {"specimen.builder.amorphous.amplitude", key(0, 1e4, "Å")},
    {"specimen.builder.amorphous.wavelength", key(0, 1e5, "Å", true)},
    {"specimen.builder.amorphous.min_distance", key(0, 10, "Å")},
    {"specimen.builder.amorphous.displacement_rms", key(0, 5, "Å")},
    {"specimen.builder.vacancies#", whole(0, 100, "entries")},
    {"specimen.builder.vacancies[].fraction", key(0, 1, "")},
    {"specimen.builder.dopants#", whole(0, 100, "entries")},
    {"specimen.builder.dopants[].fraction", key(0, 1, "")},
    {"specimen.builder.interstitials#", whole(0, 100, "entries")},
    {"specimen.builder.interstitials[].count", whole(0, 1e4, "atoms")},
    {"specimen.builder.interstitials[].min_distance", key(0, 10, "Å")},
    {"specimen.builder.antiphase_boundary.position", key(-1e4, 1e4, "Å")},
    {"specimen.builder.radius", key(0, 500, "Å", true)},
    {"specimen.builder.cell#", whole(2, 2, "entries")},
    {"specimen.builder.cell[]", key(0, 2000, "Å", true)},
    {"specimen.builder.support_thickness", key(0, 1e4, "Å")},
    {"specimen.builder.support_density", key(0, 1, "atoms/Å³", true)},  // diamond: 0.18
    {"specimen.builder.gap", key(0, 1e4, "Å")},
    // microscope
    {"microscope.energy", ranges::kEnergy},
    {"microscope.convergence", ranges::kConvergence},
    {"microscope.aberrations.*_angle", ranges::kAberrationAngle},
    {"microscope.aberrations.phi*", ranges::kAberrationAngle},
    {"microscope.aberrations.defocus", ranges::kAberration},
    {"microscope.aberrations.astigmatism", ranges::kAberration},
    {"microscope.aberrations.C1*", ranges::kAberration},
    {"microscope.aberrations.coma", ranges::kAberration},
    {"microscope.aberrations.trefoil", ranges::kAberration},
    {"microscope.aberrations.C2*", ranges::kAberration},
    {"microscope.aberrations.Cs", ranges::kAberration},
    {"microscope.aberrations.C3*", ranges::kAberration},
    {"microscope.aberrations.C4*", ranges::kAberrationC4},
    {"microscope.aberrations.C5", ranges::kAberrationC5},
    {"microscope.aberrations.C5*", ranges::kAberrationC5},
    {"microscope.focal_spread", ranges::kFocalSpread},
    {"microscope.source_size", ranges::kSourceSize},
    {"microscope.current", ranges::kCurrent},
    // scan
    {"scan.start[]", key(-1e5, 1e5, "Å")},
    {"scan.end[]", key(-1e5, 1e5, "Å")},
    {"scan.step", key(1e-3, 1e4, "Å")},
    {"scan.step[]", key(1e-3, 1e4, "Å")},
    {"scan.fov[]", ranges::kFieldOfView},
    {"scan.pixels[]", whole(1, 4096, "pixels")},
    {"scan.dwell", ranges::kDwell},
    // detectors (by name)
    {"detectors#", whole(1, 64, "detectors")},
    {"detectors.*.inner", key(0, 1000, "mrad")},
    {"detectors.*.outer", key(0, 1000, "mrad")},
    {"detectors.*.azimuth[]", key(-360, 720, "deg")},
    {"detectors.*.step", key(0.01, 1000, "mrad")},
    {"detectors.*.max", key(0, 1000, "mrad")},
    {"detectors.*.rings#", whole(2, 33, "ring edges")},
    {"detectors.*.rings[]", key(0, 1000, "mrad")},
    {"detectors.*.segments", whole(1, 64, "")},
    {"detectors.*.rotation", key(-360, 360, "deg")},
    {"detectors.*.max_angle", key(0, 1000, "mrad")},
    {"detectors.*.bin", whole(1, 64, "")},
    // simulation
    {"simulation.interpolation", whole(1, 64, "")},
    {"simulation.sampling", key(0.005, 2, "Å")},
    {"simulation.slice_thickness", key(0.2, 50, "Å")},
    // acquisition (free-form keys; which keys exist: check_physics_keys)
    {"acquisition.beam_current_pA", ranges::kCurrent},
    {"acquisition.scan.rotation_deg", ranges::kScanRotation},
    {"acquisition.scan.flyback_us", ranges::kFlyback},
    {"acquisition.drift.velocity_A_per_s", key(-1e3, 1e3, "Å/s")},
    {"acquisition.drift.velocity_A_per_s[]", key(-1e3, 1e3, "Å/s")},
    {"acquisition.drift.diffusion_A_per_sqrt_s", key(0, 1e3, "Å/√s")},
    {"acquisition.jitter.rms_A", key(0, 100, "Å")},
    {"acquisition.flyback.amplitude_A", key(-1e3, 1e3, "Å")},
    {"acquisition.flyback.decay_us", key(0, 1e6, "µs")},
    {"acquisition.scan_noise.frequencies_Hz#", whole(0, 100, "frequencies")},
    {"acquisition.scan_noise.frequencies_Hz[]", key(0, 1e7, "Hz")},
    {"acquisition.scan_noise.rms_A", key(0, 100, "Å")},
    {"acquisition.mains.frequency_Hz", key(0, 1e4, "Hz")},
    {"acquisition.mains.amplitude_A", key(-1e3, 1e3, "Å")},
    {"acquisition.mains.amplitude_A[]", key(-1e3, 1e3, "Å")},
    {"acquisition.current.relative_rms", key(0, 1, "")},
    {"acquisition.current.correlation_time_us", key(0, 1e9, "µs")},
    {"acquisition.*.detection_efficiency", key(0, 1, "")},
    {"acquisition.*.gain_ADU_per_electron", key(0, 1e6, "ADU/e", true)},
    {"acquisition.*.gain_shape", key(0, 1e6, "")},
    {"acquisition.*.dark_offset_ADU", key(-1e9, 1e9, "ADU")},
    {"acquisition.*.read_noise_ADU", key(0, 1e6, "ADU")},
    {"acquisition.*.adc_bits", whole(0, 32, "bits")},
    {"acquisition.annular.afterglow.time_constant_us", key(0, 1e6, "µs")},
    {"acquisition.annular.afterglow.delayed_fraction", key(0, 1, "")},
    {"acquisition.camera.dead_time_s", key(0, 1, "s")},
    {"acquisition.camera.counter_max", whole(1, 9007199254740992.0, "counts")},
    {"acquisition.camera.psf_sigma_px", key(0, 100, "px")},
    // labels, output
    {"labels.mask_radius", key(0, 10, "Å", true)},
    {"labels.class_names#", whole(1, 1000, "names")},
    {"output.compression", whole(0, 9, "")},
    {"output.preview_samples", whole(1, 1000, "samples")},
};
// clang-format on

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

std::span<const KeyRange> key_ranges() { return kKeyRanges; }

const Range* range_for_key(const std::string& path) {
  std::string key;  // list indices → "[]"
  for (std::size_t i = 0; i < path.size(); ++i) {
    key += path[i];
    if (path[i] == '[') {
      std::size_t j = i + 1;
      while (j < path.size() && std::isdigit(static_cast<unsigned char>(path[j]))) ++j;
      if (j < path.size() && path[j] == ']' && j > i + 1) i = j - 1;
    }
  }
  for (const KeyRange& r : kKeyRanges)
    if (path_matches(r.path, key.c_str())) return &r.range;
  return nullptr;
}

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
