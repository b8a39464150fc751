#pragma once
// Specimen builders: ordered, disordered and defective crystals with their ground truth.
//
// Every builder returns (or edits) a Specimen: atoms plus one SpecimenClass id per atom,
// the removed sites (vacancies) and a few documented scalars in `info`. Randomness comes
// from Rng(seed, RngPurpose::Structure, sample, stream) with a fixed stream per builder
// step, so the same (seed, sample) gives the same atoms on any machine.
// Units: Å; fractions are 0..1. Axis indices: 0 = x, 1 = y, 2 = z (beam).
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/specimen/crystal.hpp"
#include "stemtwin/specimen/orient.hpp"
#include "stemtwin/specimen/specimen.hpp"

namespace stemtwin {

struct SpeciesFraction {
  int Z = 0;
  double fraction = 1.0;
};

/// How mixed A (or B) sites are arranged.
enum class SiteArrangement {
  Random,     ///< exact counts (largest remainder of fraction·N), random positions
  Layered,    ///< whole planes ⊥ layer_axis, species chosen so the running fractions track the targets
  Clustered,  ///< Gaussian-smoothed white noise (correlation length) thresholded at the fractions
};

struct PerovskiteParams {
  double a = 3.905;                                 ///< cubic lattice parameter, Å
  std::vector<SpeciesFraction> A{{38, 1.0}};        ///< A-site species (e.g. La 0.7, Sr 0.3)
  std::vector<SpeciesFraction> B{{22, 1.0}};        ///< B-site species
  int O = 8;
  std::array<int, 3> repeats{8, 8, 10};             ///< unit cells along x, y, z
  SiteArrangement arrangement = SiteArrangement::Random;  ///< applies to A and B sites
  int layer_axis = 1;                               ///< Layered: planes ⊥ this axis
  double correlation_length = 8.0;                  ///< Clustered: Gaussian σ of the smoothing, Å
  /// Brownmillerite-like ordering of oxygen vacancies: every other BO2 plane ⊥
  /// vacancy_axis loses every other oxygen row along the in-plane diagonal (ABO2.5).
  bool vacancy_order = false;
  int vacancy_axis = 1;
};

/// Cubic perovskite ABO3 supercell (A at the cell corners, planes AO at integer and BO2 at
/// half-integer coordinates). Classes: Crystal. info: "a", "A_fraction_<Z>" (realised),
/// "oxygen_vacancies".
Specimen build_perovskite(const PerovskiteParams& p, std::uint64_t seed, std::uint64_t sample = 0);

struct FilmParams {
  PerovskiteParams substrate;  ///< a, species and arrangement of the substrate; repeats[0,2] set x and z
  PerovskiteParams film;       ///< a (bulk), species and arrangement of the film; repeats ignored
  int substrate_cells = 6;     ///< unit cells along y
  int film_cells = 6;          ///< unit cells along y
  double poisson = 0.3;        ///< film Poisson ratio ν for the out-of-plane (y) lattice parameter
  double vacuum = 0.0;         ///< Å of vacuum added above the film along y
};
/// Coherent perovskite film on a perovskite substrate, stacked along +y (edge-on in a
/// projection along z). The film takes the substrate's a along x and z; along y its
/// spacing is c = a_f·(1 − 2ν/(1−ν)·(a_s − a_f)/a_f) (biaxial strain, elastic). Classes:
/// substrate Crystal, film Film. info: "interface_y" (Å, midway between the last substrate
/// plane and the first film plane), "film_c", "film_strain".
Specimen build_film_on_substrate(const FilmParams& p, std::uint64_t seed, std::uint64_t sample = 0);

enum class FrontShape { Planar, Sinusoidal, Rough };
enum class AmorphousMode {
  RandomPacking,  ///< remove the crystal in the region, place the same atoms by random sequential addition
  Displacement,   ///< keep the atoms, add Gaussian displacements of rms displacement_rms
};

struct AmorphousParams {
  int axis = 0;            ///< the front advances along this axis from 0 (2 = from the beam entrance surface)
  double fraction = 0.3;   ///< mean depth of the region as a fraction of the cell along axis
  FrontShape shape = FrontShape::Planar;
  double amplitude = 0.0;      ///< Å: sinusoid amplitude, or rms of the rough front
  double wavelength = 20.0;    ///< Å: sinusoid period (rounded to fit the cell), or rough-front correlation length
  AmorphousMode mode = AmorphousMode::RandomPacking;
  double min_distance = 0.0;   ///< Å; 0 → 0.7·n^(−1/3) from the number density n of the removed atoms
  double displacement_rms = 0.6;  ///< Å per axis (Displacement mode)
};
/// Turns a region of the specimen amorphous (irradiation-induced order→disorder). The
/// region is {s < front(u)} with s the coordinate along `axis` and u the lateral coordinate
/// across it (y for axis x, x otherwise): front(u) = fraction·L + amplitude·g(u), with g a
/// sine or a unit-rms smoothed random profile. Atom count, species and number density are
/// preserved. Classes: Amorphous. info: "amorphous_fraction" (atoms), "amorphous_min_distance".
void amorphize(Specimen& s, const AmorphousParams& p, std::uint64_t seed, std::uint64_t sample = 0);
/// The front positions (Å along axis) at lateral coordinates u, as used by amorphize.
std::vector<double> amorphous_front(const Specimen& s, const AmorphousParams& p, const std::vector<double>& u,
                                    std::uint64_t seed, std::uint64_t sample = 0);

/// Removes round(fraction·N) randomly chosen atoms of element Z (N = atoms of Z of class
/// Crystal or Film); records them in `vacancies`. Returns how many were removed.
std::size_t add_vacancies(Specimen& s, int Z, double fraction, std::uint64_t seed, std::uint64_t sample = 0);
/// Replaces round(fraction·N) randomly chosen host atoms by `dopant` (class Dopant).
std::size_t add_dopants(Specimen& s, int host_Z, int dopant_Z, double fraction, std::uint64_t seed,
                        std::uint64_t sample = 0);
/// Adds `count` atoms of Z at random positions at least min_distance from every atom
/// (class Interstitial). Throws std::runtime_error if the space is too crowded.
std::size_t add_interstitials(Specimen& s, int Z, std::size_t count, double min_distance, std::uint64_t seed,
                              std::uint64_t sample = 0);

struct PlanarFault {
  int axis = 0;               ///< the fault plane is ⊥ this axis (0 or 1 to be seen edge-on along z)
  double position = 0;        ///< Å along axis; atoms from here to the cell end are shifted
  Vec3 shift{0, 0, 0};        ///< displacement of the shifted part, Å
  double overlap_distance = 0.8;  ///< shifted atoms closer than this to a kept atom are removed, Å
  double boundary_width = 2.0;    ///< atoms within this distance of a fault plane get class Boundary, Å
};
/// Shifts the part of the crystal beyond the plane by `shift` (wrapped periodically). The
/// periodic cell then holds two faults: at `position` and at the cell edge along axis.
/// info: "fault_removed_atoms". Returns the number of atoms removed by overlap.
std::size_t add_planar_fault(Specimen& s, const PlanarFault& f);
/// Antiphase boundary for a cubic perovskite built by build_perovskite: a (100) plane
/// (⊥ x) with displacement ½a[011], which puts A columns where O columns were across the
/// boundary (visible edge-on along [001]); unrelaxed.
PlanarFault perovskite_antiphase_boundary(double a, double position);

struct StackingFaultParams {
  double a = 4.078;       ///< fcc lattice parameter, Å (default Au)
  int Z = 79;
  int planes = 14;        ///< (111) planes along y; must be ≡ 2 (mod 3) for one fault in a periodic cell
  int fault_after = 6;    ///< the stacking step after this plane index is reversed (A→C instead of A→B)
  int repeats_x = 2;      ///< cells of a·√6/2 along x = [11-2]
  int repeats_z = 4;      ///< cells of a·√2/2 along z = [1-10] (beam)
};
/// fcc crystal with one intrinsic stacking fault (…ABCACABC…), [111] along y, [11-2]
/// along x, [1-10] along z (the fault is edge-on). Atoms of the two planes with hcp
/// stacking are class Boundary. info: "fault_y" (Å).
Specimen build_fcc_stacking_fault(const StackingFaultParams& p);

enum class ParticleShape { Sphere, Cuboctahedron };
struct NanoparticleParams {
  double a = 4.078;   ///< fcc lattice parameter, Å (default Au)
  int Z = 79;
  std::array<int, 3> zone_axis{1, 1, 0};
  ParticleShape shape = ParticleShape::Cuboctahedron;
  double radius = 10.0;   ///< sphere radius, or cuboctahedron centre-to-vertex distance (= its edge), Å
  double cell_x = 40.0, cell_y = 40.0;  ///< lateral cell, Å
  double support_thickness = 30.0;      ///< Å (0: no support)
  int support_Z = 6;
  double support_density = 0.1003;      ///< atoms/Å³; a-C at 2.0 g/cm³ = 2.0·6.022e23/12.011/1e24
  double support_min_distance = 1.3;    ///< Å (random sequential addition)
  double gap = 2.0;                     ///< Å between the particle's lowest atom and the support
  double margin = 2.0;                  ///< Å of vacuum at the entrance and exit surfaces
};
/// An fcc nanoparticle (centred on an atom, cut from the crystal oriented along zone_axis)
/// sitting on an amorphous support below it (the beam meets the particle first). Classes:
/// Particle, Support. info: "particle_atoms", "support_atoms", "particle_centre_x/y/z".
Specimen build_nanoparticle_on_support(const NanoparticleParams& p, std::uint64_t seed, std::uint64_t sample = 0);

struct FileSpecimenParams {
  std::string path;                      ///< CIF, POSCAR (any lattice) or XYZ / Prismatic XYZ (orthogonal)
  std::array<int, 3> zone_axis{0, 0, 1}; ///< crystals only; XYZ files are used as they are ([0 0 1])
  OrientOptions orient;                  ///< strain tolerance, search limits, x_axis
  double size_x = 0, size_y = 0;         ///< lateral size, Å (nearest whole repeats; 0 → one cell)
  double thickness = 0;                  ///< Å (nearest whole repeats; 0 → one cell)
  double tilt_x_mrad = 0, tilt_y_mrad = 0;
  std::map<int, double> rms_override;    ///< Z → rms, Å
};
/// The everyday specimen: a structure file, oriented (crystals), tiled, tilted, rms
/// overridden; all atoms class Crystal. info: "max_strain", "repeats_x/y/z".
Specimen specimen_from_file(const FileSpecimenParams& p);

/// Places `count` atoms of the given species (cycled) uniformly in the box lo..hi (x, y
/// periodic over the specimen cell) at least min_distance from each other and from the
/// existing atoms (random sequential addition). Used by amorphize and the support.
/// Throws std::runtime_error when 200·count attempts are not enough.
std::vector<Atom> random_sequential_atoms(const Structure& existing, const std::vector<int>& species,
                                          const Vec3& lo, const Vec3& hi, double min_distance, std::uint64_t seed,
                                          std::uint64_t sample, std::uint64_t stream);

}  // namespace stemtwin
