// The one read-out from recorded intensity to spectra (acquisition/spectrometer.hpp,
// spectrometer_spectra), which the dataset runner (read_spectrometer) and the session
// (make_spectra) both call.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "stemtwin/acquisition/spectrometer.hpp"

using namespace stemtwin;

namespace {

Structure srtio3_cell() {
  Structure s;
  const double a = 3.905;
  s.cell = {a, a, a};
  s.atoms = {{38, 0, 0, 0, 1, 0}, {22, a / 2, a / 2, a / 2, 1, 0}, {8, a / 2, a / 2, 0, 1, 0}, {8, a / 2, 0, a / 2, 1, 0},
             {8, 0, a / 2, a / 2, 1, 0}};
  return s;
}

/// Three positions with different probe intensities at O, Ti, Sr (1/Å², ascending Z).
ElementIntensity intensity() {
  ElementIntensity I;
  I.elements = {8, 22, 38};
  I.positions = 3;
  I.depths_A = {3.905};
  I.values = {0.9, 0.05, 0.01, 0.2, 0.7, 0.03, 0.1, 0.02, 1.1};
  return I;
}

SpectrometerSpec spec(SpectrometerKind kind) {
  SpectrometerSpec s;
  s.name = kind == SpectrometerKind::Eds ? "eds" : "eels";
  s.kind = kind;
  return s;
}

}  // namespace

TEST(SpectrometerReadout, OneDoseAndAUniformListGiveTheSameBytes) {
  const Structure st = srtio3_cell();
  for (SpectrometerKind k : {SpectrometerKind::Eds, SpectrometerKind::Eels}) {
    const auto a = spectrometer_spectra(spec(k), st, 300e3, intensity(), {2.5e6}, 7, 3, 1);
    const auto b = spectrometer_spectra(spec(k), st, 300e3, intensity(), {2.5e6, 2.5e6, 2.5e6}, 7, 3, 1);
    ASSERT_EQ(a.expected.values.size(), b.expected.values.size());
    EXPECT_EQ(0, std::memcmp(a.expected.values.data(), b.expected.values.data(), a.expected.values.size() * sizeof(double)));
    EXPECT_EQ(a.counts.values, b.counts.values);
    EXPECT_NE(a.counts.values, a.expected.values);
  }
}

TEST(SpectrometerReadout, ADosePerPositionIsEachPositionAtItsOwnDose) {
  // Position p of a run with doses {N0, N1, N2} equals position p of a run at N_p alone,
  // to the byte, and the Poisson counts keep their streams (seed, sample, stream·2^40 +
  // position). EDS and EELS (whose low loss is dose × one spectrum, not intensity-borne).
  const Structure st = srtio3_cell();
  const std::vector<double> doses = {1e5, 4e6, 2.5e7};
  for (SpectrometerKind k : {SpectrometerKind::Eds, SpectrometerKind::Eels}) {
    const auto all = spectrometer_spectra(spec(k), st, 300e3, intensity(), doses, 7, 3, 0);
    const std::size_t nc = all.expected.channels;
    ASSERT_EQ(all.expected.values.size(), doses.size() * nc);
    for (std::size_t p = 0; p < doses.size(); ++p) {
      const auto one = spectrometer_spectra(spec(k), st, 300e3, intensity(), {doses[p]}, 7, 3, 0);
      EXPECT_EQ(0, std::memcmp(all.expected.values.data() + p * nc, one.expected.values.data() + p * nc, nc * sizeof(double)))
          << p;
      EXPECT_EQ(0, std::memcmp(all.counts.values.data() + p * nc, one.counts.values.data() + p * nc, nc * sizeof(double))) << p;
    }
  }
}

TEST(SpectrometerReadout, ReadSpectrometerIsTheSharedRulePlusMaps) {
  const Structure st = srtio3_cell();
  const SpectrometerSpec s = spec(SpectrometerKind::Eds);
  const auto maps = spectrometer_maps(s, st, 300e3);
  const SpectrometerReadout r = read_spectrometer(s, st, 300e3, intensity(), 1e6, maps, 5, 2, 1);
  const auto sp = spectrometer_spectra(s, st, 300e3, intensity(), {1e6}, 5, 2, 1);
  EXPECT_EQ(r.expected.values, sp.expected.values);
  EXPECT_EQ(r.counts.values, sp.counts.values);
  EXPECT_EQ(r.clean_maps.size(), maps.size());
}

TEST(SpectrometerReadout, BadDoseListsAreNamed) {
  const Structure st = srtio3_cell();
  for (const std::vector<double>& doses : {std::vector<double>{1, 2}, std::vector<double>{1, -2, 3}}) {
    try {
      spectrometer_spectra(spec(SpectrometerKind::Eds), st, 300e3, intensity(), doses, 1, 0, 0);
      FAIL() << "no error";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("spectrometer 'eds'"), std::string::npos) << e.what();
    }
  }
}
