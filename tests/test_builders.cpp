// Builders: perovskite site arrangements, oxygen-vacancy order, film/substrate, amorphous
// fronts, point defects, planar faults, stacking fault, nanoparticle on a support.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/specimen/columns.hpp"
#include "stemtwin/specimen/orient.hpp"

using namespace stemtwin;

namespace {
constexpr int Sr = 38, La = 57, Ti = 22, Fe = 26, O = 8, Au = 79, C = 6;
const double a = 3.905;

PerovskiteParams lsmo(SiteArrangement arr) {
  PerovskiteParams p;
  p.A = {{La, 0.7}, {Sr, 0.3}};
  p.B = {{Ti, 1.0}};
  p.repeats = {8, 8, 10};
  p.arrangement = arr;
  return p;
}

// A-site species on the 8×8×10 grid, read back from the atoms.
std::map<std::array<int, 3>, int> a_sites(const Specimen& s) {
  std::map<std::array<int, 3>, int> m;
  for (const Atom& at : s.structure.atoms)
    if (at.Z == La || at.Z == Sr)
      m[{int(std::lround(at.x / a)), int(std::lround(at.y / a)), int(std::lround(at.z / a))}] = at.Z;
  return m;
}

// Fraction of nearest-neighbour A–A pairs (6 per site, periodic) with equal species.
double same_neighbour_fraction(const Specimen& s, std::array<int, 3> n) {
  auto m = a_sites(s);
  std::size_t same = 0, all = 0;
  for (auto& [k, Z] : m)
    for (int ax = 0; ax < 3; ++ax) {
      auto q = k;
      q[ax] = (q[ax] + 1) % n[ax];
      same += m.at(q) == Z;
      ++all;
    }
  return double(same) / all;
}

double min_dist(const std::vector<Atom>& atoms, const Cell& c, std::size_t first = 0) {
  double best = 1e300;
  for (std::size_t i = first; i < atoms.size(); ++i)
    for (std::size_t j = 0; j < atoms.size(); ++j) {
      if (j == i || (j >= first && j < i)) continue;
      double dx = atoms[i].x - atoms[j].x, dy = atoms[i].y - atoms[j].y, dz = atoms[i].z - atoms[j].z;
      dx -= c.x * std::round(dx / c.x);
      dy -= c.y * std::round(dy / c.y);
      best = std::min(best, std::sqrt(dx * dx + dy * dy + dz * dz));
    }
  return best;
}

std::size_t count_class(const Specimen& s, SpecimenClass c) {
  return std::count(s.atom_class.begin(), s.atom_class.end(), static_cast<int>(c));
}
}  // namespace

TEST(Perovskite, RandomExactCountsAndDeterminism) {
  Specimen s = build_perovskite(lsmo(SiteArrangement::Random), 42);
  check_specimen(s);
  EXPECT_EQ(s.structure.atoms.size(), 5u * 640);
  EXPECT_DOUBLE_EQ(count_element(s.structure, La), 448);  // 0.7 · 640 exactly
  EXPECT_DOUBLE_EQ(count_element(s.structure, Sr), 192);
  EXPECT_NEAR(number_density(s.structure), 5 / (a * a * a), 1e-12);
  // uncorrelated: P(same) = 0.7² + 0.3² = 0.58; 1920 pairs → σ ≈ 0.011, allow ±0.05 (4.5σ)
  EXPECT_NEAR(same_neighbour_fraction(s, {8, 8, 10}), 0.58, 0.05);
  Specimen again = build_perovskite(lsmo(SiteArrangement::Random), 42);
  Specimen other = build_perovskite(lsmo(SiteArrangement::Random), 43);
  std::size_t diff_same = 0, diff_other = 0;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    diff_same += s.structure.atoms[i].Z != again.structure.atoms[i].Z;
    diff_other += s.structure.atoms[i].Z != other.structure.atoms[i].Z;
  }
  EXPECT_EQ(diff_same, 0u);
  EXPECT_GT(diff_other, 100u);  // expected 2·640·0.7·0.3 ≈ 269 differing A sites
  PerovskiteParams bad = lsmo(SiteArrangement::Random);
  bad.A[0].fraction = 0.8;
  EXPECT_THROW(build_perovskite(bad, 1), std::invalid_argument);
}

TEST(Perovskite, LayeredPlanesArePureAndTrackTheFraction) {
  PerovskiteParams p = lsmo(SiteArrangement::Layered);
  p.layer_axis = 2;  // planes ⊥ z: 10 planes → 7 La + 3 Sr
  Specimen s = build_perovskite(p, 1);
  auto m = a_sites(s);
  std::map<int, std::set<int>> plane_species;
  for (auto& [k, Z] : m) plane_species[k[2]].insert(Z);
  int la_planes = 0;
  for (auto& [pl, set] : plane_species) {
    EXPECT_EQ(set.size(), 1u) << "plane " << pl;
    la_planes += *set.begin() == La;
  }
  EXPECT_EQ(la_planes, 7);
  // 50/50 alternates strictly
  p.A = {{La, 0.5}, {Sr, 0.5}};
  Specimen alt = build_perovskite(p, 1);
  auto m2 = a_sites(alt);
  for (int l = 0; l < 10; ++l) EXPECT_EQ(m2.at({0, 0, l}), l % 2 == 0 ? La : Sr);
}

TEST(Perovskite, ClusteredKeepsFractionAndCorrelates) {
  PerovskiteParams p = lsmo(SiteArrangement::Clustered);
  p.correlation_length = 8.0;  // ~2 unit cells
  double mean = 0;
  for (std::uint64_t seed : {1, 2, 3}) {
    Specimen s = build_perovskite(p, seed);
    EXPECT_DOUBLE_EQ(count_element(s.structure, La), 448);
    mean += same_neighbour_fraction(s, {8, 8, 10}) / 3;
  }
  // thresholding a field with ~2-cell correlation makes neighbours mostly alike; random is
  // 0.58 ± 0.011, so > 0.75 is far outside what chance gives
  EXPECT_GT(mean, 0.75);
}

TEST(Perovskite, BrownmilleriteVacancyOrder) {
  PerovskiteParams p;
  p.repeats = {4, 4, 4};
  p.vacancy_order = true;
  p.vacancy_axis = 1;
  Specimen s = build_perovskite(p, 0);
  const std::size_t cells = 64;
  EXPECT_DOUBLE_EQ(count_element(s.structure, O), 2.5 * cells);  // ABO2.5
  EXPECT_EQ(s.vacancies.size(), cells / 2);
  // B in the oxygen-deficient planes (y = (2k+1.5)a) has 4 O at a/2 (tetrahedral), others 6
  for (const Atom& b : s.structure.atoms) {
    if (b.Z != Ti) continue;
    int n = 0;
    for (const Atom& o : s.structure.atoms) {
      if (o.Z != O) continue;
      double dx = o.x - b.x, dy = o.y - b.y, dz = o.z - b.z;
      dx -= s.structure.cell.x * std::round(dx / s.structure.cell.x);
      dy -= s.structure.cell.y * std::round(dy / s.structure.cell.y);
      dz -= s.structure.cell.z * std::round(dz / s.structure.cell.z);
      n += std::sqrt(dx * dx + dy * dy + dz * dz) < a / 2 + 1e-6;
    }
    const int plane = int(std::floor(b.y / a));
    EXPECT_EQ(n, plane % 2 == 1 ? 4 : 6) << "B at y=" << b.y;
  }
}

TEST(Film, LaFeO3OnSrTiO3) {
  FilmParams f;
  f.substrate.repeats = {6, 0, 4};
  f.film.a = 3.93;
  f.film.A = {{La, 1.0}};
  f.film.B = {{Fe, 1.0}};
  f.substrate_cells = 5;
  f.film_cells = 4;
  Specimen s = build_film_on_substrate(f, 7);
  check_specimen(s);
  const double eps = (a - 3.93) / 3.93, c = 3.93 * (1 - 2 * 0.3 / 0.7 * eps);
  EXPECT_NEAR(s.info.at("film_c"), c, 1e-12);
  EXPECT_NEAR(c, 3.9514, 1e-4);  // compressive in-plane → longer out of plane
  EXPECT_NEAR(s.structure.cell.y, 5 * a + 4 * c, 1e-9);
  EXPECT_NEAR(s.info.at("interface_y"), 5 * a - a / 4, 1e-12);
  EXPECT_EQ(count_class(s, SpecimenClass::Film), 5u * 6 * 4 * 4);
  EXPECT_EQ(count_class(s, SpecimenClass::Crystal), 5u * 6 * 4 * 5);
  const double yi = s.info.at("interface_y");
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    const Atom& at = s.structure.atoms[i];
    const bool film = s.atom_class[i] == int(SpecimenClass::Film);
    EXPECT_EQ(film, at.y > yi);
    if (at.Z == Fe || at.Z == La) EXPECT_TRUE(film);
    if (at.Z == Sr || at.Z == Ti) EXPECT_FALSE(film);
  }
  // film La planes are c apart along y
  std::set<long> ys;
  for (const Atom& at : s.structure.atoms)
    if (at.Z == La) ys.insert(std::lround(at.y * 1e6));
  ASSERT_EQ(ys.size(), 4u);
  EXPECT_NEAR((*std::next(ys.begin()) - *ys.begin()) * 1e-6, c, 1e-6);
  // region map: substrate below, film above (pixels > 2 Å from the interface)
  ScanGrid g = ScanGrid::from_fov({0, 0}, s.structure.cell.x, s.structure.cell.y, 48, 70);
  Image r = region_map(s, g);
  for (std::size_t iy = 0; iy < g.ny; ++iy)
    for (std::size_t ix = 0; ix < g.nx; ++ix) {
      double y = g.position(ix, iy).y;
      if (y < yi - 2 && y > 2) EXPECT_EQ(r(iy, ix), int(SpecimenClass::Crystal));
      if (y > yi + 2 && y < s.structure.cell.y - 2) EXPECT_EQ(r(iy, ix), int(SpecimenClass::Film));
    }
}

TEST(Amorphous, PlanarFrontRandomPacking) {
  PerovskiteParams p;
  p.repeats = {10, 4, 6};
  Specimen s = build_perovskite(p, 3);
  const std::size_t n0 = s.structure.atoms.size();
  const double nSr = count_element(s.structure, Sr), nO = count_element(s.structure, O);
  AmorphousParams ap;
  ap.axis = 0;
  ap.fraction = 0.33;  // front at 6.6 half-cells: planes x = 0 … 6·a/2 → 4 AO + 3 BO2 of 20 planes
  amorphize(s, ap, 11);
  check_specimen(s);
  EXPECT_EQ(s.structure.atoms.size(), n0);  // same atoms, same number density
  EXPECT_DOUBLE_EQ(count_element(s.structure, Sr), nSr);
  EXPECT_DOUBLE_EQ(count_element(s.structure, O), nO);
  EXPECT_EQ(count_class(s, SpecimenClass::Amorphous), (4u * 2 + 3u * 3) * 4 * 6);  // 17 atoms per (y,z) cell
  EXPECT_NEAR(s.info.at("amorphous_fraction"), 17.0 / 50, 1e-12);
  const double front = 0.33 * s.structure.cell.x;
  std::vector<Atom> am;
  for (std::size_t i = 0; i < n0; ++i) {
    const Atom& at = s.structure.atoms[i];
    if (s.atom_class[i] == int(SpecimenClass::Amorphous)) {
      EXPECT_LT(at.x, front);
      EXPECT_GE(at.x, 0);
    } else {
      EXPECT_GE(at.x, front);
    }
  }
  // random packing keeps the minimum distance to every atom (amorphous atoms are last)
  const double dmin = s.info.at("amorphous_min_distance");
  EXPECT_NEAR(dmin, 0.7 * std::cbrt(a * a * a / 5), 1e-9);  // 0.7·n^(-1/3) = 1.596 Å
  const std::size_t first = n0 - count_class(s, SpecimenClass::Amorphous);
  EXPECT_GE(min_dist(s.structure.atoms, s.structure.cell, first), dmin - 1e-9);
  // deterministic
  Specimen t = build_perovskite(p, 3);
  amorphize(t, ap, 11);
  for (std::size_t i = 0; i < n0; ++i) EXPECT_EQ(t.structure.atoms[i].x, s.structure.atoms[i].x);
  // region map: amorphous left of the front, crystal right of it (≥ 2 Å away)
  ScanGrid g = ScanGrid::from_fov({0, 0}, s.structure.cell.x, s.structure.cell.y, 80, 32);
  Image r = region_map(s, g);
  std::size_t checked = 0;
  for (std::size_t iy = 0; iy < g.ny; ++iy)
    for (std::size_t ix = 0; ix < g.nx; ++ix) {
      double x = g.position(ix, iy).x;
      if (x < front - 2 && x > 2) {
        EXPECT_EQ(r(iy, ix), int(SpecimenClass::Amorphous));
        ++checked;
      }
      if (x > front + 2 && x < s.structure.cell.x - 2) {
        EXPECT_EQ(r(iy, ix), int(SpecimenClass::Crystal));
        ++checked;
      }
    }
  EXPECT_GT(checked, 1500u);
}

TEST(Amorphous, CurvedFrontsAndDisplacementMode) {
  PerovskiteParams p;
  p.repeats = {10, 8, 4};
  for (FrontShape shape : {FrontShape::Sinusoidal, FrontShape::Rough}) {
    Specimen s = build_perovskite(p, 5);
    AmorphousParams ap;
    ap.axis = 0;
    ap.fraction = 0.5;
    ap.shape = shape;
    ap.amplitude = 5.0;
    ap.wavelength = 15.0;
    amorphize(s, ap, 9);
    double fmin = 1e300, fmax = -1e300, sum2 = 0;
    const int nu = 400;
    std::vector<double> us;
    for (int k = 0; k < nu; ++k) us.push_back(k * s.structure.cell.y / nu);
    std::vector<double> fs = amorphous_front(s, ap, us, 9);
    for (int k = 0; k < nu; ++k) {
      double f = fs[k];
      fmin = std::min(fmin, f);
      fmax = std::max(fmax, f);
      sum2 += (f - 0.5 * s.structure.cell.x) * (f - 0.5 * s.structure.cell.x) / nu;
    }
    if (shape == FrontShape::Sinusoidal) {
      // 31.24 Å / 15 Å → 2 periods of 15.62 Å; sampled extremes within 0.1 % of ±5 Å
      EXPECT_NEAR(fmax - fmin, 10.0, 0.02);
      EXPECT_NEAR(std::sqrt(sum2), 5.0 / std::sqrt(2.0), 0.02);
    } else {
      EXPECT_NEAR(std::sqrt(sum2), 5.0, 0.1);  // the rough profile is scaled to unit rms
    }
    std::vector<double> ys;
    for (const Atom& at : s.structure.atoms) ys.push_back(at.y);
    std::vector<double> fa = amorphous_front(s, ap, ys, 9);
    for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
      const Atom& at = s.structure.atoms[i];
      double f = fa[i];
      EXPECT_EQ(s.atom_class[i] == int(SpecimenClass::Amorphous), at.x < f) << at.x << " " << f;
    }
  }
  // displacement mode: rms of the displacements ≈ 0.6 Å per axis (σ of the estimate ~1%)
  Specimen s = build_perovskite(p, 5), ref = s;
  AmorphousParams ap;
  ap.axis = 2;  // from the beam-entrance surface
  ap.fraction = 0.5;
  ap.mode = AmorphousMode::Displacement;
  amorphize(s, ap, 4);
  double s2 = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i)
    if (s.atom_class[i] == int(SpecimenClass::Amorphous)) {
      EXPECT_LT(ref.structure.atoms[i].z, 0.5 * s.structure.cell.z);
      double dz = s.structure.atoms[i].z - ref.structure.atoms[i].z;
      s2 += dz * dz;
      ++n;
    }
  EXPECT_EQ(n, s.structure.atoms.size() / 2);  // AO+BO2 planes 0…3.5a of 8 a: exactly half
  EXPECT_NEAR(std::sqrt(s2 / n), 0.6, 0.05);
}

TEST(Defects, VacanciesDopantsInterstitials) {
  PerovskiteParams p;
  p.repeats = {5, 5, 8};
  Specimen s = build_perovskite(p, 1);
  const std::size_t nO = 3 * 200;
  EXPECT_EQ(add_vacancies(s, O, 0.05, 2), 30u);
  EXPECT_DOUBLE_EQ(count_element(s.structure, O), nO - 30);
  EXPECT_EQ(s.vacancies.size(), 30u);
  EXPECT_EQ(add_dopants(s, Sr, La, 0.1, 3), 20u);
  EXPECT_EQ(count_class(s, SpecimenClass::Dopant), 20u);
  EXPECT_DOUBLE_EQ(count_element(s.structure, La), 20);
  const std::size_t before = s.structure.atoms.size();
  EXPECT_EQ(add_interstitials(s, O, 10, 1.6, 4), 10u);
  EXPECT_EQ(count_class(s, SpecimenClass::Interstitial), 10u);
  EXPECT_GE(min_dist(s.structure.atoms, s.structure.cell, before), 1.6);
  // too crowded: 1.9 Å exceeds the largest void (a/2 = 1.95 Å only at isolated points)
  EXPECT_THROW(add_interstitials(s, O, 100, 2.5, 5), std::runtime_error);
  // columns carry the truth: 30 vacancy columns or fewer (two can share a column), 20 dopant
  auto cols = find_columns(s);
  std::size_t vac = 0, dop = 0;
  for (const Column& c : cols) {
    vac += c.vacancies;
    dop += c.cls == int(SpecimenClass::Dopant);
  }
  EXPECT_EQ(vac, 30u);
  EXPECT_GE(dop, 1u);
  EXPECT_LE(dop, 20u);
}

TEST(Defects, PerovskiteAntiphaseBoundary) {
  PerovskiteParams p;
  p.repeats = {8, 4, 4};
  Specimen s = build_perovskite(p, 1);
  const std::size_t n0 = s.structure.atoms.size();
  PlanarFault f = perovskite_antiphase_boundary(a, 4 * a - a / 4);  // between BO2 (3.5a) and AO (4a)
  EXPECT_EQ(add_planar_fault(s, f), 0u);  // ½a[011] moves atoms onto empty sites only
  EXPECT_EQ(s.structure.atoms.size(), n0);
  EXPECT_GT(count_class(s, SpecimenClass::Boundary), 0u);
  EXPECT_GT(min_dist(s.structure.atoms, s.structure.cell), 1.9);  // no overlaps
  // projected: Sr columns left of the fault at y ≡ 0, right of it at y ≡ a/2 (mod a)
  for (const Column& c : find_columns(s)) {
    if (c.dominant_Z != Sr) continue;
    double r = std::fmod(c.y, a);
    if (c.x < f.position) EXPECT_NEAR(std::min(r, a - r), 0.0, 1e-9);
    else EXPECT_NEAR(r, a / 2, 1e-9);
  }
}

TEST(Defects, FccIntrinsicStackingFault) {
  StackingFaultParams p;  // Au, 14 planes
  Specimen s = build_fcc_stacking_fault(p);
  check_specimen(s);
  EXPECT_EQ(s.structure.atoms.size(), 14u * 2 * 2 * 4);
  EXPECT_NEAR(number_density(s.structure), 4 / std::pow(4.078, 3), 1e-12);  // fcc density
  EXPECT_NEAR(min_dist(s.structure.atoms, s.structure.cell), 4.078 / std::sqrt(2.0), 1e-9);  // no overlaps
  EXPECT_EQ(count_class(s, SpecimenClass::Boundary), 2u * 2 * 2 * 4);  // two hcp-stacked planes
  // stacking letters from x offsets: steps are +1 everywhere except one −1 (intrinsic fault)
  const double lx = 4.078 * std::sqrt(6.0) / 2, d = 4.078 / std::sqrt(3.0);
  std::vector<int> letter(14, -1);
  for (const Atom& at : s.structure.atoms) {
    int plane = int(std::floor(at.y / d));
    double u = std::fmod(at.x / lx + 1.0, 0.5) * 6;  // 0, 1, 2 (in units of lx/3, modulo lx/2)
    int l = (3 - int(std::lround(u)) % 3) % 3;  // offsets lx/3, 2lx/3 fold to 2, 1 modulo lx/2
    if (letter[plane] < 0) letter[plane] = l;
    EXPECT_EQ(letter[plane], l);
  }
  int reversed = 0;
  for (int i = 0; i < 14; ++i) {
    int step = ((letter[(i + 1) % 14] - letter[i]) % 3 + 3) % 3;
    EXPECT_NE(step, 0);
    reversed += step == 2;
  }
  EXPECT_EQ(reversed, 1);
  p.planes = 15;
  EXPECT_THROW(build_fcc_stacking_fault(p), std::invalid_argument);
}

TEST(Nanoparticle, CuboctahedraHaveMagicNumbers) {
  NanoparticleParams p;
  p.support_thickness = 0;
  for (auto [shells, atoms] : {std::pair{1, 13}, {2, 55}, {3, 147}}) {
    p.radius = shells * 4.078 / std::sqrt(2.0);  // edge = shells × nearest-neighbour distance
    Specimen s = build_nanoparticle_on_support(p, 1);
    EXPECT_EQ(s.structure.atoms.size(), std::size_t(atoms)) << shells;
    EXPECT_EQ(count_class(s, SpecimenClass::Particle), std::size_t(atoms));
  }
  // also for another zone axis: the shape is cut in the crystal frame
  p.zone_axis = {1, 0, 0};
  p.radius = 2 * 4.078 / std::sqrt(2.0);
  EXPECT_EQ(build_nanoparticle_on_support(p, 1).structure.atoms.size(), 55u);
}

TEST(Nanoparticle, SphereOnAmorphousCarbon) {
  NanoparticleParams p;
  p.shape = ParticleShape::Sphere;
  p.radius = 10;
  p.cell_x = p.cell_y = 30;
  p.support_thickness = 20;
  Specimen s = build_nanoparticle_on_support(p, 8);
  check_specimen(s);
  const double np = s.info.at("particle_atoms");
  // 4/a³ · 4/3 π R³ = 247.2; lattice points in a sphere deviate by a surface term, ~5 % here
  EXPECT_NEAR(np, 4 / std::pow(4.078, 3) * 4.0 / 3 * M_PI * 1000, 0.08 * 247);
  EXPECT_EQ(s.info.at("support_atoms"), std::round(0.1003 * 30 * 30 * 20));  // 1805 C
  double zmax_particle = -1e300, zmin_support = 1e300;
  std::vector<Atom> carbon;
  for (std::size_t i = 0; i < s.structure.atoms.size(); ++i) {
    const Atom& at = s.structure.atoms[i];
    if (s.atom_class[i] == int(SpecimenClass::Particle)) {
      EXPECT_EQ(at.Z, Au);
      zmax_particle = std::max(zmax_particle, at.z);
    } else {
      EXPECT_EQ(at.Z, C);
      zmin_support = std::min(zmin_support, at.z);
      carbon.push_back(at);
    }
  }
  EXPECT_GE(zmin_support - zmax_particle, p.gap - 1e-9);  // the beam meets the particle first
  EXPECT_GE(min_dist(carbon, s.structure.cell), 1.3 - 1e-9);
  // region map: the particle's centre is Particle, the corners Support
  ScanGrid g = ScanGrid::from_fov({0, 0}, 30, 30, 60, 60);
  Image r = region_map(s, g);
  EXPECT_EQ(r(30, 30), int(SpecimenClass::Particle));
  EXPECT_EQ(r(1, 1), int(SpecimenClass::Support));
  // seeded: same support twice
  Specimen t = build_nanoparticle_on_support(p, 8);
  EXPECT_EQ(t.structure.atoms.back().x, s.structure.atoms.back().x);
}

TEST(FromFile, OrientTileTiltOverride) {
  FileSpecimenParams p;
  p.path = std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/structures/SrTiO3.cif";
  p.zone_axis = {1, 1, 0};
  p.size_x = 20;  // 5 × 3.905
  p.size_y = 22;  // 4 × 5.523
  p.thickness = 50;  // 9 × 5.523
  p.rms_override = {{O, 0.1}};
  Specimen s = specimen_from_file(p);
  EXPECT_EQ(s.info.at("repeats_x"), 5);
  EXPECT_EQ(s.info.at("repeats_y"), 4);
  EXPECT_EQ(s.info.at("repeats_z"), 9);
  EXPECT_EQ(s.structure.atoms.size(), 10u * 5 * 4 * 9);
  for (const Atom& at : s.structure.atoms) EXPECT_DOUBLE_EQ(at.rms, at.Z == O ? 0.1 : 0.0);  // no U in the file: none
  p.tilt_y_mrad = 5;
  Specimen t = specimen_from_file(p);
  EXPECT_EQ(t.structure.atoms.size(), s.structure.atoms.size());
  EXPECT_GT(t.structure.cell.z, s.structure.cell.z);  // the tilted slab is thicker than the cell
  FileSpecimenParams x;
  x.path = std::string(STEMTWIN_SOURCE_DIR) + "/tests/data/reference/si110.xyz";
  EXPECT_EQ(specimen_from_file(x).structure.atoms.size(), 1248u);
  x.zone_axis = {1, 1, 0};
  EXPECT_THROW(specimen_from_file(x), std::invalid_argument);
}
