#pragma once
// Scanning multislice: probe → slices → detectors, for every probe position.
//
// The engine is split in two so that callers can cache the expensive half:
//   frozen_phonon_transmissions(): structure → N seeded thermal configurations →
//       potentials → band-limited transmission functions (depends on the specimen, the grid,
//       the energy and the slicing only);
//   scan_multislice(): transmission functions × probe optics × positions → detector signals
//       (a defocus or aberration change re-uses the transmission functions).
// simulate_stem() does both.
//
// Threads (OpenMP) run over probe positions; each has its own wave buffer and detector
// accumulators, allocated once; the FFT plans are shared (new-array execute). Intensities are
// averaged over phonon configurations (Einstein model; Loane, Xu & Silcox, Acta Cryst. A47
// (1991) 267) and over focal-spread quadrature nodes in a fixed order, so results are
// bit-identical for any thread count.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stemtwin/core/atoms.hpp"
#include "stemtwin/physics/detectors.hpp"
#include "stemtwin/core/fft.hpp"
#include "stemtwin/core/image.hpp"
#include "stemtwin/physics/multislice.hpp"
#include "stemtwin/physics/potential.hpp"
#include "stemtwin/physics/probe.hpp"
#include "stemtwin/core/scan.hpp"

namespace stemtwin {

/// Receives 4D-STEM patterns as they are computed, in blocks of consecutive positions, always
/// from the calling thread and in position order (so it may write to a file directly).
/// `patterns` holds count × ny × nx floats (fractions of the incident beam per pixel).
class PatternSink {
 public:
  virtual ~PatternSink() = default;
  virtual void write(const std::string& detector, std::size_t first_position, std::size_t count, std::size_t ny,
                     std::size_t nx, const float* patterns) = 0;
};

enum class Method { Multislice, Prism };

struct StemSettings {
  Method method = Method::Multislice;
  /// PRISM interpolation factors along x and y (1 = exact multislice).
  std::size_t interpolation_x = 1, interpolation_y = 1;
  /// PRISM: positions within one cell of this size (Å) share a window and are summed as one
  /// matrix product (much faster on dense scans; the window is off-centre by at most half a
  /// cell). 0 = a window centred on every position. Not used with 4D detectors.
  double prism_block_A = 0.5;
  /// Memory allowed for PRISM S-matrices (bytes); 0 = default_memory_budget().
  std::size_t max_memory_bytes = 0;
  PotentialSettings potential;
  /// Frozen-phonon configurations; atoms are displaced by their `rms` (Å). With 1
  /// configuration and rms > 0 a single displaced configuration is used.
  std::size_t phonon_configurations = 1;
  std::uint64_t seed = 0;
  /// Depths (Å) at which to record the detectors (thickness series), each rounded to the
  /// nearest slice boundary; empty = the exit surface only.
  std::vector<double> depths_A;
  /// FFT plans. Wisdom (default): FFTW_MEASURE speed, plans stored once per machine and grid
  /// size in a wisdom file and rebuilt from it, so the same file gives the same bytes
  /// (docs/physics.md, "FFT plans and reproducibility"). Estimate needs no file.
  FftPlanning planning = FftPlanning::Wisdom;
  /// Wisdom file for FftPlanning::Wisdom; "" = STEMTWIN_FFTW_WISDOM or the user cache
  /// (wisdom_file_path() in fft.hpp).
  std::string fftw_wisdom_file;
  /// Positions handed to the PatternSink at a time (bounds the memory of 4D-STEM).
  std::size_t pattern_block = 64;
  /// Called on the calling thread with (positions done, total) after each block.
  std::function<void(std::size_t, std::size_t)> progress;
};

/// Signals of one detector at one depth: values[position·bins + bin].
struct DetectorSignal {
  std::string name;
  std::size_t depth_index = 0;
  std::size_t bins = 1;
  std::vector<double> values;
};

struct StemResult {
  std::vector<double> depths_A;          ///< actual recording depths (slice boundaries)
  std::vector<DetectorSignal> signals;   ///< every non-pixelated detector at every depth
  std::vector<std::string> warnings;     ///< e.g. detector beyond the band limit
  /// Which FFT plan produced these numbers: Fft2::plan_id() (16 hex digits). Two results
  /// with the same fft_plan, seed and settings are byte-identical on the same machine. A
  /// dataset writer should store it next to the seed (e.g. a root attribute `fft_plan`).
  std::string fft_plan;

  /// The signal of a detector at a depth (default: the exit surface); throws if absent.
  const DetectorSignal& signal(const std::string& name, std::size_t depth_index = SIZE_MAX) const;
  /// Bin `bin` of a detector as an image on a raster scan of nx × ny positions.
  Image image(const std::string& name, std::size_t nx, std::size_t ny, std::size_t bin = 0,
              std::size_t depth_index = SIZE_MAX) const;
};

/// The simulation grid of a periodic lx × ly Å cell at `sampling_A`: FFT-friendly point counts
/// (Grid::from_sampling) and, for PRISM, counts divisible by the interpolation factor as well
/// (each rounded up to the next FFT-friendly multiple). The one grid rule of the dataset runner,
/// the session and Python's simulate_stem (src/physics/make_grid.cpp).
Grid make_grid(double lx_A, double ly_A, double sampling_A, Method method, std::size_t interpolation);

/// Thermal configurations → transmission functions (one per configuration).
std::vector<Transmission> frozen_phonon_transmissions(const Structure& structure, const Grid& grid, double energy_eV,
                                                      const StemSettings& settings, const Fft2& fft);

/// Runs the probe over `positions` through every configuration and records the detectors.
StemResult scan_multislice(const std::vector<Transmission>& configurations, const ProbeOptics& optics,
                           const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                           const StemSettings& settings, const Fft2& fft, PatternSink* sink = nullptr);

/// Both steps: the whole STEM simulation of a structure, by multislice or — with
/// settings.method = Method::Prism — by PRISM (prism.hpp).
StemResult simulate_stem(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                         const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                         const StemSettings& settings, PatternSink* sink = nullptr);

/// Partial spatial coherence: convolves a raster image (pixel steps in Å) with a Gaussian
/// of 1σ = source_size_A, periodically (Fourier space).
Image apply_source_size(const Image& image, double step_x_A, double step_y_A, double source_size_A);

/// Integrated DPC (iDPC) from COM images (mrad): the potential-like scalar field φ whose
/// gradient best matches the COM vector field, by Fourier integration
/// φ = F⁻¹[(kx·Cx + ky·Cy)/(2πi |k|²)], with the k = 0 term set to 0.
Image integrate_com(const Image& com_x, const Image& com_y, double step_x_A, double step_y_A);

}  // namespace stemtwin
