// The inelastic recorder on PRISM (SliceObserver::read_pixels / observe_intensities):
// PRISM hands it |ψ|² at the pixels of its footprints instead of whole waves.
// spectroscopy.hpp, slice_observer.hpp, prism_observe.cpp.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "stemtwin/physics/spectroscopy.hpp"

namespace stemtwin {

std::vector<std::vector<std::vector<std::uint32_t>>> SliceObserver::read_pixels() {
  throw std::invalid_argument("this slice observer reads only whole waves: PRISM cannot pass it intensities at pixels "
                              "(use method multislice)");
}

void SliceObserver::observe_intensities(std::size_t, std::size_t, std::size_t, double, const float*) {
  throw std::logic_error("slice observer: observe_intensities without read_pixels");
}

std::vector<std::vector<std::vector<std::uint32_t>>> InelasticRecorder::read_pixels() {
  if (nx_ == 0) throw std::logic_error("inelastic recorder: read_pixels before begin");
  std::vector<std::vector<std::vector<std::uint32_t>>> pixels(footprints_.size());
  for (std::size_t c = 0; c < footprints_.size(); ++c) {
    pixels[c].resize(footprints_[c].size());
    for (std::size_t s = 0; s < footprints_[c].size(); ++s) {
      std::vector<std::uint32_t>& p = pixels[c][s];
      for_each_pixel(c, s, [&](std::uint32_t q) { p.push_back(q); });
      std::sort(p.begin(), p.end());
      p.erase(std::unique(p.begin(), p.end()), p.end());
    }
  }
  index_pixels(pixels);
  return pixels;
}

void InelasticRecorder::index_pixels(const std::vector<std::vector<std::vector<std::uint32_t>>>& pixels) {
  if (nx_ == 0) throw std::logic_error("inelastic recorder: index_pixels before begin");
  if (pixels.size() != footprints_.size())
    throw std::invalid_argument("inelastic recorder: pixel lists for " + std::to_string(pixels.size()) + " configurations, not " +
                                std::to_string(footprints_.size()));
  slots_.assign(footprints_.size(), {});
  for (std::size_t c = 0; c < footprints_.size(); ++c) {
    if (pixels[c].size() != footprints_[c].size())
      throw std::invalid_argument("inelastic recorder: pixel lists for " + std::to_string(pixels[c].size()) + " waves, not " +
                                  std::to_string(footprints_[c].size()));
    slots_[c].resize(footprints_[c].size());
    for (std::size_t s = 0; s < footprints_[c].size(); ++s) {
      const std::vector<std::uint32_t>& p = pixels[c][s];
      std::vector<std::uint32_t>& slot = slots_[c][s];
      for_each_pixel(c, s, [&](std::uint32_t q) {
        const auto it = std::lower_bound(p.begin(), p.end(), q);
        if (it == p.end() || *it != q)
          throw std::invalid_argument("inelastic recorder: pixel " + std::to_string(q) + " of wave " + std::to_string(s) +
                                      " is missing from the list it is to read");
        slot.push_back(std::uint32_t(it - p.begin()));
      });
    }
  }
}

void InelasticRecorder::observe_intensities(std::size_t position, std::size_t configuration, std::size_t slice, double weight,
                                            const float* intensity) {
  if (slots_.empty()) throw std::logic_error("inelastic recorder: observe_intensities before read_pixels");
  if (depths_of_slice_[slice == 0 ? 0 : slice - 1].empty()) return;  // below every recording depth, as observe()
  const std::size_t ne = result_.elements.size(), stride = result_.positions * ne;
  double* out = result_.values.data() + position * ne;
  const float* wts = weights_[configuration].data();
  const std::uint32_t* slot = slots_[configuration][slice].data();
  for (const Footprint& f : footprints_[configuration][slice]) {
    const float* wx = wts + f.weights;
    const float* wy = wx + f.nx_span;
    // The same sums in the same order and precision as observe() (float rows, double total).
    double acc = 0;
    for (std::size_t j = 0; j < f.ny_span; ++j) {
      float sum = 0;
      for (std::size_t i = 0; i < f.nx_span; ++i) sum += wx[i] * intensity[*slot++];
      acc += double(wy[j]) * double(sum);
    }
    const double v = weight * f.scale * acc;
    for (std::uint32_t d : depths_of_slice_[f.slice]) out[d * stride + f.element] += v;
  }
}

}  // namespace stemtwin
