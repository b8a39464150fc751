#pragma once
// The scenario run loop without physics: output file (create, --force, --resume), shards,
// sampling, appending, progress, Ctrl-C and the preview. The caller supplies what a sample
// is: `complete_layout` fills what physics decides (radial bin edges without `max`,
// pixelated pattern sizes, species names, extra /params columns), and `simulate` turns
// one SampledScenario into a SampleRecord, handing diffraction rows to a sink. Computing a
// sample (compute_sample) and appending it (DatasetWriter) are separate steps, so a sample
// may be computed in another process than the one that writes (mpi_run.hpp).
#include <cstddef>
#include <functional>
#include <limits>
#include <map>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/scenario/scenario.hpp"

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
  /// --resume of a finished-or-partial file: called with its path before the file is opened
  /// for writing (only where the file is written: rank 0 under MPI); throws to refuse
  /// (stemtwin run: check_resume_fft_plan, resume_checks.hpp). Empty: no extra check.
  std::function<void(const std::string& path)> check_resume;
};

struct RunResult {
  std::string path;
  std::size_t written = 0;      ///< samples appended by this run
  std::size_t complete = 0;     ///< complete samples in the file
  std::size_t shard_total = 0;  ///< samples this shard holds when finished
  bool interrupted = false;     ///< stopped by Ctrl-C (resume with --resume)
};

using CompleteLayout = std::function<void(DatasetLayout& layout, const ScenarioSpec& spec)>;
/// Where a sample's 4D pattern rows go while it is computed: row y ([nx][ky][kx] floats) of
/// a pixelated detector. A serial run streams them into the writer; a run that computes away
/// from the writer (MPI) collects them in a DiffractionData.
using DiffractionRowSink = std::function<void(const std::string& detector, std::size_t y, const float* row)>;
/// Simulates one sample. Fill images/clean/radial/masks/columns and any extra params; the
/// runner sets `index`, adds every sampled value to `params` and the class id. Hand every
/// diffraction row to `rows` before returning.
using SimulateSample =
    std::function<SampleRecord(const SampledScenario& sample, const DatasetLayout& layout, const DiffractionRowSink& rows)>;

/// One sample's 4D patterns held in memory: detector → [ny][nx][ky][kx] floats.
using DiffractionData = std::map<std::string, std::vector<float>>;

/// Computes sample `index` (everything but the write): draws its parameters, simulates it,
/// and sets the index, the sampled values and the class id in the record. The same call
/// whether the sample is appended here (serial) or on another rank (MPI).
SampleRecord compute_sample(const ScenarioSpec& spec, const DatasetLayout& layout, std::size_t index,
                            const SimulateSample& simulate, const DiffractionRowSink& rows);

/// Collects a sample's diffraction rows (sized from the layout) instead of writing them.
DiffractionRowSink collect_rows(const DatasetLayout& layout, DiffractionData& into);

/// Appends a computed sample whose patterns were collected (writes the rows, then the record).
void append_collected(DatasetWriter& writer, const SampleRecord& record, const DiffractionData& patterns);

/// Computes the `pending` samples and appends them to `writer` in increasing index order;
/// calls `appended()` after each append, and stops (without starting new samples) once it
/// returns true (Ctrl-C). Throws on a sample that fails; what it appended stays complete.
/// The default computes each sample in turn in this process; the MPI runner spreads them
/// over ranks (mpi_run.hpp).
using SampleLoop = std::function<void(std::span<const std::size_t> pending, DatasetWriter& writer,
                                      const std::function<bool()>& appended)>;

/// Runs (or resumes) a scenario. Throws std::runtime_error with a message naming the file
/// on refusal: output exists without force/resume, resume of a file written from another
/// scenario or shard. Progress goes to `log`. `loop` (empty: the serial one) computes and
/// appends the samples; everything else (file, resume, progress, Ctrl-C, preview) is here.
RunResult run_scenario(const ScenarioSpec& spec, const RunOptions& options, const CompleteLayout& complete_layout,
                       const SimulateSample& simulate, std::ostream& log, const SampleLoop& loop = {});

/// run_scenario's signature: how `stemtwin run` runs a prepared scenario (the MPI build
/// passes one that spreads the samples over ranks).
using RunScenario = std::function<RunResult(const ScenarioSpec&, const RunOptions&, const CompleteLayout&,
                                            const SimulateSample&, std::ostream&)>;

}  // namespace stemtwin
