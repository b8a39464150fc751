#include "stemtwin/evaluate/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <stdexcept>
#include <tuple>

namespace stemtwin::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(double num, double den) { return den > 0 ? num / den : kNaN; }

void check_tolerance(double tolerance) {
  if (!(tolerance > 0) || !std::isfinite(tolerance))
    throw std::invalid_argument("match_columns: tolerance must be a positive finite number, got " +
                                std::to_string(tolerance));
}

double dist(const Point& a, const Point& b) { return std::hypot(a.x - b.x, a.y - b.y); }

struct Pair {
  std::size_t t, p;
  double d;
};

// Every (truth, prediction) pair within tolerance: predictions sorted by x, then a window
// [x − tol, x + tol] per truth column, so well separated columns cost O(n log n).
std::vector<Pair> admissible_pairs(const std::vector<Point>& truth, const std::vector<Point>& pred,
                                   double tolerance) {
  std::vector<std::size_t> order(pred.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return pred[a].x < pred[b].x; });
  std::vector<double> xs(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) xs[i] = pred[order[i]].x;
  std::vector<Pair> pairs;
  for (std::size_t t = 0; t < truth.size(); ++t) {
    auto lo = std::lower_bound(xs.begin(), xs.end(), truth[t].x - tolerance);
    for (auto it = lo; it != xs.end() && *it <= truth[t].x + tolerance; ++it) {
      const std::size_t p = order[static_cast<std::size_t>(it - xs.begin())];
      const double d = dist(truth[t], pred[p]);
      if (d <= tolerance) pairs.push_back({t, p, d});
    }
  }
  return pairs;
}

std::size_t find_root(std::vector<std::size_t>& parent, std::size_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

}  // namespace

std::vector<std::size_t> hungarian(const std::vector<double>& cost, std::size_t rows, std::size_t cols) {
  if (rows > cols) throw std::invalid_argument("hungarian: needs rows <= cols");
  if (cost.size() != rows * cols) throw std::invalid_argument("hungarian: cost matrix size mismatch");
  // Potentials method (Kuhn–Munkres, O(rows²·cols)), 1-based with a virtual column 0.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(rows + 1, 0.0), v(cols + 1, 0.0);
  std::vector<std::size_t> p(cols + 1, 0), way(cols + 1, 0);
  for (std::size_t i = 1; i <= rows; ++i) {
    p[0] = i;
    std::size_t j0 = 0;
    std::vector<double> minv(cols + 1, inf);
    std::vector<char> used(cols + 1, 0);
    do {
      used[j0] = 1;
      const std::size_t i0 = p[j0];
      double delta = inf;
      std::size_t j1 = 0;
      for (std::size_t j = 1; j <= cols; ++j) {
        if (used[j]) continue;
        const double cur = cost[(i0 - 1) * cols + (j - 1)] - u[i0] - v[j];
        if (cur < minv[j]) minv[j] = cur, way[j] = j0;
        if (minv[j] < delta) delta = minv[j], j1 = j;
      }
      for (std::size_t j = 0; j <= cols; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const std::size_t j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<std::size_t> assignment(rows, 0);
  for (std::size_t j = 1; j <= cols; ++j)
    if (p[j] != 0) assignment[p[j] - 1] = j - 1;
  return assignment;
}

std::vector<Match> match_columns(const std::vector<Point>& truth, const std::vector<Point>& pred,
                                 double tolerance) {
  check_tolerance(tolerance);
  const std::vector<Pair> pairs = admissible_pairs(truth, pred, tolerance);
  // Connected components of the admissible-pair graph (nodes: truth 0..nt-1, pred nt..).
  const std::size_t nt = truth.size();
  std::vector<std::size_t> parent(nt + pred.size());
  std::iota(parent.begin(), parent.end(), 0);
  for (const Pair& e : pairs) {
    const std::size_t a = find_root(parent, e.t), b = find_root(parent, nt + e.p);
    if (a != b) parent[a] = b;
  }
  struct Component {
    std::vector<std::size_t> t, p;
  };
  std::vector<Component> comps;
  std::vector<std::size_t> comp_of(parent.size(), SIZE_MAX);
  std::vector<char> touched(parent.size(), 0);
  for (const Pair& e : pairs) touched[e.t] = touched[nt + e.p] = 1;
  for (std::size_t i = 0; i < parent.size(); ++i) {
    if (!touched[i]) continue;
    const std::size_t r = find_root(parent, i);
    if (comp_of[r] == SIZE_MAX) {
      comp_of[r] = comps.size();
      comps.emplace_back();
    }
    Component& c = comps[comp_of[r]];
    if (i < nt) c.t.push_back(i);
    else c.p.push_back(i - nt);
  }

  std::vector<Match> matches;
  for (const Component& c : comps) {
    // Rows: the smaller side (Hungarian needs rows <= cols).
    const bool rows_are_truth = c.t.size() <= c.p.size();
    const std::vector<std::size_t>& rows = rows_are_truth ? c.t : c.p;
    const std::vector<std::size_t>& cols = rows_are_truth ? c.p : c.t;
    const double big = tolerance * static_cast<double>(rows.size() + 1);
    std::vector<double> cost(rows.size() * cols.size(), big);
    for (std::size_t r = 0; r < rows.size(); ++r)
      for (std::size_t k = 0; k < cols.size(); ++k) {
        const Point& a = rows_are_truth ? truth[rows[r]] : pred[rows[r]];
        const Point& b = rows_are_truth ? pred[cols[k]] : truth[cols[k]];
        const double d = dist(a, b);
        if (d <= tolerance) cost[r * cols.size() + k] = d;
      }
    const std::vector<std::size_t> assign = hungarian(cost, rows.size(), cols.size());
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const double d = cost[r * cols.size() + assign[r]];
      if (d >= big) continue;  // a pair beyond tolerance: no match
      const std::size_t t = rows_are_truth ? rows[r] : cols[assign[r]];
      const std::size_t p = rows_are_truth ? cols[assign[r]] : rows[r];
      matches.push_back({t, p, d});
    }
  }
  std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) { return a.truth < b.truth; });
  return matches;
}

std::vector<Match> match_columns_greedy(const std::vector<Point>& truth, const std::vector<Point>& pred,
                                        double tolerance) {
  check_tolerance(tolerance);
  std::vector<Pair> pairs = admissible_pairs(truth, pred, tolerance);
  std::sort(pairs.begin(), pairs.end(),
            [](const Pair& a, const Pair& b) { return std::tie(a.d, a.t, a.p) < std::tie(b.d, b.t, b.p); });
  std::vector<char> used_t(truth.size(), 0), used_p(pred.size(), 0);
  std::vector<Match> matches;
  for (const Pair& e : pairs) {
    if (used_t[e.t] || used_p[e.p]) continue;
    used_t[e.t] = used_p[e.p] = 1;
    matches.push_back({e.t, e.p, e.d});
  }
  std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) { return a.truth < b.truth; });
  return matches;
}

DetectionCounts& DetectionCounts::operator+=(const DetectionCounts& o) {
  true_positives += o.true_positives;
  false_positives += o.false_positives;
  false_negatives += o.false_negatives;
  sum_sq_error += o.sum_sq_error;
  sum_sq_error_alt += o.sum_sq_error_alt;
  species_compared += o.species_compared;
  species_correct += o.species_correct;
  return *this;
}

DetectionCounts detection_counts(const std::vector<Point>& truth, const std::vector<Point>& pred,
                                 const std::vector<Match>& matches, const std::vector<double>& sq_alt) {
  if (!sq_alt.empty() && sq_alt.size() != matches.size())
    throw std::invalid_argument("detection_counts: sq_alt must have one entry per match");
  DetectionCounts c;
  c.true_positives = matches.size();
  c.false_positives = pred.size() - matches.size();
  c.false_negatives = truth.size() - matches.size();
  for (std::size_t i = 0; i < matches.size(); ++i) {
    const Match& m = matches[i];
    c.sum_sq_error += m.distance * m.distance;
    if (!sq_alt.empty()) c.sum_sq_error_alt += sq_alt[i];
    const int zt = truth[m.truth].species, zp = pred[m.pred].species;
    if (zt > 0 && zp > 0) {
      ++c.species_compared;
      if (zt == zp) ++c.species_correct;
    }
  }
  return c;
}

DetectionMetrics detection_metrics(const DetectionCounts& c) {
  DetectionMetrics m;
  const double tp = static_cast<double>(c.true_positives);
  m.precision = ratio(tp, tp + static_cast<double>(c.false_positives));
  m.recall = ratio(tp, tp + static_cast<double>(c.false_negatives));
  m.f1 = ratio(2 * tp, 2 * tp + static_cast<double>(c.false_positives + c.false_negatives));
  m.rmse = c.true_positives ? std::sqrt(c.sum_sq_error / tp) : kNaN;
  m.rmse_alt = c.true_positives ? std::sqrt(c.sum_sq_error_alt / tp) : kNaN;
  m.species_accuracy = ratio(static_cast<double>(c.species_correct), static_cast<double>(c.species_compared));
  return m;
}

std::size_t Confusion::total() const { return std::accumulate(counts.begin(), counts.end(), std::size_t{0}); }

Confusion confusion(const std::vector<int>& truth, const std::vector<int>& pred, std::size_t k) {
  if (truth.size() != pred.size())
    throw std::invalid_argument("confusion: " + std::to_string(truth.size()) + " true labels but " +
                                std::to_string(pred.size()) + " predictions");
  Confusion c(k);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] < 0 || static_cast<std::size_t>(truth[i]) >= k || pred[i] < 0 ||
        static_cast<std::size_t>(pred[i]) >= k)
      throw std::invalid_argument("confusion: class id out of range [0, " + std::to_string(k) + ") at index " +
                                  std::to_string(i) + " (truth " + std::to_string(truth[i]) + ", prediction " +
                                  std::to_string(pred[i]) + ")");
    ++c.at(static_cast<std::size_t>(truth[i]), static_cast<std::size_t>(pred[i]));
  }
  return c;
}

ClassificationMetrics classification_metrics(const Confusion& c) {
  ClassificationMetrics m;
  double diag = 0;
  m.precision.assign(c.k, kNaN);
  m.recall.assign(c.k, kNaN);
  for (std::size_t i = 0; i < c.k; ++i) {
    double row = 0, col = 0;
    for (std::size_t j = 0; j < c.k; ++j) row += static_cast<double>(c.at(i, j)), col += static_cast<double>(c.at(j, i));
    const double tp = static_cast<double>(c.at(i, i));
    diag += tp;
    m.precision[i] = ratio(tp, col);
    m.recall[i] = ratio(tp, row);
  }
  m.accuracy = ratio(diag, static_cast<double>(c.total()));
  return m;
}

void SegmentationCounts::resize(std::size_t k) {
  if (intersection.size() >= k) return;
  intersection.resize(k, 0);
  truth.resize(k, 0);
  pred.resize(k, 0);
}

SegmentationCounts& SegmentationCounts::operator+=(const SegmentationCounts& o) {
  resize(o.intersection.size());
  for (std::size_t i = 0; i < o.intersection.size(); ++i) {
    intersection[i] += o.intersection[i];
    truth[i] += o.truth[i];
    pred[i] += o.pred[i];
  }
  return *this;
}

SegmentationCounts segmentation_counts(const std::vector<int>& truth, const std::vector<int>& pred) {
  if (truth.size() != pred.size())
    throw std::invalid_argument("segmentation_counts: " + std::to_string(truth.size()) + " true pixels but " +
                                std::to_string(pred.size()) + " predicted");
  SegmentationCounts c;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] < 0 || pred[i] < 0)
      throw std::invalid_argument("segmentation_counts: negative label at pixel " + std::to_string(i));
    const auto t = static_cast<std::size_t>(truth[i]), p = static_cast<std::size_t>(pred[i]);
    c.resize(std::max(t, p) + 1);
    ++c.truth[t];
    ++c.pred[p];
    if (t == p) ++c.intersection[t];
  }
  return c;
}

SegmentationMetrics segmentation_metrics(const SegmentationCounts& c) {
  SegmentationMetrics m;
  const std::size_t k = c.intersection.size();
  m.iou.assign(k, kNaN);
  m.dice.assign(k, kNaN);
  double si = 0, sd = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < k; ++i) {
    const double inter = static_cast<double>(c.intersection[i]);
    const double t = static_cast<double>(c.truth[i]), p = static_cast<double>(c.pred[i]);
    m.iou[i] = ratio(inter, t + p - inter);
    m.dice[i] = ratio(2 * inter, t + p);
    if (!std::isnan(m.iou[i])) si += m.iou[i], sd += m.dice[i], ++n;
  }
  m.mean_iou = n ? si / static_cast<double>(n) : kNaN;
  m.mean_dice = n ? sd / static_cast<double>(n) : kNaN;
  return m;
}

void RegressionCounts::add(double truth, double pred) {
  const double e = pred - truth;
  ++n;
  sum_abs += std::abs(e);
  sum_sq += e * e;
  sum_err += e;
}

RegressionCounts& RegressionCounts::operator+=(const RegressionCounts& o) {
  n += o.n;
  sum_abs += o.sum_abs;
  sum_sq += o.sum_sq;
  sum_err += o.sum_err;
  return *this;
}

RegressionMetrics regression_metrics(const RegressionCounts& c) {
  const double n = static_cast<double>(c.n);
  return {ratio(c.sum_abs, n), c.n ? std::sqrt(c.sum_sq / n) : kNaN, ratio(c.sum_err, n)};
}

std::vector<double> quantile_edges(const std::vector<double>& values, std::size_t nbins) {
  if (nbins == 0) throw std::invalid_argument("quantile_edges: need at least one bin");
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  if (v.empty()) throw std::invalid_argument("quantile_edges: no finite values");
  std::sort(v.begin(), v.end());
  std::vector<double> distinct;
  for (double x : v)
    if (distinct.empty() || x != distinct.back()) distinct.push_back(x);
  if (distinct.size() == 1) return {distinct[0], distinct[0]};
  std::vector<double> edges;
  if (distinct.size() <= nbins) {
    edges.push_back(distinct.front());
    for (std::size_t i = 0; i + 1 < distinct.size(); ++i) edges.push_back(0.5 * (distinct[i] + distinct[i + 1]));
    edges.push_back(distinct.back());
    return edges;
  }
  const double n1 = static_cast<double>(v.size() - 1);
  for (std::size_t k = 0; k <= nbins; ++k) {
    const double h = n1 * static_cast<double>(k) / static_cast<double>(nbins);
    const auto lo = static_cast<std::size_t>(std::floor(h));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    const double q = v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
    if (edges.empty() || q > edges.back()) edges.push_back(q);
  }
  edges.back() = v.back();  // exact maximum, whatever the rounding
  return edges;
}

std::vector<int> assign_bins(const std::vector<double>& values, const std::vector<double>& edges) {
  if (edges.size() < 2) throw std::invalid_argument("assign_bins: need at least two edges");
  for (double e : edges)
    if (!std::isfinite(e)) throw std::invalid_argument("assign_bins: edges must be finite");
  const bool degenerate = edges.size() == 2 && edges[0] == edges[1];
  if (!degenerate)
    for (std::size_t i = 1; i < edges.size(); ++i)
      if (!(edges[i] > edges[i - 1])) throw std::invalid_argument("assign_bins: edges must be strictly increasing");
  std::vector<int> bins(values.size(), -1);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double x = values[i];
    if (!std::isfinite(x) || x < edges.front() || x > edges.back()) continue;
    if (degenerate) {
      bins[i] = 0;
      continue;
    }
    // First edge > x; x == last edge falls into the last (closed) bin.
    const auto it = std::upper_bound(edges.begin(), edges.end(), x);
    const auto b = static_cast<int>(it - edges.begin()) - 1;
    bins[i] = std::min(b, static_cast<int>(edges.size()) - 2);
  }
  return bins;
}

std::vector<std::size_t> bin_counts(const std::vector<int>& bins, std::size_t nbins) {
  std::vector<std::size_t> counts(nbins, 0);
  for (int b : bins)
    if (b >= 0 && static_cast<std::size_t>(b) < nbins) ++counts[static_cast<std::size_t>(b)];
  return counts;
}

}  // namespace stemtwin::metrics
