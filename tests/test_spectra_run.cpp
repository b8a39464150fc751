// Spectrometers in scenarios and datasets (issue #15): parsing and its errors, the dataset's
// spectra, maps and composition labels, determinism over threads and resume.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <numeric>
#include <sstream>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "stemtwin/dataset/preview.hpp"
#include "stemtwin/scenario/scenario_run.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {
fs::path scratch() {
  const fs::path d = fs::temp_directory_path() / ("stemtwin_test_spectra_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// SrTiO3 [001], one cell wide, 1 and 2 cells thick; EDS without bremsstrahlung so that a
// window holds only its lines; Fe is listed but absent.
const char* kScenario = R"(name: eds-tiny
seed: 3
samples: 1
specimen:
  builder: {type: perovskite, a: 3.905, A: {Sr: 1}, B: {Ti: 1}}
  repeat: [1, 1, {sweep: [1, 2]}]
microscope: {energy: 200e3, convergence: 20, current: 100}
scan: {start: [0, 0], fov: [3.905, 3.905], pixels: [4, 4], dwell: 10}
detectors:
  - {name: haadf, type: annular, inner: 50, outer: 100}
  - name: eds
    type: eds
    energy_range: [0, 20480]
    channel_width: 10
    resolution: 130
    solid_angle: 0.7
    bremsstrahlung: false
    elements: [Sr, Ti, O, Fe]
    maps: [Sr_Ka, Ti_Ka, Fe_Ka]
    width: 0.3
simulation: {method: multislice, sampling: 0.1, slice_thickness: 1.9525}
acquisition: {noise: true}
labels: {columns: true}
)";

std::string write(const fs::path& dir, const std::string& text, const std::string& name = "eds.yaml") {
  std::ofstream(dir / name) << text;
  return (dir / name).string();
}

int run(const std::string& yaml, const std::string& out, int threads = 0, bool resume = false,
        std::size_t max_samples = SIZE_MAX, std::string* err = nullptr) {
  RunCommand c;
  c.scenario = yaml;
  c.threads = threads;
  c.options.output = out;
  c.options.resume = resume;
  c.options.force = !resume;
  c.options.max_samples = max_samples;
  c.options.progress = false;
  c.options.handle_sigint = false;
  std::ostringstream o, e;
  const int code = cmd_run(c, o, e);
  omp_set_num_threads(2);
  if (err) *err = e.str();
  return code;
}

double sum(const Image& im) { return std::accumulate(im.data.begin(), im.data.end(), 0.0); }

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto p = text.find(from);
  if (p == std::string::npos) throw std::logic_error("test scenario lacks '" + from + "'");
  return text.replace(p, from.size(), to);
}
}  // namespace

TEST(SpectraRun, MapsScaleWithAtomsAbsentElementIsZeroAndLabelsHoldComposition) {
  const fs::path dir = scratch();
  const std::string out = (dir / "eds.h5").string();
  ASSERT_EQ(run(write(dir, kScenario), out), 0);
  DatasetReader r(out);
  ASSERT_EQ(r.size(), 2u);
  const SampleRecord one = r.record(0), two = r.record(1);  // 1 and 2 cells thick
  // The field is one unit cell scanned on a 4 × 4 grid, so the map summed over it is the
  // element's atoms × the probe density averaged over the cell. At 3.9 and 7.8 Å the probe
  // barely spreads and a 0.3 Å footprint changes by < 1 % over four atoms
  // (docs/spectroscopy.md §1), so two cells give twice the counts within 3 % (measured
  // 2026-11-30: ×2.036 for Sr Kα, ×2.046 for Ti Kα; the excess is channelling onto the columns).
  for (const char* m : {"eds/Sr_Ka", "eds/Ti_Ka"}) {
    const double a = sum(one.clean_maps.at(m)), b = sum(two.clean_maps.at(m));
    ASSERT_GT(a, 0) << m;
    EXPECT_NEAR(b / a, 2.0, 0.06) << m;
  }
  // Fe is absent: no line in its window (no bremsstrahlung; the nearest line, Ti Kβ, is
  // 1.5 keV ≈ 25 σ away), so the clean and the noisy maps are exactly 0.
  for (const SampleRecord* s : {&one, &two}) {
    for (double v : s->clean_maps.at("eds/Fe_Ka").data) EXPECT_EQ(v, 0.0);
    for (double v : s->maps.at("eds/Fe_Ka").data) EXPECT_EQ(v, 0.0);
    // The noisy Sr map is Poisson around the clean one: their field sums agree within 5 σ.
    const double clean = sum(s->clean_maps.at("eds/Sr_Ka")), noisy = sum(s->maps.at("eds/Sr_Ka"));
    EXPECT_NEAR(noisy, clean, 5 * std::sqrt(clean) + 5) << "sample " << s->index;
  }
  // Composition labels: each column's atoms per element; Fe 0; Sr columns have one Sr per cell.
  const auto& L = r.layout();
  ASSERT_EQ(L.composition_elements, (std::vector<std::string>{"O", "Ti", "Fe", "Sr"}));
  for (std::size_t row = 0; row < 2; ++row) {
    const int cells = int(row) + 1;
    bool saw_sr = false;
    for (const ColumnLabel& c : r.columns(row)) {
      ASSERT_EQ(c.composition.size(), 4u);
      EXPECT_EQ(c.composition[0] + c.composition[1] + c.composition[3], float(c.count));
      EXPECT_EQ(c.composition[2], 0.0f);
      if (c.species == 38) {
        EXPECT_EQ(c.composition[3], float(cells));
        saw_sr = true;
      }
    }
    EXPECT_TRUE(saw_sr);
    const std::vector<float>& reg = (row ? two : one).region_composition;  // [class][element]
    ASSERT_EQ(reg.size(), L.region_classes.size() * 4);
    EXPECT_EQ(reg[0 * 4 + 3], float(cells));      // class 0 (crystal): Sr atoms in the 1×1×cells cell
    EXPECT_EQ(reg[0 * 4 + 0], float(3 * cells));  // O
  }
  fs::remove_all(dir);
}

TEST(SpectraRun, SpectraHaveAnEnergyAxisUnitsAndRowChunks) {
  const fs::path dir = scratch();
  const std::string out = (dir / "eds.h5").string();
  ASSERT_EQ(run(write(dir, kScenario), out), 0);
  const h5::Handle f = h5::open_file(out, false);
  const h5::Handle d = h5::open_dataset(f, "spectra/eds");
  EXPECT_EQ(h5::shape(d), (std::vector<hsize_t>{2, 4, 4, 2048}));
  EXPECT_EQ(h5::read_attr_string(d, "units"), "counts");
  EXPECT_EQ(h5::read_attr_string(d, "technique"), "EDS");
  const h5::Handle e = h5::open_dataset(f, "axes/eds/energy_eV");
  EXPECT_EQ(h5::read_attr_string(e, "units"), "eV");
  std::vector<double> energy(2048);
  h5::read_rows(e, H5T_NATIVE_DOUBLE, 0, energy.size(), energy.data());
  EXPECT_DOUBLE_EQ(energy[0], 5.0);  // channel centres: start + (c + ½)·width
  EXPECT_DOUBLE_EQ(energy[1415], 14155.0);
  EXPECT_EQ(h5::read_attr_string(h5::open_dataset(f, "maps/eds/Sr_Ka"), "units"), "counts");
  EXPECT_TRUE(h5::exists(f, "clean/maps/eds/Ti_Ka"));
  // The spectra are counts: whole numbers ≥ 0.
  const SampleRecord rec = DatasetReader(out).record(1);
  for (float v : rec.spectra.at("eds")) ASSERT_TRUE(v >= 0 && v == std::round(v));
  // The clean spectra beside them (output.clean defaults to true): same shape, the Poisson
  // means — not whole numbers, and the noisy total is within 5 σ of the clean one.
  const h5::Handle cd = h5::open_dataset(f, "clean/spectra/eds");
  EXPECT_EQ(h5::shape(cd), (std::vector<hsize_t>{2, 4, 4, 2048}));
  EXPECT_EQ(h5::read_attr_string(cd, "units"), "counts");
  const std::vector<float>& clean = rec.clean_spectra.at("eds");
  ASSERT_EQ(clean.size(), rec.spectra.at("eds").size());
  const double clean_total = std::accumulate(clean.begin(), clean.end(), 0.0);
  const double noisy_total = std::accumulate(rec.spectra.at("eds").begin(), rec.spectra.at("eds").end(), 0.0);
  EXPECT_GT(clean_total, 0);
  EXPECT_NEAR(noisy_total, clean_total, 5 * std::sqrt(clean_total));
  EXPECT_TRUE(std::any_of(clean.begin(), clean.end(), [](float v) { return v != std::round(v); }));
  // The spectrometer's settings (kScenario: resolution 130, solid angle 0.7, take-off at its
  // default 18°) travel with the file, as attributes of both spectrum images and in the layout.
  for (const h5::Handle* g : {&d, &cd}) {
    EXPECT_EQ(h5::read_attr_double(*g, "resolution_mn_ka_eV"), 130.0);
    EXPECT_EQ(h5::read_attr_double(*g, "solid_angle_sr"), 0.7);
    EXPECT_EQ(h5::read_attr_double(*g, "takeoff_deg"), 18.0);
    EXPECT_FALSE(h5::has_attr(*g, "collection_semiangle_mrad"));
  }
  const DatasetReader reader(out);
  const SpectraLayout& sl = reader.layout().spectra.at(0);
  EXPECT_EQ(sl.resolution_mn_ka_eV, 130.0);
  EXPECT_EQ(sl.solid_angle_sr, 0.7);
  EXPECT_EQ(sl.takeoff_deg, 18.0);
  EXPECT_EQ(sl.collection_mrad, 0.0);
  // One row read alone is the record's row.
  EXPECT_EQ(reader.spectra("eds", 1), rec.spectra.at("eds"));
  EXPECT_EQ(reader.spectra("eds", 1, true), clean);
  EXPECT_EQ(reader.map("eds/Sr_Ka", 1, true).data, rec.clean_maps.at("eds/Sr_Ka").data);
  EXPECT_THROW(reader.spectra("nope", 0), std::invalid_argument);
  EXPECT_THROW(reader.map("eds/Xx_Ka", 0), std::invalid_argument);
  // The contact sheet has a row per map besides the HAADF row: at least 4 tiles high.
  PreviewOptions o;
  o.samples = 2;
  EXPECT_GE(render_contact_sheet(DatasetReader(out), o).height, 4u * std::size_t(kMinTile));
  fs::remove_all(dir);
}

TEST(SpectraRun, SameBytesOnOneAndTwoThreadsAndAfterResume) {
  const fs::path dir = scratch();
  const std::string yaml = write(dir, kScenario);
  const std::string t1 = (dir / "t1.h5").string(), t2 = (dir / "t2.h5").string(), rs = (dir / "resumed.h5").string();
  ASSERT_EQ(run(yaml, t1, 1), 0);
  ASSERT_EQ(run(yaml, t2, 2), 0);
  ASSERT_EQ(run(yaml, rs, 2, false, 1), 0);  // stops after one sample, as a kill between samples
  ASSERT_EQ(DatasetReader(rs).size(), 1u);
  ASSERT_EQ(run(yaml, rs, 1, true), 0);
  DatasetReader a(t1), b(t2), c(rs);
  ASSERT_EQ(c.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const SampleRecord ra = a.record(i), rb = b.record(i), rc = c.record(i);
    EXPECT_EQ(ra.spectra, rb.spectra);
    EXPECT_EQ(ra.spectra, rc.spectra);
    EXPECT_EQ(ra.clean_spectra, rb.clean_spectra);
    EXPECT_EQ(ra.clean_spectra, rc.clean_spectra);
    for (const char* m : {"eds/Sr_Ka", "eds/Ti_Ka"}) {
      EXPECT_EQ(ra.maps.at(m).data, rb.maps.at(m).data);
      EXPECT_EQ(ra.maps.at(m).data, rc.maps.at(m).data);
      EXPECT_EQ(ra.clean_maps.at(m).data, rc.clean_maps.at(m).data);
    }
  }
  fs::remove_all(dir);
}

TEST(SpectraRun, WindowedAndAutoCarryTheSpectrometer) {
  // method windowed on this one-cell field: the window is the whole cell, so windowed runs
  // multislice with the recorder and the spectra are multislice's to the byte; auto (its
  // cost model sends this tiny scan to multislice) gives the same bytes.
  const fs::path dir = scratch();
  const std::string ms = (dir / "ms.h5").string(), win = (dir / "win.h5").string(), aut = (dir / "auto.h5").string();
  ASSERT_EQ(run(write(dir, kScenario, "ms.yaml"), ms), 0);
  ASSERT_EQ(run(write(dir, replace(kScenario, "method: multislice", "method: windowed"), "win.yaml"), win), 0);
  ASSERT_EQ(run(write(dir, replace(kScenario, "method: multislice", "method: auto"), "auto.yaml"), aut), 0);
  DatasetReader a(ms), b(win), c(aut);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a.record(i).spectra, b.record(i).spectra);
    EXPECT_EQ(a.record(i).clean_spectra, b.record(i).clean_spectra);
    EXPECT_EQ(a.record(i).spectra, c.record(i).spectra);
  }
  fs::remove_all(dir);
}

TEST(SpectraRun, BadSpectrometersAreRefusedWithKeyBeforeAnyFile) {
  const fs::path dir = scratch();
  struct Case {
    std::string from, to, message;
  };
  const Case cases[] = {
      {"channel_width: 10", "channel_width: 7", "detectors.eds.channel_width"},          // 20480 / 7 is not whole
      {"channel_width: 10", "channel_width: -1", "must be > 0"},
      {"resolution: 130", "resolution: 60", "Fano"},                                    // below the Si limit
      {"elements: [Sr, Ti, O, Fe]", "elements: [Sr, Ti, O, Xx]", "unknown element symbol 'Xx'"},
      {"maps: [Sr_Ka, Ti_Ka, Fe_Ka]", "maps: [Sr_Ka, Ti_Qq]", "unknown line family 'Qq'"},
      {"maps: [Sr_Ka, Ti_Ka, Fe_Ka]", "maps: [Sr_Ka, La_La]", "La is not in this spectrometer's `elements`"},
      {"energy_range: [0, 20480]", "energy_range: [0, 10240]", "Sr"},                   // Sr Kα (14.2 keV) off the axis
      {"solid_angle: 0.7", "solid_angle: 20", "detectors.eds.solid_angle"},
      {"width: 0.3", "widht: 0.3", "unknown key"},
      {"resolution: 130", "resolution: {uniform: [120, 140]}", "not sampled"},
  };
  for (const Case& k : cases) {
    const std::string yaml = write(dir, replace(kScenario, k.from, k.to), "bad.yaml");
    const std::string out = (dir / "bad.h5").string();
    std::string err;
    EXPECT_NE(run(yaml, out, 0, false, SIZE_MAX, &err), 0) << k.to;
    EXPECT_NE(err.find(k.message), std::string::npos) << k.to << "\n" << err;
    EXPECT_NE(err.find("bad.yaml:"), std::string::npos) << err;  // file:line:column
    EXPECT_FALSE(fs::exists(out)) << k.to;
  }
  fs::remove_all(dir);
}

TEST(SpectraRun, EelsSpectrometerWritesEdgeMaps) {
  const fs::path dir = scratch();
  const std::string text = replace(replace(kScenario, "  - name: eds\n    type: eds\n", "  - name: eels\n    type: eels\n"),
                                   R"(    energy_range: [0, 20480]
    channel_width: 10
    resolution: 130
    solid_angle: 0.7
    bremsstrahlung: false
    elements: [Sr, Ti, O, Fe]
    maps: [Sr_Ka, Ti_Ka, Fe_Ka]
)",
                                   R"(    energy_range: [300, 700]
    channel_width: 1
    collection: 50
    low_loss: false
    window: {pre_edge: 40, gap: 5, signal: 40}
    maps: [O_K, Ti_L3]
)");
  const std::string out = (dir / "eels.h5").string();
  std::string err;
  ASSERT_EQ(run(write(dir, text), out, 0, false, SIZE_MAX, &err), 0) << err;
  DatasetReader r(out);
  ASSERT_EQ(r.layout().spectra.size(), 1u);
  EXPECT_EQ(r.layout().spectra[0].technique, "EELS");
  EXPECT_EQ(r.layout().spectra[0].maps, (std::vector<std::string>{"O_K", "Ti_L3"}));
  EXPECT_EQ(spectrometer_settings(r.layout().spectra[0]),
            (std::vector<std::pair<std::string, double>>{{"collection_semiangle_mrad", 50.0}}));
  EXPECT_EQ(h5::read_attr_double(h5::open_dataset(h5::open_file(out, false), "spectra/eels"), "collection_semiangle_mrad"), 50.0);
  const SampleRecord one = r.record(0), two = r.record(1);
  // The clean O K edge map over the cell doubles with the thickness, as the EDS maps do
  // (same footprint and argument; the power-law fit subtracts the Ti L edges' tails exactly
  // in the clean spectrum only to the extent they follow one power law: 5 %).
  EXPECT_NEAR(sum(two.clean_maps.at("eels/O_K")) / sum(one.clean_maps.at("eels/O_K")), 2.0, 0.1);
  fs::remove_all(dir);
}

// The shipped LSFO scenario, shrunk (3 samples, 6 × 6 positions, 2 cells thick), runs, and
// examples/classify_lsfo.py reads its dataset and prints the three accuracies (their values
// on 3 samples mean nothing; only that each is a fraction is checked).
TEST(SpectraRun, LsfoScenarioFeedsTheClassifierExample) {
  const fs::path dir = scratch();
  std::ifstream in(std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/lsfo_haadf_eds.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = replace(ss.str(), "samples: 4 ", "samples: 1 ");
  text = replace(text, "pixels: [16, 16]", "pixels: [6, 6]");
  text = replace(text, "repeat: [5, 1, 15]", "repeat: [5, 1, 2]");
  const std::string out = (dir / "lsfo.h5").string();
  std::string err;
  ASSERT_EQ(run(write(dir, text, "lsfo.yaml"), out, 0, false, SIZE_MAX, &err), 0) << err;
  DatasetReader r(out);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.layout().spectra.at(0).maps,
            (std::vector<std::string>{"La_La", "Sr_Ka", "Sr_La", "Fe_Ka", "Ti_Ka", "O_Ka"}));
  const std::string log = (dir / "classify.txt").string();
  const std::string cmd = "/usr/bin/python3 " + std::string(STEMTWIN_SOURCE_DIR) + "/examples/classify_lsfo.py " + out +
                          " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream lf(log);
  std::stringstream got;
  got << lf.rdbuf();
  ASSERT_EQ(status, 0) << got.str();
  int lines = 0;
  for (const char* set : {"accuracy HAADF: ", "accuracy EDS: ", "accuracy HAADF+EDS: "}) {
    const auto p = got.str().find(set);
    ASSERT_NE(p, std::string::npos) << set << "\n" << got.str();
    const double a = std::stod(got.str().substr(p + std::string(set).size()));
    EXPECT_GE(a, 0.0);
    EXPECT_LE(a, 1.0);
    ++lines;
  }
  EXPECT_EQ(lines, 3);
  fs::remove_all(dir);
}

TEST(SpectraRun, PrismCarriesSpectrometersAsMultisliceDoes) {
  // method: prism at f = 1 is multislice (docs/spectroscopy.md §7a): the clean maps agree with
  // multislice's to float round-off (the recorder's values within ~2.5e-7, tests/
  // test_prism_spectra.cpp; the maps are float32 and linear in them): bound 1e-5 relative.
  // Two spectrometers with different footprints (0.3 Å and δ) read PRISM's intensities on the
  // union of their pixels, each its own.
  const fs::path dir = scratch();
  const std::string second = R"(    width: 0.3
  - name: eds2
    type: eds
    bremsstrahlung: false
    elements: [Sr, Ti, O]
    maps: [Sr_Ka, Ti_Ka]
    width: 0
)";
  const std::string two = replace(kScenario, "    width: 0.3\n", second);
  const std::string ms = (dir / "ms.h5").string(), pr = (dir / "pr.h5").string();
  ASSERT_EQ(run(write(dir, two, "ms.yaml"), ms), 0);
  ASSERT_EQ(run(write(dir, replace(two, "method: multislice", "method: prism, interpolation: 1"), "pr.yaml"), pr), 0);
  DatasetReader a(ms), b(pr);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const SampleRecord x = a.record(i), y = b.record(i);
    for (const char* m : {"eds/Sr_Ka", "eds/Ti_Ka", "eds2/Sr_Ka", "eds2/Ti_Ka"}) {
      const Image &u = x.clean_maps.at(m), &v = y.clean_maps.at(m);
      ASSERT_EQ(u.data.size(), v.data.size()) << m;
      const double top = *std::max_element(u.data.begin(), u.data.end());
      ASSERT_GT(top, 0) << m;
      for (std::size_t p = 0; p < u.data.size(); ++p) EXPECT_NEAR(v.data[p], u.data[p], 1e-5 * top) << m << " pixel " << p;
    }
  }
  fs::remove_all(dir);
}
