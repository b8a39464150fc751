#pragma once
// Contact sheet of a dataset: the first samples' images side by side (a column per sample,
// a row per image channel), each tile scaled to its own min/max, with the labelled columns
// drawn as coloured dots (colour by species index; legend: species_color()).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "stemtwin/dataset.hpp"
#include "stemtwin/png.hpp"

namespace stemtwin {

struct PreviewOptions {
  std::size_t samples = 8;  ///< columns (at most the dataset's size)
  int tile = 96;            ///< minimum tile edge in screen pixels (integer upscaling of the image)
  bool clean = false;       ///< draw /clean instead of /images
  bool dots = true;         ///< overlay column labels
  int gap = 4;              ///< pixels between tiles
};

/// Colour of species id s (a fixed palette of 8 distinguishable colours, cycled).
std::array<std::uint8_t, 3> species_color(int species);

RgbImage render_contact_sheet(const DatasetReader& reader, const PreviewOptions& options = {});
/// Renders and writes a PNG; throws on an empty dataset or a write error.
void write_preview(const DatasetReader& reader, const std::string& png_path, const PreviewOptions& options = {});

}  // namespace stemtwin
