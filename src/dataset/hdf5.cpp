#include "stemtwin/dataset/hdf5.hpp"

#include <hdf5_hl.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

namespace stemtwin::h5 {

void silence_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

namespace {
/// HDF5's own error stack, innermost cause last, as " (a; b; c)"; then cleared.
std::string error_stack() {
  std::string text;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned n, const H5E_error2_t* e, void* p) -> herr_t {
        auto* t = static_cast<std::string*>(p);
        if (n < 4 && e->desc && *e->desc) *t += (t->empty() ? "" : "; ") + std::string(e->desc);
        return 0;
      },
      &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? std::string() : " (" + text + ")";
}
}  // namespace

void check(herr_t status, const std::string& what) {
  if (status < 0) throw std::runtime_error("HDF5: " + what + error_stack());
}

Handle::Handle(hid_t id, Closer closer, const std::string& what) : id_(id), closer_(closer) {
  if (id < 0) throw std::runtime_error("HDF5: " + what + error_stack());
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = -1;
}

namespace {
Handle space(const std::vector<hsize_t>& dims, const std::vector<hsize_t>* max = nullptr) {
  return Handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max ? max->data() : nullptr), H5Sclose,
                "create dataspace");
}
Handle vlen_string_type() {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose, "copy string type");
  check(H5Tset_size(t, H5T_VARIABLE), "set string size");
  check(H5Tset_cset(t, H5T_CSET_UTF8), "set string charset");
  return t;
}
void delete_attr(hid_t obj, const std::string& name) {
  if (H5Aexists(obj, name.c_str()) > 0) check(H5Adelete(obj, name.c_str()), "delete attribute " + name);
}
}  // namespace

Handle create_file(const std::string& path, bool truncate) {
  silence_errors();
  // Default (earliest) format: no superblock status flags, so a file left by a killed writer
  // opens again without h5clear; h5py/HDFView read it.
  return Handle(H5Fcreate(path.c_str(), truncate ? H5F_ACC_TRUNC : H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                "cannot create '" + path + "'");
}

Handle open_file(const std::string& path, bool writable) {
  silence_errors();
  return Handle(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
                "cannot open '" + path + "' (not an HDF5 file, or locked by another process)");
}

Handle open_group(hid_t loc, const std::string& path) {
  return Handle(H5Gopen2(loc, path.c_str(), H5P_DEFAULT), H5Gclose, "open group " + path);
}

Handle require_group(hid_t loc, const std::string& path) {
  if (exists(loc, path)) return open_group(loc, path);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "link property list");
  check(H5Pset_create_intermediate_group(lcpl, 1), "intermediate groups");
  return Handle(H5Gcreate2(loc, path.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "create group " + path);
}

Handle open_dataset(hid_t loc, const std::string& path) {
  return Handle(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose, "open dataset " + path);
}

bool exists(hid_t loc, const std::string& path) {
  // Check each component so a missing parent is not an error.
  std::size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    const std::string part = path.substr(0, pos);
    if (!part.empty() && part != "/") {
      if (H5Lexists(loc, part.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    if (pos == std::string::npos) return true;
  }
}

Handle create_extendible(hid_t loc, const std::string& path, hid_t type, const std::vector<hsize_t>& dims,
                         const std::vector<hsize_t>& chunk, int deflate_level) {
  std::vector<hsize_t> cur{0}, max{H5S_UNLIMITED}, ch{1};
  for (hsize_t d : dims) cur.push_back(d), max.push_back(d);
  const auto& c = chunk.empty() ? dims : chunk;
  for (hsize_t d : c) ch.push_back(d == 0 ? 1 : d);
  if (chunk.empty() && dims.empty()) ch[0] = 1024;  // 1-D per-sample/per-row columns
  Handle sp = space(cur, &max);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset property list");
  check(H5Pset_chunk(dcpl, static_cast<int>(ch.size()), ch.data()), "set chunk for " + path);
  if (deflate_level > 0) {
    check(H5Pset_shuffle(dcpl), "shuffle filter");
    check(H5Pset_deflate(dcpl, static_cast<unsigned>(deflate_level)), "deflate filter");
  }
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "link property list");
  check(H5Pset_create_intermediate_group(lcpl, 1), "intermediate groups");
  return Handle(H5Dcreate2(loc, path.c_str(), type, sp, lcpl, dcpl, H5P_DEFAULT), H5Dclose, "create dataset " + path);
}

std::vector<hsize_t> shape(hid_t dataset) {
  Handle sp(H5Dget_space(dataset), H5Sclose, "dataset space");
  const int rank = H5Sget_simple_extent_ndims(sp);
  check(rank, "dataset rank");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  check(H5Sget_simple_extent_dims(sp, dims.data(), nullptr), "dataset dims");
  return dims;
}

void set_rows(hid_t dataset, hsize_t n) {
  std::vector<hsize_t> dims = shape(dataset);
  dims[0] = n;
  check(H5Dset_extent(dataset, dims.data()), "resize dataset");
}

void write_slab(hid_t dataset, hid_t memtype, const std::vector<hsize_t>& offset, const std::vector<hsize_t>& count,
                const void* data) {
  Handle fs(H5Dget_space(dataset), H5Sclose, "dataset space");
  check(H5Sselect_hyperslab(fs, H5S_SELECT_SET, offset.data(), nullptr, count.data(), nullptr), "select hyperslab");
  Handle ms = space(count);
  check(H5Dwrite(dataset, memtype, ms, fs, H5P_DEFAULT, data), "write dataset");
}

void read_slab(hid_t dataset, hid_t memtype, const std::vector<hsize_t>& offset, const std::vector<hsize_t>& count,
               void* data) {
  Handle fs(H5Dget_space(dataset), H5Sclose, "dataset space");
  check(H5Sselect_hyperslab(fs, H5S_SELECT_SET, offset.data(), nullptr, count.data(), nullptr), "select hyperslab");
  Handle ms = space(count);
  check(H5Dread(dataset, memtype, ms, fs, H5P_DEFAULT, data), "read dataset");
}

void write_rows(hid_t dataset, hid_t memtype, hsize_t first, hsize_t count, const void* data) {
  std::vector<hsize_t> dims = shape(dataset), offset(dims.size(), 0);
  if (first + count > dims[0]) throw std::runtime_error("HDF5: write_rows beyond the dataset's extent");
  offset[0] = first;
  dims[0] = count;
  if (count == 0) return;
  write_slab(dataset, memtype, offset, dims, data);
}

void read_rows(hid_t dataset, hid_t memtype, hsize_t first, hsize_t count, void* data) {
  std::vector<hsize_t> dims = shape(dataset), offset(dims.size(), 0);
  if (first + count > dims[0]) throw std::runtime_error("HDF5: read_rows beyond the dataset's extent");
  offset[0] = first;
  dims[0] = count;
  if (count == 0) return;
  read_slab(dataset, memtype, offset, dims, data);
}

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  delete_attr(obj, name);
  Handle t = vlen_string_type();
  Handle sp(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
  Handle a(H5Acreate2(obj, name.c_str(), t, sp, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, "create attribute " + name);
  const char* p = value.c_str();
  check(H5Awrite(a, t, &p), "write attribute " + name);
}

void write_attr(hid_t obj, const std::string& name, double value) {
  write_attr(obj, name, std::vector<double>{value});
}

void write_attr(hid_t obj, const std::string& name, std::int64_t value) {
  if (H5Aexists(obj, name.c_str()) > 0) {
    // Update a scalar integer in place (the per-sample completion counter): no header change.
    Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
    Handle t(H5Aget_type(a), H5Tclose, "attribute type");
    Handle sp(H5Aget_space(a), H5Sclose, "attribute space");
    if (H5Tget_class(t) == H5T_INTEGER && H5Sget_simple_extent_npoints(sp) == 1) {
      check(H5Awrite(a, H5T_NATIVE_INT64, &value), "write attribute " + name);
      return;
    }
  }
  delete_attr(obj, name);
  Handle sp(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
  Handle a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
           "create attribute " + name);
  check(H5Awrite(a, H5T_NATIVE_INT64, &value), "write attribute " + name);
}

void write_attr(hid_t obj, const std::string& name, const std::vector<double>& values) {
  delete_attr(obj, name);
  Handle sp = values.size() == 1 ? Handle(H5Screate(H5S_SCALAR), H5Sclose, "scalar space")
                                 : space({static_cast<hsize_t>(values.size())});
  Handle a(H5Acreate2(obj, name.c_str(), H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
           "create attribute " + name);
  check(H5Awrite(a, H5T_NATIVE_DOUBLE, values.data()), "write attribute " + name);
}

void write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values) {
  delete_attr(obj, name);
  Handle t = vlen_string_type();
  Handle sp = space({static_cast<hsize_t>(values.size())});
  std::vector<const char*> ptrs;
  for (const auto& s : values) ptrs.push_back(s.c_str());
  Handle a(H5Acreate2(obj, name.c_str(), t, sp, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, "create attribute " + name);
  if (!ptrs.empty()) check(H5Awrite(a, t, ptrs.data()), "write attribute " + name);
}

void write_attr_bool(hid_t obj, const std::string& name, bool value) {
  delete_attr(obj, name);
  Handle t(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose, "create bool enum type");
  const std::int8_t f = 0, tr = 1;
  check(H5Tenum_insert(t, "FALSE", &f), "bool enum FALSE");
  check(H5Tenum_insert(t, "TRUE", &tr), "bool enum TRUE");
  Handle sp(H5Screate(H5S_SCALAR), H5Sclose, "scalar space");
  Handle a(H5Acreate2(obj, name.c_str(), t, sp, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, "create attribute " + name);
  const std::int8_t v = value ? 1 : 0;
  check(H5Awrite(a, t, &v), "write attribute " + name);
}

Handle create_dataset(hid_t loc, const std::string& path, hid_t type, const std::vector<hsize_t>& dims, hid_t memtype,
                      const void* data, int deflate_level) {
  Handle sp = dims.empty() ? Handle(H5Screate(H5S_SCALAR), H5Sclose, "scalar space") : space(dims);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset property list");
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  if (deflate_level > 0 && !dims.empty() && n > 0) {
    std::vector<hsize_t> ch(dims);
    for (std::size_t i = 0; i + 2 < ch.size(); ++i) ch[i] = 1;  // one image (or pattern) per chunk
    for (auto& c : ch) c = std::max<hsize_t>(c, 1);
    check(H5Pset_chunk(dcpl, static_cast<int>(ch.size()), ch.data()), "set chunk for " + path);
    check(H5Pset_shuffle(dcpl), "shuffle filter");
    check(H5Pset_deflate(dcpl, static_cast<unsigned>(deflate_level)), "deflate filter");
  }
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "link property list");
  check(H5Pset_create_intermediate_group(lcpl, 1), "intermediate groups");
  Handle d(H5Dcreate2(loc, path.c_str(), type, sp, lcpl, dcpl, H5P_DEFAULT), H5Dclose, "create dataset " + path);
  if (data && n > 0) check(H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write dataset " + path);
  return d;
}

Handle create_dataset(hid_t loc, const std::string& path, const std::vector<double>& values) {
  return create_dataset(loc, path, H5T_IEEE_F64LE, {static_cast<hsize_t>(values.size())}, H5T_NATIVE_DOUBLE,
                        values.data());
}

void make_scale(hid_t scale, const std::string& name) {
  check(H5DSset_scale(scale, name.c_str()), "make dimension scale " + name);
}

void attach_scale(hid_t dataset, hid_t scale, unsigned dim) {
  check(H5DSattach_scale(dataset, scale, dim), "attach dimension scale to dimension " + std::to_string(dim));
}

void set_dim_label(hid_t dataset, unsigned dim, const std::string& label) {
  check(H5DSset_label(dataset, dim, label.c_str()), "label dimension " + std::to_string(dim) + " '" + label + "'");
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

namespace {
Handle open_attr(hid_t obj, const std::string& name) {
  return Handle(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "no attribute '" + name + "'");
}
hssize_t attr_points(hid_t a) {
  Handle sp(H5Aget_space(a), H5Sclose, "attribute space");
  return H5Sget_simple_extent_npoints(sp);
}
}  // namespace

std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name) {
  Handle a = open_attr(obj, name);
  Handle ft(H5Aget_type(a), H5Tclose, "attribute type");
  if (H5Tget_class(ft) != H5T_STRING) throw std::runtime_error("HDF5: attribute '" + name + "' is not a string");
  const auto n = static_cast<std::size_t>(attr_points(a));
  std::vector<std::string> out;
  if (H5Tis_variable_str(ft) > 0) {
    Handle t = vlen_string_type();
    std::vector<char*> ptrs(n, nullptr);
    check(H5Aread(a, t, ptrs.data()), "read attribute " + name);
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    Handle sp(H5Aget_space(a), H5Sclose, "attribute space");
    H5Dvlen_reclaim(t, sp, H5P_DEFAULT, ptrs.data());
  } else {
    const std::size_t len = H5Tget_size(ft);
    std::vector<char> buf(n * len + 1, '\0');
    Handle t(H5Tcopy(ft), H5Tclose, "copy type");
    check(H5Aread(a, t, buf.data()), "read attribute " + name);
    for (std::size_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * len, len);
      s.erase(s.find_last_not_of('\0') + 1);
      out.push_back(s);
    }
  }
  return out;
}

std::string read_attr_string(hid_t obj, const std::string& name) {
  auto v = read_attr_strings(obj, name);
  return v.empty() ? std::string() : v.front();
}

std::vector<double> read_attr_doubles(hid_t obj, const std::string& name) {
  Handle a = open_attr(obj, name);
  std::vector<double> v(static_cast<std::size_t>(attr_points(a)));
  if (!v.empty()) check(H5Aread(a, H5T_NATIVE_DOUBLE, v.data()), "read attribute " + name);
  return v;
}

double read_attr_double(hid_t obj, const std::string& name) {
  auto v = read_attr_doubles(obj, name);
  if (v.size() != 1) throw std::runtime_error("HDF5: attribute '" + name + "' is not a scalar");
  return v[0];
}

std::int64_t read_attr_int(hid_t obj, const std::string& name) {
  Handle a = open_attr(obj, name);
  if (attr_points(a) != 1) throw std::runtime_error("HDF5: attribute '" + name + "' is not a scalar");
  std::int64_t v = 0;
  check(H5Aread(a, H5T_NATIVE_INT64, &v), "read attribute " + name);
  return v;
}

std::vector<std::string> list_group(hid_t loc, const std::string& path) {
  std::vector<std::string> names;
  if (!exists(loc, path)) return names;
  Handle g = open_group(loc, path);
  H5G_info_t info;
  check(H5Gget_info(g, &info), "group info " + path);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    check(static_cast<herr_t>(len < 0 ? -1 : 0), "link name");
    std::string s(static_cast<std::size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), s.size(), H5P_DEFAULT);
    s.resize(static_cast<std::size_t>(len));
    names.push_back(s);
  }
  return names;
}

}  // namespace stemtwin::h5
