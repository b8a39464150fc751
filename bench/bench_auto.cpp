// PRISM accuracy and Method::Auto against multislice (issue 14). Prints BENCH lines.
//   bench_auto [--quick] [--only table|auto|film|memory|partitioned] [--no-crop] [--threads N]
// table : PRISM error vs interpolation factor f and window L/f (mean HAADF/BF error and
//         image correlation against multislice on the same positions) on a test-sized and
//         the bench-sized SrTiO3 [001] specimen, with the window model's prediction.
// auto  : Method::Auto vs multislice on SrTiO3 4×4×20 (20×20 positions) and 8×8×10 (32×32
//         positions over the field); multislice time extrapolated from a measured subset of
//         the positions (every k-th), the error measured on that subset.
//         Also a quick-start-sized case (2×2×5 cells, 16×16 positions) where auto's cost model
//         must choose multislice without calibrating (ratio ≈ 1, never a calibration's cost).
//         The multislice reference simulates every position; auto reuses the crystals'
//         translational symmetry (translational_symmetry.hpp: one position per class of
//         positions a lattice vector apart; symmetry_positions= how many it simulated).
// film (only when asked; ~10–20 min): what auto does on an LSFO-like film 101 × 101 Å, 20 nm
//         thick, 0.05 Å (2048², 102 slices), 256×256 positions, step by step and timed: its plan
//         (candidates and costs), the calibration reference (full-field multislice on its 8
//         positions, potential included), the windowed trial on them, and the full scan by the
//         chosen method extrapolated from one tile of the windowed plan. Multislice of the
//         whole scan is extrapolated from the reference's positions (potential + 65536 × time per
//         position). Held-out error: 4 further positions both ways.
// partitioned (only when asked): partitioned PRISM f = 4, 8 on the 8×8×10 case at the
//         model's window: error and time per position against multislice.
// memory: one f = 4 S-matrix of the 8×8×10 specimen, stored cropped (default) or full
//         (--no-crop); peak RSS from /proc/self/status VmHWM — run twice to compare.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "stemtwin/physics/auto_method.hpp"
#include "lsfo_film.hpp"
#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/physics/prism.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/windowed.hpp"

using namespace stemtwin;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double vm_hwm_mib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      double kb;
      in >> kb;
      return kb / 1024.0;
    }
    std::getline(in, key);
  }
  return -1;
}

Structure srtio3(int n, int nz) {
  PerovskiteParams p;
  p.repeats = {n, n, nz};
  return build_perovskite(p, 0).structure;
}

Grid grid_for(const Structure& s, double dx, std::size_t multiple) {
  std::size_t n = std::size_t(std::ceil(s.cell.x / dx));
  while (n % multiple != 0 || fft_friendly_size(n) != n) ++n;
  return Grid(s.cell.x, s.cell.y, n, n);
}

struct Err {
  double haadf = 0, bf = 0, corr_haadf = 1, corr_bf = 1;
};
double mean(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x;
  return m / double(v.size());
}
double corr(const std::vector<double>& x, const std::vector<double>& y) {
  const double mx = mean(x), my = mean(y);
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}
Err compare(const std::vector<double>& th, const std::vector<double>& rh, const std::vector<double>& tb,
            const std::vector<double>& rb) {
  return {mean(th) / mean(rh) - 1, mean(tb) / mean(rb) - 1, corr(th, rh), corr(tb, rb)};
}
std::vector<double> pick(const std::vector<double>& v, const std::vector<std::size_t>& idx) {
  std::vector<double> o;
  for (std::size_t i : idx) o.push_back(v[i]);
  return o;
}
}  // namespace

int main(int argc, char** argv) {
  bool quick = false, crop = true;
  std::string only;
  int threads = omp_get_max_threads();
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--no-crop")) crop = false;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_auto [--quick] [--only table|auto|film|memory|partitioned] [--no-crop] [--threads N]\n");
      return 2;
    }
  }
  omp_set_num_threads(threads);
  auto want = [&](const char* s) { return only.empty() || only == s; };
  std::printf("# bench_auto: %d thread(s)%s\n", threads, quick ? ", quick" : "");
  const std::vector<Detector> dets = {AnnularDetector{"haadf", 70, 200}, AnnularDetector{"bf", 0, 10}};
  ProbeOptics o;  // 200 kV, 20 mrad, no aberrations

  // --- memory first, so that VmHWM is its own --------------------------------------------
  if (only == "memory") {
    const Structure s = srtio3(quick ? 4 : 8, quick ? 2 : 10);
    const Grid g = grid_for(s, 0.05, 16);
    StemSettings st;
    st.potential.slice_thickness_A = 1.9525;
    const Fft2 fft(g);
    const auto tr = frozen_phonon_transmissions(s, g, o.energy_eV, st, fft);
    const double before = vm_hwm_mib();
    const auto t0 = Clock::now();
    const SMatrix S = build_smatrix(tr.front(), o.semiangle_mrad, 4, 4, {}, fft, crop);
    const double tb = seconds_since(t0);
    std::printf("BENCH case=memory_srtio3 grid=%zux%zu f=4 crop=%d stored=%zux%zu beams=%zu smatrix_mib=%.1f "
                "build_seconds=%.2f vmhwm_before_mib=%.1f vmhwm_mib=%.1f\n",
                g.nx, g.ny, int(crop), S.stored.nx, S.stored.ny, S.beams.size(), double(S.bytes()) / (1 << 20), tb, before,
                vm_hwm_mib());
    return 0;
  }

  // --- error vs f and window --------------------------------------------------------------
  if (want("table")) {
    struct Case {
      const char* name;
      int n, nz;
      double dx;
      std::vector<std::size_t> fs;
    };
    std::vector<Case> cases = {{"srtio3_4x4x4", 4, 4, 0.08, {1, 2, 4}}};
    if (!quick) cases.push_back({"srtio3_8x8x10", 8, 10, 0.05, {4, 8}});
    if (!quick) cases.push_back({"srtio3_8x8x10_coarse", 8, 10, 0.08, {2, 4, 8}});
    for (const Case& c : cases) {
      const Structure s = srtio3(c.n, c.nz);
      const Grid g = grid_for(s, c.dx, 8);
      StemSettings st;
      st.potential.slice_thickness_A = 1.9525;
      const Fft2 fft(g);
      const auto tr = frozen_phonon_transmissions(s, g, o.energy_eV, st, fft);
      // 8×8 positions over one unit cell away from the origin: columns and gaps both.
      const double a = 3.905, x0 = a * double(c.n / 2);
      const auto pos = ScanGrid::from_fov({x0, x0}, a, a, 8, 8).positions();
      auto t0 = Clock::now();
      const StemResult ms = scan_multislice(tr, o, pos, dets, st, fft);
      const double t_ms = seconds_since(t0);
      for (std::size_t f : c.fs) {
        t0 = Clock::now();
        const std::vector<SMatrix> S = {build_smatrix(tr.front(), o.semiangle_mrad, f, f, {}, fft)};
        const StemResult pr = scan_prism(S, o, pos, dets, st);
        const double t = seconds_since(t0);
        const Err e = compare(pr.signal("haadf").values, ms.signal("haadf").values, pr.signal("bf").values, ms.signal("bf").values);
        std::printf("BENCH case=%s section=table grid=%zu f=%zu window_A=%.2f window_needed_A=%.2f predicted_f=%zu beams=%zu "
                    "haadf_error=%.4f bf_error=%.4f haadf_corr=%.5f bf_corr=%.5f prism_seconds=%.2f multislice_seconds=%.2f "
                    "positions=%zu\n",
                    c.name, g.nx, f, g.lx / double(f), prism_window_needed_A(o, s.cell.z), predict_interpolation(g, o, s.cell.z),
                    S.front().beams.size(), e.haadf, e.bf, e.corr_haadf, e.corr_bf, t, t_ms, pos.size());
        std::fflush(stdout);
      }
    }
  }

  // --- partitioned PRISM on the bench case: error and time vs f at the model's window ---------
  if (only == "partitioned") {
    const Structure s = srtio3(quick ? 4 : 8, quick ? 4 : 10);
    const Grid g = grid_for(s, 0.05, 8);
    StemSettings st;
    st.potential.slice_thickness_A = 1.9525;
    const Fft2 fft(g);
    const auto tr = frozen_phonon_transmissions(s, g, o.energy_eV, st, fft);
    const double a = 3.905, x0 = a * double((quick ? 4 : 8) / 2);
    const auto pos = ScanGrid::from_fov({x0, x0}, a, a, 8, 8).positions();
    auto t0 = Clock::now();
    const StemResult ms = scan_multislice(tr, o, pos, dets, st, fft);
    const double t_ms = seconds_since(t0);
    for (std::size_t f : {4, 8}) {
      StemSettings ps = st;
      ps.prism_partitioned = true;
      t0 = Clock::now();
      const std::vector<SMatrix> S = {build_smatrix(tr.front(), partitioned_semiangle_mrad(g, o.energy_eV, o.semiangle_mrad, f, f),
                                                    f, f, {}, fft)};
      const double t_build = seconds_since(t0);
      t0 = Clock::now();
      const StemResult pr = scan_prism(S, o, pos, dets, ps);
      const double t_scan = seconds_since(t0);
      const Err e = compare(pr.signal("haadf").values, ms.signal("haadf").values, pr.signal("bf").values, ms.signal("bf").values);
      std::printf("BENCH case=srtio3_%dx%dx%d section=partitioned grid=%zu f=%zu window_A=%.2f beams=%zu haadf_error=%.4f "
                  "bf_error=%.4f haadf_corr=%.5f bf_corr=%.5f build_seconds=%.2f scan_seconds=%.2f scan_seconds_per_position=%.4f "
                  "multislice_seconds_per_position=%.4f positions=%zu\n",
                  quick ? 4 : 8, quick ? 4 : 8, quick ? 4 : 10, g.nx, f, prism_window_needed_A(o, s.cell.z), S.front().beams.size(),
                  e.haadf, e.bf, e.corr_haadf, e.corr_bf, t_build, t_scan, t_scan / double(pos.size()), t_ms / double(pos.size()),
                  pos.size());
      std::fflush(stdout);
    }
  }

  // --- auto vs multislice ------------------------------------------------------------------
  if (want("auto")) {
    struct Case {
      const char* name;
      int n, nz;
      std::size_t side, every;
    };
    std::vector<Case> cases = {{"srtio3_2x2x5_quickstart", 2, 5, 16, 4}, {"srtio3_4x4x20", 4, 20, 20, 8}, {"srtio3_8x8x10", 8, 10, 32, 16}};
    if (quick) cases = {{"srtio3_4x4x4", 4, 4, 12, 4}};
    for (const Case& c : cases) {
      const Structure s = srtio3(c.n, c.nz);
      const Grid g = grid_for(s, 0.05, 8);
      StemSettings st;
      st.potential.slice_thickness_A = 1.9525;
      // The reference is plain multislice: every position simulated (no translational-symmetry
      // reuse, which auto's multislice uses by default: translational_symmetry.hpp).
      st.symmetry_reuse = false;
      const auto pos = ScanGrid::from_fov({0, 0}, s.cell.x, s.cell.y, c.side, c.side).positions();
      std::vector<std::size_t> sub;
      std::vector<Point2> subpos;
      for (std::size_t i = 0; i < pos.size(); i += c.every) sub.push_back(i), subpos.push_back(pos[i]);
      simulate_stem(s, g, o, {pos[0]}, dets, st);  // warm-up: FFT wisdom for this grid, untimed
      // Multislice extrapolated without scaling its fixed cost (potential, plans): one
      // position t1, the subset t_sub, total = t1 + (t_sub − t1)·(N − 1)/(n − 1).
      auto t0 = Clock::now();
      simulate_stem(s, g, o, {pos[0]}, dets, st);
      const double t1 = seconds_since(t0);
      t0 = Clock::now();
      const StemResult ms = simulate_stem(s, g, o, subpos, dets, st);
      const double t_ms_sub = seconds_since(t0);
      const double t_ms = t1 + std::max(0.0, t_ms_sub - t1) * double(pos.size() - 1) / double(subpos.size() - 1);
      st.method = Method::Auto;
      st.symmetry_reuse = true;  // the default
      AutoCalibrationCache cache;
      st.auto_cache = &cache;
      t0 = Clock::now();
      const StemResult au = simulate_stem(s, g, o, pos, dets, st);
      const double t_auto = seconds_since(t0);
      // Cache hit: no calibration. Skipped when nothing was calibrated (the same multislice run).
      double t_cached = t_auto;
      StemResult au2 = au;
      if (au.auto_choice->calibrated) {
        t0 = Clock::now();
        au2 = simulate_stem(s, g, o, pos, dets, st);
        t_cached = seconds_since(t0);
      }
      const Err e = compare(pick(au.signal("haadf").values, sub), ms.signal("haadf").values, pick(au.signal("bf").values, sub),
                            ms.signal("bf").values);
      const AutoChoice& ch = *au.auto_choice;
      std::printf("BENCH case=%s section=auto grid=%zu positions=%zu method=%s f=%zu predicted_f=%zu window_needed_A=%.2f "
                  "calibration_positions=%zu calibration_haadf_bf_mean_error=%.4f calibration_corr=%.5f auto_seconds=%.2f "
                  "auto_cached_seconds=%.2f multislice_seconds_extrapolated=%.2f multislice_subset=%zu "
                  "multislice_subset_seconds=%.2f speedup=%.2f speedup_cached=%.2f haadf_error=%.2e bf_error=%.2e "
                  "haadf_corr=%.5f bf_corr=%.5f same_bytes_cached=%d calibrated=%d cost_multislice=%.0f cost_auto_least=%.0f "
                  "symmetry_positions=%zu vmhwm_mib=%.0f\n",
                  c.name, g.nx, pos.size(), au.method.c_str(), au.interpolation, ch.predicted_interpolation, ch.window_needed_A,
                  ch.calibration_positions, ch.measured_mean_error, ch.measured_correlation, t_auto, t_cached, t_ms,
                  subpos.size(), t_ms_sub, t_ms / t_auto, t_ms / t_cached, e.haadf, e.bf, e.corr_haadf, e.corr_bf,
                  int(au2.signal("haadf").values == au.signal("haadf").values), int(ch.calibrated), ch.cost_multislice,
                  ch.cost_auto_least, au.positions_simulated, vm_hwm_mib());
      std::fflush(stdout);
    }
  }

  // --- auto on a 100 Å film, 20 nm, 256×256 ------------------------------------------------
  if (only == "film") {
    const Structure s = bench::lsfo_film(quick);  // La0.7Sr0.3FeO3-like (lsfo_film.hpp)
    const Grid g = Grid::from_sampling(s.cell.x, s.cell.y, 0.05);
    const std::size_t side = 256;
    const auto scan = ScanGrid::from_fov({0, 0}, s.cell.x, s.cell.y, side, side).positions();
    // 0.05 Å: band limit 167 mrad, so the HAADF ends at 160 mrad here.
    const std::vector<Detector> fd = {AnnularDetector{"haadf", 70, 160}, AnnularDetector{"bf", 0, 10}};
    StemSettings st;
    st.potential.slice_thickness_A = 1.95;
    st.method = Method::Auto;
    const std::string name = "lsfo_film_" + std::to_string(int(std::lround(s.cell.x))) + "A_" +
                             std::to_string(int(std::lround(s.cell.z))) + "A_256x256";
    const AutoPlan plan = plan_auto(s, g, o, scan, fd, st, false);
    std::string factors;
    for (std::size_t f : plan.prism_factors) factors += (factors.empty() ? "" : ",") + std::to_string(f);
    std::printf("BENCH case=%s section=film_plan grid=%zux%zu positions=%zu predicted_f=%zu window_needed_A=%.2f "
                "prism_candidates=%s windowed_candidate=%d calibrate=%d cost_multislice=%.0f cost_auto_least=%.0f\n",
                name.c_str(), g.nx, g.ny, scan.size(), plan.choice.predicted_interpolation, plan.choice.window_needed_A,
                factors.empty() ? "none" : factors.c_str(), int(plan.windowed_candidate), int(plan.calibrate),
                plan.choice.cost_multislice, plan.choice.cost_auto_least);
    std::fflush(stdout);
    std::vector<Point2> cal;
    for (std::size_t i : calibration_subset(scan.size(), st.budget.calibration_positions)) cal.push_back(scan[i]);
    std::vector<Point2> held;  // 2×2 positions 1.2 Å apart in the middle, none a calibration position
    for (std::size_t j = 0; j < 2; ++j)
      for (std::size_t i = 0; i < 2; ++i) held.push_back(scan[(side / 2 + 3 * j + 1) * side + side / 2 + 3 * i + 1]);
    StemSettings ms = st;
    ms.method = Method::Multislice;
    StemSettings ws = st;
    ws.method = Method::Windowed;
    // Windowed full scan, extrapolated from the tile holding the scan's centre.
    const WindowPlan wplan = plan_window(g, o, s.cell.z, scan, ws);
    std::vector<Point2> tile_pos;
    {
      const Point2 c = scan[(side / 2) * side + side / 2];
      const auto tx = std::size_t(c.x / wplan.tile_A), ty = std::size_t(c.y / wplan.tile_A);
      for (const Point2& q : scan)
        if (std::size_t(q.x / wplan.tile_A) == tx && std::size_t(q.y / wplan.tile_A) == ty) tile_pos.push_back(q);
    }
    auto t0 = Clock::now();
    simulate_stem(s, g, o, tile_pos, fd, ws);
    const double t_tile = seconds_since(t0);
    const double t_win_full = t_tile / double(tile_pos.size()) * double(scan.size());
    t0 = Clock::now();
    const StemResult wcal = simulate_stem(s, g, o, cal, fd, ws);
    const double t_trial = seconds_since(t0);
    const StemResult wheld = simulate_stem(s, g, o, held, fd, ws);
    const double rss_win = vm_hwm_mib();
    // The calibration reference: full-field potential, then multislice on the 8 positions.
    const Fft2 fft(g, st.planning);
    t0 = Clock::now();
    const auto tr = frozen_phonon_transmissions(s, g, o.energy_eV, ms, fft);
    const double t_pot = seconds_since(t0);
    t0 = Clock::now();
    const StemResult mcal = scan_multislice(tr, o, cal, fd, ms, fft);
    const double t_ref = seconds_since(t0);
    const StemResult mheld = scan_multislice(tr, o, held, fd, ms, fft);
    const double t_ms = t_pot + t_ref / double(cal.size()) * double(scan.size());
    const Err ec = compare(wcal.signal("haadf").values, mcal.signal("haadf").values, wcal.signal("bf").values, mcal.signal("bf").values);
    const Err eh = compare(wheld.signal("haadf").values, mheld.signal("haadf").values, wheld.signal("bf").values, mheld.signal("bf").values);
    const bool holds = std::fabs(ec.haadf) <= st.budget.mean_rel && std::fabs(ec.bf) <= st.budget.mean_rel &&
                       ec.corr_haadf >= st.budget.min_correlation && ec.corr_bf >= st.budget.min_correlation;
    // What auto spends: potential + reference + windowed trial + the chosen method's full scan.
    const double t_auto = t_pot + t_ref + t_trial + (holds ? t_win_full : t_ms - t_pot);
    std::printf("BENCH case=%s section=film method=%s window=%zux%zu tile_A=%.2f tiles=%zu tile_positions=%zu tile_seconds=%.2f "
                "windowed_seconds_per_position=%.4f transmission_seconds=%.1f reference_seconds=%.1f "
                "multislice_seconds_per_position=%.3f windowed_trial_seconds=%.2f auto_seconds_extrapolated=%.0f "
                "multislice_seconds_extrapolated=%.0f speedup=%.1f calibration_haadf_error=%.4f calibration_bf_error=%.4f "
                "calibration_haadf_corr=%.5f calibration_bf_corr=%.5f held_out_haadf_error=%.4f held_out_bf_error=%.4f "
                "peak_rss_windowed_mib=%.0f peak_rss_mib=%.0f\n",
                name.c_str(), holds ? "windowed" : "multislice", wplan.nx, wplan.ny, wplan.tile_A, wplan.tiles, tile_pos.size(),
                t_tile, t_tile / double(tile_pos.size()), t_pot, t_ref, t_ref / double(cal.size()), t_trial, t_auto, t_ms,
                t_ms / t_auto, ec.haadf, ec.bf, ec.corr_haadf, ec.corr_bf, eh.haadf, eh.bf, rss_win, vm_hwm_mib());
    std::fflush(stdout);
  }
  return 0;
}
