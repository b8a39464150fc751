#pragma once
// A general crystal: lattice parameters (a, b, c in Å; α, β, γ in degrees) and the full
// content of one conventional unit cell as fractional sites (symmetry already expanded).
//
// Cartesian frame of the crystal (the usual crystallographic one): a along x, b in the
// x–y plane, c completing a right-handed set. orient.hpp turns a crystal into an
// orthogonal periodic cell with a chosen zone axis along +z.
#include <array>
#include <string>
#include <vector>

#include "stemtwin/core/atoms.hpp"

namespace stemtwin {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;  ///< row-major: m[row][col]

struct Site {
  int Z = 0;
  double fx = 0, fy = 0, fz = 0;  ///< fractional coordinates, in [0, 1)
  double occupancy = 1.0;
  double rms = 0.0;   ///< Å per axis
  std::string label;  ///< e.g. "Sr1" from a CIF
};

struct Crystal {
  std::string name;
  double a = 0, b = 0, c = 0;                 ///< Å
  double alpha = 90, beta = 90, gamma = 90;   ///< degrees
  std::vector<Site> sites;                    ///< full unit cell (P1)
};

/// Columns are the lattice vectors a, b, c in the Cartesian frame above (m[i][j] = i-th
/// Cartesian component of the j-th vector). Throws std::invalid_argument for a degenerate cell.
Mat3 lattice_matrix(const Crystal& c);
/// Unit-cell volume, Å³.
double cell_volume(const Crystal& c);
/// True when α = β = γ = 90° (to 1e-6°).
bool is_orthogonal(const Crystal& c);

/// Pure translations t (fractional, in [0,1)³, t ≠ 0) that map the crystal onto itself
/// (same element and occupancy within `tolerance` Å): the centring vectors of an F, I, C…
/// cell, e.g. (½,½,0), (½,0,½), (0,½,½) for fcc. Used to find the shortest period along a
/// zone axis.
std::vector<Vec3> centring_translations(const Crystal& c, double tolerance = 0.01);

/// Atoms of one unit cell of an orthogonal crystal (Cell = a × b × c). Throws for a
/// non-orthogonal lattice (orient it with orient_along instead).
Structure unit_cell_structure(const Crystal& c);

/// Reads a CIF (first data block with atom sites) through gemmi and expands the space
/// group — from the symmetry operations in the file (_space_group_symop_operation_xyz or
/// _symmetry_equiv_pos_as_xyz) or else from the Hermann–Mauguin name — to the full cell,
/// merging images closer than `merge_distance` Å. Keeps occupancies; rms from U_iso or
/// B_iso (rms = √U = √(B/8π²)), else 0 (none given). Errors (StructureError) name the file
/// and line.
Crystal crystal_from_cif(const std::string& path, double merge_distance = 0.01);
/// Same from CIF text; `name` is used in error messages in place of the path.
Crystal crystal_from_cif_text(const std::string& text, const std::string& name = "<string>",
                              double merge_distance = 0.01);

/// Cubic perovskite ABO3 (Pm-3m): A at 0,0,0, B at ½,½,½, O at ½,½,0 / ½,0,½ / 0,½,½.
Crystal perovskite_crystal(double a, int A, int B, int O = 8);

// --- small vector helpers (used across the specimen code) -------------------------------
Vec3 mat_vec(const Mat3& m, const Vec3& v);
Mat3 mat_mul(const Mat3& a, const Mat3& b);
Mat3 transpose(const Mat3& m);
Mat3 inverse(const Mat3& m);
double det(const Mat3& m);
double dot(const Vec3& a, const Vec3& b);
Vec3 cross(const Vec3& a, const Vec3& b);
double norm(const Vec3& a);

}  // namespace stemtwin
