// The one axes/units table (axes.hpp) and the HDF5 dimension scales the writer makes from it.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "stemtwin/dataset/axes.hpp"
#include "stemtwin/core/constants.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "stemtwin/scenario/dataset_layout.hpp"
#include "stemtwin/scenario/scenario.hpp"

using namespace stemtwin;
namespace fs = std::filesystem;

namespace {

std::string scenario(const std::string& energy) {
  return "name: axes\nseed: 1\nsamples: 2\n"
         "specimen:\n  builder: {type: perovskite}\n"
         "microscope:\n  energy: " + energy + "\n"
         "scan:\n  start: [0, 0]\n  fov: [2, 3]\n  pixels: [4, 6]\n"
         "detectors:\n  - {name: haadf, type: annular, inner: 70, outer: 200}\n  - {name: com, type: com}\n"
         "  - {name: cam, type: pixelated, max_angle: 20}\n"
         "acquisition:\n  noise: true\n"
         "labels:\n  masks: [columns, species]\n";
}

DatasetLayout complete(DatasetLayout L) {
  L.species = {"O", "Ti"};
  L.pixel_size_A = {0.5, 0.5};
  for (auto& d : L.diffraction) d.kx = 5, d.ky = 3, d.sampling_x = 4, d.sampling_y = 6;
  return L;
}

}  // namespace

TEST(Axes, TableGivesUnitsAndCalibratedAxes) {
  const std::string text = scenario("200e3");
  const ScenarioSpec spec = parse_scenario_text(text, "axes");
  const DatasetLayout L = complete(layout_for(spec));
  const Calibration c = calibration_for(L);
  ASSERT_TRUE(c.energy_eV);
  EXPECT_DOUBLE_EQ(*c.energy_eV, 200e3);
  const auto arrays = dataset_arrays(L, c, 2, {0, 1});
  const auto find = [&](const std::string& p) {
    for (const auto& a : arrays)
      if (a.path == p) return a;
    ADD_FAILURE() << "no " << p;
    return ArrayInfo{};
  };
  EXPECT_EQ(find("images/haadf").units, "ADU");
  EXPECT_EQ(find("clean/haadf").units, "fraction of the incident probe");
  EXPECT_EQ(find("images/com_x").units, "mrad");
  EXPECT_EQ(find("clean/com_idpc").units, "mrad·Å");  // iDPC: the integral of COM (mrad) over Å
  const ArrayInfo cam = find("diffraction/cam");
  ASSERT_EQ(cam.axes.size(), 5u);
  EXPECT_EQ(cam.axes[2].units, "Å");
  EXPECT_DOUBLE_EQ(cam.axes[2].scale, 0.5);
  EXPECT_TRUE(cam.axes[1].navigate && cam.axes[2].navigate && !cam.axes[3].navigate);
  const AxisInfo& kx = cam.axes[4];
  EXPECT_EQ(kx.units, "mrad");
  EXPECT_DOUBLE_EQ(kx.offset, -8.0);  // 5 pixels of 4 mrad, zero in the middle one
  EXPECT_DOUBLE_EQ(cam.axes[3].offset, -6.0);
  EXPECT_NEAR(kx.alt_scale, 4e-3 / wavelength_A(200e3), 1e-12);
  EXPECT_EQ(kx.alt_units, "1/Å");
  EXPECT_EQ(find("labels/masks/species").value_names, (std::vector<std::string>{"background", "O", "Ti"}));
  EXPECT_EQ(find("labels/masks/columns").value_names, (std::vector<std::string>{"background", "column"}));
}

TEST(Axes, SampledEnergyLeavesReciprocalAxesInMradOnly) {
  const std::string text = scenario("{choice: [200e3, 300e3]}");
  const ScenarioSpec spec = parse_scenario_text(text, "axes");
  const DatasetLayout L = complete(layout_for(spec));
  const Calibration c = calibration_for(L);
  EXPECT_FALSE(c.energy_eV);
  for (const auto& a : dataset_arrays(L, c, 1))
    for (const auto& ax : a.axes) EXPECT_TRUE(ax.alt_name.empty()) << a.path << " " << ax.name;
  DatasetLayout fixed = complete(layout_for(parse_scenario_text(scenario("200e3"), "axes")));
  fixed.instrument = {};  // a hand-made layout or a file from before /instrument: no energy, generic units
  const Calibration none = calibration_for(fixed);
  EXPECT_FALSE(none.energy_eV);
  EXPECT_TRUE(none.acquired_units.empty());
}

TEST(Axes, WriterAttachesDimensionScales) {
  const std::string text = scenario("300e3");
  const DatasetLayout L = complete(layout_for(parse_scenario_text(text, "axes")));
  const auto dir = fs::temp_directory_path() / ("stemtwin_axes_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "a.h5").string();
  DatasetWriter::create(path, L, text, true).close();
  h5::Handle f = h5::open_file(path, false);
  h5::Handle haadf = h5::open_dataset(f, "images/haadf");
  h5::Handle sample = h5::open_dataset(f, "params/sample_index");
  h5::Handle x = h5::open_dataset(f, "axes/x_A");
  EXPECT_GT(H5DSis_attached(haadf, sample, 0), 0);
  EXPECT_GT(H5DSis_attached(haadf, x, 2), 0);
  EXPECT_EQ(h5::read_attr_string(x, "units"), "Å");
  EXPECT_EQ(h5::read_attr_string(haadf, "units"), "ADU");
  char label[16] = {};
  H5DSget_label(haadf, 1, label, sizeof label);
  EXPECT_STREQ(label, "y");
  h5::Handle cam = h5::open_dataset(f, "diffraction/cam");
  EXPECT_EQ(H5DSget_num_scales(cam, 4), 2);  // kx in mrad and in 1/Å
  EXPECT_EQ(h5::read_attr_strings(h5::open_dataset(f, "labels/masks/species"), "values"),
            (std::vector<std::string>{"background", "O", "Ti"}));
  fs::remove_all(dir);
}
