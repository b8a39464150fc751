#pragma once
// PNG output for previews and reports (libpng).
#include <cstdint>
#include <string>
#include <vector>

#include "stemtwin/core/image.hpp"

namespace stemtwin {

/// 8-bit RGB picture, row-major, 3 bytes per pixel.
struct RgbImage {
  std::size_t width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
  RgbImage() = default;
  RgbImage(std::size_t w, std::size_t h, std::uint8_t fill = 0) : width(w), height(h), rgb(w * h * 3, fill) {}
  void set(std::size_t x, std::size_t y, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    if (x >= width || y >= height) return;
    std::uint8_t* p = &rgb[(y * width + x) * 3];
    p[0] = r, p[1] = g, p[2] = b;
  }
};

/// Grey-scale rendering of an image between lo and hi (lo == hi: the image's min/max),
/// each image pixel drawn as scale × scale screen pixels.
RgbImage to_rgb(const Image& image, double lo = 0, double hi = 0, int scale = 1);

/// Writes an RGB picture; throws std::runtime_error naming the path on failure.
void write_png(const std::string& path, const RgbImage& image);

}  // namespace stemtwin
