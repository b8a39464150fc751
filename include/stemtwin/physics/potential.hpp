#pragma once
// Slices of projected electrostatic potential from atoms in an orthogonal periodic cell.
//
// The cell [0, lz) is cut into slices of the requested thickness (the last one may be
// thinner). Each slice holds the potential integrated along z over the slice, v(x, y) in V·Å,
// sampled on the grid. Two projections:
//  - Infinite: an atom's whole projected potential goes to the slice that holds its centre
//    (an atom exactly on a boundary, within 1e-6 Å, belongs to the slice starting there).
//  - Finite: each atom's 3-D potential is integrated between the slice boundaries, so atoms
//    near a boundary share their potential between neighbouring slices.
//
// Method (exact sub-pixel positions, no real-space singularity): the potential is assembled
// in Fourier space, v(k) = (1/A) Σ_atoms occ · C f_e(k) · w(k, z) · e^{−2πi k·r}, with
// C = 47.8776 V·Å² (see scattering.hpp) and w the z-weight (1 for infinite projection). The
// structure factors Σ e^{−2πi k·r} are computed by Gaussian gridding on a 2× finer grid and
// deconvolved (the non-uniform FFT of Dutt & Rokhlin / Greengard & Lee): error < 1e-6 of the
// signal up to the grid's Nyquist frequency, any atom position, cost O(atoms + FFT).
// The potential keeps every frequency the grid holds (square Nyquist region); the circular
// 2/3 band limit is applied to the transmission function (multislice.hpp).
// For finite projection the z-weights w(k, u₁, u₂) = G(k, u₂) − G(k, u₁) come from the
// closed-form z-integral G of each parametrisation's 3-D potential in the mixed (k, z)
// representation, separated into a few terms by an SVD (rank chosen for 1e-6 relative error).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/core/grid.hpp"
#include "stemtwin/physics/scattering.hpp"

namespace stemtwin {

enum class Projection { Infinite, Finite };

struct PotentialSettings {
  double slice_thickness_A = 2.0;
  Parametrization parametrization = Parametrization::Lobato;
  Projection projection = Projection::Infinite;
  /// Finite projection: the z-range (Å) beyond which an atom's potential is neglected;
  /// at 4 Å the 3-D potential of every element is below 1e-4 of its peak projected value.
  double finite_range_A = 4.0;
};

struct Potential {
  Grid grid;
  std::vector<double> slice_thickness_A;      ///< per slice
  std::vector<std::vector<float>> slices;     ///< per slice, ny·nx values of v in V·Å

  std::size_t num_slices() const { return slices.size(); }
  double thickness_A() const;
  /// Σ over slices of v (V·Å), the total projected potential.
  std::vector<double> projected() const;
};

/// Slice boundaries for a specimen of thickness lz: 0, Δz, 2Δz, …, lz (last slice thinner
/// when lz is not a multiple of Δz, by more than 1e-6 Å).
std::vector<double> slice_boundaries(double lz_A, double slice_thickness_A);

/// Builds the potential of `structure` (periodic in x and y over the grid's extent, which
/// must equal the cell's) with OpenMP threads over slices; results do not depend on the
/// thread count. Atoms with z outside [0, lz) are clamped into the first/last slice for
/// infinite projection (they occur only through thermal displacement).
Potential build_potential(const Structure& structure, const Grid& grid, const PotentialSettings& settings);

/// Frozen-phonon configuration: every atom displaced by rms·N(0,1) along x, y and z, from
/// the stream (seed, Phonon, configuration, atom index); configuration 0 is not special.
Structure displace_atoms(const Structure& structure, std::uint64_t seed, std::size_t configuration);

}  // namespace stemtwin
