// The spectroscopy arrays of an export (export_source.hpp): spectrum images and element maps
// as the file holds them (docs/dataset.md, "Spectroscopy"):
//   /spectra/<det>               [N, ny, nx, channels], energy axis /axes/<det>/energy_eV (eV)
//   /maps/<det>/<El>_<line>      [N, ny, nx] counts in the line window after background subtraction
//   /clean/maps/<det>/<El>_<line> the same from the expected (noise-free) spectra
// Spectra become ArrayKind::Spectrum arrays (uniform energy axis when the channels are); maps
// become image arrays named "<det>_<El>_<line>" (clean maps: ArrayKind::Clean, exported only
// when named, like clean images), with the scan axes of their spectrum image, so every
// exporter writes them as it writes images (HyperSpy: Signal2D).
#include <set>

#include "export_source.hpp"

namespace stemtwin::exporting {

namespace {

std::vector<double> energy_axis(const Source& s, const std::string& name) {
  const std::string axis = "axes/" + name + "/energy_eV";
  if (!h5::exists(s.file, axis))
    throw std::runtime_error(s.path + ": spectra/" + name + " has no energy axis (expected the dataset /" + axis + ", eV)");
  auto e = h5::open_dataset(s.file, axis);
  std::vector<double> energy(h5::shape(e).at(0));
  h5::read_rows(e, H5T_NATIVE_DOUBLE, 0, energy.size(), energy.data());
  return energy;
}

/// Element maps of spectrometer `name` under `group` ("maps" or "clean/maps").
void add_maps(const Source& s, const ArrayInfo& spectrum, const std::string& group, ArrayKind kind,
              std::vector<ArrayInfo>& out) {
  const std::string dir = group + "/" + spectrum.name;
  if (!h5::exists(s.file, dir)) return;
  for (const auto& m : h5::list_group(s.file, dir)) {
    const std::string path = dir + "/" + m;
    auto d = h5::open_dataset(s.file, path);
    const auto shape = h5::shape(d);
    if (shape.size() != 3 || shape[0] < s.rows || shape[1] != s.layout.ny || shape[2] != s.layout.nx)
      throw std::runtime_error(s.path + ": " + path + " must be [N, ny, nx] like its spectrum image spectra/" + spectrum.name);
    ArrayInfo a;
    a.kind = kind;
    a.path = path;
    a.name = spectrum.name + "_" + m;
    a.long_name = h5::has_attr(d, "long_name") ? h5::read_attr_string(d, "long_name")
                                                : m + " map of " + spectrum.name + (kind == ArrayKind::Clean ? " (expected counts)" : "");
    a.units = h5::has_attr(d, "units") ? h5::read_attr_string(d, "units") : "counts";
    a.quantity = "intensity";
    a.axes.assign(spectrum.axes.begin(), spectrum.axes.end() - 1);  // sample, y, x
    a.axes[1].navigate = a.axes[2].navigate = false;                 // an image: y, x are its signal axes
    a.technique = spectrum.technique;
    out.push_back(std::move(a));
  }
}

}  // namespace

std::vector<ArrayInfo> spectroscopy_arrays(const Source& s) {
  std::vector<ArrayInfo> out;
  if (!h5::exists(s.file, "spectra")) {
    if (h5::exists(s.file, "maps"))
      throw std::runtime_error(s.path + ": element maps under /maps without their spectrum images under /spectra");
    return out;
  }
  std::vector<ArrayInfo> maps, clean;
  for (const auto& name : h5::list_group(s.file, "spectra")) {
    const std::vector<double> energy = energy_axis(s, name);
    auto d = h5::open_dataset(s.file, "spectra/" + name);
    const auto shape = h5::shape(d);
    if (shape.size() != 4 || shape[0] < s.rows || shape[1] != s.layout.ny || shape[2] != s.layout.nx ||
        shape[3] != energy.size())
      throw std::runtime_error(s.path + ": spectra/" + name + " must be [N, ny, nx, channels] with channels = the length of /axes/" +
                               name + "/energy_eV");
    const std::string technique = h5::has_attr(d, "technique") ? h5::read_attr_string(d, "technique") : "";
    out.push_back(spectrum_array(s.layout, s.calibration, name, s.rows, energy, technique, s.indices));
    add_maps(s, out.back(), "maps", ArrayKind::Image, maps);
    add_maps(s, out.back(), "clean/maps", ArrayKind::Clean, clean);
  }
  out.insert(out.end(), maps.begin(), maps.end());
  out.insert(out.end(), clean.begin(), clean.end());
  return out;
}

/// A list of strings as HyperSpy writes one: a 1-D string dataset "_list_<key>" in the group.
static void write_hspy_list(hid_t group, const std::string& key, const std::vector<std::string>& values) {
  h5::Handle t(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  h5::check(H5Tset_size(t, H5T_VARIABLE), "variable-length string");
  h5::check(H5Tset_cset(t, H5T_CSET_UTF8), "UTF-8 string");
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  h5::create_dataset(group, "_list_" + key, t, {static_cast<hsize_t>(values.size())}, t, ptrs.data());
}

static std::vector<std::string> map_lines(const Source& s, const std::string& spectrometer) {
  std::vector<std::string> lines;
  const std::string dir = "maps/" + spectrometer;
  if (h5::exists(s.file, dir)) lines = h5::list_group(s.file, dir);
  return lines;
}

const SpectraLayout* Source::spectrometer_of(const ArrayInfo& a) const {
  if (a.kind != ArrayKind::Spectrum) return nullptr;
  for (const SpectraLayout& l : layout.spectra)
    if ("spectra/" + l.name == a.path) return &l;
  return nullptr;
}

/// HyperSpy's detector metadata of a spectrum image (its metadata structure:
/// Acquisition_instrument.TEM.Detector.EDS.{energy_resolution_MnKa eV, elevation_angle deg,
/// solid_angle sr, live_time s} and .Detector.EELS.collection_angle mrad), from the dataset's
/// stored settings. The azimuth is not written: stemtwin's specimen is untilted and its
/// detector model has no azimuth, so HyperSpy's default (0) holds.
static void write_hspy_detector(hid_t metadata, const Source& s, const ArrayInfo& a) {
  const SpectraLayout* l = s.spectrometer_of(a);
  const auto dwell = common(s.instrument.dwell_us);
  if (a.technique == "EDS") {
    if (!dwell && (!l || spectrometer_settings(*l).empty())) return;
    auto eds = h5::require_group(metadata, "Acquisition_instrument/TEM/Detector/EDS");
    // Per-pixel acquisition time: the dwell (HyperSpy's live time; no dead time modelled).
    if (dwell) h5::write_attr(eds, "live_time", *dwell * 1e-6);  // s
    if (l && l->resolution_mn_ka_eV > 0) h5::write_attr(eds, "energy_resolution_MnKa", l->resolution_mn_ka_eV);  // eV
    if (l && l->takeoff_deg > 0) h5::write_attr(eds, "elevation_angle", l->takeoff_deg);                          // deg
    if (l && l->solid_angle_sr > 0) h5::write_attr(eds, "solid_angle", l->solid_angle_sr);                        // sr
  } else if (a.technique == "EELS" && l && l->collection_mrad > 0) {
    auto eels = h5::require_group(metadata, "Acquisition_instrument/TEM/Detector/EELS");
    h5::write_attr(eels, "collection_angle", l->collection_mrad);  // mrad
  }
}

void write_hspy_sample(hid_t metadata, const Source& s, const ArrayInfo& a) {
  if (a.kind != ArrayKind::Spectrum) return;
  write_hspy_detector(metadata, s, a);
  // HyperSpy's EDS/EELS tools read metadata.Sample.elements and (EDS) .xray_lines; the maps'
  // names are HyperSpy's line names already ("Sr_Ka", "La_La"; EELS edges "O_K", "Ti_L3").
  const std::vector<std::string> lines = map_lines(s, a.name);
  if (lines.empty()) return;
  std::set<std::string> elements;
  for (const auto& l : lines) elements.insert(l.substr(0, l.find('_')));
  auto sample = h5::require_group(metadata, "Sample");
  write_hspy_list(sample, "elements", std::vector<std::string>(elements.begin(), elements.end()));
  if (a.technique == "EDS") write_hspy_list(sample, "xray_lines", lines);
}

}  // namespace stemtwin::exporting
