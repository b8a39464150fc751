// stemtwin: the command line. Every verb is a thin CLI11 wrapper around a library function
// that returns an exit code (scenario_run.hpp, cli_commands.hpp, evaluate_cli.hpp, serve.hpp).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/apps/cli_commands.hpp"
#include "stemtwin/apps/evaluate_cli.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/session/serve.hpp"
#ifdef STEMTWIN_HAVE_MPI
#include "stemtwin/mpi/mpi_run.hpp"
#endif

using namespace stemtwin;

namespace {
std::string self_dir(const char* argv0) {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (ec ? std::filesystem::absolute(argv0) : p).parent_path().string();
}
}  // namespace

int main(int argc, char** argv) {
#ifdef STEMTWIN_HAVE_MPI
  // Started by mpirun/srun with more than one rank: `run` spreads its samples over the ranks.
  std::optional<MpiSession> mpi;
  if (launched_world_size() > 1) mpi.emplace(argc, argv);
#endif
  CLI::App app{"stemtwin " STEMTWIN_VERSION ": a digital twin of a scanning transmission electron microscope"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("stemtwin ") + STEMTWIN_VERSION);
  int code = 0;

  // run
  RunCommand run;
  std::string shard, output;
  std::size_t samples = 0;
  std::uint64_t seed = 0;
  auto* c_run = app.add_subcommand("run", "Sample a scenario and write a labeled HDF5 dataset (no scenario: the built-in quick start)");
  c_run->add_option("scenario", run.scenario, "scenario YAML (default: the built-in quick start)");
  c_run->add_option("-o,--output", output, "dataset file (default: the scenario's output.file)");
  c_run->add_option("--samples", samples, "samples per sweep point (overrides the scenario)");
  c_run->add_option("--seed", seed, "seed (overrides the scenario)");
  c_run->add_option("--threads", run.threads, "OpenMP threads (default: all cores)");
  c_run->add_flag("--resume", run.options.resume, "continue an interrupted file after its last complete sample");
  c_run->add_flag("--force", run.options.force, "overwrite an existing file");
  c_run->add_option("--shard", shard, "compute every n-th sample: i/n (0-based i)");
  c_run->add_option("--preview", run.options.preview, "write a contact-sheet PNG at the end");
  c_run->add_flag("--dry-run", run.dry_run, "print the sampled parameters, grid, memory and time estimate; compute nothing");
  c_run->callback([&] {
    run.options.output = output;
    if (c_run->count("--samples")) run.samples = samples;
    if (c_run->count("--seed")) run.seed = seed;
    if (!shard.empty()) {
      try {
        run.options.shard = parse_shard(shard);
      } catch (const std::exception& e) {
        std::cerr << "stemtwin run: --shard " << shard << ": " << e.what() << "\n";
        code = 1;
        return;
      }
    }
    run.options.progress = true;
#ifdef STEMTWIN_HAVE_MPI
    if (mpi && mpi->size() > 1) {
      std::ostream quiet(nullptr);  // ranks other than 0 report only errors
      code = cmd_run(run, mpi->rank() == 0 ? std::cout : quiet, std::cerr,
                     [&](const ScenarioSpec& spec, const RunOptions& o, const CompleteLayout& cl, const SimulateSample& sim,
                         std::ostream& log) { return run_scenario_mpi(*mpi, spec, o, cl, sim, log); });
      return;
    }
#endif
    code = cmd_run(run, std::cout, std::cerr);
  });

  // validate
  std::string scenario;
  auto* c_val = app.add_subcommand("validate", "Check a scenario file (file:line: key: message on error)");
  c_val->add_option("scenario", scenario, "scenario YAML")->required();
  c_val->callback([&] { code = cmd_validate(scenario, std::cout, std::cerr); });

  // info / preview / merge
  std::string dataset;
  auto* c_info = app.add_subcommand("info", "Describe a dataset: layout, counts, parameter ranges");
  c_info->add_option("dataset", dataset, "dataset .h5")->required();
  c_info->callback([&] { code = cmd_info(dataset, std::cout, std::cerr); });

  std::string png = "preview.png";
  PreviewOptions popt;
  auto* c_prev = app.add_subcommand("preview", "Contact sheet: a column per sample, a row per channel, mask and 4D view");
  c_prev->add_option("dataset", dataset, "dataset .h5")->required();
  c_prev->add_option("-o,--output", png, "PNG file");
  c_prev->add_option("-n,--samples", popt.samples, "samples to show");
  c_prev->add_option("--tile", popt.tile, "tile edge in pixels (at least 128)");
  c_prev->add_flag("--clean", popt.clean, "show the clean signals instead of the acquired images");
  c_prev->add_flag("--markers", popt.markers, "mark the labelled columns (small dots coloured by species)");
  c_prev->callback([&] { code = cmd_preview(dataset, png, popt, std::cout, std::cerr); });

  std::string show_png = "sample.png";
  std::size_t show_row = 0;
  PreviewOptions sopt;
  auto* c_show = app.add_subcommand("show", "One sample with all its channels, labels and parameters in one PNG");
  c_show->add_option("dataset", dataset, "dataset .h5")->required();
  c_show->add_option("--sample", show_row, "row of the file (0 = its first sample)");
  c_show->add_option("-o,--output", show_png, "PNG file");
  c_show->add_option("--tile", sopt.tile, "tile edge in pixels (at least 128)");
  c_show->add_flag("--markers", sopt.markers, "mark the labelled columns");
  c_show->callback([&] { code = cmd_show(dataset, show_row, show_png, sopt, std::cout, std::cerr); });

  std::string export_to, export_out;
  ExportOptions eopt;
  auto* c_exp = app.add_subcommand("export", "Write a dataset for HyperSpy (hspy), py4DSTEM (emd), pycroscopy/DTMicroscope (nsid) or zarr");
  c_exp->add_option("dataset", dataset, "dataset .h5")->required();
  c_exp->add_option("--to", export_to, "hspy, emd, nsid or zarr")->required();
  c_exp->add_option("-o,--output", export_out, "output file (zarr: directory)")->required();
  c_exp->add_option("--channel", eopt.channels, "array to export (name or path; repeatable; default: all)");
  c_exp->add_option("--sample", eopt.sample, "nsid: the row of the file to export");
  c_exp->add_flag("--force", eopt.force, "overwrite an existing output");
  c_exp->callback([&] {
    try {
      eopt.format = parse_export_format(export_to);
    } catch (const std::exception& e) {
      std::cerr << "stemtwin export: " << e.what() << "\n";
      code = 1;
      return;
    }
    code = cmd_export(dataset, export_out, eopt, std::cout, std::cerr);
  });

  std::vector<std::string> inputs;
  std::string merged;
  bool merge_force = false;
  auto* c_merge = app.add_subcommand("merge", "Join shard files into one dataset in sample order");
  c_merge->add_option("inputs", inputs, "shard files")->required();
  c_merge->add_option("-o,--output", merged, "merged file")->required();
  c_merge->add_flag("--force", merge_force, "overwrite an existing output");
  c_merge->callback([&] { code = cmd_merge(inputs, merged, merge_force, std::cout, std::cerr); });

  // evaluate / baseline
  std::string predictions, report_dir = "report", unit = "A";
  double tolerance = 0.5;
  std::size_t bins = 4;
  std::vector<std::string> edges, params;
  auto* c_eval = app.add_subcommand("evaluate", "Score a model's predictions against a dataset's labels");
  c_eval->add_option("dataset", dataset, "dataset .h5")->required();
  c_eval->add_option("predictions", predictions, "predictions .h5 or .csv (docs/evaluate.md)")->required();
  c_eval->add_option("-o,--output", report_dir, "report directory (JSON, CSV, PNG plots)");
  c_eval->add_option("--tolerance", tolerance, "column matching distance");
  c_eval->add_option("--unit", unit, "unit of the tolerance: A or px");
  c_eval->add_option("--bins", bins, "quantile bins per parameter");
  c_eval->add_option("--edges", edges, "bin edges for a parameter: name=e0,e1,...");
  c_eval->add_option("--params", params, "parameters to break down by (default: all)");
  c_eval->callback([&] {
    code = cmd_evaluate(dataset, predictions, report_dir, tolerance, unit, bins, edges, params, std::cout, std::cerr);
  });

  std::string baseline_out = "predictions.h5", detector = "haadf";
  double sigma_px = 1.0, threshold = 0.5;
  int min_distance = 3;
  bool use_clean = false;
  auto* c_base = app.add_subcommand("baseline", "Predictions from a simple non-learned method (peak finding, thresholds)");
  c_base->add_option("dataset", dataset, "dataset .h5")->required();
  c_base->add_option("-o,--output", baseline_out, "predictions file");
  c_base->add_option("--detector", detector, "image channel to find columns in");
  c_base->add_option("--sigma", sigma_px, "Gaussian smoothing, pixels");
  c_base->add_option("--threshold", threshold, "peak threshold, fraction of the image range");
  c_base->add_option("--min-distance", min_distance, "minimum peak distance, pixels");
  c_base->add_flag("--clean", use_clean, "use the clean signals");
  c_base->callback([&] {
    code = cmd_baseline(dataset, baseline_out, detector, sigma_px, threshold, min_distance, use_clean, std::cout, std::cerr);
  });

  // serve
  ServeOptions serve;
  auto* c_serve = app.add_subcommand("serve", "Serve a microscope session over TCP (JSON-RPC 2.0 in netstrings; docs/server.md)");
  c_serve->add_option("--host", serve.host, "address to bind (default 127.0.0.1: this machine only)");
  c_serve->add_option("--port", serve.port, "TCP port (default 9093, the DTMicroscope client's)");
  c_serve->add_option("--structure", serve.structure, "structure file to put in the microscope");
  c_serve->add_option("--scenario", serve.scenario, "scenario YAML: its sample 0 sets up the session");
  c_serve->add_option("--specimen", serve.specimen,
                      "without --structure/--scenario: world (default; micrometres of lamella, film, particles; docs/specimens.md) "
                      "or crystal (the small periodic SrTiO3 cell)");
  c_serve->add_option("--world-thickness", serve.world.thickness_A, "the world's lamella thickness, Å (default 100)");
  c_serve->add_option("--sampling", serve.sampling_A, "simulation sampling, Å");
  c_serve->add_option("--method", serve.method, "windowed (default), auto, multislice or prism");
  c_serve->add_option("--error-budget", serve.error_budget,
                      "method auto's accuracy against multislice: MEAN[,CORRELATION] (default 0.01,0.995)");
  c_serve->add_option("--prism-interpolation", serve.prism_interpolation, "PRISM interpolation factor");
  c_serve->add_option("--seed", serve.seed, "session seed");
  c_serve->add_flag("--ideal-column", serve.ideal_column,
                    "no residual aberrations (default: the seeded residuals of a tuned corrector; docs/corrector.md)");
  c_serve->add_option("--max-pixels", serve.limits.max_scan_pixels, "largest scan one request may ask for");
  c_serve->add_option("--max-connections", serve.max_connections, "simultaneous clients");
  c_serve->add_option("--timeout", serve.read_timeout_s, "seconds a connection may go without delivering a complete request (default 5)");
  c_serve->callback([&] { code = cmd_serve(serve, std::cerr); });

  // bench
  std::vector<std::string> bench_args;
  auto* c_bench = app.add_subcommand("bench", "Run the engine benchmark (bench_engine) on this machine");
  c_bench->add_option("args", bench_args, "arguments for bench_engine (--quick, --full, --threads N, --measure)");
  c_bench->allow_extras();
  c_bench->callback([&] {
    std::string cmd = self_dir(argv[0]) + "/bench_engine";
    for (const auto& a : bench_args) cmd += " '" + a + "'";
    for (const auto& a : c_bench->remaining()) cmd += " '" + a + "'";
    if (!std::filesystem::exists(self_dir(argv[0]) + "/bench_engine")) {
      std::cerr << "stemtwin bench: bench_engine not found next to stemtwin (configure with -DSTEMTWIN_BENCH=ON)\n";
      code = 1;
      return;
    }
    code = std::system(cmd.c_str()) == 0 ? 0 : 1;
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return code;
}
