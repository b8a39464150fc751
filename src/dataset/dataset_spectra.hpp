#pragma once
// Internal: the spectroscopy part of the dataset writer and reader (dataset.hpp): spectrum
// images, element maps, composition labels. Called from dataset.cpp / dataset_reader.cpp.
#include <functional>
#include <string>
#include <vector>

#include <hdf5.h>

#include "stemtwin/dataset/dataset.hpp"

namespace stemtwin::detail {

/// Per-sample datasets (first dimension = rows) of the spectroscopy part.
std::vector<std::string> spectra_per_sample_paths(const DatasetLayout& l);
/// Throws std::invalid_argument("dataset layout: …") for bad names or axes.
void validate_spectra(const DatasetLayout& l);
/// Creates the datasets, energy axes (/axes/<name>/energy_eV, a dimension scale) and units.
void create_spectra(hid_t file, const DatasetLayout& l);
/// Throws std::invalid_argument(who + …) when a record lacks or misshapes a spectroscopy array.
void check_spectra(const SampleRecord& r, const DatasetLayout& l, const std::string& who);
/// Appends the record's spectroscopy rows through `append(path, memtype, data)`.
void append_spectra(const SampleRecord& r, const DatasetLayout& l,
                    const std::function<void(const std::string&, hid_t, const void*)>& append);
/// Reads a row's spectroscopy arrays into `r`.
void read_spectra(hid_t file, const DatasetLayout& l, std::size_t row, SampleRecord& r);
/// The column composition: /labels/columns/composition/<Element>, 1-D like the rest of the
/// column table (one row per labelled column), present when columns and elements are.
bool has_column_composition(const DatasetLayout& l);
std::vector<std::string> column_composition_paths(const DatasetLayout& l);

}  // namespace stemtwin::detail
