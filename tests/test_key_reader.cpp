// The typed key tables read a scenario's free-form sections (key_reader.hpp): every row's
// field has a type its key type can be read into, the default column states what reading
// nothing gives, values land in their fields, and bad values name the key and its place.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "stemtwin/scenario/key_reader.hpp"
#include "stemtwin/scenario/scenario_run.hpp"
#include "stemtwin/specimen/names.hpp"

using namespace stemtwin;

namespace {

/// A scenario with the given acquisition and builder (flow maps), small and valid otherwise.
std::string scenario(const std::string& acquisition, const std::string& builder = "{type: perovskite}") {
  std::string s = "name: keys\nseed: 3\nsamples: 1\nspecimen:\n  builder: " + builder +
                  "\n  repeat: [1, 1, 1]\nmicroscope: {energy: 200e3, convergence: 20, current: 25}\n"
                  "scan: {start: [0, 0], end: [3.905, 3.905], step: 0.5, dwell: 2}\n"
                  "detectors:\n  - {name: haadf, type: annular, inner: 70, outer: 150}\n";
  if (!acquisition.empty()) s += "acquisition: " + acquisition + "\n";
  return s;
}

SampledScenario sample(const std::string& text) { return sample_parameters(parse_scenario_text(text, "keys.yaml"), 0); }

/// The key types each kind of field may take (a mismatch would read a key the wrong way).
template <class T>
std::string row_type_problems(std::span<const KeyRow<T>> table) {
  std::string out;
  for (const KeyRow<T>& row : table) {
    const KeyType k = row.key.type;
    const bool ok = std::visit(
        [&](auto f) {
          using F = decltype(f);
          if constexpr (std::is_same_v<F, std::monostate>) return k == KeyType::Map || k == KeyType::MapList;
          else if constexpr (std::is_same_v<F, double& (*)(T&)> || std::is_same_v<F, std::uint64_t& (*)(T&)>) return k == KeyType::Number;
          else if constexpr (std::is_same_v<F, int& (*)(T&)>) return k == KeyType::Number || k == KeyType::Element;
          else if constexpr (std::is_same_v<F, bool& (*)(T&)>) return k == KeyType::Flag;
          else if constexpr (std::is_same_v<F, std::vector<double>& (*)(T&)>) return k == KeyType::Numbers;
          else if constexpr (std::is_same_v<F, std::vector<SpeciesFraction>& (*)(T&)>) return k == KeyType::Species;
          else if constexpr (std::is_same_v<F, XY (*)(T&)>) return k == KeyType::Pair || k == KeyType::Numbers;
          else return k == KeyType::Word;
        },
        row.field);
    if (!ok) out += std::string(row.key.path) + " ";
  }
  return out;
}

}  // namespace

TEST(KeyReader, EveryRowHasAFieldOfItsType) {
  EXPECT_EQ(row_type_problems(acquisition_rows()), "");
  EXPECT_EQ(row_type_problems(perovskite_rows()), "");
  EXPECT_EQ(row_type_problems(builder_modifier_rows()), "");
  EXPECT_EQ(row_type_problems(film_rows()), "");
  EXPECT_EQ(row_type_problems(nanoparticle_rows()), "");
  EXPECT_EQ(row_type_problems(world_rows()), "");
  EXPECT_EQ(row_type_problems(world_window_rows()), "");
  // The KeySpec views (the key check's and the docs') are the same rows in the same order.
  ASSERT_EQ(acquisition_keys().size(), acquisition_rows().size());
  for (std::size_t i = 0; i < acquisition_rows().size(); ++i)
    EXPECT_STREQ(acquisition_keys()[i].path, acquisition_rows()[i].key.path);
}

TEST(KeyReader, DefaultColumnsStateWhatReadingNothingGives) {
  for (const std::string& m : key_default_mismatches()) ADD_FAILURE() << m;
  // The check itself sees a wrong default.
  using P = PerovskiteParams;
  const KeyRow<P> wrong[] = {{{"a", KeyType::Number, "Å", "4", ""}, field<P, &P::a>()},
                             {{"arrangement", KeyType::Word, "", "layered", ""}, word<P, kSiteArrangementNames, &P::arrangement>()},
                             {{"vacancy_order", KeyType::Flag, "", "true", ""}, field<P, &P::vacancy_order>()}};
  EXPECT_EQ(key_default_mismatches(std::span<const KeyRow<P>>(wrong), "wrong").size(), 3u);
}

TEST(KeyReader, AcquisitionValuesLandInTheirFields) {
  const SampledScenario s = sample(scenario(
      "{noise: false, beam_current_pA: 40, scan: {rotation_deg: 12}, drift: {velocity_A_per_s: [1, 2]}, mains: {amplitude_A: 0.3},"
      " scan_noise: {frequencies_Hz: [50, 150], rms_A: 0.1}, annular: {adc_bits: 12, afterglow: {time_constant_us: 3}},"
      " camera: {mode: integrating, dead_time_model: paralyzable, counter_max: 4095}}"));
  bool noisy = true;
  const AcquisitionSettings a = acquisition_settings(s, noisy);
  EXPECT_FALSE(noisy);
  EXPECT_EQ(a.beam_current_pA, 40);
  EXPECT_EQ(a.scan.rotation_deg, 12);
  EXPECT_EQ(a.distortion.drift.velocity_x_A_per_s, 1);
  EXPECT_EQ(a.distortion.drift.velocity_y_A_per_s, 2);
  EXPECT_EQ(a.distortion.mains.amplitude_x_A, 0.3);  // one number: both axes
  EXPECT_EQ(a.distortion.mains.amplitude_y_A, 0.3);
  EXPECT_EQ(a.distortion.mains.frequency_Hz, 50);    // absent: MainsParams' default
  EXPECT_EQ(a.distortion.scan_noise.frequencies_Hz, (std::vector<double>{50, 150}));
  EXPECT_EQ(a.annular.adc_bits, 12);
  EXPECT_EQ(a.annular.afterglow.time_constant_us, 3);
  EXPECT_EQ(a.annular.afterglow.delayed_fraction, 1);
  EXPECT_FALSE(a.annular.shot_noise);  // noise: false
  EXPECT_EQ(a.camera.mode, CameraMode::Integrating);
  EXPECT_EQ(a.camera.counting.model, DeadTimeModel::Paralyzable);
  EXPECT_EQ(a.camera.counting.counter_max, 4095u);
  // Without the section: microscope.current and no noise at all.
  const AcquisitionSettings none = acquisition_settings(sample(scenario("")), noisy);
  EXPECT_EQ(none.beam_current_pA, 25);
  EXPECT_FALSE(noisy);
}

TEST(KeyReader, BadValuesNameTheKeyAndItsPlace) {
  bool noisy = false;
  try {
    acquisition_settings(sample(scenario("{camera: {mode: sideways}}")), noisy);
    FAIL() << "an unknown camera mode was accepted";
  } catch (const ScenarioError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("acquisition.camera.mode"), std::string::npos) << m;
    EXPECT_NE(m.find("sideways"), std::string::npos) << m;
    EXPECT_NE(m.find("keys.yaml"), std::string::npos) << m;
  }
  try {
    build_specimen(sample(scenario("", "{type: defects, vacancies: [{element: O, fraction: 0.1}, {fraction: 0.1}]}")));
    FAIL() << "a vacancy entry without its element was accepted";
  } catch (const ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find("specimen.builder.vacancies[1].element"), std::string::npos) << e.what();
  }
}

TEST(KeyReader, BuilderKeysReachTheBuilders) {
  // A perovskite's a sets the cell; a film's film keeps LaFeO3's bulk a unless given.
  const Specimen p = build_specimen(sample(scenario("", "{type: perovskite, a: 4.0, A: {La: 1}}")));
  EXPECT_DOUBLE_EQ(p.structure.cell.x, 4.0);
  EXPECT_TRUE(std::any_of(p.structure.atoms.begin(), p.structure.atoms.end(), [](const Atom& a) { return a.Z == 57; }));
  const Specimen n = build_specimen(sample(scenario("", "{type: nanoparticle, cell: [30, 32], element: Pt, support_thickness: 0}")));
  EXPECT_DOUBLE_EQ(n.structure.cell.x, 30);
  EXPECT_DOUBLE_EQ(n.structure.cell.y, 32);
  EXPECT_TRUE(std::all_of(n.structure.atoms.begin(), n.structure.atoms.end(), [](const Atom& a) { return a.Z == 78; }));
}

TEST(KeyReader, WorldKeysReachTheWorldAndItsWindow) {
  // The World's keys set WorldParams (others keep world.hpp's defaults); x, y, size set the
  // dataset window: its side is the cell, and a window at the world's edge is shifted to the origin.
  const SampledScenario s = sample(scenario("", "{type: world, thickness: 120, grain_size: 300, x: 8000, y: 8000, size: 20}"));
  const WorldParams p = world_params(*s.builder);
  EXPECT_EQ(p.thickness_A, 120);
  EXPECT_EQ(p.grain_A, 300);
  EXPECT_EQ(p.film_A, WorldParams{}.film_A);
  WorldWindowKeys w;
  read_keys(*s.builder, world_window_rows(), w, "specimen.builder");
  EXPECT_EQ(w.x, 8000);
  EXPECT_EQ(w.y, 8000);
  EXPECT_EQ(w.size, 20);
  const Specimen sp = build_specimen(s);
  EXPECT_EQ(sp.structure.cell.x, 20);
  EXPECT_EQ(sp.structure.cell.z, 120);
  // Absent: NaN (the world's centre) and 40.
  WorldWindowKeys none;
  read_keys(*sample(scenario("", "{type: world}")).builder, world_window_rows(), none, "specimen.builder");
  EXPECT_TRUE(std::isnan(none.x) && std::isnan(none.y));
  EXPECT_EQ(none.size, 40);
  // Every key of both tables is allowed by the key check, and only they (and type).
  std::string all = "{type: world";
  for (const KeySpec& k : world_keys()) all += std::string(", ") + k.path + ": 1";
  for (const KeySpec& k : world_window_keys()) all += std::string(", ") + k.path + ": 1";
  EXPECT_NO_THROW(check_physics_keys(parse_scenario_text(scenario("", all + "}"), "keys.yaml")));
  try {
    check_physics_keys(parse_scenario_text(scenario("", "{type: world, colour: 3}"), "keys.yaml"));
    ADD_FAILURE() << "an unknown world key was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("colour"), std::string::npos) << e.what();
  }
}
