#pragma once
// The scenario run loop without physics: output file (create, --force, --resume), shards,
// sampling, appending, progress, Ctrl-C and the preview. The caller supplies what a sample
// is: `complete_layout` fills what physics decides (radial bin edges without `max`,
// pixelated pattern sizes, species names, extra /params columns), and `simulate` turns
// one SampledScenario into a SampleRecord, streaming diffraction rows to the writer.
#include <cstddef>
#include <functional>
#include <limits>
#include <ostream>
#include <string>

#include "stemtwin/dataset.hpp"
#include "stemtwin/scenario.hpp"

namespace stemtwin {

struct RunOptions {
  std::string output;          ///< "" = the scenario's output.file
  bool force = false;          ///< overwrite an existing file
  bool resume = false;         ///< continue an existing file after its last complete sample
  Shard shard;                 ///< --shard i/n
  std::string preview;         ///< contact sheet PNG written at the end ("" = none)
  std::size_t max_samples = std::numeric_limits<std::size_t>::max();  ///< stop after this many (this run)
  bool progress = true;        ///< report progress to `log`
  bool handle_sigint = true;   ///< install the Ctrl-C handler for the run
};

struct RunResult {
  std::string path;
  std::size_t written = 0;      ///< samples appended by this run
  std::size_t complete = 0;     ///< complete samples in the file
  std::size_t shard_total = 0;  ///< samples this shard holds when finished
  bool interrupted = false;     ///< stopped by Ctrl-C (resume with --resume)
};

using CompleteLayout = std::function<void(DatasetLayout& layout, const ScenarioSpec& spec)>;
/// Simulates one sample. Fill images/clean/radial/masks/columns and any extra params; the
/// runner sets `index`, adds every sampled value to `params` and the class id. Stream
/// diffraction rows with writer.write_diffraction_row before returning.
using SimulateSample = std::function<SampleRecord(const SampledScenario& sample, DatasetWriter& writer)>;

/// Runs (or resumes) a scenario. Throws std::runtime_error with a message naming the file
/// on refusal: output exists without force/resume, resume of a file written from another
/// scenario or shard. Progress goes to `log`.
RunResult run_scenario(const ScenarioSpec& spec, const RunOptions& options, const CompleteLayout& complete_layout,
                       const SimulateSample& simulate, std::ostream& log);

}  // namespace stemtwin
