#pragma once
// Internal to src/scenario: one sample's labels from its specimen and its scan as it happened
// (the runner, simulate_sample.cpp). Column positions go through the same scan mapping as the image.
#include <vector>

#include "stemtwin/acquisition/acquisition.hpp"
#include "stemtwin/core/image.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/specimen/specimen.hpp"

namespace stemtwin::detail {

/// Every column (and its periodic images) whose mapped position falls inside the image.
/// With spectrometers (layout.composition_elements) each label also carries its column's composition.
std::vector<ColumnLabel> column_labels(const Specimen& sp, const DistortedScan& ds, const ScanGeometry& g,
                                       const DatasetLayout& layout);

/// A label image sampled at the true probe positions: region classes from a fine region map.
Image region_at_positions(const Specimen& sp, const DistortedScan& ds);

}  // namespace stemtwin::detail
