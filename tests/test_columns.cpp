// Projected columns and per-pixel masks.
#include <gtest/gtest.h>

#include <cmath>

#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/specimen/columns.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/specimen/structure_io.hpp"

using namespace stemtwin;

namespace {
const double a = 3.905;
Specimen sto(int nx, int ny, int nz) {
  PerovskiteParams p;
  p.repeats = {nx, ny, nz};
  return build_perovskite(p, 0);
}
}  // namespace

TEST(Columns, SrTiO3Along001) {
  Specimen s = sto(4, 3, 10);
  auto cols = find_columns(s);
  ASSERT_EQ(cols.size(), 4u * 3 * 4);  // Sr, TiO, O, O per cell
  int nSr = 0, nTi = 0, nO = 0;
  for (const Column& c : cols) {
    EXPECT_EQ(c.atoms.size(), std::size_t(c.dominant_Z == 22 ? 20 : 10));
    if (c.dominant_Z == 38) {
      ++nSr;
      EXPECT_DOUBLE_EQ(c.count, 10);
      EXPECT_NEAR(std::remainder(c.x, a), 0, 1e-9);
      EXPECT_NEAR(std::remainder(c.y, a), 0, 1e-9);
    }
    if (c.dominant_Z == 22) {  // Ti and O alternate along z: tie → heavier element
      ++nTi;
      EXPECT_DOUBLE_EQ(c.composition.at(22), 10);
      EXPECT_DOUBLE_EQ(c.composition.at(8), 10);
      EXPECT_DOUBLE_EQ(c.count, 20);
    }
    if (c.dominant_Z == 8) ++nO;
    EXPECT_EQ(c.cls, int(SpecimenClass::Crystal));
    EXPECT_GE(c.x, 0);
    EXPECT_LT(c.x, s.structure.cell.x);
  }
  EXPECT_EQ(nSr, 12);
  EXPECT_EQ(nTi, 12);
  EXPECT_EQ(nO, 24);
}

TEST(Columns, PeriodicGroupingAcrossTheEdge) {
  Structure s;
  s.cell = {10, 10, 10};
  s.atoms = {{14, 0.02, 5, 0, 1, 0}, {14, 9.97, 5, 2, 1, 0}, {14, 0.0, 5.04, 4, 0.5, 0}, {14, 5, 5, 0, 1, 0}};
  auto cols = find_columns(s, 0.1);
  ASSERT_EQ(cols.size(), 2u);
  // the edge column: weighted mean of 0.02, -0.03, 0.0 (weights 1, 1, 0.5) = -0.004 → 9.996
  const Column& edge = cols[0].atoms.size() == 3 ? cols[0] : cols[1];
  EXPECT_NEAR(edge.x, 10 - 0.004, 1e-9);
  EXPECT_NEAR(edge.y, 5 + 0.04 * 0.5 / 2.5, 1e-9);
  EXPECT_DOUBLE_EQ(edge.count, 2.5);
}

TEST(Columns, DefectClassesWin) {
  Specimen s = sto(3, 3, 6);
  ASSERT_EQ(add_dopants(s, 38, 57, 1.0 / 54, 1), 1u);  // one La in 54 Sr
  ASSERT_EQ(add_vacancies(s, 8, 1.0 / 162, 2), 1u);    // one O vacancy
  auto cols = find_columns(s);
  ASSERT_EQ(cols.size(), 36u);
  int dop = 0, vac = 0;
  for (const Column& c : cols) {
    if (c.cls == int(SpecimenClass::Dopant)) {
      ++dop;
      EXPECT_DOUBLE_EQ(c.composition.at(57), 1);
      EXPECT_DOUBLE_EQ(c.composition.at(38), 5);
      EXPECT_EQ(c.dominant_Z, 38);
    }
    if (c.cls == int(SpecimenClass::Vacancy)) {
      ++vac;
      EXPECT_EQ(c.vacancies, 1u);
      EXPECT_DOUBLE_EQ(c.composition.at(8), c.dominant_Z == 22 ? 5 : 5);
    }
  }
  EXPECT_EQ(dop, 1);
  EXPECT_EQ(vac, 1);
  // defect mask: the two columns, discs of 0.5 Å on a 0.1 Å grid → ~2·π·25 = 157 pixels
  ScanGrid g = ScanGrid::from_fov({0, 0}, s.structure.cell.x, s.structure.cell.y, 117, 117);
  Image d = defect_mask(cols, s.structure.cell, g, 0.5);
  double on = 0;
  for (double v : d.data) on += v;
  EXPECT_NEAR(on, 2 * M_PI * 0.25 / (g.step_x * g.step_y), 12);  // pixel-counting error of a disc edge
}

TEST(Columns, MasksAreNearestColumnAndPeriodic) {
  Specimen s = sto(2, 2, 4);
  auto cols = find_columns(s);
  // field of view twice the cell, starting off-origin, 160 pixels per cell (0.0488 Å)
  const double step = 2 * a / 160;
  ScanGrid g = ScanGrid::from_fov({-1, -1}, 4 * a, 4 * a, 320, 320);
  ASSERT_NEAR(g.step_x, step, 1e-12);
  Image sp = species_mask(cols, s.structure.cell, g, 0.6);
  Image cl = class_mask(cols, s.structure.cell, g, 0.6);
  Image ct = count_mask(cols, s.structure.cell, g, 0.6);
  auto at = [&](const Image& im, double x, double y) {
    return im(std::size_t(std::lround((y - g.start.y) / g.step_y)), std::size_t(std::lround((x - g.start.x) / g.step_x)));
  };
  EXPECT_EQ(at(sp, 0, 0), 38);
  EXPECT_EQ(at(sp, a / 2, a / 2), 22);
  EXPECT_EQ(at(sp, a / 2, 0), 8);
  EXPECT_EQ(at(sp, a / 4, a / 4), 0);  // 1.38 Å from every column: background
  EXPECT_EQ(at(cl, a / 4, a / 4), int(SpecimenClass::Vacuum));
  EXPECT_EQ(at(cl, 0, 0), int(SpecimenClass::Crystal));
  EXPECT_EQ(at(ct, a / 2, a / 2), 8);  // 4 Ti + 4 O
  EXPECT_EQ(at(ct, 0, 0), 4);
  // periodic images: the mask repeats with the cell (2a)
  for (std::size_t iy = 0; iy + 160 < g.ny; iy += 7)
    for (std::size_t ix = 0; ix + 160 < g.nx; ix += 5) EXPECT_EQ(sp(iy, ix), sp(iy + 160, ix + 160));
  // the disc radius: a pixel 0.55 Å from the Sr column is Sr, 0.65 Å is not
  EXPECT_EQ(at(sp, 2 * a + 12 * step, 2 * a), 38);  // 0.586 Å
  EXPECT_EQ(at(sp, 2 * a + 13 * step, 2 * a), 0);   // 0.635 Å
  EXPECT_THROW(species_mask(cols, s.structure.cell, g, 0.0), std::invalid_argument);
}

TEST(Columns, SiliconDumbbellColumnTable) {
  Crystal si = read_crystal(std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/structures/Si.cif");
  OrientOptions o;
  o.x_axis = std::array<int, 3>{0, 0, 1};
  Structure s = tile(orient_along(si, {1, 1, 0}, o).structure, 1, 1, 10);
  auto cols = find_columns(s);
  ASSERT_EQ(cols.size(), 4u);
  for (const Column& c : cols) EXPECT_DOUBLE_EQ(c.count, 10);
  // pairs at the same y, 1.358 Å apart in x (periodic distance in the 5.431 Å cell)
  EXPECT_NEAR(cols[0].y, cols[1].y, 1e-9);
  const double d = std::abs(cols[1].x - cols[0].x);
  EXPECT_NEAR(std::min(d, 5.431 - d), 5.431 / 4, 1e-9);
}

TEST(Columns, GroundTruthBundle) {
  Specimen s = sto(4, 4, 4);
  add_dopants(s, 38, 57, 1.0 / 64, 1);
  ScanGrid g = ScanGrid::from_fov({0, 0}, s.structure.cell.x, s.structure.cell.y, 64, 64);
  GroundTruth t = ground_truth(s, g, 0.5);
  EXPECT_EQ(t.columns.size(), 64u);
  EXPECT_EQ(t.region.nx, 64u);
  EXPECT_EQ(t.species.ny, 64u);
  // every region pixel is crystal (the dopant atom belongs to the crystal region)
  for (double v : t.region.data) EXPECT_EQ(v, int(SpecimenClass::Crystal));
  double on = 0;
  for (double v : t.defects.data) on += v;
  EXPECT_GT(on, 0);
  EXPECT_LT(on, 64 * 64 / 16);  // one column's disc, not more
}
