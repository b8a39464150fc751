// One sample's specimen (scenario_run.hpp): a structure file oriented and tiled, or a builder
// (perovskite, film, amorphous, defects, nanoparticle, a window of the world) with its
// modifiers, and the thermal vibration it asked for.
#include <cmath>
#include <stdexcept>
#include <string>

#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/scenario/key_reader.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/phonon.hpp"
#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/specimen/structure_io.hpp"

namespace stemtwin {
namespace {

constexpr const char* kBuilder = "specimen.builder";

/// A perovskite's keys (key_tables.hpp) over `start`: the builder's own, or a film's substrate or film.
PerovskiteParams perovskite_params(const SampledTree& t, PerovskiteParams start, const std::string& where) {
  read_keys(t, perovskite_rows(), start, where);
  return start;
}

/// The modifiers (key_tables.hpp: builder_modifier_keys), in this order: an antiphase boundary
/// (with the perovskite's lattice parameter a), the amorphous region, vacancies, dopants, interstitials.
void apply_modifiers(Specimen& sp, const SampledTree& b, const SampledScenario& s, double a) {
  const auto table = builder_modifier_rows();
  const std::string P = kBuilder;
  if (b.has("antiphase_boundary")) {
    ModifierKeys m;
    read_keys(b.at("antiphase_boundary"), table, m, P + ".antiphase_boundary", "antiphase_boundary");
    add_planar_fault(sp, perovskite_antiphase_boundary(a, m.antiphase_boundary.position));
  }
  if (b.has("amorphous")) {
    ModifierKeys m;
    read_keys(b.at("amorphous"), table, m, P + ".amorphous", "amorphous");
    amorphize(sp, m.amorphous, s.seed, s.index);
  }
  // Each list entry is read into its own ModifierKeys (the list's rows are "<list>.<key>").
  auto each = [&](const char* list, auto apply) {
    if (!b.has(list)) return;
    const std::vector<SampledTree>& entries = b.at(list).list;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      ModifierKeys m;
      read_keys(entries[i], table, m, P + "." + list + "[" + std::to_string(i) + "]", list);
      apply(m);
    }
  };
  each("vacancies", [&](const ModifierKeys& m) { add_vacancies(sp, m.vacancies.element, m.vacancies.fraction, s.seed, s.index); });
  each("dopants", [&](const ModifierKeys& m) {
    add_dopants(sp, m.dopants.host, m.dopants.dopant, m.dopants.fraction, s.seed, s.index);
  });
  each("interstitials", [&](const ModifierKeys& m) {
    add_interstitials(sp, m.interstitials.element, std::size_t(std::llround(m.interstitials.count)), m.interstitials.min_distance,
                      s.seed, s.index);
  });
}

}  // namespace

WorldParams world_params(const SampledTree& b) {
  WorldParams p;
  read_keys(b, world_rows(), p, kBuilder);
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
    WorldWindowKeys win;
    read_keys(b, world_window_rows(), win, kBuilder);
    const double size = win.size;
    const double x = std::isnan(win.x) ? w.extent().x / 2 : win.x, y = std::isnan(win.y) ? w.extent().y / 2 : win.y;
    Specimen sp = w.atoms_in({x - size / 2, y - size / 2, size, size});
    for (Atom& a : sp.structure.atoms) a.x -= x - size / 2, a.y -= y - size / 2;
    for (Atom& a : sp.vacancies) a.x -= x - size / 2, a.y -= y - size / 2;
    if (sp.structure.atoms.empty()) throw std::invalid_argument("specimen.builder (world): the window at (" + std::to_string(x) + ", " +
                                                                std::to_string(y) + ") Å holds no atoms (vacuum)");
    return sp;
  }
  if (type == "perovskite" || type == "amorphous" || type == "defects") {
    PerovskiteParams p = perovskite_params(b, {}, kBuilder);
    p.repeats = s.repeat;
    Specimen sp = build_perovskite(p, s.seed, s.index);
    apply_modifiers(sp, b, s, p.a);
    return sp;
  }
  if (type == "film") {
    FilmParams f;
    read_keys(b, film_rows(), f, kBuilder);
    if (b.has("substrate")) f.substrate = perovskite_params(b.at("substrate"), f.substrate, std::string(kBuilder) + ".substrate");
    // The film starts as LaFeO3 with its bulk a (the `film` row's default).
    PerovskiteParams film;
    film.a = 3.93;
    film.A = {{57, 1.0}};
    film.B = {{26, 1.0}};
    if (b.has("film")) film = perovskite_params(b.at("film"), film, std::string(kBuilder) + ".film");
    f.film = film;
    f.substrate.repeats = s.repeat;
    Specimen sp = build_film_on_substrate(f, s.seed, s.index);
    apply_modifiers(sp, b, s, f.substrate.a);  // (no antiphase boundary in a film: scenario_checks refuses it)
    return sp;
  }
  if (type == "nanoparticle") {
    NanoparticleParams p;
    read_keys(b, nanoparticle_rows(), p, kBuilder);
    p.zone_axis = s.zone_axis;
    Specimen sp = build_nanoparticle_on_support(p, s.seed, s.index);
    apply_modifiers(sp, b, s, p.a);  // (nanoparticles take no modifiers: scenario_checks refuses them)
    return sp;
  }
  throw std::invalid_argument("unknown builder type '" + type + "'");
}

}  // namespace

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

}  // namespace stemtwin
