// Spectroscopy physics: xraylib data through the wrapper, Bote–Salvat ionisation cross
// sections against their authors' program, the inelastic local-approximation recorder in the
// multislice loop, and EDS spectrum images and element maps.
#include <gtest/gtest.h>
#include <omp.h>
#include <xraylib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/physics/eds.hpp"
#include "stemtwin/physics/eels.hpp"
#include "stemtwin/physics/ionisation.hpp"
#include "stemtwin/physics/spectroscopy.hpp"
#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/xray_data.hpp"

using namespace stemtwin;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// A column of n atoms of element Z along z at (l/2, l/2), `spacing` apart, in an l × l × lz cell.
Structure column(int Z, std::size_t n, double spacing, double l = 8.0) {
  Structure s;
  s.cell = {l, l, spacing * double(n)};
  for (std::size_t i = 0; i < n; ++i) s.atoms.push_back({Z, l / 2, l / 2, spacing * (double(i) + 0.5), 1.0, 0.0});
  return s;
}

StemSettings settings(double dz) {
  StemSettings st;
  st.potential.slice_thickness_A = dz;
  st.planning = FftPlanning::Estimate;
  return st;
}

ProbeOptics optics300() {
  ProbeOptics o;
  o.energy_eV = 300e3;
  o.semiangle_mrad = 25;
  return o;
}

}  // namespace

// ---- xraylib through the wrapper --------------------------------------------------------

TEST(XrayData, LineEnergiesYieldsAndRatesAreXraylibs) {
  // The wrapper must hand out xraylib's numbers unchanged (only keV → eV).
  for (int Z : {8, 22, 26, 38, 57, 79}) {
    for (const XrayLine& l : xray_lines(Z, Shell::K)) {
      EXPECT_EQ(l.energy_eV, 1e3 * LineEnergy(Z, l.xraylib_line, nullptr)) << Z << " " << l.iupac;
      EXPECT_EQ(l.radiative_rate, RadRate(Z, l.xraylib_line, nullptr)) << Z << " " << l.iupac;
    }
    EXPECT_EQ(fluorescence_yield(Z, Shell::K), FluorYield(Z, K_SHELL, nullptr));
    EXPECT_EQ(edge_energy_eV(Z, Shell::L3), 1e3 * EdgeEnergy(Z, L3_SHELL, nullptr));
    EXPECT_EQ(mass_attenuation_cm2_per_g(Z, 5000.0), CS_Total(Z, 5.0, nullptr));
  }
  EXPECT_EQ(coster_kronig(38, Shell::L1, Shell::L3), CosKronTransProb(38, FL13_TRANS, nullptr));
  EXPECT_EQ(coster_kronig(79, Shell::M4, Shell::M5), CosKronTransProb(79, FM45_TRANS, nullptr));
  EXPECT_EQ(coster_kronig(79, Shell::K, Shell::L1), 0.0);  // not a Coster–Kronig pair
  // The naming of lines: Kα1 is K-L3, Lα1 L3-M5, Mα1 M5-N7.
  EXPECT_EQ(xray_line(29, KL3_LINE).iupac, "K-L3");
  EXPECT_EQ(xray_line(29, KL3_LINE).family, "Ka");
  EXPECT_EQ(xray_line(57, L3M5_LINE).family, "La");
  EXPECT_EQ(xray_line(79, M5N7_LINE).family, "Ma");
  EXPECT_EQ(xray_line(79, L2M4_LINE).family, "Lb");
  // Cu Kα1 = 8047.78 eV (Bearden, Rev. Mod. Phys. 39 (1967) 78): a check on the unit
  // conversion, to xraylib's 0.1 eV rounding.
  EXPECT_NEAR(xray_line(29, KL3_LINE).energy_eV, 8047.8, 0.2);
}

TEST(XrayData, EveryLineOfAShellIsFoundOnce) {
  // xraylib normalises each shell's radiative rates to 1. The enumeration keeps the lines
  // that have both a rate and an energy (composite codes such as L3-P23 carry no rate; a few
  // weak transitions to outer levels have a rate but no energy, e.g. 2 % of Ti L3): its sum
  // must equal the rates of all codes with an energy, counted here by a loop of our own over
  // xraylib's whole code range, and all rates together sum to 1 to xraylib's ~5-digit
  // rounding (measured ≤ 1.2e-5; bound 5e-5).
  struct Range {
    Shell shell;
    int first, last;  // xraylib's own macros bound each shell's codes
  };
  const Range ranges[] = {{Shell::K, KL1_LINE, KP5_LINE},      {Shell::L1, L1L2_LINE, L1P5_LINE},
                          {Shell::L2, L2L3_LINE, L2Q1_LINE},   {Shell::L3, L3M1_LINE, L3Q1_LINE},
                          {Shell::M4, M4M5_LINE, M4P5_LINE},   {Shell::M5, M5N1_LINE, M5P5_LINE}};
  for (int Z : {13, 22, 38, 57, 79})
    for (const Range& r : ranges) {
      const auto lines = xray_lines(Z, r.shell);
      if (lines.empty()) continue;
      double sum = 0;
      for (const auto& l : lines) sum += l.radiative_rate;
      double with_energy = 0, all = 0;
      for (int code = r.first; code >= r.last; --code) {
        xrl_error* err = nullptr;
        const double rate = RadRate(Z, code, &err);
        if (err) {
          xrl_error_free(err);
          continue;
        }
        all += rate;
        if (LineEnergy(Z, code, nullptr) > 0) with_energy += rate;
      }
      EXPECT_NEAR(sum, with_energy, 1e-12) << "Z=" << Z << " " << shell_name(r.shell);
      EXPECT_NEAR(all, 1.0, 5e-5) << "Z=" << Z << " " << shell_name(r.shell);
    }
  EXPECT_FALSE(xray_lines(79, Shell::M5).empty());
  EXPECT_TRUE(xray_lines(8, Shell::L3).empty());  // O has no L3 radiative data
}

TEST(XrayData, BadInputIsNamed) {
  EXPECT_NE(message_of([] { xray_line(0, KL3_LINE); }).find("atomic number 0"), std::string::npos);
  const std::string m = message_of([] { xray_line(8, L3M5_LINE); });  // O has no L3-M5 line
  EXPECT_NE(m.find("O (Z=8)"), std::string::npos) << m;
  EXPECT_NE(m.find("L3-M5"), std::string::npos) << m;
  EXPECT_NE(message_of([] { xray_line(26, 5); }).find("not a K, L or M line"), std::string::npos);
  EXPECT_NE(message_of([] { shell_from_name("K1"); }).find("unknown shell 'K1'"), std::string::npos);
  EXPECT_THROW(mass_attenuation_cm2_per_g(14, -1.0), std::invalid_argument);
}

// ---- Bote–Salvat ------------------------------------------------------------------------

TEST(BoteSalvat, ReproducesTheAuthorsProgram) {
  // Reference values: Salvat's program xion.f, as listed in the test suite of NIST's
  // BoteSalvatICX.jl (test/xione.jl, "comparing with values generated by xion.f"), in cm²
  // (1 cm² = 1e16 Å²). They cover both branches of the fit (U ≤ 16 and U > 16), K, L and M
  // subshells and Z from 1 to 99. xion.f returns the numerical DWBA/PWBA database, which the
  // analytical formulas reproduce "to within about 1 %, except for projectiles with
  // near-threshold energies" (Bote et al. 2009, abstract): bound 1 % (measured ≤ 0.57 %,
  // largest near threshold).
  struct Case {
    int Z;
    Shell shell;
    double E_eV, sigma_cm2;
  };
  const Case cases[] = {
      {12, Shell::L3, 7.71792E+01, 3.85315E-18}, {12, Shell::L3, 1.29569E+04, 1.24124E-18},
      {12, Shell::L3, 5.78762E+06, 1.30393E-19}, {23, Shell::L1, 2.90068E+08, 5.64142E-21},
      {23, Shell::L1, 1.53993E+04, 2.63509E-20}, {45, Shell::M3, 6.68344E+08, 1.62343E-20},
      {45, Shell::M3, 1.22321E+03, 2.11571E-19}, {67, Shell::K, 1.63117E+05, 1.36404E-23},
      {78, Shell::M5, 2.98538E+03, 2.02808E-20}, {99, Shell::L2, 1.00000E+09, 1.39024E-22},
      {99, Shell::L2, 2.66073E+04, 3.85171E-24}, {1, Shell::K, 6.87860E+02, 1.57729E-17},
  };
  for (const Case& c : cases) {
    const double s = bote_salvat_cross_section_A2(c.Z, c.shell, c.E_eV) * 1e-16;
    EXPECT_NEAR(s / c.sigma_cm2, 1.0, 0.01) << "Z=" << c.Z << " " << shell_name(c.shell) << " E=" << c.E_eV;
  }
  // Their edge energies (BoteSalvatICX.jl test/xione.jl).
  EXPECT_NEAR(bote_salvat_edge_eV(67, Shell::M5), 1.36386E+3, 1.0);
  EXPECT_NEAR(bote_salvat_edge_eV(42, Shell::K), 1.99691E+4, 1.0);
}

TEST(BoteSalvat, ThresholdAvailabilityAndErrors) {
  EXPECT_EQ(bote_salvat_cross_section_A2(29, Shell::K, 8000.0), 0.0);  // below the 8950 eV edge
  EXPECT_GT(bote_salvat_cross_section_A2(29, Shell::K, 9000.0), 0.0);
  EXPECT_TRUE(bote_salvat_available(33, Shell::M5));
  EXPECT_FALSE(bote_salvat_available(29, Shell::M5));  // Cu 3d is valence: no fit
  EXPECT_FALSE(bote_salvat_available(100, Shell::K));
  const std::string m = message_of([] { bote_salvat_cross_section_A2(29, Shell::M5, 2e5); });
  EXPECT_NE(m.find("Z=29 shell M5"), std::string::npos) << m;
}

TEST(BoteSalvat, BranchesMeetAtUEqualsSixteen) {
  // The low- and high-energy formulas are fitted to the same calculation and join at U = 16;
  // Bote et al. quote ≲ 1 % deviations of the fits from it: bound the jump by 2 %.
  for (int Z : {6, 14, 22, 38, 79})
    for (Shell s : {Shell::K, Shell::L3}) {
      if (!bote_salvat_available(Z, s)) continue;
      const double E = 16 * bote_salvat_edge_eV(Z, s);
      const double a = bote_salvat_cross_section_A2(Z, s, E * (1 - 1e-9)), b = bote_salvat_cross_section_A2(Z, s, E * (1 + 1e-9));
      EXPECT_NEAR(a / b, 1.0, 0.02) << "Z=" << Z << " " << shell_name(s);
    }
}

// ---- the inelastic recorder -------------------------------------------------------------

TEST(Inelastic, FirstSliceSeesTheIncidentProbe) {
  // One slice, the atom on its entrance plane (z = 0): the wave read there is the incident
  // probe, so the recorded value is |ψ_probe(r_atom)|² / (dx·dy) — the probe computed
  // independently by probe_real_space. The atom sits on a pixel, so the bilinear
  // interpolation is exact. Float wave: 1e-5 relative.
  const Grid g(8.0, 8.0, 96, 96);
  Structure s;
  s.cell = {8, 8, 2};
  const double ax = 40 * g.dx(), ay = 50 * g.dy();
  s.atoms.push_back({22, ax, ay, 0.0, 1.0, 0.0});
  ProbeOptics o = optics300();
  const std::vector<Point2> pos = {{ax, ay}, {ax + 0.4, ay - 0.3}};
  InelasticRecorder rec(s, 0);
  simulate_stem(s, g, o, pos, {AnnularDetector{"haadf", 60, 75}}, settings(2.0), nullptr, &rec);
  const Fft2 fft(g, FftPlanning::Estimate);
  for (std::size_t p = 0; p < pos.size(); ++p) {
    const ComplexBuffer probe = probe_real_space(g, o, pos[p], fft);
    const double expect = std::norm(probe[50 * g.nx + 40]) / (g.dx() * g.dy());
    EXPECT_NEAR(rec.result().at(p, 22) / expect, 1.0, 1e-5) << p;
  }
}

TEST(Inelastic, GaussianFootprintAveragesAUniformDensity) {
  // In a plane wave-like illumination (a 0.5 mrad aperture fills the 8 Å cell almost
  // uniformly) the footprint average equals the δ value whatever the width; compared with the
  // δ recorder, the difference is the probe's own variation over ±4σ = ±1.2 Å, measured
  // < 0.3 %: bound 1 %. The atom sits on the slice's entrance plane, so only the incident
  // wave is read (inside the slice the reading would mix in the wave below the atom, with the
  // atom's own focusing spike — test_inelastic_depth.cpp covers that depth).
  const Grid g(8.0, 8.0, 96, 96);
  Structure s = column(8, 1, 2.0);
  s.atoms[0].z = 0.0;
  ProbeOptics o = optics300();
  o.semiangle_mrad = 0.5;
  InelasticRecorder delta(s, 0), wide(s, 0, {0.3, {}});
  simulate_stem(s, g, o, {{4, 4}}, {AnnularDetector{"haadf", 60, 75}}, settings(2.0), nullptr, &delta);
  simulate_stem(s, g, o, {{4, 4}}, {AnnularDetector{"haadf", 60, 75}}, settings(2.0), nullptr, &wide);
  EXPECT_NEAR(wide.result().at(0, 8) / delta.result().at(0, 8), 1.0, 0.01);
  EXPECT_THROW(InelasticRecorder(s, 0, {-0.1, {}}), std::invalid_argument);
}

TEST(Inelastic, AbsentElementRecordsZeroAndObserverLeavesDetectorsAlone) {
  const Grid g(8.0, 8.0, 96, 96);
  const Structure s = column(22, 3, 2.0);
  InelasticRecorder rec(s, 0, {0.0, {22, 26}});
  const std::vector<Detector> d = {AnnularDetector{"haadf", 60, 75}};
  const std::vector<Point2> pos = {{4, 4}, {3, 3.5}};
  const StemResult with = simulate_stem(s, g, optics300(), pos, d, settings(2.0), nullptr, &rec);
  const StemResult without = simulate_stem(s, g, optics300(), pos, d, settings(2.0));
  EXPECT_EQ(with.signal("haadf").values, without.signal("haadf").values);
  for (std::size_t p = 0; p < pos.size(); ++p) {
    EXPECT_EQ(rec.result().at(p, 26), 0.0);
    EXPECT_GT(rec.result().at(p, 22), 0.0);
  }
  EXPECT_THROW(rec.result().at(0, 38), std::out_of_range);
  // On PRISM too (docs/spectroscopy.md §7a): the absent element records 0, the images are untouched.
  StemSettings prism = settings(2.0);
  prism.method = Method::Prism;
  InelasticRecorder on_prism(s, 0, {0.0, {22, 26}});
  const StemResult pw = simulate_stem(s, g, optics300(), pos, d, prism, nullptr, &on_prism);
  EXPECT_EQ(pw.signal("haadf").values, simulate_stem(s, g, optics300(), pos, d, prism).signal("haadf").values);
  for (std::size_t p = 0; p < pos.size(); ++p) {
    EXPECT_EQ(on_prism.result().at(p, 26), 0.0);
    EXPECT_GT(on_prism.result().at(p, 22), 0.0);
  }
}

TEST(Inelastic, ThinColumnSignalScalesWithItsAtoms) {
  // A thin O column (2 Å spacing) under a probe on the column: the signal of n atoms is the
  // sum of the probe density at each. Averaged over a 0.3 Å footprint that density changes
  // little from atom to atom at these thicknesses (light atoms channel weakly: measured
  // +0.7 % at n = 4), so the signal is linear in n: bound 2 %. Sampled at the nucleus
  // itself (δ footprint) the density rises by 10–15 % per atom — the pixel-sized focusing
  // spike of the atom's singular potential core, which is why docs/spectroscopy.md
  // recommends a finite width — and the test shows that too, so neither reading can drift
  // unnoticed.
  const Grid g(8.0, 8.0, 96, 96);
  std::vector<double> wide, delta;
  for (std::size_t n = 1; n <= 4; ++n) {
    const Structure s = column(8, n, 2.0);
    InelasticRecorder w(s, 0, {0.3, {}}), d(s, 0);
    simulate_stem(s, g, optics300(), {{4, 4}}, {AnnularDetector{"haadf", 60, 75}}, settings(2.0), nullptr, &w);
    simulate_stem(s, g, optics300(), {{4, 4}}, {AnnularDetector{"haadf", 60, 75}}, settings(2.0), nullptr, &d);
    wide.push_back(w.result().at(0, 8));
    delta.push_back(d.result().at(0, 8));
  }
  for (std::size_t n = 2; n <= 4; ++n) {
    EXPECT_NEAR(wide[n - 1] / (double(n) * wide[0]), 1.0, 0.02) << n;
    EXPECT_GT(delta[n - 1] - delta[n - 2], 1.05 * (delta[n - 2] - (n > 2 ? delta[n - 3] : 0.0))) << n;
  }
}

TEST(Inelastic, ThicknessSeriesAndPerElementWidths) {
  // Recording depths give the signal accumulated down to each depth: the deepest equals a
  // recording of the whole specimen (same operations in the same order: exactly), a depth
  // of one slice equals a one-slice specimen's signal (the entrance wave is the same), and
  // the series never decreases. A per-element width equals a recorder with that width for
  // all (exactly: each atom's footprint depends only on its own width).
  const Grid g(8.0, 8.0, 96, 96);
  const Structure s = column(22, 4, 2.0);
  const std::vector<Point2> pos = {{4, 4}, {3.2, 4.4}};
  const std::vector<Detector> d = {AnnularDetector{"haadf", 60, 75}};
  InelasticSettings series;
  series.depths_A = {2.1, 5.9, 8.0};  // → 2, 6, 8 Å
  InelasticRecorder a(s, 0, series), whole(s, 0);
  simulate_stem(s, g, optics300(), pos, d, settings(2.0), nullptr, &a);
  simulate_stem(s, g, optics300(), pos, d, settings(2.0), nullptr, &whole);
  ASSERT_EQ(a.result().depths_A, (std::vector<double>{2.0, 6.0, 8.0}));
  const Structure one = column(22, 1, 2.0);
  InelasticRecorder first(one, 0);
  simulate_stem(one, g, optics300(), pos, d, settings(2.0), nullptr, &first);
  for (std::size_t p = 0; p < pos.size(); ++p) {
    EXPECT_EQ(a.result().at(p, 22, 2), whole.result().at(p, 22));
    EXPECT_EQ(a.result().at(p, 22), whole.result().at(p, 22));  // default: the deepest
    EXPECT_EQ(a.result().at(p, 22, 0), first.result().at(p, 22));
    EXPECT_LT(a.result().at(p, 22, 0), a.result().at(p, 22, 1));
    EXPECT_LT(a.result().at(p, 22, 1), a.result().at(p, 22, 2));
  }
  EXPECT_THROW(a.result().at(0, 22, 3), std::out_of_range);
  InelasticSettings per;
  per.element_width_A = {{22, 0.25}};
  InelasticRecorder b(s, 0, per), c(s, 0, {0.25, {}});
  simulate_stem(s, g, optics300(), pos, d, settings(2.0), nullptr, &b);
  simulate_stem(s, g, optics300(), pos, d, settings(2.0), nullptr, &c);
  EXPECT_EQ(b.result().values, c.result().values);
  per.element_width_A = {{22, -1.0}};
  EXPECT_NE(message_of([&] { InelasticRecorder(s, 0, per); }).find("width of Z=22"), std::string::npos);
}

TEST(Inelastic, SameBytesOnOneAndTwoThreads) {
  const Grid g(8.0, 8.0, 96, 96);
  Structure s = column(38, 3, 3.9);
  for (auto& a : s.atoms) a.rms = 0.08;
  StemSettings st = settings(1.95);
  st.phonon_configurations = 2;
  st.seed = 7;
  std::vector<Point2> pos;
  for (int i = 0; i < 6; ++i) pos.push_back({3.0 + 0.3 * i, 4.0});
  std::vector<std::vector<double>> out;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    InelasticRecorder rec(s, st.seed, {0.2, {}});
    simulate_stem(s, g, optics300(), pos, {AnnularDetector{"haadf", 60, 75}}, st, nullptr, &rec);
    out.push_back(rec.result().values);
  }
  omp_set_num_threads(omp_get_num_procs());
  ASSERT_EQ(out[0].size(), out[1].size());
  EXPECT_EQ(std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(double)), 0);
}

// ---- EDS --------------------------------------------------------------------------------

namespace {
/// A hand-made intensity: the given elements with the given values at each of `positions`.
ElementIntensity intensity(const std::vector<int>& Z, const std::vector<double>& per_position_values, std::size_t positions) {
  ElementIntensity I;
  I.elements = Z;
  I.positions = positions;
  for (std::size_t p = 0; p < positions; ++p) I.values.insert(I.values.end(), per_position_values.begin(), per_position_values.end());
  return I;
}
Structure srtio3(double thickness_A) {
  Structure s;
  const double a = 3.905;
  s.cell = {a, a, thickness_A};
  for (double z = 0; z + 1e-9 < thickness_A; z += a) {
    s.atoms.push_back({38, 0, 0, z, 1, 0});
    s.atoms.push_back({22, a / 2, a / 2, z + a / 2, 1, 0});
    s.atoms.push_back({8, a / 2, a / 2, z, 1, 0});
    s.atoms.push_back({8, a / 2, 0, z + a / 2, 1, 0});
    s.atoms.push_back({8, 0, a / 2, z + a / 2, 1, 0});
  }
  return s;
}
}  // namespace

TEST(Eds, ResolutionFollowsFanoFromMnKa) {
  EdsDetector d;
  d.fwhm_mn_ka_eV = 130;
  const EdsModel m = eds_model(srtio3(3.905), 300e3, d);
  const double e_mn = 1e3 * LineEnergy(25, KL3_LINE, nullptr);
  EXPECT_NEAR(m.fwhm_eV(e_mn), 130.0, 1e-9);
  // Above the electronic-noise floor FWHM² grows linearly in E with slope 2.355² F ε.
  const double slope = (std::pow(m.fwhm_eV(10000), 2) - std::pow(m.fwhm_eV(2000), 2)) / 8000;
  EXPECT_NEAR(slope, 2.3548200450309493 * 2.3548200450309493 * 0.115 * 3.64, 1e-9);
  d.fwhm_mn_ka_eV = 100;  // below the Fano limit (≈ 118 eV)
  EXPECT_NE(message_of([&] { eds_model(srtio3(3.905), 300e3, d); }).find("Fano limit"), std::string::npos);
}

TEST(Eds, KalphaMapCountsTheProducedPhotons) {
  // Ti alone, no bremsstrahlung, ideal detector: the clean Kα map must equal
  //   N · I · Ω/4π · σ_K · ω_K · (R_KL2 + R_KL3) · f_window,
  // every factor taken here straight from xraylib and Bote–Salvat, with f_window the
  // fraction of a Gaussian within ±FWHM, erf(√(2 ln 2)·2/2·… ) = 0.98146. Whole channels (10 eV)
  // move each window edge by ≤ 5 eV ≈ 0.09σ at 4.5 keV, i.e. ≤ 0.25 % per edge: bound 1 %.
  EdsDetector d;
  d.bremsstrahlung = false;
  d.sensor_thickness_um = 0;
  const EdsModel m = eds_model(column(22, 1, 2.0), 300e3, d);
  const double N = 1000, I = 2.5;  // electrons, 1/Å²
  const SpectrumImage s = eds_expected(intensity({22}, {I}, 1), m, N);
  const auto maps = element_maps(s, m, {{22, "Ka"}});
  const double sigma_K = bote_salvat_cross_section_A2(22, Shell::K, 300e3);
  const double expect = N * I * d.solid_angle_sr / (4 * kPi) * sigma_K * FluorYield(22, K_SHELL, nullptr) *
                        (RadRate(22, KL2_LINE, nullptr) + RadRate(22, KL3_LINE, nullptr)) * std::erf(std::sqrt(2 * std::log(2.0)) * 2 / std::sqrt(2.0));
  EXPECT_NEAR(maps[0].counts[0] / expect, 1.0, 0.01);
  EXPECT_NEAR(std::erf(std::sqrt(2 * std::log(2.0)) * 2 / std::sqrt(2.0)), 0.98146, 1e-5);
}

TEST(Eds, AbsentElementMapIsZeroWithinNoise) {
  // SrTiO3 with Fe asked for but absent: the clean Fe Kα map is only the background
  // interpolation error (Kramers ∝ 1/E is convex; over ±2.5 FWHM ≈ ±0.4 keV at 6.4 keV the
  // straight line overestimates by ~(0.4/6.4)² ≈ 0.4 % of the background): bound 1 % of
  // the window's counts. The noisy map averages to 0 within 4 standard errors.
  EdsDetector d;
  const Structure st = srtio3(39.05);
  const EdsModel m = eds_model(st, 300e3, d, {8, 22, 26, 38});
  const std::size_t np = 400;
  // 1e11 electrons per position: far above a real dwell (atomic-resolution maps hold a few
  // counts per pixel), so that the background under the Fe window is hundreds of counts and
  // its subtraction is tested at a meaningful noise level.
  const SpectrumImage clean = eds_expected(intensity({8, 22, 26, 38}, {30.0, 10.0, 0.0, 10.0}, np), m, 1e11);
  const SpectrumImage noisy = poisson_spectra(clean, 11, 0);
  const auto mc = element_maps(clean, m, {{26, "Ka"}, {22, "Ka"}});
  const auto mn = element_maps(noisy, m, {{26, "Ka"}, {22, "Ka"}});
  double window = 0;
  for (std::size_t c = mc[0].window_first; c <= mc[0].window_last; ++c) window += clean.values[c];
  ASSERT_GT(window, 100.0);  // there is a background to subtract
  EXPECT_LT(std::fabs(mc[0].counts[0]), 0.01 * window);
  double mean = 0;
  for (double v : mn[0].counts) mean += v / double(np);
  // Var(peak − bg) ≈ window counts × (1 + window/(2·side)) ≈ 3 × window (side windows half as wide).
  EXPECT_LT(std::fabs(mean), 4 * std::sqrt(3 * window / double(np)));
  EXPECT_GT(mc[1].counts[0], 10 * std::sqrt(window));  // Ti, present, stands far above the noise
}

TEST(Eds, PoissonIsSeededAndThreadIndependent) {
  EdsDetector d;
  d.channels = 1024;
  const EdsModel m = eds_model(srtio3(3.905), 200e3, d);
  const SpectrumImage clean = eds_expected(intensity({8, 22, 38}, {3.0, 1.0, 1.0}, 37), m, 5e4);
  omp_set_num_threads(1);
  const SpectrumImage a = poisson_spectra(clean, 5, 2);
  omp_set_num_threads(2);
  const SpectrumImage b = poisson_spectra(clean, 5, 2);
  omp_set_num_threads(omp_get_num_procs());
  EXPECT_EQ(a.values, b.values);
  EXPECT_NE(poisson_spectra(clean, 6, 2).values, a.values);
  // The counts are Poisson: the total over the image is within 5σ of the expected total.
  const double et = std::accumulate(clean.values.begin(), clean.values.end(), 0.0);
  const double nt = std::accumulate(a.values.begin(), a.values.end(), 0.0);
  EXPECT_LT(std::fabs(nt - et), 5 * std::sqrt(et));
}

TEST(Eds, SelfAbsorptionFollowsTheThinFilmFormula) {
  // A(E) = (1 − e^{−χ})/χ, χ = (μ/ρ)(E)·ρ·t/sin θ: the ratio of the O Kα line's detected
  // fraction with and without absorption must equal it, with μ/ρ of SrTiO3 from xraylib's
  // elemental values by mass fraction and ρ from the cell (5.12 g/cm³ for a = 3.905 Å).
  const Structure st = srtio3(500 * 3.905);
  EdsDetector d;
  d.sensor_thickness_um = 0;
  const EdsModel plain = eds_model(st, 300e3, d);
  d.self_absorption = true;
  const EdsModel absorbed = eds_model(st, 300e3, d);
  const double E = 1e3 * LineEnergy(8, KL3_LINE, nullptr);
  const double w[3] = {87.62, 47.867, 3 * 15.999};  // Sr, Ti, O3 (g/mol)
  const double mass = AtomicWeight(38, nullptr) + AtomicWeight(22, nullptr) + 3 * AtomicWeight(8, nullptr);
  ASSERT_NEAR(mass, w[0] + w[1] + w[2], 0.05);
  const double mu = (AtomicWeight(38, nullptr) * CS_Total(38, E / 1e3, nullptr) + AtomicWeight(22, nullptr) * CS_Total(22, E / 1e3, nullptr) +
                     3 * AtomicWeight(8, nullptr) * CS_Total(8, E / 1e3, nullptr)) / mass;
  const double rho = mass / 6.02214076e23 / (3.905 * 3.905 * 3.905 * 1e-24);
  EXPECT_NEAR(rho, 5.12, 0.01);
  const double chi = mu * rho * 500 * 3.905e-8 / std::sin(18 * kPi / 180);
  auto detected = [](const EdsModel& m, int Z, const char* iupac) {
    const std::size_t e = std::size_t(std::find(m.elements.begin(), m.elements.end(), Z) - m.elements.begin());
    for (const auto& l : m.lines[e])
      if (l.line.iupac == iupac) return l.detected;
    return -1.0;
  };
  EXPECT_NEAR(detected(absorbed, 8, "K-L3") / detected(plain, 8, "K-L3"), -std::expm1(-chi) / chi, 1e-9);
  // Soft O Kα is absorbed much more than hard Sr Kα.
  EXPECT_LT(detected(absorbed, 8, "K-L3") / detected(plain, 8, "K-L3"), 0.9);
  EXPECT_GT(detected(absorbed, 38, "K-L3") / detected(plain, 38, "K-L3"), 0.99);
}

TEST(Eds, BadRequestsAreNamed) {
  EdsDetector d;
  const EdsModel m = eds_model(srtio3(3.905), 300e3, d);
  EXPECT_NE(message_of([&] { element_maps(eds_expected(intensity({8, 22, 38}, {1, 1, 1}, 1), m, 1), m, {{26, "Ka"}}); })
                .find("Fe (Z=26) is not in the model"),
            std::string::npos);
  EXPECT_NE(message_of([&] { element_maps(eds_expected(intensity({8, 22, 38}, {1, 1, 1}, 1), m, 1), m, {{8, "La"}}); })
                .find("has no La line"),
            std::string::npos);
  EXPECT_THROW(eds_expected(intensity({8, 22}, {1, 1}, 1), m, 1), std::out_of_range);  // Sr not recorded
  EXPECT_THROW(eds_model(srtio3(3.905), -1, d), std::invalid_argument);
  const auto req = default_map_requests(m);
  EXPECT_NE(std::find(req.begin(), req.end(), std::pair<int, std::string>{38, "Ka"}), req.end());
  EXPECT_NE(std::find(req.begin(), req.end(), std::pair<int, std::string>{22, "Ka"}), req.end());
  EXPECT_NE(std::find(req.begin(), req.end(), std::pair<int, std::string>{8, "Ka"}), req.end());
}

// ---- EELS -------------------------------------------------------------------------------

TEST(Eels, LogRatioRecoversThicknessOverMeanFreePath) {
  // The low loss is a Poisson sum of plasmon self-convolutions, so ln(I_total/I_0) must
  // return t/λ (issue #15: within 2 %). I_0 is taken up to 4 eV (5 zero-loss FWHMs: the
  // Gaussian is complete there) and the Drude single-scattering distribution ∝ E at small
  // losses puts < 0.1 % of itself below 4 eV; the 1000 eV axis loses the part of the
  // distribution beyond it (Drude tail ∝ E⁻³). Clean and noisy (1e7 electrons) spectra.
  EelsSettings st;
  st.channels = 2020;  // −10 … 1000 eV
  st.core_loss = false;
  for (double cells : {10.0, 100.0, 400.0}) {  // t/λ ≈ 0.045, 0.45, 1.8 (λ = 872 Å)
    const Structure s = srtio3(3.905 * cells);
    const EelsModel m = eels_model(s, 200e3, st);
    const double tau = m.thickness_A / m.mean_free_path_A;
    const SpectrumImage clean = eels_expected(intensity({8, 22, 38}, {1, 1, 1}, 1), m, 1e7);
    const SpectrumImage noisy = poisson_spectra(clean, 3, 0);
    EXPECT_NEAR(log_ratio_thickness(clean.values.data(), clean, 4.0) / tau, 1.0, 0.02) << "t/λ=" << tau;
    EXPECT_NEAR(log_ratio_thickness(noisy.values.data(), noisy, 4.0) / tau, 1.0, 0.02) << "t/λ=" << tau;
    // Every electron is somewhere on the axis: the low loss sums to 1 per electron less what
    // lies beyond 1000 eV (< 1 % for these thicknesses).
    const double total = std::accumulate(m.low_loss.begin(), m.low_loss.end(), 0.0);
    EXPECT_LT(total, 1.0 + 1e-9);
    EXPECT_GT(total, 0.99);
  }
}

TEST(Eels, MalisMeanFreePathByHand) {
  // Egerton (2011) eq. 5.2 evaluated by hand for Si at 200 kV and β = 10 mrad: Z_eff = 14,
  // E_m = 7.6·14^0.36 = 19.66 eV, F = 1.1957/1.3914² = 0.6176, λ = 106·0.6176·200 /
  // (19.66·ln(2·10·200/19.66)) = 125.3 nm (published measurements for Si at 200 kV and
  // ~10 mrad lie near 120–150 nm). 0.1 % for the hand rounding.
  Structure si;
  si.cell = {5.43, 5.43, 5.43};
  si.atoms.push_back({14, 0, 0, 0, 1, 0});
  EXPECT_NEAR(malis_mean_free_path_A(si, 200e3, 10.0) / 1253.0, 1.0, 1e-3);
  // λ grows with β only logarithmically and with E0 about linearly.
  EXPECT_GT(malis_mean_free_path_A(si, 200e3, 10.0), malis_mean_free_path_A(si, 200e3, 20.0));
  EXPECT_GT(malis_mean_free_path_A(si, 300e3, 10.0), malis_mean_free_path_A(si, 200e3, 10.0));
  EXPECT_THROW(malis_mean_free_path_A(si, 200e3, 0.0), std::invalid_argument);
}

TEST(Eels, EdgeCountsIntegrateToTheCollectedCrossSection) {
  // Core loss only: the Ti L3 edge's counts on the axis above its onset add up to
  // N · I · σ_L3 · η · (1 − (E_end/E_onset)^{1−r}), with σ from Bote–Salvat and the onset
  // from xraylib; summing only up to the L2 onset keeps the L2/L1 edges out. Exact up to
  // double summation: 1e-9.
  EelsSettings st;
  st.low_loss = false;
  st.channel_width_eV = 0.25;
  st.channels = 4000;  // −10 … 990 eV
  const Structure s = column(22, 1, 2.0);
  const EelsModel m = eels_model(s, 300e3, st, {22});
  const double N = 1e6, I = 2.0;
  const SpectrumImage sp = eels_expected(intensity({22}, {I}, 1), m, N);
  const EelsEdge* l3 = nullptr;
  for (const auto& e : m.edges[0])
    if (e.shell == Shell::L3) l3 = &e;
  ASSERT_NE(l3, nullptr);
  EXPECT_EQ(l3->onset_eV, 1e3 * EdgeEnergy(22, L3_SHELL, nullptr));
  EXPECT_EQ(l3->cross_section_A2, bote_salvat_cross_section_A2(22, Shell::L3, 300e3));
  EXPECT_GT(l3->collected, 0.0);
  EXPECT_LE(l3->collected, 1.0);
  const double l2 = 1e3 * EdgeEnergy(22, L2_SHELL, nullptr);
  // Channels wholly between the L3 onset and the L2 onset.
  double counts = 0, e_lo = 0, e_hi = 0;
  for (std::size_t c = 0; c < sp.channels; ++c) {
    const double a = st.energy_start_eV + double(c) * st.channel_width_eV, b = a + st.channel_width_eV;
    if (a >= l3->onset_eV && b <= l2) {
      if (counts == 0) e_lo = a;
      counts += sp.values[c];
      e_hi = b;
    }
  }
  // Under the L3 edge lies the tail of the Ti M1 edge (60 eV): add every lower edge's share.
  const double r = st.edge_exponent;
  double expect = 0;
  for (const auto& e : m.edges[0])
    if (e.onset_eV <= e_lo)
      expect += N * I * e.cross_section_A2 * e.collected * (std::pow(e_lo / e.onset_eV, 1 - r) - std::pow(e_hi / e.onset_eV, 1 - r));
  EXPECT_NEAR(counts / expect, 1.0, 1e-9);
  EXPECT_EQ(m.edges[0].size(), 4u);  // M1 (60 eV), L3, L2, L1; M2/M3 (≈ 35 eV) are below min_edge_eV, K (4966 eV) off the axis
  // A larger collection angle collects more (η rises with β).
  st.collection_semiangle_mrad = 5;
  const EelsModel narrow = eels_model(s, 300e3, st, {22});
  EXPECT_LT(narrow.edges[0][0].collected, m.edges[0][0].collected);
}

TEST(Eels, EdgeMapRemovesAPowerLawBackground) {
  // A carbon column, no low loss, an explicit E^{−3} background: the C K edge (284 eV; C has
  // no other edge above 50 eV) sits on a pure power law, which the two-area fit removes
  // exactly, so the map is the edge's own counts in the signal window,
  // N·I·σ·η·[(Ea/E_K)^{−2} − (Eb/E_K)^{−2}] — to 1e-6 (double arithmetic; the bisection for
  // r converges to 1e-15). A Ti request is refused by name; a noisy map averages to the
  // clean one within 5 standard errors.
  EelsSettings st;
  st.low_loss = false;
  st.background_per_eV = 1e-3;
  st.background_reference_eV = 100;
  st.background_exponent = 3.0;
  const EelsModel m = eels_model(column(6, 1, 2.0), 200e3, st);
  ASSERT_EQ(m.edges[0].size(), 1u);
  const EelsEdge& k = m.edges[0][0];
  const double N = 1e9, I = 3.0;
  const SpectrumImage clean = eels_expected(intensity({6}, {I}, 200), m, N);
  const auto maps = eels_edge_maps(clean, m, {{6, Shell::K, 40, 5, 50}});
  // Signal window rounded to channels: centres in [onset, onset + 50).
  const double w = st.channel_width_eV, lo = st.energy_start_eV;
  const double Ea = lo + std::ceil((k.onset_eV - lo) / w - 0.5) * w, Eb = lo + std::ceil((k.onset_eV + 50 - lo) / w - 0.5) * w;
  auto edge_integral = [&](double a, double b) {
    a = std::max(a, k.onset_eV);
    return b > a ? std::pow(a / k.onset_eV, -2.0) - std::pow(b / k.onset_eV, -2.0) : 0.0;
  };
  const double expect = N * I * k.cross_section_A2 * k.collected * edge_integral(Ea, Eb);
  EXPECT_NEAR(maps[0].counts[0] / expect, 1.0, 1e-6);
  const SpectrumImage noisy = poisson_spectra(clean, 9, 0);
  const auto mn = eels_edge_maps(noisy, m, {{6, Shell::K, 40, 5, 50}});
  double mean = 0, var = 0;
  for (double v : mn[0].counts) mean += v / 200;
  for (double v : mn[0].counts) var += (v - mean) * (v - mean) / 199;
  EXPECT_LT(std::fabs(mean - maps[0].counts[0]), 5 * std::sqrt(var / 200));
  EXPECT_NE(message_of([&] { eels_edge_maps(clean, m, {{22, Shell::L3}}); }).find("Ti (Z=22) L3 edge"), std::string::npos);
}
