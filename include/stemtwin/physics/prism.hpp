#pragma once
// PRISM (Ophus, Adv. Struct. Chem. Imaging 3 (2017) 13): the scattering matrix of the plane
// waves inside the probe aperture, each propagated through the specimen once by multislice;
// every probe is then the phase-weighted sum of these exit waves, cropped to a window around
// the probe position.
//
// The plane waves lie on the reciprocal lattice coarsened by the interpolation factors
// (fx, fy): k = (i·fx/Lx, j·fy/Ly). A probe built from them repeats every Lx/fx × Ly/fy, so
// its exit wave is cut out of that window around the probe and Fourier transformed there;
// the diffraction pattern has a pixel fx/Lx × fy/Ly. f = 1 is multislice up to float
// round-off (tested); f > 1 trades accuracy for speed, good while the probe's exit wave
// fits in the window (cells many probe widths across).
// Aberrations, defocus and focal spread are applied at the summation step: a defocus series
// re-uses the same S-matrix.
#include <array>
#include <cstddef>
#include <vector>

#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/engine.hpp"

namespace stemtwin {

struct SMatrix {
  Grid grid;                                   ///< the full simulation grid
  double energy_eV = 0;
  std::size_t fx = 1, fy = 1;                  ///< interpolation factors
  std::vector<std::array<int, 2>> beams;       ///< (i, j): k = (i·fx/Lx, j·fy/Ly)
  std::vector<double> depths_A;                ///< recording depths (slice boundaries)
  std::vector<std::vector<ComplexBuffer>> waves;  ///< [depth][beam]: exit wave (real space)
  std::size_t bytes() const;
};

/// Beams (coarse-lattice indices) inside a semi-angle (mrad), the aperture's soft edge included.
std::vector<std::array<int, 2>> prism_beams(const Grid& grid, double energy_eV, double semiangle_mrad, std::size_t fx,
                                            std::size_t fy);

/// Bytes an S-matrix would take: beams × grid points × 8 × depths.
std::size_t smatrix_bytes(const Grid& grid, double energy_eV, double semiangle_mrad, std::size_t fx, std::size_t fy,
                          std::size_t depths);

/// Memory the process may use for S-matrices when the caller gives no limit: 60 % of the
/// system's available memory (Linux /proc/meminfo; 4 GiB if unknown).
std::size_t default_memory_budget();

/// Propagates every beam through the slices (threads over beams). The grid's point counts
/// must be divisible by fx and fy. `depths_A` as in StemSettings.
SMatrix build_smatrix(const Transmission& transmission, double semiangle_mrad, std::size_t fx, std::size_t fy,
                      const std::vector<double>& depths_A, const Fft2& fft);

/// Probes formed from the S-matrices (one per phonon configuration, intensities averaged)
/// at every position, recorded by the same detectors as multislice.
StemResult scan_prism(const std::vector<SMatrix>& configurations, const ProbeOptics& optics,
                      const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                      const StemSettings& settings, PatternSink* sink = nullptr);

/// The whole PRISM simulation of a structure: phonon configurations → S-matrices → scan.
/// Refuses (std::runtime_error naming sizes) when the S-matrices would exceed
/// settings.max_memory_bytes (or default_memory_budget()).
StemResult simulate_prism(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                          const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                          const StemSettings& settings, PatternSink* sink = nullptr);

}  // namespace stemtwin
