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

using json = nlohmann::json;

// ------------------------------------------------------------------------------------
// Shared details

namespace {

constexpr const char* kLayoutDoc =
    "/images/<channel> float32 [N,ny,nx] acquired; /clean/<channel> float32 [N,ny,nx] noise-free; "
    "/radial/<detector> float32 [N,ny,nx,nbins] (attr bin_edges, mrad); "
    "/diffraction/<detector> float32 [N,ny,nx,ky,kx] (attr angular_sampling, mrad/pixel); "
    "/params/sample_index int64 [N]; /params/<key path> float64 [N] (attr categories: words behind indices); "
    "/instrument/<setting> and /instrument/detectors/<name>/<angle> float64 [N] (microscope and detectors per sample); "
    "/labels/class int32 [N] (attr names); /labels/masks/<name> uint8|int16 [N,ny,nx] (attr values); "
    "/labels/columns/{sample int64, x, y float64 Å, px, py float64 pixels, species int16, count int32, class int32}; "
    "rows are complete up to the root attribute complete_samples; x is the fast scan axis.";

constexpr const char* kUnits =
    "lengths Å; angles mrad (azimuth, rotation: deg); energy eV; dwell µs; current pA; "
    "clean images: fraction of the incident probe; acquired images: detector units set by the acquisition section; "
    "column x,y: Å; px,py: image pixels";

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* kColumnNames[] = {"sample", "x_A", "y_A", "x_px", "y_px", "species", "count", "class"};

hid_t column_type(const std::string& c) {
  if (c == "sample") return H5T_STD_I64LE;
  if (c == "species") return H5T_STD_I16LE;
  if (c == "count" || c == "class") return H5T_STD_I32LE;
  return H5T_IEEE_F64LE;
}

bool valid_name(const std::string& n) { return !n.empty() && n.find('/') == std::string::npos && n != "." && n != ".."; }

void validate(const DatasetLayout& l) {
  auto bad = [](const std::string& m) { return std::invalid_argument("dataset layout: " + m); };
  if (l.nx == 0 || l.ny == 0) throw bad("image size must be at least 1 × 1");
  if (l.shard.count == 0 || l.shard.index >= l.shard.count) throw bad("bad shard");
  if (l.compression < 0 || l.compression > 9) throw bad("compression must be 0–9");
  std::set<std::string> seen;
  auto unique = [&](const std::string& group, const std::string& n) {
    if (!valid_name(n)) throw bad("bad name '" + n + "' in " + group);
    if (!seen.insert(group + "/" + n).second) throw bad("'" + n + "' twice in " + group);
  };
  for (const auto& c : l.images) unique("images", c);
  for (const auto& r : l.radial) {
    unique("radial", r.name);
    if (r.edges.size() < 2) throw bad("radial '" + r.name + "' needs at least 2 bin edges");
    for (std::size_t i = 1; i < r.edges.size(); ++i)
      if (!(r.edges[i] > r.edges[i - 1])) throw bad("radial '" + r.name + "' bin edges must increase");
  }
  for (const auto& d : l.diffraction) {
    unique("diffraction", d.name);
    if (d.kx == 0 || d.ky == 0) throw bad("diffraction '" + d.name + "' needs its pattern size (kx, ky)");
  }
  for (const auto& p : l.params) {
    unique("params", p.name);
    if (p.name == "sample_index") throw bad("'sample_index' is reserved in /params");
  }
  for (const auto& m : l.masks) unique("masks", m.name);
  for (const auto& d : l.instrument.detectors) unique("instrument/detectors", d.name);
  detail::validate_spectra(l);
}

/// Per-sample datasets (first dimension = rows), by path.
std::vector<std::string> per_sample_paths(const DatasetLayout& l) {
  std::vector<std::string> p;
  for (const auto& c : l.images) p.push_back("images/" + c);
  if (l.store_clean)
    for (const auto& c : l.images) p.push_back("clean/" + c);
  for (const auto& r : l.radial) p.push_back("radial/" + r.name);
  for (const auto& d : l.diffraction) p.push_back("diffraction/" + d.name);
  p.push_back("params/sample_index");
  for (const auto& q : l.params) p.push_back("params/" + q.name);
  if (l.has_class) p.push_back("labels/class");
  for (const auto& m : l.masks) p.push_back("labels/masks/" + m.name);
  for (const auto& q : detail::spectra_per_sample_paths(l)) p.push_back(q);
  for (const auto& c : instrument_columns(l.instrument)) p.push_back("instrument/" + c);
  return p;
}

std::vector<float> to_float(const Image& im) { return std::vector<float>(im.data.begin(), im.data.end()); }

}  // namespace

// ------------------------------------------------------------------------------------
// Writer

struct DatasetWriter::Impl {
  std::string path;
  DatasetLayout layout;
  h5::Handle file;
  std::size_t rows = 0;
  std::int64_t last_index = -1;
  std::size_t column_rows = 0;
  std::map<std::string, std::vector<char>> pending_rows;  ///< diffraction rows written for the next sample

  h5::Handle ds(const std::string& p) const { return h5::open_dataset(file, p); }
  void flush() const { h5::check(H5Fflush(file, H5F_SCOPE_GLOBAL), "flush " + path); }
};

DatasetWriter::DatasetWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DatasetWriter::DatasetWriter(DatasetWriter&&) noexcept = default;
DatasetWriter& DatasetWriter::operator=(DatasetWriter&&) noexcept = default;
DatasetWriter::~DatasetWriter() {
  try {
    close();
  } catch (...) {  // a destructor must not throw; the file handle still closes
  }
}

const DatasetLayout& DatasetWriter::layout() const { return impl_->layout; }
const std::string& DatasetWriter::path() const { return impl_->path; }
std::size_t DatasetWriter::rows() const { return impl_->rows; }
std::size_t DatasetWriter::last_index() const {
  if (impl_->last_index < 0) throw std::logic_error("DatasetWriter::last_index: no rows yet");
  return static_cast<std::size_t>(impl_->last_index);
}
std::string DatasetWriter::scenario_text() const { return h5::read_attr_string(impl_->file, "scenario"); }

// ------------------------------------------------------------------------------------
// Staged files

StagedFile::StagedFile(std::string destination) : destination_(std::move(destination)) {
  const std::filesystem::path d(destination_);
  if (!d.has_filename()) throw std::invalid_argument("'" + destination_ + "' is not a file name");
  std::string name = ".";  // appended piecewise: GCC 12 warns (-Wrestrict) about "." + string
  name += d.filename().string();
  name += ".partial-";
  name += std::to_string(::getpid());
  temp_ = (d.parent_path() / name).string();
}

StagedFile::~StagedFile() {
  if (committed_) return;
  std::error_code ec;  // a destructor must not throw; a leftover temporary file is harmless
  std::filesystem::remove(temp_, ec);
}

void StagedFile::commit() {
  std::error_code ec;
  std::filesystem::rename(temp_, destination_, ec);
  if (ec) throw std::runtime_error("cannot rename '" + temp_ + "' to '" + destination_ + "': " + ec.message());
  committed_ = true;
}

std::optional<std::string> unfinished_dataset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  char head[8] = {};
  in.read(head, sizeof head);
  const auto n = static_cast<std::size_t>(in.gcount());
  static constexpr char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};  // HDF5 superblock
  if (n == 0) return "is empty";
  if (std::memcmp(head, kSignature, n) != 0) return std::nullopt;  // not HDF5: not ours to replace
  try {
    const h5::Handle f = h5::open_file(path, false);
    if (h5::has_attr(f, "layout") && h5::has_attr(f, "complete_samples")) {
      // A writer killed inside its first sample may leave a chunk index that points where
      // nothing was written yet (HDF5 1.10 evicts metadata in any order); resume could not
      // truncate it. With no complete sample there is nothing to keep: start again.
      if (h5::read_attr_int(f, "complete_samples") == 0) return "holds no complete sample";
      return std::nullopt;
    }
    // Only what DatasetWriter::create makes may be at the root of a file we start again.
    static const std::set<std::string> kOurs = {"images", "clean", "radial", "diffraction", "params", "labels", "spectra", "maps",
                                                "instrument"};
    H5G_info_t info{};
    h5::check(H5Gget_info(f, &info), "read the root group of '" + path + "'");
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      char name[64] = {};
      if (H5Lget_name_by_idx(f, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0 || !kOurs.count(name))
        return std::nullopt;
    }
    return "has no complete layout";
  } catch (const std::runtime_error&) {
    return "does not open as HDF5";
  }
}

DatasetWriter DatasetWriter::create(const std::string& path, const DatasetLayout& layout,
                                    const std::string& scenario_text, bool force) {
  validate(layout);
  if (std::filesystem::exists(path) && !force) throw std::runtime_error("'" + path + "' exists: use --force to overwrite it");
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  // The layout goes to a temporary file renamed into place once complete: a writer killed
  // while creating leaves no file at `path` that resume could not use.
  StagedFile staged(path);
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->layout = layout;
  impl->file = h5::create_file(staged.path(), true);
  const hid_t f = impl->file;
  const int z = layout.compression;
  const hsize_t nx = layout.nx, ny = layout.ny;
  for (const auto& c : layout.images) {
    h5::create_extendible(f, "images/" + c, H5T_IEEE_F32LE, {ny, nx}, {}, z);
    if (layout.store_clean) h5::create_extendible(f, "clean/" + c, H5T_IEEE_F32LE, {ny, nx}, {}, z);
  }
  for (const auto& r : layout.radial) {
    auto d = h5::create_extendible(f, "radial/" + r.name, H5T_IEEE_F32LE, {ny, nx, r.bins()}, {}, z);
    h5::write_attr(d, "bin_edges", r.edges);
    h5::write_attr(d, "units", std::string("bin_edges in mrad; values: fraction of the incident probe per bin"));
  }
  for (const auto& dl : layout.diffraction) {
    auto d = h5::create_extendible(f, "diffraction/" + dl.name, H5T_IEEE_F32LE, {ny, nx, dl.ky, dl.kx},
                                   {1, nx, dl.ky, dl.kx}, z);
    h5::write_attr(d, "angular_sampling", std::vector<double>{dl.sampling_x, dl.sampling_y});
    h5::write_attr(d, "axes", std::string("sample, scan y, scan x, k_y, k_x; angular_sampling (x, y) in mrad/pixel"));
  }
  // 1-D columns share a 1024-row chunk between samples, so a chunk holding complete rows is
  // rewritten when later rows arrive. They stay unfiltered: an unfiltered chunk keeps its
  // place in the file and its complete rows are rewritten with the same bytes, so a kill
  // during the rewrite cannot damage them (a compressed chunk would move, and its old
  // space could be reused while the file on disk still points there).
  h5::create_extendible(f, "params/sample_index", H5T_STD_I64LE, {}, {}, 0);
  for (const auto& p : layout.params) {
    auto d = h5::create_extendible(f, "params/" + p.name, H5T_IEEE_F64LE, {}, {}, 0);
    if (!p.categories.empty()) h5::write_attr(d, "categories", p.categories);
  }
  for (const auto& c : instrument_columns(layout.instrument))
    h5::create_extendible(f, "instrument/" + c, H5T_IEEE_F64LE, {}, {}, 0);
  for (const auto& det : layout.instrument.detectors) {
    auto g = h5::require_group(f, "instrument/detectors/" + det.name);
    h5::write_attr(g, "type", det.type);
  }
  if (layout.has_class) {
    auto d = h5::create_extendible(f, "labels/class", H5T_STD_I32LE, {}, {}, 0);
    h5::write_attr(d, "names", layout.class_names);
  }
  for (const auto& m : layout.masks) {
    auto d = h5::create_extendible(f, "labels/masks/" + m.name, m.type == MaskType::UInt8 ? H5T_STD_U8LE : H5T_STD_I16LE,
                                   {ny, nx}, {}, z);
    h5::write_attr(d, "values", m.values);
  }
  if (layout.columns) {
    for (const char* c : kColumnNames) h5::create_extendible(f, std::string("labels/columns/") + c, column_type(c), {}, {}, 0);
    auto g = h5::open_group(f, "labels/columns");
    h5::write_attr(g, "species_names", layout.species);
    h5::write_attr(g, "doc", std::string("one row per labelled column: sample = global sample index; x, y in Å; "
                                         "px, py in image pixels; species indexes species_names; class = -1 if none"));
  }
  h5::write_attr(f, "program", std::string("stemtwin"));
  h5::write_attr(f, "version", std::string(STEMTWIN_VERSION));
  h5::write_attr(f, "scenario", scenario_text);
  h5::write_attr(f, "scenario_name", layout.scenario_name);
  h5::write_attr(f, "seed", static_cast<std::int64_t>(layout.seed));
  h5::write_attr(f, "created", utc_now());
  h5::write_attr(f, "units", std::string(kUnits));
  h5::write_attr(f, "layout", layout.to_json());
  if (layout.pixel_size_A.size() == 2) h5::write_attr(f, "pixel_size_A", layout.pixel_size_A);
  if (!layout.warnings.empty()) {
    std::string w;
    for (const std::string& line : layout.warnings) w += line + "\n";
    h5::write_attr(f, "warnings", w);
  }
  for (const auto& [name, value] : layout.attributes) h5::write_attr(f, name, value);
  h5::write_attr(f, "layout_doc", std::string(kLayoutDoc));
  h5::write_attr(f, "total_samples", static_cast<std::int64_t>(layout.total_samples));
  h5::write_attr(f, "shard", std::to_string(layout.shard.index) + "/" + std::to_string(layout.shard.count));
  // Units, long names, value names and HDF5 dimension scales for every array (axes.hpp).
  write_dimension_scales(f, layout, calibration_for(layout));
  detail::create_spectra(f, layout);  // after the image scales, which it shares
  h5::write_attr(f, "complete_samples", std::int64_t{0});
  // Give every per-sample dataset its chunk index now: write one element (allocating the
  // first chunk and the index's root node) and truncate back to 0 rows (the empty root
  // stays). Otherwise the first chunk of a dataset, e.g. the column table of a run whose
  // first sample had no columns, creates the index in a later sample, and a writer killed
  // before that sample's flush could leave an object header pointing to an index node never
  // written: HDF5 then cannot read or truncate the dataset, and resume fails.
  std::vector<std::string> indexed = per_sample_paths(layout);
  if (layout.columns)
    for (const char* c : kColumnNames) indexed.push_back(std::string("labels/columns/") + c);
  for (const auto& p : detail::column_composition_paths(layout)) indexed.push_back(p);
  for (const auto& p : indexed) {
    auto d = impl->ds(p);
    const std::size_t rank = h5::shape(d).size();
    const std::int64_t zero[2] = {0, 0};  // 8 bytes: wide enough for every element type here
    h5::set_rows(d, 1);
    h5::write_slab(d, H5T_NATIVE_UINT8, std::vector<hsize_t>(rank, 0), std::vector<hsize_t>(rank, 1), zero);
    h5::set_rows(d, 0);
  }
  impl->flush();
  staged.commit();  // HDF5 keeps writing through its open descriptor
  return DatasetWriter(std::move(impl));
}

DatasetWriter DatasetWriter::open_for_resume(const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error("--resume: '" + path + "' does not exist");
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->file = h5::open_file(path, true);
  const hid_t f = impl->file;
  if (!h5::has_attr(f, "layout") || !h5::has_attr(f, "complete_samples"))
    throw std::runtime_error("'" + path + "' is not a stemtwin dataset (no layout/complete_samples attributes)");
  impl->layout = DatasetLayout::from_json(h5::read_attr_string(f, "layout"));
  impl->rows = static_cast<std::size_t>(h5::read_attr_int(f, "complete_samples"));
  // Drop whatever a killed writer left beyond the last complete sample.
  for (const auto& p : per_sample_paths(impl->layout)) {
    auto d = impl->ds(p);
    if (h5::shape(d)[0] < impl->rows) throw std::runtime_error("'" + path + "': " + p + " is shorter than complete_samples");
    h5::set_rows(d, impl->rows);
  }
  if (impl->rows > 0) {
    std::int64_t last = 0;
    h5::read_rows(impl->ds("params/sample_index"), H5T_NATIVE_INT64, impl->rows - 1, 1, &last);
    impl->last_index = last;
  }
  if (impl->layout.columns) {
    auto d = impl->ds("labels/columns/sample");
    const std::size_t n = h5::shape(d)[0];
    std::vector<std::int64_t> s(n);
    h5::read_rows(d, H5T_NATIVE_INT64, 0, n, s.data());
    std::size_t keep = 0;
    while (keep < n && s[keep] <= impl->last_index) ++keep;
    for (const char* c : kColumnNames) h5::set_rows(impl->ds(std::string("labels/columns/") + c), keep);
    for (const auto& p : detail::column_composition_paths(impl->layout)) h5::set_rows(impl->ds(p), keep);
    impl->column_rows = keep;
  }
  impl->flush();
  return DatasetWriter(std::move(impl));
}

void DatasetWriter::write_diffraction_row(const std::string& name, std::size_t y, const float* data) {
  Impl& I = *impl_;
  if (!I.file.valid()) throw std::logic_error("DatasetWriter: closed");
  const auto it = std::find_if(I.layout.diffraction.begin(), I.layout.diffraction.end(),
                               [&](const DiffractionLayout& d) { return d.name == name; });
  if (it == I.layout.diffraction.end()) throw std::invalid_argument("no diffraction detector '" + name + "' in the layout");
  if (y >= I.layout.ny) throw std::out_of_range("diffraction row " + std::to_string(y) + " beyond ny");
  auto d = I.ds("diffraction/" + name);
  auto& done = I.pending_rows[name];
  if (done.empty()) {
    done.assign(I.layout.ny, 0);
    h5::set_rows(d, I.rows + 1);
  }
  h5::write_slab(d, H5T_NATIVE_FLOAT, {I.rows, y, 0, 0, 0}, {1, 1, I.layout.nx, it->ky, it->kx}, data);
  done[y] = 1;
}

void DatasetWriter::append_sample(const SampleRecord& rec) {
  Impl& I = *impl_;
  const DatasetLayout& L = I.layout;
  if (!I.file.valid()) throw std::logic_error("DatasetWriter: closed");
  const std::string who = "sample " + std::to_string(rec.index) + ": ";
  if (static_cast<std::int64_t>(rec.index) <= I.last_index)
    throw std::invalid_argument(who + "indices must increase (last written " + std::to_string(I.last_index) + ")");
  if (L.total_samples && rec.index >= L.total_samples) throw std::invalid_argument(who + "index beyond total_samples");
  // Check everything before writing anything.
  auto check_image = [&](const std::map<std::string, Image>& m, const std::string& group, const std::string& c) {
    const auto it = m.find(c);
    if (it == m.end()) throw std::invalid_argument(who + "missing " + group + "/" + c);
    if (it->second.nx != L.nx || it->second.ny != L.ny || it->second.data.size() != L.nx * L.ny)
      throw std::invalid_argument(who + group + "/" + c + " has the wrong size");
    return &it->second;
  };
  for (const auto& c : L.images) {
    check_image(rec.images, "images", c);
    if (L.store_clean) check_image(rec.clean, "clean", c);
  }
  if (rec.images.size() != L.images.size()) throw std::invalid_argument(who + "images not in the layout");
  for (const auto& r : L.radial) {
    const auto it = rec.radial.find(r.name);
    if (it == rec.radial.end() || it->second.size() != L.nx * L.ny * r.bins())
      throw std::invalid_argument(who + "radial/" + r.name + " missing or of the wrong size");
  }
  for (const auto& d : L.diffraction) {
    const auto it = I.pending_rows.find(d.name);
    if (it == I.pending_rows.end() || std::count(it->second.begin(), it->second.end(), 1) != static_cast<long>(L.ny))
      throw std::invalid_argument(who + "diffraction/" + d.name + " rows not all written");
  }
  for (const auto& p : L.params)
    if (!rec.params.count(p.name)) throw std::invalid_argument(who + "missing parameter " + p.name);
  if (rec.params.size() != L.params.size())
    for (const auto& [k, v] : rec.params)
      if (std::none_of(L.params.begin(), L.params.end(), [&](const ParameterInfo& p) { return p.name == k; }))
        throw std::invalid_argument(who + "parameter '" + k + "' is not in the layout");
  for (const auto& m : L.masks) check_image(rec.masks, "labels/masks", m.name);
  std::vector<double> instrument;
  if (L.instrument.stored) {
    if (!rec.instrument) throw std::invalid_argument(who + "missing the instrument settings (/instrument)");
    try {
      instrument = instrument_values(L.instrument, *rec.instrument);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(who + e.what());
    }
  }
  if (!L.columns && !rec.columns.empty()) throw std::invalid_argument(who + "column labels but layout.columns is off");
  detail::check_spectra(rec, L, who);

  const hid_t f = I.file;
  const hsize_t row = I.rows;
  auto append = [&](const std::string& p, hid_t memtype, const void* data) {
    auto d = I.ds(p);
    h5::set_rows(d, row + 1);
    h5::write_rows(d, memtype, row, 1, data);
  };
  for (const auto& c : L.images) {
    append("images/" + c, H5T_NATIVE_FLOAT, to_float(rec.images.at(c)).data());
    if (L.store_clean) append("clean/" + c, H5T_NATIVE_FLOAT, to_float(rec.clean.at(c)).data());
  }
  for (const auto& r : L.radial) append("radial/" + r.name, H5T_NATIVE_FLOAT, rec.radial.at(r.name).data());
  const std::int64_t idx = static_cast<std::int64_t>(rec.index);
  append("params/sample_index", H5T_NATIVE_INT64, &idx);
  for (const auto& p : L.params) append("params/" + p.name, H5T_NATIVE_DOUBLE, &rec.params.at(p.name));
  if (L.has_class) {
    const std::int32_t c = rec.class_id;
    append("labels/class", H5T_NATIVE_INT32, &c);
  }
  for (const auto& m : L.masks) {
    const Image& im = rec.masks.at(m.name);
    if (m.type == MaskType::UInt8) {
      std::vector<std::uint8_t> v(im.size());
      for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(std::clamp(std::lround(im.data[i]), 0L, 255L));
      append("labels/masks/" + m.name, H5T_NATIVE_UINT8, v.data());
    } else {
      std::vector<std::int16_t> v(im.size());
      for (std::size_t i = 0; i < v.size(); ++i)
        v[i] = static_cast<std::int16_t>(std::clamp(std::lround(im.data[i]), -32768L, 32767L));
      append("labels/masks/" + m.name, H5T_NATIVE_INT16, v.data());
    }
  }
  const auto instrument_paths = instrument_columns(L.instrument);
  for (std::size_t i = 0; i < instrument_paths.size(); ++i)
    append("instrument/" + instrument_paths[i], H5T_NATIVE_DOUBLE, &instrument[i]);
  detail::append_spectra(rec, L, append);
  if (L.columns && !rec.columns.empty()) {
    const std::size_t n = rec.columns.size();
    std::vector<std::int64_t> sample(n, idx);
    std::vector<double> x(n), y(n), px(n), py(n);
    std::vector<std::int16_t> sp(n);
    std::vector<std::int32_t> cnt(n), cls(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& c = rec.columns[i];
      x[i] = c.x, y[i] = c.y, px[i] = c.px, py[i] = c.py;
      sp[i] = static_cast<std::int16_t>(c.species);
      cnt[i] = c.count;
      cls[i] = c.class_id;
    }
    const std::pair<const char*, std::pair<hid_t, const void*>> cols[] = {
        {"sample", {H5T_NATIVE_INT64, sample.data()}}, {"x_A", {H5T_NATIVE_DOUBLE, x.data()}},
        {"y_A", {H5T_NATIVE_DOUBLE, y.data()}},           {"x_px", {H5T_NATIVE_DOUBLE, px.data()}},
        {"y_px", {H5T_NATIVE_DOUBLE, py.data()}},         {"species", {H5T_NATIVE_INT16, sp.data()}},
        {"count", {H5T_NATIVE_INT32, cnt.data()}},      {"class", {H5T_NATIVE_INT32, cls.data()}}};
    for (const auto& [name, td] : cols) {
      auto d = I.ds(std::string("labels/columns/") + name);
      h5::set_rows(d, I.column_rows + n);
      h5::write_rows(d, td.first, I.column_rows, n, td.second);
    }
    const auto comp = detail::column_composition_paths(L);
    for (std::size_t e = 0; e < comp.size(); ++e) {
      std::vector<float> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = rec.columns[i].composition[e];
      auto d = I.ds(comp[e]);
      h5::set_rows(d, I.column_rows + n);
      h5::write_rows(d, H5T_NATIVE_FLOAT, I.column_rows, n, v.data());
    }
    I.column_rows += n;
  }
  if (!rec.fft_plan.empty()) {
    std::string plans = h5::has_attr(f, "fft_plan") ? h5::read_attr_string(f, "fft_plan") : std::string();
    if ((" " + plans + " ").find(" " + rec.fft_plan + " ") == std::string::npos) {
      plans += (plans.empty() ? "" : " ") + rec.fft_plan;
      h5::write_attr(f, "fft_plan", plans);
    }
  }
  // Data first, then the counter: a reader (or resume) trusts only counted rows.
  I.flush();
  h5::write_attr(f, "complete_samples", static_cast<std::int64_t>(row + 1));
  I.flush();
  I.rows = row + 1;
  I.last_index = idx;
  I.pending_rows.clear();
}

void DatasetWriter::close() {
  if (!impl_ || !impl_->file.valid()) return;
  // Rows of a sample that was never appended (diffraction streamed, then abandoned) go.
  if (!impl_->pending_rows.empty()) {
    for (const auto& d : impl_->layout.diffraction) h5::set_rows(impl_->ds("diffraction/" + d.name), impl_->rows);
    impl_->pending_rows.clear();
  }
  impl_->flush();
  impl_->file.reset();
}

}  // namespace stemtwin
