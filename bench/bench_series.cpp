// Defocus-series reuse in the dataset runner (issue #14, series_reuse.hpp): a PRISM scenario
// whose sweep varies only the defocus, run sample by sample and with one S-matrix per
// series, in one process; prints samples per minute of both, their ratio, and whether the two
// files hold the same bytes (every image, clean image and parameter).
//   bench_series [--threads N] [--defocus N] [--cells N] [--pixels N]
// Default: SrTiO3 [001] 6×6×10 cells (23.4 Å × 23.4 Å × 3.9 nm), PRISM f = 2, 0.1 Å sampling,
// 16×16 positions, 8 defocus values from −60 to +60 Å.
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

using namespace stemtwin;

int main(int argc, char** argv) {
  constexpr const char* kUsage =
      "usage: bench_series [--threads N] [--defocus N] [--cells N] [--pixels N]\n"
      "  a PRISM defocus sweep (SrTiO3, N×N×10 cells) run sample by sample and with one S-matrix per series;\n"
      "  prints BENCH lines (samples per minute of both, ratio, same bytes)\n";
  int threads = 0, ndf = 8, cells = 6, pixels = 16;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--defocus") && i + 1 < argc) ndf = std::max(2, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--cells") && i + 1 < argc) cells = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--pixels") && i + 1 < argc) pixels = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "bench_series: unknown argument '%s'\n%s", argv[i], kUsage);
      return 2;
    }
  }
  const auto dir = std::filesystem::temp_directory_path() / ("stemtwin_bench_series_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ostringstream sweep;
  for (int k = 0; k < ndf; ++k) sweep << (k ? ", " : "") << -60.0 + 120.0 * k / (ndf - 1);
  const double fov = 3.905 * cells;
  std::ostringstream y;
  y << "name: series_bench\nseed: 1\nsamples: 1\nspecimen:\n  builder: {type: perovskite, a: 3.905}\n  repeat: [" << cells
    << ", " << cells << ", 10]\nmicroscope:\n  energy: 200e3\n  convergence: 20\n  current: 20\n"
    << "  aberrations: {defocus: {sweep: [" << sweep.str() << "]}}\n"
    << "scan: {start: [0, 0], fov: [" << fov << ", " << fov << "], pixels: [" << pixels << ", " << pixels << "], dwell: 2}\n"
    << "detectors:\n  - {name: haadf, type: annular, inner: 70, outer: 200}\n  - {name: bf, type: annular, inner: 0, outer: 10}\n"
    << "simulation: {sampling: 0.1, slice_thickness: 1.9525, method: prism, interpolation: 2}\n"
    << "output: {file: series_bench.h5}\n";
  const std::string yaml = (dir / "series.yaml").string();
  std::ofstream(yaml) << y.str();

  double seconds[2] = {0, 0};
  std::string files[2];
  for (int reuse = 0; reuse < 2; ++reuse) {
    RunCommand c;
    c.scenario = yaml;
    c.threads = threads;
    c.series_reuse = reuse == 1;
    files[reuse] = (dir / (reuse ? "reused.h5" : "one_by_one.h5")).string();
    c.options.output = files[reuse];
    c.options.force = true;
    c.options.progress = false;
    c.options.handle_sigint = false;
    std::ostringstream out, err;
    const auto t0 = std::chrono::steady_clock::now();
    if (cmd_run(c, out, err) != 0) {
      std::fprintf(stderr, "%s", err.str().c_str());
      std::filesystem::remove_all(dir);
      return 1;
    }
    seconds[reuse] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  bool same = true;
  {
    const DatasetReader a(files[0]), b(files[1]);
    same = a.size() == b.size();
    for (std::size_t i = 0; same && i < a.size(); ++i)
      for (const std::string& ch : a.detectors()) same = same && a.clean(ch, i).data == b.clean(ch, i).data &&
                                                        a.image(ch, i).data == b.image(ch, i).data;
  }
  std::filesystem::remove_all(dir);
  const int T = threads ? threads : omp_get_max_threads();
  for (int reuse = 0; reuse < 2; ++reuse)
    std::printf("BENCH case=series_defocus reuse=%d cells=%dx%dx10 positions=%d samples=%d threads=%d seconds=%.3f "
                "samples_per_minute=%.2f\n",
                reuse, cells, cells, pixels * pixels, ndf, T, seconds[reuse], 60.0 * ndf / seconds[reuse]);
  std::printf("BENCH case=series_defocus_speedup value=%.2f same_bytes=%d\n", seconds[0] / seconds[1], same ? 1 : 0);
  return same ? 0 : 1;
}
