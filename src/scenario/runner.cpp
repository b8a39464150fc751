#include "stemtwin/scenario/runner.hpp"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "stemtwin/dataset/preview.hpp"
#include "stemtwin/core/progress.hpp"
#include "stemtwin/scenario/dataset_layout.hpp"

namespace stemtwin {

SampleRecord compute_sample(const ScenarioSpec& spec, const DatasetLayout& layout, std::size_t index,
                            const SimulateSample& simulate, const DiffractionRowSink& rows) {
  const SampledScenario s = sample_parameters(spec, index);
  SampleRecord rec = simulate(s, layout, rows);
  rec.index = index;
  for (const auto& [k, v] : s.values) rec.params.emplace(k, v);
  if (layout.instrument.stored) rec.instrument = instrument_settings(s);
  if (layout.has_class && rec.class_id < 0) rec.class_id = s.class_id;
  return rec;
}

DiffractionRowSink collect_rows(const DatasetLayout& layout, DiffractionData& into) {
  return [&layout, &into](const std::string& name, std::size_t y, const float* row) {
    const auto it = std::find_if(layout.diffraction.begin(), layout.diffraction.end(),
                                 [&](const DiffractionLayout& d) { return d.name == name; });
    if (it == layout.diffraction.end()) throw std::invalid_argument("no diffraction detector '" + name + "' in the layout");
    if (y >= layout.ny) throw std::out_of_range("diffraction row " + std::to_string(y) + " beyond ny");
    const std::size_t n = layout.nx * it->ky * it->kx;
    std::vector<float>& all = into[name];
    all.resize(layout.ny * n);
    std::copy(row, row + n, all.begin() + std::ptrdiff_t(y * n));
  };
}

void append_collected(DatasetWriter& writer, const SampleRecord& record, const DiffractionData& patterns) {
  const DatasetLayout& L = writer.layout();
  for (const DiffractionLayout& d : L.diffraction) {
    const auto it = patterns.find(d.name);
    const std::size_t n = L.nx * d.ky * d.kx;
    if (it == patterns.end() || it->second.size() != L.ny * n)
      throw std::invalid_argument("sample " + std::to_string(record.index) + ": diffraction/" + d.name +
                                  " missing or of the wrong size");
    for (std::size_t y = 0; y < L.ny; ++y) writer.write_diffraction_row(d.name, y, it->second.data() + y * n);
  }
  writer.append_sample(record);
}

RunResult run_scenario(const ScenarioSpec& spec, const RunOptions& o, const CompleteLayout& complete_layout,
                       const SimulateSample& simulate, std::ostream& log, const SampleLoop& loop) {
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
        if (o.check_resume) o.check_resume(res.path);
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
  std::span<const std::size_t> to_compute(pending);
  if (to_compute.size() > o.max_samples) to_compute = to_compute.first(o.max_samples);
  const auto appended = [&] {
    ++res.written;
    if (o.progress) progress.update(writer.rows());
    res.interrupted = interrupt_requested();
    return res.interrupted;
  };
  try {
    if (loop) {
      loop(to_compute, writer, appended);
    } else {
      const DiffractionRowSink to_file = [&](const std::string& name, std::size_t y, const float* row) {
        writer.write_diffraction_row(name, y, row);
      };
      for (std::size_t i : to_compute) {
        writer.append_sample(compute_sample(spec, writer.layout(), i, simulate, to_file));
        if (appended()) break;
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
