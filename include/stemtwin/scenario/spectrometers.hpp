#pragma once
// Spectrometers of a scenario: `detectors:` entries of `type: eds` and `type: eels`
// (docs/scenario.md, "Spectrometers"). They are parsed into SpectrometerSpec values
// (acquisition/spectrometer.hpp), kept apart from the image detectors, and ride on the
// multislice scan of each sample (the runner attaches an InelasticRecorder).
//
// Every key is fixed (no distributions): the energy axis sets the stored array's shape, and
// the maps' names are the dataset's. Checked before any work: ranges, the maps' windows on
// the energy axis at every beam energy a sample can draw, elements that exist, and the
// method (only `multislice` records the wave inside the specimen).
#include <vector>

#include "stemtwin/acquisition/spectrometer.hpp"

namespace stemtwin {

struct ScenarioSpec;
struct SourceRef;

/// A spectrometer and where it is in the scenario file (for messages).
struct ScenarioSpectrometer {
  SpectrometerSpec spec;
  std::string file;       ///< the scenario file
  std::string path;       ///< key path, "detectors.<name>"
  int line = 0, column = 0;
};

/// Checks that need the whole scenario (method, beam energy); throws ScenarioError naming
/// the spectrometer's key. Called by the parser once every section is read.
void check_spectrometers(const ScenarioSpec& spec);

}  // namespace stemtwin
