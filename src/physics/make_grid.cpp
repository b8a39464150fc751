// The simulation grid rule (engine.hpp): kept apart from engine.cpp so the rule has a file of its own.
#include <algorithm>

#include "stemtwin/physics/engine.hpp"

namespace stemtwin {

Grid make_grid(double lx_A, double ly_A, double sampling_A, Method method, std::size_t interpolation) {
  const Grid g = Grid::from_sampling(lx_A, ly_A, sampling_A);
  const std::size_t f = std::max<std::size_t>(1, interpolation);
  if (method != Method::Prism || f == 1) return g;  // from_sampling's counts are FFT-friendly already
  auto fit = [&](std::size_t n) {
    while (n % f != 0 || fft_friendly_size(n) != n) ++n;
    return n;
  };
  return Grid(lx_A, ly_A, fit(g.nx), fit(g.ny));
}

}  // namespace stemtwin
