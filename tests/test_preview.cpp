// Pictures of every shipped scenario's dataset layout: the contact sheet and the sample sheet
// render with tiles of at least 128 px, show something in every tile (not a blank sheet),
// and `stemtwin show` writes a PNG. Physics is replaced by synthetic Gaussian columns so
// that each scenario's layout (channels, masks, radial, 4D) is covered in a second.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "stemtwin/apps/cli_commands.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/label_masks.hpp"
#include "stemtwin/dataset/preview.hpp"
#include "stemtwin/scenario/dataset_layout.hpp"
#include "stemtwin/scenario/scenario.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {

fs::path tmpdir() {
  const auto p = fs::temp_directory_path() / ("stemtwin_preview_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p;
}

/// A dataset of `n` synthetic samples with the layout the runner would write for `spec`.
std::string synthetic_dataset(const ScenarioSpec& spec, const std::string& path, std::size_t n) {
  DatasetLayout L = layout_for(spec);
  L.species = {"O", "Ti", "Sr"};
  L.pixel_size_A = {0.25, 0.25};
  for (auto& r : L.radial)
    if (r.edges.empty()) r.edges = {0, 10, 20, 30, 40};
  for (auto& d : L.diffraction) d.kx = d.ky = 9, d.sampling_x = d.sampling_y = 5;
  DatasetWriter w = DatasetWriter::create(path, L, spec.text, true);
  for (std::size_t i = 0; i < n; ++i) {
    SampleRecord r;
    r.index = i;
    // Four columns, one per quadrant, species cycling; a Gaussian image of them.
    for (int k = 0; k < 4; ++k) {
      ColumnLabel c;
      c.px = (0.25 + 0.5 * (k % 2)) * static_cast<double>(L.nx) + 0.3 * static_cast<double>(i);
      c.py = (0.25 + 0.5 * (k / 2)) * static_cast<double>(L.ny);
      c.x = c.px * 0.25, c.y = c.py * 0.25;
      c.species = k % 3;
      c.count = 4;
      r.columns.push_back(c);
    }
    Image im(L.nx, L.ny);
    for (std::size_t y = 0; y < L.ny; ++y)
      for (std::size_t x = 0; x < L.nx; ++x)
        for (const auto& c : r.columns)
          im(y, x) += std::exp(-(std::pow(x - c.px, 2) + std::pow(y - c.py, 2)) / (0.02 * L.nx * L.nx)) * (1 + c.species);
    for (const auto& ch : L.images) r.images[ch] = r.clean[ch] = im;
    for (const auto& rl : L.radial) r.radial[rl.name] = std::vector<float>(L.nx * L.ny * rl.bins(), 1.0f);
    const SampledScenario s = sample_parameters(spec, i);
    for (const auto& p : L.params) r.params[p.name] = s.values.count(p.name) ? s.values.at(p.name) : 0.0;
    r.instrument = instrument_settings(s);
    r.class_id = L.has_class ? 0 : -1;
    const LabelMasks m = rasterize_label_masks(r.columns, L.nx, L.ny, 0.6, 0.25, 0.25);
    for (const auto& ml : L.masks) r.masks[ml.name] = ml.name == "columns" ? m.columns : m.species;
    for (const auto& d : L.diffraction) {
      std::vector<float> row(L.nx * d.ky * d.kx);
      for (std::size_t x = 0; x < L.nx; ++x)
        for (std::size_t j = 0; j < d.ky; ++j)
          for (std::size_t q = 0; q < d.kx; ++q)
            row[(x * d.ky + j) * d.kx + q] = static_cast<float>(std::exp(-(std::pow(j - 4.0, 2) + std::pow(q - 4.0, 2)) / 4.0));
      for (std::size_t y = 0; y < L.ny; ++y) w.write_diffraction_row(d.name, y, row.data());
    }
    w.append_sample(r);
  }
  w.close();
  return path;
}

/// Fraction of the picture that is not the background colour.
double covered(const RgbImage& img) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < img.width * img.height; ++i)
    if (img.rgb[3 * i] != 32 || img.rgb[3 * i + 1] != 32 || img.rgb[3 * i + 2] != 32) ++n;
  return static_cast<double>(n) / static_cast<double>(img.width * img.height);
}

std::size_t grey_levels(const RgbImage& img) {
  std::set<int> levels;
  for (std::size_t i = 0; i < img.width * img.height; ++i)
    if (img.rgb[3 * i] == img.rgb[3 * i + 1] && img.rgb[3 * i] == img.rgb[3 * i + 2]) levels.insert(img.rgb[3 * i]);
  return levels.size();
}

}  // namespace

TEST(Preview, EveryShippedScenarioRendersReadably) {
  std::size_t seen = 0;
  for (const auto& e : fs::directory_iterator(fs::path(STEMTWIN_SOURCE_DIR) / "scenarios")) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    ++seen;
    const ScenarioSpec spec = parse_scenario_file(e.path().string());
    const std::string path = synthetic_dataset(spec, (tmpdir() / (e.path().stem().string() + ".h5")).string(), 3);
    const DatasetReader r(path);
    const auto& L = r.layout();
    PreviewOptions o;
    o.samples = 3;
    const RgbImage sheet = render_contact_sheet(r, o);
    const std::size_t rows = L.images.size() + (L.images.empty() ? 0 : L.masks.size()) + 2 * L.diffraction.size();
    EXPECT_GE(sheet.width, 3u * static_cast<std::size_t>(kMinTile));
    EXPECT_GE(sheet.height, rows * static_cast<std::size_t>(kMinTile));
    EXPECT_GT(covered(sheet), 0.5);      // tiles fill the sheet
    EXPECT_GT(grey_levels(sheet), 20u);  // and show images, not flat grey
    const RgbImage one = render_sample_sheet(r, 1, o);
    EXPECT_GE(one.width, 2u * static_cast<std::size_t>(kMinTile));
    EXPECT_GT(covered(one), 0.3);
    const std::string png = (tmpdir() / (e.path().stem().string() + ".png")).string();
    std::ostringstream out, err;
    EXPECT_EQ(cmd_show(path, 2, png, o, out, err), 0) << err.str();
    EXPECT_GT(fs::file_size(png), 1000u);
  }
  EXPECT_GE(seen, 5u);
  fs::remove_all(tmpdir());
}

TEST(Preview, ShowRefusesARowBeyondTheFile) {
  const ScenarioSpec spec = parse_scenario_file(std::string(STEMTWIN_SOURCE_DIR) + "/scenarios/quickstart.yaml");
  const std::string path = synthetic_dataset(spec, (tmpdir() / "q.h5").string(), 2);
  std::ostringstream out, err;
  EXPECT_EQ(cmd_show(path, 5, (tmpdir() / "x.png").string(), {}, out, err), 1);
  EXPECT_NE(err.str().find("q.h5"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("beyond"), std::string::npos) << err.str();
  fs::remove_all(tmpdir());
}
