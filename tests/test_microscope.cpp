// The session: caching, windows on a large specimen, dose bookkeeping, determinism, damage.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "stemtwin/specimen/builders.hpp"
#include "stemtwin/session/microscope.hpp"

using namespace stemtwin;

namespace {
/// A thin SrTiO3 film many fields of view wide (12 × 12 cells, 2 cells thick).
Specimen film() {
  PerovskiteParams p;  // SrTiO3, a = 3.905 Å
  p.repeats = {12, 12, 2};
  return build_perovskite(p, 0);
}
MicroscopeSettings fast() {
  MicroscopeSettings st;
  st.sampling_A = 0.1;  // band limit 84 mrad: detectors below
  st.potential.slice_thickness_A = 3.905 / 2;
  st.seed = 3;
  st.incoherent_above_A = 0;  // these tests are about the full-physics path (its pixels here are 0.65 Å)
  return st;
}
std::vector<Detector> dets() { return {AnnularDetector{"ADF", 40, 80}, AnnularDetector{"BF", 0, 10}}; }
ScanSettings small_scan() {
  ScanSettings s;
  s.fov_x_A = s.fov_y_A = 7.81;
  s.nx = s.ny = 12;
  return s;
}
double max_abs_diff(const Image& a, const Image& b) {
  double e = 0;
  for (std::size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(a.data[i] - b.data[i]));
  return e;
}
}  // namespace

TEST(Microscope, SecondScanOfTheSameRegionReusesTheWindow) {
  Microscope m(film(), fast());
  m.set_detectors(dets());
  m.set_scan(small_scan());
  const ScanResult a = m.scan();
  const ScanResult b = m.scan();
  EXPECT_FALSE(a.window_cache_hit);
  EXPECT_TRUE(b.window_cache_hit);
  EXPECT_TRUE(b.signal_cache_hit);  // same positions, probe and detectors: only the read-out is redone
  std::printf("SESSION first scan %.3f s, second (cached) %.3f s, ratio %.1f\n", a.seconds, b.seconds, a.seconds / b.seconds);
  EXPECT_LT(b.seconds * 5, a.seconds);  // the read-out of 144 pixels is far cheaper than the physics
  EXPECT_EQ(a.clean.at("ADF").data, b.clean.at("ADF").data);  // same physics
  EXPECT_NE(a.images.at("ADF").data, b.images.at("ADF").data);  // new noise per call
  // A defocus change re-uses the window (only the probe changes).
  m.set_defocus(30);
  const ScanResult c = m.scan();
  EXPECT_TRUE(c.window_cache_hit);
  EXPECT_FALSE(c.signal_cache_hit);
  EXPECT_NE(c.clean.at("ADF").data, a.clean.at("ADF").data);
  EXPECT_EQ(m.status().cache_misses, 1u);
}

TEST(Microscope, WindowErrorAgainstALargerWindow) {
  // The default window (automatic margin 4 Å + thickness·tan α, at least 40 Å wide) against
  // one 30 Å wider on every side: the clean signals agree to a small fraction of their range
  // (measured and printed; bound 2 %: what differs is the probe tail beyond the margin and
  // the finer angular sampling of the detectors in the larger window).
  Microscope a(film(), fast());
  MicroscopeSettings big = fast();
  big.window_margin_A = 34;
  Microscope b(film(), big);
  ScanSettings scan = small_scan();
  scan.nx = scan.ny = 6;  // a coarse raster over the same field: the big window is costly
  for (Microscope* m : {&a, &b}) {
    m->set_detectors(dets());
    m->set_scan(scan);
  }
  const ScanResult ra = a.scan(), rb = b.scan();
  for (const char* name : {"ADF", "BF"}) {
    const Image& x = ra.clean.at(name);
    const Image& y = rb.clean.at(name);
    double lo = 1e9, hi = -1e9;
    for (double v : y.data) lo = std::min(lo, v), hi = std::max(hi, v);
    const double err = max_abs_diff(x, y) / (hi - lo);
    std::printf("SESSION window margin error %s: %.4f of the signal range [%.5f, %.5f], max abs %.2e\n", name, err, lo, hi, max_abs_diff(x, y));
    EXPECT_LT(err, 0.02) << name;
  }
}

TEST(Microscope, DoseIsBookedWhereTheBeamWent) {
  Microscope m(film(), fast());
  m.set_detectors(dets());
  ScanSettings s = small_scan();
  s.dwell_us = 4;
  m.set_scan(s);
  m.set_current(10);
  const ScanResult r = m.scan();
  const double n = 10e-12 * 4e-6 / 1.602176634e-19;
  EXPECT_NEAR(r.electrons_per_position, n, 1e-9 * n);
  EXPECT_NEAR(m.status().total_electrons, n * 144, 1e-6 * n);
  const DoseMap d = m.dose_map(1.0);
  double sum = 0;
  for (double v : d.dose_e_per_A2.data) sum += v;
  EXPECT_NEAR(sum * 1.0, n * 144, 1e-6 * n);  // pixel area 1 Å²
  // Nothing outside the field of view (centred on the stage, 7.81 Å wide).
  const StagePosition& st = m.stage();
  EXPECT_EQ(d.dose_e_per_A2(std::size_t(st.y_A + 8), std::size_t(st.x_A + 8)), 0.0);
  EXPECT_GT(d.dose_e_per_A2(std::size_t(st.y_A), std::size_t(st.x_A)), 0.0);
  // A point acquisition adds I·t/e at that point.
  const ProbeResult p = m.probe_at(3.0, 3.0, 100);
  EXPECT_NEAR(p.electrons, 10e-12 * 100e-6 / 1.602176634e-19, 1e-6);
  EXPECT_GT(p.pattern.size(), 100u);
}

// A cancelled windowed frame books its dose on the positions it did expose. Windowed
// multislice simulates a frame tile by tile (windowed.hpp), so the positions done when it
// stops are whole tiles' worth in tile order, not the first ones in scan order. The frame: two
// columns of 128 positions, 60 Å apart (tiles are at most 24 Å: the two columns are always two
// tiles), each column within 0.3 Å in y and placed (stage y = 11.75 Å; the session window's
// origin is a multiple of its 10 Å snap) between multiples of 0.5 Å, the tile sides' common
// step, so that each column is one tile whatever side the cost model picks. Tile order is
// column 0 (its first position comes first), then column 1. Progress is looked at every 64
// positions; the cancel comes at the first look, so exactly column 0's first 64 positions were
// exposed — scan order would have put 32 on each column.
TEST(Microscope, CancelledWindowedFrameBooksTheDoseWhereTheBeamWent) {
  PerovskiteParams p;  // SrTiO3 6 × 6 × 1 cells: the columns wrap to x = 5.1 and 18.3 Å of its 23.4 Å cell
  p.repeats = {6, 6, 1};
  MicroscopeSettings st = fast();
  st.method = Method::Windowed;
  Microscope m(build_perovskite(p, 0), st);
  m.move_stage({11.7, 11.75, 0, 0, 0});
  ScanSettings s;
  s.fov_x_A = 120, s.fov_y_A = 0.3;
  s.nx = 2, s.ny = 128;
  s.dwell_us = 4;
  AcquisitionControl control;
  control.cancelled = [&] { return m.status().positions_done >= 64; };
  EXPECT_THROW(m.scan(s, {AnnularDetector{"ADF", 40, 80}}, control), AcquisitionCancelled);
  EXPECT_EQ(m.status().last_frame.method, "windowed");
  const double n = electrons_per_position(m.optics().current_pA, s.dwell_us);
  EXPECT_NEAR(m.status().total_electrons, 64 * n, 1e-9 * n) << "the 64 positions simulated before the stop";
  const DoseMap d = m.dose_map(1.0);
  ASSERT_EQ(d.dose_e_per_A2.nx, 24u);
  double column0 = 0, column1 = 0;  // electrons (pixel area 1 Å²) around x = 5.1 and 18.3 Å
  for (std::size_t y = 0; y < d.dose_e_per_A2.ny; ++y)
    for (std::size_t x = 0; x < 24; ++x) (x < 12 ? column0 : column1) += d.dose_e_per_A2(y, x);
  EXPECT_NEAR(column0, 64 * n, 1e-9 * n);
  EXPECT_EQ(column1, 0.0) << "dose booked on positions the beam never reached";
}

TEST(Microscope, SameSeedSameCallsSameBytes) {
  auto run = [] {
    Microscope m(film(), fast());
    m.set_detectors(dets());
    m.set_scan(small_scan());
    m.move_stage_relative(3.0, -2.0);
    m.scan();
    m.set_defocus(20);
    return m.scan().images.at("ADF").data;
  };
  EXPECT_EQ(run(), run());
}

TEST(Microscope, MovingTheStageShowsAnotherRegion) {
  Specimen sp = film();
  // Remove the Sr column nearest to (2·3.905, 2·3.905): a vacancy the agent can find.
  std::vector<Atom> kept;
  std::vector<int> cls;
  for (std::size_t i = 0; i < sp.structure.atoms.size(); ++i) {
    const Atom& a = sp.structure.atoms[i];
    if (a.Z == 38 && std::fabs(a.x - 7.81) < 0.1 && std::fabs(a.y - 7.81) < 0.1) continue;
    kept.push_back(a);
    cls.push_back(sp.atom_class[i]);
  }
  sp.structure.atoms = kept;
  sp.atom_class = cls;
  Microscope m(sp, fast());
  m.set_detectors(dets());
  // Probe on the missing column vs on an intact Sr column: far less ADF.
  const ProbeResult vac = m.probe_at(7.81, 7.81, 10), sr = m.probe_at(15.62, 15.62, 10);
  EXPECT_LT(vac.signals.at("ADF"), 0.5 * sr.signals.at("ADF"));
}

TEST(Microscope, BeamDamageChangesAnOverexposedRegion) {
  MicroscopeSettings st = fast();
  st.damage.enabled = true;
  st.damage.cross_section_A2 = 1e-4;  // exaggerated so a short test sees it
  Microscope m(film(), st);
  m.set_detectors(dets());
  ScanSettings s = small_scan();
  s.dwell_us = 50;
  m.set_scan(s);
  m.set_current(100);
  const std::size_t before = m.specimen().structure.atoms.size();
  const ScanResult first = m.scan();
  const MicroscopeStatus after = m.status();
  EXPECT_GT(after.atoms_removed + after.atoms_displaced, 0u);
  EXPECT_EQ(m.specimen().structure.atoms.size(), before - after.atoms_removed);
  EXPECT_EQ(m.specimen().vacancies.size(), after.atoms_removed);
  const ScanResult second = m.scan();
  EXPECT_FALSE(second.window_cache_hit);  // the specimen changed: the window was rebuilt
  EXPECT_NE(first.clean.at("ADF").data, second.clean.at("ADF").data);
  // Off by default: nothing changes.
  Microscope quiet(film(), fast());
  quiet.set_detectors(dets());
  quiet.set_scan(s);
  quiet.scan();
  EXPECT_EQ(quiet.status().atoms_removed + quiet.status().atoms_displaced, 0u);
}

TEST(Microscope, RejectsBadRequests) {
  Microscope m(film(), fast());
  ScanSettings s;
  s.nx = 0;
  EXPECT_THROW(m.set_scan(s), std::invalid_argument);
  EXPECT_THROW(m.set_aberration("C77", 1), std::invalid_argument);
  EXPECT_THROW(m.set_current(-1), std::invalid_argument);
  EXPECT_THROW(m.move_stage({0, 0, 0, 0.5, 0}), std::invalid_argument);
  EXPECT_THROW(m.scan_points({}, 1), std::invalid_argument);
  EXPECT_THROW(m.set_detectors({}), std::invalid_argument);
}

TEST(Microscope, RefusesValuesOutsideThePhysicalRanges) {
  // One table (ranges.hpp), checked by the setters: the server and Python get the same.
  Microscope m(film(), fast());
  const Optics optics = m.optics();
  const StagePosition stage = m.stage();
  const ScanSettings scan = m.scan_settings();
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "(accepted)";
  };
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  auto with_optics = [&](auto change) {
    Optics o = optics;
    change(o);
    return [&m, o] { m.set_optics(o); };
  };
  const std::vector<std::pair<std::string, std::string>> refused = {
      {message(with_optics([](Optics& o) { o.probe.energy_eV = 1e300; })), "beam energy (energy_eV) = 1e+300 eV"},
      {message(with_optics([](Optics& o) { o.probe.semiangle_mrad = 1e9; })), "convergence semi-angle"},
      {message(with_optics([](Optics& o) { o.current_pA = 1e300; })), "beam current"},
      {message(with_optics([&](Optics& o) { o.probe.focal_spread_A = nan; })), "focal spread"},
      {message(with_optics([&](Optics& o) { o.probe.focal_spread_points = 0; })), "focal-spread quadrature points"},
      {message(with_optics([&](Optics& o) { o.probe.source_size_A = inf; })), "source size"},
      {message([&] { m.set_aberration("Cs", 1e300); }), "aberration C30"},
      {message([&] { m.set_aberration("phi12", 45.0); }), "aberration angle phi12"},
      {message([&] { m.set_defocus(-1e300); }), "defocus"},
      {message([&] { m.set_current(-1); }), "beam current"},
      {message([&] { m.move_stage({1e308, 0, 0, 0, 0}); }), "stage x (x_A) = 1e+308 Å is outside ±1e+07 Å (stage travel ±1 mm)"},
      {message([&] { m.move_stage({0, nan, 0, 0, 0}); }), "stage y"},
      {message([&] { m.move_stage_relative(0, 0, 2e7); }), "stage z"},
      {message([&] { m.move_stage({0, 0, 0, 0, 0.2}); }), "stage tilt beta"},
      {message([&] { m.scan_points({{1e308, 0}}, 1); }), "probe position x"},
      {message([&] { m.scan_points({{0, 0}}, inf); }), "dwell time"},
      {message([&] {
         ScanSettings s = scan;
         s.fov_x_A = 1e300;
         m.set_scan(s);
       }), "field of view x (fov_x_A)"},
      {message([&] {
         ScanSettings s = scan;
         s.nx = s.ny = std::size_t{1} << 32;  // the product wraps to 0 in 64 bits
         m.set_scan(s);
       }), "pixels"},
      {message([&] {
         ScanSettings s = scan;
         s.rotation_deg = inf;
         m.set_scan(s);
       }), "scan rotation"},
      {message([&] {
         ScanSettings s = scan;
         s.dwell_us = nan;
         m.set_scan(s);
       }), "dwell time"},
  };
  for (const auto& [got, expected] : refused) EXPECT_NE(got.find(expected), std::string::npos) << got;
  // Nothing was changed by a refused call.
  EXPECT_EQ(m.optics().probe.energy_eV, optics.probe.energy_eV);
  EXPECT_EQ(m.optics().probe.aberrations.C, optics.probe.aberrations.C);
  EXPECT_EQ(m.optics().current_pA, optics.current_pA);
  EXPECT_EQ(m.stage().x_A, stage.x_A);
  EXPECT_EQ(m.stage().z_A, stage.z_A);
  EXPECT_EQ(m.scan_settings().nx, scan.nx);
  EXPECT_EQ(m.status().calls, 0u);
  // The edges of the ranges are accepted.
  EXPECT_NO_THROW(m.move_stage({1e7, -1e7, 0, 0.1, -0.1}));
  EXPECT_NO_THROW(m.set_current(0));
  EXPECT_NO_THROW(m.set_aberration("Cs", 1e7));  // 1 mm, an uncorrected lens
}

TEST(Microscope, StageHeightActsAsDefocus) {
  // Raising the specimen by z is the same experiment as adding z to the defocus.
  Microscope a(film(), fast()), b(film(), fast());
  for (Microscope* m : {&a, &b}) {
    m->set_detectors(dets());
    m->set_scan(small_scan());
  }
  a.move_stage_relative(0, 0, 40.0);
  b.set_defocus(40.0);
  EXPECT_EQ(a.scan().clean.at("ADF").data, b.scan().clean.at("ADF").data);
}

// Issue #12: the session is a static lattice unless thermal vibration is asked for, and one
// displaced configuration is reported as a snapshot.
TEST(Microscope, StaticUnlessThermalVibrationIsAsked) {
  Specimen sp = film();
  for (Atom& a : sp.structure.atoms) a.rms = 0.1;  // as a structure file's U would give
  Microscope plain(sp, fast());
  plain.set_detectors(dets());
  plain.set_scan(small_scan());
  Specimen static_sp = film();
  for (Atom& a : static_sp.structure.atoms) a.rms = 0;
  Microscope reference(static_sp, fast());
  reference.set_detectors(dets());
  reference.set_scan(small_scan());
  const ScanResult a = plain.scan(), b = reference.scan();
  EXPECT_EQ(a.clean.at("ADF").data, b.clean.at("ADF").data);  // the file's rms is not applied
  for (const Atom& at : plain.specimen().structure.atoms) EXPECT_EQ(at.rms, 0.0);

  MicroscopeSettings hot = fast();
  hot.thermal.enabled = true;  // uses the atoms' own 0.1 Å
  hot.thermal.configurations = 1;
  Microscope snap(sp, hot);
  snap.set_detectors(dets());
  snap.set_scan(small_scan());
  const ScanResult c = snap.scan();
  EXPECT_NE(c.clean.at("ADF").data, b.clean.at("ADF").data);
  bool warned = false;
  for (const std::string& w : c.warnings) warned |= w.find("snapshot") != std::string::npos;
  EXPECT_TRUE(warned);
  // A compound without rms anywhere is refused by element.
  MicroscopeSettings unknown = fast();
  unknown.thermal.enabled = true;
  EXPECT_THROW(Microscope(static_sp, unknown), std::invalid_argument);
}

// A field of view whose window would not fit in memory is refused before anything is
// allocated (a 0.9 µm window at 0.1 Å is 8·10⁹ points, hundreds of GiB).
TEST(Microscope, AWindowTooLargeForMemoryIsRefusedBeforeAllocating) {
  Microscope m(film(), fast());
  m.set_detectors(dets());
  ScanSettings s = small_scan();
  s.fov_x_A = s.fov_y_A = 9000;
  s.nx = s.ny = 8;
  m.set_scan(s);
  try {
    m.scan();
    FAIL() << "expected a refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("MiB of transmission functions"), std::string::npos) << e.what();
  }
  s = small_scan();
  m.set_scan(s);
  EXPECT_NO_THROW(m.scan());  // the session goes on
}

// Level of detail: pixels coarser than incoherent_above_A (0.3 Å) use the incoherent model,
// which still books every electron; a full-physics frame calibrates it, so the same field seen
// just either side of the boundary keeps its mean signal (continuous contrast when zooming).
TEST(Microscope, CoarsePixelsUseTheCalibratedIncoherentModel) {
  MicroscopeSettings st = fast();
  st.incoherent_above_A = 0.3;
  st.min_window_A = 16;  // a small window keeps the full-physics frame quick
  Microscope m(film(), st);
  m.set_detectors({AnnularDetector{"ADF", 40, 80}});
  ScanSettings overview;
  overview.fov_x_A = overview.fov_y_A = 40;
  overview.nx = overview.ny = 32;  // 1.25 Å pixels
  m.set_scan(overview);
  const ScanResult a = m.scan();
  EXPECT_TRUE(a.incoherent);
  EXPECT_EQ(a.images.at("ADF").nx, 32u);
  EXPECT_NEAR(m.status().total_electrons, 32.0 * 32.0 * a.electrons_per_position, 1e-6 * m.status().total_electrons);
  // Atomic resolution: full physics (0.28 Å pixels) over 3.9 Å.
  ScanSettings fine;
  fine.fov_x_A = fine.fov_y_A = 3.905;
  fine.nx = fine.ny = 14;
  m.set_scan(fine);
  const ScanResult b = m.scan();
  EXPECT_FALSE(b.incoherent);
  // The same field at 0.49 Å pixels: incoherent, scaled by what the full-physics frame taught.
  ScanSettings coarse = fine;
  coarse.nx = coarse.ny = 8;
  m.set_scan(coarse);
  const ScanResult c = m.scan();
  EXPECT_TRUE(c.incoherent);
  bool calibrated = false;
  for (const std::string& w : c.warnings) calibrated |= w.find("calibrated against the full-physics frame of call 1") != std::string::npos;
  EXPECT_TRUE(calibrated);
  const double physics = b.clean.at("ADF").mean(), model = c.clean.at("ADF").mean();
  std::printf("ADF mean over one cell: full physics %.5g, calibrated incoherent %.5g (%.1f %%)\n", physics, model, 100 * (model / physics - 1));
  // Both sample the same periodic cell uniformly (14² vs 8² points): the calibrated mean
  // agrees within 5 % (the calibration makes the 14² means equal; 8² points sample the
  // cell's mean to a few per cent).
  EXPECT_NEAR(model / physics, 1.0, 0.05);
}
