#pragma once
// Per-pixel label masks from a sample's column table (labels.masks in the scenario).
//
// A column covers the pixels whose centres lie within the mask radius of its position
// (px, py) in image pixels — an ellipse of semi-axes radius/step_x, radius/step_y when
// the scan steps differ. Where columns overlap, the nearest one (in Å) gives the species.
#include <vector>

#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/core/image.hpp"

namespace stemtwin {

struct LabelMasks {
  Image columns;  ///< 1 inside any column's disk, 0 elsewhere (stored as uint8)
  Image species;  ///< species id + 1 of the nearest covering column, 0 elsewhere (stored as int16)
};

/// `radius` in Å; `step_x`, `step_y` the scan steps in Å per pixel.
LabelMasks rasterize_label_masks(const std::vector<ColumnLabel>& columns, std::size_t nx, std::size_t ny,
                                 double radius, double step_x, double step_y);

}  // namespace stemtwin
