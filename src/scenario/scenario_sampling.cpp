// Drawing a sample's parameters from a parsed scenario (scenario.hpp): sample_parameters and
// what derives from a draw; the parser is in scenario.cpp, the range table in src/acquisition/ranges.cpp.
#include "stemtwin/scenario/scenario.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/core/rng.hpp"
#include "stemtwin/physics/names.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/scenario/scenario_detectors.hpp"

namespace stemtwin {

namespace {

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

}  // namespace

// ------------------------------------------------------------------------------------
// Sampling

namespace {

class Sampler {
 public:
  Sampler(const ScenarioSpec& spec, std::size_t index) : spec_(spec), index_(index) {
    const auto sweeps = spec.sweeps();
    std::size_t g = index / spec.samples;
    // first sweep slowest: decompose from the last axis
    for (std::size_t k = sweeps.size(); k-- > 0;) {
      const std::size_t n = sweeps[k]->options.size();
      coord_[sweeps[k]] = g % n;
      g /= n;
    }
  }

  Value draw(const Distribution& d) {
    Value v;
    switch (d.kind) {
      case Distribution::Kind::Fixed: return d.options.front();
      case Distribution::Kind::Sweep: v = d.options[coord_.at(&d)]; break;
      default: {
        Rng rng(spec_.seed, RngPurpose::Parameters, index_, key_hash(d.source.path));
        if (d.kind == Distribution::Kind::Uniform) v = Value::of(rng.uniform(d.a, d.b));
        else if (d.kind == Distribution::Kind::Normal) v = Value::of(rng.normal(d.a, d.b));
        else if (d.kind == Distribution::Kind::LogUniform) v = Value::of(std::exp(rng.uniform(std::log(d.a), std::log(d.b))));
        else v = d.options[rng.below(d.options.size())];
      }
    }
    double stored = v.number;
    if (v.is_text)
      for (std::size_t i = 0; i < d.options.size(); ++i)
        if (d.options[i].text == v.text) stored = static_cast<double>(i);
    values[d.source.path] = stored;
    return v;
  }
  double num(const Distribution& d) { return draw(d).number; }
  int whole(const Distribution& d) { return static_cast<int>(std::lround(num(d))); }
  SampledTree tree(const ParamTree& t) {
    SampledTree s;
    s.kind = t.kind;
    s.source = t.source;
    if (t.kind == ParamTree::Kind::Leaf) s.leaf = draw(t.leaf);
    for (const auto& [k, v] : t.map) s.map.emplace_back(k, tree(v));
    for (const auto& v : t.list) s.list.push_back(tree(v));
    return s;
  }
  [[noreturn]] void fail(const Distribution& d, const std::string& msg) const {
    throw ScenarioError(spec_.source_file, d.source.line, d.source.column, d.source.path,
                        msg + " (sample " + std::to_string(index_) + ")");
  }
  double positive(const Distribution& d, bool strict) {
    const double v = num(d);
    if (strict ? !(v > 0) : !(v >= 0)) fail(d, "drew " + fmt(v) + ", must be " + (strict ? "> 0" : "≥ 0"));
    return v;
  }

  std::map<std::string, double> values;

 private:
  const ScenarioSpec& spec_;
  std::size_t index_;
  std::map<const Distribution*, std::size_t> coord_;
};

}  // namespace

double SampledScenario::electrons_per_position() const {
  constexpr double e = 1.602176634e-19;
  return current * 1e-12 * dwell_us * 1e-6 / e;
}

SampledScenario sample_parameters(const ScenarioSpec& spec, std::size_t index) {
  const std::size_t total = spec.total_samples();
  if (index >= total)
    throw std::out_of_range("sample_parameters: sample " + std::to_string(index) + " of " + std::to_string(total));
  Sampler S(spec, index);
  SampledScenario r;
  r.index = index;
  r.grid_point = index / spec.samples;
  r.replicate = index % spec.samples;
  r.seed = spec.seed;
  // Draw in the same order as walk() (the order does not change values: each key has its own stream).
  const auto& sp = spec.specimen;
  r.structure = sp.structure;
  r.builder_type = sp.builder_type;
  if (sp.builder) r.builder = S.tree(*sp.builder);
  for (int i = 0; i < 3; ++i) r.zone_axis[i] = S.whole(sp.zone_axis[i]);
  if (r.zone_axis == std::array<int, 3>{0, 0, 0}) S.fail(sp.zone_axis[2], "zone axis drew [0, 0, 0]");
  for (int i = 0; i < 3; ++i) {
    r.repeat[i] = S.whole(sp.repeat[i]);
    if (r.repeat[i] < 1) S.fail(sp.repeat[i], "drew " + std::to_string(r.repeat[i]) + " cells, must be ≥ 1");
  }
  r.thermal = sp.thermal.enabled;
  if (r.thermal) {
    if (sp.thermal.rms) r.thermal_rms = S.positive(*sp.thermal.rms, false);
    for (const auto& [el, d] : sp.thermal.rms_by_element) r.thermal_rms_by_element[el] = S.positive(d, false);
    r.configurations = S.whole(sp.thermal.configurations);
    if (r.configurations < 1) S.fail(sp.thermal.configurations, "must be ≥ 1");
  }

  const auto& m = spec.microscope;
  r.energy = S.positive(m.energy, true);
  r.convergence = S.positive(m.convergence, true);
  for (const auto& [k, d] : m.aberrations) {
    const double v = S.num(d);
    const AberrationName name = *resolve_aberration(k);  // the parser accepted only known names
    r.aberrations[name.krivanek] = name.sign * v;
  }
  r.focal_spread = S.positive(m.focal_spread, false);
  r.source_size = S.positive(m.source_size, false);
  r.current = S.positive(m.current, false);

  const auto& sc = spec.scan;
  const Point2 start{S.num(sc.start[0]), S.num(sc.start[1])};
  if (sc.use_fov) {
    const double fx = S.positive(sc.fov[0], true), fy = S.positive(sc.fov[1], true);
    r.scan = ScanGrid::from_fov(start, fx, fy, sc.pixels[0], sc.pixels[1]);
  } else {
    const Point2 end{S.num(sc.end[0]), S.num(sc.end[1])};
    const double sx = S.num(sc.step[0]), sy = S.num(sc.step[1]);
    r.scan = ScanGrid::from_range(start, end, sx, sy);
  }
  r.dwell_us = S.positive(sc.dwell, true);

  for (const auto& d : spec.detectors) {
    // Every detector draws inner, outer, azimuth and rotation in this order, whatever its
    // kind (unused draws of fixed values cost nothing), so the draws never move.
    const double inner = S.positive(d.inner, false), outer = S.num(d.outer);
    if (d.type == DetectorType::Annular && !(outer > inner))
      S.fail(d.outer, "drew outer " + fmt(outer) + " ≤ inner " + fmt(inner) + " mrad");
    std::optional<std::pair<double, double>> azimuth;
    if (d.azimuth) {
      azimuth.emplace(S.num((*d.azimuth)[0]), S.num((*d.azimuth)[1]));
      if (!(azimuth->second > azimuth->first)) S.fail((*d.azimuth)[1], "azimuth drew from ≥ to");
    }
    const double rotation = S.num(d.rotation);
    Detector det = ComDetector{d.name};
    switch (d.type) {
      case DetectorType::Annular: det = AnnularDetector{d.name, inner, outer, azimuth}; break;
      case DetectorType::Radial: det = RadialDetector{d.name, d.step, d.max}; break;
      case DetectorType::Segmented: det = SegmentedDetector{d.name, d.rings, std::size_t(d.segments), rotation}; break;
      case DetectorType::Pixelated: det = PixelatedDetector{d.name, d.max_angle, std::size_t(std::max(1, d.bin))}; break;
      case DetectorType::Com: break;
    }
    r.detectors.push_back(SampledDetector::of(std::move(det), d.max_angle));
  }

  const auto& sim = spec.simulation;
  r.method = parse_method(sim.method);
  r.interpolation = sim.interpolation;
  r.budget_mean_rel = sim.budget_mean_rel;
  r.budget_min_correlation = sim.budget_min_correlation;
  r.budget_calibration_positions = sim.budget_calibration_positions;
  r.parametrization = parse_parametrization(sim.parametrization);
  r.projection = parse_projection(sim.projection);
  r.auto_sampling = sim.auto_sampling;
  r.symmetry = sim.symmetry;
  r.sampling = sim.auto_sampling ? auto_sampling_A(r) : S.positive(sim.sampling, true);
  r.slice_thickness = S.positive(sim.slice_thickness, true);
  if (spec.acquisition) r.acquisition = S.tree(*spec.acquisition);

  // Only distribution-valued keys go to the /params table.
  for (const Distribution* d : spec.sampled()) r.values[d->source.path] = S.values.at(d->source.path);
  if (!spec.labels.class_param.empty()) r.class_id = static_cast<int>(std::lround(S.values.at(spec.labels.class_param)));
  return r;
}

double required_angle_mrad(const SampledScenario& s) {
  double theta = 2 * s.convergence;
  for (const SampledDetector& d : s.detectors) theta = std::max(theta, collection_range(d).outer_mrad);  // 0: band limit
  return theta;
}

double auto_sampling_A(const SampledScenario& s) {
  constexpr double kCoarsest_A = 0.1;
  const double theta_rad = required_angle_mrad(s) * 1e-3 * (1 + 1e-9);
  if (!(theta_rad > 0)) return kCoarsest_A;
  return std::min(kCoarsest_A, wavelength_A(s.energy) / (3 * theta_rad));
}

}  // namespace stemtwin
