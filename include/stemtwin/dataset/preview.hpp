#pragma once
// Pictures of a dataset that a person can read.
//
// Contact sheet (render_contact_sheet, `stemtwin preview`): a column per sample, a row per
// picture kind — every image channel, each label mask as a translucent overlay on the first
// channel, and for every 4D detector its mean pattern (log scale) and a virtual annular
// image. A header names each column (sample index and the sampled parameters) and each row
// (channel, detector angles); every scan tile carries a scale bar in Å; a legend lists the
// species that occur. Column markers (dots coloured by species) only when asked.
//
// Sample sheet (render_sample_sheet, `stemtwin show`): the same pictures of one sample in a
// grid, each captioned, with every parameter and the instrument settings listed beside them.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/png.hpp"

namespace stemtwin {

struct PreviewOptions {
  std::size_t samples = 8;  ///< columns (at most the dataset's size)
  int tile = 160;           ///< tile edge in screen pixels (at least 128)
  bool clean = false;       ///< draw /clean instead of /images
  bool markers = false;     ///< overlay the labelled columns as small dots
  int gap = 6;              ///< pixels between tiles
};

/// Colour of species id s (a fixed palette of 8 distinguishable colours, cycled).
std::array<std::uint8_t, 3> species_color(int species);

/// Smallest tile edge the pictures use, in screen pixels.
inline constexpr int kMinTile = 128;

RgbImage render_contact_sheet(const DatasetReader& reader, const PreviewOptions& options = {});
/// Renders and writes a PNG; throws on an empty dataset or a write error.
void write_preview(const DatasetReader& reader, const std::string& png_path, const PreviewOptions& options = {});

/// One sample (row of the file) with all its pictures, labels and parameters.
RgbImage render_sample_sheet(const DatasetReader& reader, std::size_t row, const PreviewOptions& options = {});

}  // namespace stemtwin
