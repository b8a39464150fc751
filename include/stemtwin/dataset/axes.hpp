#pragma once
// The one table of what every array in a dataset means: its units, long name and the
// calibrated axes of each dimension. The dataset writer turns it into HDF5 dimension scales
// and attributes; the exporters (export.hpp) into HyperSpy axes, EMD dims, NSID dimensions
// and zarr attributes; `stemtwin info` prints it. Change a unit here and every reader follows.
//
// Axes (docs/dataset.md, "Axes and units"):
//   sample     /params/sample_index (global sample index, dimensionless)
//   y, x       scan position, Å (origin: the first scan position), when every sample shares
//              the scan step (root attribute pixel_size_A); otherwise scan pixels
//   ky, kx     scattering angle, mrad (zero in the middle pixel); also 1/Å when every sample
//              shares the beam energy (k = θ/λ)
//   angle      radial bin centre, mrad
//   energy     eV, from the dataset /axes/<detector>/energy_eV (spectra)
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/dataset/dataset.hpp"

namespace stemtwin {

/// One calibrated dimension of an array.
struct AxisInfo {
  std::string name;            ///< short name: sample, y, x, ky, kx, angle, energy
  std::string long_name;       ///< for people and plots: "scan y", "scattering angle ky"
  std::string units;           ///< "Å", "mrad", "eV", "px", "" (dimensionless)
  std::string quantity;        ///< NSID quantity: "length", "scattering angle", "energy", "index"
  std::string dimension_type;  ///< NSID dimension_type: SPATIAL, RECIPROCAL, SPECTRAL, TEMPORAL, UNKNOWN
  bool navigate = false;       ///< a navigation (not a signal) axis in HyperSpy's sense
  std::size_t size = 0;
  double offset = 0, scale = 1;  ///< value of index i = offset + i·scale (uniform axes)
  std::vector<double> values;    ///< explicit values (non-uniform: sample indices); empty = uniform
  /// A second calibration of the same dimension (ky/kx in 1/Å); empty name = none.
  std::string alt_name, alt_units;
  double alt_scale = 0, alt_offset = 0;

  double value(std::size_t i) const { return values.empty() ? offset + static_cast<double>(i) * scale : values[i]; }
  std::vector<double> all_values() const;
  /// Path of this axis's dimension-scale dataset in a stemtwin file ("" = /params/sample_index).
  std::string scale_path;
  std::string alt_scale_path;
};

enum class ArrayKind { Image, Clean, Radial, Diffraction, Mask, Spectrum };

/// One array of a dataset with everything a reader needs to calibrate it.
struct ArrayInfo {
  ArrayKind kind = ArrayKind::Image;
  std::string path;       ///< in the stemtwin file, e.g. "images/haadf"
  std::string name;       ///< channel or detector name
  std::string long_name;  ///< "haadf image (acquired)"
  std::string units;      ///< units of the values
  std::string quantity;   ///< NSID quantity of the values
  std::vector<AxisInfo> axes;  ///< one per dimension, the first the sample axis
  std::vector<std::string> value_names;  ///< masks: meaning of value v; empty otherwise
  std::string technique;  ///< spectra: "EDS" or "EELS" (attribute `technique`), else ""
};

/// The calibrations of a dataset's arrays: the pixel size and, from the layout's instrument, the
/// beam energy when every sample shares it and the units of each image channel.
struct Calibration {
  std::optional<double> energy_eV;  ///< fixed beam energy; none when sampled or unknown
  std::vector<double> pixel_size_A; ///< (x, y), from the layout when fixed
  /// Units of each image channel's values, acquired and clean (from the scenario's
  /// detectors and acquisition; channels not named here get the generic units).
  std::map<std::string, std::string> acquired_units, clean_units;
};

/// The calibrations a layout carries (DatasetLayout::instrument, decided by the scenario
/// layer when the file was made). A layout without them — a file from before /instrument or
/// a hand-made one — gives no energy (the k axes are then in mrad only) and generic units.
Calibration calibration_for(const DatasetLayout& layout);

/// Names of what the values of a mask mean: `values` of the layout, or for the species
/// mask (species id + 1, 0 background) "background" followed by the layout's species.
std::vector<std::string> mask_value_names(const MaskLayout& mask, const DatasetLayout& layout);

/// Every array of the layout (images, clean, radial, diffraction, masks), with `rows`
/// samples (the first axis; sample indices as its values when given).
std::vector<ArrayInfo> dataset_arrays(const DatasetLayout& layout, const Calibration& calibration, std::size_t rows,
                                      const std::vector<double>& sample_indices = {});

/// A spectrum array /spectra/<name> [N, ny, nx, channels] with its energy axis (eV values).
ArrayInfo spectrum_array(const DatasetLayout& layout, const Calibration& calibration, const std::string& name,
                         std::size_t rows, const std::vector<double>& energy_eV, const std::string& technique,
                         const std::vector<double>& sample_indices = {});

/// Writes the /axes datasets, makes them dimension scales and attaches them (with
/// /params/sample_index for the sample axis), labels every dimension, and writes the
/// `long_name`, `units` (and masks' `values`) attributes, to a freshly created file.
/// `file` is an open hid_t of the file (the caller owns it).
void write_dimension_scales(std::int64_t file, const DatasetLayout& layout, const Calibration& calibration);

const char* to_string(ArrayKind kind);

}  // namespace stemtwin
