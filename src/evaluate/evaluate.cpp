#include "stemtwin/evaluate/evaluate.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <set>
#include <stdexcept>

#include "evaluate_io.hpp"
#include "stemtwin/dataset/plot.hpp"

namespace stemtwin {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();


// Per-sample results of every task: a bin's metrics are sums over its samples.
struct Accumulator {
  std::size_t n = 0;
  bool detection = false, species = false, rmse_A = false, rmse_px = false;
  std::vector<metrics::DetectionCounts> det;
  bool classification = false;
  std::vector<int> truth_class, pred_class;
  std::vector<std::string> class_names;
  std::vector<std::string> masks;
  std::vector<std::vector<metrics::SegmentationCounts>> seg;  // [mask][sample]
  std::vector<std::size_t> mask_classes;                      // classes per mask (overall)
  std::vector<std::string> scalars;
  std::vector<std::vector<double>> scalar_truth, scalar_pred;  // [scalar][sample]
};

MetricMap metrics_of(const Accumulator& acc, const std::vector<std::size_t>& idx) {
  MetricMap m;
  m["n_samples"] = static_cast<double>(idx.size());
  if (acc.detection) {
    metrics::DetectionCounts c;
    for (std::size_t i : idx) c += acc.det[i];
    const metrics::DetectionMetrics d = metrics::detection_metrics(c);
    m["detection.precision"] = d.precision;
    m["detection.recall"] = d.recall;
    m["detection.f1"] = d.f1;
    m["detection.rmse_A"] = acc.rmse_A ? d.rmse : kNaN;
    m["detection.rmse_px"] = acc.rmse_px ? d.rmse_alt : kNaN;
    if (acc.species) m["detection.species_accuracy"] = d.species_accuracy;
    m["detection.n_true"] = static_cast<double>(c.true_positives + c.false_negatives);
    m["detection.n_pred"] = static_cast<double>(c.true_positives + c.false_positives);
    m["detection.n_matched"] = static_cast<double>(c.true_positives);
  }
  if (acc.classification) {
    std::vector<int> t, p;
    for (std::size_t i : idx) t.push_back(acc.truth_class[i]), p.push_back(acc.pred_class[i]);
    const auto cm = metrics::classification_metrics(metrics::confusion(t, p, acc.class_names.size()));
    m["classification.accuracy"] = cm.accuracy;
    for (std::size_t k = 0; k < acc.class_names.size(); ++k) {
      m["classification.precision." + acc.class_names[k]] = cm.precision[k];
      m["classification.recall." + acc.class_names[k]] = cm.recall[k];
    }
  }
  for (std::size_t s = 0; s < acc.masks.size(); ++s) {
    metrics::SegmentationCounts c;
    c.resize(acc.mask_classes[s]);
    for (std::size_t i : idx) c += acc.seg[s][i];
    const auto sm = metrics::segmentation_metrics(c);
    const std::string base = "segmentation." + acc.masks[s] + ".";
    m[base + "mean_iou"] = sm.mean_iou;
    m[base + "mean_dice"] = sm.mean_dice;
    for (std::size_t k = 0; k < sm.iou.size(); ++k) {
      m[base + "iou." + std::to_string(k)] = sm.iou[k];
      m[base + "dice." + std::to_string(k)] = sm.dice[k];
    }
  }
  for (std::size_t s = 0; s < acc.scalars.size(); ++s) {
    metrics::RegressionCounts c;
    for (std::size_t i : idx)
      if (std::isfinite(acc.scalar_truth[s][i])) c.add(acc.scalar_truth[s][i], acc.scalar_pred[s][i]);
    const auto r = metrics::regression_metrics(c);
    const std::string base = "regression." + acc.scalars[s] + ".";
    m[base + "mae"] = r.mae;
    m[base + "rmse"] = r.rmse;
    m[base + "bias"] = r.bias;
  }
  return m;
}

std::string fail_text(const std::string& file, const std::string& object, const std::string& what) {
  return file + ": " + object + ": " + what;
}

void evaluate_detection(const evalio::DatasetReader& ds, const evalio::PredictionsReader& pr,
                        const EvaluateOptions& opt, Report& report, Accumulator& acc) {
  const std::size_t n = acc.n;
  if (!ds.has_columns())
    throw std::runtime_error(fail_text(pr.path(), "/columns", "predictions hold columns but the dataset " + ds.path() +
                                                                  " has no /labels/columns"));
  const evalio::ColumnTable truth = ds.columns();
  const evalio::ColumnTable pred = pr.columns();
  const bool frame_A = pred.has_A() || (!pred.has_px() && truth.has_A());
  report.coordinate_frame = frame_A ? "A" : "px";
  if (frame_A && !truth.has_A())
    throw std::runtime_error(fail_text(ds.path(), "/labels/columns/x_A",
                                       "missing, but " + pr.path() + " gives columns in Å (x_A, y_A)"));
  if (!frame_A && !truth.has_px())
    throw std::runtime_error(fail_text(ds.path(), "/labels/columns/x_px",
                                       "missing, but " + pr.path() + " gives columns in pixels (x_px, y_px)"));
  for (std::size_t i = 0; i < pred.size(); ++i)
    if (static_cast<std::size_t>(pred.sample[i]) >= n)
      throw std::runtime_error(fail_text(pr.path(), pr.is_csv() ? "sample" : "/columns/sample",
                                         "row " + std::to_string(i) + " names sample " + std::to_string(pred.sample[i]) +
                                             " but the dataset " + ds.path() + " has " + std::to_string(n) + " samples"));

  // Scale factors from the comparison frame to Å and to px, and to the tolerance's unit.
  const auto ps = ds.pixel_size_A();
  const bool tol_A = opt.tolerance_unit == "A";
  if (!ps && tol_A != frame_A)
    throw std::runtime_error(fail_text(ds.path(), "/", std::string("attribute 'pixel_size_A' missing: it is needed to use a "
                                                                   "tolerance in ") +
                                                           (tol_A ? "Å" : "px") + " with columns in " +
                                                           (frame_A ? "Å" : "px")));
  std::array<double, 2> to_A{1, 1}, to_px{1, 1};
  if (ps) {
    if (frame_A) to_px = {1 / (*ps)[0], 1 / (*ps)[1]};
    else to_A = {(*ps)[0], (*ps)[1]};
  }
  acc.rmse_A = frame_A || ps.has_value();
  acc.rmse_px = !frame_A || ps.has_value();
  const std::array<double, 2> to_tol = tol_A ? to_A : to_px;

  acc.species = !pred.species.empty();
  if (acc.species && truth.species.empty()) {
    report.warnings.push_back("predictions carry species but the dataset has no /labels/columns/species; "
                              "species accuracy is not computed");
    acc.species = false;
  }
  // Group by sample, in the tolerance's unit.
  std::vector<std::vector<metrics::Point>> t_pts(n), p_pts(n);
  std::vector<std::vector<std::array<double, 2>>> t_raw(n), p_raw(n);
  const auto& tx = frame_A ? truth.x_A : truth.x_px;
  const auto& ty = frame_A ? truth.y_A : truth.y_px;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const auto s = static_cast<std::size_t>(truth.sample[i]);
    t_pts[s].push_back({tx[i] * to_tol[0], ty[i] * to_tol[1], truth.species.empty() ? 0 : truth.species[i]});
    t_raw[s].push_back({tx[i], ty[i]});
  }
  const auto& px = frame_A ? pred.x_A : pred.x_px;
  const auto& py = frame_A ? pred.y_A : pred.y_px;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    const auto s = static_cast<std::size_t>(pred.sample[i]);
    p_pts[s].push_back({px[i] * to_tol[0], py[i] * to_tol[1], acc.species ? pred.species[i] : 0});
    p_raw[s].push_back({px[i], py[i]});
  }
  acc.det.resize(n);
  for (std::size_t s = 0; s < n; ++s) {
    const auto matches = metrics::match_columns(t_pts[s], p_pts[s], opt.tolerance);
    metrics::DetectionCounts c = metrics::detection_counts(t_pts[s], p_pts[s], matches);
    c.sum_sq_error = c.sum_sq_error_alt = 0;
    for (const auto& m : matches) {
      const double dx = p_raw[s][m.pred][0] - t_raw[s][m.truth][0];
      const double dy = p_raw[s][m.pred][1] - t_raw[s][m.truth][1];
      c.sum_sq_error += std::pow(dx * to_A[0], 2) + std::pow(dy * to_A[1], 2);
      c.sum_sq_error_alt += std::pow(dx * to_px[0], 2) + std::pow(dy * to_px[1], 2);
    }
    if (!acc.rmse_A) c.sum_sq_error = 0;  // no pixel size: that unit is unknown
    if (!acc.rmse_px) c.sum_sq_error_alt = 0;
    acc.det[s] = c;
    report.detection += c;
  }
  acc.detection = report.has_detection = true;
}

void evaluate_classification(const evalio::DatasetReader& ds, const evalio::PredictionsReader& pr, Report& report,
                             Accumulator& acc) {
  const std::size_t n = acc.n;
  if (!ds.has_classes())
    throw std::runtime_error(
        fail_text(pr.path(), "/class", "predictions hold classes but the dataset " + ds.path() + " has no /labels/class"));
  acc.truth_class = ds.classes();
  std::vector<int> pred = pr.classes();
  if (pred.size() < n)
    throw std::runtime_error(fail_text(pr.path(), "/class",
                                       "has " + std::to_string(pred.size()) + " entries, fewer than the " +
                                           std::to_string(n) + " samples of " + ds.path()));
  if (pred.size() > n)
    report.warnings.push_back("/class holds " + std::to_string(pred.size()) + " entries; the first " +
                              std::to_string(n) + " (the dataset's samples) are scored");
  pred.resize(n);
  int kmax = -1;
  for (std::size_t i = 0; i < n; ++i) {
    if (pred[i] < 0)
      throw std::runtime_error(fail_text(pr.path(), "/class", "negative class id " + std::to_string(pred[i]) +
                                                                  " at sample " + std::to_string(i)));
    if (acc.truth_class[i] < 0)
      throw std::runtime_error(fail_text(ds.path(), "/labels/class", "negative class id at sample " + std::to_string(i)));
    kmax = std::max({kmax, pred[i], acc.truth_class[i]});
  }
  acc.pred_class = pred;
  acc.class_names = ds.class_names();
  for (std::size_t k = acc.class_names.size(); static_cast<int>(k) <= kmax; ++k)
    acc.class_names.push_back("class" + std::to_string(k));
  report.class_names = acc.class_names;
  report.confusion = metrics::confusion(acc.truth_class, acc.pred_class, acc.class_names.size());
  acc.classification = report.has_classification = true;
}

void evaluate_segmentation(const evalio::DatasetReader& ds, const evalio::PredictionsReader& pr, Report& report,
                           Accumulator& acc) {
  const std::size_t n = acc.n;
  const auto truth_masks = ds.mask_names();
  for (const std::string& name : pr.mask_names()) {
    const std::string pp = "/masks/" + name, tp = "/labels/masks/" + name;
    if (std::find(truth_masks.begin(), truth_masks.end(), name) == truth_masks.end())
      throw std::runtime_error(fail_text(pr.path(), pp, "the dataset " + ds.path() + " has no " + tp));
    const evalio::Shape3 ts = ds.mask_shape(name), ps = pr.mask_shape(name);
    if (ps.ny != ts.ny || ps.nx != ts.nx)
      throw std::runtime_error(fail_text(pr.path(), pp,
                                         "masks are " + std::to_string(ps.ny) + "×" + std::to_string(ps.nx) + " but " +
                                             tp + " in " + ds.path() + " is " + std::to_string(ts.ny) + "×" +
                                             std::to_string(ts.nx)));
    if (ps.n < n)
      throw std::runtime_error(fail_text(pr.path(), pp, "holds " + std::to_string(ps.n) + " samples, fewer than the " +
                                                            std::to_string(n) + " of " + ds.path()));
    if (ts.n < n)
      throw std::runtime_error(fail_text(ds.path(), tp, "holds " + std::to_string(ts.n) + " samples, fewer than " +
                                                            std::to_string(n)));
    std::vector<metrics::SegmentationCounts> per(n);
    metrics::SegmentationCounts total;
    for (std::size_t s = 0; s < n; ++s) {
      const evalio::LabelImage t = ds.mask(name, s), p = pr.mask(name, s);
      try {
        per[s] = metrics::segmentation_counts(t.data, p.data);
      } catch (const std::invalid_argument& e) {
        throw std::runtime_error(fail_text(pr.path(), pp, "sample " + std::to_string(s) + ": " + e.what()));
      }
      total += per[s];
    }
    acc.masks.push_back(name);
    acc.seg.push_back(std::move(per));
    acc.mask_classes.push_back(total.intersection.size());
    report.segmentation[name] = total;
  }
}

void evaluate_regression(const evalio::DatasetReader& ds, const evalio::PredictionsReader& pr, Report& report,
                         Accumulator& acc) {
  const std::size_t n = acc.n;
  const auto params = ds.param_names();
  for (const std::string& name : pr.scalar_names()) {
    const std::string pp = "/scalars/" + name;
    if (std::find(params.begin(), params.end(), name) == params.end())
      throw std::runtime_error(fail_text(pr.path(), pp, "the dataset " + ds.path() + " has no /params/" + name));
    std::vector<double> p = pr.scalar(name);
    if (p.size() < n)
      throw std::runtime_error(fail_text(pr.path(), pp, "has " + std::to_string(p.size()) + " entries, fewer than the " +
                                                            std::to_string(n) + " samples of " + ds.path()));
    p.resize(n);
    for (std::size_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i]))
        throw std::runtime_error(fail_text(pr.path(), pp, "non-finite value at sample " + std::to_string(i)));
    const std::vector<double> t = ds.param(name);
    metrics::RegressionCounts c;
    for (std::size_t i = 0; i < n; ++i)
      if (std::isfinite(t[i])) c.add(t[i], p[i]);
    report.regression[name] = c;
    acc.scalars.push_back(name);
    acc.scalar_truth.push_back(t);
    acc.scalar_pred.push_back(std::move(p));
  }
}

void build_breakdowns(const evalio::DatasetReader& ds, const EvaluateOptions& opt, const Accumulator& acc,
                      Report& report) {
  const auto available = ds.param_names();
  auto known = [&](const std::string& p) { return std::find(available.begin(), available.end(), p) != available.end(); };
  auto listing = [&] {
    std::string s;
    for (const auto& p : available) s += (s.empty() ? "" : ", ") + p;
    return s.empty() ? std::string("none") : s;
  };
  for (const auto& p : opt.params)
    if (!known(p)) throw std::invalid_argument("evaluate: no parameter /params/" + p + " in " + ds.path() + " (has: " + listing() + ")");
  for (const auto& [p, e] : opt.edges)
    if (!known(p)) throw std::invalid_argument("evaluate: bin edges given for /params/" + p + ", which " + ds.path() +
                                               " does not have (has: " + listing() + ")");
  const std::vector<std::string> names = opt.params.empty() ? available : opt.params;
  for (const std::string& name : names) {
    const std::vector<double> values = ds.param(name);
    Breakdown b;
    b.param = name;
    const auto given = opt.edges.find(name);
    if (given != opt.edges.end()) {
      b.binning = "edges";
      b.edges = given->second;
    } else {
      std::set<double> distinct;
      for (double v : values)
        if (std::isfinite(v)) distinct.insert(v);
      if (distinct.empty()) {
        report.warnings.push_back("/params/" + name + " has no finite values; no breakdown");
        continue;
      }
      b.binning = distinct.size() <= opt.bins ? "distinct" : "quantile";
      b.edges = metrics::quantile_edges(values, opt.bins);
    }
    std::vector<int> bin;
    try {
      bin = metrics::assign_bins(values, b.edges);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("evaluate: bin edges for /params/" + name + ": " + e.what());
    }
    const std::size_t nb = b.edges.size() - 1;
    std::vector<std::vector<std::size_t>> members(std::max<std::size_t>(nb, 1));
    for (std::size_t i = 0; i < bin.size(); ++i) {
      if (bin[i] < 0) ++b.n_outside;
      else members[static_cast<std::size_t>(bin[i])].push_back(i);
    }
    for (std::size_t k = 0; k < members.size(); ++k) {
      BinResult r;
      r.lo = b.edges[k];
      r.hi = b.edges[std::min(k + 1, b.edges.size() - 1)];
      r.n_samples = members[k].size();
      r.mean = kNaN;
      if (!members[k].empty()) {
        double sum = 0;
        for (std::size_t i : members[k]) sum += values[i];
        r.mean = sum / static_cast<double>(members[k].size());
      }
      r.metrics = metrics_of(acc, members[k]);
      b.bins.push_back(std::move(r));
    }
    report.breakdowns.push_back(std::move(b));
  }
}

}  // namespace

Report evaluate(const std::string& dataset_path, const std::string& predictions_path, const EvaluateOptions& options) {
  if (!(options.tolerance > 0) || !std::isfinite(options.tolerance))
    throw std::invalid_argument("evaluate: tolerance must be a positive number");
  if (options.tolerance_unit != "A" && options.tolerance_unit != "px")
    throw std::invalid_argument("evaluate: tolerance unit must be 'A' or 'px', got '" + options.tolerance_unit + "'");
  if (options.bins == 0) throw std::invalid_argument("evaluate: need at least one bin");

  const evalio::DatasetReader ds(dataset_path);
  const evalio::PredictionsReader pr(predictions_path);
  Report report;
  report.dataset_path = dataset_path;
  report.predictions_path = predictions_path;
  report.options = options;
  report.n_samples = ds.n_samples();

  Accumulator acc;
  acc.n = ds.n_samples();
  if (pr.has_columns()) evaluate_detection(ds, pr, options, report, acc);
  if (pr.has_classes()) evaluate_classification(ds, pr, report, acc);
  evaluate_segmentation(ds, pr, report, acc);
  evaluate_regression(ds, pr, report, acc);
  if (!acc.detection && !acc.classification && acc.masks.empty() && acc.scalars.empty())
    throw std::runtime_error(predictions_path +
                             ": /: holds nothing to score (expected /columns, /class, /masks/<name> or /scalars/<name>)");

  std::vector<std::size_t> all(acc.n);
  std::iota(all.begin(), all.end(), 0);
  report.overall = metrics_of(acc, all);
  build_breakdowns(ds, options, acc, report);
  return report;
}

}  // namespace stemtwin
