// Frozen-phonon convergence (issue #12): the mean HAADF of a probe on the columns of SrTiO3
// [001] and its standard error across configurations, for 1, 2, 4, … 32 configurations, next
// to the absorptive (local, Einstein-model) prediction from the same Debye–Waller factors
// (absorptive.hpp). Every measurement prints one line:
//   BENCH case=phonon_convergence column=Sr configurations=N haadf=… sem=… sem_pct=… …
//   BENCH case=phonon_absorptive column=Sr haadf=… elastic=… tds=… vs_fp_pct=… …
//
//   bench_phonon [--quick] [--threads N]
//     --quick    2 cells thick, up to 8 configurations (seconds; smoke test)
//     default    4 cells thick (15.6 Å), up to 32 configurations
//     --help     this text
//
// Specimen: 2 × 2 cells of SrTiO3 (a = 3.905 Å) laterally, B = 0.6 (Sr), 0.4 (Ti), 0.7 (O) Å²
// (rms = sqrt(B/8π²) per axis, given explicitly: nothing relies on default vibrations);
// 200 kV, 20 mrad probe, HAADF 70–160 mrad, grid 160 × 160 (0.049 Å, band limit 171 mrad),
// slices a/2. `seconds` on a convergence line is the cost of N configurations (the measured
// time per configuration, potentials and scan, × N); on the absorptive line, the model's time.
// A column's signal is the average over its four copies in the supercell (each has
// its own displacements); the standard error is taken across configurations of that average.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "stemtwin/physics/absorptive.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/phonon.hpp"
#include "stemtwin/physics/engine.hpp"

using namespace stemtwin;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double rms_from_B(double B) { return std::sqrt(B / (8.0 * kPi * kPi)); }

Structure srtio3(int r, int nz) {
  const double a = 3.905;
  Structure s;
  s.cell = {a * r, a * r, a * nz};
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < r; ++j)
      for (int k = 0; k < nz; ++k) {
        const double x = a * i, y = a * j, z = a * k;
        s.atoms.push_back({38, x, y, z, 1.0, rms_from_B(0.6)});
        s.atoms.push_back({22, x + a / 2, y + a / 2, z + a / 2, 1.0, rms_from_B(0.4)});
        s.atoms.push_back({8, x + a / 2, y + a / 2, z, 1.0, rms_from_B(0.7)});
        s.atoms.push_back({8, x + a / 2, y, z + a / 2, 1.0, rms_from_B(0.7)});
        s.atoms.push_back({8, x, y + a / 2, z + a / 2, 1.0, rms_from_B(0.7)});
      }
  return s;
}

void usage() {
  std::printf(
      "bench_phonon: frozen-phonon HAADF convergence on SrTiO3 [001] vs the absorptive model\n"
      "  --quick      2 cells thick, up to 8 configurations (seconds)\n"
      "  --threads N  OpenMP threads (default: all)\n"
      "  --help       this text\n"
      "Prints 'BENCH case=phonon_convergence ...' and 'BENCH case=phonon_absorptive ...' lines.\n");
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int threads = omp_get_max_threads();
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "bench_phonon: unknown argument '%s'\n", argv[i]);
      usage();
      return 2;
    }
  }
  omp_set_num_threads(threads);
  const int cells = quick ? 2 : 4;
  const std::size_t max_conf = quick ? 8 : 32;
  const double a = 3.905;
  const Structure s = srtio3(2, cells);
  const Grid g(s.cell.x, s.cell.y, 160, 160);
  ProbeOptics o;  // 200 kV, 20 mrad, no aberrations
  const AnnularDetector haadf{"haadf", 70, 160};
  StemSettings st;
  st.potential.slice_thickness_A = a / 2;
  st.phonon_configurations = max_conf;
  st.seed = 12;
  struct Column {
    const char* name;
    std::vector<Point2> positions;
  };
  const std::vector<Column> columns = {
      {"Sr", {{0, 0}, {a, 0}, {0, a}, {a, a}}},
      {"TiO", {{a / 2, a / 2}, {1.5 * a, a / 2}, {a / 2, 1.5 * a}, {1.5 * a, 1.5 * a}}},
      {"O", {{a / 2, 0}, {1.5 * a, 0}, {a / 2, a}, {1.5 * a, a}}}};
  std::vector<Point2> all;
  for (const auto& c : columns) all.insert(all.end(), c.positions.begin(), c.positions.end());
  std::printf("# stemtwin phonon benchmark: %d thread(s), SrTiO3 [001] 2x2x%d cells (%.2f A), %zu configurations max\n",
              threads, cells, s.cell.z, max_conf);

  const auto t0 = Clock::now();
  const Fft2 fft(g);
  const auto configs = frozen_phonon_transmissions(s, g, o.energy_eV, st, fft);
  const double t_pot = seconds_since(t0);
  const auto t1 = Clock::now();
  const auto per = scan_multislice_per_configuration(configs, o, all, {haadf}, st, fft);
  const double t_scan = seconds_since(t1);
  const double per_conf_s = (t_pot + t_scan) / double(max_conf);

  const auto t2 = Clock::now();
  const AbsorptiveAdfResult ab = absorptive_adf_signal(s, g, o, all, haadf, st.potential);
  const double t_abs = seconds_since(t2);

  std::size_t first = 0;
  for (const Column& c : columns) {
    std::vector<double> x;
    for (const StemResult& r : per) {
      double m = 0;
      for (std::size_t i = 0; i < c.positions.size(); ++i) m += r.signal("haadf").values[first + i];
      x.push_back(m / double(c.positions.size()));
    }
    MeanSem last{};
    for (std::size_t n = 1; n <= max_conf; n *= 2) {
      const MeanSem m = mean_and_sem(std::vector<double>(x.begin(), x.begin() + long(n)));
      std::printf("BENCH case=phonon_convergence specimen=SrTiO3_001 thickness_A=%.2f column=%s configurations=%zu "
                  "haadf=%.6f sem=%.6f sem_pct=%.2f seconds=%.2f\n",
                  s.cell.z, c.name, n, m.mean, m.sem, 100 * m.sem / m.mean, per_conf_s * double(n));
      last = m;
    }
    double el = 0, tds = 0;
    for (std::size_t i = 0; i < c.positions.size(); ++i) {
      el += ab.elastic[first + i];
      tds += ab.tds[first + i];
    }
    el /= double(c.positions.size());
    tds /= double(c.positions.size());
    std::printf("BENCH case=phonon_absorptive specimen=SrTiO3_001 thickness_A=%.2f column=%s haadf=%.6f elastic=%.6f "
                "tds=%.6f vs_fp_pct=%+.2f fp_sem_pct=%.2f seconds=%.2f\n",
                s.cell.z, c.name, el + tds, el, tds, 100 * ((el + tds) / last.mean - 1), 100 * last.sem / last.mean, t_abs);
    first += c.positions.size();
  }
  return 0;
}
