#pragma once
// What every exporter reads: the selected arrays of a stemtwin file with their axes
// (axes.hpp), one sample row at a time, and the instrument parameters of each row.
// Internal to src/ (export_*.cpp).
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stemtwin/dataset/axes.hpp"
#include "stemtwin/dataset/dataset.hpp"
#include "stemtwin/dataset/hdf5.hpp"
#include "stemtwin/dataset/instrument.hpp"

namespace stemtwin::exporting {

/// Microscope settings per exported row, from /instrument (empty for a file without it).
struct Instrument {
  std::vector<double> energy_eV, convergence_mrad, current_pA, dwell_us;
  std::vector<DetectorSettings> detectors;  ///< of the first row (angles may be sampled: see params)
};

struct Source {
  std::string path;
  h5::Handle file;
  DatasetLayout layout;
  std::string scenario_text;
  std::size_t rows = 0;
  std::vector<double> indices;  ///< global sample index of each row
  Calibration calibration;
  std::vector<ArrayInfo> arrays;  ///< the selected arrays
  Instrument instrument;
  std::vector<std::pair<std::string, std::vector<double>>> params;  ///< /params columns, one value per row

  /// Elements of one row of `a` (the product of its non-sample axes).
  std::size_t row_size(const ArrayInfo& a) const;
  /// One row of `a` as float (masks too: their values are small integers).
  std::vector<float> read(const ArrayInfo& a, std::size_t row) const;
  /// The detector settings of the detector that produced `a` (nullptr: none known).
  const DetectorSettings* detector_of(const ArrayInfo& a) const;
  /// The spectrometer (its layout: settings, maps) of a spectrum image `a` (nullptr: not a
  /// spectrum image, or a file whose layout does not list it). export_spectra.cpp.
  const SpectraLayout* spectrometer_of(const ArrayInfo& a) const;
};

/// Opens a stemtwin file and selects arrays (see ExportOptions::channels).
Source open_source(const std::string& path, const std::vector<std::string>& channels, bool default_masks);

/// The value every element shares (within 1e-9 relative), or none.
std::optional<double> common(const std::vector<double>& v);

/// Title of an array in an export: its name, "<name>_clean" for noise-free images, "mask_<name>" for masks.
std::string title_of(const ArrayInfo& a);

/// Removes an existing output when `force`, else throws naming it.
void prepare_output(const std::string& path, bool force);

/// The spectroscopy arrays of the file (export_spectra.cpp): spectrum images /spectra/<det>
/// with their energy axes, then element maps /maps/<det>/<map> as images "<det>_<map>", then
/// the clean maps /clean/maps/<det>/<map> (ArrayKind::Clean). Throws naming the file and the
/// array when one is misshapen or a spectrum image lacks its energy axis.
std::vector<ArrayInfo> spectroscopy_arrays(const Source& source);
/// HyperSpy metadata of a spectrum image (nothing for other arrays): Sample.elements and, for
/// EDS, Sample.xray_lines from its maps' names; the spectrometer's settings in
/// Acquisition_instrument.TEM.Detector.EDS (energy_resolution_MnKa, elevation_angle,
/// solid_angle, and the dwell as live_time) or .Detector.EELS (collection_angle).
void write_hspy_sample(hid_t metadata, const Source& source, const ArrayInfo& array);

void write_hspy(const Source& source, const std::string& output);
void write_emd(const Source& source, const std::string& output);
void write_nsid(const Source& source, const std::string& output, std::size_t row);
void write_zarr(const Source& source, const std::string& output);

}  // namespace stemtwin::exporting
