// Zone-axis orientation: cell lengths, atom counts and density for every orientation,
// Si [110] dumbbells, strain reporting for an oblique lattice, tiling and tilt.
#include <gtest/gtest.h>

#include <cmath>

#include "stemtwin/specimen/columns.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/specimen/structure_io.hpp"

using namespace stemtwin;

namespace {
const std::string kStructures = std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/structures/";

double min_distance(const Structure& s) {  // brute force, periodic in x, y and z
  double best = 1e300;
  for (std::size_t i = 0; i < s.atoms.size(); ++i)
    for (std::size_t j = i + 1; j < s.atoms.size(); ++j) {
      double d[3] = {s.atoms[i].x - s.atoms[j].x, s.atoms[i].y - s.atoms[j].y, s.atoms[i].z - s.atoms[j].z};
      double L[3] = {s.cell.x, s.cell.y, s.cell.z};
      double r2 = 0;
      for (int k = 0; k < 3; ++k) {
        d[k] -= L[k] * std::round(d[k] / L[k]);
        r2 += d[k] * d[k];
      }
      best = std::min(best, std::sqrt(r2));
    }
  return best;
}

void expect_inside(const Structure& s) {
  for (const Atom& a : s.atoms) {
    ASSERT_GE(a.x, 0);
    ASSERT_LT(a.x, s.cell.x);
    ASSERT_GE(a.y, 0);
    ASSERT_LT(a.y, s.cell.y);
    ASSERT_GE(a.z, 0);
    ASSERT_LT(a.z, s.cell.z);
  }
}
}  // namespace

TEST(Orient, SrTiO3ZoneAxes) {
  const double a = 3.905;
  Crystal sto = crystal_from_cif(kStructures + "SrTiO3.cif");
  const double n0 = 5 / (a * a * a);
  struct Case {
    std::array<int, 3> uvw;
    double lx, ly, lz;  // sorted lateral lengths, period
    std::size_t atoms;
  } cases[] = {{{0, 0, 1}, a, a, a, 5},
               {{1, 1, 0}, a, a * std::sqrt(2.0), a * std::sqrt(2.0), 10},
               {{1, 1, 1}, a * std::sqrt(2.0), a * std::sqrt(6.0), a * std::sqrt(3.0), 30},
               {{2, 1, 0}, a, a * std::sqrt(5.0), a * std::sqrt(5.0), 25}};
  for (const Case& c : cases) {
    OrientedCell oc = orient_along(sto, c.uvw);
    const Cell& L = oc.structure.cell;
    EXPECT_NEAR(std::min(L.x, L.y), c.lx, 1e-9) << c.uvw[0] << c.uvw[1] << c.uvw[2];
    EXPECT_NEAR(std::max(L.x, L.y), c.ly, 1e-9);
    EXPECT_NEAR(L.z, c.lz, 1e-9);
    EXPECT_EQ(oc.structure.atoms.size(), c.atoms);
    EXPECT_NEAR(number_density(oc.structure), n0, 1e-12);
    EXPECT_LT(oc.max_strain, 1e-12);  // cubic: exactly orthogonal cells exist
    EXPECT_NEAR(min_distance(oc.structure), a / 2, 1e-9);  // Ti–O bond survives the rotation
    expect_inside(oc.structure);
    // composition preserved: 1 Sr : 1 Ti : 3 O
    EXPECT_DOUBLE_EQ(count_element(oc.structure, 8), 3 * count_element(oc.structure, 38));
    // the zone axis is along +z
    Vec3 z = lab_direction(oc, sto, {double(c.uvw[0]), double(c.uvw[1]), double(c.uvw[2])});
    EXPECT_NEAR(z[2], 1.0, 1e-12);
  }
}

TEST(Orient, SiliconDumbbellsAlong110) {
  const double a = 5.431;
  Crystal si = crystal_from_cif(kStructures + "Si.cif");
  OrientOptions opt;
  opt.x_axis = std::array<int, 3>{0, 0, 1};  // as the reference file: x = [001]
  OrientedCell oc = orient_along(si, {1, 1, 0}, opt);
  const Cell& L = oc.structure.cell;
  EXPECT_NEAR(L.x, a, 1e-9);
  EXPECT_NEAR(L.y, a / std::sqrt(2.0), 1e-9);  // fcc centring: period along [1-10] is a√2/2
  EXPECT_NEAR(L.z, a / std::sqrt(2.0), 1e-9);  // and along [110]
  EXPECT_EQ(oc.structure.atoms.size(), 4u);    // V = a³/2 → 4 of the 8 atoms
  EXPECT_NEAR(min_distance(oc.structure), a * std::sqrt(3.0) / 4, 1e-9);  // Si–Si bond 2.3517 Å
  // columns: 2 dumbbells per cell, each 2 columns 1.358 Å (= a/4) apart along x = [001]
  Structure big = tile(oc.structure, 3, 4, 26);
  auto cols = find_columns(big);
  ASSERT_EQ(cols.size(), 3u * 4u * 4u);
  double nearest = 1e300;
  for (std::size_t i = 0; i < cols.size(); ++i) {
    EXPECT_DOUBLE_EQ(cols[i].count, 26.0);
    for (std::size_t j = i + 1; j < cols.size(); ++j)
      nearest = std::min(nearest, std::hypot(cols[i].x - cols[j].x, cols[i].y - cols[j].y));
  }
  EXPECT_NEAR(nearest, a / 4, 1e-9);  // 1.35775 Å
  EXPECT_NEAR(big.cell.x, 16.293, 1e-9);
  EXPECT_NEAR(big.cell.y, 15.361188, 1e-6);  // the reference cell of tests/data/reference
  EXPECT_EQ(big.atoms.size(), 1248u);
}

TEST(Orient, CountsAndDensityPreservedForManyAxes) {
  for (const char* file : {"Au.cif", "Si.cif", "SrTiO3.cif"}) {
    Crystal c = crystal_from_cif(kStructures + file);
    const double n0 = c.sites.size() / cell_volume(c);
    for (std::array<int, 3> uvw : {std::array<int, 3>{0, 0, 1}, {1, 1, 0}, {1, 1, 1}, {2, 1, 1}, {3, 1, 0}, {1, -1, 2}}) {
      OrientedCell oc = orient_along(c, uvw);
      EXPECT_NEAR(number_density(oc.structure), n0, 1e-12) << file << " " << uvw[0] << uvw[1] << uvw[2];
      double v = oc.structure.cell.x * oc.structure.cell.y * oc.structure.cell.z;
      EXPECT_NEAR(oc.structure.atoms.size(), v * n0, 1e-6);
      EXPECT_LT(oc.max_strain, 1e-12);
    }
  }
  // fcc Au [111]: period a√3, not a√3/... (the shortest lattice vector along [111] is a[111])
  OrientedCell au111 = orient_along(crystal_from_cif(kStructures + "Au.cif"), {1, 1, 1});
  EXPECT_NEAR(au111.structure.cell.z, 4.078 * std::sqrt(3.0), 1e-9);
  // fcc Au [110]: 2 atoms in a (a/√2)·a·(a/√2) cell... smallest area cell is a × a/√2
  OrientedCell au110 = orient_along(crystal_from_cif(kStructures + "Au.cif"), {1, 1, 0});
  EXPECT_EQ(au110.structure.atoms.size(), 2u);
}

TEST(Orient, GrapheneHoneycombFromHexagonalCell) {
  Crystal g = crystal_from_cif(kStructures + "graphene.cif");
  OrientedCell oc = orient_along(g, {0, 0, 1});
  EXPECT_NEAR(std::min(oc.structure.cell.x, oc.structure.cell.y), 2.46, 1e-9);
  EXPECT_NEAR(std::max(oc.structure.cell.x, oc.structure.cell.y), 2.46 * std::sqrt(3.0), 1e-9);
  EXPECT_NEAR(oc.structure.cell.z, 20.0, 1e-9);
  EXPECT_EQ(oc.structure.atoms.size(), 4u);
  EXPECT_NEAR(min_distance(oc.structure), 2.46 / std::sqrt(3.0), 1e-5);  // C–C 1.420 Å
  EXPECT_LT(oc.max_strain, 1e-12);
}

TEST(Orient, ObliqueLatticeGetsReportedStrainOrAClearError) {
  // monoclinic cell, β = 90.05°: along [010] a and c are 0.05° from orthogonal
  Crystal m;
  m.name = "mono";
  m.a = 4.0;
  m.b = 5.0;
  m.c = 6.0;
  m.beta = 90.05;
  m.sites = {{26, 0, 0, 0, 1, 0.08, "Fe"}, {8, 0.5, 0.5, 0.5, 1, 0.08, "O"}};
  OrientedCell oc = orient_along(m, {0, 1, 0});
  // shear strain E_xz = cos(β)/2·(…) ≈ 0.05° in rad / 2 = 4.36e-4
  EXPECT_NEAR(oc.max_strain, 0.05 * M_PI / 180 / 2, 2e-5);
  EXPECT_EQ(oc.structure.atoms.size(), 2u);
  EXPECT_NEAR(number_density(oc.structure), 2 / cell_volume(m), 1e-12);  // pure shear keeps volume
  OrientOptions strict;
  strict.max_strain = 1e-4;
  // a strain-free choice exists: p = 3a+2c, q = 3a−2c with 9a² = 4c² (16.97 Å each)
  OrientedCell exact = orient_along(m, {0, 1, 0}, strict);
  EXPECT_LT(exact.max_strain, 1e-12);
  const double cb = std::cos(90.05 * M_PI / 180), ac = 4.0 * 6.0 * cb;  // a·c
  const double l1 = std::sqrt(9 * 16.0 + 4 * 36.0 + 12 * ac), l2 = std::sqrt(9 * 16.0 + 4 * 36.0 - 12 * ac);
  EXPECT_NEAR(std::min(exact.structure.cell.x, exact.structure.cell.y), std::min(l1, l2), 1e-9);
  EXPECT_NEAR(std::max(exact.structure.cell.x, exact.structure.cell.y), std::max(l1, l2), 1e-9);
  EXPECT_EQ(exact.structure.atoms.size(), 24u);  // |det| = 12 cells
  strict.max_lateral = 10;  // ... which the search no longer reaches: a clear error
  try {
    orient_along(m, {0, 1, 0}, strict);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("max_lateral"), std::string::npos) << e.what();
  }
  EXPECT_THROW(orient_along(m, {0, 0, 0}), std::invalid_argument);
}

TEST(Orient, TileAndRepeats) {
  Crystal sto = crystal_from_cif(kStructures + "SrTiO3.cif");
  Structure s = orient_along(sto, {0, 0, 1}).structure;
  auto r = repeats_for_size(s.cell, 40, 30, 100);
  EXPECT_EQ(r[0], 10);  // 40/3.905 = 10.24
  EXPECT_EQ(r[1], 8);   // 7.68
  EXPECT_EQ(r[2], 26);  // 25.6
  Structure t = tile(s, r[0], r[1], r[2]);
  EXPECT_EQ(t.atoms.size(), 5u * 10 * 8 * 26);
  EXPECT_NEAR(t.cell.z, 26 * 3.905, 1e-9);
  expect_inside(t);
  EXPECT_THROW(tile(s, 0, 1, 1), std::invalid_argument);
}

TEST(Orient, TiltShearsColumnsByThicknessTimesAngle) {
  Crystal sto = crystal_from_cif(kStructures + "SrTiO3.cif");
  Structure s = tile(orient_along(sto, {0, 0, 1}).structure, 6, 6, 20);
  const std::size_t n = s.atoms.size();
  // the Sr atoms of the column at the cell centre, bottom (z=0) and top (z=19a)
  Structure t = s;
  tilt(t, 0.0, 10.0);  // 10 mrad about y: x changes by Δz·sin(10 mrad)
  ASSERT_EQ(t.atoms.size(), n);
  for (const Atom& a : t.atoms) {
    EXPECT_GE(a.z, 0);
    EXPECT_LT(a.z, t.cell.z + 1e-9);
    EXPECT_GE(a.x, 0);
    EXPECT_LT(a.x, t.cell.x);
  }
  // atom i at (3a, 3a, 0) and atom j at (3a, 3a, 19a) in the untilted crystal
  const double a = 3.905;
  std::size_t i0 = n, i1 = n;
  for (std::size_t i = 0; i < n; ++i) {
    const Atom& at = s.atoms[i];
    if (at.Z == 38 && std::abs(at.x - 3 * a) < 1e-6 && std::abs(at.y - 3 * a) < 1e-6) {
      if (std::abs(at.z) < 1e-6) i0 = i;
      if (std::abs(at.z - 19 * a) < 1e-6) i1 = i;
    }
  }
  ASSERT_LT(i0, n);
  ASSERT_LT(i1, n);
  EXPECT_NEAR(t.atoms[i1].x - t.atoms[i0].x, 19 * a * std::sin(0.01), 1e-9);
  EXPECT_NEAR(t.atoms[i1].z - t.atoms[i0].z, 19 * a * std::cos(0.01), 1e-9);
  EXPECT_NEAR(t.atoms[i1].y - t.atoms[i0].y, 0.0, 1e-9);
}
