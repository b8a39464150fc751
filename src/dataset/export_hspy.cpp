// HyperSpy's .hspy format, version 3.1 (the version HyperSpy 1.7 writes; read by 1.x and by
// RosettaSciIO): /Experiments/<title>/{data, axis-<i>, metadata, original_metadata}, every
// value an HDF5 attribute, axes as UniformDataAxis (_type, name, units, navigate, is_binned,
// size, scale, offset) or DataAxis (axis values) in the order of the array's dimensions.
#include <cctype>

#include "export_source.hpp"

namespace stemtwin::exporting {
namespace {

/// HyperSpy's metadata keys are attribute names inside nested groups; a key with a dot
/// would be split by DictionaryTreeBrowser, so parameter paths become identifiers.
std::string identifier(const std::string& s) {
  std::string o;
  for (char c : s) o += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return o;
}

std::string signal_type(const ArrayInfo& a) {
  switch (a.kind) {
    case ArrayKind::Diffraction: return "electron_diffraction";
    case ArrayKind::Spectrum:
      if (a.technique == "EDS") return "EDS_TEM";
      if (a.technique == "EELS") return "EELS";
      return "";
    default: return "";
  }
}

void write_axis(hid_t g, unsigned i, AxisInfo ax, const ArrayInfo& a) {
  // HyperSpy's EDS tools work in keV.
  if (a.kind == ArrayKind::Spectrum && a.technique == "EDS" && ax.name == "energy") {
    ax.units = "keV";
    ax.offset *= 1e-3;
    ax.scale *= 1e-3;
    for (auto& v : ax.values) v *= 1e-3;
  }
  auto h = h5::require_group(g, "axis-" + std::to_string(i));
  h5::write_attr(h, "name", ax.name);
  h5::write_attr(h, "units", ax.units.empty() ? std::string("<undefined>") : ax.units);
  h5::write_attr_bool(h, "navigate", ax.navigate);
  h5::write_attr_bool(h, "is_binned", false);
  h5::write_attr(h, "size", static_cast<std::int64_t>(ax.size));
  if (ax.values.empty() || ax.values.size() < 2) {
    h5::write_attr(h, "_type", std::string("UniformDataAxis"));
    h5::write_attr(h, "scale", ax.scale);
    h5::write_attr(h, "offset", ax.values.empty() ? ax.offset : ax.values[0]);
  } else {
    h5::write_attr(h, "_type", std::string("DataAxis"));
    h5::write_attr(h, "axis", ax.values);
  }
}

void write_metadata(hid_t g, const Source& s, const ArrayInfo& a) {
  auto md = h5::require_group(g, "metadata");
  auto general = h5::require_group(md, "General");
  h5::write_attr(general, "title", title_of(a));
  h5::write_attr(general, "original_filename", s.path);
  auto signal = h5::require_group(md, "Signal");
  h5::write_attr(signal, "signal_type", signal_type(a));
  h5::write_attr(signal, "quantity", a.quantity + " (" + a.units + ")");
  write_hspy_sample(md, s, a);  // spectra: elements and X-ray lines (export_spectra.cpp)
  const Instrument& in = s.instrument;
  if (!in.energy_eV.empty()) {
    auto tem = h5::require_group(md, "Acquisition_instrument/TEM");
    if (auto e = common(in.energy_eV)) h5::write_attr(tem, "beam_energy", *e * 1e-3);                 // keV
    if (auto c = common(in.convergence_mrad)) h5::write_attr(tem, "convergence_angle", *c);          // mrad
    if (auto c = common(in.current_pA)) h5::write_attr(tem, "beam_current", *c * 1e-3);              // nA
    if (auto d = common(in.dwell_us)) h5::write_attr(tem, "dwell_time", *d * 1e-6);                  // s
    if (const DetectorSettings* d = s.detector_of(a)) {
      auto det = h5::require_group(tem, "Detector/" + identifier(d->name));
      h5::write_attr(det, "type", d->type);
      if (d->type == "annular") {
        h5::write_attr(det, "inner_angle", d->inner_mrad);  // mrad
        h5::write_attr(det, "outer_angle", d->outer_mrad);
      }
      if (d->type == "pixelated" && d->max_angle_mrad > 0) h5::write_attr(det, "max_angle", d->max_angle_mrad);
    }
  }
  auto om = h5::require_group(g, "original_metadata");
  auto st = h5::require_group(om, "stemtwin");
  h5::write_attr(st, "source_file", s.path);
  h5::write_attr(st, "source_dataset", "/" + a.path);
  h5::write_attr(st, "long_name", a.long_name);
  h5::write_attr(st, "units", a.units);
  h5::write_attr(st, "scenario", s.scenario_text);
  if (!a.value_names.empty()) h5::write_attr(st, "values", a.value_names);
  auto p = h5::require_group(om, "params");
  h5::write_attr(p, "sample_index", s.indices);
  for (const auto& [name, v] : s.params) h5::write_attr(p, identifier(name), v);
}

}  // namespace

void write_hspy(const Source& s, const std::string& output) {
  h5::Handle f = h5::create_file(output, true);
  h5::write_attr(f, "file_format", std::string("HyperSpy"));
  h5::write_attr(f, "file_format_version", std::string("3.1"));
  auto ex = h5::require_group(f, "Experiments");
  for (const ArrayInfo& a : s.arrays) {
    auto g = h5::require_group(ex, title_of(a));
    std::vector<hsize_t> dims;
    for (const auto& ax : a.axes) dims.push_back(ax.size);
    const hid_t type = a.kind == ArrayKind::Mask ? H5T_STD_I16LE : H5T_IEEE_F32LE;
    auto d = h5::create_dataset(g, "data", type, dims, H5T_NATIVE_FLOAT, nullptr, 4);
    for (std::size_t r = 0; r < s.rows; ++r) h5::write_rows(d, H5T_NATIVE_FLOAT, r, 1, s.read(a, r).data());
    for (unsigned i = 0; i < a.axes.size(); ++i) write_axis(g, i, a.axes[i], a);
    write_metadata(g, s, a);
  }
  h5::check(H5Fflush(f, H5F_SCOPE_GLOBAL), "flush " + output);
}

}  // namespace stemtwin::exporting
