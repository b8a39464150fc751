#pragma once
// The specimen: atoms (what physics sees) plus the ground truth a builder knows about them
// (what the labels are made from). This is the value the scenario runner and the session
// pass around.
//
// Units: Å. Class ids are small integers with names (`class_names[id]`); the fixed set
// below is shared by every builder so that datasets from different builders agree.
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "stemtwin/atoms.hpp"

namespace stemtwin {

/// Ground-truth classes of atoms, columns and regions. Values are part of the dataset
/// format: add new ones at the end.
enum class SpecimenClass : int {
  Crystal = 0,       ///< ordered crystal (also: the substrate of a film stack)
  Amorphous = 1,     ///< disordered / amorphised region
  Dopant = 2,        ///< substitutional dopant atom
  Interstitial = 3,  ///< interstitial atom
  Vacancy = 4,       ///< column (or pixel) that lost an atom; atoms never carry it
  Boundary = 5,      ///< atoms within a given distance of a planar fault (APB, stacking fault)
  Film = 6,          ///< crystalline film on a substrate
  Particle = 7,      ///< nanoparticle
  Support = 8,       ///< amorphous support film (e.g. carbon)
  Vacuum = 9,        ///< region map only: no atom nearby
};
constexpr int kNumSpecimenClasses = 10;

/// "crystal", "amorphous", "dopant", ... (lower case, as written into datasets).
std::string class_name(SpecimenClass c);
/// Names of all classes, indexed by id.
std::vector<std::string> default_class_names();

struct Specimen {
  Structure structure;
  std::vector<int> atom_class;  ///< one SpecimenClass id per atom of `structure`
  std::vector<std::string> class_names = default_class_names();
  /// Sites that lost their atom (position, element and occupancy of what was removed):
  /// the ground truth for vacancy labels. Ordered vacancies (brownmillerite) appear here too.
  std::vector<Atom> vacancies;
  /// Scalar facts a builder reports (e.g. "interface_y" Å, "amorphous_fraction",
  /// "max_strain"); names are documented with each builder.
  std::map<std::string, double> info;
};

/// A specimen of the given atoms, all of class `cls`.
Specimen make_specimen(Structure s, SpecimenClass cls = SpecimenClass::Crystal);

/// Throws std::invalid_argument unless atom_class matches the atoms and every class id is valid.
void check_specimen(const Specimen& s);

/// Default rms thermal displacement (Å, per Cartesian axis) for element Z at room
/// temperature, used when a file gives none and no override is set. Sources, per element,
/// are listed in docs/specimens.md and next to the table in src/specimen.cpp; elements
/// without a sourced value get the documented fallback kDefaultRmsFallback.
double default_rms(int Z);
constexpr double kDefaultRmsFallback = 0.085;  ///< Å (B = 8π²·0.085² ≈ 0.57 Å²)

/// Sets rms of every atom whose element is in `by_Z` (scenario override).
void override_rms(Structure& s, const std::map<int, double>& by_Z);

/// Atoms per Å³ counted with occupancy (Σ occupancy / volume of the cell).
double number_density(const Structure& s);
/// Σ occupancy of atoms of element Z.
double count_element(const Structure& s, int Z);

}  // namespace stemtwin
