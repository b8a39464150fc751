// The world (include/stemtwin/specimen/world.hpp): determinism whatever the order of
// requests, seams between windows, the regions' composition against the projected densities
// the overview uses, and the memory bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/specimen/world.hpp"

using namespace stemtwin;

namespace {

using Key = std::tuple<double, double, double, int, int>;  // x, y, z, Z, class

std::vector<Key> keys(const Specimen& s) {
  std::vector<Key> k;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    const Atom& a = s.structure.atoms[i];
    k.emplace_back(a.x, a.y, a.z, a.Z, s.atom_class[i]);
  }
  std::sort(k.begin(), k.end());
  return k;
}

// Windows at the places where each rule of the world acts (default layout, world.hpp).
struct Place {
  const char* what;
  WorldWindow w;
};
std::vector<Place> places(const World& world) {
  const WorldParams& p = world.params();
  std::vector<Place> out = {
      {"substrate", {8000, 8000, 30, 30}},
      {"amorphous edge", {7000, world.edge_at(7000) + 40, 30, 30}},
      {"film", {4000, p.interface_y_A + 100, 40, 40}},
      {"cap", {4000, p.interface_y_A + p.film_A + 200, 30, 30}},
  };
  // A particle: the first one in the support region's tiles.
  for (const WorldParticle& q : world.particles_in({p.support_x_A, 8000, 4000, 4000})) {
    out.push_back({"particle", {q.x - 25, q.y - 25, 50, 50}});
    break;
  }
  // A film grain boundary: walk along x until the grain changes.
  const double y = p.interface_y_A + p.film_A / 2;
  const auto g0 = world.grain_at(3000, y).first;
  for (double x = 3000; x < 6000; x += 5)
    if (world.grain_at(x, y).first != g0) {
      out.push_back({"grain boundary", {x - 20, y - 20, 40, 40}});
      break;
    }
  return out;
}

}  // namespace

TEST(World, SameAtomsWhateverTheOrderOfRequests) {
  const World a(WorldParams{}, 11), b(WorldParams{}, 11);
  const auto pl = places(a);
  ASSERT_EQ(pl.size(), 6u) << "every kind of place is found in the default world";
  std::vector<std::vector<Key>> forward, backward(pl.size());
  for (const Place& p : pl) forward.push_back(keys(a.atoms_in(p.w)));
  for (std::size_t i = pl.size(); i-- > 0;) backward[i] = keys(b.atoms_in(pl[i].w));
  for (std::size_t i = 0; i < pl.size(); ++i) {
    EXPECT_FALSE(forward[i].empty()) << pl[i].what;
    EXPECT_EQ(forward[i], backward[i]) << pl[i].what;
  }
  // Another seed is another world.
  const World c(WorldParams{}, 12);
  EXPECT_NE(keys(c.atoms_in(pl[1].w)), forward[1]) << "amorphous atoms follow the seed";
}

TEST(World, AdjacentWindowsHoldExactlyTheAtomsOfTheirUnion) {
  const World world(WorldParams{}, 3);
  for (const Place& p : places(world)) {
    const WorldWindow& u = p.w;
    // Split at an arbitrary (non-lattice) x and then y.
    const double sx = u.x0 + 0.37 * u.wx, sy = u.y0 + 0.61 * u.wy;
    for (int axis = 0; axis < 2; ++axis) {
      WorldWindow l = u, r = u;
      if (axis == 0) l.wx = sx - u.x0, r.x0 = sx, r.wx = u.x0 + u.wx - sx;
      else l.wy = sy - u.y0, r.y0 = sy, r.wy = u.y0 + u.wy - sy;
      std::vector<Key> both = keys(world.atoms_in(l));
      const std::vector<Key> right = keys(world.atoms_in(r));
      both.insert(both.end(), right.begin(), right.end());
      std::sort(both.begin(), both.end());
      EXPECT_EQ(both, keys(world.atoms_in(u))) << p.what << ", split along " << (axis ? "y" : "x");
    }
  }
}

namespace {
/// Atoms per Å² of each element in a window against the mean of areal_density over it.
void expect_composition(const World& world, const WorldWindow& w, double tolerance, const char* what) {
  const Specimen s = world.atoms_in(w);
  std::map<int, double> counted, expected;
  for (const Atom& a : s.structure.atoms) counted[a.Z] += 1.0 / (w.wx * w.wy);
  const int n = 40;
  for (int iy = 0; iy < n; ++iy)
    for (int ix = 0; ix < n; ++ix) {
      const ArealDensity d = world.areal_density(w.x0 + (ix + 0.5) * w.wx / n, w.y0 + (iy + 0.5) * w.wy / n);
      for (std::size_t j = 0; j < d.n; ++j) expected[d.Z[j]] += d.per_A2[j] / (n * n);
    }
  double total = 0;
  for (const auto& [Z, v] : expected) total += v;
  for (const auto& [Z, v] : expected) {
    if (v < 0.05 * total) continue;  // trace species (dopants): their fractions are checked separately
    EXPECT_NEAR(counted[Z] / v, 1.0, tolerance) << what << ": Z = " << Z << " counted " << counted[Z] << " expected " << v;
  }
  for (const auto& [Z, v] : counted) EXPECT_TRUE(expected.count(Z)) << what << ": unexpected Z = " << Z;
}
}  // namespace

TEST(World, RegionsHoldTheirMaterialsAtTheDensitiesTheOverviewUses) {
  const World world(WorldParams{}, 5);
  const WorldParams& p = world.params();
  // Layout along y at x = 5000 (lamella) and the support at x > support_x_A.
  const double e = world.edge_at(5000);
  EXPECT_EQ(world.material_at(5000, e - 1), SpecimenClass::Vacuum);
  EXPECT_EQ(world.material_at(5000, e + 1), SpecimenClass::Amorphous);
  EXPECT_EQ(world.material_at(5000, p.interface_y_A - 1), SpecimenClass::Crystal);
  EXPECT_EQ(world.material_at(5000, p.interface_y_A + 1), SpecimenClass::Film);
  EXPECT_EQ(world.material_at(5000, p.cap_top_A - 1), SpecimenClass::Support);
  EXPECT_EQ(world.material_at(5000, p.cap_top_A + 1), SpecimenClass::Vacuum);
  EXPECT_EQ(world.material_at(-1, 8000), SpecimenClass::Vacuum);
  EXPECT_NEAR(world.thickness_at(5000, 8000), p.thickness_A, 1e-12);
  EXPECT_NEAR(world.thickness_at(5000, e + p.wedge_A / 2), p.thickness_A / 2, 1e-9) << "the wedge thins to the edge";
  // Composition: counted atoms against the projected densities. Windows of whole cells (15
  // along x and y: no partial rows); the film's grains are rotated, so its window edges cut
  // rows (≈ ±1/30 per axis). Trace species (dopants: ~28 in the window, ±20 %) are compared
  // through their fractions below.
  const double a = p.substrate_a_A, c = p.film_a_A * (1 - 2 * p.poisson / (1 - p.poisson) * (a - p.film_a_A) / p.film_a_A);
  expect_composition(world, {a * 2049, a * 2049, 15 * a, 15 * a}, 0.02, "substrate");
  expect_composition(world, {a * 1025, p.interface_y_A + 25 * c, 15 * a, 15 * c}, 0.07, "film");
  // Amorphous: Matérn-II packing at the target density (±4 %: ~3000 atoms, Poisson 2 %, plus the thinning at the band's edges)
  expect_composition(world, {5000, 12000, 60, 60}, 0.04, "carbon cap");
  WorldWindow bare{p.support_x_A + 20, 100, 30, 30};  // a piece of support without particles
  while (!world.particles_in(bare).empty()) bare.y0 += 50;
  expect_composition(world, bare, 0.08, "support (away from particles)");
  const Specimen am = world.atoms_in({7000, world.edge_at(7000) + 40, 30, 30});
  std::size_t amorphous = 0;
  for (int c : am.atom_class) amorphous += c == int(SpecimenClass::Amorphous);
  EXPECT_GT(amorphous, 100u);
  // Hard core: no two amorphous atoms closer than the minimum distance.
  double closest = 1e9;
  for (std::size_t i = 0; i < am.structure.atoms.size(); ++i)
    for (std::size_t j = i + 1; j < am.structure.atoms.size(); ++j) {
      const Atom &a = am.structure.atoms[i], &b = am.structure.atoms[j];
      closest = std::min(closest, std::hypot(a.x - b.x, a.y - b.y, a.z - b.z));
    }
  EXPECT_GE(closest, p.amorphous_min_distance_A);
  // Substrate defects: La dopants and O vacancies at their fractions (2 %; 5σ bounds over
  // a 100 × 100 Å window: ~16 800 A and ~50 000 O sites).
  const Specimen sub = world.atoms_in({8000, 8000, 100, 100});
  double sr = 0, la = 0, o = 0;
  for (const Atom& a : sub.structure.atoms) sr += a.Z == 38, la += a.Z == 57, o += a.Z == 8;
  const double fla = la / (sr + la), fv = double(sub.vacancies.size()) / (o + double(sub.vacancies.size()));
  EXPECT_NEAR(fla, p.dopant_fraction, 5 * std::sqrt(p.dopant_fraction / (sr + la)));
  EXPECT_NEAR(fv, p.oxygen_vacancy_fraction, 5 * std::sqrt(p.oxygen_vacancy_fraction / o));
  // Film grains: at least two rotations in 2000 Å of film, within the stated range.
  std::map<std::uint64_t, double> rot;
  for (double x = 1000; x < 3000; x += 20) rot.insert(world.grain_at(x, p.interface_y_A + 200));
  EXPECT_GE(rot.size(), 4u);
  for (const auto& [id, r] : rot) EXPECT_LE(std::abs(r), p.grain_rotation_deg * kPi / 180 + 1e-12);
  // A particle: Au atoms ≈ 4/a³ · 4/3 π R³ (the sphere cut from the lattice; ±15 % for R ≥ 10 Å).
  const auto qs = world.particles_in({p.support_x_A, 0, p.width_A - p.support_x_A, p.height_A});
  ASSERT_GT(qs.size(), 100u) << "particles all over the support";
  const WorldParticle q = qs.front();
  const Specimen ps = world.atoms_in({q.x - q.radius - 1, q.y - q.radius - 1, 2 * q.radius + 2, 2 * q.radius + 2});
  double au = 0;
  for (const Atom& a : ps.structure.atoms) au += a.Z == 79;
  EXPECT_NEAR(au / (4 / std::pow(p.particle_a_A, 3) * 4.0 / 3.0 * kPi * std::pow(q.radius, 3)), 1.0, 0.15);
  EXPECT_EQ(world.material_at(q.x, q.y), SpecimenClass::Particle);
}

TEST(World, AWindowMicrometresWideIsRefusedNotMaterialised) {
  const World world(WorldParams{}, 0);
  const WorldWindow um{5000, 5000, 10000, 10000};  // 1 µm²: ~1e9 atoms
  EXPECT_GT(world.estimated_atoms(um), 5e8);
  try {
    (void)world.atoms_in(um);
    FAIL() << "a 1 µm window must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("max_atoms"), std::string::npos) << e.what();
  }
  // The projected densities answer anywhere at once (no atoms).
  EXPECT_GT(world.areal_density(10000, 10000).n, 0u);
}

TEST(World, BadLayoutIsRefusedNamingTheParameter) {
  WorldParams p;
  p.thickness_A = -1;
  EXPECT_THROW(World(p, 0), std::invalid_argument);
  p = WorldParams{};
  p.particle_radius_max_A = 60;  // 2·60 + 30 > 100
  try {
    World w(p, 0);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("particle radii"), std::string::npos) << e.what();
  }
}
