#include "stemtwin/dataset/export.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "export_source.hpp"

namespace stemtwin {

ExportFormat parse_export_format(const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "hspy") return ExportFormat::Hspy;
  if (t == "emd") return ExportFormat::Emd;
  if (t == "nsid") return ExportFormat::Nsid;
  if (t == "zarr") return ExportFormat::Zarr;
  throw std::invalid_argument("unknown export format '" + text + "' (choose hspy, emd, nsid or zarr)");
}

const char* to_string(ExportFormat f) {
  switch (f) {
    case ExportFormat::Hspy: return "hspy";
    case ExportFormat::Emd: return "emd";
    case ExportFormat::Nsid: return "nsid";
    case ExportFormat::Zarr: return "zarr";
  }
  return "?";
}

namespace exporting {

std::size_t Source::row_size(const ArrayInfo& a) const {
  std::size_t n = 1;
  for (std::size_t i = 1; i < a.axes.size(); ++i) n *= a.axes[i].size;
  return n;
}

std::vector<float> Source::read(const ArrayInfo& a, std::size_t row) const {
  if (row >= rows) throw std::out_of_range(path + ": row " + std::to_string(row) + " beyond the " + std::to_string(rows) +
                                           " complete samples");
  std::vector<float> v(row_size(a));
  try {
    h5::read_rows(h5::open_dataset(file, a.path), H5T_NATIVE_FLOAT, row, 1, v.data());
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": reading " + a.path + ": " + e.what());
  }
  return v;
}

const DetectorSettings* Source::detector_of(const ArrayInfo& a) const {
  for (const auto& d : instrument.detectors) {
    if (d.name == a.name) return &d;
    // image channels of COM and segmented detectors: <name>_x, <name>_r0s1
    if (a.name.rfind(d.name + "_", 0) == 0) return &d;
  }
  return nullptr;
}

std::optional<double> common(const std::vector<double>& v) {
  if (v.empty()) return std::nullopt;
  for (double x : v)
    if (std::abs(x - v[0]) > 1e-9 * std::max(1.0, std::abs(v[0]))) return std::nullopt;
  return v[0];
}

std::string title_of(const ArrayInfo& a) {
  if (a.kind == ArrayKind::Clean) return a.name + "_clean";
  if (a.kind == ArrayKind::Mask) return "mask_" + a.name;
  return a.name;
}

void prepare_output(const std::string& path, bool force) {
  if (!std::filesystem::exists(path)) {
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    return;
  }
  if (!force) throw std::runtime_error("'" + path + "' exists: use --force to overwrite it");
  std::filesystem::remove_all(path);
}

Source open_source(const std::string& path, const std::vector<std::string>& channels, bool default_masks) {
  Source s;
  s.path = path;
  {
    const DatasetReader reader(path);  // validates the file; names it in errors
    s.layout = reader.layout();
    s.scenario_text = reader.scenario_text();
    s.rows = reader.size();
    for (auto i : reader.sample_indices()) s.indices.push_back(static_cast<double>(i));
    for (const auto& p : s.layout.params) s.params.emplace_back(p.name, reader.param(p.name));
    // The microscope of every row as the file stores it (/instrument); a file from before
    // /instrument (or a hand-made one) has none, and the exports then carry no instrument metadata.
    for (std::size_t row = 0; row < s.rows; ++row) {
      const auto in = reader.instrument(row);
      if (!in) break;
      s.instrument.energy_eV.push_back(in->energy_eV);
      s.instrument.convergence_mrad.push_back(in->convergence_mrad);
      s.instrument.current_pA.push_back(in->current_pA);
      s.instrument.dwell_us.push_back(in->dwell_us);
      if (row == 0) s.instrument.detectors = in->detectors;
    }
  }
  if (s.rows == 0) throw std::runtime_error(path + ": no complete samples to export");
  s.file = h5::open_file(path, false);
  s.calibration = calibration_for(s.layout);
  std::vector<ArrayInfo> all = dataset_arrays(s.layout, s.calibration, s.rows, s.indices);
  // Spectra (EDS/EELS) and element maps (export_spectra.cpp).
  for (auto& a : spectroscopy_arrays(s)) all.push_back(std::move(a));
  if (channels.empty()) {
    for (const auto& a : all)
      if (a.kind != ArrayKind::Clean && (a.kind != ArrayKind::Mask || default_masks)) s.arrays.push_back(a);
  } else {
    for (const auto& c : channels) {
      const auto it = std::find_if(all.begin(), all.end(), [&](const ArrayInfo& a) {
        return a.path == c || (a.name == c && a.kind != ArrayKind::Clean);
      });
      if (it == all.end()) {
        std::string names;
        for (const auto& a : all) names += (names.empty() ? "" : ", ") + a.path;
        throw std::runtime_error(path + ": no array '" + c + "' (there are: " + names + ")");
      }
      s.arrays.push_back(*it);
    }
  }
  if (s.arrays.empty()) throw std::runtime_error(path + ": nothing to export");
  return s;
}

}  // namespace exporting

ExportReport export_dataset(const std::string& input, const std::string& output, const ExportOptions& o) {
  if (std::filesystem::exists(output) && std::filesystem::exists(input) && std::filesystem::equivalent(input, output))
    throw std::runtime_error("export: the output '" + output + "' is the input");
  const exporting::Source s = exporting::open_source(input, o.channels, o.format != ExportFormat::Nsid);
  exporting::prepare_output(output, o.force);
  switch (o.format) {
    case ExportFormat::Hspy: exporting::write_hspy(s, output); break;
    case ExportFormat::Emd: exporting::write_emd(s, output); break;
    case ExportFormat::Nsid: exporting::write_nsid(s, output, o.sample); break;
    case ExportFormat::Zarr: exporting::write_zarr(s, output); break;
  }
  ExportReport r;
  for (const auto& a : s.arrays) r.arrays.push_back(a.path);
  r.samples = o.format == ExportFormat::Nsid ? 1 : s.rows;
  return r;
}

}  // namespace stemtwin
