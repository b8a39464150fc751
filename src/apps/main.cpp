// stemtwin: the command line. Every verb is a thin CLI11 wrapper around a library function
// that returns an exit code (scenario_run.hpp, cli_commands.hpp, evaluate_cli.hpp, serve.hpp).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
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

// Each verb's options live in a struct the verb's callback owns (the App keeps the callbacks,
// so the options outlive parsing); `code` is main's exit code, set by the callback that runs.
#ifdef STEMTWIN_HAVE_MPI
using Mpi = std::optional<MpiSession>;
#else
struct Mpi {};
#endif

void add_run(CLI::App& app, int& code, Mpi& mpi) {
  struct Args {
    RunCommand run;
    std::string shard, output;
    std::size_t samples = 0;
    std::uint64_t seed = 0;
  };
  const auto a = std::make_shared<Args>();
  RunCommand& run = a->run;
  auto* c_run = app.add_subcommand("run", "Sample a scenario and write a labeled HDF5 dataset (no scenario: the built-in quick start)");
  c_run->add_option("scenario", run.scenario, "scenario YAML (default: the built-in quick start)");
  c_run->add_option("-o,--output", a->output, "dataset file (default: the scenario's output.file)");
  c_run->add_option("--samples", a->samples, "samples per sweep point (overrides the scenario)");
  c_run->add_option("--seed", a->seed, "seed (overrides the scenario)");
  c_run->add_option("--threads", run.threads, "OpenMP threads (default: all cores)");
  c_run->add_flag("--resume", run.options.resume, "continue an interrupted file after its last complete sample");
  c_run->add_flag("--force", run.options.force, "overwrite an existing file");
  c_run->add_option("--shard", a->shard, "compute every n-th sample: i/n (0-based i)");
  c_run->add_option("--preview", run.options.preview, "write a contact-sheet PNG at the end");
  c_run->add_flag("--dry-run", run.dry_run, "print the sampled parameters, grid, memory and time estimate; compute nothing");
  c_run->callback([a, c_run, &code, &mpi] {
    RunCommand& run = a->run;
    run.options.output = a->output;
    if (c_run->count("--samples")) run.samples = a->samples;
    if (c_run->count("--seed")) run.seed = a->seed;
    if (!a->shard.empty()) {
      try {
        run.options.shard = parse_shard(a->shard);
      } catch (const std::exception& e) {
        std::cerr << "stemtwin run: --shard " << a->shard << ": " << e.what() << "\n";
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
#else
    (void)mpi;
#endif
    code = cmd_run(run, std::cout, std::cerr);
  });
}

void add_validate(CLI::App& app, int& code) {
  const auto scenario = std::make_shared<std::string>();
  auto* c_val = app.add_subcommand("validate", "Check a scenario file (file:line: key: message on error)");
  c_val->add_option("scenario", *scenario, "scenario YAML")->required();
  c_val->callback([scenario, &code] { code = cmd_validate(*scenario, std::cout, std::cerr); });
}

/// info, preview, show, export, merge: the verbs that read datasets.
void add_dataset_verbs(CLI::App& app, int& code) {
  struct Args {
    std::string dataset;
    std::string png = "preview.png";
    PreviewOptions popt;
    std::string show_png = "sample.png";
    std::size_t show_row = 0;
    PreviewOptions sopt;
    std::string export_to, export_out;
    ExportOptions eopt;
    std::vector<std::string> inputs;
    std::string merged;
    bool merge_force = false;
  };
  const auto a = std::make_shared<Args>();
  auto* c_info = app.add_subcommand("info", "Describe a dataset: layout, counts, parameter ranges");
  c_info->add_option("dataset", a->dataset, "dataset .h5")->required();
  c_info->callback([a, &code] { code = cmd_info(a->dataset, std::cout, std::cerr); });

  auto* c_prev = app.add_subcommand("preview", "Contact sheet: a column per sample, a row per channel, mask and 4D view");
  c_prev->add_option("dataset", a->dataset, "dataset .h5")->required();
  c_prev->add_option("-o,--output", a->png, "PNG file");
  c_prev->add_option("-n,--samples", a->popt.samples, "samples to show");
  c_prev->add_option("--tile", a->popt.tile, "tile edge in pixels (at least 128)");
  c_prev->add_flag("--clean", a->popt.clean, "show the clean signals instead of the acquired images");
  c_prev->add_flag("--markers", a->popt.markers, "mark the labelled columns (small dots coloured by species)");
  c_prev->callback([a, &code] { code = cmd_preview(a->dataset, a->png, a->popt, std::cout, std::cerr); });

  auto* c_show = app.add_subcommand("show", "One sample with all its channels, labels and parameters in one PNG");
  c_show->add_option("dataset", a->dataset, "dataset .h5")->required();
  c_show->add_option("--sample", a->show_row, "row of the file (0 = its first sample)");
  c_show->add_option("-o,--output", a->show_png, "PNG file");
  c_show->add_option("--tile", a->sopt.tile, "tile edge in pixels (at least 128)");
  c_show->add_flag("--markers", a->sopt.markers, "mark the labelled columns");
  c_show->callback([a, &code] { code = cmd_show(a->dataset, a->show_row, a->show_png, a->sopt, std::cout, std::cerr); });

  auto* c_exp = app.add_subcommand("export", "Write a dataset for HyperSpy (hspy), py4DSTEM (emd), pycroscopy/DTMicroscope (nsid) or zarr");
  c_exp->add_option("dataset", a->dataset, "dataset .h5")->required();
  c_exp->add_option("--to", a->export_to, "hspy, emd, nsid or zarr")->required();
  c_exp->add_option("-o,--output", a->export_out, "output file (zarr: directory)")->required();
  c_exp->add_option("--channel", a->eopt.channels, "array to export (name or path; repeatable; default: all)");
  c_exp->add_option("--sample", a->eopt.sample, "nsid: the row of the file to export");
  c_exp->add_flag("--force", a->eopt.force, "overwrite an existing output");
  c_exp->callback([a, &code] {
    try {
      a->eopt.format = parse_export_format(a->export_to);
    } catch (const std::exception& e) {
      std::cerr << "stemtwin export: " << e.what() << "\n";
      code = 1;
      return;
    }
    code = cmd_export(a->dataset, a->export_out, a->eopt, std::cout, std::cerr);
  });

  auto* c_merge = app.add_subcommand("merge", "Join shard files into one dataset in sample order");
  c_merge->add_option("inputs", a->inputs, "shard files")->required();
  c_merge->add_option("-o,--output", a->merged, "merged file")->required();
  c_merge->add_flag("--force", a->merge_force, "overwrite an existing output");
  c_merge->callback([a, &code] { code = cmd_merge(a->inputs, a->merged, a->merge_force, std::cout, std::cerr); });
}

/// evaluate and baseline.
void add_evaluate_verbs(CLI::App& app, int& code) {
  struct Args {
    std::string dataset, predictions, report_dir = "report", unit = "A";
    double tolerance = 0.5;
    std::size_t bins = 4;
    std::vector<std::string> edges, params;
    std::string baseline_out = "predictions.h5", detector = "haadf";
    double sigma_px = 1.0, threshold = 0.5;
    int min_distance = 3;
    bool use_clean = false;
  };
  const auto a = std::make_shared<Args>();
  auto* c_eval = app.add_subcommand("evaluate", "Score a model's predictions against a dataset's labels");
  c_eval->add_option("dataset", a->dataset, "dataset .h5")->required();
  c_eval->add_option("predictions", a->predictions, "predictions .h5 or .csv (docs/evaluate.md)")->required();
  c_eval->add_option("-o,--output", a->report_dir, "report directory (JSON, CSV, PNG plots)");
  c_eval->add_option("--tolerance", a->tolerance, "column matching distance");
  c_eval->add_option("--unit", a->unit, "unit of the tolerance: A or px");
  c_eval->add_option("--bins", a->bins, "quantile bins per parameter");
  c_eval->add_option("--edges", a->edges, "bin edges for a parameter: name=e0,e1,...");
  c_eval->add_option("--params", a->params, "parameters to break down by (default: all)");
  c_eval->callback([a, &code] {
    code = cmd_evaluate(a->dataset, a->predictions, a->report_dir, a->tolerance, a->unit, a->bins, a->edges, a->params, std::cout,
                        std::cerr);
  });

  auto* c_base = app.add_subcommand("baseline", "Predictions from a simple non-learned method (peak finding, thresholds)");
  c_base->add_option("dataset", a->dataset, "dataset .h5")->required();
  c_base->add_option("-o,--output", a->baseline_out, "predictions file");
  c_base->add_option("--detector", a->detector, "image channel to find columns in");
  c_base->add_option("--sigma", a->sigma_px, "Gaussian smoothing, pixels");
  c_base->add_option("--threshold", a->threshold, "peak threshold, fraction of the image range");
  c_base->add_option("--min-distance", a->min_distance, "minimum peak distance, pixels");
  c_base->add_flag("--clean", a->use_clean, "use the clean signals");
  c_base->callback([a, &code] {
    code = cmd_baseline(a->dataset, a->baseline_out, a->detector, a->sigma_px, a->threshold, a->min_distance, a->use_clean,
                        std::cout, std::cerr);
  });
}

void add_serve(CLI::App& app, int& code) {
  const auto serve_ptr = std::make_shared<ServeOptions>();
  ServeOptions& serve = *serve_ptr;
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
  c_serve->callback([serve_ptr, &code] { code = cmd_serve(*serve_ptr, std::cerr); });
}

/// bench: runs bench_engine from stemtwin's own directory.
void add_bench(CLI::App& app, int& code, const char* argv0) {
  const auto bench_args = std::make_shared<std::vector<std::string>>();
  auto* c_bench = app.add_subcommand("bench", "Run the engine benchmark (bench_engine) on this machine");
  c_bench->add_option("args", *bench_args, "arguments for bench_engine (--quick, --full, --threads N, --measure)");
  c_bench->allow_extras();
  c_bench->callback([bench_args, c_bench, argv0, &code] {
    std::string cmd = self_dir(argv0) + "/bench_engine";
    for (const auto& a : *bench_args) cmd += " '" + a + "'";
    for (const auto& a : c_bench->remaining()) cmd += " '" + a + "'";
    if (!std::filesystem::exists(self_dir(argv0) + "/bench_engine")) {
      std::cerr << "stemtwin bench: bench_engine not found next to stemtwin (configure with -DSTEMTWIN_BENCH=ON)\n";
      code = 1;
      return;
    }
    code = std::system(cmd.c_str()) == 0 ? 0 : 1;
  });
}

}  // namespace

int main(int argc, char** argv) {
  Mpi mpi;
#ifdef STEMTWIN_HAVE_MPI
  // Started by mpirun/srun with more than one rank: `run` spreads its samples over the ranks.
  if (launched_world_size() > 1) mpi.emplace(argc, argv);
#endif
  CLI::App app{"stemtwin " STEMTWIN_VERSION ": a digital twin of a scanning transmission electron microscope"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("stemtwin ") + STEMTWIN_VERSION);
  int code = 0;
  add_run(app, code, mpi);
  add_validate(app, code);
  add_dataset_verbs(app, code);
  add_evaluate_verbs(app, code);
  add_serve(app, code);
  add_bench(app, code, argv[0]);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return code;
}
