#pragma once
// A periodic 2-D sampling grid: extent (Å), number of points, sampling, and its reciprocal
// coordinates. Arrays on a grid are row-major [y][x] (index y·nx + x).
//
// Anti-aliasing: every product of waves and transmission functions is band-limited to a
// circle of radius 2/3 of the smaller Nyquist frequency, k_max = (2/3)·min(1/(2dx), 1/(2dy)),
// the same limit everywhere (Kirkland 2010, §6.8), so repeated multiplication never aliases.
#include <cstddef>
#include <vector>

namespace stemtwin {

struct Grid {
  std::size_t nx = 0, ny = 0;   ///< points
  double lx = 0, ly = 0;        ///< extent, Å (the periodic cell)

  Grid() = default;
  Grid(double lx_A, double ly_A, std::size_t nx_, std::size_t ny_);
  /// A grid over lx × ly at or finer than `sampling_A`, with FFT-friendly point counts
  /// (only factors 2, 3, 5, 7).
  static Grid from_sampling(double lx_A, double ly_A, double sampling_A);

  std::size_t size() const { return nx * ny; }
  double dx() const { return lx / static_cast<double>(nx); }
  double dy() const { return ly / static_cast<double>(ny); }
  /// Spatial frequency (1/Å) of FFT index i along x / y (numpy's fftfreq order).
  double kx(std::size_t i) const;
  double ky(std::size_t j) const;
  /// Radius of the circular band limit, 1/Å.
  double k_max() const;
  /// Band-limit mask (1 inside k ≤ k_max, 0 outside) in FFT order.
  std::vector<float> band_limit_mask() const;
  bool operator==(const Grid& o) const { return nx == o.nx && ny == o.ny && lx == o.lx && ly == o.ly; }
};

/// An FFT-friendly size n' ≥ n (prime factors 2, 3, 5, 7 only): the cheapest in [n, 1.1·n]
/// by a cost model favouring factors of 2 (a prime size such as 313 costs ~8× more per
/// transform than 320, and 315 = 3²·5·7 still 2.2× more).
std::size_t fft_friendly_size(std::size_t n);

}  // namespace stemtwin
