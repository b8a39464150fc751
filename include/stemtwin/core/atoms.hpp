#pragma once
// Atoms in an orthogonal periodic cell: what the physics kernels consume.
//
// Units: positions and cell lengths in Å; `rms` is the standard deviation of the thermal
// displacement along each Cartesian axis (Å), so a Debye–Waller factor B = 8π²·rms².
// The beam travels along +z and enters the cell at z = 0.
#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace stemtwin {

struct Atom {
  int Z = 0;                 ///< atomic number, 1..103
  double x = 0, y = 0, z = 0;  ///< position, Å
  double occupancy = 1.0;    ///< site occupancy 0..1 (scales the atom's potential)
  double rms = 0.0;          ///< thermal rms displacement per axis, Å
};

/// Orthogonal periodic box, Å. The potential treats x and y as periodic; z is the
/// specimen thickness (atoms outside [0, z) are ignored by the slicer).
struct Cell {
  double x = 0, y = 0, z = 0;
};

/// A set of atoms in a cell: the specimen as physics sees it (labels live in src/).
struct Structure {
  Cell cell;
  std::vector<Atom> atoms;
};

/// Element symbol ("Sr") for Z = 1..103; throws std::invalid_argument otherwise.
std::string element_symbol(int Z);
/// Atomic number for a symbol (case-insensitive first letter, e.g. "sr", "Sr");
/// throws std::invalid_argument naming the symbol when unknown.
int atomic_number(const std::string& symbol);

}  // namespace stemtwin
