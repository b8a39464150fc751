// Engine benchmarks (issue #5): the bare-FFTW floor, multislice, PRISM at f = 1, 2, 4, 8, a
// 4D-STEM case with peak memory, potential building, and thread scaling. Every measurement
// prints one line:  BENCH case=... method=... key=value ...
//
//   bench_engine [--quick|--full] [--threads N] [--measure|--estimate]
//     --quick    small cases only (seconds; used to smoke-test the program)
//     --full     also PRISM f = 1, 2 on the 8×8×10 cell (long: thousands of plane waves)
//     --only S   one section: 4d, multislice, passes, prism, prism_small, potential
//     --measure  fresh FFTW_MEASURE plans for engine and floor alike
//     --estimate FFTW_ESTIMATE plans for engine and floor alike
//     --no-floor skip the floor loops (to profile the engine alone: perf record ... --only multislice --no-floor)
//                (default: FftPlanning::Wisdom, the engine's default: measured plans stored
//                in the wisdom file, STEMTWIN_FFTW_WISDOM or the user cache)
//
// The multislice section also times a bare floor with fresh FFTW_MEASURE plans (the real
// limit), planned before anything reads wisdom. The positions run in 4 rounds; each round
// times the engine and both floors in alternating order, so that other processes' load falls
// on all alike. ratio_measure = engine / floor_measure_seconds over all rounds;
// ratio_measure_rounds = its range over the rounds (a measure of the noise).
#include <fftw3.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/engine.hpp"
#include "../src/physics/recorder.hpp"  // detail::cmul_inplace, cmul_band_rows (the engine's passes)

using namespace stemtwin;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

Structure srtio3(int nx, int ny, int nz, double rms = 0) {
  PerovskiteParams p;  // SrTiO3, a = 3.905 Å
  p.repeats = {nx, ny, nz};
  Structure s = build_perovskite(p, 0).structure;
  for (Atom& a : s.atoms) a.rms = rms;
  return s;
}

/// A square FFT-friendly grid at ≈ 0.05 Å whose point count is a multiple of `multiple`
/// (PRISM needs divisibility by its interpolation factor).
Grid prism_grid(const Structure& s, std::size_t multiple) {
  std::size_t n = std::size_t(std::ceil(s.cell.x / 0.05));
  while (n % multiple != 0 || fft_friendly_size(n) != n) ++n;
  return Grid(s.cell.x, s.cell.y, n, n);
}

std::vector<Point2> raster(double x0, double y0, double w, double h, std::size_t nx, std::size_t ny) {
  return ScanGrid::from_fov({x0, y0}, w, h, nx, ny).positions();
}

/// The floor: exactly the FFTs multislice needs (2 per slice per position) on the same grid,
/// threads over positions, nothing else.
double fft_floor(const Fft2& fft, const Grid& g, std::size_t slices, std::size_t positions) {
  const auto t0 = Clock::now();
#pragma omp parallel
  {
    ComplexBuffer psi(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) psi[i] = cfloat(1e-3f * float(i % 7), 0.0f);
#pragma omp for schedule(dynamic)
    for (long p = 0; p < long(positions); ++p)
      for (std::size_t s = 0; s < slices; ++s) {
        fft.forward(psi.data());
        fft.backward(psi.data());
        psi[0] *= 1e-6f;  // keep values bounded; negligible work
      }
  }
  return seconds_since(t0);
}

}  // namespace

constexpr const char* kUsage =
    "usage: bench_engine [--quick|--full] [--only SECTION] [--threads N] [--measure]\n"
    "  --quick      small cases only (seconds)\n"
    "  --full       also PRISM f = 1, 2 on the 8x8x10 cell (long)\n"
    "  --only S     one section: 4d, multislice, passes, prism, prism_small, potential\n"
    "  --threads N  OpenMP threads (default: all)\n"
    "  --measure    FFTW_MEASURE plans for engine and floor alike\n"
    "Prints one 'BENCH case=... key=value ...' line per measurement.\n";

int main(int argc, char** argv) {
  bool quick = false, full = false, no_floor = false;
  std::string only;  // run one section: 4d, multislice, prism, prism_small, potential
  FftPlanning planning = FftPlanning::Wisdom;
  int threads = omp_get_max_threads();
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--full")) full = true;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--measure")) planning = FftPlanning::Measure;
    else if (!std::strcmp(argv[i], "--estimate")) planning = FftPlanning::Estimate;
    else if (!std::strcmp(argv[i], "--no-floor")) no_floor = true;
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "bench_engine: unknown argument '%s'\n%s", argv[i], kUsage);
      return 2;
    }
  }
  omp_set_num_threads(threads);
  const char* plan_name = planning == FftPlanning::Measure    ? "measure"
                          : planning == FftPlanning::Estimate ? "estimate"
                                                              : "wisdom";
  std::printf("# stemtwin engine benchmark: %d thread(s), FFTW planning %s\n", threads, plan_name);
  const std::vector<Detector> dets = {AnnularDetector{"haadf", 70, 200}, AnnularDetector{"bf", 0, 10}};

  auto want = [&](const char* section) { return only.empty() || only == section; };
  // --- 0. 4D-STEM first, so that peak RSS is its own: 64×64 positions, ~128×128 patterns, streamed
  if (want("4d")) {
    const Structure s = srtio3(4, 4, quick ? 2 : 4);
    const Grid g = Grid::from_sampling(s.cell.x, s.cell.y, 0.05);
    StemSettings st;
    st.potential.slice_thickness_A = 1.9525;
    st.planning = planning;
    st.pattern_block = 64;
    ProbeOptics o;
    // 128 pattern pixels span 128/L in k: max angle = 64/L·λ.
    const double max_mrad = 63.5 / s.cell.x * 0.025079 * 1e3;
    struct Sink : PatternSink {
      double total = 0;
      std::size_t ny = 0, nx = 0;
      void write(const std::string&, std::size_t, std::size_t count, std::size_t py, std::size_t px, const float* p) override {
        ny = py, nx = px;
        for (std::size_t i = 0; i < count * py * px; ++i) total += p[i];
      }
    } sink;
    const std::size_t side = quick ? 16 : 64;
    const auto pos = raster(0, 0, 3.905, 3.905, side, side);
    const auto t0 = Clock::now();
    simulate_stem(s, g, o, pos, {PixelatedDetector{"cam", max_mrad, 1}}, st, &sink);
    const double t = seconds_since(t0);
    std::printf("BENCH case=4dstem_srtio3 method=multislice positions=%zu pattern=%zux%zu seconds=%.3f "
                "positions_per_second=%.1f peak_rss_mib=%.0f full_4d_mib=%.0f\n",
                pos.size(), sink.ny, sink.nx, t, double(pos.size()) / t, peak_rss_mib(),
                double(pos.size() * sink.ny * sink.nx * 4) / (1 << 20));
    std::fflush(stdout);
  }

  // --- 1. SrTiO3 [001] 4×4×20, 0.05 Å, 1.9525 Å slices, 20×20 positions over one cell -------
  if (want("multislice")) {
    const int nz = quick ? 4 : 20;
    const Structure s = srtio3(4, 4, nz);
    const Grid g = Grid::from_sampling(s.cell.x, s.cell.y, 0.05);
    const std::size_t side = quick ? 6 : 20;
    const auto pos = raster(0, 0, 3.905, 3.905, side, side);
    StemSettings st;
    st.potential.slice_thickness_A = 1.9525;
    st.planning = planning;
    ProbeOptics o;
    // The real floor: fresh FFTW_MEASURE plans, made before any wisdom is read in this process.
    const Fft2 fft_measure(g, FftPlanning::Measure);
    const Fft2 fft(g, planning);
    for (const auto& w : fft.warnings()) std::printf("# warning: %s\n", w.c_str());
    auto t0 = Clock::now();
    const auto tr = frozen_phonon_transmissions(s, g, o.energy_eV, st, fft);
    const double t_pot = seconds_since(t0);
    const std::size_t ns = tr.front().num_slices();
    // Rounds over quarters of the positions: even rounds time floor_measure, engine, floor;
    // odd rounds floor, engine, floor_measure; so that other processes' load falls on all alike.
    const std::size_t rounds = quick ? 2 : 4;
    double t = 0, floor = 0, floor_measure = 0, haadf_sum = 0, worst = 0, best = 1e300;
    std::string plan_used;
    for (std::size_t k = 0; k < rounds; ++k) {
      const std::vector<Point2> chunk(pos.begin() + long(k * pos.size() / rounds), pos.begin() + long((k + 1) * pos.size() / rounds));
      const double fm0 = (no_floor || k % 2) ? 0.0 : fft_floor(fft_measure, g, ns, chunk.size());
      const double f0 = (no_floor || !(k % 2)) ? 0.0 : fft_floor(fft, g, ns, chunk.size());
      t0 = Clock::now();
      const StemResult r = scan_multislice(tr, o, chunk, dets, st, fft);
      const double tk = seconds_since(t0);
      const double f1 = (no_floor || k % 2) ? 0.0 : fft_floor(fft, g, ns, chunk.size());
      const double fm1 = (no_floor || !(k % 2)) ? 0.0 : fft_floor(fft_measure, g, ns, chunk.size());
      t += tk, floor += f0 + f1, floor_measure += fm0 + fm1;
      if (!no_floor) worst = std::max(worst, tk / (fm0 + fm1)), best = std::min(best, tk / (fm0 + fm1));
      for (double v : r.signal("haadf").values) haadf_sum += v;
      plan_used = r.fft_plan;
    }
    const std::string name = "srtio3_4x4x" + std::to_string(nz);
    std::printf("BENCH case=%s method=multislice grid=%zux%zu slices=%zu positions=%zu planning=%s fft_plan=%s seconds=%.3f "
                "floor_seconds=%.3f ratio=%.3f floor_measure_seconds=%.3f ratio_measure=%.3f ratio_measure_rounds=%.3f-%.3f "
                "floor_measure_plan=%s positions_per_second=%.1f potential_seconds=%.3f haadf_mean=%.5f\n",
                name.c_str(), g.nx, g.ny, ns, pos.size(), plan_name, plan_used.c_str(), t, floor, t / floor, floor_measure,
                t / floor_measure, no_floor ? 0.0 : best, worst, fft_measure.plan_id().c_str(), double(pos.size()) / t, t_pot,
                haadf_sum / double(pos.size()));
    std::fflush(stdout);
    // Thread scaling on the same case: 1 thread vs the requested count.
    if (threads > 1) {
      omp_set_num_threads(1);
      t0 = Clock::now();
      scan_multislice(tr, o, pos, dets, st, fft);
      const double t1 = seconds_since(t0);
      omp_set_num_threads(threads);
      std::printf("BENCH case=%s method=multislice_scaling threads=%d seconds_1thread=%.3f seconds=%.3f speedup=%.3f\n",
                  name.c_str(), threads, t1, t, t1 / t);
      std::fflush(stdout);
    }
  }

  // --- 1b. The propagator pass alone on 320² (one thread, interleaved rounds): the plain
  // product over every pixel (the engine before) against the band-limit rows (the engine now).
  if (want("passes")) {
    const Grid g(15.62, 15.62, 320, 320);
    const ComplexBuffer prop = fresnel_propagator(g, 0.025079, 1.9525, 1.0f / float(g.size()));
    const detail::BandRows rows = detail::band_rows(prop.data(), g.nx, g.ny);
    ComplexBuffer psi(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) psi[i] = cfloat(std::cos(0.1f * float(i % 97)), std::sin(0.1f * float(i % 89)));
    const std::size_t reps = quick ? 200 : 3000;
    double t_full = 0, t_band = 0;
    for (int round = 0; round < 4; ++round) {
      auto t0 = Clock::now();
      for (std::size_t r = 0; r < reps; ++r) detail::cmul_inplace(psi.data(), prop.data(), g.size());
      t_full += seconds_since(t0);
      t0 = Clock::now();
      for (std::size_t r = 0; r < reps; ++r) detail::cmul_band_rows(psi.data(), prop.data(), rows);
      t_band += seconds_since(t0);
      for (std::size_t i = 0; i < g.size(); ++i) psi[i] = cfloat(std::cos(0.1f * float(i % 97)), std::sin(0.1f * float(i % 89)));
    }
    const double n = 4.0 * double(reps);
    std::printf("BENCH case=propagator_pass grid=320x320 full_us=%.2f band_rows_us=%.2f ratio=%.3f\n", 1e6 * t_full / n,
                1e6 * t_band / n, t_band / t_full);
    std::fflush(stdout);
  }

  // --- 2. PRISM vs multislice: SrTiO3 8×8×10, scans over 2×2 cells and ≥ 4096 positions -------
  if (want("prism")) {
    const int n = quick ? 4 : 8, nz = quick ? 2 : 10;
    const Structure s = srtio3(n, n, nz);
    const Grid g = prism_grid(s, 16);  // f up to 8, even windows
    StemSettings st;
    st.potential.slice_thickness_A = 1.9525;
    st.planning = planning;
    ProbeOptics o;
    const Fft2 fft(g, planning);
    const auto tr = frozen_phonon_transmissions(s, g, o.energy_eV, st, fft);
    const std::size_t small_side = quick ? 8 : 16, big_side = quick ? 16 : 64;
    const auto small = raster(2 * 3.905, 2 * 3.905, 2 * 3.905, 2 * 3.905, small_side, small_side);
    const auto big = raster(2 * 3.905, 2 * 3.905, 2 * 3.905, 2 * 3.905, big_side, big_side);
    auto t0 = Clock::now();
    const StemResult ms = scan_multislice(tr, o, small, dets, st, fft);
    const double t_ms_small = seconds_since(t0);
    const double ms_per_position = t_ms_small / double(small.size());
    auto mean = [](const std::vector<double>& v) { double m = 0; for (double x : v) m += x; return m / double(v.size()); };
    const std::string name = "srtio3_" + std::to_string(n) + "x" + std::to_string(n) + "x" + std::to_string(nz);
    std::printf("BENCH case=%s method=multislice grid=%zux%zu positions=%zu seconds=%.3f positions_per_second=%.2f\n",
                name.c_str(), g.nx, g.ny, small.size(), t_ms_small, 1.0 / ms_per_position);
    std::fflush(stdout);
    for (std::size_t f : {1, 2, 4, 8}) {
      if (quick && f == 8) continue;
      // f = 1 and 2 on the 8×8 cell need 2000 / 500 plane waves (hours of S-matrix work and
      // 6 / 1.6 GB): run them with --full; section 2b measures them on a 4×4 cell.
      if (!quick && !full && f < 4) continue;
      const std::size_t bytes = smatrix_bytes(g, o.energy_eV, o.semiangle_mrad, f, f, 1);
      if (bytes > default_memory_budget()) {
        std::printf("BENCH case=%s method=prism f=%zu skipped=memory smatrix_mib=%.0f\n", name.c_str(), f, double(bytes) / (1 << 20));
        continue;
      }
      t0 = Clock::now();
      const std::vector<SMatrix> S = {build_smatrix(tr.front(), o.semiangle_mrad, f, f, {}, fft)};
      const double t_build = seconds_since(t0);
      t0 = Clock::now();
      const StemResult pr = scan_prism(S, o, small, dets, st);
      const double t_small = seconds_since(t0);
      t0 = Clock::now();
      scan_prism(S, o, big, dets, st);
      const double t_big = seconds_since(t0);
      const double err_h = mean(pr.signal("haadf").values) / mean(ms.signal("haadf").values) - 1;
      const double err_b = mean(pr.signal("bf").values) / mean(ms.signal("bf").values) - 1;
      // Multislice on the big scan is timed on the small one and scaled per position.
      const double ms_big = ms_per_position * double(big.size());
      std::printf("BENCH case=%s method=prism f=%zu beams=%zu smatrix_mib=%.0f build_seconds=%.3f positions=%zu "
                  "seconds=%.3f haadf_error=%.4f bf_error=%.4f big_positions=%zu big_seconds=%.3f "
                  "multislice_big_seconds_scaled=%.1f speedup=%.1f\n",
                  name.c_str(), f, S.front().beams.size(), double(S.front().bytes()) / (1 << 20), t_build, small.size(),
                  t_small, err_h, err_b, big.size(), t_build + t_big, ms_big, ms_big / (t_build + t_big));
      std::fflush(stdout);
    }
  }

  // --- 2b. PRISM f = 1, 2 against multislice on SrTiO3 4×4×4 (f = 1 must equal multislice) ---
  if (!quick && want("prism_small")) {
    const Structure s = srtio3(4, 4, 4);
    const Grid g = prism_grid(s, 4);
    StemSettings st;
    st.potential.slice_thickness_A = 1.9525;
    st.planning = planning;
    ProbeOptics o;
    const Fft2 fft(g, planning);
    const auto tr = frozen_phonon_transmissions(s, g, o.energy_eV, st, fft);
    const auto pos = raster(0, 0, 3.905, 3.905, 8, 8);
    auto t0 = Clock::now();
    const StemResult ms = scan_multislice(tr, o, pos, dets, st, fft);
    const double t_ms = seconds_since(t0);
    auto mean = [](const std::vector<double>& v) { double m = 0; for (double x : v) m += x; return m / double(v.size()); };
    for (std::size_t f : {1, 2}) {
      t0 = Clock::now();
      const std::vector<SMatrix> S = {build_smatrix(tr.front(), o.semiangle_mrad, f, f, {}, fft)};
      const StemResult pr = scan_prism(S, o, pos, dets, st);
      const double t = seconds_since(t0);
      std::printf("BENCH case=srtio3_4x4x4 method=prism f=%zu beams=%zu positions=%zu seconds=%.3f multislice_seconds=%.3f "
                  "haadf_error=%.2e bf_error=%.2e\n",
                  f, S.front().beams.size(), pos.size(), t, t_ms, mean(pr.signal("haadf").values) / mean(ms.signal("haadf").values) - 1,
                  mean(pr.signal("bf").values) / mean(ms.signal("bf").values) - 1);
      std::fflush(stdout);
    }
  }

  // --- 4. Potential building: atoms per second on a large specimen ---------------------------
  if (want("potential")) {
    const Structure s = srtio3(quick ? 8 : 16, quick ? 8 : 16, quick ? 5 : 25);
    const Grid g = Grid::from_sampling(s.cell.x, s.cell.y, 0.05);
    PotentialSettings ps;
    ps.slice_thickness_A = 1.9525;
    const auto t0 = Clock::now();
    const Potential p = build_potential(s, g, ps);
    const double t = seconds_since(t0);
    std::printf("BENCH case=potential_srtio3 atoms=%zu grid=%zux%zu slices=%zu seconds=%.3f atoms_per_second=%.0f\n",
                s.atoms.size(), g.nx, g.ny, p.num_slices(), t, double(s.atoms.size()) / t);
  }
  return 0;
}
