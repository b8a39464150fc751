// Translational-symmetry reuse (translational_symmetry.hpp, issue 14): multislice simulates
// one probe position per class of positions differing by a whole-pixel lattice translation of
// a static crystal and copies its signals to the others.
//  - Detection: the smallest whole-pixel sub-periods of SrTiO3, Si [110] (non-square) and a
//    rectangular cell; none when the grid does not divide, or after one vacancy, one displaced
//    atom, one substitution, one changed occupancy or one doubled atom.
//  - Classes of probe positions; incommensurate positions give no reuse.
//  - Agreement with plain multislice (reuse off) on every detector kind — annular, segmented,
//    radial, COM — on cases that are not the benchmark's; byte identity where nothing is
//    reused (incommensurate positions, a vacancy, thermal configurations); a 4D sink receives
//    every position's pattern (replayed copies) in order.
//  - Same bytes on any thread count; method auto's cost model counts the representatives.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>

#include "auto_fixtures.hpp"
#include "stemtwin/physics/auto_method.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/translational_symmetry.hpp"
#include "stemtwin/scenario/scenario.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

using namespace stemtwin;
using test::si110;
using test::srtio3;

namespace {

/// A grid over the structure's cell with exactly nx × ny points.
Grid grid_of(const Structure& s, std::size_t nx, std::size_t ny) { return Grid(s.cell.x, s.cell.y, nx, ny); }

std::vector<Point2> raster(const Structure& s, std::size_t nx, std::size_t ny, Point2 start = {0, 0}) {
  return ScanGrid::from_fov(start, s.cell.x, s.cell.y, nx, ny).positions();
}

/// Every detector kind whose signal is a number per position (pixelated is streamed).
std::vector<Detector> all_detectors() {
  return {AnnularDetector{"haadf", 70, 200, std::nullopt}, AnnularDetector{"bf", 0, 10, std::nullopt},
          SegmentedDetector{"dpc", {5, 10, 20}, 4, 0}, RadialDetector{"radial", 2.0, 60.0}, ComDetector{"com"}};
}

StemSettings settings(bool reuse) {
  StemSettings st;
  st.method = Method::Multislice;
  st.potential.slice_thickness_A = 1.9525;
  st.planning = FftPlanning::Estimate;
  st.symmetry_reuse = reuse;
  return st;
}

/// The largest difference between two results over every signal, relative to the largest
/// magnitude of that signal (COM and DPC differences change sign, so their own values can be ~0).
double worst_relative(const StemResult& a, const StemResult& b) {
  double worst = 0;
  EXPECT_EQ(a.signals.size(), b.signals.size());
  for (std::size_t k = 0; k < a.signals.size(); ++k) {
    const auto& x = a.signals[k].values;
    const auto& y = b.signals[k].values;
    EXPECT_EQ(x.size(), y.size());
    double scale = 0;
    for (double v : y) scale = std::max(scale, std::fabs(v));
    if (scale == 0) continue;
    double w = 0;
    for (std::size_t i = 0; i < x.size(); ++i) w = std::max(w, std::fabs(x[i] - y[i]) / scale);
    if (std::getenv("SYM_DEBUG")) std::printf("  %s depth %zu: %.3g (scale %.3g)\n", a.signals[k].name.c_str(), a.signals[k].depth_index, w, scale);
    worst = std::max(worst, w);
  }
  return worst;
}

bool same_bytes(const StemResult& a, const StemResult& b) {
  if (a.signals.size() != b.signals.size()) return false;
  for (std::size_t k = 0; k < a.signals.size(); ++k)
    if (a.signals[k].values != b.signals[k].values) return false;
  return true;
}

ProbeOptics optics() {
  ProbeOptics o;  // 200 kV, 20 mrad
  o.aberrations.set("defocus", 20);
  return o;
}

// The tolerance of agreement with plain multislice: waves are single precision (ε = 6e-8);
// the reused and the simulated position differ only in the rounding of the phase ramp and of
// the potential's spreading and summation order, which enters every pixel of every slice at
// ~ε and accumulates over ~10 slices and the FFTs (~log2 N · ε each) to ~1e-6 of a signal's
// scale (set before measuring; measured: ≤ 7e-7 for BF, DPC and radial bins, 2.5e-6 for HAADF,
// which gathers a 1e-4 fraction of the beam, 5.3e-6 for Si's small COM; SYM_DEBUG=1 prints
// each). 1e-5 is still four orders below any physical effect (moving one atom by 0.01 Å
// changes its neighbourhood's HAADF by ~1e-3), so a wrong copy cannot hide under it.
constexpr double kAgreement = 1e-5;

}  // namespace

TEST(TranslationalSymmetry, FindsTheSmallestWholePixelSubPeriods) {
  const Structure sto = srtio3(3, 2);  // 11.715 Å square, 3 × 3 cells
  EXPECT_EQ(structure_subperiods(sto, grid_of(sto, 120, 120)).nx, 3u);
  EXPECT_EQ(structure_subperiods(sto, grid_of(sto, 120, 120)).ny, 3u);
  // 128 points: a cell is 42.67 pixels, no whole-pixel period.
  const SubPeriods none = structure_subperiods(sto, grid_of(sto, 128, 128));
  EXPECT_FALSE(none.any());
  // Rectangular: 4 × 2 cells on 160 × 90 points (40 and 45 pixels per cell).
  Structure rect = srtio3(4, 2);
  {
    PerovskiteParams p;
    p.repeats = {4, 2, 2};
    rect = build_perovskite(p, 0).structure;
  }
  const SubPeriods r = structure_subperiods(rect, grid_of(rect, 160, 90));
  EXPECT_EQ(r.nx, 4u);
  EXPECT_EQ(r.ny, 2u);
  // Only the common divisors: 4 cells on 150 points (37.5 pixels per cell) → period 2 cells.
  EXPECT_EQ(structure_subperiods(rect, grid_of(rect, 150, 90)).nx, 2u);
  // Si [110] reference cell tiled 2 × 2 (32.6 × 30.7 Å): the reference cell is itself 3 × 4
  // projected cells a × a/√2 = 5.43 × 3.84 Å (non-square), so the structure's periods are 6 and
  // 8; on 336 × 320 points both are whole pixels, on 320 × 300 only 2 (of 6) and 4 (of 8).
  const Structure si = si110(8.0);
  const SubPeriods sp = structure_subperiods(si, grid_of(si, 336, 320));
  EXPECT_EQ(sp.nx, 6u);
  EXPECT_EQ(sp.ny, 8u);
  const SubPeriods sp2 = structure_subperiods(si, grid_of(si, 320, 300));
  EXPECT_EQ(sp2.nx, 2u);
  EXPECT_EQ(sp2.ny, 4u);
  // A large structure (20 × 20 × 10 cells, 10 000 atoms) by hashing: period one cell.
  const Structure big = srtio3(20, 10);
  const SubPeriods b = structure_subperiods(big, grid_of(big, 800, 800));
  EXPECT_EQ(b.nx, 20u);
  EXPECT_EQ(b.ny, 20u);
}

TEST(TranslationalSymmetry, AnyDefectOrChangedPropertyBreaksIt) {
  const Structure sto = srtio3(3, 2);
  const Grid g = grid_of(sto, 120, 120);
  auto periods = [&](const Structure& s) { return structure_subperiods(s, g); };
  Structure vacancy = sto;
  vacancy.atoms.erase(vacancy.atoms.begin() + 7);
  EXPECT_FALSE(periods(vacancy).any());
  Structure displaced = sto;
  displaced.atoms[5].x += 0.01;
  EXPECT_FALSE(periods(displaced).any());
  Structure substituted = sto;
  substituted.atoms[3].Z = 56;
  EXPECT_FALSE(periods(substituted).any());
  Structure occupancy = sto;
  occupancy.atoms[2].occupancy = 0.9;
  EXPECT_FALSE(periods(occupancy).any());
  Structure rms = sto;
  rms.atoms[4].rms = 0.08;
  EXPECT_FALSE(periods(rms).any());
  // One site holding 4 copies of its atom: every species count stays divisible by 3, so only
  // the multiset comparison (copies per site) can tell.
  Structure doubled = sto;
  for (int k = 0; k < 3; ++k) doubled.atoms.push_back(sto.atoms[0]);
  EXPECT_FALSE(periods(doubled).any());
  // The same copies on all 9 translated sites: symmetric again.
  Structure all_doubled = sto;
  for (const Atom& a : sto.atoms)
    if (a.Z == sto.atoms[0].Z && std::fabs(a.z - sto.atoms[0].z) < 1e-9)
      for (int k = 0; k < 3; ++k) all_doubled.atoms.push_back(a);
  EXPECT_EQ(periods(all_doubled).nx, 3u);
  // Within the tolerance (1e-6 Å): the same site; 1e-4 Å: not.
  Structure rounded = sto;
  rounded.atoms[5].x += 0.3 * kSymmetryAtomTolerance_A;
  EXPECT_EQ(periods(rounded).nx, 3u);
  Structure moved = sto;
  moved.atoms[5].y += 1e-4;
  EXPECT_FALSE(periods(moved).any());
  // An atom given outside the cell is the same site modulo the cell.
  Structure wrapped = sto;
  wrapped.atoms[0].x += sto.cell.x;
  EXPECT_EQ(periods(wrapped).nx, 3u);
}

TEST(TranslationalSymmetry, GroupsPositionsModuloTheLattice) {
  const Structure sto = srtio3(3, 2);
  const Grid g = grid_of(sto, 120, 120);
  // 12 × 12 positions stepping a quarter cell: 16 classes.
  const auto pos = raster(sto, 12, 12);
  const PositionClasses c = position_classes(pos, g, {3, 3});
  ASSERT_EQ(c.representatives.size(), 16u);
  for (std::size_t i = 0; i < pos.size(); ++i) {
    const Point2 p = pos[i], r = pos[c.representatives[c.class_of[i]]];
    const double a = sto.cell.x / 3;
    EXPECT_NEAR(std::remainder(p.x - r.x, a), 0.0, 1e-9);
    EXPECT_NEAR(std::remainder(p.y - r.y, a), 0.0, 1e-9);
  }
  // Positions off the lattice by 0.37 of a cell per step do not repeat over 3 cells: no reuse.
  std::vector<Point2> odd;
  for (int j = 0; j < 6; ++j)
    for (int i = 0; i < 6; ++i) odd.push_back({0.37 * 3.905 * i + 0.01, 0.41 * 3.905 * j + 0.02});
  EXPECT_FALSE(position_classes(odd, g, {3, 3}).reduces());
  // Multislice with reuse off, or on a thermal structure: every position its own class.
  EXPECT_FALSE(multislice_classes(sto, g, pos, settings(false), false).reduces());
  EXPECT_FALSE(multislice_classes(sto, g, pos, settings(true), /*a slice observer*/ true).reduces());
  // 4D patterns are kept for replay within kSymmetryMaxKeptPatternBytes: 16 × 120² floats of one
  // detector fit, of 10⁴ detectors (9.2 GB) not.
  EXPECT_TRUE(multislice_classes(sto, g, pos, settings(true), false, 1).reduces());
  EXPECT_FALSE(multislice_classes(sto, g, pos, settings(true), false, 10000).reduces());
  Structure hot = sto;
  for (Atom& a : hot.atoms) a.rms = 0.08;
  EXPECT_FALSE(multislice_classes(hot, g, pos, settings(true), false).reduces());
  EXPECT_EQ(multislice_classes(sto, g, pos, settings(true), false).representatives.size(), 16u);
}

TEST(TranslationalSymmetry, AgreesWithPlainMultisliceOnSrTiO3) {
  // SrTiO3 [001] 3 × 3 × 4 cells (15.6 Å), 0.098 Å; 12 × 12 positions a quarter cell apart
  // from an off-lattice start: 16 simulated, 144 recorded; two recording depths.
  const Structure sto = srtio3(3, 4);
  const Grid g = grid_of(sto, 120, 120);
  const auto pos = raster(sto, 12, 12, {0.3, 0.7});
  StemSettings on = settings(true), off = settings(false);
  on.depths_A = off.depths_A = {7.81, 15.62};
  const StemResult ref = simulate_stem(sto, g, optics(), pos, all_detectors(), off);
  const StemResult sym = simulate_stem(sto, g, optics(), pos, all_detectors(), on);
  EXPECT_EQ(ref.positions_simulated, pos.size());
  EXPECT_EQ(sym.positions_simulated, 16u);
  const double err = worst_relative(sym, ref);
  std::printf("SrTiO3 3x3x4: worst relative difference %.3g\n", err);
  EXPECT_LT(err, kAgreement);
  EXPECT_GT(err, 0.0) << "bit-equal: the rounding argument in the header would be void (or the test compares the same run)";
}

TEST(TranslationalSymmetry, AgreesOnSiliconAndARectangularCell) {
  // Si [110] 2 × 2 reference cells, 8 Å thick, 0.097 × 0.096 Å: sub-period 5.43 × 3.84 Å
  // (non-square). 8 × 8 positions L/8 apart: along y one period per step (1 class); along x
  // k·L/8 modulo L/6 takes the 4 values (3k mod 4)·L/24: 4 classes.
  const Structure si = si110(8.0);
  const Grid g = grid_of(si, 336, 320);
  const auto pos = raster(si, 8, 8);
  const StemResult ref = simulate_stem(si, g, optics(), pos, all_detectors(), settings(false));
  const StemResult sym = simulate_stem(si, g, optics(), pos, all_detectors(), settings(true));
  EXPECT_EQ(sym.positions_simulated, 4u);
  const double err_si = worst_relative(sym, ref);
  std::printf("Si [110] 2x2: worst relative difference %.3g\n", err_si);
  EXPECT_LT(err_si, kAgreement);
  // SrTiO3 4 × 2 × 2 cells on 160 × 90 points, 8 × 6 positions (half a cell in x, 2/3 in y).
  PerovskiteParams p;
  p.repeats = {4, 2, 2};
  const Structure rect = build_perovskite(p, 0).structure;
  const Grid gr = grid_of(rect, 160, 90);
  const auto rp = raster(rect, 8, 6);
  const StemResult rref = simulate_stem(rect, gr, optics(), rp, all_detectors(), settings(false));
  const StemResult rsym = simulate_stem(rect, gr, optics(), rp, all_detectors(), settings(true));
  EXPECT_EQ(rsym.positions_simulated, 6u);  // 2 classes along x × 3 along y
  const double err_rect = worst_relative(rsym, rref);
  std::printf("SrTiO3 4x2x2 rectangular: worst relative difference %.3g\n", err_rect);
  EXPECT_LT(err_rect, kAgreement);
}

TEST(TranslationalSymmetry, NothingReusedGivesTheSameBytes) {
  const Structure sto = srtio3(3, 2);
  const Grid g = grid_of(sto, 120, 120);
  const std::vector<Detector> dets = {AnnularDetector{"haadf", 70, 200, std::nullopt}, ComDetector{"com"}};
  const auto pos = raster(sto, 6, 6);
  auto check = [&](const Structure& s, const std::vector<Point2>& p, StemSettings on, const char* what) {
    StemSettings off = on;
    off.symmetry_reuse = false;
    const StemResult a = simulate_stem(s, g, optics(), p, dets, on), b = simulate_stem(s, g, optics(), p, dets, off);
    EXPECT_EQ(a.positions_simulated, p.size()) << what;
    EXPECT_TRUE(same_bytes(a, b)) << what;
  };
  // Incommensurate positions.
  std::vector<Point2> odd;
  for (int i = 0; i < 6; ++i) odd.push_back({0.37 * 3.905 * i + 0.01, 0.41 * 3.905 * i + 0.02});
  check(sto, odd, settings(true), "incommensurate positions");
  Structure vacancy = sto;
  vacancy.atoms.erase(vacancy.atoms.begin() + 11);
  check(vacancy, pos, settings(true), "one vacancy");
  Structure displaced = sto;
  displaced.atoms[9].y += 0.05;
  check(displaced, pos, settings(true), "one displaced atom");
  Structure hot = sto;
  for (Atom& a : hot.atoms) a.rms = 0.08;
  StemSettings thermal = settings(true);
  thermal.phonon_configurations = 2;
  check(hot, pos, thermal, "thermal configurations");
}

TEST(TranslationalSymmetry, ASinkReceivesEveryPositionInOrder) {
  // The representatives' 4D patterns are replayed as copies: the sink receives every position,
  // in order, in blocks of pattern_block, the same blocks as without reuse, and patterns
  // that agree with plain multislice's within kAgreement (of the largest pixel).
  struct Collect : PatternSink {
    std::vector<std::string> calls;  // detector@first+count, in call order
    std::map<std::string, std::vector<float>> data;
    void write(const std::string& det, std::size_t first, std::size_t count, std::size_t ny, std::size_t nx,
               const float* p) override {
      calls.push_back(det + "@" + std::to_string(first) + "+" + std::to_string(count));
      auto& v = data[det];
      EXPECT_EQ(v.size(), first * ny * nx) << "blocks out of order";
      v.insert(v.end(), p, p + count * ny * nx);
    }
  } with, without;
  const Structure sto = srtio3(3, 2);
  const Grid g = grid_of(sto, 120, 120);
  const auto pos = raster(sto, 6, 6);  // half a cell apart: 4 classes
  const std::vector<Detector> dets = {AnnularDetector{"haadf", 70, 200, std::nullopt}, PixelatedDetector{"pattern", 40, 2},
                                      PixelatedDetector{"wide", 0, 4}};
  StemSettings on = settings(true), off = settings(false);
  on.pattern_block = off.pattern_block = 5;  // blocks that do not divide the 36 positions
  const StemResult a = simulate_stem(sto, g, optics(), pos, dets, on, &with);
  const StemResult b = simulate_stem(sto, g, optics(), pos, dets, off, &without);
  EXPECT_EQ(a.positions_simulated, 4u);
  EXPECT_EQ(b.positions_simulated, pos.size());
  EXPECT_EQ(with.calls, without.calls);
  ASSERT_EQ(with.data.size(), 2u);
  for (const auto& [name, v] : without.data) {
    const std::vector<float>& w = with.data[name];
    ASSERT_EQ(w.size(), v.size()) << name;
    float scale = 0, worst = 0;
    for (float x : v) scale = std::max(scale, std::fabs(x));
    for (std::size_t i = 0; i < v.size(); ++i) worst = std::max(worst, std::fabs(w[i] - v[i]));
    EXPECT_LT(worst / scale, kAgreement) << name;
  }
  EXPECT_LT(worst_relative(a, b), kAgreement);
}

TEST(TranslationalSymmetry, SameBytesOnAnyThreadCount) {
  const Structure sto = srtio3(3, 2);
  const Grid g = grid_of(sto, 120, 120);
  const auto pos = raster(sto, 12, 12, {0.1, 0.2});
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const StemResult one = simulate_stem(sto, g, optics(), pos, all_detectors(), settings(true));
  omp_set_num_threads(std::max(2, threads));
  const StemResult many = simulate_stem(sto, g, optics(), pos, all_detectors(), settings(true));
  omp_set_num_threads(threads);
  EXPECT_EQ(one.positions_simulated, 16u);
  EXPECT_TRUE(same_bytes(one, many));
}

TEST(TranslationalSymmetry, AutoCountsTheRepresentativesAndRecordsThem) {
  // SrTiO3 8 × 8 × 2 cells (31.2 Å wide, 7.8 Å thick: the model's f = 2) at 0.1 Å with 48 × 48
  // positions a sixth of a cell apart: without reuse multislice costs 2304 propagations and
  // auto calibrates PRISM (8 + B(2) ≈ 500 < 2304/2); with reuse 36, so auto's cost model runs
  // multislice (over 36 positions) without calibrating.
  const Structure s = srtio3(8, 2);
  const Grid g = grid_of(s, 320, 320);
  const auto pos = raster(s, 48, 48);
  const std::vector<Detector> dets = {AnnularDetector{"haadf", 70, 200, std::nullopt}};
  StemSettings st = settings(true);
  st.method = Method::Auto;
  const AutoPlan with = plan_auto(s, g, ProbeOptics{}, pos, dets, st, false);
  EXPECT_EQ(with.choice.symmetry_positions, 36u);
  EXPECT_EQ(with.choice.total_positions, 2304u);
  EXPECT_DOUBLE_EQ(with.choice.cost_multislice, 36.0);
  EXPECT_FALSE(with.calibrate);
  st.symmetry_reuse = false;
  const AutoPlan without = plan_auto(s, g, ProbeOptics{}, pos, dets, st, false);
  EXPECT_EQ(without.choice.symmetry_positions, 2304u);
  EXPECT_DOUBLE_EQ(without.choice.cost_multislice, 2304.0);
  EXPECT_TRUE(without.calibrate);
  // Streaming 4D patterns: replayed, still 36; a slice observer (spectra): every position.
  st.symmetry_reuse = true;
  const std::vector<Detector> with4d = {AnnularDetector{"haadf", 70, 200, std::nullopt}, PixelatedDetector{"pattern", 40, 2}};
  EXPECT_EQ(plan_auto(s, g, ProbeOptics{}, pos, with4d, st, /*streams_patterns*/ true).choice.symmetry_positions, 36u);
  EXPECT_EQ(plan_auto(s, g, ProbeOptics{}, pos, dets, st, false, /*observed*/ true).choice.symmetry_positions, 2304u);
  // An EDS/EELS recorder can ride on PRISM (observed = false) but still switches multislice's
  // reuse off: auto must not count 36 positions for a multislice that simulates 2304.
  EXPECT_EQ(plan_auto(s, g, ProbeOptics{}, pos, dets, st, false, /*observed*/ false, /*observer_attached*/ true)
                .choice.symmetry_positions,
            2304u);
}

TEST(TranslationalSymmetry, ScenarioKeyTurnsItOff) {
  const std::string text = R"(name: sym
seed: 3
samples: 1
specimen:
  builder: {type: perovskite, a: 3.905, A: {Sr: 1}, B: {Ti: 1}}
  repeat: [2, 2, 2]
microscope: {energy: 200e3, convergence: 20}
scan: {start: [0, 0], fov: [7.81, 7.81], pixels: [4, 4], dwell: 2}
detectors:
  - {name: adf, type: annular, inner: 40, outer: 80}
simulation: {sampling: 0.1, SYM}
)";
  auto with = [&](const std::string& sym) {
    std::string t = text;
    t.replace(t.find("SYM"), 3, sym);
    return parse_scenario_text(t, "sym.yaml");
  };
  EXPECT_TRUE(stem_settings(sample_parameters(with("slice_thickness: 2"), 0)).symmetry_reuse);
  EXPECT_FALSE(stem_settings(sample_parameters(with("symmetry: false"), 0)).symmetry_reuse);
  EXPECT_THROW(with("symmetry: maybe"), ScenarioError);
}
