#pragma once
// The specimen: atoms (what physics sees) plus the ground truth a builder knows about them
// (what the labels are made from). This is the value the scenario runner and the session
// pass around.
//
// Units: Å. Class ids are small integers with names (`class_names[id]`); the fixed set
// below is shared by every builder so that datasets from different builders agree.
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "stemtwin/core/atoms.hpp"

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

/// Room-temperature rms displacement (Å, per Cartesian axis) of element Z **in its
/// elemental crystal**, from the Debye–Waller factors of Peng, Ren, Dudarev & Whelan,
/// Acta Cryst. A52 (1996) 456, Table 1, at 280 K (the highest temperature tabulated):
/// rms = √(B/8π²). Only elements checked against that table are listed (docs/specimens.md);
/// 0 for every other element. These are values for the pure element: an element bound in a
/// compound vibrates differently (Sr in SrTiO3 far less than in Sr metal), so they are used
/// only for specimens made of one element (see apply_thermal_vibration).
double elemental_crystal_rms(int Z);

/// Thermal vibration of a specimen (Einstein model; frozen phonons). Off by default: a
/// specimen is a static lattice unless the user asks for thermal vibration.
struct ThermalVibration {
  bool enabled = false;
  /// rms (Å per axis) for every element; unset: per element as below.
  std::optional<double> rms_A;
  /// rms (Å per axis) per element Z; overrides rms_A.
  std::map<int, double> rms_by_Z_A;
  /// Frozen-phonon configurations averaged. One configuration with rms > 0 is a single
  /// thermal snapshot, not an average (warned about by the callers).
  std::size_t configurations = 8;
};

/// Sets every atom's rms for the requested thermal vibration:
/// - disabled: every rms = 0 (a static lattice, whatever the structure file said);
/// - enabled, per element: rms_by_Z_A, else rms_A, else the structure file's own value
///   (U_iso/B_iso, the XYZ rms column; atoms' rms > 0 on input), else, for a specimen of a
///   single element, elemental_crystal_rms(Z).
/// Throws std::invalid_argument naming every element left without a value, and for
/// negative or non-finite values.
void apply_thermal_vibration(Structure& s, const ThermalVibration& thermal);

/// "" when the settings are fine; otherwise the warning a user should see (one displaced
/// configuration is a snapshot, not an average).
std::string thermal_warning(const Structure& s, std::size_t configurations);

/// Sets rms of every atom whose element is in `by_Z` (Å; used only when thermal vibration is
/// turned on, see apply_thermal_vibration).
void override_rms(Structure& s, const std::map<int, double>& by_Z);

/// Atoms per Å³ counted with occupancy (Σ occupancy / volume of the cell).
double number_density(const Structure& s);
/// Σ occupancy of atoms of element Z.
double count_element(const Structure& s, int Z);

}  // namespace stemtwin
