#include "stemtwin/dataset/png.hpp"

#include <png.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

namespace stemtwin {

RgbImage to_rgb(const Image& image, double lo, double hi, int scale) {
  if (scale < 1) scale = 1;
  if (lo == hi && !image.data.empty()) {
    const auto [mn, mx] = std::minmax_element(image.data.begin(), image.data.end());
    lo = *mn;
    hi = *mx;
  }
  const double span = hi > lo ? hi - lo : 1.0;
  RgbImage out(image.nx * scale, image.ny * scale);
  for (std::size_t y = 0; y < out.height; ++y)
    for (std::size_t x = 0; x < out.width; ++x) {
      const double v = (image(y / scale, x / scale) - lo) / span;
      const auto g = static_cast<std::uint8_t>(std::clamp(v, 0.0, 1.0) * 255.0 + 0.5);
      out.set(x, y, g, g, g);
    }
  return out;
}

void write_png(const std::string& path, const RgbImage& image) {
  if (image.width == 0 || image.height == 0) throw std::runtime_error("write_png " + path + ": empty image");
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!file) throw std::runtime_error("write_png: cannot open '" + path + "' for writing");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("write_png: libpng initialisation failed");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("write_png: libpng failed writing '" + path + "'");
  }
  png_init_io(png, file.get());
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (std::size_t y = 0; y < image.height; ++y)
    png_write_row(png, const_cast<png_bytep>(&image.rgb[y * image.width * 3]));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
}

}  // namespace stemtwin
