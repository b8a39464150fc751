#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/scenario/scenario_checks.hpp"
#include "sample_labels.hpp"
#include "stemtwin/acquisition/readout.hpp"
#include "stemtwin/physics/phonon.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <iomanip>
#include <set>
#include <sstream>
#include <stdexcept>

#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/specimen/columns.hpp"
#include "scenario_spectra.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/dataset/label_masks.hpp"
#include "stemtwin/scenario/memory_estimate.hpp"
#include "stemtwin/specimen/names.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/physics/names.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/specimen/structure_io.hpp"

namespace stemtwin {
namespace {

#include "quickstart_scenario.inc"

/// Parameters derived from each sample's physics, stored in /params beside the sampled ones.
constexpr const char* kDerivedParams[] = {"thickness_A", "electrons_per_position", "dose_e_per_A2", "atoms", "sampling_A"};
/// What produced each sample's numbers (method auto's choice, docs/dataset.md): the method
/// (categories below), PRISM's factor, and the error auto measured on its calibration
/// positions against multislice (NaN when nothing was calibrated).
constexpr const char* kMethodParams[] = {"interpolation", "calibration_mean_error", "calibration_correlation"};
const std::vector<std::string> kMethodCategories = {"multislice", "prism", "windowed"};

[[noreturn]] void fail(const SourceRef& src, const std::string& key, const std::string& msg) {
  throw ScenarioError(src.file, src.line, src.column, key.empty() ? src.path : key, msg);
}

// ---------------------------------------------------------------------------------------
// Specimens.

std::vector<SpeciesFraction> species(const SampledTree& t, const std::string& key, std::vector<SpeciesFraction> fallback) {
  if (!t.has(key)) return fallback;
  // Fractions are normalised to sum 1, so independently sampled fractions stay valid.
  std::vector<SpeciesFraction> out;
  double sum = 0;
  for (const auto& [sym, v] : t.at(key).map) {
    if (!(v.leaf.number >= 0)) fail(v.source, "", "a site fraction must be ≥ 0");
    out.push_back({atomic_number(sym), v.leaf.number});
    sum += v.leaf.number;
  }
  if (!(sum > 0)) fail(t.at(key).source, "", "site fractions sum to 0");
  for (auto& f : out) f.fraction /= sum;
  return out;
}

SiteArrangement arrangement(const std::string& w) { return parse_name("arrangement", w, kSiteArrangementNames); }

PerovskiteParams perovskite_params(const SampledTree& t, PerovskiteParams p) {
  p.a = t.number("a", p.a);
  p.A = species(t, "A", p.A);
  p.B = species(t, "B", p.B);
  p.arrangement = arrangement(t.text("arrangement", "random"));
  p.layer_axis = int(t.number("layer_axis", p.layer_axis));
  p.correlation_length = t.number("correlation_length", p.correlation_length);
  p.vacancy_order = t.flag("vacancy_order", p.vacancy_order);
  p.vacancy_axis = int(t.number("vacancy_axis", p.vacancy_axis));
  return p;
}

void apply_modifiers(Specimen& sp, const SampledTree& b, const SampledScenario& s) {
  if (b.has("antiphase_boundary"))
    add_planar_fault(sp, perovskite_antiphase_boundary(b.number("a", 3.905), b.at("antiphase_boundary").number("position")));
  if (b.has("amorphous")) {
    const SampledTree& a = b.at("amorphous");
    AmorphousParams p;
    p.fraction = a.number("fraction", p.fraction);
    p.axis = int(a.number("axis", p.axis));
    const std::string shape = a.text("shape", "planar");
    p.shape = parse_name("amorphous shape", shape, kFrontShapeNames);
    p.amplitude = a.number("amplitude", p.amplitude);
    p.wavelength = a.number("wavelength", p.wavelength);
    p.mode = parse_name("amorphous mode", a.text("mode", "random_packing"), kAmorphousModeNames);
    p.min_distance = a.number("min_distance", p.min_distance);
    p.displacement_rms = a.number("displacement_rms", p.displacement_rms);
    amorphize(sp, p, s.seed, s.index);
  }
  if (b.has("vacancies"))
    for (const SampledTree& v : b.at("vacancies").list)
      add_vacancies(sp, atomic_number(v.text("element")), v.number("fraction"), s.seed, s.index);
  if (b.has("dopants"))
    for (const SampledTree& v : b.at("dopants").list)
      add_dopants(sp, atomic_number(v.text("host")), atomic_number(v.text("dopant")), v.number("fraction"), s.seed, s.index);
  if (b.has("interstitials"))
    for (const SampledTree& v : b.at("interstitials").list)
      add_interstitials(sp, atomic_number(v.text("element")), std::size_t(std::llround(v.number("count"))),
                        v.number("min_distance", 1.5), s.seed, s.index);
}

}  // namespace

const std::vector<std::pair<std::string, double WorldParams::*>>& world_keys() {
  static const std::vector<std::pair<std::string, double WorldParams::*>> keys = {
      {"width", &WorldParams::width_A},
      {"height", &WorldParams::height_A},
      {"thickness", &WorldParams::thickness_A},
      {"edge_y", &WorldParams::edge_y_A},
      {"edge_roughness", &WorldParams::edge_roughness_A},
      {"amorphous_width", &WorldParams::amorphous_width_A},
      {"wedge", &WorldParams::wedge_A},
      {"interface_y", &WorldParams::interface_y_A},
      {"film", &WorldParams::film_A},
      {"cap_top", &WorldParams::cap_top_A},
      {"support_x", &WorldParams::support_x_A},
      {"support_thickness", &WorldParams::support_thickness_A},
      {"dopant_fraction", &WorldParams::dopant_fraction},
      {"oxygen_vacancy_fraction", &WorldParams::oxygen_vacancy_fraction},
      {"film_La_fraction", &WorldParams::film_La_fraction},
      {"grain_size", &WorldParams::grain_A},
      {"grain_rotation_deg", &WorldParams::grain_rotation_deg},
      {"particle_probability", &WorldParams::particle_probability},
      {"particle_radius_min", &WorldParams::particle_radius_min_A},
      {"particle_radius_max", &WorldParams::particle_radius_max_A},
      {"particle_tile", &WorldParams::particle_tile_A},
      {"amorphous_min_distance", &WorldParams::amorphous_min_distance_A},
  };
  return keys;
}

WorldParams world_params(const SampledTree& b) {
  WorldParams p;
  for (const auto& [key, field] : world_keys())
    if (b.has(key)) p.*field = b.number(key);
  return p;
}

namespace {

Specimen builder_specimen(const SampledScenario& s) {
  const SampledTree& b = *s.builder;
  const std::string& type = s.builder_type;
  if (type == "world") {
    // A dataset sample: the atoms of one square window of the world (centre x, y; side
    // `size`), shifted to the origin and simulated as a periodic cell (its edges are not periodic).
    const World w(world_params(b), s.seed);
    const double size = b.number("size", 40);
    const double x = b.number("x", w.extent().x / 2), y = b.number("y", w.extent().y / 2);
    Specimen sp = w.atoms_in({x - size / 2, y - size / 2, size, size});
    for (Atom& a : sp.structure.atoms) a.x -= x - size / 2, a.y -= y - size / 2;
    for (Atom& a : sp.vacancies) a.x -= x - size / 2, a.y -= y - size / 2;
    if (sp.structure.atoms.empty()) throw std::invalid_argument("specimen.builder (world): the window at (" + std::to_string(x) + ", " +
                                                                std::to_string(y) + ") Å holds no atoms (vacuum)");
    return sp;
  }
  if (type == "perovskite" || type == "amorphous" || type == "defects") {
    PerovskiteParams p = perovskite_params(b, {});
    p.repeats = s.repeat;
    Specimen sp = build_perovskite(p, s.seed, s.index);
    apply_modifiers(sp, b, s);
    return sp;
  }
  if (type == "film") {
    FilmParams f;
    if (b.has("substrate")) f.substrate = perovskite_params(b.at("substrate"), f.substrate);
    PerovskiteParams film;
    film.a = 3.93;
    film.A = {{57, 1.0}};
    film.B = {{26, 1.0}};
    if (b.has("film")) film = perovskite_params(b.at("film"), film);
    f.film = film;
    f.substrate.repeats = s.repeat;
    f.substrate_cells = int(b.number("substrate_cells", f.substrate_cells));
    f.film_cells = int(b.number("film_cells", f.film_cells));
    f.poisson = b.number("poisson", f.poisson);
    f.vacuum = b.number("vacuum", f.vacuum);
    Specimen sp = build_film_on_substrate(f, s.seed, s.index);
    apply_modifiers(sp, b, s);
    return sp;
  }
  if (type == "nanoparticle") {
    NanoparticleParams p;
    p.a = b.number("a", p.a);
    if (b.has("element")) p.Z = atomic_number(b.text("element"));
    p.shape = parse_name("particle shape", b.text("shape", "cuboctahedron"), kParticleShapeNames);
    p.radius = b.number("radius", p.radius);
    if (b.has("cell")) {
      p.cell_x = b.at("cell").list.at(0).leaf.number;
      p.cell_y = b.at("cell").list.at(1).leaf.number;
    }
    p.zone_axis = s.zone_axis;
    p.support_thickness = b.number("support_thickness", p.support_thickness);
    if (b.has("support_element")) p.support_Z = atomic_number(b.text("support_element"));
    p.support_density = b.number("support_density", p.support_density);
    p.gap = b.number("gap", p.gap);
    Specimen sp = build_nanoparticle_on_support(p, s.seed, s.index);
    apply_modifiers(sp, b, s);
    return sp;
  }
  throw std::invalid_argument("unknown builder type '" + type + "'");
}

}  // namespace

Grid simulation_grid(const SampledScenario& s, const Cell& cell) {
  return make_grid(cell.x, cell.y, s.sampling, s.method, std::size_t(std::max(1, s.interpolation)));
}

namespace {

/// The grid the detectors see: PRISM records the waves on its window (the cell and grid
/// divided by the interpolation factor), multislice on the whole grid.
Grid detector_simulation_grid(const SampledScenario& s, const Grid& g) {
  if (s.method != Method::Prism || s.interpolation <= 1) return g;
  const auto f = std::size_t(s.interpolation);
  return Grid(g.lx / double(f), g.ly / double(f), g.nx / f, g.ny / f);
}

/// Streams 4D patterns (blocks of one scan row) through the camera to the row sink.
struct RowSink : PatternSink {
  const DiffractionRowSink& rows;
  const AcquisitionSettings& acq;
  const DistortedScan& ds;
  bool noisy;
  std::uint64_t seed, sample;
  std::size_t nx, want_kx, want_ky;
  RowSink(const DiffractionRowSink& w, const AcquisitionSettings& a, const DistortedScan& d, bool n, std::uint64_t sd, std::uint64_t sm,
          std::size_t scan_nx, std::size_t kx, std::size_t ky)
      : rows(w), acq(a), ds(d), noisy(n), seed(sd), sample(sm), nx(scan_nx), want_kx(kx), want_ky(ky) {}
  void write(const std::string& name, std::size_t first, std::size_t count, std::size_t py, std::size_t px,
             const float* p) override {
    if (px != want_kx || py != want_ky)
      throw std::runtime_error("detector '" + name + "': this sample's pattern is " + std::to_string(px) + "×" +
                               std::to_string(py) + " but the dataset holds " + std::to_string(want_kx) + "×" +
                               std::to_string(want_ky) + " (4D-STEM needs the same lateral cell and sampling in every sample)");
    if (first % nx != 0 || count != nx) throw std::logic_error("pattern blocks must be whole scan rows");
    std::vector<float> row(p, p + count * py * px);
    const std::size_t y = first / nx;
    if (noisy) {
      const std::span<const double> mult(ds.dose_multiplier.data() + first, count);
      apply_camera(row, px, py, acq.electrons_per_position(), mult, acq.scan.dwell_us, acq.camera,
                   NoiseStream{seed, sample, 0x100000 + y});
    }
    rows(name, y, row.data());
  }
};

}  // namespace


const std::string& builtin_quickstart_scenario() {
  static const std::string text = kQuickstartScenario;
  return text;
}

ThermalVibration thermal_vibration(const SampledScenario& s) {
  ThermalVibration t;
  t.enabled = s.thermal;
  t.rms_A = s.thermal_rms;
  for (const auto& [sym, v] : s.thermal_rms_by_element) t.rms_by_Z_A[atomic_number(sym)] = v;
  t.configurations = std::size_t(std::max(1, s.configurations));
  return t;
}

Specimen build_specimen(const SampledScenario& s) {
  Specimen sp;
  if (s.builder) {
    sp = builder_specimen(s);
  } else {
    const StructureFormat f = detect_format(s.structure);
    if (f == StructureFormat::Cif || f == StructureFormat::Poscar) {
      const Crystal c = read_crystal(s.structure);
      sp = make_specimen(tile(orient_along(c, s.zone_axis).structure, s.repeat[0], s.repeat[1], s.repeat[2]));
    } else {
      sp = make_specimen(tile(read_structure(s.structure), s.repeat[0], s.repeat[1], s.repeat[2]));
    }
  }
  try {
    apply_thermal_vibration(sp.structure, thermal_vibration(s));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("specimen.thermal: ") + e.what());
  }
  return sp;
}

AcquisitionSettings acquisition_settings(const SampledScenario& s, bool& noisy) {
  AcquisitionSettings a;
  a.beam_current_pA = s.current;
  a.scan = ScanGeometry::from_fov(s.scan.start, s.scan.step_x * double(s.scan.nx), s.scan.step_y * double(s.scan.ny), s.scan.nx,
                                  s.scan.ny, 0, s.dwell_us, 0);
  noisy = false;
  if (!s.acquisition) return a;
  const SampledTree& t = *s.acquisition;
  noisy = t.flag("noise", true);
  a.beam_current_pA = t.number("beam_current_pA", a.beam_current_pA);
  if (t.has("scan")) {
    a.scan.rotation_deg = t.at("scan").number("rotation_deg", 0);
    a.scan.flyback_us = t.at("scan").number("flyback_us", 0);
  }
  auto pair = [](const SampledTree& n, const std::string& k, double& x, double& y) {
    if (!n.has(k)) return;
    const SampledTree& l = n.at(k);
    if (l.kind == ParamTree::Kind::List && l.list.size() == 2) x = l.list[0].leaf.number, y = l.list[1].leaf.number;
    else x = y = l.leaf.number;
  };
  Distortion& d = a.distortion;
  if (t.has("drift")) {
    pair(t.at("drift"), "velocity_A_per_s", d.drift.velocity_x_A_per_s, d.drift.velocity_y_A_per_s);
    d.drift.diffusion_A_per_sqrt_s = t.at("drift").number("diffusion_A_per_sqrt_s", 0);
  }
  if (t.has("jitter")) d.jitter.rms_A = t.at("jitter").number("rms_A", 0);
  if (t.has("flyback")) {
    d.flyback.amplitude_A = t.at("flyback").number("amplitude_A", 0);
    d.flyback.decay_us = t.at("flyback").number("decay_us", 0);
  }
  if (t.has("scan_noise")) {
    d.scan_noise.rms_A = t.at("scan_noise").number("rms_A", 0);
    if (t.at("scan_noise").has("frequencies_Hz"))
      for (const SampledTree& f : t.at("scan_noise").at("frequencies_Hz").list) d.scan_noise.frequencies_Hz.push_back(f.leaf.number);
  }
  if (t.has("mains")) {
    d.mains.frequency_Hz = t.at("mains").number("frequency_Hz", d.mains.frequency_Hz);
    pair(t.at("mains"), "amplitude_A", d.mains.amplitude_x_A, d.mains.amplitude_y_A);
  }
  if (t.has("current")) {
    d.current.relative_rms = t.at("current").number("relative_rms", 0);
    d.current.correlation_time_us = t.at("current").number("correlation_time_us", 0);
  }
  AnnularResponse& r = a.annular;
  if (t.has("annular")) {
    const SampledTree& n = t.at("annular");
    r.detection_efficiency = n.number("detection_efficiency", r.detection_efficiency);
    r.shot_noise = n.flag("shot_noise", r.shot_noise);
    r.gain_ADU_per_electron = n.number("gain_ADU_per_electron", r.gain_ADU_per_electron);
    r.gain_shape = n.number("gain_shape", r.gain_shape);
    r.dark_offset_ADU = n.number("dark_offset_ADU", r.dark_offset_ADU);
    r.read_noise_ADU = n.number("read_noise_ADU", r.read_noise_ADU);
    r.adc_bits = int(n.number("adc_bits", r.adc_bits));
    if (n.has("afterglow")) {
      r.afterglow.time_constant_us = n.at("afterglow").number("time_constant_us", 0);
      r.afterglow.delayed_fraction = n.at("afterglow").number("delayed_fraction", 1);
    }
  }
  CameraResponse& c = a.camera;
  if (t.has("camera")) {
    const SampledTree& n = t.at("camera");
    c.mode = parse_name("camera mode", n.text("mode", "counting"), kCameraModeNames);
    c.detection_efficiency = n.number("detection_efficiency", c.detection_efficiency);
    c.shot_noise = n.flag("shot_noise", c.shot_noise);
    c.counting.dead_time_s = n.number("dead_time_s", c.counting.dead_time_s);
    if (n.has("dead_time_model"))
      c.counting.model = n.text("dead_time_model") == "paralyzable" ? DeadTimeModel::Paralyzable : DeadTimeModel::NonParalyzable;
    c.counting.counter_max = std::uint64_t(n.number("counter_max", double(c.counting.counter_max)));
    c.integrating.gain_ADU_per_electron = n.number("gain_ADU_per_electron", c.integrating.gain_ADU_per_electron);
    c.integrating.gain_shape = n.number("gain_shape", c.integrating.gain_shape);
    c.integrating.psf_sigma_px = n.number("psf_sigma_px", c.integrating.psf_sigma_px);
    c.integrating.dark_offset_ADU = n.number("dark_offset_ADU", c.integrating.dark_offset_ADU);
    c.integrating.read_noise_ADU = n.number("read_noise_ADU", c.integrating.read_noise_ADU);
    c.integrating.adc_bits = int(n.number("adc_bits", c.integrating.adc_bits));
  }
  if (!noisy) {
    r.shot_noise = false;
    c.shot_noise = false;
  }
  return a;
}

StemSettings stem_settings(const SampledScenario& s) {
  StemSettings st;
  st.method = s.method;
  st.interpolation_x = st.interpolation_y = std::size_t(std::max(1, s.interpolation));
  if (s.budget_mean_rel) st.budget.mean_rel = *s.budget_mean_rel;
  if (s.budget_min_correlation) st.budget.min_correlation = *s.budget_min_correlation;
  if (s.budget_calibration_positions) st.budget.calibration_positions = std::size_t(*s.budget_calibration_positions);
  st.potential.slice_thickness_A = s.slice_thickness;
  st.potential.parametrization = s.parametrization;
  st.potential.projection = s.projection;
  st.phonon_configurations = std::size_t(std::max(1, s.configurations));
  // Phonon displacements per sample: the stream (scenario seed, sample index).
  st.seed = s.seed * 0x9E3779B97F4A7C15ull + s.index;
  return st;
}

ProbeOptics probe_optics(const SampledScenario& s) {
  ProbeOptics o;
  o.energy_eV = s.energy;
  o.semiangle_mrad = s.convergence;
  for (const auto& [k, v] : s.aberrations) o.aberrations.set(k, v);
  o.focal_spread_A = s.focal_spread;
  o.source_size_A = s.source_size;
  return o;
}

void complete_layout(DatasetLayout& layout, const ScenarioSpec& spec) {
  for (MaskLayout& m : layout.masks)
    if (m.name == "region") m.values = default_class_names();
  layout.species.assign(1, "");
  for (int Z = 1; Z <= 103; ++Z) layout.species.push_back(element_symbol(Z));  // species id = Z
  // The scan step, when fixed, as the dataset's pixel size (evaluate converts Å ↔ pixels with it).
  {
    const auto fixed = [](const Distribution& d) { return d.is_fixed(); };
    const bool fixed_step = spec.scan.use_fov ? fixed(spec.scan.fov[0]) && fixed(spec.scan.fov[1])
                                              : fixed(spec.scan.step[0]) && fixed(spec.scan.step[1]);
    if (fixed_step) {
      const SampledScenario s0 = sample_parameters(spec, 0);
      layout.pixel_size_A = {s0.scan.step_x, s0.scan.step_y};
    }
  }
  // Derived physical parameters every sample records, and the builder's facts (sample 0's keys).
  for (const char* k : kDerivedParams) layout.params.push_back({k, {}});
  layout.params.push_back({"method", kMethodCategories});
  for (const char* k : kMethodParams) layout.params.push_back({k, {}});
  {
    // The method asked for and auto's budget, as root attributes.
    const SampledScenario s0 = sample_parameters(spec, 0);
    const StemSettings st0 = stem_settings(s0);
    layout.attributes["method"] = spec.simulation.method;
    if (parse_method(spec.simulation.method) == Method::Auto) {
      std::ostringstream b;
      b << "mean_rel=" << st0.budget.mean_rel << " min_correlation=" << st0.budget.min_correlation
        << " calibration_positions=" << st0.budget.calibration_positions;
      layout.attributes["error_budget"] = b.str();
    }
  }
  const Method asked = parse_method(spec.simulation.method);
  if (spec.specimen.thermal.enabled && (asked == Method::Multislice || asked == Method::Auto))
    for (const DetectorSpec& d : spec.detectors)
      if (d.type == DetectorType::Annular) layout.params.push_back({d.name + "_phonon_sem", {}});
  {
    const SampledScenario s0 = sample_parameters(spec, 0);
    for (const auto& [k, v] : build_specimen(s0).info) layout.params.push_back({"specimen." + k, {}});
  }
  {
    const SampledScenario s0 = sample_parameters(spec, 0);
    detail::complete_spectra_layout(layout, spec, s0, build_specimen(s0));
  }
  bool need_grid = false;
  for (const auto& r : layout.radial) need_grid |= r.edges.empty();
  need_grid |= !layout.diffraction.empty();
  if (!need_grid) return;
  // Shapes that physics decides come from sample 0 (its cell, sampling and energy).
  const SampledScenario s = sample_parameters(spec, 0);
  const Specimen sp = build_specimen(s);
  const Grid g = detector_simulation_grid(s, simulation_grid(s, sp.structure.cell));
  const double lambda = wavelength_A(s.energy);
  for (auto& r : layout.radial)
    if (r.edges.empty())
      for (const SampledDetector& d : s.detectors)
        if (d.name == r.name) r.edges = radial_bin_edges(std::get<RadialDetector>(physics_detector(d)), g, lambda);
  for (auto& p : layout.diffraction)
    for (const SampledDetector& d : s.detectors)
      if (d.name == p.name) {
        const auto pix = std::get<PixelatedDetector>(physics_detector(d));
        const auto [ny, nx] = pattern_shape(pix, g, lambda);
        p.kx = nx;
        p.ky = ny;
        p.sampling_x = double(pix.bin) * lambda / g.lx * 1e3;
        p.sampling_y = double(pix.bin) * lambda / g.ly * 1e3;
      }
}

namespace {
/// Frozen-phonon statistics are kept for multislice samples with ≥ 2 thermal configurations
/// and no 4D detector (whose patterns stream through the engine's own average).
bool phonon_statistics_apply(const SampledScenario& s) {
  if (!s.thermal || s.configurations < 2 || (s.method != Method::Multislice && s.method != Method::Auto)) return false;
  return std::none_of(s.detectors.begin(), s.detectors.end(),
                      [](const SampledDetector& d) { return d.type == DetectorType::Pixelated; });
}
}  // namespace

SampleRecord simulate_sample(const SampledScenario& s, const ScenarioSpec& spec, const DatasetLayout& layout,
                             const DiffractionRowSink& rows) {
  // Testing aid (docs/cluster.md): STEMTWIN_FAIL_SAMPLE=N makes sample N fail as a sample
  // that cannot be foreseen before the run would (the MPI and runner failure tests use it).
  if (const char* fail = std::getenv("STEMTWIN_FAIL_SAMPLE"); fail && std::to_string(s.index) == fail)
    throw std::runtime_error("sample " + std::to_string(s.index) + ": failure injected by STEMTWIN_FAIL_SAMPLE (testing)");
  const double layout_mask_radius = spec.labels.mask_radius;
  SampleRecord rec;
  const Specimen sp = build_specimen(s);
  const Grid grid = simulation_grid(s, sp.structure.cell);
  bool noisy = false;
  AcquisitionSettings acq = acquisition_settings(s, noisy);
  const DistortedScan ds = plan_scan(acq, s.seed, s.index);
  StemSettings st = stem_settings(s);
  st.pattern_block = s.scan.nx;  // one scan row per 4D block: written straight to the file
  const ProbeOptics optics = probe_optics(s);
  const std::vector<Detector> dets = physics_detectors(s);

  std::size_t kx = 0, ky = 0;
  for (const auto& p : layout.diffraction) kx = p.kx, ky = p.ky;
  RowSink sink(rows, acq, ds, noisy, s.seed, s.index, s.scan.nx, kx, ky);
  // Frozen phonons: keep the configurations apart to report how converged their average is
  // (the standard error of each annular detector's mean over the field, /params/<name>_phonon_sem).
  StemResult res;
  std::map<std::string, double> phonon_sem;
  // Spectrometers ride on the scan as a slice observer (the per-configuration path below
  // does not take one: with spectrometers the phonon statistics are not kept).
  detail::SpectraRecorders spectra(spec, layout, sp, st.seed);
  // Method auto that its cost model sends to multislice without calibrating runs as multislice
  // here (so the per-configuration statistics below apply to it too); otherwise simulate_stem
  // calibrates and chooses. With spectrometers auto chooses between windowed and multislice
  // only (PRISM never forms the wave inside the specimen; docs/spectroscopy.md).
  std::optional<AutoChoice> auto_uncalibrated;
  if (st.method == Method::Auto) {
    const AutoPlan plan = plan_auto(sp.structure, grid, optics, ds.positions_A, dets, st, !layout.diffraction.empty(), !spectra.empty());
    if (!plan.calibrate) auto_uncalibrated = plan.choice;
  }
  if (spectra.empty() && (st.method == Method::Multislice || auto_uncalibrated) && phonon_statistics_apply(s) &&
      std::any_of(sp.structure.atoms.begin(), sp.structure.atoms.end(),
                                                [](const Atom& a) { return a.rms > 0; })) {
    const Fft2 fft(grid, st.planning);
    const auto configs = frozen_phonon_transmissions(sp.structure, grid, optics.energy_eV, st, fft);
    const std::vector<StemResult> per = scan_multislice_per_configuration(configs, optics, ds.positions_A, dets, st, fft);
    PhononSummary summary = summarize_configurations(per);
    res = std::move(summary.mean);
    if (res.fft_plan.empty()) res.fft_plan = per.front().fft_plan;  // one plan for all configurations
    for (const SampledDetector& d : s.detectors) {
      if (d.type != DetectorType::Annular) continue;
      std::vector<double> field_means;
      for (const StemResult& r : per) {
        const std::vector<double>& v = r.signal(d.name).values;
        double sum = 0;
        for (double x : v) sum += x;
        field_means.push_back(v.empty() ? 0.0 : sum / double(v.size()));
      }
      phonon_sem[d.name] = mean_and_sem(field_means).sem;
    }
  } else {
    StemSettings run = st;
    if (auto_uncalibrated) run.method = Method::Multislice;  // the same bytes simulate_auto would give
    // The sink only takes 4D patterns: without them none is passed, so windowed multislice
    // (which streams none) can run, and auto can consider it.
    PatternSink* patterns = layout.diffraction.empty() ? nullptr : &sink;
    res = simulate_stem(sp.structure, grid, optics, ds.positions_A, dets, run, patterns, spectra.empty() ? nullptr : &spectra);
  }
  if (auto_uncalibrated) res.auto_choice = auto_uncalibrated;

  const std::size_t nx = s.scan.nx, ny = s.scan.ny;
  // Image channels: the one read-out (acquisition/readout.hpp), noise streams keyed by the sample.
  ReadoutSettings ro;
  ro.nx = nx, ro.ny = ny, ro.step_x_A = s.scan.step_x, ro.step_y_A = s.scan.step_y;
  ro.source_size_A = optics.source_size_A;
  ro.acquire = bool(s.acquisition);
  ro.seed = s.seed, ro.sample = s.index;
  ReadOut out = readout(res, dets, ro, acq, ds);
  rec.images = std::move(out.images);
  rec.clean = std::move(out.clean);
  for (const SampledDetector& d : s.detectors) {
    if (d.type != DetectorType::Radial) continue;  // pixelated: streamed by RowSink
    const DetectorSignal& sig = res.signal(d.name);
    std::size_t nb = 0;
    for (const auto& r : layout.radial)
      if (r.name == d.name) nb = r.bins();
    std::vector<float> v(nx * ny * nb, 0.0f);
    for (std::size_t p = 0; p < nx * ny; ++p)
      for (std::size_t b = 0; b < std::min(nb, sig.bins); ++b) v[p * nb + b] = float(sig.values[p * sig.bins + b]);
    rec.radial[d.name] = std::move(v);
  }
  // Physical parameters every sample records (besides the sampled ones); a builder fact
  // missing in this sample is NaN.
  rec.fft_plan = res.fft_plan;
  rec.params["thickness_A"] = sp.structure.cell.z;
  rec.params["electrons_per_position"] = acq.electrons_per_position();
  rec.params["dose_e_per_A2"] = dose_report(acq, ds).dose_e_per_A2;
  rec.params["atoms"] = double(sp.structure.atoms.size());
  rec.params["sampling_A"] = grid.dx();
  {
    const auto& cat = kMethodCategories;
    const auto it = std::find(cat.begin(), cat.end(), res.method);
    rec.params["method"] = it == cat.end() ? std::nan("") : double(it - cat.begin());
    rec.params["interpolation"] = double(res.interpolation);
    rec.params["calibration_mean_error"] = res.auto_choice ? res.auto_choice->measured_mean_error : std::nan("");
    rec.params["calibration_correlation"] = res.auto_choice ? res.auto_choice->measured_correlation : std::nan("");
  }
  for (const ParameterInfo& p : layout.params)
    if (p.name.size() > 11 && p.name.compare(p.name.size() - 11, 11, "_phonon_sem") == 0) {
      const auto it = phonon_sem.find(p.name.substr(0, p.name.size() - 11));
      rec.params[p.name] = it == phonon_sem.end() ? std::nan("") : it->second;  // NaN: static or one configuration
    }
  for (const ParameterInfo& p : layout.params)
    if (p.name.rfind("specimen.", 0) == 0 && !s.values.count(p.name)) {
      const auto it = sp.info.find(p.name.substr(9));
      rec.params[p.name] = it == sp.info.end() ? std::nan("") : it->second;
    }

  if (!spectra.empty())
    detail::read_spectra(rec, spec, s, sp, spectra, layout, acq.electrons_per_position(), noisy);
  const std::vector<ColumnLabel> cols = detail::column_labels(sp, ds, acq.scan, layout);
  if (layout.columns) rec.columns = cols;
  if (!layout.masks.empty()) {
    const LabelMasks m = rasterize_label_masks(cols, nx, ny, layout_mask_radius, s.scan.step_x, s.scan.step_y);
    for (const MaskLayout& ml : layout.masks) {
      if (ml.name == "columns") rec.masks[ml.name] = m.columns;
      else if (ml.name == "species") rec.masks[ml.name] = m.species;
      else if (ml.name == "region") rec.masks[ml.name] = detail::region_at_positions(sp, ds);
    }
  }
  return rec;
}

int cmd_run(const RunCommand& cmd, std::ostream& out, std::ostream& err, const RunScenario& run) {
  try {
    ScenarioSpec spec = cmd.scenario.empty()
                            ? parse_scenario_text(builtin_quickstart_scenario(), "quickstart.yaml (built in)")
                            : parse_scenario_file(cmd.scenario);
    if (cmd.samples) {
      spec.samples = *cmd.samples;
      check_sample_count(spec);
      spec.text += "\n# command line: --samples " + std::to_string(*cmd.samples) + "\n";
    }
    if (cmd.seed) {
      spec.seed = *cmd.seed;
      spec.text += "\n# command line: --seed " + std::to_string(*cmd.seed) + "\n";
    }
    check_physics_keys(spec);
    const ScenarioCheck checked = check_scenario_physics(spec);
    for (const std::string& w : checked.warnings) err << "stemtwin run: warning: " << w << "\n";
    if (cmd.threads > 0) omp_set_num_threads(cmd.threads);

    // Everything that can be checked is checked before any work and before the output file
    // is touched: every draw, and the memory of the largest samples against what is free.
    const double budget = cmd.memory_budget_bytes ? double(cmd.memory_budget_bytes) : double(default_memory_budget());
    const MemoryEstimate largest = check_run(spec, cmd.options.shard, std::size_t(std::max(1, omp_get_max_threads())), budget);

    if (cmd.dry_run) {
      const auto idx = shard_samples(spec.total_samples(), cmd.options.shard);
      out << "scenario '" << spec.name << "': " << spec.total_samples() << " samples (this shard " << idx.size() << ")\n";
      const auto info = parameter_info(spec);
      out << std::left << std::setw(8) << "sample";
      for (const auto& p : info) out << " " << std::setw(14) << p.name;
      out << "\n";
      const std::size_t shown = std::min<std::size_t>(idx.size(), 20);
      for (std::size_t k = 0; k < shown; ++k) {
        const SampledScenario s = sample_parameters(spec, idx[k]);
        out << std::setw(8) << s.index;
        for (const auto& p : info) out << " " << std::setw(14) << s.values.at(p.name);
        out << "\n";
      }
      if (shown < idx.size()) out << "… (" << idx.size() - shown << " more samples)\n";
      out << "sample 0: sampling " << checked.sampling_A << " Å, band limit ≥ " << checked.band_limit_mrad << " mrad\n";
      for (const CountEstimate& c : checked.counts)
        out << "expected counts per pixel, " << c.detector << ": " << c.counts_per_pixel << " (" << c.fraction
            << " of the beam; kinematic estimate)\n";
      if (idx.empty()) return 0;
      // Time one FFT pair on sample 0's grid (it fits: check_run said so) to estimate the run.
      const SampledScenario s = sample_parameters(spec, idx[0]);
      const MemoryEstimate z =
          estimate_memory(s, spec.labels, std::size_t(std::max(1, omp_get_max_threads())), budget, spec.spectrometers);
      const Grid grid(1, 1, std::size_t(z.grid_nx), std::size_t(z.grid_ny));
      const Fft2 fft(grid);
      ComplexBuffer b(grid.size());
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 10; ++i) fft.forward(b.data()), fft.backward(b.data());
      const double pair = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 10;
      const double per_sample = pair * z.slices * double(s.scan.size()) * double(std::max(1, s.configurations)) /
                                double(std::max(1, omp_get_max_threads()));
      out << "grid " << grid.nx << " × " << grid.ny << ", " << z.slices << " slices, " << s.scan.nx << " × " << s.scan.ny
          << " positions, " << s.configurations << " phonon configuration(s)\n";
      out << "estimate: peak memory " << std::fixed << std::setprecision(0) << largest.bytes / (1 << 20) << " MiB per sample ("
          << budget / (1 << 20) << " MiB available); about " << per_sample * double(idx.size())
          << " s of multislice for the shard on " << omp_get_max_threads() << " thread(s)\n";
      return 0;
    }

    RunOptions opt = cmd.options;
    const auto layout_with_warnings = [&](DatasetLayout& l, const ScenarioSpec& sp) {
      complete_layout(l, sp);
      l.warnings = checked.warnings;
    };
    const SimulateSample simulate = [&](const SampledScenario& s, const DatasetLayout& L, const DiffractionRowSink& rows) {
      return simulate_sample(s, spec, L, rows);
    };
    const RunResult r = run ? run(spec, opt, layout_with_warnings, simulate, out)
                            : run_scenario(spec, opt, layout_with_warnings, simulate, out);
    out << "wrote " << r.written << " sample(s) to " << r.path << " (" << r.complete << " of " << r.shard_total
        << " complete)\n";
    if (!opt.preview.empty() && !r.interrupted) out << "preview: " << opt.preview << "\n";
    if (r.interrupted) return 130;  // the runner said what was kept and how to continue
    return 0;
  } catch (const std::exception& e) {
    err << ("stemtwin run: " + std::string(e.what()) + "\n");  // one write: ranks share stderr
    return 1;
  }
}

}  // namespace stemtwin
