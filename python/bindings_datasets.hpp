#pragma once
// Helpers of the dataset and scenario bindings (bind_datasets.cpp): the one HDF5 lock, a
// dataset reader held by Python, row checks, column labels and layouts as Python values. The
// helpers every binding file shares: bindings.hpp.
#include <mutex>

#include "bindings.hpp"

namespace stemtwin::py_bindings {

// ------------------------------------------------------------------------ datasets, scenarios

/// Debian's libhdf5 is built without thread safety: every HDF5 call of this module (dataset
/// reading, scenario runs) holds this one lock, taken with the GIL released.
inline std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

struct Dataset {
  DatasetReader r;
  explicit Dataset(const std::string& path) : r(path) {}
  ~Dataset() {  // closing the file is an HDF5 call too (no HDF5 holder of the lock needs the GIL)
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    DatasetReader gone = std::move(r);
  }
};
template <class F>
auto with(Dataset& d, F&& f) {
  py::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  return f(d.r);
}

inline std::size_t check_row(const DatasetReader& r, std::size_t row) {
  if (row >= r.size())
    throw py::index_error("row " + std::to_string(row) + " out of range: the dataset holds " + std::to_string(r.size()) +
                          " complete sample(s)");
  return row;
}

inline py::dict columns_dict(std::vector<ColumnLabel>&& c) {
  const auto n = static_cast<py::ssize_t>(c.size());
  std::vector<double> x(c.size()), y(c.size()), px(c.size()), py_(c.size());
  std::vector<int> species(c.size()), count(c.size()), cls(c.size());
  for (std::size_t i = 0; i < c.size(); ++i) {
    x[i] = c[i].x, y[i] = c[i].y, px[i] = c[i].px, py_[i] = c[i].py;
    species[i] = c[i].species, count[i] = c[i].count, cls[i] = c[i].class_id;
  }
  py::dict d;
  d["x_A"] = own(std::move(x), {n});
  d["y_A"] = own(std::move(y), {n});
  d["x_px"] = own(std::move(px), {n});
  d["y_px"] = own(std::move(py_), {n});
  d["species"] = own(std::move(species), {n});
  d["count"] = own(std::move(count), {n});
  d["class"] = own(std::move(cls), {n});
  return d;
}

inline const DiffractionLayout& diffraction_layout(const DatasetLayout& L, const std::string& name) {
  for (const DiffractionLayout& d : L.diffraction)
    if (d.name == name) return d;
  throw std::invalid_argument("no diffraction detector '" + name + "' in the dataset");
}
inline const RadialLayout& radial_layout(const DatasetLayout& L, const std::string& name) {
  for (const RadialLayout& d : L.radial)
    if (d.name == name) return d;
  throw std::invalid_argument("no radial detector '" + name + "' in the dataset");
}


}  // namespace stemtwin::py_bindings
