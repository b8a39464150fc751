// The instrument settings a dataset stores for its readers (/instrument, dataset/instrument.hpp):
// every sample's microscope and detector angles round-trip exactly, the readers (axes,
// preview, export) take them from the file — not from the scenario text, which these files
// replace by one that does not parse — and a file without them (from before /instrument)
// still previews and exports, without instrument metadata.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "stemtwin/dataset/axes.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/export.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "stemtwin/dataset/preview.hpp"
#include "stemtwin/scenario/dataset_layout.hpp"
#include "stemtwin/scenario/sample_wire.hpp"
#include "stemtwin/scenario/scenario.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {

// Sampled current and a sampled annular inner angle: the stored values differ per sample.
const char* kScenario = R"(name: instrument
seed: 5
samples: 3
specimen:
  builder: {type: perovskite}
microscope:
  energy: 300e3
  convergence: 21
  current: {loguniform: [5, 50]}
scan:
  start: [0, 0]
  fov: [2.0, 1.5]
  pixels: [4, 3]
  dwell: 2
detectors:
  - {name: haadf, type: annular, inner: {uniform: [60, 80]}, outer: 200}
  - {name: com, type: com}
  - {name: cam, type: pixelated, max_angle: 20}
acquisition:
  noise: true
)";

/// Text the writer stores instead of the scenario: a reader that parsed it would fail.
const char* kNotAScenario = "not: [a scenario";

fs::path tmpdir() {
  const fs::path d = fs::temp_directory_path() / ("stemtwin_test_instrument_" + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}

struct Cleanup : ::testing::Environment {
  void TearDown() override { fs::remove_all(tmpdir()); }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new Cleanup);

const ScenarioSpec& spec() {
  static const ScenarioSpec s = parse_scenario_text(kScenario, "instrument.yaml");
  return s;
}

DatasetLayout layout() {
  DatasetLayout l = layout_for(spec());
  l.diffraction.at(0).kx = 3, l.diffraction.at(0).ky = 3;  // what the runner fills from physics
  l.diffraction.at(0).sampling_x = l.diffraction.at(0).sampling_y = 10;
  l.pixel_size_A = {0.5, 0.5};
  return l;
}

SampleRecord record(const DatasetLayout& L, std::size_t i) {
  const SampledScenario s = sample_parameters(spec(), i);
  SampleRecord r;
  r.index = i;
  r.params = s.values;
  for (const auto& c : L.images) {
    Image im(L.nx, L.ny);
    for (std::size_t k = 0; k < im.size(); ++k) im.data[k] = double(k + i);
    r.images[c] = r.clean[c] = im;
  }
  r.instrument = instrument_settings(s);
  return r;
}

/// A dataset of the scenario's samples written with `L`; the stored scenario text does not parse.
std::string write(const DatasetLayout& L, const std::string& name) {
  const std::string path = (tmpdir() / name).string();
  DatasetWriter w = DatasetWriter::create(path, L, kNotAScenario, true);
  const auto& d = L.diffraction.at(0);
  const std::vector<float> row(L.nx * d.ky * d.kx, 1.0f);
  for (std::size_t i = 0; i < spec().total_samples(); ++i) {
    for (std::size_t y = 0; y < L.ny; ++y) w.write_diffraction_row(d.name, y, row.data());
    w.append_sample(record(L, i));
  }
  w.close();
  return path;
}

bool same(const InstrumentSettings& a, const InstrumentSettings& b) {
  if (a.detectors.size() != b.detectors.size()) return false;
  for (std::size_t i = 0; i < a.detectors.size(); ++i) {
    const auto &x = a.detectors[i], &y = b.detectors[i];
    if (x.name != y.name || x.type != y.type || x.inner_mrad != y.inner_mrad || x.outer_mrad != y.outer_mrad ||
        x.max_angle_mrad != y.max_angle_mrad)
      return false;
  }
  return a.energy_eV == b.energy_eV && a.convergence_mrad == b.convergence_mrad && a.current_pA == b.current_pA &&
         a.dwell_us == b.dwell_us && a.step_x_A == b.step_x_A && a.step_y_A == b.step_y_A;
}

}  // namespace

TEST(Instrument, LayoutCarriesTheFixedCalibrations) {
  const DatasetLayout L = layout();
  ASSERT_TRUE(L.instrument.stored);
  ASSERT_TRUE(L.instrument.energy_eV);
  EXPECT_EQ(*L.instrument.energy_eV, 300e3);
  ASSERT_EQ(L.instrument.detectors.size(), 3u);
  EXPECT_EQ(L.instrument.detectors[0].type, "annular");
  EXPECT_EQ(L.instrument.detectors[2].type, "pixelated");
  EXPECT_EQ(L.instrument.acquired_units.at("haadf"), "ADU");  // the acquisition section is on
  EXPECT_EQ(L.instrument.clean_units.at("com_idpc"), "mrad·Å");
  EXPECT_EQ(DatasetLayout::from_json(L.to_json()).to_json(), L.to_json());
  EXPECT_EQ(instrument_columns(L.instrument),
            (std::vector<std::string>{"energy_eV", "convergence_mrad", "current_pA", "dwell_us", "step_x_A", "step_y_A",
                                      "detectors/haadf/inner_mrad", "detectors/haadf/outer_mrad",
                                      "detectors/cam/max_angle_mrad"}));
}

TEST(Instrument, EverySampleRoundTripsExactlyWithoutTheScenarioText) {
  const DatasetLayout L = layout();
  const std::string path = write(L, "stored.h5");
  const DatasetReader r(path);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.scenario_text(), kNotAScenario);
  for (std::size_t i = 0; i < r.size(); ++i) {
    const auto in = r.instrument(i);
    ASSERT_TRUE(in);
    EXPECT_TRUE(same(*in, instrument_settings(sample_parameters(spec(), i)))) << "row " << i;
    ASSERT_TRUE(r.record(i).instrument);  // merge copies them
  }
  EXPECT_NE(r.instrument(0)->current_pA, r.instrument(1)->current_pA);  // sampled: one value per row
  EXPECT_NE(r.instrument(0)->detectors[0].inner_mrad, r.instrument(1)->detectors[0].inner_mrad);
  EXPECT_EQ(r.instrument(2)->convergence_mrad, 21.0);
  // Axes: the energy and units from the layout, so the k axes have 1/Å.
  const Calibration c = calibration_for(r.layout());
  ASSERT_TRUE(c.energy_eV);
  EXPECT_EQ(*c.energy_eV, 300e3);
  {
    h5::Handle f = h5::open_file(path, false);
    EXPECT_EQ(h5::read_attr_string(h5::open_dataset(f, "images/haadf"), "units"), "ADU");
    EXPECT_EQ(h5::read_attr_string(h5::open_group(f, "instrument/detectors/cam"), "type"), "pixelated");
  }
  // Export: HyperSpy's instrument metadata from the stored settings.
  const std::string out = (tmpdir() / "stored.hspy").string();
  export_dataset(path, out, {ExportFormat::Hspy, {"haadf"}, 0, true});
  h5::Handle e = h5::open_file(out, false);
  h5::Handle tem = h5::open_group(e, "Experiments/haadf/metadata/Acquisition_instrument/TEM");
  EXPECT_EQ(h5::read_attr_double(tem, "beam_energy"), 300.0);  // keV
  EXPECT_EQ(h5::read_attr_double(tem, "convergence_angle"), 21.0);
  EXPECT_FALSE(h5::has_attr(tem, "beam_current"));  // sampled: no common value
  h5::Handle det = h5::open_group(tem, "Detector/haadf");
  EXPECT_EQ(h5::read_attr_double(det, "inner_angle"), r.instrument(0)->detectors[0].inner_mrad);
  EXPECT_EQ(h5::read_attr_double(det, "outer_angle"), 200.0);
  // Preview: renders from the stored settings.
  EXPECT_GT(render_sample_sheet(r, 1).width, 0u);
  EXPECT_GT(render_contact_sheet(r).width, 0u);
}

TEST(Instrument, AFileWithoutThemStillPreviewsAndExports) {
  DatasetLayout L = layout();
  L.instrument = {};  // what a file from before /instrument holds
  const std::string path = write(L, "older.h5");  // records carry settings; the writer ignores them
  const DatasetReader r(path);
  EXPECT_FALSE(r.instrument(0));
  EXPECT_FALSE(calibration_for(r.layout()).energy_eV);
  {
    h5::Handle f = h5::open_file(path, false);
    EXPECT_FALSE(h5::exists(f, "instrument"));
  }
  const std::string out = (tmpdir() / "older.hspy").string();
  export_dataset(path, out, {ExportFormat::Hspy, {"haadf"}, 0, true});
  h5::Handle e = h5::open_file(out, false);
  EXPECT_FALSE(h5::exists(e, "Experiments/haadf/metadata/Acquisition_instrument"));
  EXPECT_GT(render_sample_sheet(r, 0).width, 0u);
}

TEST(Instrument, WriterRefusesMissingOrMismatchedSettings) {
  const DatasetLayout L = layout();
  const std::string path = (tmpdir() / "refuse.h5").string();
  DatasetWriter w = DatasetWriter::create(path, L, kNotAScenario, true);
  const auto& d = L.diffraction.at(0);
  const std::vector<float> row(L.nx * d.ky * d.kx, 1.0f);
  for (std::size_t y = 0; y < L.ny; ++y) w.write_diffraction_row(d.name, y, row.data());
  SampleRecord r = record(L, 0);
  SampleRecord bad = r;
  bad.instrument.reset();
  EXPECT_THROW(w.append_sample(bad), std::invalid_argument);
  bad = r;
  bad.instrument->detectors[0].name = "adf";
  try {
    w.append_sample(bad);
    ADD_FAILURE() << "a detector the layout does not have was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'adf'"), std::string::npos) << e.what();
  }
  bad = r;
  bad.instrument->detectors.pop_back();
  EXPECT_THROW(w.append_sample(bad), std::invalid_argument);
  EXPECT_EQ(w.rows(), 0u);  // nothing written by the refused samples
  w.append_sample(r);
  EXPECT_EQ(w.rows(), 1u);
}

TEST(Instrument, SampleWireCarriesThem) {
  ComputedSample c;
  c.record.index = 2;
  c.record.instrument = instrument_settings(sample_parameters(spec(), 2));
  const ComputedSample d = decode_sample(encode_sample(c));
  ASSERT_TRUE(d.record.instrument);
  EXPECT_TRUE(same(*d.record.instrument, *c.record.instrument));
  c.record.instrument.reset();
  EXPECT_FALSE(decode_sample(encode_sample(c)).record.instrument);
}
