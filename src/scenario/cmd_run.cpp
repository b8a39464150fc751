// `stemtwin run` (scenario_run.hpp: cmd_run): read and check the scenario, print a dry run's
// estimate or run it (in this process or over MPI ranks), and the built-in quick start.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <ostream>
#include <string>

#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/scenario/resume_checks.hpp"
#include "stemtwin/scenario/series_reuse.hpp"

namespace stemtwin {
namespace {

#include "quickstart_scenario.inc"

/// The scenario of a run: the file (or the quick start) with the command line's overrides,
/// which are appended to the stored text so the file says how it was made.
ScenarioSpec read_run_scenario(const RunCommand& cmd) {
  ScenarioSpec spec = cmd.scenario.empty() ? parse_scenario_text(builtin_quickstart_scenario(), "quickstart.yaml (built in)")
                                           : parse_scenario_file(cmd.scenario);
  if (cmd.samples) {
    spec.samples = *cmd.samples;
    check_sample_count(spec);
    spec.text += "\n# command line: --samples " + std::to_string(*cmd.samples) + "\n";
  }
  if (cmd.seed) {
    spec.seed = *cmd.seed;
    spec.text += "\n# command line: --seed " + std::to_string(*cmd.seed) + "\n";
  }
  return spec;
}

/// --dry-run: the shard's sampled parameters (the first 20 samples), sample 0's sampling and
/// expected counts, and an estimate of memory and time from one timed FFT pair on its grid.
void print_dry_run(const ScenarioSpec& spec, const RunCommand& cmd, const ScenarioCheck& checked, const MemoryEstimate& largest,
                   double budget, std::ostream& out) {
  const auto idx = shard_samples(spec.total_samples(), cmd.options.shard);
  out << "scenario '" << spec.name << "': " << spec.total_samples() << " samples (this shard " << idx.size() << ")\n";
  const auto info = parameter_info(spec);
  out << std::left << std::setw(8) << "sample";
  for (const auto& p : info) out << " " << std::setw(14) << p.name;
  out << "\n";
  const std::size_t shown = std::min<std::size_t>(idx.size(), 20);
  for (std::size_t k = 0; k < shown; ++k) {
    const SampledScenario s = sample_parameters(spec, idx[k]);
    out << std::setw(8) << s.index;
    for (const auto& p : info) out << " " << std::setw(14) << s.values.at(p.name);
    out << "\n";
  }
  if (shown < idx.size()) out << "… (" << idx.size() - shown << " more samples)\n";
  out << "sample 0: sampling " << checked.sampling_A << " Å, band limit ≥ " << checked.band_limit_mrad << " mrad\n";
  for (const CountEstimate& c : checked.counts)
    out << "expected counts per pixel, " << c.detector << ": " << c.counts_per_pixel << " (" << c.fraction
        << " of the beam; kinematic estimate)\n";
  if (idx.empty()) return;
  // Time one FFT pair on sample 0's grid (it fits: check_run said so) to estimate the run.
  const SampledScenario s = sample_parameters(spec, idx[0]);
  const MemoryEstimate z = estimate_memory(s, spec.labels, std::size_t(std::max(1, omp_get_max_threads())), budget, spec.spectrometers);
  const Grid grid(1, 1, std::size_t(z.grid_nx), std::size_t(z.grid_ny));
  const Fft2 fft(grid);
  ComplexBuffer b(grid.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) fft.forward(b.data()), fft.backward(b.data());
  const double pair = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 10;
  const double per_sample = pair * z.slices * double(s.scan.size()) * double(std::max(1, s.configurations)) /
                            double(std::max(1, omp_get_max_threads()));
  out << "grid " << grid.nx << " × " << grid.ny << ", " << z.slices << " slices, " << s.scan.nx << " × " << s.scan.ny
      << " positions, " << s.configurations << " phonon configuration(s)\n";
  out << "estimate: peak memory " << std::fixed << std::setprecision(0) << largest.bytes / (1 << 20) << " MiB per sample ("
      << budget / (1 << 20) << " MiB available); about " << per_sample * double(idx.size())
      << " s of multislice for the shard on " << omp_get_max_threads() << " thread(s)\n";
}

}  // namespace

const std::string& builtin_quickstart_scenario() {
  static const std::string text = kQuickstartScenario;
  return text;
}

int cmd_run(const RunCommand& cmd, std::ostream& out, std::ostream& err, const RunScenario& run) {
  try {
    const ScenarioSpec spec = read_run_scenario(cmd);
    check_physics_keys(spec);
    const ScenarioCheck checked = check_scenario_physics(spec);
    for (const std::string& w : checked.warnings) err << "stemtwin run: warning: " << w << "\n";
    if (cmd.threads > 0) omp_set_num_threads(cmd.threads);

    // Everything that can be checked is checked before any work and before the output file
    // is touched: every draw, and the memory of the largest samples against what is free.
    const double budget = cmd.memory_budget_bytes ? double(cmd.memory_budget_bytes) : double(default_memory_budget());
    const MemoryEstimate largest = check_run(spec, cmd.options.shard, std::size_t(std::max(1, omp_get_max_threads())), budget);
    if (cmd.dry_run) {
      print_dry_run(spec, cmd, checked, largest, budget, out);
      return 0;
    }

    RunOptions opt = cmd.options;
    const auto layout_with_warnings = [&](DatasetLayout& l, const ScenarioSpec& sp) {
      complete_layout(l, sp);
      l.warnings = checked.warnings;
    };
    const SimulateSample simulate = [&](const SampledScenario& s, const DatasetLayout& L, const DiffractionRowSink& rows) {
      return simulate_sample(s, spec, L, rows);
    };
    opt.check_resume = [&spec, shard = opt.shard](const std::string& path) { check_resume_fft_plan(spec, path, shard); };
    const RunResult r = run ? run(spec, opt, layout_with_warnings, simulate, out)
                            : run_scenario(spec, opt, layout_with_warnings, simulate, out,
                                           cmd.series_reuse ? series_sample_loop(spec) : SampleLoop{});
    out << "wrote " << r.written << " sample(s) to " << r.path << " (" << r.complete << " of " << r.shard_total
        << " complete)\n";
    if (!opt.preview.empty() && !r.interrupted) out << "preview: " << opt.preview << "\n";
    if (r.interrupted) return 130;  // the runner said what was kept and how to continue
    return 0;
  } catch (const std::exception& e) {
    err << ("stemtwin run: " + std::string(e.what()) + "\n");  // one write: ranks share stderr
    return 1;
  }
}

}  // namespace stemtwin
