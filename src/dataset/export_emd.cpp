// EMD 1.0 as py4DSTEM's emdfile reads and writes it (docs/export.md compares the layout
// with the specification):
//   /                       emd_group_type "file", version_major 1, version_minor 0, version_release 0
//   /<root>                 emd_group_type "root", python_class "Root"
//     metadatabundle/       emd_group_type "metadatabundle"
//       calibration/        emd_group_type "metadata", python_class "Calibration": one scalar
//                           dataset per key (attribute type "number" or "string"):
//                           R_pixel_size, R_pixel_units, Q_pixel_size, Q_pixel_units
//       stemtwin/           the same kind of metadata: beam energy, convergence, current, dwell
//     <array>/              emd_group_type "array", python_class "Array" (images, masks, radial,
//                           spectra: the sample axis first) or "DataCube" (one per sample of a
//                           4D set, [Rx = scan y, Ry = scan x, Qx = ky, Qy = kx])
//       data                attribute units
//       dim<i>              [first, second] for a linear axis, all values otherwise; attributes name, units
//       metadatabundle/spectrometer/  spectrum images: the spectrometer's settings (technique and
//                           spectrometer_settings(): resolution_mn_ka_eV, solid_angle_sr, takeoff_deg
//                           or collection_semiangle_mrad), metadata as above
#include "export_source.hpp"

namespace stemtwin::exporting {
namespace {

void set_type(hid_t obj, const std::string& group_type, const std::string& python_class) {
  h5::write_attr(obj, "emd_group_type", group_type);
  if (!python_class.empty()) h5::write_attr(obj, "python_class", python_class);
}

void metadata_number(hid_t g, const std::string& key, double v) {
  auto d = h5::create_dataset(g, key, H5T_IEEE_F64LE, {}, H5T_NATIVE_DOUBLE, &v);
  h5::write_attr(d, "type", std::string("number"));
}

void metadata_string(hid_t g, const std::string& key, const std::string& v) {
  h5::Handle t(H5Tcopy(H5T_C_S1), H5Tclose, "copy string type");
  h5::check(H5Tset_size(t, H5T_VARIABLE), "string size");
  h5::check(H5Tset_cset(t, H5T_CSET_UTF8), "string charset");
  const char* p = v.c_str();
  auto d = h5::create_dataset(g, key, t, {}, t, &p);
  h5::write_attr(d, "type", std::string("string"));
}

/// EMD dims: a linear axis is stored as its first two values.
void write_dim(hid_t g, unsigned n, const AxisInfo& ax, const std::string& name) {
  std::vector<double> v;
  if (ax.values.empty()) v = {ax.value(0), ax.value(0) + ax.scale};
  else v = ax.values;
  auto d = h5::create_dataset(g, "dim" + std::to_string(n), v);
  h5::write_attr(d, "name", name);
  h5::write_attr(d, "units", ax.units.empty() ? std::string("unknown") : ax.units == "Å" ? std::string("A") : ax.units);
}

}  // namespace

void write_emd(const Source& s, const std::string& output) {
  h5::Handle f = h5::create_file(output, true);
  set_type(f, "file", "");
  h5::write_attr(f, "version_major", std::int64_t{1});
  h5::write_attr(f, "version_minor", std::int64_t{0});
  h5::write_attr(f, "version_release", std::int64_t{0});
  h5::write_attr(f, "authoring_program", std::string("stemtwin"));
  const std::string root_name = s.layout.scenario_name.empty() ? "stemtwin" : s.layout.scenario_name;
  auto root = h5::require_group(f, root_name);
  set_type(root, "root", "Root");
  auto bundle = h5::require_group(root, "metadatabundle");
  set_type(bundle, "metadatabundle", "");
  {
    auto cal = h5::require_group(bundle, "calibration");
    set_type(cal, "metadata", "Calibration");
    if (s.calibration.pixel_size_A.size() == 2) {
      metadata_number(cal, "R_pixel_size", s.calibration.pixel_size_A[0]);
      metadata_string(cal, "R_pixel_units", "A");
    } else {
      metadata_number(cal, "R_pixel_size", 1.0);
      metadata_string(cal, "R_pixel_units", "pixels");
    }
    for (const auto& a : s.arrays)
      if (a.kind == ArrayKind::Diffraction) {
        const AxisInfo& kx = a.axes[4];
        metadata_number(cal, "Q_pixel_size", kx.alt_name.empty() ? kx.scale : kx.alt_scale);
        metadata_string(cal, "Q_pixel_units", kx.alt_name.empty() ? "mrad" : "A^-1");
        break;
      }
  }
  {
    auto md = h5::require_group(bundle, "stemtwin");
    set_type(md, "metadata", "Metadata");
    metadata_string(md, "source_file", s.path);
    metadata_string(md, "scenario", s.scenario_text);
    const Instrument& in = s.instrument;
    if (auto e = common(in.energy_eV)) metadata_number(md, "beam_energy_eV", *e);
    if (auto c = common(in.convergence_mrad)) metadata_number(md, "convergence_angle_mrad", *c);
    if (auto c = common(in.current_pA)) metadata_number(md, "beam_current_pA", *c);
    if (auto d = common(in.dwell_us)) metadata_number(md, "dwell_time_us", *d);
  }
  for (const ArrayInfo& a : s.arrays) {
    const hid_t type = a.kind == ArrayKind::Mask ? H5T_STD_I16LE : H5T_IEEE_F32LE;
    if (a.kind == ArrayKind::Diffraction) {
      // py4DSTEM's DataCube is one 4D scan: one node per sample.
      const char* names[] = {"Rx", "Ry", "Qx", "Qy"};
      for (std::size_t r = 0; r < s.rows; ++r) {
        auto g = h5::require_group(root, title_of(a) + "_sample" + std::to_string(static_cast<long long>(s.indices[r])));
        set_type(g, "array", "DataCube");
        std::vector<hsize_t> dims;
        for (std::size_t i = 1; i < a.axes.size(); ++i) dims.push_back(a.axes[i].size);
        auto d = h5::create_dataset(g, "data", type, dims, H5T_NATIVE_FLOAT, s.read(a, r).data(), 4);
        h5::write_attr(d, "units", a.units);
        for (unsigned i = 1; i < a.axes.size(); ++i) {
          AxisInfo ax = a.axes[i];
          if (i >= 3 && !ax.alt_name.empty()) ax.offset = ax.alt_offset, ax.scale = ax.alt_scale, ax.units = "A^-1";
          write_dim(g, i - 1, ax, names[i - 1]);
        }
      }
      continue;
    }
    auto g = h5::require_group(root, title_of(a));
    set_type(g, "array", "Array");
    std::vector<hsize_t> dims;
    for (const auto& ax : a.axes) dims.push_back(ax.size);
    auto d = h5::create_dataset(g, "data", type, dims, H5T_NATIVE_FLOAT, nullptr, 4);
    for (std::size_t r = 0; r < s.rows; ++r) h5::write_rows(d, H5T_NATIVE_FLOAT, r, 1, s.read(a, r).data());
    h5::write_attr(d, "units", a.units);
    for (unsigned i = 0; i < a.axes.size(); ++i) write_dim(g, i, a.axes[i], a.axes[i].name);
    if (const SpectraLayout* l = s.spectrometer_of(a); l && !spectrometer_settings(*l).empty()) {
      // A node's own metadata, as emdfile writes it: <node>/metadatabundle/<name>.
      auto nb = h5::require_group(g, "metadatabundle");
      set_type(nb, "metadatabundle", "");
      auto md = h5::require_group(nb, "spectrometer");
      set_type(md, "metadata", "Metadata");
      metadata_string(md, "technique", l->technique);
      for (const auto& [key, value] : spectrometer_settings(*l)) metadata_number(md, key, value);
    }
  }
  h5::check(H5Fflush(f, H5F_SCOPE_GLOBAL), "flush " + output);
}

}  // namespace stemtwin::exporting
