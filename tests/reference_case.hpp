#pragma once
// The Si [110] reference case (tests/data/reference, from ../shared/reference: computed with
// abTEM 1.0.9, parameters in its README): structure, scan and the reference signals.
#include <hdf5.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "stemtwin/core/atoms.hpp"

namespace stemtwin::test {

inline std::string reference_dir() { return std::string(STEMTWIN_SOURCE_DIR) + "/tests/data/reference/"; }

/// Minimal extended-XYZ reader for the fixture (orthogonal Lattice, species + positions).
inline Structure read_reference_xyz() {
  std::ifstream in(reference_dir() + "si110.xyz");
  if (!in) throw std::runtime_error("cannot open si110.xyz");
  std::size_t n;
  in >> n;
  std::string line;
  std::getline(in, line);
  std::getline(in, line);
  const auto p = line.find("Lattice=\"");
  std::istringstream lat(line.substr(p + 9));
  double m[9];
  for (double& v : m) lat >> v;
  Structure s;
  s.cell = {m[0], m[4], m[8]};
  for (std::size_t i = 0; i < n; ++i) {
    std::string sym;
    Atom a;
    in >> sym >> a.x >> a.y >> a.z;
    a.Z = atomic_number(sym);
    s.atoms.push_back(a);
  }
  return s;
}

/// Reads a whole float64-convertible dataset.
inline std::vector<double> read_h5(const std::string& file, const std::string& path, std::vector<hsize_t>* dims = nullptr) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw std::runtime_error("cannot open " + file);
  const hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
  const hid_t sp = H5Dget_space(d);
  const int rank = H5Sget_simple_extent_ndims(sp);
  std::vector<hsize_t> dd(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(sp, dd.data(), nullptr);
  hsize_t n = 1;
  for (auto v : dd) n *= v;
  std::vector<double> out(n);
  H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Sclose(sp);
  H5Dclose(d);
  H5Fclose(f);
  if (dims) *dims = dd;
  return out;
}

}  // namespace stemtwin::test
