#include "stemtwin/scenario/key_tables.hpp"

namespace stemtwin {

namespace {

using T = KeyType;

// clang-format off
constexpr KeySpec kAcquisitionKeys[] = {
    {"noise", T::Flag, "", "true", "counting noise on (false keeps the distortions, removes the noise)"},
    {"beam_current_pA", T::Number, "pA", "microscope.current", "probe current for the dose"},
    {"scan", T::Map, "", "", "scan generator"},
    {"scan.rotation_deg", T::Number, "deg", "0", "scan rotation"},
    {"scan.flyback_us", T::Number, "µs", "0", "flyback time at the end of each line"},
    {"drift", T::Map, "", "", "specimen drift"},
    {"drift.velocity_A_per_s", T::Pair, "Å/s", "0", "constant drift velocity [vx, vy]"},
    {"drift.diffusion_A_per_sqrt_s", T::Number, "Å/√s", "0", "random-walk drift"},
    {"jitter", T::Map, "", "", "line jitter"},
    {"jitter.rms_A", T::Number, "Å", "0", "per-line offset along the fast axis (rms)"},
    {"flyback", T::Map, "", "", "flyback distortion"},
    {"flyback.amplitude_A", T::Number, "Å", "0", "offset at the start of each line"},
    {"flyback.decay_us", T::Number, "µs", "0", "decay time of that offset"},
    {"scan_noise", T::Map, "", "", "scan-coil noise"},
    {"scan_noise.frequencies_Hz", T::Numbers, "Hz", "none", "frequencies of the noise"},
    {"scan_noise.rms_A", T::Number, "Å", "0", "amplitude (rms)"},
    {"mains", T::Map, "", "", "mains pick-up"},
    {"mains.frequency_Hz", T::Number, "Hz", "50", "mains frequency"},
    {"mains.amplitude_A", T::Pair, "Å", "0", "amplitude [ax, ay]"},
    {"current", T::Map, "", "", "beam-current fluctuation"},
    {"current.relative_rms", T::Number, "", "0", "relative rms of the current"},
    {"current.correlation_time_us", T::Number, "µs", "0", "its correlation time"},
    {"annular", T::Map, "", "", "annular and segmented detector response"},
    {"annular.detection_efficiency", T::Number, "", "1", "fraction of electrons detected"},
    {"annular.shot_noise", T::Flag, "", "true", "Poisson counting noise"},
    {"annular.gain_ADU_per_electron", T::Number, "ADU/e", "1", "mean gain"},
    {"annular.gain_shape", T::Number, "", "0", "gamma shape of the gain (0 = fixed gain)"},
    {"annular.dark_offset_ADU", T::Number, "ADU", "0", "dark offset"},
    {"annular.read_noise_ADU", T::Number, "ADU", "0", "read noise (rms)"},
    {"annular.adc_bits", T::Number, "bits", "0", "ADC depth (0 = no clipping)"},
    {"annular.afterglow", T::Map, "", "off", "scintillator afterglow"},
    {"annular.afterglow.time_constant_us", T::Number, "µs", "0", "afterglow time constant"},
    {"annular.afterglow.delayed_fraction", T::Number, "", "0", "fraction of the signal delayed"},
    {"camera", T::Map, "", "", "pixelated camera (4D-STEM)"},
    {"camera.mode", T::Word, "", "counting", "counting or integrating"},
    {"camera.detection_efficiency", T::Number, "", "1", "fraction of electrons detected"},
    {"camera.shot_noise", T::Flag, "", "true", "Poisson counting noise"},
    {"camera.dead_time_s", T::Number, "s", "0", "counting dead time"},
    {"camera.dead_time_model", T::Word, "", "non_paralyzable", "paralyzable or non_paralyzable"},
    {"camera.counter_max", T::Number, "counts", "0", "counter depth (0 = unbounded)"},
    {"camera.gain_ADU_per_electron", T::Number, "ADU/e", "1", "mean gain"},
    {"camera.gain_shape", T::Number, "", "0", "gamma shape of the gain"},
    {"camera.psf_sigma_px", T::Number, "px", "0", "detector point-spread (1σ)"},
    {"camera.dark_offset_ADU", T::Number, "ADU", "0", "dark offset"},
    {"camera.read_noise_ADU", T::Number, "ADU", "0", "read noise (rms)"},
    {"camera.adc_bits", T::Number, "bits", "0", "ADC depth (0 = no clipping)"},
};

constexpr KeySpec kPerovskiteKeys[] = {
    {"a", T::Number, "Å", "3.905", "lattice parameter"},
    {"A", T::Species, "", "{Sr: 1}", "A-site species; fractions are normalised to sum 1"},
    {"B", T::Species, "", "{Ti: 1}", "B-site species"},
    {"arrangement", T::Word, "", "random", "random, layered or clustered mixed sites"},
    {"layer_axis", T::Number, "", "1", "layered: planes normal to this axis"},
    {"correlation_length", T::Number, "Å", "8", "clustered: smoothing length of the random field"},
    {"vacancy_order", T::Flag, "", "false", "brownmillerite-like ordered oxygen vacancies"},
    {"vacancy_axis", T::Number, "", "1", "axis of the vacancy-ordered planes"},
};

constexpr KeySpec kBuilderModifierKeys[] = {
    {"amorphous", T::Map, "", "", "an amorphous region advancing along `axis`"},
    {"amorphous.fraction", T::Number, "", "", "fraction of the cell made amorphous"},
    {"amorphous.axis", T::Number, "", "", "direction the front advances (0, 1, 2)"},
    {"amorphous.shape", T::Word, "", "", "planar, sinusoidal or rough front"},
    {"amorphous.amplitude", T::Number, "Å", "", "front amplitude"},
    {"amorphous.wavelength", T::Number, "Å", "", "front wavelength"},
    {"amorphous.mode", T::Word, "", "", "random_packing or displacement"},
    {"amorphous.min_distance", T::Number, "Å", "", "closest approach of placed atoms"},
    {"amorphous.displacement_rms", T::Number, "Å", "", "displacement mode: rms displacement"},
    {"vacancies", T::MapList, "", "", "remove a fraction of an element's atoms"},
    {"vacancies.element", T::Element, "", "", "element"},
    {"vacancies.fraction", T::Number, "", "", "fraction removed"},
    {"dopants", T::MapList, "", "", "substitute a fraction of host atoms"},
    {"dopants.host", T::Element, "", "", "host element"},
    {"dopants.dopant", T::Element, "", "", "dopant element"},
    {"dopants.fraction", T::Number, "", "", "fraction substituted"},
    {"interstitials", T::MapList, "", "", "add atoms at random free positions"},
    {"interstitials.element", T::Element, "", "", "element"},
    {"interstitials.count", T::Number, "atoms", "", "how many"},
    {"interstitials.min_distance", T::Number, "Å", "1.5", "closest approach to any atom"},
    {"antiphase_boundary", T::Map, "", "", "a (100) antiphase boundary (perovskite)"},
    {"antiphase_boundary.position", T::Number, "Å", "", "at x = position"},
};

constexpr KeySpec kFilmKeys[] = {
    {"substrate", T::Map, "", "SrTiO3", "substrate perovskite keys"},
    {"film", T::Map, "", "LaFeO3, a = 3.93", "film perovskite keys (bulk a)"},
    {"substrate_cells", T::Number, "cells", "6", "substrate cells along y"},
    {"film_cells", T::Number, "cells", "6", "film cells along y"},
    {"poisson", T::Number, "", "0.3", "film Poisson ratio"},
    {"vacuum", T::Number, "Å", "0", "vacuum above the film"},
};

constexpr KeySpec kNanoparticleKeys[] = {
    {"a", T::Number, "Å", "4.078", "fcc lattice parameter"},
    {"element", T::Element, "", "Au", "particle element"},
    {"shape", T::Word, "", "cuboctahedron", "cuboctahedron or sphere"},
    {"radius", T::Number, "Å", "10", "particle radius"},
    {"cell", T::Numbers, "Å", "[40, 40]", "lateral cell"},
    {"support_thickness", T::Number, "Å", "30", "support film thickness"},
    {"support_element", T::Element, "", "C", "support element"},
    {"support_density", T::Number, "atoms/Å³", "0.1003", "support number density"},
    {"gap", T::Number, "Å", "2", "gap between particle and support"},
};
// clang-format on

}  // namespace

std::span<const KeySpec> acquisition_keys() { return kAcquisitionKeys; }
std::span<const KeySpec> perovskite_keys() { return kPerovskiteKeys; }
std::span<const KeySpec> builder_modifier_keys() { return kBuilderModifierKeys; }
std::span<const KeySpec> film_keys() { return kFilmKeys; }
std::span<const KeySpec> nanoparticle_keys() { return kNanoparticleKeys; }

std::string key_list(std::span<const KeySpec> table) {
  std::string out;
  for (const KeySpec& k : table)
    if (std::string(k.path).find('.') == std::string::npos) out += (out.empty() ? "" : ", ") + std::string(k.path);
  return out;
}

std::set<std::string> allowed_keys(std::span<const KeySpec> table, const std::string& parent) {
  std::set<std::string> out;
  const std::string prefix = parent.empty() ? "" : parent + ".";
  for (const KeySpec& k : table) {
    const std::string p = k.path;
    if (p.size() <= prefix.size() || p.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = p.substr(prefix.size());
    if (rest.find('.') == std::string::npos) out.insert(rest);
  }
  return out;
}

}  // namespace stemtwin
