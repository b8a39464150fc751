// Dataset throughput (issues #5, #14): a scenario (default: the built-in quick start, phonons
// and noise on) written to a temporary file with its own method (the default: auto); prints
// samples per minute, the method each sample used (/params/method) and the peak memory.
//   bench_dataset [--threads N] [--samples N] [--scenario FILE] [--max-samples N]
// --samples sets the scenario's `samples` (before sweeps multiply it); --max-samples stops
// the run after that many samples (large scenarios: throughput from the first few).
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

using namespace stemtwin;

int main(int argc, char** argv) {
  constexpr const char* kUsage =
      "usage: bench_dataset [--threads N] [--samples N] [--scenario FILE] [--max-samples N]\n"
      "  runs a scenario (default: the built-in quick start) into a temporary file; prints one BENCH line\n"
      "  (samples per minute, methods used, peak memory)\n";
  RunCommand c;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) c.threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--samples") && i + 1 < argc) c.samples = std::size_t(std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--scenario") && i + 1 < argc) c.scenario = argv[++i];
    else if (!std::strcmp(argv[i], "--max-samples") && i + 1 < argc) c.options.max_samples = std::size_t(std::atoll(argv[++i]));
    else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "bench_dataset: unknown argument '%s'\n%s", argv[i], kUsage);
      return 2;
    }
  }
  const auto path = std::filesystem::temp_directory_path() / ("stemtwin_bench_dataset_" + std::to_string(::getpid()) + ".h5");
  c.options.output = path.string();
  c.options.force = true;
  c.options.progress = false;
  c.options.handle_sigint = false;
  std::ostringstream out, err;
  const auto t0 = std::chrono::steady_clock::now();
  const int code = cmd_run(c, out, err);
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (code != 0) {
    std::filesystem::remove(path);
    std::fprintf(stderr, "%s", err.str().c_str());
    return 1;
  }
  std::size_t n = 0;
  std::map<std::string, std::size_t> methods;
  std::string asked = "?";
  {
    const DatasetReader r(path.string());
    n = r.size();
    const std::vector<double> m = r.param("method");
    const char* names[] = {"multislice", "prism", "windowed"};
    for (double v : m) ++methods[std::isfinite(v) && v >= 0 && v < 3 ? names[int(v)] : "?"];
  }
  {
    const ScenarioSpec spec = c.scenario.empty() ? parse_scenario_text(builtin_quickstart_scenario(), "quickstart")
                                                 : parse_scenario_file(c.scenario);
    asked = spec.simulation.method;
  }
  std::filesystem::remove(path);
  std::string used;
  for (const auto& [k, v] : methods) used += (used.empty() ? "" : ",") + k + ":" + std::to_string(v);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const std::string name = c.scenario.empty() ? "quickstart" : std::filesystem::path(c.scenario).stem().string();
  std::printf("BENCH case=dataset_%s method=%s used=%s threads=%d samples=%zu seconds=%.3f samples_per_minute=%.2f "
              "peak_rss_mib=%.0f\n",
              name.c_str(), asked.c_str(), used.c_str(), c.threads ? c.threads : omp_get_max_threads(), n, t, 60.0 * double(n) / t,
              double(ru.ru_maxrss) / 1024.0);
  return 0;
}
