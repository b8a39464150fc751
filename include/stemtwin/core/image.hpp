#pragma once
// A 2-D array of doubles, row-major [y][x] with x the fast (scan) direction: the type in
// which every per-position signal travels (clean detector images, noisy images, masks).
#include <cstddef>
#include <vector>

namespace stemtwin {

struct Image {
  std::size_t nx = 0, ny = 0;
  std::vector<double> data;  ///< ny·nx values, data[y·nx + x]

  Image() = default;
  Image(std::size_t nx_, std::size_t ny_, double value = 0.0) : nx(nx_), ny(ny_), data(nx_ * ny_, value) {}
  double& operator()(std::size_t y, std::size_t x) { return data[y * nx + x]; }
  double operator()(std::size_t y, std::size_t x) const { return data[y * nx + x]; }
  std::size_t size() const { return data.size(); }
  double mean() const {
    double s = 0;
    for (double v : data) s += v;
    return data.empty() ? 0.0 : s / static_cast<double>(data.size());
  }
};

}  // namespace stemtwin
