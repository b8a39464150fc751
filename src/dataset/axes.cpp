#include "stemtwin/dataset/axes.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "stemtwin/core/constants.hpp"
#include "stemtwin/dataset/hdf5.hpp"

namespace stemtwin {

std::vector<double> AxisInfo::all_values() const {
  std::vector<double> v(size);
  for (std::size_t i = 0; i < size; ++i) v[i] = value(i);
  return v;
}

const char* to_string(ArrayKind k) {
  switch (k) {
    case ArrayKind::Image: return "image";
    case ArrayKind::Clean: return "clean";
    case ArrayKind::Radial: return "radial";
    case ArrayKind::Diffraction: return "diffraction";
    case ArrayKind::Mask: return "mask";
    case ArrayKind::Spectrum: return "spectrum";
  }
  return "?";
}

Calibration calibration_for(const DatasetLayout& layout) {
  // What the writer stored (scenario/dataset_layout.cpp decides it); a file without it (from
  // before /instrument, or a hand-made layout) gets no energy and the generic units.
  Calibration c;
  c.pixel_size_A = layout.pixel_size_A;
  c.energy_eV = layout.instrument.energy_eV;
  c.acquired_units = layout.instrument.acquired_units;
  c.clean_units = layout.instrument.clean_units;
  return c;
}

std::vector<std::string> mask_value_names(const MaskLayout& m, const DatasetLayout& l) {
  if (!m.values.empty() || m.name != "species") return m.values;
  std::vector<std::string> v{"background"};
  v.insert(v.end(), l.species.begin(), l.species.end());
  return v;
}

namespace {

AxisInfo sample_axis(std::size_t rows, const std::vector<double>& indices) {
  AxisInfo a;
  a.name = "sample";
  a.long_name = "sample index";
  a.quantity = "sample index";
  a.dimension_type = "UNKNOWN";
  a.navigate = true;
  a.size = rows;
  if (indices.size() == rows) {
    // Uniform when the indices are (a shard's) arithmetic progression.
    bool uniform = rows < 2;
    if (rows >= 2) {
      uniform = true;
      const double step = indices[1] - indices[0];
      for (std::size_t i = 1; i < rows; ++i) uniform = uniform && indices[i] - indices[i - 1] == step;
      a.scale = step;
    }
    a.offset = rows ? indices[0] : 0;
    if (!uniform) a.values = indices;
  }
  a.scale_path = "params/sample_index";
  return a;
}

AxisInfo scan_axis(const std::string& name, std::size_t n, const std::vector<double>& pixel_size, std::size_t which) {
  AxisInfo a;
  a.name = name;
  a.long_name = "scan " + name;
  a.navigate = false;
  a.size = n;
  a.dimension_type = "SPATIAL";
  if (pixel_size.size() == 2) {
    a.units = "Å";
    a.quantity = "length";
    a.scale = pixel_size[which];
    a.scale_path = "axes/" + name + "_A";
  } else {
    a.units = "px";
    a.quantity = "scan pixel";
    a.scale_path = "axes/" + name + "_px";
  }
  return a;
}

AxisInfo k_axis(const std::string& det, const std::string& name, std::size_t n, double sampling_mrad,
                const Calibration& c) {
  AxisInfo a;
  a.name = name;
  a.long_name = "scattering angle " + name;
  a.units = "mrad";
  a.quantity = "scattering angle";
  a.dimension_type = "RECIPROCAL";
  a.size = n;
  a.scale = sampling_mrad;
  a.offset = -0.5 * static_cast<double>(n - 1) * sampling_mrad;  // zero frequency in the middle pixel
  a.scale_path = "axes/" + det + "/" + name + "_mrad";
  if (c.energy_eV) {
    const double to_inv_A = 1e-3 / wavelength_A(*c.energy_eV);  // k = θ/λ
    a.alt_name = name + "_invA";
    a.alt_units = "1/Å";
    a.alt_scale = a.scale * to_inv_A;
    a.alt_offset = a.offset * to_inv_A;
    a.alt_scale_path = "axes/" + det + "/" + name + "_invA";
  }
  return a;
}

std::vector<AxisInfo> image_axes(const DatasetLayout& l, const Calibration& c, std::size_t rows,
                                 const std::vector<double>& idx) {
  return {sample_axis(rows, idx), scan_axis("y", l.ny, c.pixel_size_A, 1), scan_axis("x", l.nx, c.pixel_size_A, 0)};
}

}  // namespace

std::vector<ArrayInfo> dataset_arrays(const DatasetLayout& l, const Calibration& c, std::size_t rows,
                                      const std::vector<double>& idx) {
  std::vector<ArrayInfo> out;
  auto units = [](const std::map<std::string, std::string>& m, const std::string& ch, const char* otherwise) {
    const auto it = m.find(ch);
    return it == m.end() ? std::string(otherwise) : it->second;
  };
  for (const auto& ch : l.images) {
    out.push_back({ArrayKind::Image, "images/" + ch, ch, ch + " detector signal (acquired)",
                   units(c.acquired_units, ch, "detector units (docs/acquisition.md)"), "intensity",
                   image_axes(l, c, rows, idx), {}, ""});
  }
  if (l.store_clean)
    for (const auto& ch : l.images)
      out.push_back({ArrayKind::Clean, "clean/" + ch, ch, ch + " detector signal (noise-free)",
                     units(c.clean_units, ch, "fraction of the incident probe"), "intensity", image_axes(l, c, rows, idx),
                     {}, ""});
  for (const auto& r : l.radial) {
    ArrayInfo a{ArrayKind::Radial, "radial/" + r.name, r.name, r.name + " radial detector",
                "fraction of the incident probe per bin", "intensity", image_axes(l, c, rows, idx), {}, ""};
    AxisInfo b;
    b.name = "angle";
    b.long_name = "scattering angle (bin centre)";
    b.units = "mrad";
    b.quantity = "scattering angle";
    b.dimension_type = "RECIPROCAL";
    b.size = r.bins();
    for (std::size_t i = 0; i < r.bins(); ++i) b.values.push_back(0.5 * (r.edges[i] + r.edges[i + 1]));
    // Uniform bins (the usual case) are stored as offset + i·scale.
    if (b.size >= 2) {
      const double step = b.values[1] - b.values[0];
      bool uniform = true;
      for (std::size_t i = 1; i < b.size; ++i) uniform = uniform && std::abs(b.values[i] - b.values[i - 1] - step) < 1e-9;
      if (uniform) b.offset = b.values[0], b.scale = step, b.values.clear();
    }
    b.scale_path = "axes/" + r.name + "/angle_mrad";
    a.axes.push_back(b);
    out.push_back(a);
  }
  for (const auto& d : l.diffraction) {
    ArrayInfo a{ArrayKind::Diffraction, "diffraction/" + d.name, d.name, d.name + " diffraction patterns (4D-STEM)",
                "fraction of the incident probe per pixel", "intensity", image_axes(l, c, rows, idx), {}, ""};
    a.axes[1].navigate = a.axes[2].navigate = true;
    a.axes.push_back(k_axis(d.name, "ky", d.ky, d.sampling_y, c));
    a.axes.push_back(k_axis(d.name, "kx", d.kx, d.sampling_x, c));
    out.push_back(a);
  }
  for (const auto& m : l.masks)
    out.push_back({ArrayKind::Mask, "labels/masks/" + m.name, m.name, m.name + " label mask", "", "label",
                   image_axes(l, c, rows, idx), mask_value_names(m, l), ""});
  return out;
}

ArrayInfo spectrum_array(const DatasetLayout& l, const Calibration& c, const std::string& name, std::size_t rows,
                         const std::vector<double>& energy, const std::string& technique,
                         const std::vector<double>& idx) {
  ArrayInfo a{ArrayKind::Spectrum, "spectra/" + name, name, name + " spectrum image" + (technique.empty() ? "" : " (" + technique + ")"),
              "counts", "intensity", image_axes(l, c, rows, idx), {}, technique};
  a.axes[1].navigate = a.axes[2].navigate = true;
  AxisInfo e;
  e.name = "energy";
  e.long_name = "energy";
  e.units = "eV";
  e.quantity = "energy";
  e.dimension_type = "SPECTRAL";
  e.size = energy.size();
  e.values = energy;
  if (energy.size() >= 2) {
    const double step = energy[1] - energy[0];
    bool uniform = step != 0;
    for (std::size_t i = 1; i < energy.size(); ++i)
      uniform = uniform && std::abs(energy[i] - energy[i - 1] - step) <= 1e-6 * std::abs(step);
    if (uniform) e.offset = energy[0], e.scale = step, e.values.clear();
  }
  e.scale_path = "axes/" + name + "/energy_eV";
  a.axes.push_back(e);
  return a;
}

void write_dimension_scales(std::int64_t f, const DatasetLayout& l, const Calibration& c) {
  const auto arrays = dataset_arrays(l, c, 0);
  // Scale datasets are shared: /axes/y_A serves every image. Create each once.
  std::vector<std::string> made;
  auto scale = [&](const std::string& path, const std::string& name, const std::vector<double>& values,
                   const std::string& units, const std::string& long_name) {
    if (std::find(made.begin(), made.end(), path) == made.end()) {
      auto d = h5::create_dataset(f, path, values);
      h5::make_scale(d, name);
      h5::write_attr(d, "units", units);
      h5::write_attr(d, "long_name", long_name);
      made.push_back(path);
    }
    return h5::open_dataset(f, path);
  };
  auto sample_scale = h5::open_dataset(f, "params/sample_index");
  h5::make_scale(sample_scale, "sample");
  h5::write_attr(sample_scale, "long_name", std::string("global sample index"));
  h5::write_attr(sample_scale, "units", std::string(""));
  for (const auto& a : arrays) {
    auto d = h5::open_dataset(f, a.path);
    h5::write_attr(d, "long_name", a.long_name);
    h5::write_attr(d, "units", a.units);
    if (!a.value_names.empty()) h5::write_attr(d, "values", a.value_names);
    for (unsigned i = 0; i < a.axes.size(); ++i) {
      const AxisInfo& ax = a.axes[i];
      h5::set_dim_label(d, i, ax.name);
      if (i == 0) {
        h5::attach_scale(d, sample_scale, 0);
        continue;
      }
      auto s = scale(ax.scale_path, ax.name, ax.all_values(), ax.units, ax.long_name);
      h5::attach_scale(d, s, i);
      if (!ax.alt_name.empty()) {
        std::vector<double> v(ax.size);
        for (std::size_t k = 0; k < ax.size; ++k) v[k] = ax.alt_offset + static_cast<double>(k) * ax.alt_scale;
        auto s2 = scale(ax.alt_scale_path, ax.alt_name, v, ax.alt_units, ax.long_name + " (k = θ/λ)");
        h5::attach_scale(d, s2, i);
      }
    }
  }
  if (l.columns) {
    const std::pair<const char*, const char*> units[] = {{"x_A", "Å"}, {"y_A", "Å"}, {"x_px", "px"}, {"y_px", "px"}};
    for (const auto& [col, u] : units) h5::write_attr(h5::open_dataset(f, std::string("labels/columns/") + col), "units", std::string(u));
    h5::write_attr(h5::open_dataset(f, "labels/columns/species"), "values", l.species);
  }
}

}  // namespace stemtwin
