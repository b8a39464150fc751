#pragma once
// Scoring predictions against ground truth: pure functions, no I/O.
//
// Atom-column detection
//   A predicted column and a true column may be matched only when their distance is at most
//   `tolerance` (same unit as the coordinates). Among all one-to-one assignments using such
//   pairs, match_columns returns one that (1) has the largest number of matched pairs and,
//   among those, (2) the smallest sum of distances. It is solved exactly by the Hungarian
//   algorithm on the distance matrix in which every pair beyond the tolerance costs
//   BIG = tolerance·(min(n_true, n_pred) + 1) — more than any complete set of admissible
//   pairs — so trading a match for any saving in distance never pays. The bipartite graph of
//   admissible pairs is split into connected components first and each is solved on its own
//   (the optimum decomposes), so large images with well separated columns cost ~O(n).
//   match_columns_greedy (closest admissible pair first) is provided for comparison only.
//
// Aggregation over many samples is "micro": counts (TP/FP/FN, pixels, squared errors) are
// summed over the samples and the ratios are taken at the end. A ratio with a zero
// denominator is NaN (written as null in JSON, empty in CSV).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace stemtwin::metrics {

// --- detection ----------------------------------------------------------------------------

struct Point {
  double x = 0, y = 0;
  int species = 0;  ///< Z of the dominant species; 0 = unknown / not predicted
};

struct Match {
  std::size_t truth = 0, pred = 0;  ///< indices into the truth and prediction lists
  double distance = 0;
};

/// Optimal one-to-one matching within `tolerance` (rule in the file comment). Matches are
/// sorted by truth index. Throws std::invalid_argument when tolerance is not > 0 and finite.
std::vector<Match> match_columns(const std::vector<Point>& truth, const std::vector<Point>& pred,
                                 double tolerance);
/// Greedy matching: admissible pairs in increasing distance, each taken if both ends are free.
std::vector<Match> match_columns_greedy(const std::vector<Point>& truth, const std::vector<Point>& pred,
                                        double tolerance);

/// Hungarian algorithm (minimum-cost assignment) on a rows × cols cost matrix (row-major)
/// with rows <= cols: returns, for each row, the assigned column. Exposed for tests.
std::vector<std::size_t> hungarian(const std::vector<double>& cost, std::size_t rows, std::size_t cols);

/// Summable detection tallies (one sample, or many added together).
struct DetectionCounts {
  std::size_t true_positives = 0, false_positives = 0, false_negatives = 0;
  double sum_sq_error = 0;         ///< Σ squared matched distance, unit of the first metric
  double sum_sq_error_alt = 0;     ///< the same in the alternative unit (Å ↔ px), if known
  std::size_t species_compared = 0, species_correct = 0;
  DetectionCounts& operator+=(const DetectionCounts& o);
};

/// Counts from one matching. `sq_alt` optionally gives each match's squared distance in the
/// alternative unit (same order as `matches`); species are compared where both are > 0.
DetectionCounts detection_counts(const std::vector<Point>& truth, const std::vector<Point>& pred,
                                 const std::vector<Match>& matches, const std::vector<double>& sq_alt = {});

struct DetectionMetrics {
  double precision = 0, recall = 0, f1 = 0;
  double rmse = 0, rmse_alt = 0;  ///< localisation RMSE over matched pairs (two units)
  double species_accuracy = 0;    ///< NaN when no matched pair carries a predicted species
};
DetectionMetrics detection_metrics(const DetectionCounts& c);

// --- classification -----------------------------------------------------------------------

/// K × K counts, row = true class, column = predicted class.
struct Confusion {
  std::size_t k = 0;
  std::vector<std::size_t> counts;  ///< counts[truth·k + pred]
  explicit Confusion(std::size_t k_ = 0) : k(k_), counts(k_ * k_, 0) {}
  std::size_t& at(std::size_t truth, std::size_t pred) { return counts[truth * k + pred]; }
  std::size_t at(std::size_t truth, std::size_t pred) const { return counts[truth * k + pred]; }
  std::size_t total() const;
};
/// Confusion matrix of k classes; throws std::invalid_argument for a length mismatch or an
/// id outside [0, k).
Confusion confusion(const std::vector<int>& truth, const std::vector<int>& pred, std::size_t k);

struct ClassificationMetrics {
  double accuracy = 0;
  std::vector<double> precision, recall;  ///< per class (NaN where the denominator is 0)
};
ClassificationMetrics classification_metrics(const Confusion& c);

// --- segmentation -------------------------------------------------------------------------

/// Per-class pixel tallies: intersection, true pixels, predicted pixels.
struct SegmentationCounts {
  std::vector<std::uint64_t> intersection, truth, pred;  ///< indexed by class id
  void resize(std::size_t k);
  SegmentationCounts& operator+=(const SegmentationCounts& o);
};
/// Tallies of one label image pair (equal sizes; labels >= 0, the vectors grow to the largest).
SegmentationCounts segmentation_counts(const std::vector<int>& truth, const std::vector<int>& pred);

struct SegmentationMetrics {
  std::vector<double> iou, dice;  ///< per class; NaN for a class in neither image
  double mean_iou = 0, mean_dice = 0;  ///< over the classes that are not NaN
};
SegmentationMetrics segmentation_metrics(const SegmentationCounts& c);

// --- scalar regression --------------------------------------------------------------------

struct RegressionCounts {
  std::size_t n = 0;
  double sum_abs = 0, sum_sq = 0, sum_err = 0;  ///< of error = prediction − truth
  void add(double truth, double pred);
  RegressionCounts& operator+=(const RegressionCounts& o);
};
struct RegressionMetrics {
  double mae = 0, rmse = 0, bias = 0;  ///< bias = mean(prediction − truth)
};
RegressionMetrics regression_metrics(const RegressionCounts& c);

// --- binning ------------------------------------------------------------------------------

/// Bin i is [edges[i], edges[i+1]) and the last bin is closed: [edges[n-1], edges[n]].
/// Edges must be finite and strictly increasing (at least two); the one exception is the
/// single degenerate bin {v, v}, which holds exactly the value v.
///
/// Quantile edges of `nbins` bins: the k/nbins quantiles (linear interpolation between order
/// statistics, "type 7"); repeated edges are merged, so ties can give fewer bins. When the
/// values take at most `nbins` distinct values, each distinct value gets its own bin (edges at
/// midpoints), which suits parameters drawn from `choice` or `sweep`. Non-finite values are
/// ignored; all-equal values give the single bin [v, v].
std::vector<double> quantile_edges(const std::vector<double>& values, std::size_t nbins);
/// Bin index of each value under `edges`, or -1 for a value outside [edges.front(), edges.back()]
/// or not finite. Throws std::invalid_argument for invalid edges.
std::vector<int> assign_bins(const std::vector<double>& values, const std::vector<double>& edges);
/// Number of values in each bin.
std::vector<std::size_t> bin_counts(const std::vector<int>& bins, std::size_t nbins);

}  // namespace stemtwin::metrics
