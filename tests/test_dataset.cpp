// HDF5 datasets: round trip through the C++ reader and through Debian's h5py, --force,
// resume after a kill (real SIGKILL and a constructed partial sample), shard + merge,
// preview, and the CLI command functions.
//
// A synthetic "runner" stands in for physics: scenario → layout_for → for each sample,
// sample_parameters → images from the sampled values plus seeded noise → append_sample.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "stemtwin/apps/cli_commands.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "stemtwin/dataset/label_masks.hpp"
#include "stemtwin/dataset/preview.hpp"
#include "stemtwin/core/progress.hpp"
#include "stemtwin/core/rng.hpp"
#include "stemtwin/scenario/runner.hpp"
#include "stemtwin/scenario/sample_wire.hpp"
#include "stemtwin/scenario/dataset_layout.hpp"
#include "stemtwin/scenario/scenario.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {

const char* kScenario = R"(name: synthetic
seed: 11
samples: 3
specimen:
  builder: {type: perovskite, ordering: {choice: [ordered, disordered]}}
  repeat: [2, 2, {sweep: [4, 8]}]
microscope:
  energy: 200e3
  aberrations: {defocus: {uniform: [-20, 20]}}
  current: {loguniform: [5, 50]}
scan:
  start: [0, 0]
  fov: [3.9, 3.0]
  pixels: [6, 5]
detectors:
  - {name: haadf, type: annular, inner: 70, outer: 200}
  - {name: com, type: com}
  - {name: radial, type: radial, step: 10, max: 40}
  - {name: cam, type: pixelated, max_angle: 20}
acquisition:
  noise: true
labels:
  class: specimen.builder.ordering
  masks: [columns, species]
)";

fs::path tmpdir() {
  const fs::path d = fs::temp_directory_path() / ("stemtwin_test_dataset_" + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}

// Removes this process's temporary files after the last test.
struct Cleanup : ::testing::Environment {
  void TearDown() override { fs::remove_all(tmpdir()); }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new Cleanup);

struct Fixture {
  ScenarioSpec spec = parse_scenario_text(kScenario, "synthetic.yaml");
  DatasetLayout layout(Shard shard = {}) const {
    DatasetLayout l = layout_for(spec, shard);
    l.diffraction.at(0).kx = 3;  // what the runner fills from physics
    l.diffraction.at(0).ky = 2;
    l.diffraction.at(0).sampling_x = l.diffraction.at(0).sampling_y = 10;
    l.species = {"Sr", "TiO", "O"};
    return l;
  }
};

// Synthetic physics + noise for sample i, all keyed by (seed, i): what the runner will do.
SampleRecord make_record(const ScenarioSpec& spec, const DatasetLayout& L, std::size_t i) {
  const SampledScenario s = sample_parameters(spec, i);
  SampleRecord r;
  r.index = i;
  r.params = s.values;
  r.class_id = s.class_id;
  r.instrument = instrument_settings(s);
  Rng noise(spec.seed, RngPurpose::Noise, i);
  for (const auto& c : L.images) {
    Image clean(L.nx, L.ny), acq(L.nx, L.ny);
    for (std::size_t y = 0; y < L.ny; ++y)
      for (std::size_t x = 0; x < L.nx; ++x) {
        clean(y, x) = 0.01 * s.repeat[2] * (1 + std::cos(x + 0.1 * s.aberrations.at("C10"))) + (c == "com_y" ? y : 0);
        acq(y, x) = static_cast<double>(noise.poisson(clean(y, x) * s.electrons_per_position()));
      }
    r.clean[c] = clean;
    r.images[c] = acq;
  }
  for (const auto& rl : L.radial) {
    std::vector<float> v(L.nx * L.ny * rl.bins());
    for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(noise.uniform());
    r.radial[rl.name] = v;
  }
  Image cols(L.nx, L.ny), species(L.nx, L.ny);
  for (std::size_t k = 0; k < i % 3; ++k) {  // 0, 1 or 2 labelled columns
    ColumnLabel c;
    c.px = static_cast<double>(k * 2 + 1);
    c.py = static_cast<double>(k + 1);
    c.x = c.px * s.scan.step_x;
    c.y = c.py * s.scan.step_y;
    c.species = static_cast<int>(k);
    c.count = s.repeat[2];
    c.class_id = s.class_id;
    r.columns.push_back(c);
    cols(k + 1, k * 2 + 1) = 1;
    species(k + 1, k * 2 + 1) = static_cast<double>(k + 1);
  }
  r.masks["columns"] = cols;
  r.masks["species"] = species;
  return r;
}

std::vector<float> pattern_row(std::size_t i, std::size_t y, const DatasetLayout& L) {
  const auto& d = L.diffraction.at(0);
  std::vector<float> v(L.nx * d.ky * d.kx);
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(1000 * i + 100 * y + k);
  return v;
}

void write_sample(DatasetWriter& w, const ScenarioSpec& spec, std::size_t i) {
  const DatasetLayout& L = w.layout();
  for (std::size_t y = 0; y < L.ny; ++y) w.write_diffraction_row("cam", y, pattern_row(i, y, L).data());
  w.append_sample(make_record(spec, L, i));
}

/// The runner's loop: create or resume, then every remaining sample of the shard.
void run(const Fixture& f, const std::string& path, Shard shard = {}, bool resume = false, std::size_t stop_after = ~0u) {
  DatasetWriter w = resume ? DatasetWriter::open_for_resume(path)
                           : DatasetWriter::create(path, f.layout(shard), f.spec.text, true);
  std::size_t n = 0;
  for (std::size_t i : remaining_samples(f.spec.total_samples(), shard, w.rows())) {
    if (n++ == stop_after) break;
    write_sample(w, f.spec, i);
  }
  w.close();
}

// Every dataset's shape and values (native types, byte for byte), by path.
using Dump = std::map<std::string, std::pair<std::vector<hsize_t>, std::vector<char>>>;
Dump dump(const std::string& path) {
  Dump out;
  h5::Handle f = h5::open_file(path, false);
  struct Ctx {
    hid_t file;
    Dump* dump;
  } ctx{f, &out};
  H5Ovisit(
      f, H5_INDEX_NAME, H5_ITER_INC,
      [](hid_t, const char* name, const H5O_info_t* info, void* p) -> herr_t {
        auto* c = static_cast<Ctx*>(p);
        if (info->type != H5O_TYPE_DATASET) return 0;
        h5::Handle d = h5::open_dataset(c->file, name);
        h5::Handle ft(H5Dget_type(d), H5Tclose, "type");
        h5::Handle nt(H5Tget_native_type(ft, H5T_DIR_ASCEND), H5Tclose, "native type");
        const auto dims = h5::shape(d);
        std::size_t n = H5Tget_size(nt);
        for (hsize_t x : dims) n *= x;
        std::vector<char> bytes(n);
        if (n) h5::check(H5Dread(d, nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), "read");
        (*c->dump)[name] = {dims, bytes};
        return 0;
      },
      &ctx);
  return out;
}

void expect_identical(const std::string& a, const std::string& b) {
  const auto da = dump(a), db = dump(b);
  ASSERT_EQ(da.size(), db.size());
  for (const auto& [name, v] : da) {
    ASSERT_TRUE(db.count(name)) << name;
    EXPECT_EQ(v.first, db.at(name).first) << name << " shape";
    EXPECT_TRUE(v.second == db.at(name).second) << name << " values";
  }
  EXPECT_EQ(DatasetReader(a).size(), DatasetReader(b).size());
}

std::int64_t complete_attr(const std::string& path) {
  h5::Handle f = h5::open_file(path, false);
  return h5::read_attr_int(f, "complete_samples");
}

}  // namespace

TEST(Dataset, LayoutFromScenario) {
  Fixture f;
  const DatasetLayout L = layout_for(f.spec);
  EXPECT_EQ(L.nx, 6u);
  EXPECT_EQ(L.ny, 5u);
  EXPECT_EQ(L.images, (std::vector<std::string>{"haadf", "com_x", "com_y", "com_idpc"}));  // readout_channels
  ASSERT_EQ(L.radial.size(), 1u);
  EXPECT_EQ(L.radial[0].edges, (std::vector<double>{0, 10, 20, 30, 40}));
  ASSERT_EQ(L.diffraction.size(), 1u);
  EXPECT_EQ(L.total_samples, 6u);
  EXPECT_TRUE(L.has_class);
  EXPECT_EQ(L.class_names, (std::vector<std::string>{"ordered", "disordered"}));
  ASSERT_EQ(L.params.size(), 4u);  // ordering, repeat[2], defocus, current
  EXPECT_EQ(DatasetLayout::from_json(L.to_json()).to_json(), L.to_json());
  // the pattern size is physics' to fill: a layout without it is refused
  EXPECT_THROW(DatasetWriter::create((tmpdir() / "nokx.h5").string(), L, f.spec.text, true), std::invalid_argument);
}

TEST(Dataset, RoundTripThroughTheReader) {
  Fixture f;
  const std::string path = (tmpdir() / "roundtrip.h5").string();
  run(f, path);
  const DatasetReader r(path);
  const DatasetLayout L = f.layout();
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(complete_attr(path), 6);
  EXPECT_EQ(r.scenario_text(), kScenario);
  EXPECT_EQ(r.version(), "0.1.0");
  EXPECT_EQ(r.created().size(), 20u);  // 2026-01-01T00:00:00Z
  EXPECT_EQ(r.detectors(), L.images);
  const auto def = r.param("microscope.aberrations.defocus");
  for (std::size_t i = 0; i < 6; ++i) {
    const SampleRecord want = make_record(f.spec, L, i);
    EXPECT_EQ(r.sample_index(i), i);
    for (const auto& c : L.images) {
      const Image a = r.image(c, i), b = r.clean(c, i);
      for (std::size_t k = 0; k < a.size(); ++k) {
        ASSERT_EQ(a.data[k], static_cast<double>(static_cast<float>(want.images.at(c).data[k])));
        ASSERT_EQ(b.data[k], static_cast<double>(static_cast<float>(want.clean.at(c).data[k])));
      }
    }
    EXPECT_EQ(r.radial("radial", i), want.radial.at("radial"));
    for (std::size_t y = 0; y < L.ny; ++y) EXPECT_EQ(r.diffraction_row("cam", i, y), pattern_row(i, y, L));
    EXPECT_EQ(def[i], want.params.at("microscope.aberrations.defocus"));  // float64, exact
    EXPECT_EQ(r.param("specimen.repeat[2]")[i], i < 3 ? 4 : 8);
    EXPECT_EQ(r.class_id(i), want.class_id);
    EXPECT_EQ(r.mask("columns", i).data, want.masks.at("columns").data);
    EXPECT_EQ(r.mask("species", i).data, want.masks.at("species").data);
    const auto cols = r.columns(i);
    ASSERT_EQ(cols.size(), i % 3);
    for (std::size_t k = 0; k < cols.size(); ++k) {
      EXPECT_EQ(cols[k].px, want.columns[k].px);
      EXPECT_EQ(cols[k].y, want.columns[k].y);
      EXPECT_EQ(cols[k].species, want.columns[k].species);
      EXPECT_EQ(cols[k].count, want.columns[k].count);
      EXPECT_EQ(cols[k].class_id, want.columns[k].class_id);
    }
  }
  EXPECT_THROW(r.image("haadf", 6), std::out_of_range);
  EXPECT_THROW(r.image("nope", 0), std::runtime_error);
}

TEST(Dataset, DebianH5pyReadsItWithoutStemtwin) {
  if (std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") != 0) GTEST_SKIP() << "python3-h5py not installed";
  Fixture f;
  const std::string path = (tmpdir() / "h5py.h5").string();
  run(f, path);
  const DatasetReader r(path);
  const double v = r.image("haadf", 4)(2, 3), d = r.param("microscope.aberrations.defocus")[5];
  std::ostringstream py;
  py.precision(17);
  py << "import h5py, json, sys\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "assert f['images/haadf'].shape == (6, 5, 6), f['images/haadf'].shape\n"
        "assert f['images/haadf'].dtype == 'float32'\n"
        "assert f['clean/com_y'].shape == (6, 5, 6)\n"
        "assert f['radial/radial'].shape == (6, 5, 6, 4)\n"
        "assert list(f['radial/radial'].attrs['bin_edges']) == [0, 10, 20, 30, 40]\n"
        "assert f['diffraction/cam'].shape == (6, 5, 6, 2, 3)\n"
        "assert f['diffraction/cam'].chunks == (1, 1, 6, 2, 3)\n"
        "assert f['diffraction/cam'][2, 1, 0, 0, 0] == 2100\n"
        "assert f['images/haadf'].compression == 'gzip'\n"
        "assert f['images/haadf'][4, 2, 3] == "
     << v << "\n"
        "assert f['params/microscope.aberrations.defocus'][5] == "
     << d << "\n"
        "assert list(f['params/sample_index'][:]) == [0, 1, 2, 3, 4, 5]\n"
        "assert list(f['labels/class'].attrs['names']) == ['ordered', 'disordered']\n"
        "assert f['labels/masks/columns'].dtype == 'uint8'\n"
        "assert f['labels/masks/species'].dtype == 'int16'\n"
        "assert list(f['labels/columns/sample'][:]) == [1, 2, 2, 4, 5, 5]\n"
        "assert f.attrs['complete_samples'] == 6\n"
        "assert f.attrs['seed'] == 11\n"
        "assert f.attrs['scenario'].startswith('name: synthetic')\n"
        "assert json.loads(f.attrs['layout'])['nx'] == 6\n"
        "assert 'Å' in f.attrs['units']\n";
  const std::string script = (tmpdir() / "check.py").string();
  std::ofstream(script) << py.str();
  EXPECT_EQ(std::system(("/usr/bin/python3 " + script + " " + path).c_str()), 0) << py.str();
}

TEST(Dataset, ForceSemantics) {
  Fixture f;
  const std::string path = (tmpdir() / "force.h5").string();
  run(f, path);
  try {
    DatasetWriter::create(path, f.layout(), f.spec.text, false);
    FAIL() << "overwrote without --force";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_EQ(DatasetReader(path).size(), 6u);  // untouched
  { DatasetWriter w = DatasetWriter::create(path, f.layout(), f.spec.text, true); }
  EXPECT_EQ(DatasetReader(path).size(), 0u);  // replaced by an empty dataset
  EXPECT_THROW(DatasetWriter::open_for_resume((tmpdir() / "absent.h5").string()), std::runtime_error);
}

TEST(Dataset, ResumeAfterAnInterruptedRunIsIdentical) {
  Fixture f;
  const std::string full = (tmpdir() / "full.h5").string(), part = (tmpdir() / "part.h5").string();
  run(f, full);
  run(f, part, {}, false, 2);  // stopped cleanly after 2 samples (Ctrl-C)
  EXPECT_EQ(DatasetReader(part).size(), 2u);
  run(f, part, {}, true);
  expect_identical(full, part);
}

TEST(Dataset, ResumeTruncatesAPartiallyWrittenSample) {
  // A writer killed inside append_sample leaves rows beyond complete_samples. Build that
  // state exactly: 4 complete samples, then sample 4's diffraction rows, images, params and
  // columns written but not counted.
  Fixture f;
  const std::string full = (tmpdir() / "full2.h5").string(), part = (tmpdir() / "part2.h5").string();
  run(f, full);
  run(f, part, {}, false, 5);
  {
    h5::Handle file = h5::open_file(part, true);
    h5::write_attr(file, "complete_samples", std::int64_t{4});
    // and a half-written 6th row in a few datasets, garbage values
    for (const char* p : {"images/haadf", "diffraction/cam", "params/sample_index"}) {
      h5::Handle d = h5::open_dataset(file, p);
      h5::set_rows(d, 6);
    }
    h5::Handle d = h5::open_dataset(file, "labels/columns/x_A");
    h5::set_rows(d, h5::shape(d)[0] + 7);
  }
  EXPECT_EQ(DatasetReader(part).size(), 4u);  // readers see complete samples only
  EXPECT_EQ(DatasetReader(part).columns(3).size(), 0u);
  run(f, part, {}, true);
  expect_identical(full, part);
}

TEST(Dataset, ResumeAfterSigkillIsIdentical) {
  // A child writes samples slowly; the parent SIGKILLs it at an arbitrary point after the
  // second sample, then resumes. Repeated at several kill delays.
  Fixture f;
  const std::string full = (tmpdir() / "full3.h5").string();
  run(f, full);
  for (int delay_us : {0, 300, 700, 1000, 1500, 2000, 3000}) {
    const std::string part = (tmpdir() / ("killed" + std::to_string(delay_us) + ".h5")).string();
    int pipefd[2];
    ASSERT_EQ(pipe(pipefd), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(pipefd[0]);
      try {
        DatasetWriter w = DatasetWriter::create(part, f.layout(), f.spec.text, true);
        for (std::size_t i = 0; i < 6; ++i) {
          write_sample(w, f.spec, i);
          if (i == 1) (void)!write(pipefd[1], "x", 1);
          if (i >= 1) usleep(500);
        }
        pause();  // never closes the file: only SIGKILL ends it
      } catch (...) {
      }
      _exit(1);  // never return into the test framework
    }
    close(pipefd[1]);
    char c;
    ASSERT_EQ(read(pipefd[0], &c, 1), 1);
    usleep(static_cast<useconds_t>(delay_us));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    close(pipefd[0]);
    EXPECT_TRUE(WIFSIGNALED(status));
    const std::size_t seen = DatasetReader(part).size();
    EXPECT_GE(seen, 2u) << delay_us;
    run(f, part, {}, true);
    expect_identical(full, part);
  }
}

TEST(Dataset, ShardsMergeIntoTheUnshardedFile) {
  Fixture f;
  const auto dir = tmpdir();
  const std::string full = (dir / "full4.h5").string();
  run(f, full);
  std::vector<std::string> shards;
  for (std::size_t k = 0; k < 4; ++k) {  // 4 shards of 6 samples: 2, 2, 1, 1
    shards.push_back((dir / ("shard" + std::to_string(k) + ".h5")).string());
    run(f, shards.back(), {k, 4});
    EXPECT_EQ(DatasetReader(shards.back()).size(), k < 2 ? 2u : 1u);
  }
  const std::string merged = (dir / "merged.h5").string();
  const MergeReport rep = merge_datasets({shards[2], shards[0], shards[3], shards[1]}, merged, true);
  EXPECT_EQ(rep.samples, 6u);
  EXPECT_EQ(rep.missing, 0u);
  expect_identical(full, merged);
  // refusals
  EXPECT_THROW(merge_datasets({shards[0], shards[1]}, merged, false), std::runtime_error);  // exists
  EXPECT_THROW(merge_datasets({shards[0], shards[0]}, (dir / "dup.h5").string(), true), std::invalid_argument);
  EXPECT_EQ(merge_datasets({shards[0], shards[1]}, (dir / "half.h5").string(), true).missing, 2u);
  // a shard of another scenario
  ScenarioSpec other = parse_scenario_text(std::string(kScenario) + "output: {compression: 1}\n", "o.yaml");
  {
    DatasetLayout L = f.layout({1, 4});
    L.compression = 1;
    DatasetWriter::create((dir / "other.h5").string(), L, other.text, true);
  }
  EXPECT_THROW(merge_datasets({shards[0], (dir / "other.h5").string()}, (dir / "x.h5").string(), true),
               std::invalid_argument);
}

TEST(Dataset, AppendRejectsIncompleteOrMisorderedSamples) {
  Fixture f;
  const std::string path = (tmpdir() / "reject.h5").string();
  DatasetWriter w = DatasetWriter::create(path, f.layout(), f.spec.text, true);
  const DatasetLayout& L = w.layout();
  SampleRecord r = make_record(f.spec, L, 0);
  EXPECT_THROW(w.append_sample(r), std::invalid_argument);  // diffraction rows missing
  for (std::size_t y = 0; y < L.ny; ++y) w.write_diffraction_row("cam", y, pattern_row(0, y, L).data());
  SampleRecord bad = r;
  bad.images.erase("com_x");
  EXPECT_THROW(w.append_sample(bad), std::invalid_argument);
  bad = r;
  bad.images["haadf"] = Image(3, 3);
  EXPECT_THROW(w.append_sample(bad), std::invalid_argument);
  bad = r;
  bad.params["typo"] = 1;
  EXPECT_THROW(w.append_sample(bad), std::invalid_argument);
  bad = r;
  bad.params.erase("microscope.current");
  EXPECT_THROW(w.append_sample(bad), std::invalid_argument);
  w.append_sample(r);
  EXPECT_THROW(w.append_sample(r), std::invalid_argument);  // index must increase
  EXPECT_EQ(w.rows(), 1u);
  w.close();
  EXPECT_EQ(DatasetReader(path).size(), 1u);
}

TEST(Dataset, PreviewContactSheet) {
  Fixture f;
  const std::string path = (tmpdir() / "preview.h5").string();
  run(f, path);
  const DatasetReader r(path);
  PreviewOptions o;
  o.samples = 4;
  o.tile = 48;  // below the minimum: tiles stay 128 px
  const RgbImage sheet = render_contact_sheet(r, o);
  o.tile = kMinTile;
  const RgbImage same = render_contact_sheet(r, o);
  EXPECT_EQ(sheet.width, same.width);
  EXPECT_EQ(sheet.rgb, same.rgb);
  // rows: haadf, com_x, com_y, com_idpc, 2 masks, cam mean + virtual = 8 rows of 128-px tiles; 4 columns
  EXPECT_GE(sheet.width, 4u * kMinTile);
  EXPECT_GE(sheet.height, 8u * kMinTile);
  // column markers are off by default; --markers changes the picture
  o.markers = true;
  EXPECT_NE(render_contact_sheet(r, o).rgb, same.rgb);
  const std::string png = (tmpdir() / "preview.png").string();
  std::ostringstream out, err;
  EXPECT_EQ(cmd_preview(path, png, 4, false, out, err), 0) << err.str();
  std::ifstream in(png, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  EXPECT_EQ(std::string(sig + 1, 3), "PNG");
  EXPECT_EQ(cmd_preview((tmpdir() / "absent.h5").string(), png, 4, false, out, err), 1);
  EXPECT_NE(err.str().find("absent.h5"), std::string::npos) << err.str();
}

TEST(Dataset, CliInfoValidateMerge) {
  Fixture f;
  const auto dir = tmpdir();
  const std::string path = (dir / "info.h5").string();
  run(f, path);
  std::ostringstream out, err;
  EXPECT_EQ(cmd_info(path, out, err), 0) << err.str();
  const std::string s = out.str();
  for (const char* want : {"6 complete", "of 6 in the scenario", "6 x 5 pixels", "haadf com_x com_y",
                           "microscope.aberrations.defocus", "0=ordered", "ordered:", "cam [6, 5, 6, 2, 3]",
                           "6 labelled columns", "1=TiO"})
    EXPECT_NE(s.find(want), std::string::npos) << want << "\n" << s;
  EXPECT_EQ(cmd_info((dir / "absent.h5").string(), out, err), 1);

  const std::string good = (dir / "good.yaml").string(), bad = (dir / "bad.yaml").string();
  // validate also checks the builder's keys (run would refuse `ordering`, which the writer
  // tests above use only as a sampled class label): a real builder key here.
  std::string valid = kScenario;
  for (const std::string from : {"ordering: {choice: [ordered, disordered]}", "class: specimen.builder.ordering"}) {
    const auto at = valid.find(from);
    ASSERT_NE(at, std::string::npos);
    valid.replace(at, from.size(), from[0] == 'o' ? "arrangement: {choice: [random, layered]}" : "class: specimen.builder.arrangement");
  }
  std::ofstream(good) << valid;
  std::ofstream(bad) << std::string(kScenario) + "  flavour: strange\n";
  std::ostringstream o2, e2;
  EXPECT_EQ(cmd_validate(good, o2, e2), 0) << e2.str();
  EXPECT_NE(o2.str().find("samples:  6 = 3 x sweep grid 2"), std::string::npos) << o2.str();
  EXPECT_NE(o2.str().find("microscope.current: loguniform [5, 50)"), std::string::npos) << o2.str();
  std::ostringstream o3, e3;
  EXPECT_EQ(cmd_validate(bad, o3, e3), 1);
  EXPECT_NE(e3.str().find(bad + ":25:3: labels.flavour: unknown key"), std::string::npos) << e3.str();

  const std::string a = (dir / "ca.h5").string(), b = (dir / "cb.h5").string();
  run(f, a, {0, 2});
  std::ostringstream o4, e4;
  EXPECT_EQ(cmd_merge({a}, (dir / "cm.h5").string(), true, o4, e4), 0);
  EXPECT_NE(e4.str().find("warning: 3 samples"), std::string::npos) << e4.str();
  run(f, b, {1, 2});
  std::ostringstream o5, e5;
  EXPECT_EQ(cmd_merge({a, b}, (dir / "cm.h5").string(), false, o5, e5), 1);  // exists, no --force
  // merge has --force but no --resume: its refusal names only what it has (issue #12)
  EXPECT_NE(e5.str().find("use --force"), std::string::npos) << e5.str();
  EXPECT_EQ(e5.str().find("--resume"), std::string::npos) << e5.str();
  EXPECT_EQ(cmd_merge({a, b}, (dir / "cm.h5").string(), true, o5, e5), 0) << e5.str();
  expect_identical(path, (dir / "cm.h5").string());
}

namespace {
// The runner with the synthetic simulation (what the lead's physics callback replaces).
SimulateSample synthetic_simulate(const Fixture& f, int interrupt_at = -1, int fail_at = -1) {
  return [&f, interrupt_at, fail_at](const SampledScenario& s, const DatasetLayout& L, const DiffractionRowSink& rows) {
    for (std::size_t y = 0; y < L.ny; ++y) rows("cam", y, pattern_row(s.index, y, L).data());
    SampleRecord r = make_record(f.spec, L, s.index);
    r.params.clear();  // the runner adds the sampled values
    r.class_id = -1;   // and the class
    if (static_cast<int>(s.index) == interrupt_at) std::raise(SIGINT);  // Ctrl-C during this sample
    if (static_cast<int>(s.index) == fail_at) throw std::runtime_error("simulated failure in sample " + std::to_string(s.index));
    return r;
  };
}
RunResult run_with_runner(const Fixture& f, RunOptions o, int interrupt_at = -1, int fail_at = -1,
                          std::ostringstream* log_out = nullptr, const SampleLoop& loop = {}) {
  std::ostringstream log;
  auto complete = [&](DatasetLayout& L, const ScenarioSpec&) {
    L.diffraction.at(0).kx = 3;
    L.diffraction.at(0).ky = 2;
    L.diffraction.at(0).sampling_x = L.diffraction.at(0).sampling_y = 10;
    L.species = {"Sr", "TiO", "O"};
  };
  o.progress = true;
  RunResult res = run_scenario(f.spec, o, complete, synthetic_simulate(f, interrupt_at, fail_at), log_out ? *log_out : log, loop);
  return res;
}
}  // namespace

TEST(Runner, CreateInterruptResumeShardsAndRefusals) {
  Fixture f;
  const auto dir = tmpdir();
  const std::string reference = (dir / "ref.h5").string();
  run(f, reference);  // the hand-written loop above

  RunOptions o;
  o.output = (dir / "runner.h5").string();
  o.preview = (dir / "runner.png").string();
  RunResult r = run_with_runner(f, o);
  EXPECT_EQ(r.written, 6u);
  EXPECT_EQ(r.complete, 6u);
  EXPECT_FALSE(r.interrupted);
  expect_identical(reference, o.output);
  EXPECT_TRUE(fs::exists(o.preview));
  EXPECT_THROW(run_with_runner(f, o), std::runtime_error);  // exists, neither --force nor --resume

  // Ctrl-C during sample 2: that sample completes, the run stops, --resume finishes it
  fs::remove(o.output);
  r = run_with_runner(f, o, 2);
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.complete, 3u);
  EXPECT_EQ(DatasetReader(o.output).size(), 3u);
  o.force = false;
  o.resume = true;
  r = run_with_runner(f, o);
  EXPECT_EQ(r.written, 3u);
  EXPECT_EQ(r.complete, 6u);
  expect_identical(reference, o.output);
  r = run_with_runner(f, o);  // resuming a finished file writes nothing
  EXPECT_EQ(r.written, 0u);

  // resume refuses another scenario or another shard
  Fixture g;
  g.spec = parse_scenario_text(std::string(kScenario) + "# changed\n", "synthetic.yaml");
  EXPECT_THROW(run_with_runner(g, o), std::runtime_error);
  o.shard = {1, 2};
  EXPECT_THROW(run_with_runner(f, o), std::runtime_error);

  // shards through the runner, stopped early and resumed, merge to the reference
  std::vector<std::string> parts;
  for (std::size_t k = 0; k < 2; ++k) {
    RunOptions s;
    s.output = (dir / ("rshard" + std::to_string(k) + ".h5")).string();
    s.shard = {k, 2};
    s.max_samples = 1;
    EXPECT_EQ(run_with_runner(f, s).complete, 1u);
    s.resume = true;
    s.max_samples = ~std::size_t{0};
    EXPECT_EQ(run_with_runner(f, s).complete, 3u);
    parts.push_back(s.output);
  }
  merge_datasets(parts, (dir / "rmerged.h5").string(), true);
  expect_identical(reference, (dir / "rmerged.h5").string());
}

namespace {
std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
/// Temporary files a staged write left in `dir`.
std::size_t partial_files(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".partial-") != std::string::npos;
  return n;
}
/// Forks `child`; SIGKILLs it `delay_us` after it starts, or, with `watch` set, after a
/// file whose name contains `watch` appears in `dir` (the output or its temporary file:
/// the moment the file is created).
void kill_after(const std::function<void()>& child, unsigned delay_us, const fs::path& dir = {},
                const std::string& watch = {}) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      child();
    } catch (...) {
    }
    _exit(0);  // never return into the test framework
  }
  int status = 0;
  bool exited = false;
  if (!watch.empty())
    for (bool seen = false; !seen && !exited;) {
      for (const auto& e : fs::directory_iterator(dir)) seen |= e.path().filename().string().find(watch) != std::string::npos;
      exited = !seen && waitpid(pid, &status, WNOHANG) == pid;
    }
  if (exited) return;
  usleep(delay_us);
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
}
}  // namespace

// Issue #12: a failing or interrupted --force run used to have destroyed the previous
// dataset at its start; now it writes a staged file that replaces the old one only when
// it finishes. A new file that never got a complete sample is not left behind.
TEST(Runner, ForceKeepsThePreviousFileUntilTheRunFinishes) {
  Fixture f;
  const auto dir = tmpdir() / "force_keep";
  fs::create_directories(dir);
  const std::string reference = (dir / "ref.h5").string();
  run(f, reference);
  RunOptions o;
  o.output = (dir / "kept.h5").string();
  o.max_samples = 2;
  run_with_runner(f, o);  // the previous dataset: 2 samples
  const std::string before = file_bytes(o.output);
  o.max_samples = ~std::size_t{0};
  o.force = true;
  std::ostringstream log;
  EXPECT_THROW(run_with_runner(f, o, -1, 3, &log), std::runtime_error);  // fails in sample 3
  EXPECT_EQ(file_bytes(o.output), before);
  EXPECT_NE(log.str().find("kept unchanged"), std::string::npos) << log.str();
  const RunResult r = run_with_runner(f, o, 4);  // Ctrl-C in sample 4
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(file_bytes(o.output), before);
  EXPECT_EQ(partial_files(dir), 0u);
  EXPECT_EQ(run_with_runner(f, o).complete, 6u);  // finished: replaces it
  expect_identical(reference, o.output);
  EXPECT_EQ(partial_files(dir), 0u);

  // A new file: a failure before the first sample leaves nothing; a later one leaves the
  // complete samples for --resume.
  RunOptions n;
  n.output = (dir / "new.h5").string();
  EXPECT_THROW(run_with_runner(f, n, -1, 0), std::runtime_error);
  EXPECT_FALSE(fs::exists(n.output));
  EXPECT_THROW(run_with_runner(f, n, -1, 3), std::runtime_error);
  EXPECT_EQ(DatasetReader(n.output).size(), 3u);
  n.resume = true;
  run_with_runner(f, n);
  expect_identical(reference, n.output);
  EXPECT_EQ(partial_files(dir), 0u);
}

// Issue #12: --resume on a file whose creation was interrupted (an older writer killed
// before its layout was complete) starts it again with a message; any other file that is
// not a stemtwin dataset is refused and left as it is.
TEST(Runner, ResumeStartsAgainAFileWithoutACompleteLayout) {
  Fixture f;
  const auto dir = tmpdir() / "unfinished";
  fs::create_directories(dir);
  const std::string reference = (dir / "ref.h5").string();
  run(f, reference);
  const std::string truncated = file_bytes(reference).substr(0, 600);
  const std::function<void(const std::string&)> unfinished[] = {
      [](const std::string& p) { std::ofstream(p, std::ios::binary); },  // empty
      [&](const std::string& p) { std::ofstream(p, std::ios::binary) << truncated; },  // superblock only
      [](const std::string& p) {  // groups, no layout attributes yet
        h5::Handle file = h5::create_file(p, true);
        h5::require_group(file, "images");
        h5::require_group(file, "params");
      },
  };
  RunOptions o;
  o.resume = true;
  for (std::size_t k = 0; k < std::size(unfinished); ++k) {
    o.output = (dir / ("u" + std::to_string(k) + ".h5")).string();
    unfinished[k](o.output);
    std::ostringstream log;
    const RunResult r = run_with_runner(f, o, -1, -1, &log);
    EXPECT_EQ(r.complete, 6u) << k;
    EXPECT_NE(log.str().find("starting it again"), std::string::npos) << k << ": " << log.str();
    expect_identical(reference, o.output);
  }
  const std::function<void(const std::string&)> foreign[] = {
      [](const std::string& p) { std::ofstream(p) << "my notes\n"; },
      [](const std::string& p) {
        h5::Handle file = h5::create_file(p, true);
        h5::create_extendible(file, "measurements", H5T_IEEE_F64LE, {}, {}, 0);
      },
  };
  for (std::size_t k = 0; k < std::size(foreign); ++k) {
    o.output = (dir / ("f" + std::to_string(k) + ".h5")).string();
    foreign[k](o.output);
    const std::string before = file_bytes(o.output);
    EXPECT_THROW(run_with_runner(f, o), std::runtime_error) << k;
    EXPECT_EQ(file_bytes(o.output), before) << k;
  }
}

// Issue #12: a run killed in the first milliseconds of creating its file (31 of 40 kills
// used to leave a file --resume refused for ever). 20 real SIGKILLs at pseudo-random times
// within 1.5 ms of the file appearing (writing the layout takes about that long here; the
// samples follow); each killed file is resumed and must give the bytes of an uninterrupted run.
TEST(Runner, ResumeAfterSigkillsInTheFirstMillisecondsIsIdentical) {
  Fixture f;
  const auto dir = tmpdir() / "early_kills";
  fs::create_directories(dir);
  const std::string reference = (dir / "ref.h5").string();
  run(f, reference);
  std::uint64_t state = 12;  // a fixed sequence of delays: the same test every time
  for (int k = 0; k < 20; ++k) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const unsigned delay_us = unsigned((state >> 33) % 400);
    RunOptions o;
    const std::string name = "k" + std::to_string(k) + ".h5";
    o.output = (dir / name).string();
    kill_after([&] { run_with_runner(f, o); }, delay_us, dir, name);
    o.resume = true;
    RunResult r;
    bool resumed = false;
    EXPECT_NO_THROW({
      r = run_with_runner(f, o);
      resumed = true;
    }) << "kill " << delay_us << " µs after the file appeared";
    if (!resumed) continue;
    EXPECT_EQ(r.complete, 6u);
    expect_identical(reference, o.output);
  }
}

// Issue #12: a killed merge could leave an unreadable output (8 of 30 kills); it now writes
// a staged file renamed into place when complete: the output is absent, or the previous
// complete one, or the new complete one.
TEST(Dataset, KilledMergeLeavesNoHalfWrittenOutput) {
  Fixture f;
  const auto dir = tmpdir() / "merge_kills";
  fs::create_directories(dir);
  const std::string full = (dir / "full.h5").string(), a = (dir / "a.h5").string(), b = (dir / "b.h5").string();
  run(f, full);
  run(f, a, {0, 2});
  run(f, b, {1, 2});
  std::uint64_t state = 7;
  for (int k = 0; k < 15; ++k) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const unsigned delay_us = unsigned((state >> 33) % 6000);
    const std::string out = (dir / ("m" + std::to_string(k % 3) + ".h5")).string();  // some over an earlier output
    kill_after([&] { merge_datasets({a, b}, out, true); }, delay_us);
    if (fs::exists(out)) expect_identical(full, out);
  }
}

// The compute/append split the MPI runner builds on: samples computed out of order, away
// from the writer (4D rows collected, the record sent as bytes), appended in order, give the
// same file as the serial loop.
TEST(Runner, SamplesComputedElsewhereAndOutOfOrderGiveTheSameFile) {
  Fixture f;
  const auto dir = tmpdir();
  RunOptions o;
  o.output = (dir / "serial.h5").string();
  run_with_runner(f, o);
  const SimulateSample simulate = synthetic_simulate(f);
  const SampleLoop reversed = [&](std::span<const std::size_t> pending, DatasetWriter& w, const std::function<bool()>& appended) {
    std::map<std::size_t, std::vector<std::byte>> sent;
    for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
      ComputedSample c;
      c.record = compute_sample(f.spec, w.layout(), *it, simulate, collect_rows(w.layout(), c.patterns));
      sent[*it] = encode_sample(c);
    }
    for (std::size_t i : pending) {
      const ComputedSample c = decode_sample(sent.at(i));
      append_collected(w, c.record, c.patterns);
      if (appended()) break;
    }
  };
  o.output = (dir / "elsewhere.h5").string();
  const RunResult r = run_with_runner(f, o, -1, -1, nullptr, reversed);
  EXPECT_EQ(r.written, 6u);
  expect_identical((dir / "serial.h5").string(), o.output);
  // resume through the same loop
  o.output = (dir / "elsewhere_resumed.h5").string();
  o.max_samples = 2;
  EXPECT_EQ(run_with_runner(f, o, -1, -1, nullptr, reversed).complete, 2u);
  o.max_samples = ~std::size_t{0};
  o.resume = true;
  EXPECT_EQ(run_with_runner(f, o, -1, -1, nullptr, reversed).written, 4u);
  expect_identical((dir / "serial.h5").string(), o.output);
  // a sample whose 4D rows are missing is refused before anything of it is written
  DatasetWriter w = DatasetWriter::open_for_resume(o.output);
  EXPECT_THROW(append_collected(w, SampleRecord{}, {}), std::invalid_argument);
}

TEST(SampleWire, RoundTripIsBitExactAndTruncationIsAnError) {
  ComputedSample c;
  c.record.index = 41;
  c.record.class_id = 3;
  Image im(3, 2);
  for (std::size_t i = 0; i < im.data.size(); ++i) im.data[i] = 0.1 * double(i) - 1e-300;
  c.record.images["haadf"] = im;
  c.record.clean["haadf"] = im;
  c.record.masks["columns"] = im;
  c.record.radial["r"] = {1.5f, -0.0f, std::nanf("")};
  c.record.params["thickness_A"] = std::nextafter(7.81, 8.0);
  c.record.params["nan"] = std::nan("");
  ColumnLabel l;
  l.x = 1.25, l.y = -2, l.px = 0.5, l.py = 3, l.species = 38, l.count = 2, l.class_id = -1;
  c.record.columns = {l, l};
  c.patterns["cam"] = {0.25f, 1e-30f, 3.0f, 4.0f};
  c.record.fft_plan = "0123456789abcdef/fedcba9876543210";  // the MPI writer records it too
  // Spectroscopy travels too (an MPI run of an EDS/EELS scenario writes what a serial one does).
  c.record.columns[0].composition = {2.0f, 0.5f};
  c.record.spectra["eds"] = {0.0f, 7.0f, 1.0f};
  c.record.clean_spectra["eds"] = {0.25f, 6.5f, 1.5f};
  c.record.maps["eds/Sr_K"] = im;
  c.record.clean_maps["eds/Sr_K"] = im;
  c.record.region_composition = {0.5f, 0.25f, 0.25f, 0.0f};
  const std::vector<std::byte> b = encode_sample(c);
  const ComputedSample d = decode_sample(b);
  EXPECT_EQ(encode_sample(d), b);  // every value bit for bit (NaN and −0 too)
  EXPECT_EQ(d.record.index, 41u);
  EXPECT_EQ(d.record.class_id, 3);
  EXPECT_EQ(d.record.images.at("haadf").data, im.data);
  EXPECT_EQ(d.record.params.at("thickness_A"), std::nextafter(7.81, 8.0));
  EXPECT_EQ(d.record.columns.size(), 2u);
  EXPECT_EQ(d.record.columns[1].species, 38);
  EXPECT_EQ(d.patterns.at("cam")[1], 1e-30f);
  EXPECT_EQ(d.record.fft_plan, c.record.fft_plan);
  EXPECT_EQ(d.record.columns[0].composition, c.record.columns[0].composition);
  EXPECT_TRUE(d.record.columns[1].composition.empty());
  EXPECT_EQ(d.record.spectra.at("eds"), c.record.spectra.at("eds"));
  EXPECT_EQ(d.record.clean_spectra.at("eds"), c.record.clean_spectra.at("eds"));
  EXPECT_EQ(d.record.maps.at("eds/Sr_K").data, im.data);
  EXPECT_EQ(d.record.clean_maps.at("eds/Sr_K").data, im.data);
  EXPECT_EQ(d.record.region_composition, c.record.region_composition);
  for (std::size_t cut : {std::size_t(0), std::size_t(3), b.size() / 2, b.size() - 1})
    EXPECT_THROW(decode_sample(std::span(b).first(cut)), std::runtime_error) << cut;
  std::vector<std::byte> longer = b;
  longer.push_back(std::byte{0});
  EXPECT_THROW(decode_sample(longer), std::runtime_error);
}

TEST(LabelMasks, DisksEllipsesAndNearestSpecies) {
  // two columns 0.6 Å (3 px) apart on a 0.2 Å grid, radius 0.5 Å: overlapping disks of 2.5 px
  std::vector<ColumnLabel> cols(2);
  cols[0].px = 5, cols[0].py = 5, cols[0].species = 0;
  cols[1].px = 8, cols[1].py = 5, cols[1].species = 2;
  const LabelMasks m = rasterize_label_masks(cols, 16, 12, 0.5, 0.2, 0.2);
  double area = 0;
  for (double v : m.columns.data) area += v;
  // 21 pixel centres lie within 2.5 px of a column (5 + 2·5 + 2·3); the disks share 6
  // (x = 6 and x = 7, |y − 5| ≤ 1), so the union is 2·21 − 6
  EXPECT_EQ(area, 36);
  EXPECT_EQ(m.species(5, 6), 1);  // 1 px from column 0, 2 px from column 1 → species 0 + 1
  EXPECT_EQ(m.species(5, 7), 3);  // 2 px from column 0, 1 px from column 1 → species 2 + 1
  EXPECT_EQ(m.species(6, 6), 1);
  EXPECT_EQ(m.columns(5, 11), 0);  // 3 px from column 1
  EXPECT_EQ(m.columns(5, 10), 1);
  EXPECT_EQ(m.species(0, 0), 0);
  // anisotropic steps: 0.1 Å in x → the disk spans ±5 px in x but ±2 px in y (step_y 0.25)
  const LabelMasks e = rasterize_label_masks({cols[0]}, 16, 12, 0.5, 0.1, 0.25);
  EXPECT_EQ(e.columns(5, 0), 1);
  EXPECT_EQ(e.columns(5, 10), 1);
  EXPECT_EQ(e.columns(5, 11), 0);
  EXPECT_EQ(e.columns(7, 5), 1);
  EXPECT_EQ(e.columns(8, 5), 0);
  EXPECT_THROW(rasterize_label_masks(cols, 4, 4, 0, 0.2, 0.2), std::invalid_argument);
}
