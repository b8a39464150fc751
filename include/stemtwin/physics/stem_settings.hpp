#pragma once
// What a STEM simulation is asked to do: the method (multislice, PRISM, auto, windowed), its
// accuracy budget and caches, and every engine setting (StemSettings). Shared by the engine's
// dispatch (engine.hpp) and the methods it dispatches to (prism.hpp, windowed.hpp,
// auto_method.hpp), which include this header instead of engine.hpp.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/core/fft.hpp"
#include "stemtwin/physics/potential.hpp"

namespace stemtwin {

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
  /// Positions multislice simulates after translational-symmetry reuse (translational_symmetry.hpp)
  /// and the positions asked for; equal when there is no reuse. cost_multislice counts the former.
  std::size_t symmetry_positions = 0, total_positions = 0;
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
  /// Multislice (and Method::Auto's multislice): simulate one probe position per class of
  /// positions that differ by a whole-pixel translation symmetry of a static structure and
  /// copy its signals to the others (translational_symmetry.hpp; exact up to rounding).
  /// Off, or with thermal displacements, a 4D pattern stream or a slice observer: every position.
  bool symmetry_reuse = true;
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

}  // namespace stemtwin
