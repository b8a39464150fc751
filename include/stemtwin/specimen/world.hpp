#pragma once
// A world to explore: a specimen micrometres wide whose atoms exist only where they are
// looked at. The session's default specimen (docs/specimens.md, "The world").
//
// Layout (world frame, Å; x to the right, y up, the beam along +z entering at z = 0):
//
//   x < support_x_A: a FIB lamella of `thickness_A`, in bands along y —
//     y < edge(x)                        vacuum (edge(x): a rough front around edge_y_A)
//     edge(x) … + amorphous_width_A      the amorphised edge (SrTiO3 composition, random)
//     … < interface_y_A                  SrTiO3 [001] substrate, single crystal, La dopants
//                                        on Sr sites and O vacancies
//     … < interface_y_A + film_A         an LSFO-like film (La_x Sr_1-x FeO3, coherent:
//                                        a_s in plane, c from Poisson's ratio) in columnar
//                                        grains (Voronoi, `grain_A`) each rotated about the
//                                        beam by a seeded angle within ±grain_rotation_deg
//     … < cap_top_A                      amorphous carbon (the protective cap)
//     above                              vacuum
//     The lamella thins towards the edge: thickness(y) = thickness_A·min(1, (y − edge)/wedge_A).
//   x ≥ support_x_A: an amorphous carbon support film of support_thickness_A (at the exit
//     surface) carrying Au particles (fcc [001], spheres of seeded radius and in-plane
//     rotation, at most one per particle_tile_A tile, sitting on the support: the beam meets
//     the particle first).
//
// Laziness and determinism. Nothing is generated up front. Crystal atoms are lattice sites;
// whether a site holds an atom (region, grain, thickness, dopant, vacancy) is a pure function
// of the site, decided by a counter-based stream Rng(seed, RngPurpose::World, grain, site).
// Amorphous atoms come from a hard-core process on 4 Å tiles (candidates from the tile's own
// stream, thinned Matérn-II style against the candidates of the neighbouring tiles), again a
// pure function of the world. So the atoms of a window do not depend on which windows were
// asked for before, and the atoms of two adjacent windows are exactly those of their union.
// Memory: a window's atoms only (atoms_in refuses a window over `max_atoms`).
//
// Physics-free: the overview model (session) weights `areal_density` with cross-sections.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/specimen/specimen.hpp"

namespace stemtwin {

struct WorldParams {
  double width_A = 20000, height_A = 20000;  ///< 2 µm × 2 µm
  /// Lamella thickness. 10 nm: the thin end of the 10–30 nm that atomic-resolution HAADF
  /// lamellae are prepared to (channelling and probe spread grow with thickness, and the
  /// full-physics cost grows linearly with it).
  double thickness_A = 100;
  double edge_y_A = 6000;            ///< mean position of the lamella's edge
  double edge_roughness_A = 80;      ///< the edge's front departs at most this much from edge_y_A
  double amorphous_width_A = 150;    ///< amorphised band along the edge
  double wedge_A = 1000;             ///< the lamella thins over this distance towards the edge
  double interface_y_A = 10400;      ///< substrate → film
  double film_A = 400;               ///< film thickness along y
  double cap_top_A = 13000;          ///< top of the amorphous carbon cap
  double support_x_A = 13000;        ///< x ≥ this: carbon support with particles
  double support_thickness_A = 30;   ///< a-C support film (ultrathin carbon)
  // Substrate SrTiO3.
  double substrate_a_A = 3.905;
  double dopant_fraction = 0.02;     ///< La on Sr sites
  double oxygen_vacancy_fraction = 0.02;
  // Film La_x Sr_(1-x) FeO3 (pseudocubic bulk a = 3.93 Å).
  double film_a_A = 3.93;
  double film_La_fraction = 0.7;
  double poisson = 0.3;
  double grain_A = 250;              ///< mean grain size of the film (Voronoi seeds on a jittered grid)
  double grain_rotation_deg = 8;     ///< each grain rotated about the beam by up to ± this
  // Au particles.
  double particle_a_A = 4.078;
  double particle_tile_A = 400;
  double particle_probability = 0.6;
  double particle_radius_min_A = 10, particle_radius_max_A = 35;
  // Amorphous material (hard-core random packing).
  double amorphous_min_distance_A = 1.0;
  double carbon_density_per_A3 = 0.1003;  ///< a-C at 2.0 g/cm³
  std::size_t max_atoms = 4'000'000;      ///< atoms_in refuses larger windows (memory bound)
};

/// A rectangle of the world's (x, y): [x0, x0 + wx) × [y0, y0 + wy), Å.
struct WorldWindow {
  double x0 = 0, y0 = 0, wx = 0, wy = 0;
};

/// A particle: centre (Å), radius, in-plane rotation (rad).
struct WorldParticle {
  double x = 0, y = 0, z = 0, radius = 0, rotation = 0;
};

/// Expected atoms per Å² (projected along the beam) of each element at one point.
struct ArealDensity {
  std::array<int, 8> Z{};
  std::array<double, 8> per_A2{};
  std::size_t n = 0;
  void add(int z, double v);
};

class World {
 public:
  /// Throws std::invalid_argument naming the parameter when the layout is inconsistent.
  explicit World(WorldParams params = {}, std::uint64_t seed = 0);

  const WorldParams& params() const { return p_; }
  std::uint64_t seed() const { return seed_; }
  /// width × height × thickness (the full z extent: the lamella and the support's layers).
  Cell extent() const { return {p_.width_A, p_.height_A, p_.thickness_A}; }

  /// The region at (x, y): Vacuum, Amorphous (edge), Crystal (substrate), Film, Support (the
  /// cap and the support film), Particle (inside a particle's projected disc).
  SpecimenClass material_at(double x_A, double y_A) const;
  /// The lamella's local thickness (0 in vacuum; the support's in the support region).
  double thickness_at(double x_A, double y_A) const;
  /// The lamella's edge front at x (Å).
  double edge_at(double x_A) const;
  /// Projected composition at (x, y) from the materials' number densities and the local
  /// thicknesses (particles: the chord through the sphere): what the overview model sees.
  ArealDensity areal_density(double x_A, double y_A) const;
  /// The film grain at (x, y): its id and rotation (rad).
  std::pair<std::uint64_t, double> grain_at(double x_A, double y_A) const;
  /// Particles whose projected disc meets the window.
  std::vector<WorldParticle> particles_in(const WorldWindow& w) const;

  /// Upper estimate of the atoms in a window (number densities × volume).
  double estimated_atoms(const WorldWindow& w) const;
  /// The atoms whose (x, y) lie in the window, in world coordinates (not shifted), with their
  /// classes (crystal, dopant, film, amorphous, support, particle) and the vacancies (removed
  /// O sites). Throws std::invalid_argument for an empty window or one estimated over
  /// params().max_atoms. The order is fixed by the window (regions, then sites).
  Specimen atoms_in(const WorldWindow& w) const;

 private:
  WorldParams p_;
  std::uint64_t seed_;
  std::array<double, 4> edge_amp_{}, edge_k_{}, edge_phase_{};
  double film_c_ = 0;

  struct Place {
    SpecimenClass cls = SpecimenClass::Vacuum;
    double thickness = 0;  ///< the lamella's or the support's, Å
    double chord = 0;      ///< through a particle, Å
  };
  Place place(double x, double y) const;  ///< region, thickness and particle chord in one look
  void crystal_atoms(const WorldWindow& w, Specimen& out) const;
  void film_atoms(const WorldWindow& w, Specimen& out) const;
  void particle_atoms(const WorldWindow& w, Specimen& out) const;
  void amorphous_atoms(const WorldWindow& w, int kind, Specimen& out) const;
  bool lamella(double x) const { return x >= 0 && x < p_.support_x_A; }
};

}  // namespace stemtwin
