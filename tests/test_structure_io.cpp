// Structure files: CIF through gemmi (symmetry expansion, occupancy, U/B), extended XYZ,
// Prismatic XYZ, POSCAR; round trips; errors that name file and line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>

#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/specimen/specimen.hpp"
#include "stemtwin/specimen/structure_io.hpp"

using namespace stemtwin;

namespace {
const std::string kStructures = std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/structures/";

std::string tmp_file(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("stemtwin_io_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

// Expects a StructureError whose message starts with "path:line:".
void expect_error_at(const std::function<void()>& f, const std::string& path, int line, const std::string& word = "") {
  try {
    f();
    FAIL() << "no error for " << path;
  } catch (const StructureError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ":" + std::to_string(line) + ":", 0), 0u) << msg;
    if (!word.empty()) EXPECT_NE(msg.find(word), std::string::npos) << msg;
  }
}
}  // namespace

TEST(Cif, ShippedStructuresExpandToTheFullCell) {
  Crystal sto = crystal_from_cif(kStructures + "SrTiO3.cif");
  EXPECT_EQ(sto.sites.size(), 5u);  // Sr 1a + Ti 1b + O 3c
  EXPECT_DOUBLE_EQ(sto.a, 3.905);
  int nO = 0;
  for (auto& s : sto.sites) nO += s.Z == 8;
  EXPECT_EQ(nO, 3);
  EXPECT_EQ(crystal_from_cif(kStructures + "LaFeO3_pseudocubic.cif").sites.size(), 5u);
  Crystal si = crystal_from_cif(kStructures + "Si.cif");
  EXPECT_EQ(si.sites.size(), 8u);  // diamond: 8 atoms per conventional cell
  EXPECT_NEAR(si.sites[0].rms, std::sqrt(0.00577), 1e-9);  // from U_iso in the file
  Crystal au = crystal_from_cif(kStructures + "Au.cif");
  EXPECT_EQ(au.sites.size(), 4u);
  EXPECT_EQ(au.sites[0].rms, 0.0);  // no U in the file: none (no made-up default)
  Crystal gr = crystal_from_cif(kStructures + "graphene.cif");  // explicit symmetry operations
  EXPECT_EQ(gr.sites.size(), 2u);
  EXPECT_DOUBLE_EQ(gr.gamma, 120.0);
  // Si as an orthogonal structure: density 8/a³
  Structure s = read_structure(kStructures + "Si.cif");
  EXPECT_NEAR(number_density(s), 8 / std::pow(5.431, 3), 1e-12);
  // centring: fcc has 3 centring vectors, diamond too (same lattice); perovskite none
  EXPECT_EQ(centring_translations(au).size(), 3u);
  EXPECT_EQ(centring_translations(si).size(), 3u);
  EXPECT_EQ(centring_translations(sto).size(), 0u);
}

TEST(Cif, OccupancyAndBisoAndSymopsAreKept) {
  // rocksalt-like cell with explicit ops (inversion + body centring) and a partially
  // occupied site given with B instead of U.
  std::string text = R"(data_test
_cell_length_a 4.0
_cell_length_b 5.0
_cell_length_c 6.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_symmetry_equiv_pos_as_xyz
'x,y,z'
'-x,-y,-z'
'x+1/2,y+1/2,z+1/2'
'-x+1/2,-y+1/2,-z+1/2'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
_atom_site_B_iso_or_equiv
Ca1 Ca2+ 0 0 0 0.5 0.79
O1 O2- 0.1 0.2 0.3 1.0 1.2
)";
  Crystal c = crystal_from_cif_text(text, "test.cif");
  // Ca at 0,0,0 and ½,½,½ (inversion maps it onto itself); O has 4 images
  ASSERT_EQ(c.sites.size(), 6u);
  EXPECT_EQ(c.sites[0].Z, 20);
  EXPECT_DOUBLE_EQ(c.sites[0].occupancy, 0.5);
  EXPECT_NEAR(c.sites[0].rms, std::sqrt(0.79 / (8 * std::numbers::pi * std::numbers::pi)), 1e-12);
  EXPECT_NEAR(c.sites[5].fz, 0.2, 1e-12);  // -z+1/2 of 0.3
}

TEST(Cif, ErrorsNameFileAndLine) {
  std::string no_cell = tmp_file("nocell.cif", "data_x\n_space_group_name_H-M_alt 'P 1'\nloop_\n_atom_site_label\n"
                                               "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nSi1 0 0 0\n");
  expect_error_at([&] { crystal_from_cif(no_cell); }, no_cell, 2, "_cell_length_a");
  std::string bad_el = tmp_file("badel.cif", "data_x\n_cell_length_a 3\n_cell_length_b 3\n_cell_length_c 3\n"
                                             "_space_group_name_H-M_alt 'P 1'\nloop_\n_atom_site_label\n"
                                             "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nQq1 0 0 0\n");
  expect_error_at([&] { crystal_from_cif(bad_el); }, bad_el, 11, "unknown element");
  std::string bad_sg = tmp_file("badsg.cif", "data_x\n_cell_length_a 3\n_cell_length_b 3\n_cell_length_c 3\n"
                                             "_space_group_name_H-M_alt 'P 99 q'\nloop_\n_atom_site_label\n"
                                             "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nSi1 0 0 0\n");
  expect_error_at([&] { crystal_from_cif(bad_sg); }, bad_sg, 5, "space group");
  std::string syntax = tmp_file("syntax.cif", "data_x\n_cell_length_a 3\nloop_\n_a\n'unterminated\n");
  EXPECT_THROW(crystal_from_cif(syntax), StructureError);
  std::string hex = tmp_file("hex.cif", "data_x\n_cell_length_a 3\n_cell_length_b 3\n_cell_length_c 3\n"
                                        "_cell_angle_gamma 120\n_space_group_name_H-M_alt 'P 1'\nloop_\n_atom_site_label\n"
                                        "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nSi1 0 0 0\n");
  expect_error_at([&] { read_cif(hex); }, hex, 1, "orient_along");
  EXPECT_NO_THROW(read_crystal(hex));
}

TEST(Xyz, ReferenceExtendedXyzReads) {
  Structure s = read_structure(std::string(STEMTWIN_SOURCE_DIR) + "/tests/data/reference/si110.xyz");
  EXPECT_EQ(s.atoms.size(), 1248u);
  EXPECT_DOUBLE_EQ(s.cell.x, 16.293);
  EXPECT_DOUBLE_EQ(s.cell.y, 15.361188);
  EXPECT_DOUBLE_EQ(s.cell.z, 99.84772);
  EXPECT_EQ(s.atoms[1].Z, 14);
  EXPECT_DOUBLE_EQ(s.atoms[1].x, 1.35775);
  EXPECT_NEAR(number_density(s), 8 / std::pow(5.431, 3), 1e-6);  // Si density, so the file is whole
}

TEST(Xyz, RoundTripsKeepOccupancyAndRms) {
  Structure s;
  s.cell = {4, 5, 6};
  s.atoms = {{38, 0.1, 0.2, 0.3, 0.7, 0.05}, {8, 1.5, 2.5, 3.5, 1.0, 0.1}};
  std::string a = tmp_file("rt.xyz", ""), b = tmp_file("rt_prism.xyz", "");
  write_xyz(s, a, "test \"quoted\"");
  write_prismatic_xyz(s, b);
  EXPECT_EQ(detect_format(a), StructureFormat::ExtendedXyz);
  EXPECT_EQ(detect_format(b), StructureFormat::PrismaticXyz);
  for (const Structure& r : {read_structure(a), read_structure(b)}) {
    ASSERT_EQ(r.atoms.size(), 2u);
    EXPECT_DOUBLE_EQ(r.cell.y, 5);
    EXPECT_EQ(r.atoms[0].Z, 38);
    EXPECT_NEAR(r.atoms[0].occupancy, 0.7, 1e-9);
    EXPECT_NEAR(r.atoms[0].rms, 0.05, 1e-9);
    EXPECT_NEAR(r.atoms[1].z, 3.5, 1e-6);
  }
}

TEST(Xyz, ErrorsNameFileAndLine) {
  std::string oblique = tmp_file("oblique.xyz", "1\nLattice=\"3 0 0 1.5 2.6 0 0 0 5\" Properties=species:S:1:pos:R:3\nSi 0 0 0\n");
  expect_error_at([&] { read_structure(oblique); }, oblique, 2, "non-orthogonal");
  std::string badnum = tmp_file("badnum.xyz", "2\nLattice=\"3 0 0 0 3 0 0 0 3\"\nSi 0 0 0\nSi 0 x 0\n");
  expect_error_at([&] { read_structure(badnum); }, badnum, 4, "'x'");
  std::string short_file = tmp_file("short.xyz", "3\nLattice=\"3 0 0 0 3 0 0 0 3\"\nSi 0 0 0\n");
  expect_error_at([&] { read_structure(short_file); }, short_file, 3, "end of file");
  std::string plain = tmp_file("plain.xyz", "1\nno lattice here\nSi 0 0 0\n");
  expect_error_at([&] { read_xyz(plain); }, plain, 2, "Lattice");
  EXPECT_EQ(read_xyz(plain, Cell{5, 5, 5}).atoms.size(), 1u);
  std::string prism = tmp_file("noend.xyz", "comment\n 4 4 4\n14 0 0 0 1 0.08\n14 1 1 1 1 0.08\n");
  expect_error_at([&] { read_prismatic_xyz(prism); }, prism, 4, "-1");
  std::string prism_el = tmp_file("badz.xyz", "comment\n 4 4 4\n140 0 0 0 1 0.08\n-1\n");
  expect_error_at([&] { read_structure(prism_el); }, prism_el, 3, "1..103");
}

TEST(Poscar, DirectCartesianAndScale) {
  // SrTiO3, v5, scale 2 with a lattice of 1.9525 → a = 3.905 Å
  std::string direct = tmp_file("POSCAR", R"(SrTiO3
2.0
 1.9525 0 0
 0 1.9525 0
 0 0 1.9525
Sr Ti O
1 1 3
Direct
0 0 0
0.5 0.5 0.5
0.5 0.5 0
0.5 0 0.5
0 0.5 0.5
)");
  Structure s = read_structure(direct);
  ASSERT_EQ(s.atoms.size(), 5u);
  EXPECT_DOUBLE_EQ(s.cell.x, 3.905);
  EXPECT_EQ(s.atoms[1].Z, 22);
  EXPECT_NEAR(s.atoms[1].x, 1.9525, 1e-12);
  EXPECT_NEAR(s.atoms[4].y, 1.9525, 1e-12);
  std::string cart = tmp_file("cart.vasp", R"(Si
1.0
 5.431 0 0
 0 5.431 0
 0 0 5.431
Si
2
Selective dynamics
Cartesian
0 0 0 T T T
1.35775 1.35775 1.35775 T T T
)");
  Structure c = read_structure(cart);
  ASSERT_EQ(c.atoms.size(), 2u);
  EXPECT_NEAR(c.atoms[1].z, 1.35775, 1e-12);
  // hexagonal POSCAR: rejected by read_structure, read by read_crystal
  std::string hex = tmp_file("hex.poscar", "gr\n1\n2.46 0 0\n-1.23 2.130422 0\n0 0 20\nC\n2\nDirect\n"
                                           "0.333333 0.666667 0\n0.666667 0.333333 0\n");
  expect_error_at([&] { read_structure(hex); }, hex, 3, "non-orthogonal");
  Crystal g = read_crystal(hex);
  EXPECT_NEAR(g.gamma, 120.0, 1e-3);
  EXPECT_NEAR(g.a, 2.46, 1e-9);
  // ... and the orienter turns it into the orthogonal honeycomb cell
  OrientedCell oc = orient_along(g, {0, 0, 1});
  EXPECT_EQ(oc.structure.atoms.size(), 4u);
  EXPECT_NEAR(oc.structure.cell.x * oc.structure.cell.y, 2.46 * 2.46 * std::sqrt(3.0), 1e-4);
  EXPECT_LT(oc.max_strain, 1e-6);
  std::string bad = tmp_file("bad.vasp", "x\n1\n3 0 0\n0 3 0\n0 0 3\nSi\n2\nDirect\n0 0 0\n");
  expect_error_at([&] { read_structure(bad); }, bad, 9, "end of file");
  std::string v4 = tmp_file("v4.vasp", "x\n1\n3 0 0\n0 3 0\n0 0 3\n2\nDirect\n0 0 0\n0.5 0.5 0.5\n");
  expect_error_at([&] { read_structure(v4); }, v4, 6, "VASP 5");
}

TEST(Specimen, RmsOverride) {
  Structure s;
  s.cell = {1, 1, 1};
  s.atoms = {{38, 0, 0, 0, 1, 0.1}, {8, 0, 0, 0, 1, 0.1}};
  override_rms(s, {{8, 0.12}});
  EXPECT_DOUBLE_EQ(s.atoms[0].rms, 0.1);
  EXPECT_DOUBLE_EQ(s.atoms[1].rms, 0.12);
  EXPECT_THROW(override_rms(s, {{8, -1}}), std::invalid_argument);
}

// The elemental table reproduces Peng et al. (1996) Table 1 at 280 K: rms = √(B/8π²).
TEST(Thermal, ElementalTableIsPengAt280K) {
  const double k = 8 * M_PI * M_PI;
  EXPECT_NEAR(elemental_crystal_rms(14), std::sqrt(0.4630 / k), 1e-12);  // Si
  EXPECT_NEAR(elemental_crystal_rms(79), std::sqrt(0.5925 / k), 1e-12);  // Au
  EXPECT_NEAR(elemental_crystal_rms(29), std::sqrt(0.5260 / k), 1e-12);  // Cu
  EXPECT_EQ(elemental_crystal_rms(8), 0.0);   // O: no elemental crystal at room temperature
  EXPECT_EQ(elemental_crystal_rms(38), 0.0);  // Sr: not listed (compound values differ)
}

TEST(Thermal, StaticUnlessAsked) {
  Structure s;
  s.cell = {4, 4, 4};
  s.atoms = {{38, 0, 0, 0, 1, 0.09}, {8, 2, 2, 2, 1, 0.0}};  // a file gave Sr a U, not O
  Structure off = s;
  apply_thermal_vibration(off, ThermalVibration{});  // default: off
  for (const Atom& a : off.atoms) EXPECT_EQ(a.rms, 0.0);
  EXPECT_EQ(thermal_warning(off, 1), "");

  ThermalVibration on;
  on.enabled = true;
  Structure missing = s;
  try {
    apply_thermal_vibration(missing, on);  // O has no value from the file, and O is in a compound
    FAIL() << "expected an error naming O";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no rms displacement is known for O"), std::string::npos) << e.what();
  }
  on.rms_by_Z_A = {{8, 0.1}};
  Structure file = s;
  apply_thermal_vibration(file, on);
  EXPECT_DOUBLE_EQ(file.atoms[0].rms, 0.09);  // the file's own value
  EXPECT_DOUBLE_EQ(file.atoms[1].rms, 0.1);   // per element
  on.rms_A = 0.0;  // rms: 0 → every element without its own value is static
  on.rms_by_Z_A.clear();
  Structure zero = s;
  apply_thermal_vibration(zero, on);
  for (const Atom& a : zero.atoms) EXPECT_EQ(a.rms, 0.0);
  EXPECT_EQ(thermal_warning(zero, 1), "");  // nothing displaced: no snapshot
  on.rms_A = 0.07;
  Structure all = s;
  apply_thermal_vibration(all, on);
  for (const Atom& a : all.atoms) EXPECT_DOUBLE_EQ(a.rms, 0.07);
  EXPECT_NE(thermal_warning(all, 1), "");  // one displaced configuration is a snapshot
  EXPECT_EQ(thermal_warning(all, 8), "");
  on.rms_A = -1;
  EXPECT_THROW(apply_thermal_vibration(all, on), std::invalid_argument);

  // A single-element specimen takes the elemental table.
  Structure si;
  si.cell = {5, 5, 5};
  si.atoms = {{14, 0, 0, 0, 1, 0}, {14, 1, 1, 1, 1, 0}};
  ThermalVibration t;
  t.enabled = true;
  apply_thermal_vibration(si, t);
  for (const Atom& a : si.atoms) EXPECT_DOUBLE_EQ(a.rms, elemental_crystal_rms(14));
}

// Counts are bounded whole numbers (issue #12): before, a Properties width of 3e9 overflowed
// an int and indexed past the row (a heap read out of bounds under ASan), and an atom count
// of 1e30 was cast to 0 atoms (XYZ) or dropped an element (POSCAR), silently.
TEST(StructureCounts, OverflowingOrFractionalCountsNameTheLine) {
  const std::string lat = "Lattice=\"3 0 0 0 3 0 0 0 3\"";
  std::string wide = tmp_file("wide.xyz", "1\n" + lat + " Properties=species:S:1:pos:R:3:junk:R:3000000000\nSi 0 0 0 1\n");
  expect_error_at([&] { read_structure(wide); }, wide, 2, "column count of 'junk'");
  std::string negw = tmp_file("negw.xyz", "1\n" + lat + " Properties=species:S:1:pos:R:-3\nSi 0 0 0\n");
  expect_error_at([&] { read_structure(negw); }, negw, 2, "whole number");
  std::string huge = tmp_file("huge.xyz", "1e30\n" + lat + "\nSi 0 0 0\n");
  expect_error_at([&] { read_structure(huge); }, huge, 1, "atom count");
  std::string frac = tmp_file("frac.xyz", "1.5\n" + lat + "\nSi 0 0 0\n");
  expect_error_at([&] { read_structure(frac); }, frac, 1, "whole number");
  std::string big = tmp_file("big.xyz", "999999999999\n" + lat + "\nSi 0 0 0\n");
  expect_error_at([&] { read_structure(big); }, big, 1, "0..100000000");
  const std::string poscar = "Si\n1.0\n 5.431 0 0\n 0 5.431 0\n 0 0 5.431\nSi O\n1 COUNT\nDirect\n0 0 0\n";
  for (const char* bad : {"1e30", "-1", "2.0", "nan"}) {
    std::string text = poscar;
    text.replace(text.find("COUNT"), 5, bad);
    std::string p = tmp_file("bad.vasp", text);
    expect_error_at([&] { read_structure(p); }, p, 7, "atom count of O");
  }
}

// A CIF cell of 1e300 Å or an angle of 400° was accepted and failed later without the
// file's name (or ran); now the reader names the tag's line.
TEST(StructureCounts, CifCellOutOfRangeNamesTheTag) {
  const std::string cif = "data_x\n_cell_length_a LEN\n_cell_length_b 3.905\n_cell_length_c 3.905\n"
                          "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma ANG\n_space_group_name_H-M_alt 'P 1'\nloop_\n"
                          "_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
                          "_atom_site_fract_z\nSr1 Sr 0 0 0\n";
  auto with = [&](const std::string& len, const std::string& ang) {
    std::string t = cif;
    t.replace(t.find("LEN"), 3, len);
    t.replace(t.find("ANG"), 3, ang);
    return t;
  };
  EXPECT_EQ(crystal_from_cif_text(with("3.905", "90"), "ok.cif").sites.size(), 1u);
  expect_error_at([&] { crystal_from_cif_text(with("1e300", "90"), "big.cif"); }, "big.cif", 2, "_cell_length_a");
  expect_error_at([&] { crystal_from_cif_text(with("3.905", "400"), "angle.cif"); }, "angle.cif", 7, "_cell_angle_gamma");
}

// Regression (fuzz_cif, CI): a symmetry operation with a long integer overflowed inside
// gemmi's triplet parser (signed overflow, UBSan). It is refused naming the loop's line.
TEST(StructureCounts, CifSymmetryOperationWithHugeNumberNamesTheLine) {
  const std::string cif = "data_x\n_cell_length_a 3.905\n_cell_length_b 3.905\n_cell_length_c 3.905\n"
                          "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n"
                          "_space_group_symop_operation_xyz\nOP\nloop_\n"
                          "_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
                          "_atom_site_fract_z\nSr1 Sr 0 0 0\n";
  auto with = [&](const std::string& op) {
    std::string t = cif;
    t.replace(t.find("OP"), 2, op);
    return t;
  };
  EXPECT_EQ(crystal_from_cif_text(with("'x,y,z'"), "ok.cif").sites.size(), 1u);
  expect_error_at([&] { crystal_from_cif_text(with("'99999999999*x,y,z'"), "huge.cif"); }, "huge.cif", 8,
                  "more than 3 digits");
  expect_error_at([&] { crystal_from_cif_text(with("'x,y,2147483647'"), "big.cif"); }, "big.cif", 8,
                  "more than 3 digits");
}
