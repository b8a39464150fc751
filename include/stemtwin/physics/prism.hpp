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
#include <cstdint>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/core/scan.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/physics/slice_observer.hpp"
#include "stemtwin/physics/stem_result.hpp"
#include "stemtwin/physics/stem_settings.hpp"

namespace stemtwin {

// Storage: the detectors read only the pixels inside the band limit (Grid::k_max, a circle of
// 2/3 of the Nyquist frequency), so each recorded wave is Fourier-cropped to the smallest
// grid whose frequency square holds that circle (about 2/3 of the points along each axis,
// 0.44–0.5 of the memory) and kept in real space at that coarser sampling. The crop is exact:
// the kept spectrum is the same full-grid FFT of ψ·t the multislice engine records, and
// the window FFT of the coarser samples of a band-limited wave is the same spectrum scaled
// by the point ratio (tested: f = 1 still equals multislice to float round-off).
/// The plane waves inside the specimen at the pixels a slice observer reads (spectroscopy on
/// PRISM, docs/spectroscopy.md §7a): for every wave read s (entering slice s; s = ns the exit
/// wave, the last slice's transmitted wave propagated through its thickness, as multislice
/// hands observers) values[s][b·pixels[s].size() + k] = S_b(z_s, pixels[s][k]), the beam
/// `beams[b]`'s wave at that pixel of the full simulation grid (whatever the storage crop).
/// Memory: beams × Σ_s pixels[s] × 8 bytes (δ footprints: ≤ 8 pixels per atom read; a Gaussian
/// of width σ: 2·(6σ/dx)², fewer where footprints overlap).
struct SMatrixSamples {
  std::vector<double> slice_thickness_A;              ///< the slicing (SliceObserver::begin)
  std::vector<std::vector<std::uint32_t>> pixels;     ///< [wave read]: y·nx + x, ascending
  std::vector<std::vector<cfloat>> values;            ///< [wave read][beam][pixel]
  bool empty() const { return pixels.empty(); }
};

struct SMatrix {
  Grid grid;                                   ///< the full simulation grid
  Grid stored;                                 ///< the grid of `waves` (≤ grid; same extent)
  double energy_eV = 0;
  std::size_t fx = 1, fy = 1;                  ///< interpolation factors
  std::vector<std::array<int, 2>> beams;       ///< (i, j): k = (i·fx/Lx, j·fy/Ly)
  std::vector<double> depths_A;                ///< recording depths (slice boundaries)
  std::vector<double> propagated_A;            ///< per depth: free-space distance propagated before it
  std::vector<std::vector<ComplexBuffer>> waves;  ///< [depth][beam]: exit wave (real space, on `stored`)
  SMatrixSamples samples;                      ///< inside the specimen, for a slice observer (else empty)
  std::size_t bytes() const;                   ///< waves and samples
};

/// The grid the S-matrix waves are stored on: the fewest points (a multiple of f along each
/// axis, FFT-friendly per window) whose frequency square holds the band-limit circle of
/// `grid`; `grid` itself when no smaller one exists or crop is false.
Grid smatrix_storage_grid(const Grid& grid, std::size_t fx, std::size_t fy, bool crop = false);

/// Beams (coarse-lattice indices) inside a semi-angle (mrad), the aperture's soft edge included.
std::vector<std::array<int, 2>> prism_beams(const Grid& grid, double energy_eV, double semiangle_mrad, std::size_t fx,
                                            std::size_t fy);

/// Bytes an S-matrix would take: beams × stored grid points × 8 × depths.
std::size_t smatrix_bytes(const Grid& grid, double energy_eV, double semiangle_mrad, std::size_t fx, std::size_t fy,
                          std::size_t depths, bool crop = false);

/// Memory the process may use for S-matrices when the caller gives no limit: 60 % of the
/// system's available memory (Linux /proc/meminfo; 4 GiB if unknown).
std::size_t default_memory_budget();

/// Propagates every beam through the slices (threads over beams). The grid's point counts
/// must be divisible by fx and fy. `depths_A` as in StemSettings. crop = true stores each wave
/// Fourier-cropped to the band limit (about half the memory; refused by 4D pixelated
/// detectors). The crop is exact only when the window L/f is a period of the specimen (then
/// the probe's exit wave is periodic in the window); otherwise the window cuts a
/// non-periodic wave and the coarser grid aliases the cut differently: measured on SrTiO3
/// 3×3×2 cells (window 0.75 cell), ADF 40–80 mrad, up to 0.3–1.4 % at f = 2 and 1–4 % at
/// f = 4 against the uncropped S-matrix. Hence off by default (StemSettings::prism_band_limit_crop).
/// `sample_pixels` ([wave read 0 … ns], from prism_observed_pixels): also keep every beam there
/// (SMatrix::samples), for a slice observer.
SMatrix build_smatrix(const Transmission& transmission, double semiangle_mrad, std::size_t fx, std::size_t fy,
                      const std::vector<double>& depths_A, const Fft2& fft, bool crop = false,
                      const std::vector<std::vector<std::uint32_t>>* sample_pixels = nullptr);

/// Spectroscopy on PRISM. The pixels `observer` reads, [configuration][wave read 0 … ns], on
/// `grid` with this slicing: begin()s it (for 0 positions; scan_prism begins it again) and
/// asks read_pixels() (std::invalid_argument from an observer that cannot read intensities).
std::vector<std::vector<std::vector<std::uint32_t>>> prism_observed_pixels(SliceObserver& observer, const Grid& grid,
                                                                           const std::vector<double>& slice_thickness_A,
                                                                           std::size_t configurations);

/// Partitioned PRISM (settings.prism_partitioned). The f-coarsened beams k_m are *parents*:
/// the probe's full aperture ψ₀(k) on the fine lattice is split into bilinear beamlets
/// ψ₀(k)·Λ_m(k) (Λ_m the tent of width 2f/L around k_m; the tents sum to 1), and the exit
/// wave of each fine plane wave is taken as its parent's, tilted: S_k(r) ≈ S_m(r)·e^{2πi(k−k_m)·r}.
/// Then  ψ_exit(r; r₀) = Σ_m e^{−2πik_m·r₀} S_m(r) b_m(r − r₀),  b_m the beamlet's envelope
/// (inverse FFT of ψ₀(k_m + q)Λ(q)), computed once and shifted per position (bilinear
/// sub-pixel shift). At the entrance this is exactly the probe — no periodic images — so
/// the window (settings.prism_window_A) need only hold the probe's spread, whatever f is;
/// Each fine beam's own free-space propagation phase relative to its parent,
/// e^{−iπλz(|k|² − |k_m|²)} (z = S-matrix propagated_A at the recording depth), is kept in its
/// beamlet: without it the beamlet probe would not defocus through the thickness (measured:
/// HAADF 4–11 % off on 15.6 Å of SrTiO3). What is left is the lateral walk λzΔk of a tilt
/// (≈ 0.05 Å here) and the tilt dependence of the scattering itself.
/// The S-matrix must hold every parent whose tent meets the aperture:
/// partitioned_semiangle_mrad() gives the semi-angle to build it with.
double partitioned_semiangle_mrad(const Grid& grid, double energy_eV, double semiangle_mrad, std::size_t fx,
                                  std::size_t fy);

/// Probes formed from the S-matrices (one per phonon configuration, intensities averaged)
/// at every position, recorded by the same detectors as multislice.
/// An `observer` (EDS/EELS, spectroscopy.hpp) gets, per position, configuration, focal-spread
/// node and wave read, |ψ|² at its pixels: ψ = Σ_b c_b S_b from SMatrix::samples with the
/// coefficients and the window of the exit waves (prism_observe.cpp; docs/spectroscopy.md §7a).
/// The S-matrices must hold samples at the observer's pixels (build_smatrix's sample_pixels);
/// partitioned PRISM refuses an observer (std::invalid_argument).
StemResult scan_prism(const std::vector<SMatrix>& configurations, const ProbeOptics& optics,
                      const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                      const StemSettings& settings, PatternSink* sink = nullptr, SliceObserver* observer = nullptr);

/// The S-matrices simulate_prism scans: one per phonon configuration (seeded as multislice's),
/// built with the factors, depths, partitioning and crop of `settings`, on `fft` (the plan of
/// `grid`). Refuses (std::runtime_error naming sizes) beyond settings.max_memory_bytes.
/// With an `observer` the S-matrices also hold its samples (counted in that memory).
std::vector<SMatrix> build_prism_smatrices(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                                           const std::vector<Detector>& detectors, const StemSettings& settings,
                                           const Fft2& fft, SliceObserver* observer = nullptr);

/// The whole PRISM simulation of a structure: phonon configurations → S-matrices → scan.
/// Refuses (std::runtime_error naming sizes) when the S-matrices would exceed
/// settings.max_memory_bytes (or default_memory_budget()).
StemResult simulate_prism(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                          const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                          const StemSettings& settings, PatternSink* sink = nullptr, SliceObserver* observer = nullptr);

}  // namespace stemtwin
