// Dataset throughput (issue #5): the built-in quick-start scenario (phonons and noise on),
// written to a temporary file; prints samples per minute.
//   bench_dataset [--threads N] [--samples N]
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "stemtwin/scenario/scenario_run.hpp"

using namespace stemtwin;

int main(int argc, char** argv) {
  constexpr const char* kUsage =
      "usage: bench_dataset [--threads N] [--samples N]\n"
      "  writes the built-in quick-start scenario to a temporary file; prints one BENCH line (samples per minute)\n";
  RunCommand c;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) c.threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--samples") && i + 1 < argc) c.samples = std::size_t(std::atoi(argv[++i]));
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
  std::filesystem::remove(path);
  if (code != 0) {
    std::fprintf(stderr, "%s", err.str().c_str());
    return 1;
  }
  const std::size_t n = 4 * (c.samples ? *c.samples : 2);  // quick start: 4 thicknesses × samples
  std::printf("BENCH case=dataset_quickstart method=multislice threads=%d samples=%zu seconds=%.3f samples_per_minute=%.1f\n",
              c.threads ? c.threads : omp_get_max_threads(), n, t, 60.0 * double(n) / t);
  return 0;
}
