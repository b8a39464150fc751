#include "stemtwin/scenario/scenario_checks.hpp"

#include "stemtwin/scenario/key_tables.hpp"

#include "stemtwin/physics/names.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <iomanip>
#include <limits>
#include <set>
#include <sstream>

#include <omp.h>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/scattering.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/scenario/memory_estimate.hpp"
#include "stemtwin/scenario/scenario_detectors.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/specimen/names.hpp"

namespace stemtwin {

namespace {

/// ∫_{k1}^{k2} f_e(k)² k dk by Simpson's rule on a log-spaced grid (f_e is smooth and
/// falls as k⁻² at large k; 400 intervals give < 1e-4 relative error).
double f2_moment(int Z, double k1, double k2) {
  if (!(k2 > k1)) return 0;
  const double lo = std::max(k1, 1e-4);
  if (!(k2 > lo)) return 0;
  const int n = 400;
  const double a = std::log(lo), b = std::log(k2), h = (b - a) / n;
  double sum = 0;
  for (int i = 0; i <= n; ++i) {
    const double k = std::exp(a + i * h);
    const double f = scattering_factor(Z, k);
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    sum += w * f * f * k * k;  // dk = k d(ln k)
  }
  double r = sum * h / 3;
  if (k1 < lo) {  // the tiny disc below 1e-4 1/Å: f ≈ f(0)
    const double f0 = scattering_factor(Z, 0);
    r += f0 * f0 * (lo * lo - k1 * k1) / 2;
  }
  return r;
}

std::string mrad(double v) {
  std::ostringstream s;
  s.precision(4);
  s << v << " mrad";
  return s.str();
}

}  // namespace

double estimate_annular_fraction(const std::vector<int>& Z, const std::vector<double>& occupancy, double area_A2,
                                 double energy_eV, double convergence_mrad, double inner_mrad, double outer_mrad) {
  const double lambda = wavelength_A(energy_eV), gamma = lorentz_factor(energy_eV);
  std::map<int, double> count;
  for (std::size_t i = 0; i < Z.size(); ++i) count[Z[i]] += i < occupancy.size() ? occupancy[i] : 1.0;
  auto sigma = [&](double t1_mrad, double t2_mrad) {  // Σσ / area over an angular range
    double s = 0;
    for (const auto& [z, n] : count)
      s += n * 2 * M_PI * lambda * lambda * gamma * gamma * f2_moment(z, t1_mrad * 1e-3 / lambda, t2_mrad * 1e-3 / lambda);
    return s / area_A2;
  };
  const double scattered_total = std::min(1.0, sigma(0, 1000));  // all angles that matter
  const double a = std::max(convergence_mrad, 1e-9);
  const double r1 = std::min(inner_mrad, a), r2 = std::min(outer_mrad, a);
  const double disc = std::max(0.0, (r2 * r2 - r1 * r1) / (a * a));
  const double out = sigma(std::max(inner_mrad, 0.0), outer_mrad);
  return std::min(1.0, disc * (1 - scattered_total) + out);
}

ScenarioCheck check_scenario_physics(const ScenarioSpec& spec, std::size_t max_samples) {
  ScenarioCheck out;
  const std::size_t total = spec.total_samples();
  if (total == 0) return out;
  std::vector<std::size_t> idx;
  if (total <= max_samples) {
    for (std::size_t i = 0; i < total; ++i) idx.push_back(i);
  } else {
    for (std::size_t k = 0; k < max_samples; ++k) idx.push_back(k * (total - 1) / (max_samples - 1));
  }
  auto source_of = [&](const std::string& name) {
    for (const DetectorSpec& d : spec.detectors)
      if (d.name == name) return d.source;
    return SourceRef{};
  };
  // Band limit: the worst case of each detector over the checked samples.
  struct Cut {
    double outer = 0, limit = 1e300, sampling = 0, energy = 0, auto_dx = 0;
    std::size_t sample = 0;
  };
  std::map<std::string, Cut> cuts;
  for (std::size_t i : idx) {
    const SampledScenario s = sample_parameters(spec, i);
    const double bl = wavelength_A(s.energy) / (3 * s.sampling) * 1e3;  // ≤ the real grid's
    if (i == 0) out.sampling_A = s.sampling, out.band_limit_mrad = bl;
    if (s.convergence > bl)
      throw ScenarioError(spec.source_file, 0, 0, "microscope.convergence",
                          "sample " + std::to_string(i) + ": the probe (" + mrad(s.convergence) +
                              ") lies beyond the band limit (" + mrad(bl) + " at " + std::to_string(s.sampling) +
                              " Å): use sampling: auto or a finer sampling");
    for (const SampledDetector& d : s.detectors) {
      const auto [inner, outer] = collection_range(d);
      // Grids round up to FFT-friendly sizes (at most 10 % finer), so only a detector
      // beyond 1.1 × the estimate is certainly empty.
      if (inner >= 1.1 * bl) {
        const SourceRef r = source_of(d.name);
        throw ScenarioError(r.file.empty() ? spec.source_file : r.file, r.line, r.column, r.path.empty() ? "detectors" : r.path,
                            "detector '" + d.name + "' (" + mrad(inner) + "–" + mrad(outer) +
                                ") lies wholly beyond the band limit of sample " + std::to_string(i) + " (" + mrad(bl) +
                                "): it would record nothing; use sampling: auto or a sampling ≤ " +
                                std::to_string(wavelength_A(s.energy) / (3 * outer * 1e-3)) + " Å");
      }
      if (outer > bl * (1 + 1e-9)) {
        Cut& c = cuts[d.name];
        if (bl / outer < c.limit / std::max(c.outer, 1e-300) || c.outer == 0)
          c = Cut{outer, bl, s.sampling, s.energy, wavelength_A(s.energy) / (3 * outer * 1e-3), i};
      }
    }
  }
  for (const auto& [name, c] : cuts) {
    std::ostringstream w;
    w.precision(4);
    w << "detector '" << name << "' reaches " << c.outer << " mrad but the simulation's band limit is " << c.limit
      << " mrad (sample " << c.sample << ": " << c.sampling << " Å at " << c.energy / 1e3
      << " kV): only the part below the band limit is simulated; use sampling: auto (here " << c.auto_dx
      << " Å) or a finer sampling";
    out.warnings.push_back(w.str());
  }

  // Thermal vibration (the specimen of the first and last checked sample) and counts (sample 0).
  const std::vector<std::size_t> ends = idx.size() > 1 ? std::vector<std::size_t>{idx.front(), idx.back()}
                                                       : std::vector<std::size_t>{idx.front()};
  for (std::size_t i : ends) {
    const SampledScenario s = sample_parameters(spec, i);
    Specimen sp;
    try {
      sp = build_specimen(s);
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      if (what.rfind("specimen.thermal", 0) != 0) throw;
      const SourceRef& r = spec.specimen.thermal.source;
      throw ScenarioError(r.file.empty() ? spec.source_file : r.file, r.line, r.column, "specimen.thermal",
                          what.substr(std::string("specimen.thermal: ").size()));
    }
    if (i == idx.front()) {
      const std::string tw = thermal_warning(sp.structure, std::size_t(std::max(1, s.configurations)));
      if (!tw.empty()) out.warnings.push_back(tw);
      std::vector<int> Z;
      std::vector<double> occ;
      for (const Atom& a : sp.structure.atoms) Z.push_back(a.Z), occ.push_back(a.occupancy);
      const double area = sp.structure.cell.x * sp.structure.cell.y;
      const double electrons = s.electrons_per_position();
      for (const SampledDetector& d : s.detectors) {
        if (const auto* a = std::get_if<AnnularDetector>(&d.detector)) {
          const double f = estimate_annular_fraction(Z, occ, area, s.energy, s.convergence, a->inner_mrad, a->outer_mrad);
          out.counts.push_back({d.name, f, f * electrons});
        } else if (const auto* g = std::get_if<SegmentedDetector>(&d.detector); g && g->ring_edges_mrad.size() >= 2) {
          const auto& rings = g->ring_edges_mrad;
          const double f = estimate_annular_fraction(Z, occ, area, s.energy, s.convergence, rings.front(), rings.back()) /
                           double(std::max<std::size_t>(1, g->segments) * (rings.size() - 1));
          out.counts.push_back({d.name + " (per segment)", f, f * electrons});
        }
      }
      if (spec.acquisition)
        for (const CountEstimate& c : out.counts)
          if (c.counts_per_pixel < 1) {
            std::ostringstream w;
            w.precision(3);
            w << "detector '" << c.detector << "' expects about " << c.counts_per_pixel
              << " electrons per pixel (kinematic estimate, sample 0): the image will be mostly noise; raise the "
                 "dose (current × dwell) or the detector's collection angle";
            out.warnings.push_back(w.str());
          }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The checks before a run: builder and acquisition keys, every draw's settings, memory
// (moved from scenario_run.cpp, so every check of a scenario lives in this file).

namespace {

[[noreturn]] void fail(const SourceRef& src, const std::string& key, const std::string& msg) {
  throw ScenarioError(src.file, src.line, src.column, key.empty() ? src.path : key, msg);
}

// ---------------------------------------------------------------------------------------
// Key checking of the free-form sections (before any work).

void allow(const ParamTree& t, const std::set<std::string>& keys, const std::string& where) {
  if (t.kind != ParamTree::Kind::Map) fail(t.source, where, "expected a map");
  for (const auto& [k, v] : t.map)
    if (!keys.count(k)) {
      std::string list;
      for (const auto& a : keys) list += (list.empty() ? "" : ", ") + a;
      fail(v.source, where + "." + k, "unknown key (allowed: " + list + ")");
    }
}

void check_species_map(const ParamTree& t, const std::string& where) {
  if (t.kind != ParamTree::Kind::Map || t.map.empty())
    fail(t.source, where, "expected a map of element: fraction, e.g. {La: 0.7, Sr: 0.3}");
  for (const auto& [k, v] : t.map) {
    try {
      atomic_number(k);
    } catch (const std::exception& e) {
      fail(v.source, where + "." + k, e.what());
    }
    if (v.kind != ParamTree::Kind::Leaf || v.leaf.is_text()) fail(v.source, where + "." + k, "expected a fraction");
  }
}

void check_element_leaf(const ParamTree* t, const std::string& where) {
  if (!t) return;
  if (t->kind != ParamTree::Kind::Leaf || !t->leaf.is_text()) fail(t->source, where, "expected an element symbol");
  for (const Value& v : t->leaf.options) try {
      atomic_number(v.text);
    } catch (const std::exception& e) {
      fail(t->source, where, e.what());
    }
}

/// The modifiers' keys (key_tables.hpp: builder_modifier_keys): maps and lists of maps, their
/// element keys checked as symbols.
void check_modifiers(const ParamTree& b, const std::string& P) {
  const auto table = builder_modifier_keys();
  for (const KeySpec& k : table) {
    const ParamTree* t = k.type == KeyType::Map || k.type == KeyType::MapList ? b.find(k.path) : nullptr;
    if (!t) continue;
    const std::string where = P + "." + k.path;
    const std::set<std::string> keys = allowed_keys(table, k.path);
    const std::string prefix = std::string(k.path) + ".";
    auto check_map = [&](const ParamTree& m, const std::string& w) {
      allow(m, keys, w);
      for (const KeySpec& e : table)
        if (const std::string path = e.path; e.type == KeyType::Element && path.rfind(prefix, 0) == 0)
          check_element_leaf(m.find(path.substr(prefix.size())), w + "." + path.substr(prefix.size()));
    };
    if (k.type == KeyType::Map) {
      check_map(*t, where);
    } else {
      if (t->kind != ParamTree::Kind::List) fail(t->source, where, "expected a list of maps");
      for (std::size_t i = 0; i < t->list.size(); ++i) check_map(t->list[i], where + "[" + std::to_string(i) + "]");
    }
  }
}

/// `type` plus the table's top-level keys.
std::set<std::string> builder_keys(std::span<const KeySpec> table) {
  std::set<std::string> keys = allowed_keys(table, "");
  keys.insert("type");
  return keys;
}

void check_perovskite(const ParamTree& t, const std::string& P, bool allow_modifiers) {
  std::set<std::string> keys = builder_keys(perovskite_keys());
  if (allow_modifiers) keys.merge(allowed_keys(builder_modifier_keys(), ""));
  allow(t, keys, P);
  if (const ParamTree* a = t.find("A")) check_species_map(*a, P + ".A");
  if (const ParamTree* b = t.find("B")) check_species_map(*b, P + ".B");
  if (const ParamTree* r = t.find("arrangement"))
    for (const Value& v : r->leaf.options)
      if (!v.is_text || !names_of(kSiteArrangementNames).count(v.text))
        fail(r->source, P + ".arrangement", "expected random, layered or clustered");
}

/// With a pixelated detector every sample's patterns must have one shape (the file's 4D
/// array is fixed): refuse keys that change the lateral cell, the grid or the wavelength.
void check_fixed_pattern_shape(const ScenarioSpec& spec) {
  const auto pixelated = std::find_if(spec.detectors.begin(), spec.detectors.end(),
                                      [](const DetectorSpec& d) { return d.type == DetectorType::Pixelated; });
  if (pixelated == spec.detectors.end()) return;
  // Windowed multislice records on each tile's window and streams no 4D patterns (auto
  // falls back from it by itself when a pixelated detector is present).
  if (parse_method(spec.simulation.method) == Method::Windowed)
    fail(pixelated->source, "detectors." + pixelated->name,
         "the pixelated detector '" + pixelated->name +
             "' needs method multislice, prism or auto: windowed multislice records no 4D-STEM patterns");
  const std::string why = "must be fixed with the pixelated detector '" + pixelated->name +
                          "': 4D-STEM needs the same lateral cell, sampling and energy in every sample";
  auto fixed = [&](const Distribution& d, const std::string& key) {
    if (!d.is_fixed()) fail(d.source, key, why);
  };
  fixed(spec.specimen.repeat[0], "specimen.repeat[0]");
  fixed(spec.specimen.repeat[1], "specimen.repeat[1]");
  fixed(spec.microscope.energy, "microscope.energy");
  if (spec.simulation.auto_sampling) {
    // sampling: auto follows the convergence angle and the detectors' outer angles.
    fixed(spec.microscope.convergence, "microscope.convergence");
    for (const DetectorSpec& d : spec.detectors)
      if (d.type == DetectorType::Annular) fixed(d.outer, "detectors." + d.name + ".outer");
  } else {
    fixed(spec.simulation.sampling, "simulation.sampling");
  }
  // Builder keys that set the lateral cell: lattice constants and a nanoparticle's cell.
  std::function<void(const ParamTree&, const std::string&, bool)> walk = [&](const ParamTree& t, const std::string& key,
                                                                            bool lateral) {
    if (t.kind == ParamTree::Kind::Leaf) {
      if (lateral) fixed(t.leaf, key);
    } else if (t.kind == ParamTree::Kind::Map) {
      for (const auto& [k, v] : t.map) walk(v, key + "." + k, lateral || k == "a" || k == "cell");
    } else {
      for (std::size_t i = 0; i < t.list.size(); ++i) walk(t.list[i], key + "[" + std::to_string(i) + "]", lateral);
    }
  };
  if (spec.specimen.builder) walk(*spec.specimen.builder, "specimen.builder", false);
}

}  // namespace

void check_physics_keys(const ScenarioSpec& spec) {
  if (spec.specimen.builder) {
    const ParamTree& b = *spec.specimen.builder;
    const std::string P = "specimen.builder";
    const std::string& type = spec.specimen.builder_type;
    if (type == "perovskite" || type == "amorphous" || type == "defects") {
      check_perovskite(b, P, true);
      check_modifiers(b, P);
      if (type == "amorphous" && !b.find("amorphous")) fail(b.source, P, "type amorphous needs an `amorphous:` map");
      if (type == "defects" && !b.find("vacancies") && !b.find("dopants") && !b.find("interstitials") &&
          !b.find("antiphase_boundary"))
        fail(b.source, P, "type defects needs vacancies, dopants, interstitials or antiphase_boundary");
    } else if (type == "film") {
      std::set<std::string> keys = builder_keys(film_keys());
      keys.merge(allowed_keys(builder_modifier_keys(), ""));
      keys.erase("antiphase_boundary");  // a perovskite's (100) boundary: not defined across a film
      allow(b, keys, P);
      if (const ParamTree* t = b.find("substrate")) check_perovskite(*t, P + ".substrate", false);
      if (const ParamTree* t = b.find("film")) check_perovskite(*t, P + ".film", false);
      check_modifiers(b, P);
    } else if (type == "world") {
      std::set<std::string> keys = builder_keys(world_keys());
      keys.merge(allowed_keys(world_window_keys(), ""));
      allow(b, keys, P);
    } else if (type == "nanoparticle") {
      allow(b, builder_keys(nanoparticle_keys()), P);
      for (const KeySpec& k : nanoparticle_keys())
        if (k.type == KeyType::Element) check_element_leaf(b.find(k.path), P + "." + k.path);
    }
  }
  if (spec.acquisition) {
    const ParamTree& a = *spec.acquisition;
    const std::string P = "acquisition";
    // Which keys exist: the acquisition key table (key_tables.hpp), section and sub-maps alike.
    const auto table = acquisition_keys();
    allow(a, allowed_keys(table, ""), P);
    for (const KeySpec& k : table) {
      if (k.type != KeyType::Map) continue;
      const ParamTree* t = &a;  // the sub-map at k.path, if the scenario has it
      std::string rest = k.path;
      while (t) {
        const std::size_t dot = rest.find('.');
        t = t->find(rest.substr(0, dot));
        if (dot == std::string::npos) break;
        rest = rest.substr(dot + 1);
      }
      if (t) allow(*t, allowed_keys(table, k.path), P + "." + k.path);
    }
  }
  // Values: one draw of sample 0 must give valid settings (distributions are checked by the
  // parser for their support; acquisition values by AcquisitionSettings::validate; every
  // sample's draw by check_run).
  if (spec.acquisition) check_acquisition(spec, sample_parameters(spec, 0));
}

void check_acquisition(const ScenarioSpec& spec, const SampledScenario& s) {
  if (!spec.acquisition) return;
  bool noisy = false;
  try {
    acquisition_settings(s, noisy).validate();
  } catch (const std::invalid_argument& e) {
    fail(spec.acquisition->source, "acquisition", "sample " + std::to_string(s.index) + ": " + e.what());
  }
}

MemoryEstimate check_run(const ScenarioSpec& spec, Shard shard, std::size_t threads, double budget) {
  if (threads == 0) threads = std::size_t(std::max(1, omp_get_max_threads()));
  if (!(budget > 0)) budget = double(default_memory_budget());
  check_fixed_pattern_shape(spec);  // here, not in check_physics_keys: a session uses sample 0 only
  const auto idx = shard_samples(spec.total_samples(), shard);
  if (idx.empty()) return {};
  // Every draw of the shard (up to kMaxDrawn: drawing is microseconds a sample, so this bounds
  // the check to about a second), with its acquisition settings.
  constexpr std::size_t kMaxDrawn = 100000;
  // Memory of the samples most likely to be the largest: the first and the last (where sweeps
  // put their extremes) and those drawing the most atoms, grid points, slices, configurations
  // and scan positions (building a specimen for each of many samples would cost seconds).
  constexpr std::size_t kMaxEstimated = 16;
  std::vector<std::pair<double, std::size_t>> by_size;
  const std::size_t n = std::min(idx.size(), kMaxDrawn);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = k + 1 == n ? idx.back() : idx[k];
    const SampledScenario s = sample_parameters(spec, i);
    check_acquisition(spec, s);
    const double cells = double(s.repeat[0]) * double(s.repeat[1]) * double(s.repeat[2]);
    const double size = cells * double(std::max(1, s.configurations)) / (s.sampling * s.sampling * s.slice_thickness) +
                        double(s.scan.size());
    by_size.emplace_back(k == 0 || k + 1 == n ? std::numeric_limits<double>::infinity() : size, i);
  }
  const std::size_t keep = std::min(by_size.size(), kMaxEstimated);
  std::partial_sort(by_size.begin(), by_size.begin() + long(keep), by_size.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  MemoryEstimate largest;
  for (std::size_t k = 0; k < keep; ++k) {
    const SampledScenario s = sample_parameters(spec, by_size[k].second);
    const MemoryEstimate e = estimate_memory(s, spec.labels, threads, budget, spec.spectrometers);
    if (e.bytes > budget) {
      std::ostringstream m;
      m << e.describe(s.index) << " but only " << std::fixed << std::setprecision(0) << budget / (1 << 20)
        << " MiB are available for it: use fewer phonon configurations, thicker slices, a "
           "coarser sampling, a smaller specimen or scan, fewer detector bins, or fewer threads (--threads)";
      throw std::runtime_error(m.str());
    }
    if (e.bytes > largest.bytes) largest = e;
  }
  return largest;
}

}  // namespace stemtwin
