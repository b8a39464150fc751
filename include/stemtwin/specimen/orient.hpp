#pragma once
// Orienting a crystal along a zone axis and building orthogonal periodic supercells.
//
// orient_along(crystal, [uvw]) finds lattice vectors p, q ⊥ [uvw] and t ∥ [uvw] such that
// the cell (p, q, t) is periodic and (nearly) orthogonal, rotates it so that p ∥ +x,
// t ∥ +z (the beam direction), and maps it onto the orthogonal box |p|·|q|·|t| (exactly
// orthogonal pairs need no strain; otherwise a small shear is applied and reported).
// Centring translations (F, I, C… cells) are found from the atoms, so the period along
// [uvw] is the true one (a√2/2 along [110] of an fcc crystal, not a√2).
#include <array>
#include <optional>

#include "stemtwin/specimen/crystal.hpp"
#include "stemtwin/specimen/specimen.hpp"

namespace stemtwin {

struct OrientOptions {
  double max_strain = 1e-3;   ///< largest |Green–Lagrange strain component| accepted
  double max_lateral = 30.0;  ///< longest in-plane cell vector searched, Å
  double max_period = 60.0;   ///< longest period along [uvw] searched, Å
  /// Optional lattice direction (conventional indices) to put along +x; it must be ⊥ [uvw].
  /// Without it the smallest-area cell is chosen (ties: least strain, squarest, then a
  /// fixed order), which fixes x up to the crystal's symmetry.
  std::optional<std::array<int, 3>> x_axis;
};

struct OrientedCell {
  Structure structure;  ///< orthogonal cell, zone axis along +z, atoms in [0, L)
  /// Columns: the cell vectors p, q, t in the crystal's conventional fractional coordinates
  /// (halves etc. for centred lattices).
  Mat3 supercell{};
  Mat3 rotation{};     ///< crystal Cartesian frame → lab frame (rows: lab x̂, ŷ, ẑ)
  Mat3 deformation{};  ///< applied after the rotation (identity when no strain)
  Mat3 strain{};       ///< Green–Lagrange strain E = (FᵀF − I)/2 of the deformation
  double max_strain = 0;  ///< max |E_ij|
  std::array<int, 3> zone_axis{};  ///< [uvw] reduced by its gcd
};

/// Orthogonal periodic cell with [uvw] (indices of the conventional cell) along +z.
/// Throws std::invalid_argument when no cell within the options exists.
OrientedCell orient_along(const Crystal& crystal, std::array<int, 3> uvw, const OrientOptions& options = {});

/// Unit vector of lattice direction [uvw] (conventional indices) in the lab frame of `oc`.
Vec3 lab_direction(const OrientedCell& oc, const Crystal& crystal, const Vec3& uvw);
/// Unit normal of lattice plane (hkl) in the lab frame of `oc`.
Vec3 lab_plane_normal(const OrientedCell& oc, const Crystal& crystal, const Vec3& hkl);

/// Repeats the cell nx × ny × nz times (all ≥ 1).
Structure tile(const Structure& s, int nx, int ny, int nz);
/// Same, with class ids and vacancies repeated; info is kept.
Specimen tile(const Specimen& s, int nx, int ny, int nz);
/// Repeats (≥ 1 each) closest to a lateral size lx × ly and a thickness, all Å.
std::array<int, 3> repeats_for_size(const Cell& cell, double lx, double ly, double thickness);

/// Tilts the specimen by small angles (mrad): a rotation by tilt_x about the x axis, then by
/// tilt_y about the y axis, about the cell centre. x and y are wrapped into the cell again,
/// so the tilted crystal is NOT periodic across the cell edges (columns are cut there: keep
/// labels away from the edges, or use a cell much wider than thickness × tilt). Along z the
/// atoms are shifted to start at z ≥ 0 and the cell grows to keep them all.
void tilt(Structure& s, double tilt_x_mrad, double tilt_y_mrad);

}  // namespace stemtwin
