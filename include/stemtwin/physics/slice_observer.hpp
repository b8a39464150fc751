#pragma once
// A hook into the multislice loop: something that wants the probe's wave inside the
// specimen (not only at the detectors), e.g. the inelastic (EDS/EELS) signal in the local
// approximation (spectroscopy.hpp). The engine calls it with the real-space wave entering
// every slice, and with the exit wave, for every probe position, frozen-phonon configuration
// and focal-spread node.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "stemtwin/core/fft.hpp"
#include "stemtwin/core/grid.hpp"

namespace stemtwin {

class SliceObserver {
 public:
  virtual ~SliceObserver() = default;
  /// Once, on the calling thread, before any observe(): the grid, the slicing (thickness of
  /// every slice, Å), the number of frozen-phonon configurations and of probe positions.
  virtual void begin(const Grid& grid, const std::vector<double>& slice_thickness_A, std::size_t configurations,
                     std::size_t positions) = 0;
  /// The real-space wave psi (grid.size() values, [y][x]) entering slice `slice` for probe
  /// `position` in frozen-phonon `configuration`. It is normalised so that Σ|ψ|² over the
  /// grid is the fraction of the incident beam still in the band (1 at the entrance
  /// surface), i.e. |ψ|² is the fraction of the beam per pixel. `weight` is this pass's
  /// share of the average (1/configurations × the focal-spread node's weight); the weights
  /// of one position sum to 1 over its passes.
  /// After the last slice (slice == slice_thickness_A.size()) it is called once more with the
  /// exit wave: the last slice's transmitted wave propagated through that slice's thickness,
  /// so that the intensity is known at every slice boundary including the exit surface.
  /// Threads: called concurrently for different positions, but for one position always
  /// from one thread, in a fixed order (configuration, focal node, slice), so per-position
  /// accumulation needs no locks and does not depend on the thread count.
  virtual void observe(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
                       const cfloat* psi) = 0;

  // Windowed multislice (windowed.hpp) propagates each position's probe on a window of the
  // cell only. An observer that can read such waves overrides set_window(); the default
  // refuses (std::invalid_argument), and windowed multislice then refuses the observer.
  /// Between tiles, on the calling thread: the waves passed to observe() until the next call
  /// are on a window of nx × ny pixels of begin()'s grid (same sampling) whose pixel (i, j)
  /// is the grid's pixel ((x0 + i) mod grid.nx, (y0 + j) mod grid.ny); psi then holds nx·ny
  /// values. An axis with n = the grid's is the whole periodic cell (x0 or y0 = 0). The wave
  /// outside the window is taken as 0 (the window holds the probe, windowed.hpp).
  virtual void set_window(std::size_t x0, std::size_t y0, std::size_t nx, std::size_t ny);

  // PRISM (prism.hpp) never forms the whole wave inside the specimen: while it propagates its
  // plane waves it keeps them at the pixels the observer reads, and per probe position it
  // hands the observer |ψ|² there (the same beam sum as its exit waves, prism_observe.cpp).
  // An observer that can read such intensities overrides the three; the defaults refuse
  // (std::invalid_argument), and PRISM then refuses the observer (auto does not consider it).
  /// Whether read_pixels() and observe_intensities() are implemented.
  virtual bool reads_intensities() const { return false; }
  /// After begin(), on the calling thread, before any observe_intensities(): the pixels
  /// (index y·nx + x of begin()'s grid, ascending, no repeats) whose |ψ|² the observer reads
  /// from each wave, [configuration][slice 0 … ns] (ns: the exit wave), as observe() would.
  virtual std::vector<std::vector<std::vector<std::uint32_t>>> read_pixels();
  /// PRISM's observe(): intensity[k] = |ψ|² at read_pixels()[configuration][slice][k] (the
  /// fraction of the beam in that pixel; 0 outside the probe's PRISM window, where PRISM's
  /// wave is 0), with observe()'s weights, threads and order.
  virtual void observe_intensities(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
                                   const float* intensity);

  // Method auto (auto_method.hpp) measures a candidate method against multislice on a few
  // positions; with an observer it compares what the observer records too.
  /// A fresh observer recording the same quantities (its own begin() follows), or nullptr
  /// when it cannot be copied (then auto does not calibrate against the observer's values).
  virtual std::unique_ptr<SliceObserver> fresh_copy() const { return nullptr; }
  /// After a scan: what it recorded, as signals over the positions (each inner vector one
  /// quantity, one value per position, ≥ 0), for auto's comparison (same budget as the
  /// annular detectors: mean ratio and correlation). Empty: nothing to compare.
  virtual std::vector<std::vector<double>> recorded_signals() const { return {}; }
};

}  // namespace stemtwin
