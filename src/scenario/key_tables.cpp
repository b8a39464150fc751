#include "stemtwin/scenario/key_tables.hpp"

#include <vector>

#include "stemtwin/acquisition/camera.hpp"
#include "stemtwin/scenario/key_reader.hpp"
#include "stemtwin/specimen/names.hpp"

namespace stemtwin {

namespace {

using T = KeyType;
using A = AcquisitionKeys;
using P = PerovskiteParams;
using M = ModifierKeys;
using F = FilmParams;
using N = NanoparticleParams;
using W = WorldParams;
using WW = WorldWindowKeys;

constexpr NamedValue<DeadTimeModel> kDeadTimeModelNames[] = {{"non_paralyzable", DeadTimeModel::NonParalyzable},
                                                             {"paralyzable", DeadTimeModel::Paralyzable}};

// A row: {path, type, unit, default, doc} and the field its value goes to (key_reader.hpp);
// {} for a map or a list of maps, whose keys have rows of their own.

// clang-format off
constexpr KeyRow<AcquisitionKeys> kAcquisitionKeys[] = {
    {{"noise", T::Flag, "", "true", "counting noise on (false keeps the distortions, removes the noise)"}, field<A, &A::noise>()},
    {{"beam_current_pA", T::Number, "pA", "microscope.current", "probe current for the dose"}, field<A, &A::beam_current_pA>()},
    {{"scan", T::Map, "", "", "scan generator"}, {}},
    {{"scan.rotation_deg", T::Number, "deg", "0", "scan rotation"}, field<A, &A::scan, &ScanGeometry::rotation_deg>()},
    {{"scan.flyback_us", T::Number, "µs", "0", "flyback time at the end of each line"}, field<A, &A::scan, &ScanGeometry::flyback_us>()},
    {{"drift", T::Map, "", "", "specimen drift"}, {}},
    {{"drift.velocity_A_per_s", T::Pair, "Å/s", "0", "constant drift velocity [vx, vy]"}, +[](A& a) { return XY{a.distortion.drift.velocity_x_A_per_s, a.distortion.drift.velocity_y_A_per_s}; }},
    {{"drift.diffusion_A_per_sqrt_s", T::Number, "Å/√s", "0", "random-walk drift"}, field<A, &A::distortion, &Distortion::drift, &DriftParams::diffusion_A_per_sqrt_s>()},
    {{"jitter", T::Map, "", "", "line jitter"}, {}},
    {{"jitter.rms_A", T::Number, "Å", "0", "per-line offset along the fast axis (rms)"}, field<A, &A::distortion, &Distortion::jitter, &LineJitterParams::rms_A>()},
    {{"flyback", T::Map, "", "", "flyback distortion"}, {}},
    {{"flyback.amplitude_A", T::Number, "Å", "0", "offset at the start of each line"}, field<A, &A::distortion, &Distortion::flyback, &FlybackParams::amplitude_A>()},
    {{"flyback.decay_us", T::Number, "µs", "0", "decay time of that offset"}, field<A, &A::distortion, &Distortion::flyback, &FlybackParams::decay_us>()},
    {{"scan_noise", T::Map, "", "", "scan-coil noise"}, {}},
    {{"scan_noise.frequencies_Hz", T::Numbers, "Hz", "none", "frequencies of the noise"}, field<A, &A::distortion, &Distortion::scan_noise, &ScanNoiseParams::frequencies_Hz>()},
    {{"scan_noise.rms_A", T::Number, "Å", "0", "amplitude (rms)"}, field<A, &A::distortion, &Distortion::scan_noise, &ScanNoiseParams::rms_A>()},
    {{"mains", T::Map, "", "", "mains pick-up"}, {}},
    {{"mains.frequency_Hz", T::Number, "Hz", "50", "mains frequency"}, field<A, &A::distortion, &Distortion::mains, &MainsParams::frequency_Hz>()},
    {{"mains.amplitude_A", T::Pair, "Å", "0", "amplitude [ax, ay]"}, +[](A& a) { return XY{a.distortion.mains.amplitude_x_A, a.distortion.mains.amplitude_y_A}; }},
    {{"current", T::Map, "", "", "beam-current fluctuation"}, {}},
    {{"current.relative_rms", T::Number, "", "0", "relative rms of the current"}, field<A, &A::distortion, &Distortion::current, &CurrentFluctuationParams::relative_rms>()},
    {{"current.correlation_time_us", T::Number, "µs", "0", "its correlation time"}, field<A, &A::distortion, &Distortion::current, &CurrentFluctuationParams::correlation_time_us>()},
    {{"annular", T::Map, "", "", "annular and segmented detector response"}, {}},
    {{"annular.detection_efficiency", T::Number, "", "1", "fraction of electrons detected"}, field<A, &A::annular, &AnnularResponse::detection_efficiency>()},
    {{"annular.shot_noise", T::Flag, "", "true", "Poisson counting noise"}, field<A, &A::annular, &AnnularResponse::shot_noise>()},
    {{"annular.gain_ADU_per_electron", T::Number, "ADU/e", "1", "mean gain"}, field<A, &A::annular, &AnnularResponse::gain_ADU_per_electron>()},
    {{"annular.gain_shape", T::Number, "", "0", "gamma shape of the gain (0 = fixed gain)"}, field<A, &A::annular, &AnnularResponse::gain_shape>()},
    {{"annular.dark_offset_ADU", T::Number, "ADU", "0", "dark offset"}, field<A, &A::annular, &AnnularResponse::dark_offset_ADU>()},
    {{"annular.read_noise_ADU", T::Number, "ADU", "0", "read noise (rms)"}, field<A, &A::annular, &AnnularResponse::read_noise_ADU>()},
    {{"annular.adc_bits", T::Number, "bits", "0", "ADC depth (0 = no clipping)"}, field<A, &A::annular, &AnnularResponse::adc_bits>()},
    {{"annular.afterglow", T::Map, "", "off", "scintillator afterglow"}, {}},
    {{"annular.afterglow.time_constant_us", T::Number, "µs", "0", "afterglow time constant"}, field<A, &A::annular, &AnnularResponse::afterglow, &AfterglowParams::time_constant_us>()},
    {{"annular.afterglow.delayed_fraction", T::Number, "", "1", "fraction of the signal delayed"}, field<A, &A::annular, &AnnularResponse::afterglow, &AfterglowParams::delayed_fraction>()},
    {{"camera", T::Map, "", "", "pixelated camera (4D-STEM)"}, {}},
    {{"camera.mode", T::Word, "", "counting", "counting or integrating"}, word<A, kCameraModeNames, &A::camera, &CameraResponse::mode>()},
    {{"camera.detection_efficiency", T::Number, "", "1", "fraction of electrons detected"}, field<A, &A::camera, &CameraResponse::detection_efficiency>()},
    {{"camera.shot_noise", T::Flag, "", "true", "Poisson counting noise"}, field<A, &A::camera, &CameraResponse::shot_noise>()},
    {{"camera.dead_time_s", T::Number, "s", "0", "counting dead time"}, field<A, &A::camera, &CameraResponse::counting, &CountingParams::dead_time_s>()},
    {{"camera.dead_time_model", T::Word, "", "non_paralyzable", "paralyzable or non_paralyzable"}, word<A, kDeadTimeModelNames, &A::camera, &CameraResponse::counting, &CountingParams::model>()},
    {{"camera.counter_max", T::Number, "counts", "0", "counter depth (0 = unbounded)"}, field<A, &A::camera, &CameraResponse::counting, &CountingParams::counter_max>()},
    {{"camera.gain_ADU_per_electron", T::Number, "ADU/e", "1", "mean gain"}, field<A, &A::camera, &CameraResponse::integrating, &IntegratingParams::gain_ADU_per_electron>()},
    {{"camera.gain_shape", T::Number, "", "0", "gamma shape of the gain"}, field<A, &A::camera, &CameraResponse::integrating, &IntegratingParams::gain_shape>()},
    {{"camera.psf_sigma_px", T::Number, "px", "0", "detector point-spread (1σ)"}, field<A, &A::camera, &CameraResponse::integrating, &IntegratingParams::psf_sigma_px>()},
    {{"camera.dark_offset_ADU", T::Number, "ADU", "0", "dark offset"}, field<A, &A::camera, &CameraResponse::integrating, &IntegratingParams::dark_offset_ADU>()},
    {{"camera.read_noise_ADU", T::Number, "ADU", "0", "read noise (rms)"}, field<A, &A::camera, &CameraResponse::integrating, &IntegratingParams::read_noise_ADU>()},
    {{"camera.adc_bits", T::Number, "bits", "0", "ADC depth (0 = no clipping)"}, field<A, &A::camera, &CameraResponse::integrating, &IntegratingParams::adc_bits>()},
};

constexpr KeyRow<PerovskiteParams> kPerovskiteKeys[] = {
    {{"a", T::Number, "Å", "3.905", "lattice parameter"}, field<P, &P::a>()},
    {{"A", T::Species, "", "{Sr: 1}", "A-site species; fractions are normalised to sum 1"}, field<P, &P::A>()},
    {{"B", T::Species, "", "{Ti: 1}", "B-site species"}, field<P, &P::B>()},
    {{"arrangement", T::Word, "", "random", "random, layered or clustered mixed sites"}, word<P, kSiteArrangementNames, &P::arrangement>()},
    {{"layer_axis", T::Number, "", "1", "layered: planes normal to this axis"}, field<P, &P::layer_axis>()},
    {{"correlation_length", T::Number, "Å", "8", "clustered: smoothing length of the random field"}, field<P, &P::correlation_length>()},
    {{"vacancy_order", T::Flag, "", "false", "brownmillerite-like ordered oxygen vacancies"}, field<P, &P::vacancy_order>()},
    {{"vacancy_axis", T::Number, "", "1", "axis of the vacancy-ordered planes"}, field<P, &P::vacancy_axis>()},
};

constexpr KeyRow<ModifierKeys> kBuilderModifierKeys[] = {
    {{"amorphous", T::Map, "", "", "an amorphous region advancing along `axis`"}, {}},
    {{"amorphous.fraction", T::Number, "", "0.3", "fraction of the cell made amorphous"}, field<M, &M::amorphous, &AmorphousParams::fraction>()},
    {{"amorphous.axis", T::Number, "", "0", "direction the front advances (0, 1, 2)"}, field<M, &M::amorphous, &AmorphousParams::axis>()},
    {{"amorphous.shape", T::Word, "", "planar", "planar, sinusoidal or rough front"}, word<M, kFrontShapeNames, &M::amorphous, &AmorphousParams::shape>()},
    {{"amorphous.amplitude", T::Number, "Å", "0", "front amplitude"}, field<M, &M::amorphous, &AmorphousParams::amplitude>()},
    {{"amorphous.wavelength", T::Number, "Å", "20", "front wavelength"}, field<M, &M::amorphous, &AmorphousParams::wavelength>()},
    {{"amorphous.mode", T::Word, "", "random_packing", "random_packing or displacement"}, word<M, kAmorphousModeNames, &M::amorphous, &AmorphousParams::mode>()},
    {{"amorphous.min_distance", T::Number, "Å", "0", "closest approach of placed atoms"}, field<M, &M::amorphous, &AmorphousParams::min_distance>()},
    {{"amorphous.displacement_rms", T::Number, "Å", "0.6", "displacement mode: rms displacement"}, field<M, &M::amorphous, &AmorphousParams::displacement_rms>()},
    {{"vacancies", T::MapList, "", "", "remove a fraction of an element's atoms"}, {}},
    {{"vacancies.element", T::Element, "", "", "element"}, field<M, &M::vacancies, &VacancyKeys::element>()},
    {{"vacancies.fraction", T::Number, "", "", "fraction removed"}, field<M, &M::vacancies, &VacancyKeys::fraction>()},
    {{"dopants", T::MapList, "", "", "substitute a fraction of host atoms"}, {}},
    {{"dopants.host", T::Element, "", "", "host element"}, field<M, &M::dopants, &DopantKeys::host>()},
    {{"dopants.dopant", T::Element, "", "", "dopant element"}, field<M, &M::dopants, &DopantKeys::dopant>()},
    {{"dopants.fraction", T::Number, "", "", "fraction substituted"}, field<M, &M::dopants, &DopantKeys::fraction>()},
    {{"interstitials", T::MapList, "", "", "add atoms at random free positions"}, {}},
    {{"interstitials.element", T::Element, "", "", "element"}, field<M, &M::interstitials, &InterstitialKeys::element>()},
    {{"interstitials.count", T::Number, "atoms", "", "how many"}, field<M, &M::interstitials, &InterstitialKeys::count>()},
    {{"interstitials.min_distance", T::Number, "Å", "1.5", "closest approach to any atom"}, field<M, &M::interstitials, &InterstitialKeys::min_distance>()},
    {{"antiphase_boundary", T::Map, "", "", "a (100) antiphase boundary (perovskite)"}, {}},
    {{"antiphase_boundary.position", T::Number, "Å", "", "at x = position"}, field<M, &M::antiphase_boundary, &AntiphaseKeys::position>()},
};

constexpr KeyRow<FilmParams> kFilmKeys[] = {
    {{"substrate", T::Map, "", "SrTiO3", "substrate perovskite keys"}, {}},
    {{"film", T::Map, "", "LaFeO3, a = 3.93", "film perovskite keys (bulk a)"}, {}},
    {{"substrate_cells", T::Number, "cells", "6", "substrate cells along y"}, field<F, &F::substrate_cells>()},
    {{"film_cells", T::Number, "cells", "6", "film cells along y"}, field<F, &F::film_cells>()},
    {{"poisson", T::Number, "", "0.3", "film Poisson ratio"}, field<F, &F::poisson>()},
    {{"vacuum", T::Number, "Å", "0", "vacuum above the film"}, field<F, &F::vacuum>()},
};

constexpr KeyRow<NanoparticleParams> kNanoparticleKeys[] = {
    {{"a", T::Number, "Å", "4.078", "fcc lattice parameter"}, field<N, &N::a>()},
    {{"element", T::Element, "", "Au", "particle element"}, field<N, &N::Z>()},
    {{"shape", T::Word, "", "cuboctahedron", "cuboctahedron or sphere"}, word<N, kParticleShapeNames, &N::shape>()},
    {{"radius", T::Number, "Å", "10", "particle radius"}, field<N, &N::radius>()},
    {{"cell", T::Numbers, "Å", "[40, 40]", "lateral cell"}, +[](N& p) { return XY{p.cell_x, p.cell_y}; }},
    {{"support_thickness", T::Number, "Å", "30", "support film thickness"}, field<N, &N::support_thickness>()},
    {{"support_element", T::Element, "", "C", "support element"}, field<N, &N::support_Z>()},
    {{"support_density", T::Number, "atoms/Å³", "0.1003", "support number density"}, field<N, &N::support_density>()},
    {{"gap", T::Number, "Å", "2", "gap between particle and support"}, field<N, &N::gap>()},
};

constexpr KeyRow<WorldParams> kWorldKeys[] = {
    {{"width", T::Number, "Å", "20000", "the world's extent along x"}, field<W, &W::width_A>()},
    {{"height", T::Number, "Å", "20000", "the world's extent along y"}, field<W, &W::height_A>()},
    {{"thickness", T::Number, "Å", "100", "lamella thickness"}, field<W, &W::thickness_A>()},
    {{"edge_y", T::Number, "Å", "6000", "mean position of the lamella's edge"}, field<W, &W::edge_y_A>()},
    {{"edge_roughness", T::Number, "Å", "80", "the edge's departure from edge_y"}, field<W, &W::edge_roughness_A>()},
    {{"amorphous_width", T::Number, "Å", "150", "amorphised band along the edge"}, field<W, &W::amorphous_width_A>()},
    {{"wedge", T::Number, "Å", "1000", "the lamella thins over this distance towards the edge"}, field<W, &W::wedge_A>()},
    {{"interface_y", T::Number, "Å", "10400", "substrate → film"}, field<W, &W::interface_y_A>()},
    {{"film", T::Number, "Å", "400", "film thickness along y"}, field<W, &W::film_A>()},
    {{"cap_top", T::Number, "Å", "13000", "top of the carbon cap"}, field<W, &W::cap_top_A>()},
    {{"support_x", T::Number, "Å", "13000", "x ≥ support_x: carbon support with Au particles"}, field<W, &W::support_x_A>()},
    {{"support_thickness", T::Number, "Å", "30", "carbon support film thickness"}, field<W, &W::support_thickness_A>()},
    {{"dopant_fraction", T::Number, "", "0.02", "La on Sr sites of the substrate"}, field<W, &W::dopant_fraction>()},
    {{"oxygen_vacancy_fraction", T::Number, "", "0.02", "O vacancies of the substrate"}, field<W, &W::oxygen_vacancy_fraction>()},
    {{"film_La_fraction", T::Number, "", "0.7", "La on the film's A sites"}, field<W, &W::film_La_fraction>()},
    {{"grain_size", T::Number, "Å", "250", "mean grain size of the film"}, field<W, &W::grain_A>()},
    {{"grain_rotation_deg", T::Number, "deg", "8", "grains rotated about the beam by up to ± this"}, field<W, &W::grain_rotation_deg>()},
    {{"particle_probability", T::Number, "", "0.6", "chance of an Au particle in each tile"}, field<W, &W::particle_probability>()},
    {{"particle_radius_min", T::Number, "Å", "10", "smallest particle radius"}, field<W, &W::particle_radius_min_A>()},
    {{"particle_radius_max", T::Number, "Å", "35", "largest particle radius"}, field<W, &W::particle_radius_max_A>()},
    {{"particle_tile", T::Number, "Å", "400", "side of a particle's tile"}, field<W, &W::particle_tile_A>()},
    {{"amorphous_min_distance", T::Number, "Å", "1.0", "hard-core distance of the amorphous material"}, field<W, &W::amorphous_min_distance_A>()},
};

constexpr KeyRow<WorldWindowKeys> kWorldWindowKeys[] = {
    {{"x", T::Number, "Å", "centre", "datasets: the window's centre x"}, field<WW, &WW::x>()},
    {{"y", T::Number, "Å", "centre", "datasets: the window's centre y"}, field<WW, &WW::y>()},
    {{"size", T::Number, "Å", "40", "datasets: the window's side"}, field<WW, &WW::size>()},
};
// clang-format on

/// A typed table's KeySpec column (for the key checks, the docs and Python's messages), made once.
template <const auto& Rows>
std::span<const KeySpec> specs_of() {
  static const std::vector<KeySpec> specs = [] {
    std::vector<KeySpec> out;
    for (const auto& r : Rows) out.push_back(r.key);
    return out;
  }();
  return specs;
}

}  // namespace

std::span<const KeyRow<AcquisitionKeys>> acquisition_rows() { return kAcquisitionKeys; }
std::span<const KeyRow<PerovskiteParams>> perovskite_rows() { return kPerovskiteKeys; }
std::span<const KeyRow<ModifierKeys>> builder_modifier_rows() { return kBuilderModifierKeys; }
std::span<const KeyRow<FilmParams>> film_rows() { return kFilmKeys; }
std::span<const KeyRow<NanoparticleParams>> nanoparticle_rows() { return kNanoparticleKeys; }
std::span<const KeyRow<WorldParams>> world_rows() { return kWorldKeys; }
std::span<const KeyRow<WorldWindowKeys>> world_window_rows() { return kWorldWindowKeys; }

std::span<const KeySpec> acquisition_keys() { return specs_of<kAcquisitionKeys>(); }
std::span<const KeySpec> perovskite_keys() { return specs_of<kPerovskiteKeys>(); }
std::span<const KeySpec> builder_modifier_keys() { return specs_of<kBuilderModifierKeys>(); }
std::span<const KeySpec> film_keys() { return specs_of<kFilmKeys>(); }
std::span<const KeySpec> nanoparticle_keys() { return specs_of<kNanoparticleKeys>(); }
std::span<const KeySpec> world_keys() { return specs_of<kWorldKeys>(); }
std::span<const KeySpec> world_window_keys() { return specs_of<kWorldWindowKeys>(); }

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
