// The world's amorphous material (world.hpp): a hard-core random packing generated tile by
// tile, so that any window's atoms are a pure function of the world.
//
// Each 4 Å × 4 Å column of the world (full thickness) draws Poisson candidates of intensity
// λ from its own stream; a candidate exists where its material is (the amorphised edge for
// kind 0, the carbon cap and support for kind 1, inside the local thickness); an existing
// candidate is kept when no other existing candidate within d (amorphous_min_distance_A)
// carries a smaller mark (Matérn's type II hard-core process). The kept density is
// (1 − e^{−λv})/v with v = 4/3·π·d³, so λ = −ln(1 − n·v)/v gives the material's number
// density n. Deciding a candidate needs only the 3 × 3 tiles around it (d ≤ the tile).
#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "stemtwin/specimen/world.hpp"
#include "world_detail.hpp"

namespace stemtwin {
using namespace world_detail;

namespace {
struct Candidate {
  double x, y, z, mark;
  int Z;
};
}  // namespace

void World::amorphous_atoms(const WorldWindow& w, int kind, Specimen& out) const {
  const double T = p_.thickness_A, L = kAmorphousTile_A, d = p_.amorphous_min_distance_A;
  const double n = kind == 0 ? 5.0 / std::pow(p_.substrate_a_A, 3) : p_.carbon_density_per_A3;
  const double v = 4.0 / 3.0 * kPi * d * d * d;
  const double lambda = -std::log(1.0 - n * v) / v;
  // Can a tile hold existing candidates of this kind? (exact to skip: its candidates exist nowhere)
  auto possible = [&](long long tx, long long ty) {
    const double x0 = double(tx) * L, y0 = double(ty) * L;
    if (x0 + L <= 0 || y0 + L <= 0 || x0 >= p_.width_A || y0 >= p_.height_A) return false;
    if (kind == 0)
      return x0 < p_.support_x_A && y0 + L > p_.edge_y_A - p_.edge_roughness_A &&
             y0 < p_.edge_y_A + p_.edge_roughness_A + p_.amorphous_width_A;
    return x0 + L > p_.support_x_A || (y0 + L > p_.interface_y_A + p_.film_A && y0 < p_.cap_top_A);
  };
  auto exists = [&](double x, double y, double z) {
    const Place pl = place(x, y);
    if (kind == 0) return pl.cls == SpecimenClass::Amorphous && z < pl.thickness;
    if (x >= p_.support_x_A) return pl.cls != SpecimenClass::Vacuum && z >= T - p_.support_thickness_A;
    return pl.cls == SpecimenClass::Support && z < pl.thickness;
  };
  std::map<std::pair<long long, long long>, std::vector<Candidate>> tiles;  // existing candidates, sorted by z
  auto tile = [&](long long tx, long long ty) -> const std::vector<Candidate>& {
    auto it = tiles.find({tx, ty});
    if (it != tiles.end()) return it->second;
    std::vector<Candidate> c;
    if (possible(tx, ty)) {
      Rng r(seed_, RngPurpose::World, item(Stream(kAmorphous + std::uint64_t(kind)), pack2(tx, ty)), 0);
      const std::uint64_t count = r.poisson(lambda * L * L * T);
      for (std::uint64_t k = 0; k < count; ++k) {
        Candidate q;
        q.x = (double(tx) + r.uniform()) * L;
        q.y = (double(ty) + r.uniform()) * L;
        q.z = r.uniform() * T;
        q.mark = r.uniform();
        const double s = r.uniform();  // species: SrTiO3's 1 : 1 : 3, or carbon
        q.Z = kind == 1 ? 6 : (s < 0.2 ? 38 : s < 0.4 ? 22 : 8);
        if (exists(q.x, q.y, q.z)) c.push_back(q);
      }
      std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.z < b.z; });
    }
    return tiles.emplace(std::make_pair(tx, ty), std::move(c)).first->second;
  };
  const SpecimenClass cls = kind == 0 ? SpecimenClass::Amorphous : SpecimenClass::Support;
  const long long tx0 = (long long)std::floor(w.x0 / L), tx1 = (long long)std::floor((w.x0 + w.wx) / L);
  const long long ty0 = (long long)std::floor(w.y0 / L), ty1 = (long long)std::floor((w.y0 + w.wy) / L);
  for (long long ty = ty0; ty <= ty1; ++ty)
    for (long long tx = tx0; tx <= tx1; ++tx) {
      if (!possible(tx, ty)) continue;
      const std::vector<Candidate>& own = tile(tx, ty);  // std::map: references survive insertions
      for (const Candidate& q : own) {
        if (!(q.x >= w.x0 && q.x < w.x0 + w.wx && q.y >= w.y0 && q.y < w.y0 + w.wy)) continue;
        bool kept = true;
        for (long long ny = ty - 1; ny <= ty + 1 && kept; ++ny)
          for (long long nx = tx - 1; nx <= tx + 1 && kept; ++nx) {
            const std::vector<Candidate>& nb = tile(nx, ny);
            auto it = std::lower_bound(nb.begin(), nb.end(), q.z - d, [](const Candidate& a, double z) { return a.z < z; });
            for (; it != nb.end() && it->z <= q.z + d; ++it) {
              const double dx = it->x - q.x, dy = it->y - q.y, dz = it->z - q.z;
              if (dx * dx + dy * dy + dz * dz >= d * d) continue;
              // Smaller mark wins; ties (never seen with 53-bit marks) by position, so the rule is total.
              if (it->mark < q.mark || (it->mark == q.mark && std::tie(it->x, it->y, it->z) < std::tie(q.x, q.y, q.z))) {
                kept = false;
                break;
              }
            }
          }
        if (kept) {
          Atom a;
          a.Z = q.Z, a.x = q.x, a.y = q.y, a.z = q.z;
          out.structure.atoms.push_back(a);
          out.atom_class.push_back(int(cls));
        }
      }
    }
}

}  // namespace stemtwin
