#pragma once
// The instrument settings a dataset carries for its readers (previews, axes, exports), so
// that no reader re-parses the scenario text stored with the file (docs/dataset.md,
// "/instrument"). The scenario layer fills them (scenario/dataset_layout.hpp); storage only
// stores and returns them.
//
//   /instrument/{energy_eV, convergence_mrad, current_pA, dwell_us, step_x_A, step_y_A}
//                                          float64 [N]  one value per sample
//   /instrument/detectors/<name>           group, attr type (annular, segmented, com, radial, pixelated)
//   /instrument/detectors/<name>/{inner_mrad, outer_mrad}   float64 [N]  annular detectors
//   /instrument/detectors/<name>/max_angle_mrad             float64 [N]  pixelated (0 = band limit)
//
// Files written before this group existed have no `instrument` entry in their layout:
// readers then get no settings (DatasetReader::instrument returns nullopt) and show none.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace stemtwin {

/// One detector as a reader shows it (the angles of one sample).
struct DetectorSettings {
  std::string name;
  std::string type;            ///< annular | segmented | com | radial | pixelated
  double inner_mrad = 0, outer_mrad = 0;  ///< annular
  double max_angle_mrad = 0;   ///< pixelated (0: up to the band limit)
};

/// The microscope of one sample.
struct InstrumentSettings {
  double energy_eV = 0, convergence_mrad = 0, current_pA = 0, dwell_us = 0;
  double step_x_A = 0, step_y_A = 0;  ///< scan step
  std::vector<DetectorSettings> detectors;  ///< in the scenario's order
};

/// A detector's fixed description in the layout.
struct InstrumentDetector {
  std::string name;
  std::string type;
};

/// What the layout says of the instrument (JSON key `instrument`; absent in older files).
struct InstrumentLayout {
  bool stored = false;  ///< the file holds /instrument (false: older file or hand-made layout)
  std::optional<double> energy_eV;  ///< beam energy every sample shares (none when sampled)
  std::vector<InstrumentDetector> detectors;
  /// Units of each image channel's values, acquired and clean (channels not named here
  /// get the generic units of axes.hpp).
  std::map<std::string, std::string> acquired_units, clean_units;
};

/// Paths (below /instrument) of the per-sample columns of a layout, in a fixed order; empty
/// when !stored.
std::vector<std::string> instrument_columns(const InstrumentLayout& layout);

/// One sample's values in the order of instrument_columns(); throws std::invalid_argument
/// naming the detector when `settings` do not have the layout's detectors (names, types).
std::vector<double> instrument_values(const InstrumentLayout& layout, const InstrumentSettings& settings);

/// The inverse of instrument_values.
InstrumentSettings instrument_from_values(const InstrumentLayout& layout, const std::vector<double>& values);

/// The per-sample columns a detector type has (below /instrument/detectors/<name>).
std::vector<std::string> detector_columns(const std::string& type);

/// A detector's values by column name (detector_columns of its type), e.g. {{"inner_mrad", 70}, …}.
std::vector<std::pair<std::string, double>> detector_values(const DetectorSettings& detector);

}  // namespace stemtwin
