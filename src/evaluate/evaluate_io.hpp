#pragma once
// The one place where evaluate/baseline touch HDF5: reading a stemtwin dataset's labels and
// images, reading and writing prediction files. Adapting to a changed dataset layout means
// editing the path constants at the top of evaluate_io.cpp and nothing else.
//
// Every error is a std::runtime_error of the form "<file>: <dataset path>: <problem>".
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stemtwin/core/image.hpp"

namespace stemtwin::evalio {

/// Parallel per-column arrays. A coordinate pair is present when its datasets exist (they
/// may have zero rows); an absent pair has empty vectors.
struct ColumnTable {
  std::vector<std::int64_t> sample;
  std::vector<double> x_A, y_A, x_px, y_px;
  std::vector<int> species;  ///< empty when absent
  bool A_present = false, px_present = false;
  std::size_t size() const { return sample.size(); }
  bool has_A() const { return A_present; }
  bool has_px() const { return px_present; }
};

/// A per-pixel label image of one sample.
struct LabelImage {
  std::size_t ny = 0, nx = 0;
  std::vector<int> data;
};

/// Shape of a 3-D per-sample dataset [n, ny, nx].
struct Shape3 {
  std::size_t n = 0, ny = 0, nx = 0;
};

class H5Reader;  // RAII file handle + typed reads (defined in evaluate_io.cpp)

/// Read access to a stemtwin dataset (the ground truth).
class DatasetReader {
 public:
  explicit DatasetReader(const std::string& path);
  ~DatasetReader();
  DatasetReader(const DatasetReader&) = delete;
  DatasetReader& operator=(const DatasetReader&) = delete;

  const std::string& path() const;
  /// Samples to evaluate: the root attribute `complete_samples` when present, else the
  /// length of the first per-sample dataset found.
  std::size_t n_samples() const { return n_samples_; }
  /// Pixel size in Å as {x, y}; a scalar attribute gives {s, s}.
  std::optional<std::array<double, 2>> pixel_size_A() const;

  std::vector<std::string> param_names() const;
  std::vector<double> param(const std::string& name) const;  ///< first n_samples() values

  bool has_classes() const;
  std::vector<int> classes() const;  ///< first n_samples() values
  std::vector<std::string> class_names() const;  ///< from the `names` attribute; may be empty

  bool has_columns() const;
  ColumnTable columns() const;  ///< rows with sample < n_samples()

  std::vector<std::string> mask_names() const;
  Shape3 mask_shape(const std::string& name) const;
  LabelImage mask(const std::string& name, std::size_t sample) const;

  std::vector<std::string> detectors() const;
  Shape3 image_shape(const std::string& detector) const;
  Image image(const std::string& detector, std::size_t sample, bool clean = false) const;

 private:
  std::unique_ptr<H5Reader> h5_;
  std::size_t n_samples_ = 0;
};

/// Read access to a predictions file (HDF5, or CSV with columns only).
class PredictionsReader {
 public:
  explicit PredictionsReader(const std::string& path);
  ~PredictionsReader();
  PredictionsReader(const PredictionsReader&) = delete;
  PredictionsReader& operator=(const PredictionsReader&) = delete;

  const std::string& path() const { return path_; }
  bool is_csv() const { return !h5_; }

  bool has_columns() const;
  /// Validated table: `sample` plus x_A/y_A or x_px/y_px (x_A/y_A win when both are given).
  ColumnTable columns() const;
  bool has_classes() const;
  std::vector<int> classes() const;
  std::vector<std::string> mask_names() const;
  Shape3 mask_shape(const std::string& name) const;
  LabelImage mask(const std::string& name, std::size_t sample) const;
  std::vector<std::string> scalar_names() const;
  std::vector<double> scalar(const std::string& name) const;

 private:
  std::string path_;
  std::unique_ptr<H5Reader> h5_;
  std::optional<ColumnTable> csv_columns_;
};

/// What a predictions file may hold (written by `stemtwin baseline` and by tests).
struct Predictions {
  bool with_columns = false;  ///< write /columns (even with zero rows)
  ColumnTable columns;        ///< coordinate pairs written when present
  std::vector<int> classes;  ///< written as /class when non-empty
  std::string method;        ///< root attribute `method`
};
/// Writes an HDF5 predictions file; throws std::runtime_error naming the path on failure.
void write_predictions(const std::string& path, const Predictions& p);

}  // namespace stemtwin::evalio
