#pragma once
// A hook into the multislice loop: something that wants the probe's wave inside the
// specimen (not only at the detectors), e.g. the inelastic (EDS/EELS) signal in the local
// approximation (spectroscopy.hpp). The engine calls it with the real-space wave entering
// every slice, and with the exit wave, for every probe position, frozen-phonon configuration
// and focal-spread node.
#include <cstddef>
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
};

}  // namespace stemtwin
