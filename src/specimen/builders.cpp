// Crystal builders: perovskite, film on substrate, a specimen from a structure file (shared helpers: builder_common.hpp).
#include "stemtwin/specimen/builders.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/core/rng.hpp"
#include "stemtwin/specimen/structure_io.hpp"

#include "builder_common.hpp"

namespace stemtwin {

using namespace builder_detail;

// --- perovskite ------------------------------------------------------------------------------
Specimen build_perovskite(const PerovskiteParams& p, std::uint64_t seed, std::uint64_t sample) {
  if (!(p.a > 0)) throw std::invalid_argument("perovskite a must be > 0 Å");
  for (int r : p.repeats)
    if (r < 1) throw std::invalid_argument("perovskite repeats must be ≥ 1");
  element_symbol(p.O);
  const auto& n = p.repeats;
  const double corr = p.correlation_length / p.a;
  std::vector<int> Asp = arrange_sites(p.A, n, p.arrangement, p.layer_axis, corr,
                                       Rng(seed, RngPurpose::Structure, sample, kASites), "A");
  std::vector<int> Bsp = arrange_sites(p.B, n, p.arrangement, p.layer_axis, corr,
                                       Rng(seed, RngPurpose::Structure, sample, kBSites), "B");
  if (p.vacancy_order) check_axis(p.vacancy_axis, "vacancy_axis");
  Specimen s;
  s.structure.cell = {n[0] * p.a, n[1] * p.a, n[2] * p.a};
  const double a = p.a;
  for (int l = 0; l < n[2]; ++l)
    for (int j = 0; j < n[1]; ++j)
      for (int i = 0; i < n[0]; ++i) {
        std::size_t site = (static_cast<std::size_t>(l) * n[1] + j) * n[0] + i;
        s.structure.atoms.push_back({Asp[site], i * a, j * a, l * a, 1.0, 0.0});
        s.structure.atoms.push_back({Bsp[site], (i + .5) * a, (j + .5) * a, (l + .5) * a, 1.0, 0.0});
        // the three oxygens of the cell: the one missing coordinate offset is 0
        const std::array<std::array<double, 3>, 3> O{{{.5, .5, 0}, {.5, 0, .5}, {0, .5, .5}}};
        for (const auto& o : O) {
          Atom at{p.O, (i + o[0]) * a, (j + o[1]) * a, (l + o[2]) * a, 1.0, 0.0};
          bool vacant = false;
          if (p.vacancy_order) {
            // half-integer units (·2): O sites of BO2 planes ⊥ axis have that coordinate odd
            const int ax = p.vacancy_axis;
            const int h[3] = {static_cast<int>(std::lround(2 * (i + o[0]))), static_cast<int>(std::lround(2 * (j + o[1]))),
                              static_cast<int>(std::lround(2 * (l + o[2])))};
            const int u = (ax + 1) % 3, v = (ax + 2) % 3;
            const bool bo2_plane = (h[ax] % 2) != 0;
            const int plane = (h[ax] - 1) / 2;  // index of the BO2 plane
            if (bo2_plane && plane % 2 == 1) {
              // rows along the in-plane diagonal (u + v direction): h[u] − h[v] is odd for O;
              // every other row ((h[u] − h[v]) mod 4 == 1) is vacant
              int m = ((h[u] - h[v]) % 4 + 4) % 4;
              vacant = (m == 1);
            }
          }
          if (vacant) s.vacancies.push_back(at);
          else s.structure.atoms.push_back(at);
        }
      }
  s.atom_class.assign(s.structure.atoms.size(), cls(SpecimenClass::Crystal));
  s.info["a"] = p.a;
  s.info["oxygen_vacancies"] = static_cast<double>(s.vacancies.size());
  const double nA = static_cast<double>(Asp.size());
  for (const auto& sp : p.A)
    s.info["A_fraction_" + std::to_string(sp.Z)] = std::count(Asp.begin(), Asp.end(), sp.Z) / nA;
  return s;
}

// --- film on substrate ------------------------------------------------------------------------
Specimen build_film_on_substrate(const FilmParams& p, std::uint64_t seed, std::uint64_t sample) {
  if (p.substrate_cells < 1 || p.film_cells < 1) throw std::invalid_argument("film and substrate need ≥ 1 cell each");
  if (!(p.film.a > 0) || !(p.substrate.a > 0)) throw std::invalid_argument("lattice parameters must be > 0 Å");
  if (!(p.poisson > -1 && p.poisson < 0.5)) throw std::invalid_argument("Poisson ratio must lie in (−1, 0.5)");
  if (!(p.vacuum >= 0)) throw std::invalid_argument("vacuum must be ≥ 0 Å");
  const double as = p.substrate.a, af = p.film.a;
  const double eps_in = (as - af) / af;
  const double c = af * (1 - 2 * p.poisson / (1 - p.poisson) * eps_in);
  PerovskiteParams sub = p.substrate;
  sub.repeats = {p.substrate.repeats[0], p.substrate_cells, p.substrate.repeats[2]};
  PerovskiteParams fil = p.film;
  fil.a = as;
  fil.repeats = {sub.repeats[0], p.film_cells, sub.repeats[2]};
  Specimen s = build_perovskite(sub, seed, sample);
  Specimen f = build_perovskite(fil, seed, sample + kFilmOffset * 1000003ULL);
  const double y0 = p.substrate_cells * as;
  auto place = [&](Atom at) {
    at.y = y0 + at.y * (c / as);
    return at;
  };
  for (const Atom& at : f.structure.atoms) {
    s.structure.atoms.push_back(place(at));
    s.atom_class.push_back(cls(SpecimenClass::Film));
  }
  for (const Atom& at : f.vacancies) s.vacancies.push_back(place(at));
  s.structure.cell.y = y0 + p.film_cells * c + p.vacuum;
  s.info.clear();
  s.info["interface_y"] = y0 - as / 4;
  s.info["film_c"] = c;
  s.info["film_strain"] = eps_in;
  s.info["oxygen_vacancies"] = static_cast<double>(s.vacancies.size());
  return s;
}

// --- from a file -----------------------------------------------------------------------------------
Specimen specimen_from_file(const FileSpecimenParams& p) {
  Structure cell;
  double strain = 0;
  const StructureFormat fmt = detect_format(p.path);
  if (fmt == StructureFormat::Cif || fmt == StructureFormat::Poscar) {
    OrientedCell oc = orient_along(read_crystal(p.path), p.zone_axis, p.orient);
    cell = std::move(oc.structure);
    strain = oc.max_strain;
  } else {
    if (p.zone_axis != std::array<int, 3>{0, 0, 1})
      throw std::invalid_argument(p.path + ": an XYZ file holds atoms, not a crystal: it cannot be re-oriented "
                                           "(zone axis must be [0 0 1]; use a CIF or POSCAR)");
    cell = read_structure(p.path);
  }
  const Cell& c = cell.cell;
  auto r = repeats_for_size(c, p.size_x > 0 ? p.size_x : c.x, p.size_y > 0 ? p.size_y : c.y,
                            p.thickness > 0 ? p.thickness : c.z);
  Specimen s = make_specimen(tile(cell, r[0], r[1], r[2]));
  if (p.tilt_x_mrad != 0 || p.tilt_y_mrad != 0) tilt(s.structure, p.tilt_x_mrad, p.tilt_y_mrad);
  override_rms(s.structure, p.rms_override);
  s.info["max_strain"] = strain;
  s.info["repeats_x"] = r[0];
  s.info["repeats_y"] = r[1];
  s.info["repeats_z"] = r[2];
  return s;
}

}  // namespace stemtwin
