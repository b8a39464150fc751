// Where in z the inelastic recorder reads the probe (spectroscopy.hpp, docs/spectroscopy.md,
// "Where the probe is read"): at the atom's own depth, linear in z between the intensity
// entering its slice and entering the next (the exit wave below the last slice). So the
// signal is continuous as an atom moves through the slices, and frozen phonons, which push
// atoms of a plane lying on a slice boundary to either side of it, do not read half of them
// one slice early.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "stemtwin/physics/engine.hpp"
#include "stemtwin/physics/spectroscopy.hpp"

using namespace stemtwin;

namespace {

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

/// A Sr column at (4, 4) with atoms at the middle of each 1 Å slice, in an 8 × 8 × lz cell.
Structure sr_column(std::size_t n) {
  Structure s;
  s.cell = {8, 8, double(n)};
  for (std::size_t i = 0; i < n; ++i) s.atoms.push_back({38, 4.0, 4.0, double(i) + 0.5, 1.0, 0.0});
  return s;
}

/// The probe intensity the recorder reads at a Ti "probe atom" at (x, y, z) while the beam
/// crosses `specimen`: the recorder is given its own one-atom structure (same cell), so the
/// wave is the specimen's whatever z is and only the read-out moves.
double read_at(const Structure& specimen, const Grid& g, double x, double y, double z) {
  Structure probe_atom;
  probe_atom.cell = specimen.cell;
  probe_atom.atoms.push_back({22, x, y, z, 1.0, 0.0});
  InelasticRecorder rec(probe_atom, 0, {0.2, {}});
  simulate_stem(specimen, g, optics300(), {{4.0, 4.0}}, {AnnularDetector{"haadf", 60, 75}}, settings(1.0), nullptr, &rec);
  return rec.result().at(0, 22);
}

}  // namespace

TEST(InelasticDepth, SignalIsContinuousInZThroughTheSlices) {
  // A read-out point 0.3 Å off a Sr column, where channelling changes the intensity by a
  // few % per 1 Å slice (measured up to 3.6 %), moved in z through four slices. Linear interpolation means:
  // (a) just above a boundary (1e-3 Å) the value differs from the boundary's by 1e-3 of the
  // step |I_b − I_{b−1}| between the two entrance planes — the old entrance-only reading
  // jumped by the whole step, so the bound 2e-3 × step (×2 for float rounding of
  // the weights; the wave itself is the same bytes in every run) would catch it; (b) at mid-slice the
  // value is the mean of the two boundaries' (1e-6 relative: float row sums).
  const Grid g(8.0, 8.0, 96, 96);
  const Structure s = sr_column(4);
  const double x = 4.3, y = 4.0;
  std::vector<double> plane;  // at z = 0, 1, 2, 3, 4 (4 = the exit surface)
  for (int b = 0; b <= 4; ++b) plane.push_back(read_at(s, g, x, y, double(b)));
  double largest_step = 0;
  for (int b = 1; b <= 4; ++b) largest_step = std::max(largest_step, std::fabs(plane[b] - plane[b - 1]));
  ASSERT_GT(largest_step, 0.01 * plane[0]) << "the specimen must change the intensity for the test to mean anything";
  for (int b = 1; b <= 3; ++b) {
    const double step = std::fabs(plane[b] - plane[b - 1]);
    const double below = read_at(s, g, x, y, double(b) - 1e-3);
    EXPECT_LE(std::fabs(below - plane[b]), 2e-3 * step + 1e-6 * plane[b]) << "boundary z = " << b;
  }
  for (int b = 0; b < 4; ++b) {
    const double mid = read_at(s, g, x, y, double(b) + 0.5);
    EXPECT_NEAR(mid / (0.5 * (plane[b] + plane[b + 1])), 1.0, 1e-6) << "slice " << b;
  }
}

TEST(InelasticDepth, ExitSurfaceReadsTheExitWave) {
  // An atom at the exit surface (t = 1 in the last slice) reads the exit wave: the last
  // slice's transmitted wave propagated through its thickness. The same specimen with one
  // more, empty 1 Å slice below gives that wave as the wave entering its last slice (the
  // empty slice transmits nothing away), read at the same point: equal up to float rounding
  // (1e-6 relative).
  const Grid g(8.0, 8.0, 96, 96);
  const Structure s = sr_column(3);
  Structure longer = s;
  longer.cell.z += 1.0;
  EXPECT_NEAR(read_at(s, g, 4.3, 4.0, 3.0) / read_at(longer, g, 4.3, 4.0, 3.0), 1.0, 1e-6);
}

TEST(InelasticDepth, FrozenPhononsReadAlikeWithPlanesOnOrBetweenSliceBoundaries) {
  // SrTiO3 [001], 2 × 2 cells, 2 and 4 cells thick (7.8, 15.6 Å), slices a/2; 300 kV, 25 mrad
  // probe on a Sr column, a Ti–O column and an O column; 0.3 Å footprints; 16 frozen-phonon
  // configurations with realistic rms (Sr 0.088, Ti 0.075, O 0.094 Å). Per atom and element,
  // the phonon average over the static signal, F = I_frozen / I_static, holds the physics of
  // the thermal vibrations (smearing of the columns' potential and of the atoms under the
  // probe, TDS: measured 0.92–1.02 here). It must not depend on where the slice boundaries
  // sit: with the planes ON the boundaries (z shift 0) thermal displacements push half of a
  // plane's atoms into the slice above, and an entrance-only reading read those one whole
  // slice (1.95 Å) early; with the planes half-way between boundaries (shift a/4) no
  // displacement crosses one. So F(on) / F(between) must be 1: measured within 0.9 % with
  // the depth interpolation (the rest: the two slicings' own discretisation and the
  // 16-configuration sampling error, ~1 %). Bound 4 %. NOTE: on this specimen the old
  // entrance-only reading also stays within 1.1 % (and within 2.6 % at 10 cells, where the
  // interpolated reading reaches 4.8 % for O under the Sr column): the slice-early reading
  // changes ρ little here, so this test guards the invariant but does not by itself
  // separate the two readings; SignalIsContinuousInZThroughTheSlices does.
  constexpr double a = 3.905;
  const Grid g(2 * a, 2 * a, 96, 96);
  const std::vector<Point2> pos = {{a, a}, {1.5 * a, 1.5 * a}, {1.5 * a, a}};  // Sr, Ti–O, O columns
  const std::vector<Detector> d = {AnnularDetector{"haadf", 60, 75}};
  auto srtio3 = [&](int nz, double shift, bool thermal) {
    Structure s;
    s.cell = {2 * a, 2 * a, nz * a};
    auto add = [&](int Z, double x, double y, double z, double rms) { s.atoms.push_back({Z, x, y, z + shift, 1.0, thermal ? rms : 0.0}); };
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        for (int k = 0; k < nz; ++k) {
          const double x = a * i, y = a * j, z = a * k;
          add(38, x, y, z, 0.088);
          add(22, x + a / 2, y + a / 2, z + a / 2, 0.075);
          add(8, x + a / 2, y + a / 2, z, 0.094);
          add(8, x + a / 2, y, z + a / 2, 0.094);
          add(8, x, y + a / 2, z + a / 2, 0.094);
        }
    return s;
  };
  auto record = [&](const Structure& s, std::size_t configurations) {
    StemSettings st = settings(a / 2);
    st.phonon_configurations = configurations;
    st.seed = 7;
    InelasticRecorder rec(s, 7, {0.3, {}});
    simulate_stem(s, g, optics300(), pos, d, st, nullptr, &rec);
    return rec.result();
  };
  for (int nz : {2, 4}) {
    std::vector<double> f[2];  // [on, between]: F per (position, element)
    for (int between = 0; between < 2; ++between) {
      const double shift = between ? a / 4 : 0.0;
      const ElementIntensity still = record(srtio3(nz, shift, false), 1);
      const ElementIntensity frozen = record(srtio3(nz, shift, true), 16);
      for (std::size_t p = 0; p < pos.size(); ++p)
        for (int Z : {38, 22, 8}) f[between].push_back(frozen.at(p, Z) / still.at(p, Z));
    }
    for (std::size_t i = 0; i < f[0].size(); ++i) {
      std::printf("nz %d pos %zu Z %d F_on %.4f F_between %.4f ratio %.4f\n", nz, i / 3, std::vector<int>{38, 22, 8}[i % 3],
                  f[0][i], f[1][i], f[0][i] / f[1][i]);
      EXPECT_NEAR(f[0][i] / f[1][i], 1.0, 0.04) << nz << " cells, position " << i / 3 << ", element " << i % 3;
    }
  }
}
