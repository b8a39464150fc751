// The world: layout, regions, projected densities, particles and crystal sites (world.hpp).
// The amorphous process is in world_amorphous.cpp.
#include "stemtwin/specimen/world.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

#include "world_detail.hpp"

namespace stemtwin {
using namespace world_detail;

void ArealDensity::add(int z, double v) {
  if (!(v > 0)) return;
  for (std::size_t i = 0; i < n; ++i)
    if (Z[i] == z) {
      per_A2[i] += v;
      return;
    }
  if (n == Z.size()) throw std::logic_error("ArealDensity: more than 8 elements");
  Z[n] = z, per_A2[n] = v, ++n;
}

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("World: " + what);
}

/// The particle of a support tile, if any (centres keep R + 2 Å from the tile's edges, so a
/// particle lies inside its tile and particles never overlap).
std::optional<WorldParticle> particle_of_tile(const WorldParams& p, std::uint64_t seed, long long tx, long long ty) {
  Rng r(seed, RngPurpose::World, item(kParticle, pack2(tx, ty)), 0);
  if (!(r.uniform() < p.particle_probability)) return std::nullopt;
  WorldParticle q;
  q.radius = r.uniform(p.particle_radius_min_A, p.particle_radius_max_A);
  const double L = p.particle_tile_A, m = q.radius + 2.0;
  q.x = double(tx) * L + r.uniform(m, L - m);
  q.y = double(ty) * L + r.uniform(m, L - m);
  q.rotation = r.uniform(0.0, kPi / 2);
  q.z = p.thickness_A - p.support_thickness_A - q.radius;  // resting on the support
  if (q.x - q.radius < p.support_x_A || q.x + q.radius >= p.width_A || q.y - q.radius < 0 || q.y + q.radius >= p.height_A)
    return std::nullopt;
  return q;
}

}  // namespace

World::World(WorldParams p, std::uint64_t seed) : p_(p), seed_(seed) {
  require(p.width_A > 0 && p.width_A <= 1e7 && p.height_A > 0 && p.height_A <= 1e7, "width_A and height_A must be in (0, 1e7] Å (1 mm)");
  require(p.thickness_A > 0 && p.thickness_A <= 2000, "thickness_A must be in (0, 2000] Å");
  require(p.edge_roughness_A >= 0 && p.amorphous_width_A >= 0 && p.wedge_A > 0 && p.film_A >= 0,
          "edge_roughness_A, amorphous_width_A, film_A must be ≥ 0 and wedge_A > 0");
  require(p.edge_y_A + p.edge_roughness_A + p.amorphous_width_A <= p.interface_y_A &&
              p.interface_y_A + p.film_A <= p.cap_top_A,
          "the bands must be in order: edge_y_A + edge_roughness_A + amorphous_width_A ≤ interface_y_A ≤ interface_y_A + film_A ≤ cap_top_A");
  require(p.support_thickness_A > 0 && p.support_thickness_A < p.thickness_A, "support_thickness_A must be in (0, thickness_A)");
  require(p.substrate_a_A > 0.5 && p.film_a_A > 0.5 && p.particle_a_A > 0.5, "lattice parameters must be > 0.5 Å");
  require(p.dopant_fraction >= 0 && p.dopant_fraction <= 1 && p.oxygen_vacancy_fraction >= 0 && p.oxygen_vacancy_fraction <= 1 &&
              p.film_La_fraction >= 0 && p.film_La_fraction <= 1 && p.particle_probability >= 0 && p.particle_probability <= 1,
          "fractions and probabilities must be in [0, 1]");
  require(p.poisson >= 0 && p.poisson < 0.5, "poisson must be in [0, 0.5)");
  require(p.grain_A >= 20 && p.grain_rotation_deg >= 0 && p.grain_rotation_deg <= 45, "grain_A must be ≥ 20 Å and grain_rotation_deg in [0, 45]");
  require(p.particle_radius_min_A > 0 && p.particle_radius_max_A >= p.particle_radius_min_A &&
              2 * p.particle_radius_max_A + p.support_thickness_A <= p.thickness_A,
          "particle radii need 0 < min ≤ max and 2·max + support_thickness_A ≤ thickness_A (the particle sits on the support inside the thickness)");
  require(p.particle_tile_A >= 2 * p.particle_radius_max_A + 8, "particle_tile_A must be ≥ 2·particle_radius_max_A + 8 Å");
  require(p.amorphous_min_distance_A > 0 && p.amorphous_min_distance_A <= kAmorphousTile_A,
          "amorphous_min_distance_A must be in (0, 4] Å (the amorphous tile)");
  const double v = 4.0 / 3.0 * kPi * std::pow(p.amorphous_min_distance_A, 3);
  const double n_sto = 5.0 / std::pow(p.substrate_a_A, 3);
  require(p.carbon_density_per_A3 > 0 && std::max(p.carbon_density_per_A3, n_sto) * v < 0.9,
          "the amorphous number densities are too high for amorphous_min_distance_A (n·4/3·π·d³ must stay below 0.9)");
  require(p.max_atoms > 0, "max_atoms must be > 0");
  // Edge front: four seeded sinusoids whose amplitudes sum to at most edge_roughness_A.
  Rng r(seed, RngPurpose::World, item(kEdge, 0), 0);
  for (std::size_t m = 0; m < 4; ++m) {
    edge_amp_[m] = p.edge_roughness_A / 4 * r.uniform(0.5, 1.0);
    edge_k_[m] = 2 * kPi / r.uniform(150.0 * double(m + 1), 800.0 * double(m + 1));
    edge_phase_[m] = r.uniform(0.0, 2 * kPi);
  }
  // Coherent film: a_s in plane (x, z), c along y from Poisson's ratio (as build_film_on_substrate).
  const double nu = p.poisson;
  film_c_ = p.film_a_A * (1 - 2 * nu / (1 - nu) * (p.substrate_a_A - p.film_a_A) / p.film_a_A);
}

double World::edge_at(double x) const {
  double e = p_.edge_y_A;
  for (std::size_t m = 0; m < 4; ++m) e += edge_amp_[m] * std::sin(edge_k_[m] * x + edge_phase_[m]);
  return e;
}

namespace {
bool in_disc(const WorldParticle& q, double x, double y) {
  const double dx = x - q.x, dy = y - q.y;
  return dx * dx + dy * dy < q.radius * q.radius;
}
}  // namespace

World::Place World::place(double x, double y) const {
  Place pl;
  if (!(x >= 0 && y >= 0 && x < p_.width_A && y < p_.height_A)) return pl;
  if (!lamella(x)) {
    const double L = p_.particle_tile_A;
    const auto q = particle_of_tile(p_, seed_, (long long)std::floor(x / L), (long long)std::floor(y / L));
    pl.cls = SpecimenClass::Support;
    pl.thickness = p_.support_thickness_A;
    if (q && in_disc(*q, x, y)) {
      pl.cls = SpecimenClass::Particle;
      pl.chord = 2.0 * std::sqrt(std::max(0.0, q->radius * q->radius - (x - q->x) * (x - q->x) - (y - q->y) * (y - q->y)));
    }
    return pl;
  }
  const double e = edge_at(x);
  if (y < e || y >= p_.cap_top_A) return pl;
  pl.thickness = p_.thickness_A * std::min(1.0, (y - e) / p_.wedge_A);
  pl.cls = y < e + p_.amorphous_width_A        ? SpecimenClass::Amorphous
           : y < p_.interface_y_A              ? SpecimenClass::Crystal
           : y < p_.interface_y_A + p_.film_A  ? SpecimenClass::Film
                                               : SpecimenClass::Support;
  return pl;
}

SpecimenClass World::material_at(double x, double y) const { return place(x, y).cls; }

double World::thickness_at(double x, double y) const { return place(x, y).thickness; }

ArealDensity World::areal_density(double x, double y) const {
  ArealDensity d;
  const Place pl = place(x, y);
  const SpecimenClass m = pl.cls;
  if (m == SpecimenClass::Vacuum) return d;
  if (!lamella(x)) {
    d.add(6, p_.carbon_density_per_A3 * p_.support_thickness_A);
    if (m == SpecimenClass::Particle) d.add(79, 4.0 / std::pow(p_.particle_a_A, 3) * pl.chord);
    return d;
  }
  const double t = pl.thickness;
  const double a3 = std::pow(p_.substrate_a_A, 3);
  switch (m) {
    case SpecimenClass::Amorphous:  // SrTiO3's composition at its number density
      d.add(38, t / a3), d.add(22, t / a3), d.add(8, 3 * t / a3);
      break;
    case SpecimenClass::Crystal:
    case SpecimenClass::Film: {
      // Whole atomic layers along z, as atoms_in makes them: n0 planes at z = k·a (A sites,
      // one O) and n1 at (k + ½)·a (B, two O) below the local thickness.
      const double a = p_.substrate_a_A;
      const double n0 = std::ceil(t / a), n1 = std::max(0.0, std::ceil(t / a - 0.5));
      const double area = m == SpecimenClass::Crystal ? a * a : a * film_c_;  // projected cell
      const double A = n0 / area, B = n1 / area;
      if (m == SpecimenClass::Crystal) {
        d.add(38, (1 - p_.dopant_fraction) * A), d.add(57, p_.dopant_fraction * A), d.add(22, B);
        d.add(8, (n0 + 2 * n1) / area * (1 - p_.oxygen_vacancy_fraction));
      } else {
        d.add(57, p_.film_La_fraction * A), d.add(38, (1 - p_.film_La_fraction) * A), d.add(26, B), d.add(8, (n0 + 2 * n1) / area);
      }
      break;
    }
    case SpecimenClass::Support:
      d.add(6, p_.carbon_density_per_A3 * t);
      break;
    default:
      break;
  }
  return d;
}

namespace {
/// Voronoi seed of grain cell (gx, gy): jittered within the middle half of the cell, so the
/// nearest seed of any point is among the 3 × 3 cells around it (own seed ≤ 1.06 g away,
/// seeds two cells away ≥ 1.25 g).
std::array<double, 3> grain_seed(const WorldParams& p, std::uint64_t seed, long long gx, long long gy) {
  Rng r(seed, RngPurpose::World, item(kGrain, pack2(gx, gy)), 0);
  const double x = (double(gx) + r.uniform(0.25, 0.75)) * p.grain_A;
  const double y = (double(gy) + r.uniform(0.25, 0.75)) * p.grain_A;
  const double rot = r.uniform(-1.0, 1.0) * p.grain_rotation_deg * kPi / 180.0;
  return {x, y, rot};
}
}  // namespace

std::pair<std::uint64_t, double> World::grain_at(double x, double y) const {
  const long long cx = (long long)std::floor(x / p_.grain_A), cy = (long long)std::floor(y / p_.grain_A);
  double best = 1e300, rot = 0;
  std::uint64_t id = 0;
  for (long long gy = cy - 1; gy <= cy + 1; ++gy)
    for (long long gx = cx - 1; gx <= cx + 1; ++gx) {
      const auto s = grain_seed(p_, seed_, gx, gy);
      const double d = (s[0] - x) * (s[0] - x) + (s[1] - y) * (s[1] - y);
      if (d < best) best = d, rot = s[2], id = pack2(gx, gy);
    }
  return {id, rot};
}

std::vector<WorldParticle> World::particles_in(const WorldWindow& w) const {
  std::vector<WorldParticle> out;
  const double L = p_.particle_tile_A;
  const double x0 = std::max(w.x0, p_.support_x_A);
  for (long long ty = (long long)std::floor(w.y0 / L); double(ty) * L < w.y0 + w.wy; ++ty)
    for (long long tx = (long long)std::floor(x0 / L); double(tx) * L < w.x0 + w.wx; ++tx) {
      const auto q = particle_of_tile(p_, seed_, tx, ty);
      if (!q) continue;
      // Does the disc meet the window? (nearest point of the rectangle within the radius)
      const double nx = std::clamp(q->x, w.x0, w.x0 + w.wx), ny = std::clamp(q->y, w.y0, w.y0 + w.wy);
      if ((nx - q->x) * (nx - q->x) + (ny - q->y) * (ny - q->y) < q->radius * q->radius) out.push_back(*q);
    }
  return out;
}

double World::estimated_atoms(const WorldWindow& w) const {
  const double n = std::max({p_.carbon_density_per_A3, 5.0 / std::pow(p_.substrate_a_A, 3), 4.0 / std::pow(p_.particle_a_A, 3)});
  const double wx = std::max(0.0, std::min(w.x0 + w.wx, p_.width_A) - std::max(w.x0, 0.0));
  const double wy = std::max(0.0, std::min(w.y0 + w.wy, p_.height_A) - std::max(w.y0, 0.0));
  return n * wx * wy * p_.thickness_A;
}

Specimen World::atoms_in(const WorldWindow& w) const {
  if (!(w.wx > 0 && w.wy > 0) || !std::isfinite(w.x0) || !std::isfinite(w.y0))
    throw std::invalid_argument("World::atoms_in: the window needs finite corners and positive sides");
  const double est = estimated_atoms(w);
  if (est > double(p_.max_atoms))
    throw std::invalid_argument("World::atoms_in: a " + std::to_string(w.wx) + " × " + std::to_string(w.wy) + " Å window holds up to " +
                                std::to_string((long long)est) + " atoms, more than max_atoms = " + std::to_string(p_.max_atoms) +
                                " (only windows imaged at atomic resolution get atoms)");
  Specimen s;
  s.structure.cell = {w.wx, w.wy, p_.thickness_A};
  crystal_atoms(w, s);
  film_atoms(w, s);
  particle_atoms(w, s);
  amorphous_atoms(w, 0, s);
  amorphous_atoms(w, 1, s);
  s.info["world_x0"] = w.x0;
  s.info["world_y0"] = w.y0;
  return s;
}

namespace {
struct SiteDef {
  double fx, fy, fz;
};
constexpr SiteDef kPerovskite[5] = {{0, 0, 0}, {0.5, 0.5, 0.5}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};  // A, B, O×3
constexpr SiteDef kFcc[4] = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};

bool inside(const WorldWindow& w, double x, double y) { return x >= w.x0 && x < w.x0 + w.wx && y >= w.y0 && y < w.y0 + w.wy; }

void push(Specimen& s, int Z, double x, double y, double z, SpecimenClass c) {
  Atom a;
  a.Z = Z, a.x = x, a.y = y, a.z = z;
  s.structure.atoms.push_back(a);
  s.atom_class.push_back(int(c));
}
}  // namespace

void World::crystal_atoms(const WorldWindow& w, Specimen& out) const {
  // The substrate's rows: x in the lamella, y up to the interface.
  const double x0 = std::max(w.x0, 0.0), x1 = std::min(w.x0 + w.wx, p_.support_x_A);
  const double y0 = std::max(w.y0, p_.edge_y_A - p_.edge_roughness_A), y1 = std::min(w.y0 + w.wy, p_.interface_y_A);
  if (!(x1 > x0 && y1 > y0)) return;
  const double a = p_.substrate_a_A;
  const long long kmax = (long long)std::ceil(p_.thickness_A / a);
  for (long long j = (long long)std::floor(y0 / a) - 1; double(j) * a < y1; ++j)
    for (long long i = (long long)std::floor(x0 / a) - 1; double(i) * a < x1; ++i)
      for (int s = 0; s < 5; ++s) {
        const double x = (double(i) + kPerovskite[s].fx) * a, y = (double(j) + kPerovskite[s].fy) * a;
        if (!inside(w, x, y)) continue;
        const Place pl = place(x, y);
        if (pl.cls != SpecimenClass::Crystal) continue;
        const double t = pl.thickness;
        for (long long k = 0; k < kmax; ++k) {
          const double z = (double(k) + kPerovskite[s].fz) * a;
          if (z >= t) break;
          if (s == 1) {
            push(out, 22, x, y, z, SpecimenClass::Crystal);
            continue;
          }
          Rng r(seed_, RngPurpose::World, item(kSubstrateSite, 0), pack_site(i, j, k, s));
          const double u = r.uniform();
          if (s == 0) {
            if (u < p_.dopant_fraction) push(out, 57, x, y, z, SpecimenClass::Dopant);
            else push(out, 38, x, y, z, SpecimenClass::Crystal);
          } else if (u < p_.oxygen_vacancy_fraction) {
            Atom v;
            v.Z = 8, v.x = x, v.y = y, v.z = z;
            out.vacancies.push_back(v);
          } else {
            push(out, 8, x, y, z, SpecimenClass::Crystal);
          }
        }
      }
}

void World::film_atoms(const WorldWindow& w, Specimen& out) const {
  const double x0 = std::max(w.x0, 0.0), x1 = std::min(w.x0 + w.wx, p_.support_x_A);
  const double y0 = std::max(w.y0, p_.interface_y_A), y1 = std::min(w.y0 + w.wy, p_.interface_y_A + p_.film_A);
  if (!(x1 > x0 && y1 > y0)) return;
  const double g = p_.grain_A, as = p_.substrate_a_A, c = film_c_;
  const long long kmax = (long long)std::ceil(p_.thickness_A / as);
  // Every grain whose cell lies within 2 cells of the region (a grain reaches ≤ 1.06 g from its seed).
  for (long long gy = (long long)std::floor(y0 / g) - 2; double(gy - 1) * g < y1; ++gy)
    for (long long gx = (long long)std::floor(x0 / g) - 2; double(gx - 1) * g < x1; ++gx) {
      const auto sd = grain_seed(p_, seed_, gx, gy);
      const std::uint64_t id = pack2(gx, gy);
      const double reach = 1.1 * g;
      const double rx0 = std::max(x0, sd[0] - reach), rx1 = std::min(x1, sd[0] + reach);
      const double ry0 = std::max(y0, sd[1] - reach), ry1 = std::min(y1, sd[1] + reach);
      if (!(rx1 > rx0 && ry1 > ry0)) continue;
      const double cr = std::cos(sd[2]), sr = std::sin(sd[2]);
      const double ox = 0, oy = p_.interface_y_A;  // the film lattice's origin: on the interface
      // Lattice-frame bounds of the rectangle's corners.
      double umin = 1e300, umax = -1e300, vmin = 1e300, vmax = -1e300;
      for (double cx : {rx0, rx1})
        for (double cy : {ry0, ry1}) {
          const double dx = cx - ox, dy = cy - oy;
          const double u = (cr * dx + sr * dy) / as, v = (-sr * dx + cr * dy) / c;
          umin = std::min(umin, u), umax = std::max(umax, u), vmin = std::min(vmin, v), vmax = std::max(vmax, v);
        }
      for (long long j = (long long)std::floor(vmin) - 1; double(j) <= vmax; ++j)
        for (long long i = (long long)std::floor(umin) - 1; double(i) <= umax; ++i)
          for (int s = 0; s < 5; ++s) {
            const double u = (double(i) + kPerovskite[s].fx) * as, v = (double(j) + kPerovskite[s].fy) * c;
            const double x = ox + cr * u - sr * v, y = oy + sr * u + cr * v;
            if (!(x >= rx0 && x < rx1 && y >= ry0 && y < ry1) || !inside(w, x, y)) continue;
            const Place pl = place(x, y);
            if (pl.cls != SpecimenClass::Film || grain_at(x, y).first != id) continue;
            const double t = pl.thickness;
            for (long long k = 0; k < kmax; ++k) {
              const double z = (double(k) + kPerovskite[s].fz) * as;
              if (z >= t) break;
              if (s == 0) {
                Rng r(seed_, RngPurpose::World, item(kFilmSite, id), pack_site(i, j, k, s));
                push(out, r.uniform() < p_.film_La_fraction ? 57 : 38, x, y, z, SpecimenClass::Film);
              } else {
                push(out, s == 1 ? 26 : 8, x, y, z, SpecimenClass::Film);
              }
            }
          }
    }
}

void World::particle_atoms(const WorldWindow& w, Specimen& out) const {
  const double a = p_.particle_a_A;
  for (const WorldParticle& q : particles_in(w)) {
    const long long n = (long long)std::ceil(q.radius / a) + 1;
    const double cr = std::cos(q.rotation), sr = std::sin(q.rotation);
    for (long long k = -n; k <= n; ++k)
      for (long long j = -n; j <= n; ++j)
        for (long long i = -n; i <= n; ++i)
          for (const SiteDef& s : kFcc) {
            const double u = (double(i) + s.fx) * a, v = (double(j) + s.fy) * a, dz = (double(k) + s.fz) * a;
            if (u * u + v * v + dz * dz > q.radius * q.radius) continue;
            const double x = q.x + cr * u - sr * v, y = q.y + sr * u + cr * v;
            if (inside(w, x, y)) push(out, 79, x, y, q.z + dz, SpecimenClass::Particle);
          }
  }
}

}  // namespace stemtwin
