#pragma once
// Small RAII wrappers and helpers over the HDF5 C API (HDF5 1.10 on Debian 12).
//
// This header includes <hdf5.h>, whose directory (/usr/include/hdf5/serial on Debian) is
// not a default include path: it is for src/ and tests/, which get HDF5's include
// directories from CMake. Public headers for embedding programs (dataset.hpp) do not
// include it.
//
// Every failing call throws std::runtime_error naming what was attempted; HDF5's own error
// stack printing is switched off by ErrorSilencer (one per process, installed on first use).
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace stemtwin::h5 {

/// Owns one hid_t and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  /// Takes ownership; throws std::runtime_error("HDF5: <what>") when id < 0.
  Handle(hid_t id, Closer closer, const std::string& what);
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

/// Switches off HDF5's automatic error printing (errors become exceptions here).
void silence_errors();
/// Throws std::runtime_error("HDF5: " + what) when status < 0.
void check(herr_t status, const std::string& what);

Handle create_file(const std::string& path, bool truncate);
Handle open_file(const std::string& path, bool writable);
Handle open_group(hid_t loc, const std::string& path);
/// Opens the group, creating it (and missing parents) when absent.
Handle require_group(hid_t loc, const std::string& path);
Handle open_dataset(hid_t loc, const std::string& path);
bool exists(hid_t loc, const std::string& path);  ///< link exists (parents checked too)

/// Extendible dataset [0, dims...] with an unlimited first dimension, chunk [1, chunk...]
/// (chunk empty = dims), shuffle + deflate(level) when level > 0.
Handle create_extendible(hid_t loc, const std::string& path, hid_t type, const std::vector<hsize_t>& dims,
                         const std::vector<hsize_t>& chunk, int deflate_level);
/// Current shape.
std::vector<hsize_t> shape(hid_t dataset);
/// Sets the first dimension to n rows (grows or shrinks).
void set_rows(hid_t dataset, hsize_t n);
/// Writes `count` rows starting at row `first` (the dataset must be at least that large),
/// from memory of type `memtype` laid out as [count, dims...].
void write_rows(hid_t dataset, hid_t memtype, hsize_t first, hsize_t count, const void* data);
/// Writes a hyperslab `offset`/`count` (full rank) from contiguous memory.
void write_slab(hid_t dataset, hid_t memtype, const std::vector<hsize_t>& offset, const std::vector<hsize_t>& count,
                const void* data);
void read_slab(hid_t dataset, hid_t memtype, const std::vector<hsize_t>& offset, const std::vector<hsize_t>& count,
               void* data);
/// Reads `count` rows from `first` into memory of type `memtype`.
void read_rows(hid_t dataset, hid_t memtype, hsize_t first, hsize_t count, void* data);

// Attributes (created or replaced).
void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, double value);
void write_attr(hid_t obj, const std::string& name, std::int64_t value);
void write_attr(hid_t obj, const std::string& name, const std::vector<double>& values);
void write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values);
/// A boolean as h5py writes it (an int8 enum FALSE = 0, TRUE = 1): numpy.bool_ on reading.
void write_attr_bool(hid_t obj, const std::string& name, bool value);
bool has_attr(hid_t obj, const std::string& name);
std::string read_attr_string(hid_t obj, const std::string& name);
double read_attr_double(hid_t obj, const std::string& name);
std::int64_t read_attr_int(hid_t obj, const std::string& name);
std::vector<double> read_attr_doubles(hid_t obj, const std::string& name);
std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name);

/// A fixed-size dataset (intermediate groups created) holding `data` of memory type
/// `memtype` laid out as dims; chunked + shuffle + deflate(level) when level > 0.
Handle create_dataset(hid_t loc, const std::string& path, hid_t type, const std::vector<hsize_t>& dims, hid_t memtype,
                      const void* data, int deflate_level = 0);
/// A 1-D float64 dataset.
Handle create_dataset(hid_t loc, const std::string& path, const std::vector<double>& values);

// Dimension scales (HDF5 H5DS, the convention h5py's `dims`, HDFView and netCDF-4 read).
/// Makes `scale` a dimension scale named `name`.
void make_scale(hid_t scale, const std::string& name);
/// Attaches dimension scale `scale` to dimension `dim` of `dataset`.
void attach_scale(hid_t dataset, hid_t scale, unsigned dim);
/// Labels dimension `dim` of `dataset` (h5py: dset.dims[dim].label).
void set_dim_label(hid_t dataset, unsigned dim, const std::string& label);

/// Names of the links in a group (sorted by name).
std::vector<std::string> list_group(hid_t loc, const std::string& path);

}  // namespace stemtwin::h5
