#pragma once
// What a STEM simulation returns: detector signals per depth (StemResult) and, for 4D-STEM,
// the patterns handed to a PatternSink as they are computed. Shared by the engine's dispatch
// (engine.hpp) and the methods it dispatches to (prism.hpp, windowed.hpp, auto_method.hpp).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/core/image.hpp"
#include "stemtwin/physics/stem_settings.hpp"

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
  /// Probe positions actually simulated: fewer than the positions when multislice reused
  /// translational symmetry (translational_symmetry.hpp); 0 = not recorded (every position).
  std::size_t positions_simulated = 0;
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

}  // namespace stemtwin
