// pycroscopy's NSID (N-dimensional Spectroscopy and Imaging Data), as pyNSID writes it and
// pyNSID/SciFiReaders.NSIDReader read it (hdf_utils.check_if_main, read_h5py_dataset):
//   /Measurement_000/Channel_NNN/<name>   the main dataset, attributes (strings) quantity,
//        units, main_data_name, data_type (sidpy DataType: IMAGE, IMAGE_4D, SPECTRAL_IMAGE),
//        modality, source, title, pyNSID_version
//   /Measurement_000/Channel_NNN/<dim>    one 1-D dataset per dimension, made an HDF5
//        dimension scale and attached; the dimension's label is the dataset's name; attributes
//        name, units, quantity, dimension_type (SPATIAL, RECIPROCAL, SPECTRAL)
//   /Measurement_000/Channel_NNN/metadata a group whose attributes become sidpy's metadata
//        (beam, sample parameters; a spectrum image's spectrometer_settings() too)
// One sample (one row of the stemtwin file) per export: DTMicroscope's STEM server registers
// the images (IMAGE) as its scans and spectrum images (SPECTRAL_IMAGE) as point data.
#include <cstdio>

#include "export_source.hpp"

namespace stemtwin::exporting {
namespace {

std::string data_type(const ArrayInfo& a) {
  switch (a.kind) {
    case ArrayKind::Diffraction: return "IMAGE_4D";
    case ArrayKind::Radial:
    case ArrayKind::Spectrum: return "SPECTRAL_IMAGE";
    default: return "IMAGE";
  }
}

std::string modality(const ArrayInfo& a) {
  switch (a.kind) {
    case ArrayKind::Diffraction: return "4D-STEM";
    case ArrayKind::Spectrum: return a.technique.empty() ? "STEM spectrum image" : "STEM " + a.technique;
    case ArrayKind::Mask: return "label mask";
    default: return "STEM " + a.name;
  }
}

}  // namespace

void write_nsid(const Source& s, const std::string& output, std::size_t row) {
  if (row >= s.rows)
    throw std::runtime_error(s.path + ": --sample " + std::to_string(row) + " beyond the " + std::to_string(s.rows) +
                             " complete samples");
  h5::Handle f = h5::create_file(output, true);
  auto m = h5::require_group(f, "Measurement_000");
  for (std::size_t c = 0; c < s.arrays.size(); ++c) {
    const ArrayInfo& a = s.arrays[c];
    char ch[32];
    std::snprintf(ch, sizeof ch, "Channel_%03zu", c);
    auto g = h5::require_group(m, ch);
    const std::string name = title_of(a);
    std::vector<hsize_t> dims;
    for (std::size_t i = 1; i < a.axes.size(); ++i) dims.push_back(a.axes[i].size);
    auto d = h5::create_dataset(g, name, H5T_IEEE_F32LE, dims, H5T_NATIVE_FLOAT, s.read(a, row).data(), 4);
    const std::pair<const char*, std::string> attrs[] = {
        {"quantity", a.quantity},  {"units", a.units.empty() ? std::string("generic") : a.units},
        {"main_data_name", name},  {"data_type", data_type(a)},
        {"modality", modality(a)}, {"source", "stemtwin " + s.path + " /" + a.path},
        {"title", name + " (sample " + std::to_string(static_cast<long long>(s.indices[row])) + ")"},
        {"pyNSID_version", "0.0.7"}};
    for (const auto& [k, v] : attrs) h5::write_attr(d, k, v);
    for (unsigned i = 1; i < a.axes.size(); ++i) {
      const AxisInfo& ax = a.axes[i];
      // NSID wants one calibration per dimension: k in 1/Å when known (RECIPROCAL), else mrad.
      std::vector<double> v(ax.size);
      const bool alt = !ax.alt_name.empty();
      for (std::size_t k = 0; k < ax.size; ++k)
        v[k] = alt ? ax.alt_offset + static_cast<double>(k) * ax.alt_scale : ax.value(k);
      auto dim = h5::create_dataset(g, ax.name, v);
      h5::write_attr(dim, "name", ax.name);
      h5::write_attr(dim, "units", alt ? ax.alt_units : ax.units.empty() ? std::string("generic") : ax.units);
      h5::write_attr(dim, "quantity", alt ? std::string("reciprocal length") : ax.quantity);
      h5::write_attr(dim, "dimension_type", ax.dimension_type);
      h5::make_scale(dim, ax.name);
      h5::attach_scale(d, dim, i - 1);
      h5::set_dim_label(d, i - 1, ax.name);
    }
    auto md = h5::require_group(g, "metadata");
    const Instrument& in = s.instrument;
    if (!in.energy_eV.empty()) {
      h5::write_attr(md, "acceleration_voltage_V", in.energy_eV[row]);
      h5::write_attr(md, "convergence_angle_mrad", in.convergence_mrad[row]);
      h5::write_attr(md, "beam_current_pA", in.current_pA[row]);
      h5::write_attr(md, "dwell_time_us", in.dwell_us[row]);
    }
    if (const SpectraLayout* l = s.spectrometer_of(a))  // spectrum images: the spectrometer's settings
      for (const auto& [key, value] : spectrometer_settings(*l)) h5::write_attr(md, key, value);
    h5::write_attr(md, "sample_index", static_cast<std::int64_t>(s.indices[row]));
    for (const auto& [pname, pv] : s.params) h5::write_attr(md, pname, pv[row]);
  }
  h5::check(H5Fflush(f, H5F_SCOPE_GLOBAL), "flush " + output);
}

}  // namespace stemtwin::exporting
