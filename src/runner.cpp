#include "stemtwin/runner.hpp"

#include <csignal>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "stemtwin/preview.hpp"
#include "stemtwin/progress.hpp"

namespace stemtwin {

RunResult run_scenario(const ScenarioSpec& spec, const RunOptions& o, const CompleteLayout& complete_layout,
                       const SimulateSample& simulate, std::ostream& log) {
  RunResult res;
  res.path = o.output.empty() ? spec.output.file : o.output;
  if (o.resume && o.force) throw std::invalid_argument("--resume and --force exclude each other");
  const std::size_t total = spec.total_samples();
  res.shard_total = shard_samples(total, o.shard).size();

  // --force over an existing file writes everything to a staged file that replaces the old
  // one only when the run finishes: a failed or interrupted run keeps the previous dataset.
  const bool exists = std::filesystem::exists(res.path);
  if (exists && !o.force && !o.resume)
    throw std::runtime_error("'" + res.path + "' exists: use --force to overwrite it or --resume to continue it");
  std::optional<StagedFile> staged;
  bool created = false;
  DatasetWriter writer = [&] {
    std::optional<std::string> unfinished;
    if (o.resume && exists) {
      unfinished = unfinished_dataset(res.path);
      if (!unfinished) {
        DatasetWriter w = DatasetWriter::open_for_resume(res.path);
        if (w.scenario_text() != spec.text)
          throw std::runtime_error("--resume: '" + res.path + "' was written from a different scenario text");
        const Shard s = w.layout().shard;
        if (s.index != o.shard.index || s.count != o.shard.count)
          throw std::runtime_error("--resume: '" + res.path + "' holds shard " + std::to_string(s.index) + "/" +
                                   std::to_string(s.count) + ", not " + std::to_string(o.shard.index) + "/" +
                                   std::to_string(o.shard.count));
        return w;
      }
      log << "--resume: '" << res.path << "' " << *unfinished
          << " (a run interrupted before its first sample): starting it again\n";
    }
    DatasetLayout layout = layout_for(spec, o.shard);
    if (complete_layout) complete_layout(layout, spec);
    created = true;
    if (o.force && exists) {
      staged.emplace(res.path);
      return DatasetWriter::create(staged->path(), layout, spec.text, false);
    }
    return DatasetWriter::create(res.path, layout, spec.text, unfinished.has_value());
  }();
  // A file this run created and left without a complete sample is no use to anyone.
  auto discard_if_empty = [&] {
    if (!created || staged || writer.rows() > 0) return;
    try {
      writer.close();
    } catch (...) {  // the file goes anyway; the error being reported is the run's
    }
    std::error_code ec;
    std::filesystem::remove(res.path, ec);
  };

  const auto pending = remaining_samples(total, o.shard, writer.rows());
  ProgressReporter progress(res.shard_total, log);
  if (o.progress) progress.start(writer.rows());
  using Handler = void (*)(int);
  Handler previous = SIG_DFL;
  if (o.handle_sigint) {
    previous = std::signal(SIGINT, SIG_DFL);
    install_interrupt_handler();
  } else {
    clear_interrupt();
  }
  const DatasetLayout& L = writer.layout();
  try {
    for (std::size_t i : pending) {
      if (res.written >= o.max_samples) break;
      const SampledScenario s = sample_parameters(spec, i);
      SampleRecord rec = simulate(s, writer);
      rec.index = i;
      for (const auto& [k, v] : s.values) rec.params.emplace(k, v);
      if (L.has_class && rec.class_id < 0) rec.class_id = s.class_id;
      writer.append_sample(rec);
      ++res.written;
      if (o.progress) progress.update(writer.rows());
      if (interrupt_requested()) {
        res.interrupted = true;
        break;
      }
    }
  } catch (...) {
    if (o.handle_sigint) std::signal(SIGINT, previous);
    discard_if_empty();
    if (staged) log << "the previous '" << res.path << "' is kept unchanged\n";
    throw;  // an uncommitted staged file is removed on the way out
  }
  if (o.handle_sigint) std::signal(SIGINT, previous);
  clear_interrupt();
  if (o.progress) progress.finish();
  res.complete = writer.rows();
  writer.close();
  if (res.interrupted && staged) {
    res.complete = 0;
    log << "interrupted: the previous '" << res.path << "' is kept unchanged (--force replaces it only when the run "
        << "finishes)\n";
  } else if (res.interrupted) {
    discard_if_empty();
    log << "interrupted: " << res.complete << " of " << res.shard_total << " samples complete in " << res.path
        << "; continue with --resume\n";
  }
  if (staged && !res.interrupted) staged->commit();
  if (!o.preview.empty() && res.complete > 0) {
    const DatasetReader reader(res.path);
    PreviewOptions po;
    po.samples = static_cast<std::size_t>(spec.output.preview_samples);
    write_preview(reader, o.preview, po);
  }
  return res;
}

}  // namespace stemtwin
