// libFuzzer target: the scenario YAML parser. Any text must either parse or throw
// ScenarioError — never crash, hang, recurse without bound or allocate without bound.
// Build: cmake -DSTEMTWIN_FUZZ=ON with clang (see .ci/run).
#include <cstddef>
#include <cstdint>
#include <string>

#include "stemtwin/scenario/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const stemtwin::ScenarioSpec s = stemtwin::parse_scenario_text(text, "fuzz.yaml");
    // Drawing exercises the sampled trees and the sweep grid (bounded by the range table).
    if (s.total_samples() > 0) (void)stemtwin::sample_parameters(s, s.total_samples() - 1);
  } catch (const stemtwin::ScenarioError&) {
  }
  return 0;
}
