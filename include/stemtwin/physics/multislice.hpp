#pragma once
// Transmission functions, the Fresnel propagator and plane-wave multislice.
//
// Multislice (Cowley & Moodie 1957; Kirkland 2010 ch. 6): for each slice n the wave is
// multiplied by the transmission function t_n = exp(iσ v_n) and propagated by the slice
// thickness Δz_n with P(k) = exp(−iπλΔz k²). Both t and P are band-limited to the grid's
// circular 2/3-Nyquist limit (Grid::k_max), the same everywhere, so no product aliases.
// The beam travels towards +z, entering at z = 0.
#include <cstddef>
#include <vector>

#include "stemtwin/core/fft.hpp"
#include "stemtwin/core/grid.hpp"
#include "stemtwin/physics/potential.hpp"

namespace stemtwin {

/// Band-limited transmission functions of every slice, in real space, for one energy.
struct Transmission {
  Grid grid;
  double energy_eV = 0;
  std::vector<double> slice_thickness_A;
  std::vector<ComplexBuffer> slices;  ///< t_n(x, y), [y][x]
  std::size_t num_slices() const { return slices.size(); }
  /// Bytes held (for memory estimates).
  std::size_t bytes() const { return slices.size() * grid.size() * sizeof(cfloat); }
};

/// t = exp(iσV) for every slice, band-limited (FFT, circular mask, inverse FFT).
/// Threads over slices; results independent of the thread count.
Transmission transmission_functions(const Potential& potential, double energy_eV, const Fft2& fft);

/// Fresnel propagator for thickness dz (Å) in FFT order, band-limited, times `scale`
/// (the engine folds the 1/N of the unnormalised inverse FFT into it).
ComplexBuffer fresnel_propagator(const Grid& grid, double wavelength_A, double dz_A, float scale = 1.0f);

/// Exit wave (real space) of a unit-amplitude plane wave at normal incidence after all
/// slices: the HRTEM/CTEM exit wave. |ψ|² averages to 1 minus what the band limit removes.
ComplexBuffer plane_wave_exit_wave(const Transmission& transmission, const Fft2& fft);

}  // namespace stemtwin
