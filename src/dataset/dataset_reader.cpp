// The dataset reader and merge (dataset.hpp); the layout and the writer are in dataset.cpp.
#include "stemtwin/dataset/dataset.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <tuple>

#include <unistd.h>

#include "stemtwin/dataset/axes.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "dataset_spectra.hpp"

#ifndef STEMTWIN_VERSION
#define STEMTWIN_VERSION "unknown"
#endif

namespace stemtwin {

namespace {

Image from_float(const std::vector<float>& v, std::size_t nx, std::size_t ny) {
  Image im(nx, ny);
  std::copy(v.begin(), v.end(), im.data.begin());
  return im;
}

}  // namespace

// ------------------------------------------------------------------------------------
// Reader

struct DatasetReader::Impl {
  std::string path;
  h5::Handle file;
  DatasetLayout layout;
  std::size_t rows = 0;
  std::vector<std::int64_t> indices;
  // column table: [begin, end) rows per complete sample row
  std::vector<std::pair<std::size_t, std::size_t>> column_ranges;

  h5::Handle ds(const std::string& p) const { return h5::open_dataset(file, p); }
  void check_row(std::size_t row) const {
    if (row >= rows)
      throw std::out_of_range(path + ": row " + std::to_string(row) + " beyond the " + std::to_string(rows) +
                              " complete samples");
  }
  Image read_image(const std::string& p, std::size_t row) const {
    check_row(row);
    std::vector<float> v(layout.nx * layout.ny);
    h5::read_rows(ds(p), H5T_NATIVE_FLOAT, row, 1, v.data());
    return from_float(v, layout.nx, layout.ny);
  }
};

DatasetReader::DatasetReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& I = *impl_;
  I.path = path;
  if (!std::filesystem::exists(path)) throw std::runtime_error("'" + path + "' does not exist");
  I.file = h5::open_file(path, false);
  if (!h5::has_attr(I.file, "layout") || !h5::has_attr(I.file, "complete_samples"))
    throw std::runtime_error("'" + path + "' is not a stemtwin dataset (no layout/complete_samples attributes)");
  I.layout = DatasetLayout::from_json(h5::read_attr_string(I.file, "layout"));
  I.rows = static_cast<std::size_t>(h5::read_attr_int(I.file, "complete_samples"));
  auto si = I.ds("params/sample_index");
  if (h5::shape(si)[0] < I.rows) throw std::runtime_error("'" + path + "' is damaged: fewer rows than complete_samples");
  I.indices.resize(I.rows);
  h5::read_rows(si, H5T_NATIVE_INT64, 0, I.rows, I.indices.data());
  if (I.layout.columns) {
    auto d = I.ds("labels/columns/sample");
    const std::size_t n = h5::shape(d)[0];
    std::vector<std::int64_t> s(n);
    h5::read_rows(d, H5T_NATIVE_INT64, 0, n, s.data());
    std::size_t k = 0;
    for (std::size_t r = 0; r < I.rows; ++r) {
      while (k < n && s[k] < I.indices[r]) ++k;
      const std::size_t b = k;
      while (k < n && s[k] == I.indices[r]) ++k;
      I.column_ranges.emplace_back(b, k);
    }
  }
}

DatasetReader::DatasetReader(DatasetReader&&) noexcept = default;
DatasetReader& DatasetReader::operator=(DatasetReader&&) noexcept = default;
DatasetReader::~DatasetReader() = default;

const DatasetLayout& DatasetReader::layout() const { return impl_->layout; }
std::size_t DatasetReader::size() const { return impl_->rows; }
std::vector<std::string> DatasetReader::detectors() const { return impl_->layout.images; }
std::string DatasetReader::scenario_text() const { return h5::read_attr_string(impl_->file, "scenario"); }
std::string DatasetReader::version() const { return h5::read_attr_string(impl_->file, "version"); }
std::string DatasetReader::created() const { return h5::read_attr_string(impl_->file, "created"); }
std::size_t DatasetReader::sample_index(std::size_t row) const {
  impl_->check_row(row);
  return static_cast<std::size_t>(impl_->indices[row]);
}
std::vector<std::int64_t> DatasetReader::sample_indices() const { return impl_->indices; }

Image DatasetReader::image(const std::string& c, std::size_t row) const { return impl_->read_image("images/" + c, row); }
Image DatasetReader::clean(const std::string& c, std::size_t row) const {
  if (!impl_->layout.store_clean) throw std::runtime_error(impl_->path + ": no clean images stored");
  return impl_->read_image("clean/" + c, row);
}

std::vector<float> DatasetReader::radial(const std::string& name, std::size_t row) const {
  impl_->check_row(row);
  const auto& L = impl_->layout;
  const auto it = std::find_if(L.radial.begin(), L.radial.end(), [&](const RadialLayout& r) { return r.name == name; });
  if (it == L.radial.end()) throw std::invalid_argument("no radial detector '" + name + "'");
  std::vector<float> v(L.nx * L.ny * it->bins());
  h5::read_rows(impl_->ds("radial/" + name), H5T_NATIVE_FLOAT, row, 1, v.data());
  return v;
}

std::vector<float> DatasetReader::spectra(const std::string& name, std::size_t row, bool clean) const {
  impl_->check_row(row);
  const auto& L = impl_->layout;
  const auto it = std::find_if(L.spectra.begin(), L.spectra.end(), [&](const SpectraLayout& s) { return s.name == name; });
  if (it == L.spectra.end()) throw std::invalid_argument(impl_->path + ": no spectrometer '" + name + "'");
  if (clean && !it->clean_spectra)
    throw std::invalid_argument(impl_->path + ": no clean spectra of '" + name + "' (/clean/spectra/" + name +
                                " is stored only with output.clean)");
  std::vector<float> v(L.nx * L.ny * it->channels);
  h5::read_rows(impl_->ds((clean ? "clean/spectra/" : "spectra/") + name), H5T_NATIVE_FLOAT, row, 1, v.data());
  return v;
}

Image DatasetReader::map(const std::string& key, std::size_t row, bool clean) const {
  const auto& L = impl_->layout;
  const auto slash = key.find('/');
  const auto it = std::find_if(L.spectra.begin(), L.spectra.end(), [&](const SpectraLayout& s) {
    return slash != std::string::npos && s.name == key.substr(0, slash) &&
           std::find(s.maps.begin(), s.maps.end(), key.substr(slash + 1)) != s.maps.end();
  });
  if (it == L.spectra.end()) throw std::invalid_argument(impl_->path + ": no element map '" + key + "' (<spectrometer>/<El>_<line>)");
  if (clean && !L.store_clean) throw std::invalid_argument(impl_->path + ": no clean maps stored");
  return impl_->read_image((clean ? "clean/maps/" : "maps/") + key, row);
}

std::vector<float> DatasetReader::diffraction_row(const std::string& name, std::size_t row, std::size_t y) const {
  impl_->check_row(row);
  const auto& L = impl_->layout;
  const auto it = std::find_if(L.diffraction.begin(), L.diffraction.end(),
                               [&](const DiffractionLayout& d) { return d.name == name; });
  if (it == L.diffraction.end()) throw std::invalid_argument("no diffraction detector '" + name + "'");
  if (y >= L.ny) throw std::out_of_range("diffraction row beyond ny");
  std::vector<float> v(L.nx * it->ky * it->kx);
  h5::read_slab(impl_->ds("diffraction/" + name), H5T_NATIVE_FLOAT, {row, y, 0, 0, 0}, {1, 1, L.nx, it->ky, it->kx},
                v.data());
  return v;
}

std::vector<std::string> DatasetReader::param_names() const {
  std::vector<std::string> n;
  for (const auto& p : impl_->layout.params) n.push_back(p.name);
  return n;
}

std::vector<double> DatasetReader::param(const std::string& name) const {
  std::vector<double> v(impl_->rows);
  if (name == "sample_index") {
    std::copy(impl_->indices.begin(), impl_->indices.end(), v.begin());
    return v;
  }
  if (!h5::exists(impl_->file, "params/" + name)) throw std::invalid_argument("no parameter '" + name + "'");
  h5::read_rows(impl_->ds("params/" + name), H5T_NATIVE_DOUBLE, 0, impl_->rows, v.data());
  return v;
}

int DatasetReader::class_id(std::size_t row) const {
  impl_->check_row(row);
  if (!impl_->layout.has_class) return -1;
  std::int32_t c = -1;
  h5::read_rows(impl_->ds("labels/class"), H5T_NATIVE_INT32, row, 1, &c);
  return c;
}

Image DatasetReader::mask(const std::string& name, std::size_t row) const {
  impl_->check_row(row);
  const auto& L = impl_->layout;
  if (std::none_of(L.masks.begin(), L.masks.end(), [&](const MaskLayout& m) { return m.name == name; }))
    throw std::invalid_argument("no mask '" + name + "'");
  std::vector<double> v(L.nx * L.ny);
  h5::read_rows(impl_->ds("labels/masks/" + name), H5T_NATIVE_DOUBLE, row, 1, v.data());
  Image im(L.nx, L.ny);
  im.data = std::move(v);
  return im;
}

std::vector<ColumnLabel> DatasetReader::columns(std::size_t row) const {
  impl_->check_row(row);
  if (!impl_->layout.columns) return {};
  const auto [b, e] = impl_->column_ranges[row];
  const std::size_t n = e - b;
  std::vector<ColumnLabel> out(n);
  if (n == 0) return out;
  std::vector<double> x(n), y(n), px(n), py(n);
  std::vector<std::int32_t> sp(n), cnt(n), cls(n);
  auto rd = [&](const char* c, hid_t t, void* p) { h5::read_rows(impl_->ds(std::string("labels/columns/") + c), t, b, n, p); };
  rd("x_A", H5T_NATIVE_DOUBLE, x.data());
  rd("y_A", H5T_NATIVE_DOUBLE, y.data());
  rd("x_px", H5T_NATIVE_DOUBLE, px.data());
  rd("y_px", H5T_NATIVE_DOUBLE, py.data());
  rd("species", H5T_NATIVE_INT32, sp.data());
  rd("count", H5T_NATIVE_INT32, cnt.data());
  rd("class", H5T_NATIVE_INT32, cls.data());
  for (std::size_t i = 0; i < n; ++i) out[i] = {x[i], y[i], px[i], py[i], sp[i], cnt[i], cls[i], {}};
  const auto comp = detail::column_composition_paths(impl_->layout);
  for (std::size_t e = 0; e < comp.size(); ++e) {
    std::vector<float> v(n);
    h5::read_rows(impl_->ds(comp[e]), H5T_NATIVE_FLOAT, b, n, v.data());
    for (std::size_t i = 0; i < n; ++i) out[i].composition.push_back(v[i]);
  }
  return out;
}

std::size_t DatasetReader::column_count() const {
  std::size_t n = 0;
  for (const auto& [b, e] : impl_->column_ranges) n += e - b;
  return n;
}

SampleRecord DatasetReader::record(std::size_t row) const {
  SampleRecord r;
  const auto& L = impl_->layout;
  r.index = sample_index(row);
  for (const auto& c : L.images) {
    r.images[c] = image(c, row);
    if (L.store_clean) r.clean[c] = clean(c, row);
  }
  for (const auto& rl : L.radial) r.radial[rl.name] = radial(rl.name, row);
  for (const auto& p : L.params) {
    double v = 0;
    h5::read_rows(impl_->ds("params/" + p.name), H5T_NATIVE_DOUBLE, row, 1, &v);
    r.params[p.name] = v;
  }
  r.class_id = class_id(row);
  for (const auto& m : L.masks) r.masks[m.name] = mask(m.name, row);
  r.columns = columns(row);
  detail::read_spectra(impl_->file, L, row, r);
  r.instrument = instrument(row);
  return r;
}

std::optional<InstrumentSettings> DatasetReader::instrument(std::size_t row) const {
  impl_->check_row(row);
  const InstrumentLayout& L = impl_->layout.instrument;
  if (!L.stored) return std::nullopt;
  const auto columns = instrument_columns(L);
  std::vector<double> v(columns.size());
  for (std::size_t i = 0; i < columns.size(); ++i)
    h5::read_rows(impl_->ds("instrument/" + columns[i]), H5T_NATIVE_DOUBLE, row, 1, &v[i]);
  return instrument_from_values(L, v);
}

// ------------------------------------------------------------------------------------
// Merge

MergeReport merge_datasets(const std::vector<std::string>& inputs, const std::string& output, bool force) {
  if (inputs.empty()) throw std::invalid_argument("merge: no input files");
  for (const auto& in : inputs)
    if (std::filesystem::exists(output) && std::filesystem::exists(in) && std::filesystem::equivalent(in, output))
      throw std::invalid_argument("merge: the output '" + output + "' is also an input");
  std::vector<DatasetReader> readers;
  for (const auto& in : inputs) readers.emplace_back(in);
  const std::string scenario = readers[0].scenario_text();
  DatasetLayout layout = readers[0].layout();
  std::vector<std::tuple<std::int64_t, std::size_t, std::size_t>> order;  // (index, reader, row)
  for (std::size_t k = 0; k < readers.size(); ++k) {
    if (readers[k].scenario_text() != scenario)
      throw std::invalid_argument("merge: '" + inputs[k] + "' comes from a different scenario than '" + inputs[0] + "'");
    if (!readers[k].layout().same_shapes(layout))
      throw std::invalid_argument("merge: '" + inputs[k] + "' has a different layout than '" + inputs[0] + "'");
    const auto idx = readers[k].sample_indices();
    for (std::size_t r = 0; r < idx.size(); ++r) order.emplace_back(idx[r], k, r);
  }
  std::sort(order.begin(), order.end());
  for (std::size_t i = 1; i < order.size(); ++i)
    if (std::get<0>(order[i]) == std::get<0>(order[i - 1]))
      throw std::invalid_argument("merge: sample " + std::to_string(std::get<0>(order[i])) + " is in both '" +
                                  inputs[std::get<1>(order[i - 1])] + "' and '" + inputs[std::get<1>(order[i])] + "'");
  layout.shard = Shard{};
  // Written under a temporary name and renamed over `output` when complete: a failed or
  // killed merge leaves any earlier output as it was, never a half-written file.
  if (std::filesystem::exists(output) && !force)
    throw std::runtime_error("merge: '" + output + "' exists: use --force to overwrite it");
  StagedFile staged(output);
  DatasetWriter w = DatasetWriter::create(staged.path(), layout, scenario, false);
  for (const auto& [index, k, row] : order) {
    const DatasetReader& r = readers[k];
    for (const auto& d : layout.diffraction)
      for (std::size_t y = 0; y < layout.ny; ++y) w.write_diffraction_row(d.name, y, r.diffraction_row(d.name, row, y).data());
    w.append_sample(r.record(row));
  }
  w.close();
  staged.commit();
  MergeReport rep;
  rep.samples = order.size();
  rep.missing = layout.total_samples > rep.samples ? layout.total_samples - rep.samples : 0;
  return rep;
}

}  // namespace stemtwin
