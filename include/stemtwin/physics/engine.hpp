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
#include <map>
#include <optional>
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
#include "stemtwin/physics/slice_observer.hpp"

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

/// Multislice: exact reference. Prism: S-matrix with StemSettings::interpolation_x/y.
/// Auto: chooses PRISM's interpolation factor from a model, measures the error on a few
/// probe positions against multislice and falls back until StemSettings::budget is met
/// (auto_method.hpp; docs/physics.md, "Method auto"). Windowed: multislice in a window
/// around each probe, sized from the optics and thickness (windowed.hpp).
enum class Method { Multislice, Prism, Auto, Windowed };

/// Method::Auto's accuracy promise against plain multislice, checked on calibration positions.
struct ErrorBudget {
  /// Every annular detector's mean over the calibration positions within this fraction of
  /// multislice's (at every recording depth).
  double mean_rel = 0.01;
  /// Pearson correlation of every annular detector's values over the calibration positions
  /// with multislice's at least this (skipped where multislice's values are flat to 1e-6).
  double min_correlation = 0.995;
  /// Probe positions simulated both ways (spread evenly over the position list).
  std::size_t calibration_positions = 8;
  /// Calibrate even where auto's cost model says multislice is cheap (auto_cost(): a small
  /// scan cannot pay for a calibration). For tests and studies of the calibration itself.
  bool always_calibrate = false;
};

/// What Method::Auto chose and what it measured.
struct AutoChoice {
  Method method = Method::Multislice;  ///< Multislice, Prism or Windowed
  std::size_t interpolation = 1;       ///< PRISM factor (both axes); 1 for the others
  std::size_t predicted_interpolation = 1;  ///< the model's first guess (auto_method.hpp)
  double window_needed_A = 0;          ///< the model's probe-spread window
  /// Of the method chosen, on the calibration positions: the worst |mean / mean_multislice − 1|
  /// and the worst correlation over every annular detector and depth (0 and 1 when
  /// multislice was chosen after a calibration; NaN when nothing was calibrated).
  double measured_mean_error = 0;
  double measured_correlation = 1;
  std::size_t calibration_positions = 0;
  /// false: decided by the cost model alone (auto_cost(): multislice was cheap, or no other
  /// method was a candidate) and nothing was measured; measured_* are then NaN.
  bool calibrated = false;
  /// The cost model's estimates (units: one probe propagated through the whole cell on the
  /// full grid; auto_method.hpp): plain multislice of the whole scan, and the least auto
  /// could spend (calibration reference + the cheapest candidate).
  double cost_multislice = 0, cost_auto_least = 0;
  bool from_cache = false;             ///< taken from an AutoCalibrationCache entry
  struct Trial {
    std::size_t interpolation = 1;
    double mean_error = 0, correlation = 1;
  };
  std::vector<Trial> trials;           ///< every PRISM factor measured, in order (rejected ones too)
  /// Windowed multislice measured on the calibration positions (when its window is smaller
  /// than the cell and PRISM did not hold the budget).
  std::optional<Trial> windowed_trial;
};

/// Calibrations of Method::Auto, owned by the caller and passed through StemSettings, keyed
/// by specimen class and optics (auto_calibration_key()). A hit skips the calibration.
struct AutoCalibrationCache {
  std::map<std::string, AutoChoice> entries;
};

/// Method::Windowed: the window around each probe (windowed.hpp).
struct WindowSettings {
  /// Margin (Å) added to the probe's geometric spread radius; < 0 = the default
  /// kDefaultWindowMargin_A + kDefaultWindowMarginLambdas·λ/α (tested within 1 %).
  double margin_A = -1;
  /// Side (Å) of the square tiles of positions that share one window; 0 = chosen by a
  /// cost model (FFT work per position against the potential built per tile).
  double tile_A = 0;
};

struct StemSettings {
  Method method = Method::Multislice;
  /// PRISM interpolation factors along x and y (1 = exact multislice).
  std::size_t interpolation_x = 1, interpolation_y = 1;
  /// PRISM: positions within one cell of this size (Å) share a window and are summed as one
  /// matrix product (much faster on dense scans; the window is off-centre by at most half a
  /// cell). 0 = a window centred on every position. Not used with 4D detectors.
  double prism_block_A = 0.5;
  /// PRISM: partitioned interpolation (after Brown et al., Phys. Rev. Research 2 (2020)
  /// 023088; prism.hpp): the probe is not periodic at L/f, the S-matrix beams are parents
  /// of bilinear beamlets and the exit wave is cut from a window of prism_window_A.
  bool prism_partitioned = false;
  /// PRISM: store the S-matrix Fourier-cropped to the band limit (about half the memory).
  /// Exact only when the window L/f is a period of the specimen; otherwise it adds an error
  /// of ~1–4 % at f = 4 (prism.hpp, build_smatrix). Off by default.
  bool prism_band_limit_crop = false;
  /// Partitioned PRISM: the window (Å) cut around each probe, independent of f;
  /// 0 = prism_window_needed_A() of the optics and the specimen's thickness (auto_method.hpp).
  double prism_window_A = 0;
  /// Memory allowed for PRISM S-matrices (bytes); 0 = default_memory_budget().
  std::size_t max_memory_bytes = 0;
  /// Method::Auto: the accuracy to hold against multislice.
  ErrorBudget budget;
  /// Method::Auto: calibrations to reuse and fill (caller-owned; nullptr = none kept).
  AutoCalibrationCache* auto_cache = nullptr;
  /// Method::Auto: the cache key's specimen part ("" = derived from the structure's cell,
  /// composition and slicing).
  std::string specimen_class;
  PotentialSettings potential;
  /// Method::Windowed only.
  WindowSettings window;
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
  /// The method that produced these numbers ("multislice" or "prism") and PRISM's factor.
  std::string method = "multislice";
  std::size_t interpolation = 1;
  /// Set by Method::Auto: its choice and the error it measured (a dataset writer should
  /// store these with the parameters).
  std::optional<AutoChoice> auto_choice;
  /// Method::Windowed: the window each position was simulated in (points and Å), the radius
  /// kept around every position (Å) and the tile side (Å); all 0 for other methods.
  std::size_t window_nx = 0, window_ny = 0;
  double window_x_A = 0, window_y_A = 0, window_radius_A = 0, window_tile_A = 0;

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
/// An `observer` (e.g. an InelasticRecorder, spectroscopy.hpp) also sees the wave entering
/// every slice; it does not change the detector signals.
StemResult scan_multislice(const std::vector<Transmission>& configurations, const ProbeOptics& optics,
                           const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                           const StemSettings& settings, const Fft2& fft, PatternSink* sink = nullptr,
                           SliceObserver* observer = nullptr);

/// Both steps: the whole STEM simulation of a structure, by multislice or — with
/// settings.method = Method::Prism — by PRISM (prism.hpp), Method::Windowed (windowed.hpp) or
/// Method::Auto (auto_method.hpp). An `observer` needs the whole-cell multislice wave inside the
/// specimen: with any other method it is refused.
StemResult simulate_stem(const Structure& structure, const Grid& grid, const ProbeOptics& optics,
                         const std::vector<Point2>& positions, const std::vector<Detector>& detectors,
                         const StemSettings& settings, PatternSink* sink = nullptr, SliceObserver* observer = nullptr);

/// Partial spatial coherence: convolves a raster image (pixel steps in Å) with a Gaussian
/// of 1σ = source_size_A, periodically (Fourier space).
Image apply_source_size(const Image& image, double step_x_A, double step_y_A, double source_size_A);

/// Integrated DPC (iDPC) from COM images (mrad): the potential-like scalar field φ whose
/// gradient best matches the COM vector field, by Fourier integration
/// φ = F⁻¹[(kx·Cx + ky·Cy)/(2πi |k|²)], with the k = 0 term set to 0.
Image integrate_com(const Image& com_x, const Image& com_y, double step_x_A, double step_y_A);

}  // namespace stemtwin
