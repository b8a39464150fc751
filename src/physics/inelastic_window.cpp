// The inelastic recorder on windowed multislice (SliceObserver::set_window), and what auto's
// calibration needs of it (fresh_copy, recorded_signals). spectroscopy.hpp, slice_observer.hpp.
#include <stdexcept>
#include <string>

#include "stemtwin/physics/spectroscopy.hpp"

namespace stemtwin {

void SliceObserver::set_window(std::size_t, std::size_t, std::size_t, std::size_t) {
  throw std::invalid_argument("this slice observer reads only whole-cell waves: windowed multislice cannot pass it a window "
                              "(use method multislice)");
}

void InelasticRecorder::set_window(std::size_t x0, std::size_t y0, std::size_t wnx, std::size_t wny) {
  if (nx_ == 0) throw std::logic_error("inelastic recorder: set_window before begin");
  if (wnx == 0 || wny == 0 || wnx > nx_ || wny > ny_ || (wnx == nx_ && x0 != 0) || (wny == ny_ && y0 != 0) || x0 >= nx_ ||
      y0 >= ny_)
    throw std::invalid_argument("inelastic recorder: window " + std::to_string(wnx) + " × " + std::to_string(wny) + " at (" +
                                std::to_string(x0) + ", " + std::to_string(y0) + ") does not fit the grid " +
                                std::to_string(nx_) + " × " + std::to_string(ny_));
  // A footprint's first pixel relative to the window along one axis; false when the
  // footprint does not lie wholly inside (a whole-cell axis keeps the periodic wrap).
  auto local = [](std::uint32_t first, std::uint32_t span, std::size_t origin, std::size_t n_window, std::size_t n_grid,
                  std::uint32_t& out) {
    if (n_window == n_grid) return out = first, true;
    const std::size_t rel = (std::size_t(first) + n_grid - origin) % n_grid;
    if (rel + span > n_window) return false;
    out = std::uint32_t(rel);
    return true;
  };
  window_footprints_.assign(footprints_.size(), {});
  for (std::size_t c = 0; c < footprints_.size(); ++c) {
    window_footprints_[c].assign(footprints_[c].size(), {});
    for (std::size_t s = 0; s < footprints_[c].size(); ++s)
      for (Footprint f : footprints_[c][s])
        if (local(f.x0, f.nx_span, x0, wnx, nx_, f.x0) && local(f.y0, f.ny_span, y0, wny, ny_, f.y0))
          window_footprints_[c][s].push_back(f);
  }
  wave_nx_ = wnx;
  wave_ny_ = wny;
  windowed_ = true;
}

std::unique_ptr<SliceObserver> InelasticRecorder::fresh_copy() const {
  return std::make_unique<InelasticRecorder>(structure_, seed_, settings_);
}

std::vector<std::vector<double>> InelasticRecorder::recorded_signals() const {
  const ElementIntensity& I = result_;
  const std::size_t ne = I.elements.size(), nd = I.depths_A.size();
  std::vector<std::vector<double>> out(nd * ne, std::vector<double>(I.positions));
  for (std::size_t d = 0; d < nd; ++d)
    for (std::size_t p = 0; p < I.positions; ++p)
      for (std::size_t e = 0; e < ne; ++e) out[d * ne + e][p] = I.values[(d * I.positions + p) * ne + e];
  return out;
}

}  // namespace stemtwin
