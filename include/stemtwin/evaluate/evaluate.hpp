#pragma once
// Scoring a model's predictions against a stemtwin dataset, broken down by every sampled
// parameter, and a simple non-learned baseline that writes predictions in the same format.
// File formats, metric definitions and the matching rule: docs/evaluate.md.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "stemtwin/core/image.hpp"
#include "stemtwin/evaluate/metrics.hpp"

namespace stemtwin {

struct EvaluateOptions {
  double tolerance = 0.5;               ///< column matching radius
  std::string tolerance_unit = "A";     ///< "A" (Å) or "px"
  std::size_t bins = 4;                 ///< quantile bins per parameter
  std::map<std::string, std::vector<double>> edges;  ///< given bin edges per parameter
  std::vector<std::string> params;      ///< parameters to break down by (empty: all of /params)
};

/// Metrics of a set of samples, flattened to "group.metric" keys, e.g. "detection.f1",
/// "classification.recall.<class>", "segmentation.<mask>.iou.<k>", "regression.<name>.mae".
/// NaN marks a metric with a zero denominator.
using MetricMap = std::map<std::string, double>;

struct BinResult {
  double lo = 0, hi = 0;  ///< [lo, hi), the last bin closed
  double mean = 0;        ///< mean parameter value of the bin's samples (NaN when empty); plots use it as x
  std::size_t n_samples = 0;
  MetricMap metrics;
};

struct Breakdown {
  std::string param;
  std::string binning;  ///< "quantile", "distinct" (one bin per value) or "edges" (given)
  std::vector<double> edges;
  std::vector<BinResult> bins;
  std::size_t n_outside = 0;  ///< samples outside the edges (or with a non-finite value)
};

struct Report {
  std::string dataset_path, predictions_path;
  EvaluateOptions options;
  std::size_t n_samples = 0;
  std::vector<std::string> warnings;

  // Overall results (the tasks the predictions file holds).
  bool has_detection = false;
  std::string coordinate_frame;  ///< "A" or "px": the frame predictions and truth were compared in
  metrics::DetectionCounts detection;  ///< sum_sq_error in Å², sum_sq_error_alt in px² (0 when the unit is unknown)
  bool has_classification = false;
  std::vector<std::string> class_names;
  metrics::Confusion confusion;
  std::map<std::string, metrics::SegmentationCounts> segmentation;  ///< per mask name
  std::map<std::string, metrics::RegressionCounts> regression;      ///< per scalar name
  MetricMap overall;

  std::vector<Breakdown> breakdowns;
};

/// Scores `predictions_path` (HDF5 or .csv) against the labels of `dataset_path`.
/// Throws std::runtime_error ("<file>: <dataset path>: <problem>") for unreadable or
/// inconsistent files, std::invalid_argument for bad options.
Report evaluate(const std::string& dataset_path, const std::string& predictions_path,
                const EvaluateOptions& options = {});

/// Writes report.json, report.csv and one PNG per (parameter, metric group) into `dir`
/// (created if needed). Returns the paths written.
std::vector<std::string> write_report(const Report& report, const std::string& dir);

// --- baseline -------------------------------------------------------------------------------

struct BaselineOptions {
  std::string detector;       ///< /images/<detector>; empty: the first whose name contains "haadf", else the first
  bool use_clean = false;     ///< read /clean/<detector> instead of the noisy image
  double sigma_px = 1.0;      ///< Gaussian smoothing before peak finding (0: none)
  double threshold = 0.5;     ///< a peak must exceed min + threshold·(max − min) of the smoothed image
  int min_distance_px = 2;    ///< a peak is the maximum of its (2r+1)² neighbourhood
  std::vector<double> class_thresholds;  ///< mean-intensity thresholds; empty: quantiles (see docs)
};

struct BaselineSummary {
  std::string detector;
  std::size_t n_samples = 0, n_columns = 0;
  bool wrote_classes = false;
  std::vector<double> class_thresholds;
};

/// Column positions (pixels, x fast) of one image: local maxima of the Gaussian-smoothed image
/// above the threshold, refined to sub-pixel precision by a least-squares quadratic fit to the
/// 3×3 neighbourhood of the maximum.
std::vector<metrics::Point> detect_columns(const Image& image, const BaselineOptions& options = {});

/// Runs the baseline over every sample and writes an HDF5 predictions file (/columns with
/// x_px/y_px, and /class when the dataset has class labels).
BaselineSummary run_baseline(const std::string& dataset_path, const std::string& out_path,
                             const BaselineOptions& options = {});

}  // namespace stemtwin
