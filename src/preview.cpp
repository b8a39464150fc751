#include "stemtwin/preview.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace stemtwin {

std::array<std::uint8_t, 3> species_color(int s) {
  // Okabe–Ito palette (colour-blind safe), cycled.
  static const std::array<std::uint8_t, 3> p[8] = {{230, 159, 0},  {86, 180, 233}, {0, 158, 115}, {240, 228, 66},
                                                   {0, 114, 178},  {213, 94, 0},   {204, 121, 167}, {255, 255, 255}};
  const int n = 8;
  return p[((s % n) + n) % n];
}

RgbImage render_contact_sheet(const DatasetReader& reader, const PreviewOptions& o) {
  const auto& L = reader.layout();
  const std::size_t cols = std::min(o.samples, reader.size());
  const auto channels = reader.detectors();
  if (cols == 0) throw std::runtime_error("preview: the dataset has no complete samples");
  if (channels.empty()) throw std::runtime_error("preview: the dataset has no image channels");
  const int scale = std::max(1, static_cast<int>(std::ceil(static_cast<double>(o.tile) /
                                                           static_cast<double>(std::max(L.nx, L.ny)))));
  const std::size_t tw = L.nx * static_cast<std::size_t>(scale), th = L.ny * static_cast<std::size_t>(scale);
  const std::size_t g = static_cast<std::size_t>(std::max(0, o.gap));
  RgbImage sheet(cols * tw + (cols + 1) * g, channels.size() * th + (channels.size() + 1) * g, 40);
  const int radius = std::max(2, static_cast<int>(0.4 * scale));
  for (std::size_t c = 0; c < cols; ++c) {
    const auto labels = o.dots ? reader.columns(c) : std::vector<ColumnLabel>{};
    for (std::size_t r = 0; r < channels.size(); ++r) {
      const Image im = o.clean && L.store_clean ? reader.clean(channels[r], c) : reader.image(channels[r], c);
      const RgbImage tile = to_rgb(im, 0, 0, scale);
      const std::size_t x0 = g + c * (tw + g), y0 = g + r * (th + g);
      for (std::size_t y = 0; y < th; ++y)
        std::copy_n(&tile.rgb[y * tw * 3], tw * 3, &sheet.rgb[((y0 + y) * sheet.width + x0) * 3]);
      for (const auto& l : labels) {
        // pixel centres at integer px: screen centre of pixel i is (i + 0.5)·scale
        const double cx = (l.px + 0.5) * scale, cy = (l.py + 0.5) * scale;
        const auto col = species_color(l.species);
        for (int dy = -radius; dy <= radius; ++dy)
          for (int dx = -radius; dx <= radius; ++dx) {
            if (dx * dx + dy * dy > radius * radius) continue;
            const long x = std::lround(cx) + dx, y = std::lround(cy) + dy;
            if (x < 0 || y < 0 || x >= static_cast<long>(tw) || y >= static_cast<long>(th)) continue;
            sheet.set(x0 + static_cast<std::size_t>(x), y0 + static_cast<std::size_t>(y), col[0], col[1], col[2]);
          }
      }
    }
  }
  return sheet;
}

void write_preview(const DatasetReader& reader, const std::string& png_path, const PreviewOptions& options) {
  write_png(png_path, render_contact_sheet(reader, options));
}

}  // namespace stemtwin
