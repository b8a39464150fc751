#include "evaluate_io.hpp"

#include "stemtwin/dataset/hdf5.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace stemtwin::evalio {

// --- the dataset layout this reader assumes (DESIGN.md §6; docs/evaluate.md) -------------
namespace layout {
constexpr const char* kImages = "/images";           // /images/<detector>  float32 [N, ny, nx]
constexpr const char* kClean = "/clean";             // /clean/<detector>   float32 [N, ny, nx]
constexpr const char* kParams = "/params";           // /params/<name>      float64 [N]
constexpr const char* kClass = "/labels/class";      // int32 [N], attribute `names`
constexpr const char* kClassNames = "names";         //   string list, or one string joined by ','
constexpr const char* kMasks = "/labels/masks";      // /labels/masks/<name> uint8|int16 [N, ny, nx]
constexpr const char* kColumns = "/labels/columns";  // parallel 1-D: sample x_A y_A x_px y_px species ...
constexpr const char* kPixelSize = "pixel_size_A";   // root attribute, float64 [2] = {x, y} or scalar
constexpr const char* kComplete = "complete_samples";  // root attribute, int64
// predictions
constexpr const char* kPredColumns = "/columns";
constexpr const char* kPredClass = "/class";
constexpr const char* kPredMasks = "/masks";
constexpr const char* kPredScalars = "/scalars";
}  // namespace layout

namespace {

std::string join(const std::string& group, const std::string& name) { return group + "/" + name; }

// HDF5 identifiers are owned by the one handle type (dataset/hdf5.hpp). Here an invalid id is
// not an exception at once: the caller checks valid() and names the file and path itself.
using h5::Handle;
Handle adopt(hid_t id, Handle::Closer close) { return id < 0 ? Handle() : Handle(id, close, ""); }

std::string dims_text(const std::vector<hsize_t>& d) {
  std::string s = "[";
  for (std::size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

// --- typed HDF5 access ---------------------------------------------------------------------
class H5Reader {
 public:
  explicit H5Reader(const std::string& path, bool write = false) : path_(path) {
    h5::silence_errors();
    if (write) {
      file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
      if (file_ < 0) throw std::runtime_error(path + ": cannot create the HDF5 file");
    } else {
      std::ifstream probe(path);
      if (!probe) throw std::runtime_error(path + ": cannot open the file (missing or unreadable)");
      file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
      if (file_ < 0) throw std::runtime_error(path + ": not an HDF5 file (or it is damaged)");
    }
  }
  ~H5Reader() {
    if (file_ >= 0) H5Fclose(file_);
  }
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;

  const std::string& path() const { return path_; }
  hid_t file() const { return file_; }

  [[noreturn]] void fail(const std::string& object, const std::string& what) const {
    throw std::runtime_error(path_ + ": " + object + ": " + what);
  }

  bool exists(const std::string& p) const {
    h5::silence_errors();
    std::string prefix;
    std::stringstream ss(p);
    std::string part;
    while (std::getline(ss, part, '/')) {
      if (part.empty()) continue;
      prefix += "/" + part;
      if (H5Lexists(file_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    return true;
  }

  H5I_type_t object_type(const std::string& p) const {
    if (!exists(p)) return H5I_BADID;
    h5::silence_errors();
    Handle o = adopt(H5Oopen(file_, p.c_str(), H5P_DEFAULT), H5Oclose);
    return o.valid() ? H5Iget_type(o.get()) : H5I_BADID;
  }
  bool is_dataset(const std::string& p) const { return object_type(p) == H5I_DATASET; }
  bool is_group(const std::string& p) const { return object_type(p) == H5I_GROUP; }

  /// Names of the datasets directly inside a group, sorted; empty when the group is absent.
  std::vector<std::string> datasets_in(const std::string& group) const {
    std::vector<std::string> names;
    if (!is_group(group)) return names;
    h5::silence_errors();
    Handle g = adopt(H5Gopen2(file_, group.c_str(), H5P_DEFAULT), H5Gclose);
    H5G_info_t info;
    if (!g.valid() || H5Gget_info(g.get(), &info) < 0) fail(group, "cannot list the group");
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (len < 0) continue;
      std::string name(static_cast<std::size_t>(len) + 1, '\0');
      H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
      name.resize(static_cast<std::size_t>(len));
      if (is_dataset(join(group, name))) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  Handle open_dataset(const std::string& p) const {
    if (!exists(p)) fail(p, "missing");
    h5::silence_errors();
    Handle d = adopt(H5Dopen2(file_, p.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) fail(p, "not a dataset");
    return d;
  }

  std::vector<hsize_t> dims(const std::string& p) const {
    Handle d = open_dataset(p);
    Handle s = adopt(H5Dget_space(d.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(s.get());
    if (rank < 0) fail(p, "cannot read the dataspace");
    std::vector<hsize_t> out(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(s.get(), out.data(), nullptr);
    return out;
  }

  H5T_class_t type_class(const std::string& p) const {
    Handle d = open_dataset(p);
    Handle t = adopt(H5Dget_type(d.get()), H5Tclose);
    return H5Tget_class(t.get());
  }

  /// A 1-D numeric dataset read as double (integer or float storage).
  std::vector<double> read_1d_double(const std::string& p) const { return read_1d<double>(p, H5T_NATIVE_DOUBLE, false); }
  /// A 1-D integer dataset read as int64 (float storage is refused).
  std::vector<std::int64_t> read_1d_int64(const std::string& p) const {
    return read_1d<std::int64_t>(p, H5T_NATIVE_INT64, true);
  }
  std::vector<int> read_1d_int(const std::string& p) const { return read_1d<int>(p, H5T_NATIVE_INT, true); }

  /// Shape of a per-sample image stack [n, ny, nx].
  Shape3 shape3(const std::string& p) const {
    const auto d = dims(p);
    if (d.size() != 3) fail(p, "expected a 3-D dataset [samples, ny, nx], found shape " + dims_text(d));
    return {static_cast<std::size_t>(d[0]), static_cast<std::size_t>(d[1]), static_cast<std::size_t>(d[2])};
  }

  /// One sample [ny, nx] of a 3-D dataset, converted to `memtype`.
  template <class T>
  std::vector<T> read_slab(const std::string& p, std::size_t sample, hid_t memtype, bool integer) const {
    const Shape3 sh = shape3(p);
    if (sample >= sh.n) fail(p, "sample " + std::to_string(sample) + " out of range (" + std::to_string(sh.n) + " stored)");
    check_class(p, integer);
    Handle d = open_dataset(p);
    Handle fs = adopt(H5Dget_space(d.get()), H5Sclose);
    const hsize_t start[3] = {sample, 0, 0}, count[3] = {1, sh.ny, sh.nx};
    H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    const hsize_t mdims[1] = {sh.ny * sh.nx};
    Handle ms = adopt(H5Screate_simple(1, mdims, nullptr), H5Sclose);
    std::vector<T> out(sh.ny * sh.nx);
    h5::silence_errors();
    if (H5Dread(d.get(), memtype, ms.get(), fs.get(), H5P_DEFAULT, out.data()) < 0)
      fail(p, "cannot read sample " + std::to_string(sample));
    return out;
  }

  bool has_attribute(const std::string& object, const std::string& name) const {
    if (object != "/" && !exists(object)) return false;
    h5::silence_errors();
    return H5Aexists_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
  }

  std::vector<double> attribute_doubles(const std::string& object, const std::string& name) const {
    h5::silence_errors();
    Handle a = adopt(H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.valid()) fail(object, "cannot open attribute '" + name + "'");
    Handle t = adopt(H5Aget_type(a.get()), H5Tclose);
    const H5T_class_t c = H5Tget_class(t.get());
    if (c != H5T_INTEGER && c != H5T_FLOAT) fail(object, "attribute '" + name + "' is not numeric");
    Handle s = adopt(H5Aget_space(a.get()), H5Sclose);
    const hssize_t n = H5Sget_simple_extent_npoints(s.get());
    std::vector<double> out(static_cast<std::size_t>(std::max<hssize_t>(n, 0)));
    if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, out.data()) < 0) fail(object, "cannot read attribute '" + name + "'");
    return out;
  }

  /// A string attribute: variable- or fixed-length, scalar or 1-D.
  std::vector<std::string> attribute_strings(const std::string& object, const std::string& name) const {
    h5::silence_errors();
    Handle a = adopt(H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.valid()) fail(object, "cannot open attribute '" + name + "'");
    Handle t = adopt(H5Aget_type(a.get()), H5Tclose);
    if (H5Tget_class(t.get()) != H5T_STRING) fail(object, "attribute '" + name + "' is not a string");
    Handle s = adopt(H5Aget_space(a.get()), H5Sclose);
    const auto n = static_cast<std::size_t>(std::max<hssize_t>(H5Sget_simple_extent_npoints(s.get()), 0));
    std::vector<std::string> out;
    Handle mt = adopt(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_cset(mt.get(), H5Tget_cset(t.get()));
    if (H5Tis_variable_str(t.get()) > 0) {
      H5Tset_size(mt.get(), H5T_VARIABLE);
      std::vector<char*> buf(n, nullptr);
      if (H5Aread(a.get(), mt.get(), buf.data()) < 0) fail(object, "cannot read attribute '" + name + "'");
      for (char* c : buf) out.emplace_back(c ? c : "");
#if H5_VERSION_GE(1, 12, 0)
      H5Treclaim(mt.get(), s.get(), H5P_DEFAULT, buf.data());
#else
      H5Dvlen_reclaim(mt.get(), s.get(), H5P_DEFAULT, buf.data());
#endif
    } else {
      const std::size_t size = H5Tget_size(t.get());
      H5Tset_size(mt.get(), size);
      std::vector<char> buf(n * size, '\0');
      if (H5Aread(a.get(), mt.get(), buf.data()) < 0) fail(object, "cannot read attribute '" + name + "'");
      for (std::size_t i = 0; i < n; ++i) {
        std::string v(buf.data() + i * size, size);
        v = v.substr(0, v.find('\0'));
        out.push_back(trim(v));
      }
    }
    return out;
  }

 private:
  void check_class(const std::string& p, bool integer) const {
    const H5T_class_t c = type_class(p);
    if (integer && c != H5T_INTEGER) fail(p, "expected integer values");
    if (!integer && c != H5T_INTEGER && c != H5T_FLOAT) fail(p, "expected numeric values");
  }

  template <class T>
  std::vector<T> read_1d(const std::string& p, hid_t memtype, bool integer) const {
    const auto d = dims(p);
    if (d.size() != 1) fail(p, "expected a 1-D dataset, found shape " + dims_text(d));
    check_class(p, integer);
    std::vector<T> out(static_cast<std::size_t>(d[0]));
    if (out.empty()) return out;
    Handle ds = open_dataset(p);
    h5::silence_errors();
    if (H5Dread(ds.get(), memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) fail(p, "cannot read");
    return out;
  }

  std::string path_;
  hid_t file_ = -1;
};

namespace {

// Reads a column table from `group`: `sample` and at least one complete coordinate pair are
// required, every dataset must be 1-D of the same length, and coordinates must be finite.
ColumnTable read_column_table(const H5Reader& h5, const std::string& group) {
  ColumnTable t;
  const std::string sp = join(group, "sample");
  if (!h5.is_dataset(sp)) h5.fail(sp, "missing (every column table needs a 'sample' index)");
  t.sample = h5.read_1d_int64(sp);
  const std::size_t n = t.sample.size();
  auto read = [&](const char* name, std::vector<double>& v) {
    const std::string p = join(group, name);
    if (!h5.is_dataset(p)) return false;
    v = h5.read_1d_double(p);
    if (v.size() != n)
      h5.fail(p, "has " + std::to_string(v.size()) + " entries but " + sp + " has " + std::to_string(n));
    for (std::size_t i = 0; i < n; ++i)
      if (!std::isfinite(v[i])) h5.fail(p, "non-finite value at row " + std::to_string(i));
    return true;
  };
  const bool xa = read("x_A", t.x_A), ya = read("y_A", t.y_A);
  const bool xp = read("x_px", t.x_px), yp = read("y_px", t.y_px);
  if (xa != ya) h5.fail(join(group, xa ? "y_A" : "x_A"), "missing (x_A and y_A come together)");
  if (xp != yp) h5.fail(join(group, xp ? "y_px" : "x_px"), "missing (x_px and y_px come together)");
  t.A_present = xa;
  t.px_present = xp;
  if (!xa && !xp) h5.fail(group, "has neither x_A/y_A nor x_px/y_px coordinates");
  const std::string zp = join(group, "species");
  if (h5.is_dataset(zp)) {
    t.species = h5.read_1d_int(zp);
    if (t.species.size() != n)
      h5.fail(zp, "has " + std::to_string(t.species.size()) + " entries but " + sp + " has " + std::to_string(n));
  }
  for (std::size_t i = 0; i < n; ++i)
    if (t.sample[i] < 0) h5.fail(sp, "negative sample index at row " + std::to_string(i));
  return t;
}

ColumnTable read_csv_columns(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the file (missing or unreadable)");
  auto fail = [&](std::size_t line, const std::string& what) -> void {
    throw std::runtime_error(path + ": line " + std::to_string(line) + ": " + what);
  };
  auto split = [](const std::string& s) {
    std::vector<std::string> f;
    std::stringstream ss(s);
    std::string x;
    while (std::getline(ss, x, ',')) f.push_back(trim(x));
    if (!s.empty() && s.back() == ',') f.emplace_back();
    return f;
  };
  std::string line;
  std::size_t lineno = 0;
  std::vector<std::string> header;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    header = split(t);
    break;
  }
  if (header.empty()) fail(lineno, "empty file: expected a header line 'sample,x_A,y_A[,species]'");
  auto col = [&](const char* name) -> int {
    const auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
  };
  const int cs = col("sample");
  int cx = col("x_A"), cy = col("y_A");
  const bool angstrom = cx >= 0 && cy >= 0;
  if (!angstrom) cx = col("x_px"), cy = col("y_px");
  const int cz = col("species");
  if (cs < 0 || cx < 0 || cy < 0)
    fail(lineno, "header must name 'sample' and 'x_A,y_A' (or 'x_px,y_px'), found '" + trim(line) + "'");
  ColumnTable t;
  t.A_present = angstrom;
  t.px_present = !angstrom;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string s = trim(line);
    if (s.empty() || s[0] == '#') continue;
    const auto f = split(s);
    if (f.size() != header.size())
      fail(lineno, "expected " + std::to_string(header.size()) + " fields, found " + std::to_string(f.size()));
    auto number = [&](int c) {
      const std::string& v = f[static_cast<std::size_t>(c)];
      std::size_t used = 0;
      double x = 0;
      try {
        x = std::stod(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != v.size() || !std::isfinite(x))
        fail(lineno, "field '" + header[static_cast<std::size_t>(c)] + "' is not a finite number: '" + v + "'");
      return x;
    };
    const double sv = number(cs);
    if (sv < 0 || sv != std::floor(sv)) fail(lineno, "sample must be a non-negative integer");
    t.sample.push_back(static_cast<std::int64_t>(sv));
    (angstrom ? t.x_A : t.x_px).push_back(number(cx));
    (angstrom ? t.y_A : t.y_px).push_back(number(cy));
    if (cz >= 0) t.species.push_back(static_cast<int>(number(cz)));
  }
  return t;
}

}  // namespace

// --- DatasetReader ---------------------------------------------------------------------------
DatasetReader::DatasetReader(const std::string& path) : h5_(std::make_unique<H5Reader>(path)) {
  if (h5_->has_attribute("/", layout::kComplete)) {
    const auto v = h5_->attribute_doubles("/", layout::kComplete);
    if (v.size() != 1 || !(v[0] >= 0)) h5_->fail("/", std::string("attribute '") + layout::kComplete + "' must be one count >= 0");
    n_samples_ = static_cast<std::size_t>(v[0]);
    return;
  }
  // No count attribute: the first per-sample dataset tells.
  if (has_classes()) {
    n_samples_ = static_cast<std::size_t>(h5_->dims(layout::kClass).at(0));
    return;
  }
  for (const auto& p : param_names()) {
    n_samples_ = static_cast<std::size_t>(h5_->dims(join(layout::kParams, p)).at(0));
    return;
  }
  for (const auto& d : detectors()) {
    n_samples_ = image_shape(d).n;
    return;
  }
  h5_->fail("/", std::string("no per-sample data found (no attribute '") + layout::kComplete + "', no " +
                     layout::kClass + ", " + layout::kParams + " or " + layout::kImages + ")");
}

DatasetReader::~DatasetReader() = default;

const std::string& DatasetReader::path() const { return h5_->path(); }

std::optional<std::array<double, 2>> DatasetReader::pixel_size_A() const {
  if (!h5_->has_attribute("/", layout::kPixelSize)) return std::nullopt;
  const auto v = h5_->attribute_doubles("/", layout::kPixelSize);
  std::array<double, 2> s{};
  if (v.size() == 1) s = {v[0], v[0]};
  else if (v.size() == 2) s = {v[0], v[1]};
  else h5_->fail("/", std::string("attribute '") + layout::kPixelSize + "' must hold 1 or 2 values");
  if (!(s[0] > 0) || !(s[1] > 0) || !std::isfinite(s[0]) || !std::isfinite(s[1]))
    h5_->fail("/", std::string("attribute '") + layout::kPixelSize + "' must be positive");
  return s;
}

std::vector<std::string> DatasetReader::param_names() const { return h5_->datasets_in(layout::kParams); }

std::vector<double> DatasetReader::param(const std::string& name) const {
  const std::string p = join(layout::kParams, name);
  auto v = h5_->read_1d_double(p);
  if (v.size() < n_samples_)
    h5_->fail(p, "has " + std::to_string(v.size()) + " entries, fewer than the " + std::to_string(n_samples_) + " samples");
  v.resize(n_samples_);
  return v;
}

bool DatasetReader::has_classes() const { return h5_->is_dataset(layout::kClass); }

std::vector<int> DatasetReader::classes() const {
  auto v = h5_->read_1d_int(layout::kClass);
  if (v.size() < n_samples_)
    h5_->fail(layout::kClass,
              "has " + std::to_string(v.size()) + " entries, fewer than the " + std::to_string(n_samples_) + " samples");
  v.resize(n_samples_);
  return v;
}

std::vector<std::string> DatasetReader::class_names() const {
  if (!h5_->has_attribute(layout::kClass, layout::kClassNames)) return {};
  auto names = h5_->attribute_strings(layout::kClass, layout::kClassNames);
  if (names.size() == 1 && names[0].find(',') != std::string::npos) {
    std::vector<std::string> split;
    std::stringstream ss(names[0]);
    std::string s;
    while (std::getline(ss, s, ',')) split.push_back(trim(s));
    return split;
  }
  return names;
}

bool DatasetReader::has_columns() const { return h5_->is_group(layout::kColumns); }

ColumnTable DatasetReader::columns() const {
  ColumnTable all = read_column_table(*h5_, layout::kColumns);
  // Keep rows of the samples being evaluated (an unfinished run may hold a partial sample).
  ColumnTable t;
  t.A_present = all.A_present;
  t.px_present = all.px_present;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (static_cast<std::size_t>(all.sample[i]) >= n_samples_) continue;
    t.sample.push_back(all.sample[i]);
    if (all.has_A()) t.x_A.push_back(all.x_A[i]), t.y_A.push_back(all.y_A[i]);
    if (all.has_px()) t.x_px.push_back(all.x_px[i]), t.y_px.push_back(all.y_px[i]);
    if (!all.species.empty()) t.species.push_back(all.species[i]);
  }
  return t;
}

std::vector<std::string> DatasetReader::mask_names() const { return h5_->datasets_in(layout::kMasks); }

Shape3 DatasetReader::mask_shape(const std::string& name) const { return h5_->shape3(join(layout::kMasks, name)); }

LabelImage DatasetReader::mask(const std::string& name, std::size_t sample) const {
  const std::string p = join(layout::kMasks, name);
  const Shape3 s = h5_->shape3(p);
  return {s.ny, s.nx, h5_->read_slab<int>(p, sample, H5T_NATIVE_INT, true)};
}

std::vector<std::string> DatasetReader::detectors() const { return h5_->datasets_in(layout::kImages); }

Shape3 DatasetReader::image_shape(const std::string& detector) const {
  return h5_->shape3(join(layout::kImages, detector));
}

Image DatasetReader::image(const std::string& detector, std::size_t sample, bool clean) const {
  const std::string p = join(clean ? layout::kClean : layout::kImages, detector);
  const Shape3 s = h5_->shape3(p);
  Image img(s.nx, s.ny);
  img.data = h5_->read_slab<double>(p, sample, H5T_NATIVE_DOUBLE, false);
  return img;
}

// --- PredictionsReader -----------------------------------------------------------------------
PredictionsReader::PredictionsReader(const std::string& path) : path_(path) {
  const bool csv = path.size() >= 4 && (path.compare(path.size() - 4, 4, ".csv") == 0 ||
                                        path.compare(path.size() - 4, 4, ".CSV") == 0);
  if (csv) csv_columns_ = read_csv_columns(path);
  else h5_ = std::make_unique<H5Reader>(path);
}

PredictionsReader::~PredictionsReader() = default;

bool PredictionsReader::has_columns() const { return csv_columns_ || h5_->exists(layout::kPredColumns); }

ColumnTable PredictionsReader::columns() const {
  ColumnTable t = csv_columns_ ? *csv_columns_ : read_column_table(*h5_, layout::kPredColumns);
  if (t.has_A()) t.x_px.clear(), t.y_px.clear(), t.px_present = false;  // x_A/y_A win when both are given
  return t;
}

bool PredictionsReader::has_classes() const { return h5_ && h5_->exists(layout::kPredClass); }

std::vector<int> PredictionsReader::classes() const { return h5_->read_1d_int(layout::kPredClass); }

std::vector<std::string> PredictionsReader::mask_names() const {
  if (!h5_) return {};
  if (h5_->exists(layout::kPredMasks) && !h5_->is_group(layout::kPredMasks))
    h5_->fail(layout::kPredMasks, "must be a group of datasets /masks/<name>");
  return h5_->datasets_in(layout::kPredMasks);
}

Shape3 PredictionsReader::mask_shape(const std::string& name) const { return h5_->shape3(join(layout::kPredMasks, name)); }

LabelImage PredictionsReader::mask(const std::string& name, std::size_t sample) const {
  const std::string p = join(layout::kPredMasks, name);
  const Shape3 s = h5_->shape3(p);
  return {s.ny, s.nx, h5_->read_slab<int>(p, sample, H5T_NATIVE_INT, true)};
}

std::vector<std::string> PredictionsReader::scalar_names() const {
  if (!h5_) return {};
  if (h5_->exists(layout::kPredScalars) && !h5_->is_group(layout::kPredScalars))
    h5_->fail(layout::kPredScalars, "must be a group of datasets /scalars/<param name>");
  return h5_->datasets_in(layout::kPredScalars);
}

std::vector<double> PredictionsReader::scalar(const std::string& name) const {
  return h5_->read_1d_double(join(layout::kPredScalars, name));
}

// --- writing ------------------------------------------------------------------------------------
namespace {

template <class T>
void write_1d(const H5Reader& h5, const std::string& p, const std::vector<T>& v, hid_t filetype, hid_t memtype) {
  const hsize_t n[1] = {v.size()};
  Handle space = adopt(H5Screate_simple(1, n, nullptr), H5Sclose);
  Handle d = adopt(H5Dcreate2(h5.file(), p.c_str(), filetype, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (!d.valid() || (!v.empty() && H5Dwrite(d.get(), memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0))
    h5.fail(p, "cannot write");
}

void write_string_attribute(const H5Reader& h5, const std::string& name, const std::string& value) {
  Handle t = adopt(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), std::max<std::size_t>(value.size(), 1));
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  Handle s = adopt(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a = adopt(H5Acreate2(h5.file(), name.c_str(), t.get(), s.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  std::string buf = value.empty() ? std::string(1, '\0') : value;
  if (!a.valid() || H5Awrite(a.get(), t.get(), buf.data()) < 0) h5.fail("/", "cannot write attribute '" + name + "'");
}

}  // namespace

void write_predictions(const std::string& path, const Predictions& p) {
  H5Reader h5(path, true);
  h5::silence_errors();
  write_string_attribute(h5, "format", "stemtwin-predictions-1");
  if (!p.method.empty()) write_string_attribute(h5, "method", p.method);
  const ColumnTable& c = p.columns;
  if (p.with_columns) {
    Handle g = adopt(H5Gcreate2(h5.file(), layout::kPredColumns, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.valid()) h5.fail(layout::kPredColumns, "cannot create the group");
    const std::string base = layout::kPredColumns;
    write_1d(h5, base + "/sample", c.sample, H5T_STD_I64LE, H5T_NATIVE_INT64);
    if (c.has_A()) {
      write_1d(h5, base + "/x_A", c.x_A, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
      write_1d(h5, base + "/y_A", c.y_A, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
    }
    if (c.has_px()) {
      write_1d(h5, base + "/x_px", c.x_px, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
      write_1d(h5, base + "/y_px", c.y_px, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
    }
    if (!c.species.empty()) write_1d(h5, base + "/species", c.species, H5T_STD_I32LE, H5T_NATIVE_INT);
  }
  if (!p.classes.empty()) write_1d(h5, layout::kPredClass, p.classes, H5T_STD_I32LE, H5T_NATIVE_INT);
}

}  // namespace stemtwin::evalio
