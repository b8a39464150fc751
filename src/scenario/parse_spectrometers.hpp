#pragma once
// Internal: the YAML side of `detectors: - type: eds|eels` (docs/scenario.md), called from
// the detector parser (scenario.cpp) for those two types.
#include <string>

#include <yaml-cpp/yaml.h>

#include "stemtwin/scenario/spectrometers.hpp"

namespace stemtwin::detail {

/// Parses one spectrometer entry (a map with `name` and `type` already read and checked);
/// `path` is its key path ("detectors.<name>"). Throws ScenarioError naming file, line and key.
ScenarioSpectrometer parse_spectrometer(const YAML::Node& node, const std::string& name, const std::string& type,
                                        const std::string& path, const std::string& file);

}  // namespace stemtwin::detail
