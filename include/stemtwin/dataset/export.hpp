#pragma once
// Exports of a stemtwin dataset into the file formats of the field's tools (docs/export.md):
//
//   hspy  HyperSpy 3.1 (.hspy): one signal per array under /Experiments/<title>, images as
//         Signal2D stacks (navigation: sample), 4D as `electron_diffraction` (navigation:
//         sample, y, x; signal: ky, kx), spectra as EDS_TEM/EELS, calibrated axes, metadata
//         under HyperSpy's standard keys.
//   emd   EMD 1.0 as py4DSTEM/emdfile read it: one root group, Array nodes for images,
//         one DataCube node per sample for 4D, and metadatabundle/calibration (R/Q pixel sizes).
//   nsid  pycroscopy NSID (pyNSID / SciFiReaders.NSIDReader, DTMicroscope's register_data):
//         one sample, /Measurement_000/Channel_NNN/<name> with H5DS dimensions.
//   zarr  zarr v2 directory store (uncompressed chunks, one sample per chunk), with
//         xarray's _ARRAY_DIMENSIONS and units in .zattrs.
//
// Every exporter takes its axes and units from the one table in axes.hpp.
#include <cstddef>
#include <string>
#include <vector>

namespace stemtwin {

enum class ExportFormat { Hspy, Emd, Nsid, Zarr };

/// "hspy", "emd", "nsid", "zarr" (case-insensitive); throws std::invalid_argument listing them.
ExportFormat parse_export_format(const std::string& text);
const char* to_string(ExportFormat format);

struct ExportOptions {
  ExportFormat format = ExportFormat::Hspy;
  /// Arrays to export by name ("haadf", a diffraction/radial/spectrum detector, a mask) or
  /// path ("clean/haadf"); empty: every acquired image, radial, diffraction and spectrum
  /// array and every mask (NSID: no masks).
  std::vector<std::string> channels;
  std::size_t sample = 0;  ///< NSID: the row (sample of the file) to export
  bool force = false;      ///< overwrite an existing output
};

struct ExportReport {
  std::vector<std::string> arrays;  ///< paths of the exported arrays in the input
  std::size_t samples = 0;          ///< rows exported
};

/// Exports `input` (a stemtwin dataset) to `output`. Throws std::runtime_error naming the
/// file and dataset on any problem (an unknown channel lists those available).
ExportReport export_dataset(const std::string& input, const std::string& output, const ExportOptions& options);

}  // namespace stemtwin
